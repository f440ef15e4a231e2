#include <catch2/catch.hpp>

#include <set>

#include "cls_support.hpp"
#include "stages/data/classify_batches.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::ClassifyBatches;
using Set = std::map<std::string, ParamValue>;
using Seqs = std::vector<std::vector<std::int32_t>>;

namespace {

std::shared_ptr<const rnnflow::Vocabulary> word_vocab() {
    return std::make_shared<const rnnflow::Vocabulary>(
        std::vector<std::string>{"<pad>", "<unk>", "a", "b", "c"}, std::vector<std::int64_t>{0, 0, 3, 2, 1},
        std::vector<std::string>{"<pad>", "<unk>"}, TokenizerSpec{});
}

struct Fixture {
    StageSchema schema = ClassifyBatches::schema();
    ClassifyBatches stage;
    FakePrepare ctx;
    Fixture(const Set& set, Seqs train, Seqs labels, bool with_labels = true)
        : stage(params_for(schema, set)), ctx(schema, 7) {
        ctx.info("tokens", PortInfo{PortType::sequences, -1, 5, word_vocab()});
        if (with_labels) {
            ctx.info("labels", PortInfo{PortType::sequences, -1, 3, nullptr});
            ctx.data("labels", "train", SequenceSplit{labels, "train.labels"});
            ctx.data("labels", "valid", SequenceSplit{labels, "valid.labels"});
        }
        ctx.data("tokens", "train", SequenceSplit{train, "train.txt"});
        ctx.data("tokens", "valid", SequenceSplit{train, "valid.txt"});
    }
    void prepare() { stage.prepare(ctx); }
    // Every batch of a pass.
    std::vector<Batch> pass(const std::string& split, std::int64_t epoch) {
        std::vector<Batch> out;
        const std::int64_t n = stage.begin(split, epoch);
        Batch b;
        while (stage.next(b)) out.push_back(b);
        REQUIRE(static_cast<std::int64_t>(out.size()) == n);
        return out;
    }
};

std::vector<std::int64_t> order_of(const std::vector<Batch>& batches) {
    std::vector<std::int64_t> v;
    for (const auto& b : batches) v.insert(v.end(), b.item_ids.begin(), b.item_ids.end());
    return v;
}

std::int32_t at(const Tensor& t, std::int64_t i, std::int64_t j) { return t.data<std::int32_t>()[i * t.dim(1) + j]; }

}  // namespace

TEST_CASE("classify_batches: schema", "[stage][data][classify_batches]") {
    const auto s = ClassifyBatches::schema();
    REQUIRE(s.role() == Role::source);
    const Params p = default_params(s);
    REQUIRE(p.get_int("batch") == 32);
    REQUIRE(p.get_string("level") == "sentence");
    REQUIRE(p.get_bool("bucket"));
    REQUIRE(s.find_input("labels")->optional);
    REQUIRE(s.find_input("words")->optional);
}

TEST_CASE("classify_batches: sentence level, bucketed evaluation split", "[stage][data][classify_batches]") {
    // Lengths 3, 1, 2, 0 (empty: one <unk>), 2.
    const Seqs train{{2, 3, 4}, {2}, {3, 3}, {}, {4, 2}};
    Fixture f({{"batch", std::int64_t{2}}}, train, {{0}, {1}, {2}, {1}, {0}});
    f.prepare();
    REQUIRE(f.ctx.out_info("ids").classes == 5);
    REQUIRE(f.ctx.out_info("labels").classes == 3);
    const auto batches = f.pass("valid", 0);
    REQUIRE(batches.size() == 3);
    // Whole split sorted by length, stable: items 1 (1), 3 (placeholder, 1), 2 (2), 4 (2), 0 (3).
    REQUIRE(order_of(batches) == std::vector<std::int64_t>{1, 3, 2, 4, 0});
    const Batch& b0 = batches[0];
    REQUIRE(b0.outputs[0].shape() == Shape{1, 2});
    REQUIRE(b0.outputs[0].lengths == std::vector<std::int32_t>{1, 1});
    REQUIRE(at(b0.outputs[0], 0, 0) == 2);
    REQUIRE(at(b0.outputs[0], 0, 1) == 1);  // <unk> placeholder
    REQUIRE(b0.outputs[1].shape() == Shape{1, 2});
    REQUIRE(at(b0.outputs[1], 0, 0) == 1);
    REQUIRE(at(b0.outputs[1], 0, 1) == 1);
    const Batch& b2 = batches[2];  // one column: item 0
    REQUIRE(b2.outputs[0].shape() == Shape{3, 1});
    REQUIRE(b2.items == 3);
    REQUIRE(b2.outputs[1].lengths == std::vector<std::int32_t>{1});
    // Padding holds <pad> (0): batch 1 has lengths 2, 2, no padding; check a mixed batch without bucketing.
    Fixture g({{"batch", std::int64_t{5}}, {"bucket", false}}, train, {{0}, {1}, {2}, {1}, {0}});
    g.prepare();
    const auto one = g.pass("valid", 0);
    REQUIRE(one.size() == 1);
    const Tensor& ids = one[0].outputs[0];
    REQUIRE(ids.shape() == Shape{3, 5});
    REQUIRE(ids.lengths == std::vector<std::int32_t>{3, 1, 2, 1, 2});
    REQUIRE(at(ids, 2, 1) == 0);
    REQUIRE(at(ids, 1, 2) == 3);
    REQUIRE(order_of(one) == std::vector<std::int64_t>{0, 1, 2, 3, 4});
}

