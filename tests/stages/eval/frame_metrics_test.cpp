// frame_metrics: NLL per time step equal to binary_cross_entropy's sum / count, frame accuracy,
// precision, recall and F1 from hand-counted TP / FP / FN, the repeat-the-last-frame baseline with
// its smoothed NLL, padding never counted, resume of the running sums.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>

#include "stages/eval/frame_metrics.hpp"
#include "stages/train/binary_cross_entropy.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::FrameMetrics;

namespace {

Tensor make(Shape shape, std::vector<float> v, std::vector<std::int32_t> lengths = {}) {
    Tensor t = Tensor::f32(std::move(shape));
    if (static_cast<std::int64_t>(v.size()) != t.numel()) throw std::logic_error("frame_metrics_test: wrong value count");
    std::copy(v.begin(), v.end(), t.data<float>());
    t.lengths = std::move(lengths);
    return t;
}

double metric(const std::vector<MetricValue>& m, const std::string& name) {
    for (const auto& v : m)
        if (v.name == name) return v.value;
    FAIL("no metric " << name);
    return 0;
}

struct Metrics {
    StageSchema schema = FrameMetrics::schema();
    FrameMetrics stage;
    explicit Metrics(bool baseline, const std::map<std::string, ParamValue>& set = {}) : stage(params_for(schema, set)) {
        FakePrepare ctx(schema);
        ctx.info("logits", PortInfo{PortType::tensor, 3, -1, nullptr}).info("target", PortInfo{PortType::tensor, 3, -1, nullptr});
        if (baseline) ctx.info("previous", PortInfo{PortType::tensor, 3, -1, nullptr});
        stage.prepare(ctx);
        stage.begin("valid");
    }
    void add(const Tensor& x, const Tensor& y, const Tensor* prev = nullptr) {
        stage.accumulate(make_inputs(schema, {&x, &y, prev}), StepInfo{});
    }
};

// T = 2, N = 2, P = 3; column 1 has length 1, so (1, 1) is padding.
//   (0,0) logits ( 2, -1,  0) target (1, 0, 1) previous (0, 0, 0): model on 1 0 0 → TP 1, FN 1
//   (0,1) logits (-3,  4,  1) target (0, 1, 0) previous (0, 1, 1): model 0 1 1 → TP 1, FP 1
//   (1,0) logits ( 5,  5, -5) target (1, 0, 0) previous (1, 0, 1): model 1 1 0 → TP 1, FP 1
//   (1,1) padding (logits 9, target 1)
// Model: TP 3, FP 2, FN 1. Baseline (the previous frame): (0,0) FN 2; (0,1) TP 1, FP 1;
// (1,0) TP 1, FP 1 → TP 2, FP 2, FN 2.
const Tensor kLogits = make({2, 2, 3}, {2, -1, 0, -3, 4, 1, 5, 5, -5, 9, 9, 9});
const Tensor kTarget = make({2, 2, 3}, {1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1}, {2, 1});
const Tensor kPrevious = make({2, 2, 3}, {0, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0}, {2, 1});

}  // namespace

TEST_CASE("frame_metrics: NLL, accuracy, precision, recall and F1 against hand counts", "[stage][frame_metrics]") {
    Metrics m(false);
    m.add(kLogits, kTarget);
    const auto v = m.stage.end();
    double nll = 0;
    for (int i = 0; i < 9; ++i) nll += stages::binary_cross_entropy_unit(kLogits.data<float>()[i], kTarget.data<float>()[i]);
    REQUIRE(v.at(0).name.empty());
    REQUIRE(!v.at(0).higher_is_better);
    REQUIRE(v.at(0).value == Approx(nll / 3));
    REQUIRE(metric(v, "accuracy") == Approx(3.0 / 6));     // TP / (TP + FP + FN)
    REQUIRE(metric(v, "precision") == Approx(3.0 / 5));
    REQUIRE(metric(v, "recall") == Approx(3.0 / 4));
    REQUIRE(metric(v, "f1") == Approx(6.0 / 9));
    REQUIRE(metric(v, "frames") == 3);
    for (const auto& x : v) REQUIRE(x.name.rfind("baseline", 0) != 0);  // no previous: no baseline
}

TEST_CASE("frame_metrics: the NLL is binary_cross_entropy's sum / count", "[stage][frame_metrics]") {
    const StageSchema s = stages::BinaryCrossEntropy::schema();
    stages::BinaryCrossEntropy bce(default_params(s));
    Tensor loss;
    Saved saved;
    auto out = make_outputs(s, {&loss});
    bce.forward(make_inputs(s, {&kLogits, &kTarget}), out, saved, StepInfo{});
    Metrics m(true);
    m.add(kLogits, kTarget, &kPrevious);
    REQUIRE(m.stage.end().at(0).value == Approx(loss.data<float>()[0] / loss.data<float>()[1]).epsilon(1e-6));
}

TEST_CASE("frame_metrics: the baseline repeats the previous frame with probabilities 1 - ε and ε",
          "[stage][frame_metrics]") {
    Metrics m(true, {{"baseline_epsilon", 0.1}});
    m.add(kLogits, kTarget, &kPrevious);
    const auto v = m.stage.end();
    REQUIRE(metric(v, "baseline_accuracy") == Approx(2.0 / 6));
    REQUIRE(metric(v, "baseline_f1") == Approx(4.0 / 8));
    // Units whose target differs from the previous frame: (0,0): 2, (0,1): 1, (1,0): 1, of 9.
    const double want = -(4 * std::log(0.1) + 5 * std::log(0.9)) / 3;
    REQUIRE(metric(v, "baseline_nll") == Approx(want));
}

TEST_CASE("frame_metrics: sums survive a resume, and an empty pass is an error", "[stage][frame_metrics]") {
    Metrics a(true);
    a.add(kLogits, kTarget, &kPrevious);
    StageState st;
    a.stage.save_run_state(st);
    Metrics b(true);
    b.stage.load_run_state(st);
    a.add(kLogits, kTarget, &kPrevious);
    b.add(kLogits, kTarget, &kPrevious);
    const auto va = a.stage.end(), vb = b.stage.end();
    for (std::size_t i = 0; i < va.size(); ++i) REQUIRE(va[i].value == vb[i].value);
    Metrics c(false);
    REQUIRE_THROWS_WITH(c.stage.end(), "frame_metrics: no frame evaluated in split 'valid'; is the split empty?");
}
