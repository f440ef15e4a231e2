// activation: out[t, n, c] = f(in[t, n, c]) for t < length(n); 0 at padded steps. An
// elementwise nonlinearity between `linear` stages (MLP heads).
//
//   function     f(x)                                   f'(x), as backward computes it
//   relu         max(x, 0)                              1 where y > 0, else 0 (0 at x = 0)
//   leaky_relu   x if x > 0, else slope * x             1 if x > 0, else slope
//   tanh         tanh(x)                                1 - y^2, as (1 - y)(1 + y)
//   sigmoid      1 / (1 + e^-x) for x >= 0,             y (1 - y)
//                e^x / (1 + e^x) for x < 0 (e^|x| never overflows)
//   gelu         x Φ(x), Φ(x) = erfc(-x / √2) / 2       Φ(x) + x φ(x), φ(x) = e^(-x²/2) / √(2π)
//
// Ports:  in   tensor f32 (T, N, C) + lengths
//         out  tensor f32 (T, N, C) + the same lengths; 0 at padded steps (not f(0): sigmoid
//              would give 0.5), whatever `in` holds there
// Params: none learned. `function` picks the row above; `slope` is leaky_relu's slope for x <= 0.
// Backward: diff_in = diff_out * f'(x) at valid steps, 0 at padded ones (padded outputs are
//   constants). relu, tanh and sigmoid read y from `out`, leaky_relu and gelu read x from `in`;
//   nothing goes into Saved.
// Numerics: plain float std:: functions (glibc, within an ulp or two), not fast_math.hpp's
//   polynomials: here f is the whole output, not one gate among many. gelu is the exact erf form
//   (erfc keeps Φ's relative precision for x << 0), not the tanh approximation. Large |x| stays
//   finite in f and f'; NaN stays NaN for the engine's non-finite guards.
// Ref: Nair & Hinton 2010 (relu); Maas et al. 2013 (leaky relu); Hendrycks & Gimpel 2016 (gelu).
// Not supported: learned slopes (PReLU), softmax (it mixes channels; cross_entropy takes logits),
// an activation fused into `linear`.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Activation final : public ModelStage {
public:
    enum class Function { relu, leaky_relu, tanh, sigmoid, gelu };

    static StageSchema schema();
    explicit Activation(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;

private:
    Function function_;
    float slope_;                 // leaky_relu only
    std::int64_t channels_ = -1;  // C, after prepare
};

}  // namespace rnnflow::stages
