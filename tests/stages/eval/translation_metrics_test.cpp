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
    CHECK(fs::exists(dir / "valid.captions.tsv") == false);      // no groups
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

namespace {
// A pass over hand-made batches: (item ids, hypothesis columns, reference columns).
struct TestBatch {
    std::vector<std::int64_t> items;
    std::vector<std::vector<std::int32_t>> hyp, ref;
};
std::vector<MetricValue> run_pass(TranslationMetrics& m, const StageSchema& s, const std::string& split,
                                  const std::vector<TestBatch>& batches) {
    m.begin(split);
    for (const auto& b : batches) {
        const Tensor h = ids(b.hyp), r = ids(b.ref);
        StepInfo step;
        step.phase = Phase::evaluate;
        step.split = split;
        step.item_ids = b.items;
        m.accumulate(make_inputs(s, {&h, b.ref.empty() ? nullptr : &r}), step);
    }
    return m.end();
}
fs::path temp_dir() {
    std::random_device rd;
    const fs::path dir = fs::temp_directory_path() / ("rnnflow_tm_" + std::to_string(rd()));
    fs::create_directories(dir);
    return dir;
}

// Items (pairs) of split "test" and their keys, as the features reader gives them: img1 has
// items 0, 1, 3; img2 items 2, 4; img3 item 5.
const std::vector<std::string> kKeys{"img1", "img1", "img2", "img1", "img2", "img3"};
const std::vector<std::string> kCaptions{"the cat sat on the mat", "a cat sat on a mat", "a mat",
                                         "the cat on the mat",     "the mat",            "a cat"};
}  // namespace

