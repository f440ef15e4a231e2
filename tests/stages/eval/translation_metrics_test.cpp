#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "stages/eval/translation_metrics.hpp"
#include "metric_support.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::test::metric;
using rnnflow::test::read_text;
using rnnflow::stages::TranslationMetrics;
using rnnflow::test::FakePrepare;
using rnnflow::test::make_inputs;
using rnnflow::test::params_for;
namespace fs = std::filesystem;

namespace {
// Target vocabulary (word mode): <pad>=0 <unk>=1 <sos>=2 <eos>=3 the=4 cat=5 sat=6 on=7 a=8 mat=9
std::shared_ptr<const Vocabulary> target_vocab() {
    std::vector<std::string> t{"<pad>", "<unk>", "<sos>", "<eos>", "the", "cat", "sat", "on", "a", "mat"};
    TokenizerSpec spec;
    spec.mode = "word";
    return std::make_shared<const Vocabulary>(t, std::vector<std::int64_t>(t.size(), 1),
                                              std::vector<std::string>{"<pad>", "<unk>", "<sos>", "<eos>"}, spec);
}
std::shared_ptr<const Vocabulary> source_vocab() {
    std::vector<std::string> t{"<pad>", "<unk>", "x", "y", "z"};
    return std::make_shared<const Vocabulary>(t, std::vector<std::int64_t>(t.size(), 1),
                                              std::vector<std::string>{"<pad>", "<unk>"}, TokenizerSpec{});
}

// Time-major (T, N) ids from columns, padded with 0, lengths = column sizes.
Tensor ids(const std::vector<std::vector<std::int32_t>>& cols) {
    std::size_t T = 1;
    for (const auto& c : cols) T = std::max(T, c.size());
    Tensor t = Tensor::i32({static_cast<std::int64_t>(T), static_cast<std::int64_t>(cols.size())});
    const auto N = static_cast<std::int64_t>(cols.size());
    for (std::int64_t n = 0; n < N; ++n) {
        const auto& c = cols[static_cast<std::size_t>(n)];
        for (std::size_t k = 0; k < c.size(); ++k) t.data<std::int32_t>()[static_cast<std::int64_t>(k) * N + n] = c[k];
        t.lengths.push_back(static_cast<std::int32_t>(c.size()));
    }
    return t;
}

}  // namespace

TEST_CASE("translation_metrics: BLEU, exact match, token accuracy, outputs in item order", "[stage][eval]") {
    const StageSchema s = TranslationMetrics::schema();
    TranslationMetrics m(params_for(s, {{"heatmaps", std::int64_t{2}}}));
    FakePrepare ctx(s);
    const auto tv = target_vocab(), sv = source_vocab();
    ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
    ctx.info("reference", PortInfo{PortType::ids, -1, tv->size(), tv});
    ctx.info("source", PortInfo{PortType::ids, -1, sv->size(), sv});
    ctx.info("attention", PortInfo{PortType::tensor, 5, -1, nullptr});
    m.prepare(ctx);
    m.begin("valid");
    // Batch 1 holds items 2 and 0, batch 2 item 1 (a bucketing source reorders).
    // item 0: "the cat sat on the mat" vs "the cat sat on a mat"   (BLEU case of bleu_test)
    // item 1: "the cat sat on the"     vs "the cat sat on the mat"
    // item 2: "a mat"                  vs "a mat"                  (exact)
    const Tensor h1 = ids({{8, 9}, {4, 5, 6, 7, 4, 9}});
    const Tensor r1 = ids({{8, 9, 3}, {4, 5, 6, 7, 8, 9, 3}});
    const Tensor s1 = ids({{2, 3}, {4, 4, 2}});
    // attention (Th, N, Ts) = (6, 2, 3): column n, step t, source k -> 0.1 * (t + 1) + 0.01 * k + n
    Tensor a1 = Tensor::f32({6, 2, 3});
    for (int t = 0; t < 6; ++t)
        for (int n = 0; n < 2; ++n)
            for (int k = 0; k < 3; ++k) a1.data<float>()[(t * 2 + n) * 3 + k] = 0.1f * static_cast<float>(t + 1) + 0.01f * static_cast<float>(k) + static_cast<float>(n);
    a1.lengths = {2, 6};
    StepInfo step;
    step.phase = Phase::evaluate;
    step.split = "valid";
    const std::vector<std::int64_t> items1{2, 0};
    step.item_ids = items1;
    m.accumulate(make_inputs(s, {&h1, &r1, nullptr, &s1, &a1}), step);
    const Tensor h2 = ids({{4, 5, 6, 7, 4}});
    const Tensor r2 = ids({{4, 5, 6, 7, 4, 9, 3}});
    const std::vector<std::int64_t> items2{1};
    step.item_ids = items2;
    m.accumulate(make_inputs(s, {&h2, &r2}), step);
    const auto v = m.end();
    // Corpus: the two segments of bleu_test's corpus case plus "a mat"/"a mat":
    // matches 12/13, 8/10, 5/7, 3/5; c = 13, r = 14:
    // BLEU = 100 * exp(1 - 14/13) * (12/13 * 8/10 * 5/7 * 3/5)^(1/4)
    const double expect = 100.0 * std::exp(1.0 - 14.0 / 13.0) * std::pow(12.0 / 13 * 8.0 / 10 * 5.0 / 7 * 3.0 / 5, 0.25);
    CHECK(metric(v, "") == Approx(expect).epsilon(1e-9));
    CHECK(metric(v, "bleu_lc") == Approx(expect).epsilon(1e-9));
    CHECK(metric(v, "exact") == Approx(100.0 / 3.0));
    // Token accuracy: item 0 matches 5 of 6 positions, item 1 5 of max(5, 6) = 6, item 2 2 of 2.
    CHECK(metric(v, "token_accuracy") == Approx(100.0 * 12.0 / 14.0));

    std::random_device rd;
    const fs::path dir = fs::temp_directory_path() / ("rnnflow_tm_" + std::to_string(rd()));
    fs::create_directories(dir);
    m.write_outputs(OutputContext{dir, "valid", 1});
    CHECK(read_text(dir / "valid.translations.txt") == "the cat sat on the mat\nthe cat sat on the\na mat\n");
    // Item 0 is column 1 of batch 1: source "z z x", 6 hypothesis steps.
    const std::string map0 = read_text(dir / "valid.attention_0.tsv");
    CHECK(map0.rfind("\tz\tz\tx\nthe\t1.1000\t1.1100\t1.1200\ncat\t1.2000", 0) == 0);
    CHECK(fs::file_size(dir / "valid.attention_0.png") > 1000);
    std::ifstream png(dir / "valid.attention_0.png", std::ios::binary);
    char magic[4] = {};
    png.read(magic, 4);
    CHECK(std::string(magic + 1, 3) == "PNG");
    CHECK(fs::exists(dir / "valid.attention_1.tsv") == false);  // item 1 came without attention
    CHECK(fs::exists(dir / "valid.attention_2.tsv") == false);  // heatmaps: 2 = items 0 and 1 only
    fs::remove_all(dir);
}

