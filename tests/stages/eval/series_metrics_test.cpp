// series_metrics: RMSE / MSE / MAE in original units (the normalisation undone) against hand
// sums, the repeat-the-last-value baseline on the same steps, normalized_mse equal to
// regression_loss's objective, padding and context rows never counted, the forecast CSV and PNG,
// resume of the running sums.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "metric_support.hpp"
#include "stages/eval/series_metrics.hpp"
#include "stages/train/regression_loss.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::SeriesMetrics;

namespace {

struct Metrics {
    StageSchema schema = SeriesMetrics::schema();
    SeriesMetrics stage{default_params(schema)};
    // columns: "v" shift 10 scale 2 (the target), "w" shift 0 scale 5 (a feature).
    explicit Metrics(bool baseline, std::vector<std::string> times = {}) {
        FakePrepare ctx(schema);
        ctx.info("prediction", PortInfo{PortType::tensor, 1, -1, nullptr}).info("target", PortInfo{PortType::tensor, 2, -1, nullptr});
        if (baseline) ctx.info("previous", PortInfo{PortType::tensor, 2, -1, nullptr});
        ctx.info("columns", PortInfo{PortType::text, -1, -1, nullptr});
        for (const std::string split : {"valid", "test"})
            ctx.data("columns", split, TextSplit{{"v\t10\t2", "w\t0\t5"}, "columns"});
        if (!times.empty()) {
            ctx.info("times", PortInfo{PortType::text, -1, -1, nullptr});
            ctx.data("times", "test", TextSplit{times, "times"});
        }
        stage.prepare(ctx);
    }
    void add(const Tensor& x, const Tensor& y, const Tensor* prev, std::vector<std::int64_t> ids = {}) {
        StepInfo step;
        step.phase = Phase::evaluate;
        step.item_ids = ids;
        stage.accumulate(make_inputs(schema, {&x, &y, prev, nullptr, nullptr}), step);
    }
};

// T = 3, N = 2, K = 1, D = 2; column 1 has length 2, so (2, 1) is padding. Normalised values;
// original = 2 v + 10. Errors (normalised): col 0: 0.5, -1, 0; col 1: 2, 0.25.
const Tensor kX = f32_tensor({3, 2, 1}, {1.5f, 2.f, 0.f, 0.25f, 3.f, 99.f});
const Tensor kY = f32_tensor({3, 2, 2}, {1.f, 7.f, 0.f, 7.f, 1.f, 7.f, 0.f, 7.f, 3.f, 7.f, -99.f, 7.f}, {3, 2});
// Baseline errors (normalised): col 0: 0.5 - 1 = -0.5, 1 - 1 = 0, 0 - 3 = -3; col 1: 1, -1.
const Tensor kPrev = f32_tensor({3, 2, 2}, {0.5f, 0.f, 1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 0.f}, {3, 2});

}  // namespace

TEST_CASE("series_metrics: errors in original units, the baseline on the same steps", "[stage][series_metrics]") {
    Metrics m(true);
    m.stage.begin("valid");
    m.add(kX, kY, &kPrev);
    const auto v = m.stage.end();
    const double se = 0.25 + 1 + 0 + 4 + 0.0625, ae = 0.5 + 1 + 0 + 2 + 0.25;  // normalised
    REQUIRE(metric(v, "mse") == Approx(4 * se / 5));  // scale 2: squared errors × 4
    REQUIRE(metric(v, "") == Approx(std::sqrt(4 * se / 5)));
    REQUIRE(metric(v, "mae") == Approx(2 * ae / 5));
    REQUIRE(metric(v, "normalized_mse") == Approx(se / 5));
    REQUIRE(metric(v, "steps") == 5);
    const double bse = 0.25 + 0 + 9 + 1 + 1, bae = 0.5 + 0 + 3 + 1 + 1;
    REQUIRE(metric(v, "baseline_mse") == Approx(4 * bse / 5));
    REQUIRE(metric(v, "baseline_rmse") == Approx(std::sqrt(4 * bse / 5)));
    REQUIRE(metric(v, "baseline_mae") == Approx(2 * bae / 5));
    REQUIRE(metric(v, "skill") == Approx(1 - std::sqrt(se / bse)));
    SECTION("normalized_mse is regression_loss's objective") {
        const StageSchema ls = stages::RegressionLoss::schema();
        stages::RegressionLoss loss(default_params(ls));
        Tensor out;
        Saved saved;
        auto o = make_outputs(ls, {&out});
        loss.forward(make_inputs(ls, {&kX, &kY}), o, saved, StepInfo{});
        REQUIRE(out.data<float>()[0] / out.data<float>()[1] == Approx(metric(v, "normalized_mse")));
    }
    SECTION("no baseline without previous; no step is an error") {
        Metrics n(false);
        n.stage.begin("valid");
        REQUIRE_THROWS_WITH(n.stage.end(), "series_metrics: no step evaluated in split 'valid'; is the split empty?");
        n.add(kX, kY, nullptr);
        for (const auto& x : n.stage.end()) REQUIRE(x.name.rfind("baseline", 0) != 0);
    }
}

TEST_CASE("series_metrics: resume restores the running sums", "[stage][series_metrics]") {
    Metrics a(true);
    a.stage.begin("valid");
    a.add(kX, kY, &kPrev);
    StageState st;
    a.stage.save_run_state(st);
    Metrics b(true);
    b.stage.begin("valid");
    b.stage.load_run_state(st);
    const auto va = a.stage.end(), vb = b.stage.end();
    for (const auto& x : va) REQUIRE(metric(vb, x.name) == x.value);
}

TEST_CASE("series_metrics: context rows not counted; forecasts as CSV in time order and a PNG", "[stage][series_metrics]") {
    // The test span has 2 rows (labels t5, t6); the one column has 3 steps: its first forecasts a
    // context row of the reader and is not counted.
    Metrics m(true, {"t5", "t6"});
    m.stage.begin("test");
    const Tensor x = f32_tensor({3, 1, 1}, {100.f, 1.f, 2.f});
    const Tensor y = f32_tensor({3, 1, 2}, {0.f, 0.f, 1.5f, 0.f, 2.f, 0.f}, {3});
    const Tensor prev = f32_tensor({3, 1, 2}, {0.f, 0.f, 0.f, 0.f, 1.5f, 0.f}, {3});
    m.add(x, y, &prev, {0});
    const auto v = m.stage.end();
    REQUIRE(metric(v, "steps") == 2);
    REQUIRE(metric(v, "mae") == Approx(2 * 0.5 / 2));
    const auto dir = std::filesystem::temp_directory_path() / "rnnflow_series_metrics_test";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    m.stage.write_outputs(OutputContext{dir, "test", 1});
    REQUIRE(read_text(dir / "test.forecast.csv") == "time,v,v.forecast,v.baseline\n"
                                                    "t5,13,12,10\n"
                                                    "t6,14,14,13\n");
    REQUIRE(std::filesystem::file_size(dir / "test.forecast.png") > 1000);
    SECTION("splits not in forecasts write nothing") {
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        m.stage.begin("valid");
        m.add(x, y, &prev, {0});
        m.stage.end();
        m.stage.write_outputs(OutputContext{dir, "valid", 1});
        REQUIRE(std::filesystem::is_empty(dir));
    }
}