TEST_CASE("classify_batches: training passes are seeded shuffles that keep every item once",
          "[stage][data][classify_batches]") {
    Seqs train;
    Seqs labels;
    for (int i = 0; i < 40; ++i) {
        train.push_back(std::vector<std::int32_t>(static_cast<std::size_t>(1 + i % 7), 2));
        labels.push_back({i % 3});
    }
    Fixture f({{"batch", std::int64_t{4}}, {"pool", std::int64_t{2}}}, train, labels);
    f.prepare();
    const auto e0 = order_of(f.pass("train", 0));
    const auto e0_again = order_of(f.pass("train", 0));
    const auto e1 = order_of(f.pass("train", 1));
    REQUIRE(e0 == e0_again);
    REQUIRE(e0 != e1);
    for (const auto& e : {e0, e1}) {
        REQUIRE(std::set<std::int64_t>(e.begin(), e.end()).size() == 40);
        REQUIRE(e.size() == 40);
    }
    // Bucketing: within each batch lengths come from one sorted pool of 8, so their spread is
    // below the spread of the whole split (1..7) in most batches; every batch has lengths sorted.
    for (const auto& b : f.pass("train", 3)) {
        const auto& l = b.outputs[0].lengths;
        REQUIRE(std::is_sorted(l.begin(), l.end()));
        REQUIRE(b.outputs[0].dim(0) == *std::max_element(l.begin(), l.end()));
    }
    // Another run seed gives another order.
    Fixture g({{"batch", std::int64_t{4}}, {"pool", std::int64_t{2}}}, train, labels);
    g.ctx.rng().seed(99);
    g.prepare();
    REQUIRE(order_of(g.pass("train", 0)) != e0);
    // Without shuffle the training order is the evaluation order.
    Fixture h({{"batch", std::int64_t{4}}, {"shuffle", false}, {"bucket", false}}, train, labels);
    h.prepare();
    const auto plain = order_of(h.pass("train", 5));
    for (std::size_t i = 0; i < plain.size(); ++i) REQUIRE(plain[i] == static_cast<std::int64_t>(i));
}

TEST_CASE("classify_batches: token level tags follow the ids' lengths", "[stage][data][classify_batches]") {
    const Seqs train{{2, 3, 4}, {2}, {}};
    Fixture f({{"batch", std::int64_t{4}}, {"level", std::string("token")}, {"bucket", false}}, train,
              {{0, 1, 2}, {2}, {}});
    f.prepare();
    const auto b = f.pass("valid", 0);
    REQUIRE(b.size() == 1);
    REQUIRE(b[0].item_ids == std::vector<std::int64_t>{0, 1});  // the empty sentence is left out
    const Tensor& y = b[0].outputs[1];
    REQUIRE(y.shape() == Shape{3, 2});
    REQUIRE(y.lengths == b[0].outputs[0].lengths);
    REQUIRE(at(y, 0, 0) == 0);
    REQUIRE(at(y, 2, 0) == 2);
    REQUIRE(at(y, 0, 1) == 2);
}