TEST_CASE("translation_metrics: raw references, infer predictions, errors", "[stage][eval]") {
    const StageSchema s = TranslationMetrics::schema();
    const auto tv = target_vocab();
    {
        TranslationMetrics m(params_for(s, {}));
        FakePrepare ctx(s);
        ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
        ctx.info("references", PortInfo{PortType::text, -1, -1, nullptr});
        ctx.data("references", "test", TextSplit{{"The cat sat on the mat.", "A mat!"}, "test.en"});
        m.prepare(ctx);
        m.begin("test");
        const Tensor h = ids({{8, 9}, {4, 5, 6, 7, 4, 9}});
        StepInfo step;
        step.phase = Phase::evaluate;
        step.split = "test";
        const std::vector<std::int64_t> items{1, 0};
        step.item_ids = items;
        m.accumulate(make_inputs(s, {&h}), step);
        const auto v = m.end();
        // Against the raw text: hypotheses lack the punctuation and the capitals.
        CHECK(metric(v, "") == Approx(rnnflow::stages::corpus_bleu({"the cat sat on the mat", "a mat"},
                                                                   {"The cat sat on the mat.", "A mat!"})));
        CHECK(metric(v, "bleu_lc") > metric(v, ""));
        CHECK(v.size() == 2);  // no reference ids: no exact match or token accuracy
    }
    {
        TranslationMetrics m(params_for(s, {}));
        FakePrepare ctx(s, 1, PrepareMode::restore);
        ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
        ctx.info("reference", PortInfo{PortType::ids, -1, tv->size(), tv});
        m.prepare(ctx);
        CHECK(m.predicts());
        m.begin("infer");
        const Tensor h = ids({{8, 9, 3, 5}, {4, 5}, {}});
        const Tensor r = ids({{}, {}, {}});  // (1, N), lengths 0
        StepInfo step;
        step.phase = Phase::infer;
        step.split = "infer";
        const std::vector<std::int64_t> items{2, 0, 1};
        step.item_ids = items;
        m.accumulate(make_inputs(s, {&h, &r}), step);
        CHECK(m.end().empty());
        CHECK(m.predictions() == std::vector<std::string>{"the cat", "", "a mat"});  // cut at <eos>
    }
    {
        // Training passes: the decoder gives (1, N) with lengths 0; no metrics, no error.
        TranslationMetrics m(params_for(s, {}));
        FakePrepare ctx(s);
        ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
        ctx.info("reference", PortInfo{PortType::ids, -1, tv->size(), tv});
        m.prepare(ctx);
        m.begin("train");
        Tensor h = Tensor::i32({1, 2});
        h.lengths = {0, 0};
        const Tensor r = ids({{4, 3}, {5, 3}});
        StepInfo step;
        step.phase = Phase::train;
        const std::vector<std::int64_t> items{0, 1};
        step.item_ids = items;
        m.accumulate(make_inputs(s, {&h, &r}), step);
        CHECK(m.end().empty());
    }
    {
        TranslationMetrics m(params_for(s, {}));
        FakePrepare ctx(s);
        ctx.info("hypothesis", PortInfo{PortType::ids, -1, 10, nullptr});
        CHECK_THROWS_WITH(m.prepare(ctx), "input 'hypothesis' carries no vocabulary");
    }
    {
        TranslationMetrics m(params_for(s, {}));
        FakePrepare ctx(s);
        ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
        m.prepare(ctx);
        m.begin("valid");
        CHECK_THROWS_WITH(m.end(), "translation_metrics: no items evaluated in split 'valid'; is the split empty?");
        const Tensor h = ids({{4}});
        StepInfo step;
        step.phase = Phase::evaluate;
        CHECK_THROWS_WITH(m.accumulate(make_inputs(s, {&h}), step),
                          "translation_metrics: the batch has 1 columns but 0 item ids; the batch source must set "
                          "item ids (seq2seq_batches does)");
    }
}
