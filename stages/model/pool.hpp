// pool: one vector per sequence from a sequence of vectors (many-to-one heads), over each
// column's valid steps only.
//
// Ports:  in   tensor f32 (T, N, C) + lengths, e.g. a recurrent stage's `out`
//         out  tensor f32 (1, N, C), no lengths (one valid step per column); a column of
//              length 0 gives zeros
// Modes (L = length of column n, x_t = in[t, n, :]):
//   last       directions 1: out = x_{L-1}
//              directions 2 (for bidirectional_concat outputs, C even): the first C/2 channels
//              (left-to-right half) from x_{L-1}, the last C/2 (right-to-left half) from x_0,
//              i.e. each direction's state after reading the whole sequence
//   mean       out = (1/L) sum_{t<L} x_t
//   max        out[c] = max_{t<L} x_t[c]; the gradient goes to the first step reaching the max
//   attention  s_t = q . u_t with u_t = x_t (attention_dim 0) or u_t = tanh(x_t W + b)
//              (attention_dim A > 0, W (C, A), b (A)); a = softmax of s over t < L (padded steps
//              masked out); out = sum_{t<L} a_t x_t. Params: query (A or C), and weight (C, A),
//              bias (A) when A > 0. The query starts small, so attention starts close to mean.
// Backward: diff_in at padded steps is 0; attention adds into the query/weight/bias gradients.
// Refs: attention pooling as in Yang et al. 2016 (hierarchical attention networks), one level.
// Not supported: several attention heads, a stride or windowed pooling.
#pragma once

#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class Pool final : public ModelStage {
public:
    enum class Mode { last, mean, max, attention };

    static StageSchema schema();
    explicit Pool(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;
    std::span<Param> params() override { return params_; }

private:
    void check_input(const Tensor& x) const;
    // Each mode's forward next to its backward (pool.cpp). x (T, N, C); y, g = dy (1, N, C);
    // d = dx (T, N, C), added into.
    void last_forward(const Tensor& x, float* y) const;
    void last_backward(const Tensor& x, const float* g, float* d) const;
    void mean_forward(const Tensor& x, float* y) const;
    void mean_backward(const Tensor& x, const float* g, float* d) const;
    void max_forward(const Tensor& x, float* y, Tensor& arg) const;
    void max_backward(const Tensor& x, const Tensor& arg, const float* g, float* d) const;
    void attention_forward(const Tensor& x, float* y, Saved& saved) const;
    void attention_backward(const Tensor& x, const Saved& saved, const float* g, float* d);
    void attention_weights_backward(const Tensor& x, const float* a, const float* g, float* d,
                                    std::int64_t n, float* da) const;
    void attention_scores_backward(const Tensor& x, const Saved& saved, float* d, std::int64_t n,
                                   const float* da);

    Mode mode_;
    std::int64_t directions_;
    std::int64_t att_dim_;     // A; 0: score = q . x
    double init_scale_;
    std::int64_t channels_ = -1;  // C, after prepare
    std::vector<Param> params_;   // attention: query (A or C) [, weight (C, A), bias (A)]
    std::vector<float> scratch_;  // per-step scores / diff buffers
};

}  // namespace rnnflow::stages