TEST_CASE("translation_metrics: groups score a segment per key against all its references", "[stage][eval]") {
    const StageSchema s = TranslationMetrics::schema();
    const auto tv = target_vocab();
    TranslationMetrics m(params_for(s, {}));
    FakePrepare ctx(s);
    ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
    ctx.info("reference", PortInfo{PortType::ids, -1, tv->size(), tv});
    ctx.info("references", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.info("groups", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.data("references", "test", TextSplit{kCaptions, "test.tsv"});
    ctx.data("groups", "test", TextSplit{kKeys, "test.tsv"});
    m.prepare(ctx);
    // Decoded: items 3 and 0, then 2 and 1 (4 and 5 are not: a batcher may decode any subset).
    // Item 3 decoded "the cat on the mat", unlike items 0 and 1 of its image: the lowest (0) wins.
    const auto v = run_pass(m, s, "test",
                            {{{3, 0}, {{4, 5, 7, 4, 9}, {4, 5, 6, 7, 8, 9}}, {{4, 5, 7, 4, 9, 3}, {4, 5, 6, 7, 4, 9, 3}}},
                             {{2, 1}, {{4, 9}, {4, 5, 6, 7, 8, 9}}, {{8, 9, 3}, {8, 5, 6, 7, 8, 9, 3}}}});
    CHECK(m.group_disagreements() == 1);
    // Segment img1: "the cat sat on a mat" against items 0, 1, 3. Every n-gram is in one
    // reference, and within the count of one: the (2 in item 0), a (2 in item 1):
    //   1-grams 6/6; 2-grams the cat, cat sat, sat on | on a, a mat: 5/5;
    //   3-grams the cat sat, cat sat on | sat on a, on a mat: 4/4; 4-grams the cat sat on |
    //   cat sat on a, sat on a mat: 3/3; closest reference length 6 (6, 6, 5).
    // Segment img2: "the mat" against "a mat" | "the mat" (item 4, not decoded): 2/2, 1/1.
    // So BLEU = 100 (each item against its own caption alone would score below).
    CHECK(metric(v, "") == Approx(100.0));
    CHECK(metric(v, "bleu_lc") == Approx(100.0));
    CHECK(metric(v, "") == rnnflow::stages::corpus_bleu_multi(
                               {"the cat sat on a mat", "the mat"},
                               {{"the cat sat on the mat", "a cat sat on a mat", "the cat on the mat"}, {"a mat", "the mat"}}));
    CHECK(rnnflow::stages::corpus_bleu({"the cat sat on a mat", "the mat"}, {"the cat sat on the mat", "a mat"}) < 60.0);
    // Exact: img1's hypothesis equals none of the three references; img2's equals item 4's
    // ("the mat" tokenised as the vocabulary was: ids 4 9; the batches never gave its ids).
    CHECK(metric(v, "exact") == Approx(50.0));
    // Token accuracy against the best reference: img1 5 of 6 (item 0: the cat sat on the|a mat;
    // item 1 also 5/6, item 3 only 2/6), img2 2 of 2 (item 4) = 7 / 8.
    CHECK(metric(v, "token_accuracy") == Approx(87.5));

    const fs::path dir = temp_dir();
    m.write_outputs(OutputContext{dir, "test", 0});
    CHECK(read_text(dir / "test.translations.txt") == "the cat sat on a mat\nthe mat\n");  // a line per segment
    CHECK(read_text(dir / "test.captions.tsv") ==
          "item\tcaption\texact\treferences\n"
          "img1\tthe cat sat on a mat\t0\tthe cat sat on the mat | a cat sat on a mat | the cat on the mat\n"
          "img2\tthe mat\t1\ta mat | the mat\n");  // img3: nothing decoded, no segment
    CHECK_FALSE(fs::exists(dir / "test.bleu_by_length.tsv"));  // no source
    fs::remove_all(dir);
    // Prediction lines stay one per decoded item.
    CHECK(m.predictions() == std::vector<std::string>{"the cat sat on a mat", "the cat sat on a mat", "the mat",
                                                      "the cat on the mat"});
}

TEST_CASE("translation_metrics: groups with one decoded item per key, with and without raw references",
          "[stage][eval]") {
    const StageSchema s = TranslationMetrics::schema();
    const auto tv = target_vocab();
    // One item per key decoded (items 1 and 2), as a batcher that emits one pair per image does.
    const std::vector<TestBatch> one_each{{{2, 1}, {{4, 9}, {8, 5, 6, 7, 8, 9}}, {{8, 9, 3}, {8, 5, 6, 7, 8, 9, 3}}}};
    SECTION("raw references: every caption of the key, from the dataset") {
        TranslationMetrics m(params_for(s, {}));
        FakePrepare ctx(s);
        ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
        ctx.info("reference", PortInfo{PortType::ids, -1, tv->size(), tv});
        ctx.info("references", PortInfo{PortType::text, -1, -1, nullptr});
        ctx.info("groups", PortInfo{PortType::text, -1, -1, nullptr});
        ctx.data("references", "test", TextSplit{kCaptions, "test.tsv"});
        ctx.data("groups", "test", TextSplit{kKeys, "test.tsv"});
        m.prepare(ctx);
        const auto v = run_pass(m, s, "test", one_each);
        CHECK(m.group_disagreements() == 0);
        CHECK(metric(v, "") == rnnflow::stages::corpus_bleu_multi(
                                   {"a cat sat on a mat", "the mat"},
                                   {{"the cat sat on the mat", "a cat sat on a mat", "the cat on the mat"}, {"a mat", "the mat"}}));
        CHECK(metric(v, "exact") == Approx(100.0));  // img1 = item 1's caption, img2 = item 4's
        CHECK(metric(v, "token_accuracy") == Approx(100.0));
    }
    SECTION("no raw references: the decoded items' reference ids only") {
        TranslationMetrics m(params_for(s, {}));
        FakePrepare ctx(s);
        ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
        ctx.info("reference", PortInfo{PortType::ids, -1, tv->size(), tv});
        ctx.info("groups", PortInfo{PortType::text, -1, -1, nullptr});
        ctx.data("groups", "test", TextSplit{kKeys, "test.tsv"});
        m.prepare(ctx);
        const auto v = run_pass(m, s, "test", one_each);
        CHECK(metric(v, "") == rnnflow::stages::corpus_bleu_multi({"a cat sat on a mat", "the mat"},
                                                                  {{"a cat sat on a mat"}, {"a mat"}}));
        CHECK(metric(v, "exact") == Approx(50.0));  // "the mat" vs "a mat" alone
        CHECK(metric(v, "token_accuracy") == Approx(100.0 * 7.0 / 8.0));
        const fs::path dir = temp_dir();
        m.write_outputs(OutputContext{dir, "test", 1});
        CHECK(read_text(dir / "test.captions.tsv") ==
              "item\tcaption\texact\treferences\nimg1\ta cat sat on a mat\t1\ta cat sat on a mat\n"
              "img2\tthe mat\t0\ta mat\n");
        fs::remove_all(dir);
    }
    SECTION("raw references without reference ids: BLEU only, exact unknown") {
        TranslationMetrics m(params_for(s, {}));
        FakePrepare ctx(s);
        ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
        ctx.info("references", PortInfo{PortType::text, -1, -1, nullptr});
        ctx.info("groups", PortInfo{PortType::text, -1, -1, nullptr});
        ctx.data("references", "test", TextSplit{kCaptions, "test.tsv"});
        ctx.data("groups", "test", TextSplit{kKeys, "test.tsv"});
        m.prepare(ctx);
        const auto v = run_pass(m, s, "test", {{{2, 1}, {{4, 9}, {8, 5, 6, 7, 8, 9}}, {}}});
        CHECK(v.size() == 2);
        const fs::path dir = temp_dir();
        m.write_outputs(OutputContext{dir, "test", 1});
        CHECK(read_text(dir / "test.captions.tsv").find("img2\tthe mat\t-\ta mat | the mat\n") != std::string::npos);
        fs::remove_all(dir);
    }
}

TEST_CASE("translation_metrics: groups checked against references and items", "[stage][eval]") {
    const StageSchema s = TranslationMetrics::schema();
    const auto tv = target_vocab();
    TranslationMetrics m(params_for(s, {}));
    FakePrepare ctx(s);
    ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
    ctx.info("references", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.info("groups", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.data("references", "test", TextSplit{kCaptions, "test.tsv"});
    ctx.data("groups", "test", TextSplit{{"a", "a", "b"}, "test.ids"});
    CHECK_THROWS_WITH(m.prepare(ctx), "split 'test': 'groups' has 3 items (test.ids) but 'references' has 6 (test.tsv)");
    FakePrepare ok(s);
    ok.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
    ok.info("groups", PortInfo{PortType::text, -1, -1, nullptr});
    ok.data("groups", "test", TextSplit{{"a", "a", "b"}, "test.ids"});
    m.prepare(ok);
    CHECK_THROWS_WITH(run_pass(m, s, "test", {{{3}, {{4}}, {}}}),
                      "translation_metrics: item 3 is beyond the 3 keys of split 'test' (test.ids); connect groups to "
                      "the reader that feeds the batches");
}

TEST_CASE("translation_metrics: BLEU by source length", "[stage][eval]") {
    const StageSchema s = TranslationMetrics::schema();
    const auto tv = target_vocab(), sv = source_vocab();
    TranslationMetrics m(params_for(s, {{"length_buckets", std::vector<std::string>{"2", "4"}}}));
    FakePrepare ctx(s);
    ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
    ctx.info("reference", PortInfo{PortType::ids, -1, tv->size(), tv});
    ctx.info("source", PortInfo{PortType::ids, -1, sv->size(), sv});
    m.prepare(ctx);
    m.begin("test");
    // Items 0..3 with 2, 3 (one <pad> inside the length is not counted), 1 and 6 source tokens.
    const Tensor h = ids({{8, 9}, {4, 5, 6, 7, 4, 9}, {4, 9}, {4, 5, 6, 7, 4}});
    const Tensor r = ids({{8, 9, 3}, {4, 5, 6, 7, 8, 9, 3}, {8, 9, 3}, {4, 5, 6, 7, 4, 9, 3}});
    const Tensor src = ids({{2, 3}, {4, 0, 2, 3}, {2}, {2, 3, 4, 2, 3, 4}});
    StepInfo step;
    step.phase = Phase::evaluate;
    step.split = "test";
    const std::vector<std::int64_t> items{0, 1, 2, 3};
    step.item_ids = items;
    m.accumulate(make_inputs(s, {&h, &r, nullptr, &src}), step);
    const auto v = m.end();
    const fs::path dir = temp_dir();
    m.write_outputs(OutputContext{dir, "test", 0});
    using rnnflow::stages::corpus_bleu;
    auto f2 = [](double x) {
        char b[32];
        std::snprintf(b, sizeof b, "%.2f", x);
        return std::string(b);
    };
    // Bucket 1-2: items 0 ("a mat" = "a mat") and 2 ("the mat" vs "a mat"); 3-4: item 1; 5+: item 3.
    const std::string b12 = f2(corpus_bleu({"a mat", "the mat"}, {"a mat", "a mat"}));
    const std::string b34 = f2(corpus_bleu({"the cat sat on the mat"}, {"the cat sat on a mat"}));
    const std::string b5 = f2(corpus_bleu({"the cat sat on the"}, {"the cat sat on the mat"}));
    const std::string all = f2(metric(v, ""));
    CHECK(read_text(dir / "test.bleu_by_length.tsv") == "bucket\tsentences\tsource_tokens\tbleu\tbleu_lc\n"
                                                        "1-2\t2\t3\t" + b12 + "\t" + b12 + "\n"
                                                        "3-4\t1\t3\t" + b34 + "\t" + b34 + "\n"
                                                        "5+\t1\t6\t" + b5 + "\t" + b5 + "\n"
                                                        "all\t4\t12\t" + all + "\t" + all + "\n");
    CHECK(b12 == "0.00");  // 2 tokens a segment: no 3-grams, BLEU 0 (as sacreBLEU)
    CHECK(all == f2(corpus_bleu({"a mat", "the cat sat on the mat", "the mat", "the cat sat on the"},
                                {"a mat", "the cat sat on a mat", "a mat", "the cat sat on the mat"})));
    // An empty bucket shows '-'; the defaults suit Multi30k.
    TranslationMetrics wide(params_for(s, {{"length_buckets", std::vector<std::string>{"1", "2", "3"}}}));
    wide.prepare(ctx);
    wide.begin("test");
    const Tensor h1 = ids({{8, 9}}), r1 = ids({{8, 9, 3}}), s1 = ids({{2, 3}});
    const std::vector<std::int64_t> one{0};
    step.item_ids = one;
    wide.accumulate(make_inputs(s, {&h1, &r1, nullptr, &s1}), step);
    wide.end();
    wide.write_outputs(OutputContext{dir, "test", 0});
    CHECK(read_text(dir / "test.bleu_by_length.tsv") == "bucket\tsentences\tsource_tokens\tbleu\tbleu_lc\n"
                                                        "1-1\t0\t0\t-\t-\n2-2\t1\t2\t0.00\t0.00\n3-3\t0\t0\t-\t-\n"
                                                        "4+\t0\t0\t-\t-\nall\t1\t2\t0.00\t0.00\n");
    fs::remove_all(dir);
    CHECK(s.find_param("length_buckets")->default_value == ParamValue(std::vector<std::string>{"8", "10", "12", "15", "20"}));
    CHECK_THROWS_WITH(TranslationMetrics(params_for(s, {{"length_buckets", std::vector<std::string>{"8", "x"}}})),
                      "length_buckets: 'x' is not a positive whole number");
    CHECK_THROWS_WITH(TranslationMetrics(params_for(s, {{"length_buckets", std::vector<std::string>{"0"}}})),
                      "length_buckets: '0' is not a positive whole number");
    CHECK_THROWS_WITH(TranslationMetrics(params_for(s, {{"length_buckets", std::vector<std::string>{"8", "8"}}})),
                      "length_buckets must increase: 8 after 8");
}

TEST_CASE("translation_metrics: attention: none (lengths 0) writes no maps", "[stage][eval]") {
    const StageSchema s = TranslationMetrics::schema();
    const auto tv = target_vocab(), sv = source_vocab();
    TranslationMetrics m(params_for(s, {{"heatmaps", std::int64_t{5}}}));
    FakePrepare ctx(s);
    ctx.info("hypothesis", PortInfo{PortType::ids, -1, tv->size(), tv});
    ctx.info("reference", PortInfo{PortType::ids, -1, tv->size(), tv});
    ctx.info("source", PortInfo{PortType::ids, -1, sv->size(), sv});
    ctx.info("attention", PortInfo{PortType::tensor, 3, -1, nullptr});
    m.prepare(ctx);
    m.begin("valid");
    const Tensor h = ids({{8, 9}, {4, 9}}), r = ids({{8, 9, 3}, {4, 9, 3}}), src = ids({{2, 3, 4}, {2}});
    Tensor att = Tensor::f32({1, 2, 3});  // what attention_decoder gives with attention: none
    att.lengths = {0, 0};
    StepInfo step;
    step.phase = Phase::evaluate;
    step.split = "valid";
    const std::vector<std::int64_t> items{0, 1};
    step.item_ids = items;
    m.accumulate(make_inputs(s, {&h, &r, nullptr, &src, &att}), step);
    CHECK(metric(m.end(), "exact") == Approx(100.0));
    const fs::path dir = temp_dir();
    m.write_outputs(OutputContext{dir, "valid", 1});
    CHECK(read_text(dir / "valid.translations.txt") == "a mat\nthe mat\n");
    for (const auto& e : fs::directory_iterator(dir))
        CHECK(e.path().filename().string().find("attention") == std::string::npos);
    fs::remove_all(dir);
}
