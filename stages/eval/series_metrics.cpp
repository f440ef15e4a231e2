#include "series_metrics.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "pipeline/core/plot.hpp"
#include "stages/data/series.hpp"

namespace rnnflow::stages {

StageSchema SeriesMetrics::schema() {
    return StageSchema("series_metrics",
                       "RMSE, MSE and MAE of series forecasts in original units, next to repeating the last value; "
                       "forecast CSV and plot",
                       Role::metric)
        .input("prediction", PortType::tensor, "forecasts (T, N, K) of the first K channels of target")
        .input("target", PortType::tensor, "target frames (T, N, D >= K) + lengths")
        .optional_input("previous", PortType::tensor,
                        "the frame before each target (frame_batches.input): the baseline repeats it")
        .optional_input("columns", PortType::text, "the normalisation (series.columns): metrics in original units")
        .optional_input("times", PortType::text, "row labels of each split (series.times), for the forecast CSV")
        .param_list("forecasts", {"test"}, OneOf{"train", "valid", "test"},
                    "splits whose forecasts are written (<split>.forecast.csv and .png) after evaluation passes")
        .details("rmse (main, lower is better), mse and mae over every counted step and target channel, in "
                 "the original units (the series reader's normalisation undone); normalized_mse in the "
                 "frames' units (regression_loss kind mse's objective); with `previous`, baseline_rmse, "
                 "baseline_mse, baseline_mae for repeating the last known value on the same steps, and "
                 "skill = 1 - rmse / baseline_rmse. Also: steps.");
}

SeriesMetrics::SeriesMetrics(const Params& p) : forecast_splits_(p.get_list("forecasts")) {}

void SeriesMetrics::prepare(PrepareContext& ctx) {
    has_baseline_ = ctx.connected("previous");
    const std::int64_t k = ctx.input_info("prediction").channels, d = ctx.input_info("target").channels;
    RNNFLOW_CHECK(k <= 0 || d <= 0 || k <= d, "series_metrics: 'prediction' has ", k, " channels but 'target' only ", d,
                  " (hint: out_dim: series.targets)");
    names_.clear();
    times_.clear();
    for (const auto& split : ctx.splits()) {
        if (names_.empty() && ctx.connected("columns") && ctx.has_input("columns", split)) {
            const TextSplit& cols = ctx.input<TextSplit>("columns", split);
            const SeriesScaling s = SeriesScaling::parse(cols.items, cols.origin);
            names_ = s.names;
            shift_ = s.shift;
            scale_ = s.scale;
            RNNFLOW_CHECK(k <= 0 || k <= std::ssize(names_), "series_metrics: 'prediction' has ", k,
                          " channels but the normalisation names ", names_.size());
        }
        if (ctx.connected("times") && ctx.has_input("times", split))
            times_[split] = std::any_cast<const std::shared_ptr<const TextSplit>&>(ctx.input_any("times", split));
    }
}

void SeriesMetrics::begin(const std::string& split) {
    split_ = split;
    model_ = Sums{};
    baseline_ = Sums{};
    steps_ = values_ = 0;
    forecasts_.clear();
    keep_ = std::find(forecast_splits_.begin(), forecast_splits_.end(), split) != forecast_splits_.end();
}

void SeriesMetrics::accumulate(const Inputs& in, const StepInfo& step) {
    const Tensor& x = in.at("prediction");  // (T, N, K)
    const Tensor& y = in.at("target");      // (T, N, D)
    if (y.numel() == 0) return;              // a prediction run: nothing to score
    RNNFLOW_CHECK(x.rank() == 3 && y.rank() == 3 && x.dim(0) == y.dim(0) && x.dim(1) == y.dim(1) && x.dim(2) <= y.dim(2),
                  "series_metrics: 'prediction' ", shape_str(x.shape()), " and 'target' ", shape_str(y.shape()),
                  " must be (T, N, K) and (T, N, D) with K <= D");
    const Tensor* prev = has_baseline_ && in.has("previous") ? &in.at("previous") : nullptr;
    RNNFLOW_CHECK(!prev || prev->shape() == y.shape(), "series_metrics: 'previous' ", shape_str(prev->shape()),
                  " must be the shape of 'target' ", shape_str(y.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1), K = x.dim(2), D = y.dim(2);
    K_ = K;
    while (std::ssize(names_) < K) {  // no normalisation connected: values as they are
        names_.push_back(std::string("y") + std::to_string(names_.size()));
        shift_.push_back(0.0);
        scale_.push_back(1.0);
    }
    const float* xd = x.data<float>();
    const float* yd = y.data<float>();
    const float* pd = prev ? prev->data<float>() : nullptr;
    const auto times = times_.find(split_);
    const std::int64_t rows = times == times_.end() ? -1 : std::ssize(times->second->items);
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t item = static_cast<std::size_t>(n) < step.item_ids.size() ? step.item_ids[static_cast<std::size_t>(n)] : n;
        std::vector<double>* keep = keep_ ? &forecasts_[item] : nullptr;
        const std::int64_t L = std::min(T, y.length(n));
        // More steps than the span has rows: the first ones forecast the reader's context rows.
        for (std::int64_t t = rows >= 0 ? std::max<std::int64_t>(0, L - rows) : 0; t < L; ++t) {
            steps_ += 1;
            values_ += static_cast<double>(K);
            for (std::int64_t k = 0; k < K; ++k) {
                const double sc = scale_[static_cast<std::size_t>(k)], sh = shift_[static_cast<std::size_t>(k)];
                const double xv = xd[(t * N + n) * K + k], yv = yd[(t * N + n) * D + k];
                const double e = (xv - yv) * sc;
                model_.se += e * e;
                model_.ae += std::abs(e);
                model_.se_normalized += (xv - yv) * (xv - yv);
                const double bv = pd ? pd[(t * N + n) * D + k] : std::nan("");
                if (pd) {
                    baseline_.se += (bv - yv) * sc * (bv - yv) * sc;
                    baseline_.ae += std::abs((bv - yv) * sc);
                }
                if (keep) keep->insert(keep->end(), {yv * sc + sh, xv * sc + sh, bv * sc + sh});
            }
        }
    }
}

std::vector<MetricValue> SeriesMetrics::end() {
    RNNFLOW_CHECK(steps_ > 0, "series_metrics: no step evaluated in split '", split_, "'; is the split empty?");
    const double mse = model_.se / values_;
    std::vector<MetricValue> out{{"", std::sqrt(mse), false},
                                 {"mse", mse, false},
                                 {"mae", model_.ae / values_, false},
                                 {"normalized_mse", model_.se_normalized / values_, false},
                                 {"steps", steps_, true}};
    if (has_baseline_) {
        const double bmse = baseline_.se / values_;
        out.push_back({"baseline_rmse", std::sqrt(bmse), false});
        out.push_back({"baseline_mse", bmse, false});
        out.push_back({"baseline_mae", baseline_.ae / values_, false});
        out.push_back({"skill", bmse > 0 ? 1.0 - std::sqrt(mse / bmse) : 0.0, true});
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Forecast files

namespace {

// A column name as part of a file name: letters, digits, '-', '.', '_' kept, the rest '_'.
std::string file_part(const std::string& s) {
    std::string out = s;
    for (char& c : out)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') c = '_';
    return out;
}

}  // namespace

// The label of forecast step `step` of `item` (of `steps`): the time label of its row when the
// split is one item labelled by `times` (the forecasts are its last `steps` rows), else item:step.
std::string SeriesMetrics::time_label(std::int64_t item, std::int64_t step, std::int64_t steps) const {
    const auto it = times_.find(split_);
    if (it != times_.end() && forecasts_.size() == 1 && item == 0) {
        const auto& labels = it->second->items;
        const std::int64_t row = std::ssize(labels) - steps + step;
        if (row >= 0 && steps <= std::ssize(labels)) return labels[static_cast<std::size_t>(row)];
    }
    return detail::concat(item, ":", step);
}

void SeriesMetrics::write_csv(const OutputContext& ctx,
                              const std::vector<std::pair<std::int64_t, std::vector<double>>>& items) const {
    std::string text = "time";
    for (std::int64_t k = 0; k < K_; ++k) {
        const std::string& name = names_[static_cast<std::size_t>(k)];
        for (const char* suffix : {"", ".forecast", ".baseline"}) {
            text += ',';
            text += csv_field(name + suffix);
        }
    }
    text += "\n";
    for (const auto& [item, rows] : items) {
        const std::int64_t steps = std::ssize(rows) / (3 * K_);
        for (std::int64_t s = 0; s < steps; ++s) {
            text += csv_field(time_label(item, s, steps));
            for (std::int64_t j = 0; j < 3 * K_; ++j) {
                const double v = rows[static_cast<std::size_t>(s * 3 * K_ + j)];
                text += ',';
                if (std::isfinite(v)) text += series_number(v);
            }
            text += "\n";
        }
    }
    write_file_atomic(ctx.dir / (ctx.split + ".forecast.csv"), text);
}

void SeriesMetrics::write_plots(const OutputContext& ctx, std::int64_t item, const std::vector<double>& rows) const {
    const std::int64_t steps = std::ssize(rows) / (3 * K_);
    const auto it = times_.find(split_);
    const std::int64_t first = it != times_.end() && forecasts_.size() == 1 ? std::ssize(it->second->items) - steps : 0;
    for (std::int64_t k = 0; k < K_; ++k) {
        const std::string& name = names_[static_cast<std::size_t>(k)];
        plot::LineChart chart;
        chart.title = detail::concat(ctx.split, " forecast of ", name, forecasts_.size() > 1 ? detail::concat(" (item ", item, ")") : "");
        chart.x_label = forecasts_.size() == 1 ? "row of the span" : "step";
        chart.y_label = name;
        chart.series = {{"truth", {}, {}}, {"forecast", {}, {}}};
        for (std::int64_t s = 0; s < steps; ++s)
            for (int j = 0; j < 2; ++j) {
                chart.series[static_cast<std::size_t>(j)].x.push_back(static_cast<double>(first + s));
                chart.series[static_cast<std::size_t>(j)].y.push_back(rows[static_cast<std::size_t>((s * 3 + j) * K_ + k)]);
            }
        const std::string stem = K_ == 1 ? ctx.split + ".forecast" : ctx.split + ".forecast." + file_part(name);
        plot::write_png(chart, ctx.dir / (stem + ".png"));
    }
}

void SeriesMetrics::write_outputs(const OutputContext& ctx) {
    if (!keep_ || forecasts_.empty() || K_ == 0) return;
    std::vector<std::pair<std::int64_t, std::vector<double>>> items(forecasts_.begin(), forecasts_.end());
    write_csv(ctx, items);
    write_plots(ctx, items.front().first, items.front().second);
}

void SeriesMetrics::save_run_state(StageState& state) const {
    state.put_text("split", split_);
    state.put_number("steps", steps_);
    state.put_number("values", values_);
    for (const auto& [name, s] : {std::pair{"model", &model_}, std::pair{"baseline", &baseline_}}) {
        const std::string k = name;
        state.put_number(k + ".se", s->se);
        state.put_number(k + ".ae", s->ae);
        state.put_number(k + ".se_normalized", s->se_normalized);
    }
}

void SeriesMetrics::load_run_state(const StageState& state) {
    if (const std::string* s = state.text("split")) split_ = *s;
    steps_ = state.number("steps", 0);
    values_ = state.number("values", 0);
    for (const auto& [name, s] : {std::pair{"model", &model_}, std::pair{"baseline", &baseline_}}) {
        const std::string k = name;
        s->se = state.number(k + ".se", 0);
        s->ae = state.number(k + ".ae", 0);
        s->se_normalized = state.number(k + ".se_normalized", 0);
    }
}

}  // namespace rnnflow::stages
