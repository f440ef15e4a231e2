// highway: y = t * act(x W_h + b_h) + (1 - t) * x,  t = sigmoid(x W_t + b_t), over channels.
//
// Ports:  in   tensor f32 (T, N, C) + lengths
//         out  tensor f32 (T, N, C) + the same lengths; 0 at padded steps
// Params: weights_h (C, C), bias_h (C), weights_t (C, C), bias_t (C); x W means
//         out[c'] = sum_c x[c] W[c, c'] (row-major (C_in, C_out)). Weights start uniform in
//         [-1/sqrt(C), 1/sqrt(C)], bias_h at 0, bias_t at `gate_bias` (negative: the layer
//         starts close to the identity, so it can be put into a trained stack cheaply).
// Backward, per valid row (t, n), with h = act(x W_h + b_h), g = diff_out:
//   dh_pre = g * t * act'(.)          dt_pre = g * (h - x) * t * (1 - t)
//   diff_in = g * (1 - t) + dh_pre W_h^T + dt_pre W_t^T
//   weights_h.grad += x^T dh_pre, bias_h.grad += dh_pre; the same for the gate.
// Ref: Srivastava, Greff, Schmidhuber, "Highway Networks" (2015).
// Not supported: per-time-step gates, input and output widths that differ. Plain loops (no
// oneDNN): about 4 C^2 multiply-adds per valid row forward, 8 backward.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <rnnflow/stage.hpp>

namespace highway_plugin {

class Highway final : public rnnflow::ModelStage {
public:
    static rnnflow::StageSchema schema();
    explicit Highway(const rnnflow::Params& p);

    void prepare(rnnflow::PrepareContext& ctx) override;
    void forward(const rnnflow::Inputs& in, rnnflow::Outputs& out, rnnflow::Saved& saved,
                 const rnnflow::StepInfo& step) override;
    void backward(const rnnflow::Inputs& in, const rnnflow::Outputs& out, rnnflow::Saved& saved,
                  const rnnflow::Grads& diff_dst, rnnflow::Grads& diff_src,
                  const rnnflow::StepInfo& step) override;
    std::span<rnnflow::Param> params() override { return params_; }

private:
    double gate_bias_;
    bool relu_;                   // act: relu, else tanh
    std::int64_t channels_ = 0;   // C, known after prepare
    std::array<rnnflow::Param, 4> params_;  // weights_h (C, C), bias_h (C), weights_t (C, C), bias_t (C)
};

}  // namespace highway_plugin
