#include "series_rollout.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "pipeline/core/plot.hpp"

namespace rnnflow::stages {

StageSchema SeriesRollout::schema() {
    return StageSchema("series_rollout",
                       "autoregressive multi-step forecasts of a series from several origins (rnnflow generate), "
                       "against the truth and repeating the last value",
                       Role::sampler)
        .input("logits", PortType::tensor, "the model's forecasts (T, N, K) of frames (T, N, D), K = D (e.g. pred)")
        .optional_input("frames", PortType::frames, "the series' normalised frames to roll out over (series.frames)")
        .optional_input("columns", PortType::text, "the normalisation (series.columns): files in original units")
        .optional_input("times", PortType::text, "row labels of each split's span (series.times)")
        .param_int("horizon", 20, Range{1.0, 1e6}, "forecasts per rollout (generate -n overrides)")
        .param_int("origins", 10, Range{1.0, 1e5}, "rollout origins, spread evenly over the span")
        .param_string("prime_from", "test:0", "the item to roll out over, SPLIT:INDEX (generate --prime-from overrides)")
        .details("At each origin o the model reads the item's rows 0..o-1 from zero state, then its own "
                 "forecasts, for `horizon` forecasts; needs a one-step model (frame_batches horizon 1, "
                 "predict_first: false) that predicts every channel it reads. Writes OUT.csv (every "
                 "forecast with truth and baseline), OUT.by_step.csv (RMSE and MAE per step ahead, with "
                 "the baseline repeating row o - 1) and OUT.png; returns the RMSE at the first and last "
                 "step and over all steps.");
}

SeriesRollout::SeriesRollout(const Params& p)
    : horizon_(p.get_int("horizon")), origins_(p.get_int("origins")), prime_from_(p.get_string("prime_from")) {}

void SeriesRollout::prepare(PrepareContext& ctx) {
    const std::int64_t k = ctx.input_info("logits").channels;
    frames_.clear();
    times_.clear();
    for (const auto& split : ctx.splits()) {
        if (ctx.connected("frames") && ctx.has_input("frames", split))
            frames_[split] = std::any_cast<const std::shared_ptr<const FrameSplit>&>(ctx.input_any("frames", split));
        if (ctx.connected("times") && ctx.has_input("times", split))
            times_[split] = std::any_cast<const std::shared_ptr<const TextSplit>&>(ctx.input_any("times", split));
        if (scaling_.names.empty() && ctx.connected("columns") && ctx.has_input("columns", split)) {
            const TextSplit& cols = ctx.input<TextSplit>("columns", split);
            scaling_ = SeriesScaling::parse(cols.items, cols.origin);
        }
    }
    D_ = ctx.connected("frames") ? ctx.input_info("frames").channels : -1;
    RNNFLOW_CHECK(k <= 0 || D_ <= 0 || k == D_, "series_rollout: the model forecasts ", k, " of the ", D_,
                  " channels it reads; a rollout feeds its forecasts back, so it needs all of them "
                  "(hint: leave out features that are not targets)");
}

// The item named by `from` ("SPLIT:INDEX") with its labels.
SeriesRollout::Span SeriesRollout::span(const std::string& from) const {
    const auto colon = from.find(':');
    const std::string split = from.substr(0, colon);
    std::int64_t index = -1;
    if (colon != std::string::npos && colon + 1 < from.size() && from.size() - colon <= 10 &&
        std::all_of(from.begin() + static_cast<std::ptrdiff_t>(colon) + 1, from.end(), [](char c) { return c >= '0' && c <= '9'; }))
        index = std::stoll(from.substr(colon + 1));
    if (index < 0 || (split != "train" && split != "valid" && split != "test"))
        throw Error("series_rollout: '" + from + "' is not SPLIT:INDEX", "e.g. --prime-from test:0");
    const auto it = frames_.find(split);
    if (it == frames_.end())
        throw Error("series_rollout: the run's " + split + " data is not read",
                    "give --prime-from " + from + " to `rnnflow generate` (it reads the data again), and "
                    "connect frames: series.frames");
    const auto& items = it->second->items;
    RNNFLOW_CHECK(index < std::ssize(items), "series_rollout: ", split, " has ", items.size(), " item(s); ", from,
                  " is past the end");
    Span s{&items[static_cast<std::size_t>(index)], 0, {}};
    const std::int64_t rows = s.item->rows;
    const auto t = times_.find(split);
    const bool labelled = t != times_.end() && items.size() == 1 && std::ssize(t->second->items) <= rows;
    s.context = labelled ? rows - std::ssize(t->second->items) : 0;
    for (std::int64_t r = 0; r < rows; ++r)
        s.labels.push_back(!labelled ? std::to_string(r) : r < s.context ? std::string()
                                                                         : t->second->items[static_cast<std::size_t>(r - s.context)]);
    return s;
}

// Each forecast is one call from zero state over the whole known past and the forecasts so far
// (o + h rows), so no recurrent stage needs carry_state; O(horizon · o) steps per origin.
SeriesRollout::Rollouts SeriesRollout::roll(ModelRunner& model, const FrameSplit::Item& item, std::int64_t D,
                                            const std::vector<std::int64_t>& origins, std::int64_t horizon) {
    Rollouts r{origins, horizon, D, {}};
    r.forecast.reserve(static_cast<std::size_t>(std::ssize(origins) * horizon * D));
    const auto row_bytes = static_cast<std::size_t>(D) * sizeof(float);
    for (std::int64_t o : origins) {
        std::vector<float> seq(item.values.begin(), item.values.begin() + o * D);  // rows 0..o-1, the known past
        for (std::int64_t h = 0; h < horizon; ++h) {
            const std::int64_t T = o + h;
            Tensor in = Tensor::f32({T, 1, D});
            std::memcpy(in.data<float>(), seq.data(), static_cast<std::size_t>(T) * row_bytes);
            in.lengths = {static_cast<std::int32_t>(T)};
            const Tensor& out = model.run(in, true);  // (T, 1, K)
            RNNFLOW_CHECK(out.rank() == 3 && out.dim(0) == T && out.dim(2) == D, "series_rollout: the model gives ",
                          shape_str(out.shape()), " for frames ", shape_str(in.shape()), "; it must forecast every channel");
            const float* f = out.data<float>() + (T - 1) * D;  // the forecast of row o + h
            r.forecast.insert(r.forecast.end(), f, f + D);
            seq.insert(seq.end(), f, f + D);                    // fed back as the next input
        }
    }
    return r;
}

std::string SeriesRollout::generate(ModelRunner& model, const SampleRequest& req) {
    const Span s = span(req.prime_from.empty() ? prime_from_ : req.prime_from);
    const std::int64_t H = req.length > 0 ? req.length : horizon_, rows = s.item->rows;
    const std::int64_t first = std::max<std::int64_t>(1, s.context), last = rows - H;  // origins' range
    if (last < first)
        throw Error(detail::concat("series_rollout: the span has ", rows - s.context, " rows, too few for a rollout of ", H,
                                   " steps after at least one known row"),
                    "lower the horizon (-n)");
    std::vector<std::int64_t> origins;
    const std::int64_t n = std::min(origins_, last - first + 1);
    for (std::int64_t i = 0; i < n; ++i)
        origins.push_back(first + (n == 1 ? 0 : i * (last - first) / (n - 1)));
    const std::int64_t D = static_cast<std::int64_t>(s.item->values.size()) / rows;
    const Rollouts r = roll(model, *s.item, D, origins, H);
    return write_files(r, s, req.output);
}

std::string SeriesRollout::write_files(const Rollouts& r, const Span& s, const std::filesystem::path& out) const {
    const std::int64_t K = r.K, H = r.horizon, O = std::ssize(r.origins);
    const float* x = s.item->values.data();  // (rows, K)
    auto orig = [&](std::int64_t k, double v) {
        return scaling_.names.empty() ? v : v * scaling_.scale[static_cast<std::size_t>(k)] + scaling_.shift[static_cast<std::size_t>(k)];
    };
    auto name = [&](std::int64_t k) { return scaling_.names.empty() ? std::string("y") + std::to_string(k) : scaling_.names[static_cast<std::size_t>(k)]; };
    std::string csv = "origin,step,time";
    for (std::int64_t k = 0; k < K; ++k)
        for (const char* suffix : {"", ".forecast", ".baseline"}) csv += std::string(",") + csv_field(name(k) + suffix);
    csv += "\n";
    std::vector<double> se(static_cast<std::size_t>(H)), bse(se), ae(se), bae(se);
    std::vector<plot::Series> lines{{"truth", {}, {}}};
    for (std::int64_t row = s.context; row < s.item->rows; ++row) {
        lines[0].x.push_back(static_cast<double>(row - s.context));
        lines[0].y.push_back(orig(0, x[row * K]));
    }
    for (std::int64_t i = 0; i < O; ++i) {
        const std::int64_t o = r.origins[static_cast<std::size_t>(i)];
        lines.push_back({std::string("from ") + s.labels[static_cast<std::size_t>(o)], {}, {}});
        for (std::int64_t h = 0; h < H; ++h) {
            csv += csv_field(s.labels[static_cast<std::size_t>(o)]) + std::string(",") + std::to_string(h + 1) + "," +
                   csv_field(s.labels[static_cast<std::size_t>(o + h)]);
            for (std::int64_t k = 0; k < K; ++k) {
                const double y = orig(k, x[(o + h) * K + k]), f = orig(k, r.forecast[static_cast<std::size_t>((i * H + h) * K + k)]),
                             b = orig(k, x[(o - 1) * K + k]);
                for (const double v : {y, f, b}) {
                    csv += ',';
                    csv += series_number(v);
                }
                se[static_cast<std::size_t>(h)] += (f - y) * (f - y);
                bse[static_cast<std::size_t>(h)] += (b - y) * (b - y);
                ae[static_cast<std::size_t>(h)] += std::abs(f - y);
                bae[static_cast<std::size_t>(h)] += std::abs(b - y);
                if (k == 0) {
                    lines.back().x.push_back(static_cast<double>(o + h - s.context));
                    lines.back().y.push_back(f);
                }
            }
            csv += "\n";
        }
    }
    std::string by_step = "step,rmse,baseline_rmse,mae,baseline_mae\n";
    double all = 0, ball = 0;
    const double per = static_cast<double>(O * K);
    for (std::int64_t h = 0; h < H; ++h) {
        const auto j = static_cast<std::size_t>(h);
        by_step += std::to_string(h + 1) + std::string(",") + series_number(std::sqrt(se[j] / per)) + "," +
                   series_number(std::sqrt(bse[j] / per)) + "," + series_number(ae[j] / per) + "," + series_number(bae[j] / per) + "\n";
        all += se[j];
        ball += bse[j];
    }
    if (!out.empty()) {
        write_file_atomic(out.string() + ".csv", csv);
        write_file_atomic(out.string() + ".by_step.csv", by_step);
        plot::LineChart chart{detail::concat("rollouts of ", H, " steps: ", name(0)), "row of the span", name(0), lines, false};
        plot::write_png(chart, out.string() + ".png");
    }
    const auto rmse = [&](const std::vector<double>& v, std::int64_t h) { return series_number(std::sqrt(v[static_cast<std::size_t>(h)] / per)); };
    return detail::concat("rollouts of ", H, " steps from ", O, " origins: RMSE at step 1 ", rmse(se, 0), " (repeat the last value ",
                          rmse(bse, 0), "), at step ", H, " ", rmse(se, H - 1), " (", rmse(bse, H - 1), "), over all steps ",
                          series_number(std::sqrt(all / (per * static_cast<double>(H)))), " (",
                          series_number(std::sqrt(ball / (per * static_cast<double>(H)))), ")",
                          out.empty() ? std::string() : std::string("; ") + out.string() + ".csv, .by_step.csv, .png");
}

}  // namespace rnnflow::stages
