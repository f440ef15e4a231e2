#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include "../data/cls_support.hpp"
#include "metric_support.hpp"
#include "stages/eval/classification_metrics.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::ClassificationMetrics;

namespace {

std::shared_ptr<const rnnflow::Vocabulary> labels_vocab(std::vector<std::string> names) {
    std::vector<std::int64_t> counts(names.size(), 1);
    return std::make_shared<const rnnflow::Vocabulary>(std::move(names), std::move(counts),
                                                       std::vector<std::string>{}, TokenizerSpec{});
}

// Logits (T, N, K) scoring `pred[t][n]` highest; labels (T, N) with lengths.
struct Step {
    Tensor logits, labels;
    Step(std::int64_t K, const std::vector<std::vector<std::int32_t>>& pred,
         const std::vector<std::vector<std::int32_t>>& gold, std::vector<std::int32_t> lengths) {
        const auto T = static_cast<std::int64_t>(pred.size()), N = static_cast<std::int64_t>(pred[0].size());
        logits = Tensor::f32({T, N, K});
        labels = Tensor::i32({T, N});
        for (std::int64_t t = 0; t < T; ++t)
            for (std::int64_t n = 0; n < N; ++n) {
                for (std::int64_t k = 0; k < K; ++k)
                    logits.data<float>()[(t * N + n) * K + k] = k == pred[t][n] ? 2.f : -0.5f * static_cast<float>(k);
                labels.data<std::int32_t>()[t * N + n] = gold[t][n];
            }
        labels.lengths = std::move(lengths);
        logits.lengths = labels.lengths;
    }
};

struct Harness {
    StageSchema s = ClassificationMetrics::schema();
    ClassificationMetrics stage;
    explicit Harness(std::vector<std::string> names, bool per_class = true)
        : stage(params_for(s, {{"per_class", per_class}})) {
        FakePrepare ctx(s);
        const auto K = static_cast<std::int64_t>(names.size());
        ctx.info("logits", PortInfo{PortType::tensor, K, -1, nullptr});
        ctx.info("labels", PortInfo{PortType::ids, -1, K, labels_vocab(std::move(names))});
        stage.prepare(ctx);
    }
    void feed(const Step& st, std::vector<std::int64_t> ids, Phase phase = Phase::evaluate) {
        StepInfo info;
        info.phase = phase;
        info.item_ids = ids;
        stage.accumulate(make_inputs(s, {&st.logits, &st.labels}), info);
    }
};

}  // namespace

TEST_CASE("classification_metrics: values of a hand-computed confusion matrix", "[stage][eval][classification_metrics]") {
    // gold 0 0 0 1 1 2 2 2 2 0, predicted 0 1 0 1 2 2 2 0 2 0; class 3 never occurs.
    // Confusion [gold][pred]: [3 1 0 0] [0 1 1 0] [1 0 3 0] [0 0 0 0]; accuracy 7/10.
    // P = R = F1: 3/4 (neg), 1/2 (neu), 3/4 (pos); macro-F1 over the 3 present classes = 2/3.
    // One-vs-rest accuracy: neg (3 + 5)/10, neu (1 + 7)/10, pos (3 + 5)/10, unused 10/10.
    Harness h({"neg", "neu", "pos", "unused"});
    h.stage.begin("valid");
    // Two batches, columns in a bucketed order (item ids not sorted).
    h.feed(Step(4, {{0, 1, 0, 1, 2}}, {{0, 0, 0, 1, 1}}, {1, 1, 1, 1, 1}), {4, 0, 2, 1, 3});
    h.feed(Step(4, {{2, 2, 0, 2, 0}}, {{2, 2, 2, 2, 0}}, {1, 1, 1, 1, 1}), {9, 5, 6, 7, 8});
    const auto v = h.stage.end();
    REQUIRE(v.at(0).name.empty());
    REQUIRE(v.at(0).higher_is_better);
    REQUIRE(v.at(0).value == Approx(0.7));
    REQUIRE(metric(v, "macro_f1") == Approx(2.0 / 3.0));
    REQUIRE(metric(v, "precision.neg") == Approx(0.75));
    REQUIRE(metric(v, "recall.neu") == Approx(0.5));
    REQUIRE(metric(v, "f1.pos") == Approx(0.75));
    REQUIRE(metric(v, "accuracy.neg") == Approx(0.8));
    REQUIRE(metric(v, "accuracy.neu") == Approx(0.8));
    REQUIRE(metric(v, "accuracy.unused") == Approx(1.0));
    REQUIRE(metric(v, "f1.unused") == 0.0);
    REQUIRE(h.stage.confusion() == std::vector<std::vector<std::int64_t>>{{3, 1, 0, 0}, {0, 1, 1, 0}, {1, 0, 3, 0}, {0, 0, 0, 0}});

    ClsTempDir d;
    h.stage.write_outputs(OutputContext{d.path, "valid", 3});
    REQUIRE(read_text(d.path / "valid.confusion.tsv") ==
            "gold\\predicted\tneg\tneu\tpos\tunused\n"
            "neg\t3\t1\t0\t0\nneu\t0\t1\t1\t0\npos\t1\t0\t3\t0\nunused\t0\t0\t0\t0\n");
    // The heatmap: a PNG file (its drawing is the plot module's, tested there).
    REQUIRE(read_text(d.path / "valid.confusion.png").rfind("\x89PNG", 0) == 0);
    // Items in input order, whatever the batch order was.
    // One label per item: the class probabilities follow, softmax of the logits, the shortest
    // text that reads back as the same float.
    const std::string pred = read_text(d.path / "valid.predictions.tsv");
    std::istringstream lines(pred);
    std::string line;
    std::getline(lines, line);
    REQUIRE(line == "item\tgold\tpredicted\tp.neg\tp.neu\tp.pos\tp.unused");
    const std::vector<std::string> expect = {"0\tneg\tneu", "1\tneu\tneu", "2\tneg\tneg", "3\tneu\tpos", "4\tneg\tneg"};
    const std::vector<int> predicted = {1, 1, 0, 2, 0};  // the class scored 2 (Step's logits)
    for (std::size_t i = 0; i < expect.size(); ++i) {
        REQUIRE(std::getline(lines, line));
        REQUIRE(line.rfind(expect[i] + "\t", 0) == 0);
        std::istringstream fields(line.substr(expect[i].size() + 1));
        double z = 0, p[4];
        for (int k = 0; k < 4; ++k) z += std::exp(k == predicted[i] ? 2.0 : -0.5 * k);
        for (int k = 0; k < 4; ++k) {
            REQUIRE(fields >> p[k]);
            REQUIRE(p[k] == Approx(std::exp(k == predicted[i] ? 2.0 : -0.5 * k) / z).epsilon(1e-6));
        }
        REQUIRE(p[0] + p[1] + p[2] + p[3] == Approx(1.0).epsilon(1e-6));
    }
    REQUIRE(h.stage.predictions().size() == 10);
    REQUIRE(h.stage.predictions()[3] == "pos");

    Harness lean({"neg", "neu", "pos", "unused"}, false);
    lean.stage.begin("test");
    lean.feed(Step(4, {{0, 1}}, {{0, 0}}, {1, 1}), {0, 1});
    REQUIRE(lean.stage.end().size() == 2);  // accuracy and macro-F1 only
}

