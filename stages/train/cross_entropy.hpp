// cross_entropy: loss = (Σ_{counted (t, n)} w_y · ℓ(t, n), Σ_{counted} w_y), y = target[t, n],
//   ℓ = -(1 - ε) log p_y - (ε / V) Σ_v log p_v,  p = softmax(logits[t, n, :])
//   w = class_weights (1 for every class by default), ε = label_smoothing (0 by default): with
//   neither, ℓ = -log p_y and the count is the number of counted positions.
//
// Ports:  logits  tensor f32 (T, N, V) + lengths
//         target  ids    i32 (T, N) + lengths; a position is counted when t < length(n) of
//                 `target` and target[t, n] != ignore_index
//         loss    loss   f32 (2) = (weighted sum over counted positions, Σ weights of their
//                 targets); the objective is sum / count, a weighted mean (as PyTorch's
//                 reduction='mean' with weights)
// Forward: fused log-softmax, lse = m + log Σ_v exp(x_v - m) with m = max_v x_v (stable), one
//   pass per row, rows in parallel (OpenMP); row losses in double, added in row order. Saved:
//   exp(x - m) (T·N, V) and log Σ exp(x - m) (T·N), so backward is one multiply per element.
// class_weights: one number per class, or "balanced": w_k = n / (K · n_k) from the target
//   vocabulary's training counts n_k (n = Σ n_k; 0 for a class never seen).
// Backward: diff_logits[t, n, v] = diff_loss[0] · w_y · (p_v - (1 - ε)[v == y] - ε / V) at
//   counted positions, 0 elsewhere. diff_loss[1] multiplies the count, a constant: ignored.
// Not supported: soft targets given as distributions, focal loss.
#pragma once

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class CrossEntropy final : public ModelStage {
public:
    static StageSchema schema();
    explicit CrossEntropy(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;

private:
    bool counted(const Tensor& target, std::int64_t t, std::int64_t n, std::int32_t y) const {
        return t < target.length(n) && y != ignore_index_;
    }
    std::int64_t ignore_index_;
    double smoothing_;
    std::vector<std::string> weight_spec_;  // as given: [], ["balanced"] or numbers
    std::vector<float> weights_;            // per class; empty = all 1
    std::vector<char> counted_;             // per row of the last forward: counted (kept: no allocation)
    std::vector<double> row_loss_;          // per row of the last forward: its loss
    // Training forward also writes the logits' gradient for the seed the engine gives a
    // minimised loss (1 / count); backward hands it over (a swap) when that is its scale.
    Tensor pending_;            // (T, N, V) the gradient, valid when pending_ready_
    float pending_scale_ = 0;   // the scale it was computed for
    bool pending_ready_ = false;
};

}  // namespace rnnflow::stages
