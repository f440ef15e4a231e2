// entity_metrics: conlleval's counting on hand-made cases (worked out in the comments), the
// predictions file, bracketed predictions, resume state, and a run through the real engine whose
// reported F1 is recomputed from the predictions file it wrote.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "../data/cls_support.hpp"
#include "metric_support.hpp"
#include "pipeline/exec/engine.hpp"
#include "pipeline/graph/graph.hpp"
#include "stages/eval/entity_metrics.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::ChunkCounts;
using rnnflow::stages::EntityMetrics;
using Tags = std::vector<std::string>;
using Toks = std::vector<std::vector<std::string>>;

namespace {
const Tags kNames{"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};

std::int32_t id_of(const std::string& tag) {
    return static_cast<std::int32_t>(std::find(kNames.begin(), kNames.end(), tag) - kNames.begin());
}

// One sentence per batch column: logits (T, N, K) scoring the predicted tag highest, gold ids.
struct Step {
    Tensor logits, labels;
    Step(const std::vector<Tags>& gold, const std::vector<Tags>& pred) {
        const auto N = static_cast<std::int64_t>(gold.size()), K = static_cast<std::int64_t>(kNames.size());
        std::int64_t T = 0;
        for (const auto& g : gold) T = std::max(T, static_cast<std::int64_t>(g.size()));
        logits = Tensor::f32({T, N, K});
        labels = Tensor::i32({T, N});
        for (std::int64_t n = 0; n < N; ++n) {
            const auto len = static_cast<std::int64_t>(gold[static_cast<std::size_t>(n)].size());
            labels.lengths.push_back(static_cast<std::int32_t>(len));
            for (std::int64_t t = 0; t < T; ++t) {
                // Padding scores B-PER and holds I-PER: counted, they would change every number.
                const std::int32_t p = t < len ? id_of(pred[static_cast<std::size_t>(n)][static_cast<std::size_t>(t)]) : 1;
                for (std::int64_t k = 0; k < K; ++k) logits.data<float>()[(t * N + n) * K + k] = k == p ? 1.f : 0.f;
                labels.data<std::int32_t>()[t * N + n] =
                    t < len ? id_of(gold[static_cast<std::size_t>(n)][static_cast<std::size_t>(t)]) : 2;
            }
        }
        logits.lengths = labels.lengths;
    }
};

struct Harness {
    StageSchema s = EntityMetrics::schema();
    EntityMetrics stage;
    explicit Harness(const std::vector<std::vector<std::string>>& words, const std::string& split = "valid",
                     const std::string& file_scheme = "same")
        : stage(params_for(s, {{"file_scheme", file_scheme}})) {
        FakePrepare ctx(s);
        const auto K = static_cast<std::int64_t>(kNames.size());
        std::vector<std::int64_t> counts(kNames.size(), 1);
        ctx.info("logits", PortInfo{PortType::tensor, K, -1, nullptr});
        ctx.info("labels", PortInfo{PortType::ids, -1, K,
                                    std::make_shared<const Vocabulary>(kNames, counts, Tags{}, TokenizerSpec{})});
        ctx.info("words", PortInfo{PortType::tokens, -1, -1, nullptr});
        ctx.data("words", split, TokenSplit{words, "test", TokenizerSpec{}});
        stage.prepare(ctx);
        stage.begin(split);
    }
    void feed(const Step& st, std::vector<std::int64_t> ids) {
        StepInfo info;
        info.phase = Phase::evaluate;
        info.item_ids = ids;
        stage.accumulate(make_inputs(s, {&st.logits, &st.labels}), info);
    }
};
}  // namespace

TEST_CASE("entity_metrics: conlleval's counts on hand-made sentences", "[stage][eval][entity_metrics]") {
    ChunkCounts c;
    // Sentence 1: gold PER[0,2) LOC[3,4); predicted PER[0,1) LOC[3,4). The PER boundary error is
    // one false positive (PER[0,1) found, not gold) and one false negative (PER[0,2) missed).
    c.add({"B-PER", "I-PER", "O", "B-LOC"}, {"B-PER", "O", "O", "B-LOC"});
    // Sentence 2: gold LOC[0,1); predicted PER[0,1): right span, wrong type: FP and FN again.
    // Predicted "O I-PER" (invalid IOB2) is PER[2,3) by conlleval's rules: one more false positive.
    c.add({"B-LOC", "O", "O"}, {"B-PER", "O", "I-PER"});
    // Gold chunks G = 3 (PER, LOC; LOC), found F = 4 (PER[0,1), LOC; PER[0,1), PER[2,3)),
    // correct C = 1 (LOC[3,4) of sentence 1). P = 1/4, R = 1/3, FB1 = 2PR/(P+R) = (1/6)/(7/12) = 2/7.
    // Tokens 7; equal tags: B-PER, O, B-LOC of sentence 1 and the O in the middle of sentence 2
    // = 4 → accuracy 4/7.
    // PER: G 1, F 3, C 0 → P 0, R 0, F1 0. LOC: G 2, F 1, C 1 → P 1, R 1/2, F1 2/3.
    CHECK(c.all.gold == 3);
    CHECK(c.all.found == 4);
    CHECK(c.all.correct == 1);
    const auto m = c.scores(true);
    CHECK(metric(m, "") == Approx(2.0 / 7));
    CHECK(metric(m, "precision") == Approx(0.25));
    CHECK(metric(m, "recall") == Approx(1.0 / 3));
    CHECK(metric(m, "accuracy") == Approx(4.0 / 7));
    CHECK(metric(m, "f1.PER") == 0.0);
    CHECK(metric(m, "precision.LOC") == Approx(1.0));
    CHECK(metric(m, "recall.LOC") == Approx(0.5));
    CHECK(metric(m, "f1.LOC") == Approx(2.0 / 3));
    // conlleval's report, as conlleval.pl prints it for these two sentences.
    CHECK(c.conlleval_report() ==
          "processed 7 tokens with 3 phrases; found: 4 phrases; correct: 1.\n"
          "accuracy:  57.14%; precision:  25.00%; recall:  33.33%; FB1:  28.57\n"
          "              LOC: precision: 100.00%; recall:  50.00%; FB1:  66.67  1\n"
          "              PER: precision:   0.00%; recall:   0.00%; FB1:   0.00  3\n");
}

TEST_CASE("entity_metrics: IOB1 chunks and nothing found", "[stage][eval][entity_metrics]") {
    ChunkCounts c;
    // IOB1 gold "I-PER I-PER B-PER": PER[0,2) PER[2,3). Predicted "I-PER I-PER I-PER": PER[0,3),
    // one chunk matching neither: G 2, F 1, C 0. Token accuracy 2/3 (B-PER vs I-PER differs).
    c.add({"I-PER", "I-PER", "B-PER"}, {"I-PER", "I-PER", "I-PER"});
    CHECK(c.all.gold == 2);
    CHECK(c.all.found == 1);
    CHECK(c.all.correct == 0);
    CHECK(metric(c.scores(false), "accuracy") == Approx(2.0 / 3));
    ChunkCounts none;
    // Nothing predicted: P = 0 (no chunk found), R = 0, FB1 = 0 — conlleval prints 0.00, not NaN.
    none.add({"B-LOC"}, {"O"});
    CHECK(metric(none.scores(false), "") == 0.0);
    CHECK(metric(none.scores(false), "precision") == 0.0);
}

TEST_CASE("entity_metrics: the stage counts valid tokens, writes CoNLL columns in the file's scheme",
          "[stage][eval][entity_metrics]") {
    ClsTempDir d;
    Harness h(Toks{{"Jim", "Henson", "visited", "Paris"}, {"Ann", "Lee", "Bo"}}, "valid", "iob1");
    // Item 1 in column 0, item 0 in column 1: the file is written in item order. Column 0 is
    // shorter: its padding step (scored B-PER, gold I-PER) must not count.
    h.feed(Step({{"B-PER", "I-PER", "B-PER"}, {"B-PER", "I-PER", "O", "B-LOC"}},
                {{"B-PER", "I-PER", "B-PER"}, {"B-PER", "I-PER", "O", "B-LOC"}}),
           {1, 0});
    const auto m = h.stage.end();
    CHECK(metric(m, "") == Approx(1.0));
    CHECK(h.stage.counts().tokens == 7);
    h.stage.write_outputs(OutputContext{d.path, "valid", 1});
    // IOB1: "B-PER I-PER" after O becomes "I-PER I-PER"; "Bo" follows a PER: B-PER.
    CHECK(read_text(d.path / "valid.predictions.conll") ==
          "Jim I-PER I-PER\nHenson I-PER I-PER\nvisited O O\nParis I-LOC I-LOC\n\n"
          "Ann I-PER I-PER\nLee I-PER I-PER\nBo B-PER B-PER\n\n");
    CHECK(read_text(d.path / "valid.conlleval.txt").rfind("processed 7 tokens with 4 phrases; found: 4 phrases; correct: 4.", 0) == 0);
    CHECK(h.stage.predictions() ==
          std::vector<std::string>{"[PER Jim Henson] visited [LOC Paris]", "[PER Ann Lee] [PER Bo]"});
}

TEST_CASE("entity_metrics: resume state reads back; errors name what is wrong", "[stage][eval][entity_metrics]") {
    Harness h(Toks{{"a", "b"}});
    h.feed(Step({{"B-PER", "O"}}, {{"B-LOC", "O"}}), {0});
    StageState st;
    h.stage.save_run_state(st);
    Harness again(Toks{{"a", "b"}});
    again.stage.load_run_state(st);
    CHECK(again.stage.counts().all.gold == 1);
    CHECK(again.stage.counts().by_type.at("LOC").found == 1);
    CHECK(again.stage.counts().correct_tokens == 1);
    Harness empty(Toks{{"a"}});
    REQUIRE_THROWS_WITH(empty.stage.end(), Catch::Contains("nothing was scored in split 'valid'"));
    Harness few(Toks{{"a", "b"}});
    few.feed(Step({{"O", "O"}}, {{"O", "O"}}), {3});
    REQUIRE_THROWS_WITH(few.stage.predictions(), Catch::Contains("no words for sentence 3 of split 'valid'"));
}

TEST_CASE("entity_metrics: through the engine; the reported F1 is conlleval's on the file written",
          "[stage][eval][entity_metrics][e2e]") {
    ClsTempDir d;
    std::ostringstream train, valid;
    const char* persons[] = {"Ann", "Bo", "Jim"};
    const char* places[] = {"Oslo", "Lima", "Kyoto"};
    for (int i = 0; i < 60; ++i) {
        std::ostringstream& os = i % 5 == 0 ? valid : train;
        os << persons[i % 3] << " I-PER\nvisited O\n" << places[(i / 3) % 3] << " I-LOC\n. O\n\n";
    }
    d.write("train.txt", "-DOCSTART- O\n\n" + train.str());
    d.write("valid.txt", valid.str());
    const std::string graph =
        "experiment: ner\nseed: 2\nstages:\n"
        "  corpus: {type: conll_columns, train: train.txt, valid: valid.txt, scheme: iobes}\n"
        "  words:  {type: vocabulary, in: corpus.tokens, specials: [<pad>, <unk>]}\n"
        "  tags:   {type: vocabulary, in: corpus.labels, specials: []}\n"
        "  batch:  {type: classify_batches, tokens: words.out, labels: tags.out, level: token, batch: 8}\n"
        "  embed:  {type: embedding, in: batch.ids, dim: 8}\n"
        "  rnn:    {type: lstm, in: embed, hidden: 8, direction: bidirectional_concat}\n"
        "  logits: {type: linear, in: rnn, out_dim: tags.size}\n"
        "  loss:   {type: cross_entropy, logits: logits, target: batch.labels}\n"
        "  optim:  {type: adam, minimize: loss, lr: 0.05}\n"
        "  ner:    {type: entity_metrics, logits: logits, labels: batch.labels, words: corpus.words, file_scheme: iob1}\n"
        "train: {epochs: 4, keep: best(ner.valid), threads: 1}\n";
    RunOptions opt;
    opt.run_dir = d.path / "run";
    Engine e(compile(load_graph_text(graph, "ner.yaml", d.path, {}, Registry::global()), Registry::global()), opt);
    e.prepare();
    const TrainResult r = e.train();
    const MetricsRow& last = r.rows.back();
    REQUIRE(last.split == "valid");
    const double f1 = last.get("ner");
    CHECK(f1 > 0.9);  // three names, three places, one template: learnt in 4 epochs
    // Recount from the written file (word gold predicted) with conlleval's rules.
    std::ifstream is(d.path / "run" / "ner" / "valid.predictions.conll");
    ChunkCounts c;
    Tags gold, pred;
    std::int64_t sentences = 0;
    for (std::string line; std::getline(is, line);) {
        if (line.empty()) {
            c.add(gold, pred);
            gold.clear();
            pred.clear();
            ++sentences;
            continue;
        }
        std::istringstream ls(line);
        std::string w, g, p, extra;
        REQUIRE(static_cast<bool>(ls >> w >> g >> p));
        REQUIRE_FALSE(static_cast<bool>(ls >> extra));
        CHECK((g == "O" || g.rfind("I-", 0) == 0));  // the file's IOB1, not the IOBES trained on
        gold.push_back(g);
        pred.push_back(p);
    }
    CHECK(sentences == 12);
    CHECK(metric(c.scores(false), "") == Approx(f1));
}