TEST_CASE("classification_metrics: token accuracy leaves padding out", "[stage][eval][classification_metrics]") {
    Harness h({"DET", "NOUN"});
    h.stage.begin("test");
    // T = 3, N = 2; column 1 has length 1: its steps 1, 2 are padding and predicted wrong.
    h.feed(Step(2, {{0, 1}, {1, 0}, {0, 0}}, {{0, 1}, {1, 1}, {1, 1}}, {3, 1}), {0, 1});
    const auto v = h.stage.end();
    // Counted: (0,0) DET→DET, (1,0) NOUN→NOUN, (2,0) NOUN→DET, (0,1) NOUN→NOUN: 3 of 4.
    REQUIRE(v.at(0).value == Approx(0.75));
    REQUIRE(h.stage.confusion() == std::vector<std::vector<std::int64_t>>{{1, 0}, {1, 2}});
    REQUIRE(h.stage.predictions() == std::vector<std::string>{"DET NOUN DET", "NOUN"});
    // Tags: no probability columns (a label per token has no single distribution per item).
    ClsTempDir d;
    h.stage.write_outputs(OutputContext{d.path, "test", 1});
    REQUIRE(read_text(d.path / "test.predictions.tsv") == "item\tgold\tpredicted\n0\tDET NOUN NOUN\tDET NOUN DET\n1\tNOUN\tNOUN\n");
}

TEST_CASE("classification_metrics: prediction runs label items without gold", "[stage][eval][classification_metrics]") {
    Harness h({"neg", "pos"});
    h.stage.begin("infer");
    Step st(2, {{1, 0, 1}}, {{0, 0, 0}}, {0, 0, 0});  // labels of length 0
    st.logits.lengths.clear();  // pooled logits: one valid step per column
    h.feed(st, {2, 0, 1}, Phase::infer);
    REQUIRE(h.stage.end().empty());
    REQUIRE(h.stage.predictions() == std::vector<std::string>{"neg", "pos", "pos"});
    REQUIRE(h.stage.predicts());
}

TEST_CASE("classification_metrics: mismatched shapes and empty passes are errors", "[stage][eval][classification_metrics]") {
    const StageSchema s = ClassificationMetrics::schema();
    ClassificationMetrics m(default_params(s));
    FakePrepare ctx(s);
    ctx.info("logits", PortInfo{PortType::tensor, 3, -1, nullptr});
    ctx.info("labels", PortInfo{PortType::ids, -1, 2, nullptr});
    REQUIRE_THROWS_WITH(m.prepare(ctx), "classification_metrics: 'logits' has 3 channels but 'labels' has 2 classes; "
                                        "they must be equal (hint: out_dim: <label vocabulary>.size)");
    Harness h({"a", "b"});
    h.stage.begin("valid");
    REQUIRE_THROWS_WITH(h.stage.end(), "classification_metrics: nothing was scored in split 'valid' (no labelled "
                                       "positions); is the split empty or without labels?");
    // Sentence labels (1, N) against per-token logits (T, N, K).
    Step tokens(2, {{0}, {1}}, {{0}, {1}}, {2});
    Tensor sentence = Tensor::i32({1, 1});
    sentence.lengths = {1};
    StepInfo info;
    REQUIRE_THROWS_WITH(h.stage.accumulate(make_inputs(h.s, {&tokens.logits, &sentence}), info),
                        "classification_metrics: 'labels' has 1 steps but 'logits' has 2 (sentence labels need "
                        "pooled logits (1, N, K))");
}
