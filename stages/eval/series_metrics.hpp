// series_metrics: how well a model forecasts a numeric series, in the series' ORIGINAL units
// (the series reader's normalisation undone), next to the naive baseline that repeats the last
// known value, on the same steps of the same pass; and the forecasts themselves as CSV and PNG.
//
//   prediction  tensor f32 (T, N, K) + lengths: the model's forecast of the K target channels
//   target      tensor f32 (T, N, D) + lengths, D >= K: the frames to forecast; the first K
//               channels are the targets; a step (t, n) counts when t < length(n) of `target`
//   previous    tensor f32 (T, N, D), optional: the frame before each target (frame_batches.input,
//               the last known values); the baseline forecasts its first K channels again
//   columns     text, optional: the series reader's normalisation (series.columns), one line per
//               channel "name\tshift\tscale"; original = value · scale + shift. Unconnected: the
//               values are taken as they are (names y0, y1, ...)
//   times       text, optional: the time label of each row of the split's span (series.times);
//               a column with more steps than the span has rows starts with the reader's context
//               rows (series context): its first steps, which forecast those, are not counted
// Metrics over a pass (every counted step and target channel of the split, original units):
//   ""              rmse = sqrt(mse) (main, lower is better)
//   mse, mae        mean of (forecast - truth)², of |forecast - truth|
//   normalized_mse  mse in the frames' (normalised) units: regression_loss kind mse's objective
//   baseline_rmse, baseline_mse, baseline_mae (with `previous`): the same for repeating the last
//                   known value; skill = 1 - rmse / baseline_rmse (above 0: better than the baseline)
//   steps           counted steps (t, n)
// Forecasts (write_outputs, splits in `forecasts`, test by default): <split>.forecast.csv with a
// header "time,<name>,<name>.forecast,<name>.baseline,..." (truth, forecast and the baseline's per
// target, original units), one line per forecast step in time order; <split>.forecast.png
// (<split>.forecast.<name>.png per target when K > 1): forecast against truth (PLplot through
// plot.hpp) over the split's first item. A split read as one item (the series reader's valid and
// test spans) has one line per row it forecasts, labelled by `times` (its last L rows, L the
// forecast steps); other splits are labelled item:step.
// Not supported: autoregressive rollouts (a metric cannot run the model: series_rollout does),
// per-channel metrics (K > 1 averages the channels in original units, so channels of different
// units weigh by their units), MAPE.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/core/metric_name.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

class SeriesMetrics final : public MetricStage, public MainMetricName {
public:
    std::string main_metric_name() const override { return "rmse"; }
    static StageSchema schema();
    explicit SeriesMetrics(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void begin(const std::string& split) override;
    void accumulate(const Inputs& in, const StepInfo& step) override;
    std::vector<MetricValue> end() override;
    void write_outputs(const OutputContext& ctx) override;
    void save_run_state(StageState& state) const override;  // the running sums
    void load_run_state(const StageState& state) override;

    // Error sums over a pass, in original units (and the model's in normalised units).
    struct Sums {
        double se = 0, ae = 0, se_normalized = 0;
    };

private:
    void write_csv(const OutputContext& ctx, const std::vector<std::pair<std::int64_t, std::vector<double>>>& items) const;
    void write_plots(const OutputContext& ctx, std::int64_t item, const std::vector<double>& rows) const;
    std::string time_label(std::int64_t item, std::int64_t step, std::int64_t steps) const;

    std::vector<std::string> forecast_splits_;
    std::vector<std::string> names_;
    std::vector<double> shift_, scale_;
    std::map<std::string, std::shared_ptr<const TextSplit>> times_;
    std::string split_;
    Sums model_, baseline_;
    double steps_ = 0, values_ = 0;  // counted steps, and steps · K
    bool has_baseline_ = false, keep_ = false;
    std::int64_t K_ = 0;
    // Forecasts of the current pass per item: per step, K truths, K forecasts, K baselines.
    std::map<std::int64_t, std::vector<double>> forecasts_;
};

}  // namespace rnnflow::stages