TEST_CASE("classify_batches: label shapes that do not fit the level are errors", "[stage][data][classify_batches]") {
    {
        Fixture f({}, {{2, 3}, {2}}, {{0}, {1, 2}});
        REQUIRE_THROWS_WITH(f.prepare(), "split 'train' item 2 (train.labels) has 2 label ids; level: sentence needs exactly one");
    }
    {
        Fixture f({{"level", std::string("token")}}, {{2, 3}, {2}}, {{0, 1}, {1, 2}});
        REQUIRE_THROWS_WITH(f.prepare(), "split 'train' item 2 (train.txt) has 1 tokens but 2 tags");
    }
}

TEST_CASE("classify_batches: a split without labels gives (1, N) labels of length 0", "[stage][data][classify_batches]") {
    Fixture f({{"batch", std::int64_t{3}}}, {{2, 3}, {4}}, {}, false);
    f.prepare();
    const auto b = f.pass("train", 0);
    REQUIRE(b.size() == 1);
    REQUIRE(b[0].outputs[1].shape() == Shape{1, 2});
    REQUIRE(b[0].outputs[1].lengths == std::vector<std::int32_t>{0, 0});
    REQUIRE(f.ctx.out_info("labels").classes == -1);
}

TEST_CASE("classify_batches: chars hold each word's characters in column t*N + n", "[stage][data][classify_batches]") {
    ClsTempDir dir;
    const Seqs train{{2, 3}, {4}};
    Fixture f({{"batch", std::int64_t{2}}, {"bucket", false}, {"shuffle", false}, {"max_chars", std::int64_t{3}}}, train,
              {{0}, {1}});
    f.ctx.info("words", PortInfo{PortType::tokens, -1, -1, nullptr});
    TokenSplit words;
    words.items = {{"ab", "b\xC3\xA9"}, {"abcd"}};
    f.ctx.data("words", "train", words);
    words.items = {{"ax", "b"}, {"q"}};  // x, q: not in the training words
    f.ctx.data("words", "valid", words);
    f.ctx.dir(dir.path / "state");
    f.prepare();
    // Training characters by count: a 2, b 3, c 1, d 1, é 1 → <pad> <unk> b a c d é
    const auto& cv = *f.stage.char_vocab();
    REQUIRE(cv.tokens() == std::vector<std::string>{"<pad>", "<unk>", "b", "a", "c", "d", "\xC3\xA9"});
    REQUIRE(f.ctx.out_info("chars").classes == 7);
    const auto b = f.pass("train", 0);
    const Tensor& ch = b[0].outputs[2];
    // T = 2, N = 2: columns (t0 n0) "ab", (t0 n1) "abc" (cut at 3), (t1 n0) "bé", (t1 n1) padding.
    REQUIRE(ch.shape() == Shape{3, 4});
    REQUIRE(ch.lengths == std::vector<std::int32_t>{2, 3, 2, 0});
    auto c = [&](std::int64_t k, std::int64_t col) { return ch.data<std::int32_t>()[k * 4 + col]; };
    REQUIRE(c(0, 0) == 3);
    REQUIRE(c(1, 0) == 2);
    REQUIRE(c(2, 0) == 0);
    REQUIRE(c(2, 1) == 4);
    REQUIRE(c(1, 2) == 6);
    REQUIRE(c(0, 3) == 0);
    const auto v = f.pass("valid", 0);
    REQUIRE(v[0].outputs[2].data<std::int32_t>()[1 * 4 + 0] == 1);  // 'x' → <unk>

    // Restore loads the saved character vocabulary.
    const StageSchema s = ClassifyBatches::schema();
    ClassifyBatches restored(params_for(s, {}));
    FakePrepare rc(s, 1, PrepareMode::restore);
    rc.info("tokens", PortInfo{PortType::sequences, -1, 5, word_vocab()});
    rc.info("words", PortInfo{PortType::tokens, -1, -1, nullptr});
    rc.dir(dir.path / "state");
    restored.prepare(rc);
    REQUIRE(restored.char_vocab()->tokens() == cv.tokens());
    REQUIRE(restored.begin("train", 0) == 0);
}
