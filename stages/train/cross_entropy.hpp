// cross_entropy: loss = (Σ_{counted (t, n)} -log softmax(logits[t, n, :])[target[t, n]], count)
//
// Ports:  logits  tensor f32 (T, N, V) + lengths
//         target  ids    i32 (T, N) + lengths; a position is counted when t < length(n) of
//                 `target` and target[t, n] != ignore_index
//         loss    loss   f32 (2) = (sum over counted positions, number counted);
//                 the objective is sum / count
// Forward: fused log-softmax, lse = m + log Σ_v exp(x_v - m) with m = max_v x_v (stable); the
//   loss sum is accumulated in double. Saved: m (T, N) and log Σ exp(x - m) (T, N) for backward
//   (kept apart so large logits lose no precision).
// Backward: diff_logits[t, n, v] = diff_loss[0] · (exp(x_v - lse) - [v == target]) at counted
//   positions, 0 elsewhere. diff_loss[1] multiplies the count, a constant: ignored.
// Not supported: label smoothing, class weights, soft targets.
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
};

}  // namespace rnnflow::stages
