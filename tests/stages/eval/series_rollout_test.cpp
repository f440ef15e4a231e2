// series_rollout: a model of known arithmetic (a fake ModelRunner) rolled out from evenly spread
// origins after the context rows: its own forecasts fed back, each call from zero state over the
// whole sequence; the files in original units with the time labels, the per-step errors against
// repeating the last value; the refusals (features, bad SPLIT:INDEX, data not read, too short).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "metric_support.hpp"
#include "stages/eval/series_rollout.hpp"
#include "support/error_text.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::SeriesRollout;

namespace {

// Forecast of the row after each input row: 0.5 x + 1, per channel.
class HalfPlusOne : public ModelRunner {
public:
    std::vector<std::pair<std::int64_t, bool>> calls;  // (T, reset)
    const Tensor& run(const Tensor& in, bool reset) override {
        calls.emplace_back(in.dim(0), reset);
        out_ = Tensor::f32(in.shape());
        for (std::int64_t i = 0; i < in.numel(); ++i) out_.data<float>()[i] = 0.5f * in.data<float>()[i] + 1.f;
        return out_;
    }

private:
    Tensor out_;
};

// The test split: one item of 10 rows x = 0..9 (normalised), the first 2 of them context.
struct Rollout {
    StageSchema schema = SeriesRollout::schema();
    SeriesRollout stage;
    explicit Rollout(const std::map<std::string, ParamValue>& set, std::int64_t logits = 1) : stage(params_for(schema, set)) {
        FakePrepare ctx(schema);
        ctx.info("logits", PortInfo{PortType::tensor, logits, -1, nullptr});
        ctx.info("frames", PortInfo{PortType::frames, 1, -1, nullptr});
        ctx.info("columns", PortInfo{PortType::text, -1, -1, nullptr});
        ctx.info("times", PortInfo{PortType::text, -1, -1, nullptr});
        FrameSplit fs;
        fs.dim = 1;
        fs.items.push_back({10, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}});
        ctx.data("frames", "test", fs);
        ctx.data("columns", "test", TextSplit{{"x\t10\t2"}, "columns"});
        ctx.data("times", "test", TextSplit{{"t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"}, "times"});
        stage.prepare(ctx);
    }
};

}  // namespace

TEST_CASE("series_rollout: forecasts fed back from spread origins, files in original units", "[stage][series_rollout]") {
    Rollout r({{"horizon", std::int64_t(3)}, {"origins", std::int64_t(2)}});
    HalfPlusOne model;
    const auto dir = std::filesystem::temp_directory_path() / "rnnflow_series_rollout_test";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    SampleRequest req;
    req.output = dir / "out";
    const std::string summary = r.stage.generate(model, req);
    // Origins: rows 2 (the first after the context) and 7 (the last with 3 rows of truth).
    // From 2: 0.5 · 1 + 1 = 1.5, then 1.75, 1.875; from 7: 0.5 · 6 + 1 = 4, then 3, 2.5.
    // Each forecast is one call from zero state over the past and the forecasts so far.
    const std::vector<std::pair<std::int64_t, bool>> calls{{2, true}, {3, true}, {4, true}, {7, true}, {8, true}, {9, true}};
    REQUIRE(model.calls == calls);
    // Original units: 2 x + 10. Baseline: the row before the origin (1, then 6).
    REQUIRE(read_text(dir / "out.csv") == "origin,step,time,x,x.forecast,x.baseline\n"
                                          "t2,1,t2,14,13,12\n"
                                          "t2,2,t3,16,13.5,12\n"
                                          "t2,3,t4,18,13.75,12\n"
                                          "t7,1,t7,24,18,22\n"
                                          "t7,2,t8,26,16,22\n"
                                          "t7,3,t9,28,15,22\n");
    // Step 1: errors 1, 6 (baseline 2, 2); step 3: 4.25, 13 (6, 6).
    const std::string by_step = read_text(dir / "out.by_step.csv");
    REQUIRE(by_step.rfind("step,rmse,baseline_rmse,mae,baseline_mae\n1,", 0) == 0);
    REQUIRE(by_step.find("\n1," + stages::series_number(std::sqrt((1.0 + 36.0) / 2)) + ",2,3.5,2\n") != std::string::npos);
    REQUIRE(by_step.find("\n3," + stages::series_number(std::sqrt((4.25 * 4.25 + 169.0) / 2)) + ",6,") != std::string::npos);
    REQUIRE(std::filesystem::file_size(dir / "out.png") > 1000);
    REQUIRE(summary.find("rollouts of 3 steps from 2 origins: RMSE at step 1 " + stages::series_number(std::sqrt(18.5)) +
                         " (repeat the last value 2)") == 0);
    SECTION("-n overrides the horizon; one origin when the span leaves room for one") {
        HalfPlusOne m2;
        req.length = 8;
        req.output.clear();
        r.stage.generate(m2, req);
        REQUIRE(m2.calls.size() == 8);
        REQUIRE(m2.calls.front().first == 2);
    }
}

TEST_CASE("series_rollout: refusals", "[stage][series_rollout][bad_input]") {
    REQUIRE(error_text([] { Rollout r({}, 2); }) ==
            "series_rollout: the model forecasts 2 of the 1 channels it reads; a rollout feeds its forecasts back, "
            "so it needs all of them (hint: leave out features that are not targets)");
    Rollout r({{"horizon", std::int64_t(3)}});
    HalfPlusOne model;
    SampleRequest req;
    req.prime_from = "test";
    REQUIRE(error_text([&] { r.stage.generate(model, req); }) == "series_rollout: 'test' is not SPLIT:INDEX");
    req.prime_from = "valid:0";
    REQUIRE(error_text([&] { r.stage.generate(model, req); }) == "series_rollout: the run's valid data is not read");
    req.prime_from = "test:1";
    REQUIRE(error_text([&] { r.stage.generate(model, req); }) == "series_rollout: test has 1 item(s); test:1 is past the end");
    req.prime_from = "test:0";
    req.length = 9;
    REQUIRE(error_text([&] { r.stage.generate(model, req); }) ==
            "series_rollout: the span has 8 rows, too few for a rollout of 9 steps after at least one known row");
}
