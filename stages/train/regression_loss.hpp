// regression_loss: mean squared or mean absolute error of real-valued predictions (a numeric
// series' next values), masked for padding:
//   loss = (Σ_{valid (t, n)} Σ_{k<K} ℓ(x[t, n, k] - y[t, n, k]), K · number of valid (t, n))
//   ℓ(e) = e²  (kind: mse)   or   |e|  (kind: mae)
// so the objective sum / count is the mean over every predicted value — in the units the frames
// carry (normalised by the series reader; series_metrics reports the file's units).
//
// Ports:  prediction  tensor f32 (T, N, K) + lengths
//         target      tensor f32 (T, N, D) + lengths, D >= K: the first K channels are compared
//                     (the series reader puts the targets first; further channels are input-only
//                     features the model is not asked to predict); a step (t, n) is valid when
//                     t < length(n) of `target`
//         loss        loss   f32 (2) = (sum of ℓ over valid steps and K channels, K · valid steps)
// Row sums in double, added in row order (independent of threads).
// Backward: diff_prediction = diff_loss[0] · ℓ'(x - y) at valid steps (2e for mse, sign(e) for
//   mae, 0 at e = 0), 0 at padding; diff_target (when something upstream asks for it) =
//   -diff_prediction on its first K channels, 0 on the others. diff_loss[1] multiplies the count,
//   a constant: ignored.
// Not supported: per-channel weights, Huber loss, quantile losses.
#pragma once

#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class RegressionLoss final : public ModelStage {
public:
    static StageSchema schema();
    explicit RegressionLoss(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;

private:
    bool squared_;
    std::vector<double> row_loss_;  // per row (t, n) of the last forward (kept: no allocation)
};

}  // namespace rnnflow::stages
