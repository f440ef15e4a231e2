// embedding: out[t, n, :] = weight[in[t, n], :] for t < length(n); 0 at padded steps.
//
// Ports:  in   ids    i32 (T, N) + lengths; ids in [0, V), V = the input port's `classes`
//         out  tensor f32 (T, N, C) + the same lengths, C = `dim`
// Param:  weight (V, C), row v is the vector of id v; init uniform [-init_scale, init_scale].
// Backward: weight.grad[in[t, n], :] += diff_out[t, n, :] over valid steps, in (t, n) order
// (sequential, so deterministic); ids get no gradient; padded steps contribute nothing.
// Not supported: padding_idx, max_norm renormalisation, sparse gradients, weight tying (the
// engine's `tie:` would share `weight`).
#pragma once

#include <array>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Embedding final : public ModelStage {
public:
    static StageSchema schema();
    explicit Embedding(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;
    std::span<Param> params() override { return params_; }

private:
    std::int64_t dim_;     // C
    double init_scale_;
    std::int64_t vocab_ = 0;  // V, known after prepare
    std::array<Param, 1> params_;  // weight (V, C)
};

}  // namespace rnnflow::stages
