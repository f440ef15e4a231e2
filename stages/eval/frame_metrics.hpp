// frame_metrics: how well a model predicts multi-label frames (the notes of a piano roll), next
// to a naive baseline that predicts the previous frame again, in the same pass.
//
//   logits    tensor f32 (T, N, P) + lengths: the model's scores, p = σ(logits)
//   target    tensor f32 (T, N, P) + lengths: the frames to predict, in [0, 1]; a step (t, n)
//             counts when t < length(n) of `target`
//   previous  tensor f32 (T, N, P), optional: the frame before each target (frame_batches.input);
//             the baseline predicts it again. Unconnected: no baseline metrics.
// Metrics over a pass (sums over every counted step and unit of the split):
//   ""            nll: Σ_{t,n} Σ_p ℓ(logit, y) / counted steps, ℓ the binary cross-entropy of
//                 binary_cross_entropy (nats per time step, summed over units; lower is better)
//                 — the figure the polyphonic-music papers report
//   accuracy      frame-level accuracy of Bay et al. 2009 as used by Boulanger-Lewandowski et al.
//                 2012: TP / (TP + FP + FN), a unit predicted on when p > threshold, on in the
//                 target when y > 0.5 (TN, the silent majority, is left out)
//   precision     TP / (TP + FP), recall TP / (TP + FN), f1 2 TP / (2 TP + FP + FN) (0 when
//                 the denominator is 0)
//   baseline_nll, baseline_accuracy, baseline_f1 (with `previous`): the same for predicting the
//                 previous frame: on where it was on (> 0.5). Its probabilities are smoothed so
//                 that its NLL is finite: p = 1 - ε where the previous frame is on, ε where off,
//                 ε = baseline_epsilon; the best ε for a split is the fraction of units that
//                 change from one frame to the next, so the default (0.05, that fraction is
//                 0.052 to 0.056 on JSB Chorales' splits) is a fair, not a weak, baseline.
//   frames        counted steps (for the record)
// A pass with no counted step is an error. Prediction runs (empty targets) count nothing.
// Not supported: per-piece averages (the papers average over frames), onset/offset metrics,
// thresholds tuned per unit.
#pragma once

#include "pipeline/core/metric_name.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class FrameMetrics final : public MetricStage, public MainMetricName {
public:
    std::string main_metric_name() const override { return "nll"; }  // what <id> is, for people
    static StageSchema schema();
    explicit FrameMetrics(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void begin(const std::string& split) override;
    void accumulate(const Inputs& in, const StepInfo& step) override;
    std::vector<MetricValue> end() override;
    void save_run_state(StageState& state) const override;  // the running sums
    void load_run_state(const StageState& state) override;

    // Counts over a pass, for the model or the baseline.
    struct Sums {
        double nll = 0, tp = 0, fp = 0, fn = 0;
    };

private:
    double threshold_, epsilon_;
    std::string split_;
    Sums model_, baseline_;
    double frames_ = 0;
    bool has_baseline_ = false;
};

}  // namespace rnnflow::stages
