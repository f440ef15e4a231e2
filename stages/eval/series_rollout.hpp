// series_rollout: autoregressive multi-step forecasts of a numeric series (`rnnflow generate`):
// from each of several origins in a span of the run's data, the model reads the true rows before
// the origin and then runs on its own forecasts for `horizon` steps; the rollouts are compared
// with the truth and with repeating the value before the origin, step by step.
//
//   logits   tensor f32 (T, N, K) from the model (the forecasts, e.g. pred), given frames
//            (T, N, D) by the ModelRunner; K must equal D: a model that predicts every channel
//            it reads (no input-only features) can be fed its own forecasts
//   frames   frames, optional: the series reader's frames (series.frames), normalised (rows, D)
//   columns  text, optional: the normalisation (series.columns), for original units and names
//   times    text, optional: row labels of each split's span (series.times); an item longer
//            than its split's times starts with context rows, where no origin is placed
//
// The model must have been trained for one step ahead (frame_batches horizon 1, predict_first:
// false): at origin o it reads rows 0..o-1 of the item from zero state, its last output is the
// forecast of row o; each forecast is appended to the input as the next row and the model reads
// the whole sequence again from zero state (no carry_state needed; horizon · o steps per origin),
// for `horizon` forecasts in all. Origins: `origins` rows spread evenly over the
// item's span rows (after its context, at least one row in), each leaving `horizon` rows of truth.
// Baseline: the value of row o - 1 repeated for every step.
// Files (SampleRequest::output OUT; `rnnflow generate RUN_DIR --prime-from test:0 --out OUT`):
//   OUT.csv          origin,step,time,<name>,<name>.forecast,<name>.baseline,... (original units)
//   OUT.by_step.csv  step,rmse,baseline_rmse,mae,baseline_mae: over origins and targets, per step
//   OUT.png          the span's truth and every rollout (PLplot through plot.hpp), first target
// generate() returns a one-line summary: RMSE at step 1, at the last step, and over all steps,
// each with the baseline's. SampleRequest: prime_from ("SPLIT:INDEX", the parameter by default),
// length (the horizon).
// Not supported: input-only features (they have no forecast to feed back), sampling from a
// predictive distribution (the forecasts are point forecasts), rollouts from a CSV file not in the
// run's data.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"
#include "stages/data/series.hpp"

namespace rnnflow::stages {

class SeriesRollout final : public SamplerStage {
public:
    static StageSchema schema();
    explicit SeriesRollout(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::string generate(ModelRunner& model, const SampleRequest& req) override;

    // The rollouts of one item: per origin, per step, per target (normalised units).
    struct Rollouts {
        std::vector<std::int64_t> origins;  // rows of the item
        std::int64_t horizon = 0, K = 0;
        std::vector<float> forecast;         // (origins, horizon, K)
    };
    // Runs the model from `origins` over `item` (rows, D).
    static Rollouts roll(ModelRunner& model, const FrameSplit::Item& item, std::int64_t D,
                         const std::vector<std::int64_t>& origins, std::int64_t horizon);

private:
    struct Span {
        const FrameSplit::Item* item;
        std::int64_t context;                // rows of the item before the split's span
        std::vector<std::string> labels;     // per row of the item ("" for context rows)
    };
    Span span(const std::string& from) const;
    std::string write_files(const Rollouts& r, const Span& s, const std::filesystem::path& out) const;

    std::int64_t horizon_, origins_;
    std::string prime_from_;
    SeriesScaling scaling_;
    std::map<std::string, std::shared_ptr<const FrameSplit>> frames_;
    std::map<std::string, std::shared_ptr<const TextSplit>> times_;
    std::int64_t D_ = -1;
};

}  // namespace rnnflow::stages
