// caption_batches: memory (F, N, D) zero-padded with lengths = rows, teacher-forcing targets as
// seq2seq_batches gives them, every pair once per pass, deterministic shuffles; errors.
#include <catch2/catch.hpp>

#include <set>

#include "stages/data/caption_batches.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::CaptionBatches;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;

namespace {
using Set = std::map<std::string, ParamValue>;
using Seqs = std::vector<std::vector<std::int32_t>>;

constexpr std::int32_t kPad = 0, kSos = 2, kEos = 3;  // <pad> <unk> <sos> <eos>, then words

std::shared_ptr<const Vocabulary> caption_vocab(std::vector<std::string> specials = {"<pad>", "<unk>", "<sos>", "<eos>"}) {
    std::vector<std::string> t = specials;
    // Words w0 .. w9 (one character appended: GCC 12's -Wrestrict misfires on "w" + to_string).
    for (int i = 0; i < 10; ++i) t.push_back(std::string{'w', static_cast<char>('0' + i)});
    return std::make_shared<const Vocabulary>(t, std::vector<std::int64_t>(t.size(), 1), specials, TokenizerSpec{});
}

// n pairs of D = 2: pair i has 1 + i % 3 rows, row r = (i, r); its caption 1 + (i * 5) % 4 words.
struct Pairs {
    FrameSplit frames;
    Seqs captions;
};
Pairs make(int n) {
    Pairs p;
    p.frames.dim = 2;
    p.frames.origin = "f.npy";
    for (int i = 0; i < n; ++i) {
        FrameSplit::Item item;
        item.rows = 1 + i % 3;
        for (int r = 0; r < item.rows; ++r) item.values.insert(item.values.end(), {static_cast<float>(i), static_cast<float>(r)});
        p.frames.items.push_back(item);
        std::vector<std::int32_t> c;
        for (int k = 0; k < 1 + (i * 5) % 4; ++k) c.push_back(4 + (i + k) % 10);
        p.captions.push_back(c);
    }
    return p;
}

struct Setup {
    StageSchema schema = CaptionBatches::schema();
    std::unique_ptr<CaptionBatches> stage;
    FakePrepare ctx{schema, 1};
    Setup(const Set& set, const std::map<std::string, Pairs>& splits, bool with_target = true,
          std::shared_ptr<const Vocabulary> vocab = caption_vocab()) {
        stage = std::make_unique<CaptionBatches>(params_for(schema, set));
        ctx.info("features", PortInfo{PortType::frames, 2, -1, nullptr});
        ctx.info("target", PortInfo{PortType::sequences, -1, vocab->size(), vocab});
        for (const auto& [split, p] : splits) {
            ctx.data("features", split, p.frames);
            if (with_target) ctx.data("target", split, SequenceSplit{p.captions, "c.txt"});
        }
        if (splits.count("infer")) ctx.splits_.push_back("infer");
        stage->prepare(ctx);
    }
};

// Every batch of a pass checked against the pairs; the item ids in batch order.
std::vector<std::int64_t> pass(CaptionBatches& s, const std::string& split, std::int64_t epoch, const Pairs& p) {
    std::vector<std::int64_t> ids;
    s.begin(split, epoch);
    Batch b;
    while (s.next(b)) {
        const Tensor& m = b.outputs[0];  // (F, N, D)
        const Tensor& yi = b.outputs[1];
        const Tensor& yo = b.outputs[2];
        const std::int64_t F = m.dim(0), N = m.dim(1);
        REQUIRE(m.dim(2) == 2);
        std::int64_t tokens = 0, most_rows = 0;
        for (std::int64_t n = 0; n < N; ++n) {
            const auto id = b.item_ids[static_cast<std::size_t>(n)];
            ids.push_back(id);
            const auto& item = p.frames.items[static_cast<std::size_t>(id)];
            REQUIRE(m.lengths[static_cast<std::size_t>(n)] == item.rows);
            most_rows = std::max(most_rows, item.rows);
            for (std::int64_t r = 0; r < F; ++r)
                for (std::int64_t d = 0; d < 2; ++d)
                    REQUIRE(m.data<float>()[(r * N + n) * 2 + d] ==
                            (r < item.rows ? item.values[static_cast<std::size_t>(r * 2 + d)] : 0.0f));
            const auto& y = p.captions[static_cast<std::size_t>(id)];
            const auto L = static_cast<std::int64_t>(y.size()) + 1;
            REQUIRE(yi.lengths[static_cast<std::size_t>(n)] == L);
            REQUIRE(yo.lengths[static_cast<std::size_t>(n)] == L);
            tokens += L;
            for (std::int64_t t = 0; t < yi.dim(0); ++t) {
                REQUIRE(yi.data<std::int32_t>()[t * N + n] == (t == 0 ? kSos : t < L ? y[static_cast<std::size_t>(t - 1)] : kPad));
                REQUIRE(yo.data<std::int32_t>()[t * N + n] ==
                        (t < L - 1 ? y[static_cast<std::size_t>(t)] : t == L - 1 ? kEos : kPad));
            }
        }
        REQUIRE(F == most_rows);  // no wasted rows
        REQUIRE(b.items == tokens);
    }
    return ids;
}
}  // namespace

TEST_CASE("caption_batches: schema defaults", "[stage][data][caption_batches]") {
    const Params p = default_params(CaptionBatches::schema());
    REQUIRE(p.get_int("batch") == 64);
    REQUIRE(p.get_bool("shuffle"));
    REQUIRE(CaptionBatches::schema().inputs()[0].type == PortType::frames);
}

TEST_CASE("caption_batches: memory and targets, every pair once per pass, deterministic", "[stage][data][caption_batches]") {
    const Pairs train = make(23), valid = make(7);
    Setup a({{"batch", std::int64_t{4}}, {"pool", std::int64_t{2}}}, {{"train", train}, {"valid", valid}});
    REQUIRE(a.ctx.out_info("memory").channels == 2);
    REQUIRE(a.ctx.out_info("target_in").vocab != nullptr);
    const auto e0 = pass(*a.stage, "train", 0, train);
    REQUIRE(std::set<std::int64_t>(e0.begin(), e0.end()).size() == 23);
    REQUIRE(e0.size() == 23);
    SECTION("the same seed gives the same order; another epoch another one") {
        Setup b({{"batch", std::int64_t{4}}, {"pool", std::int64_t{2}}}, {{"train", train}, {"valid", valid}});
        REQUIRE(pass(*b.stage, "train", 0, train) == e0);
        REQUIRE(pass(*b.stage, "train", 1, train) != e0);
    }
    SECTION("other splits: sorted by (rows, caption length), the same every pass") {
        const auto v = pass(*a.stage, "valid", 0, valid);
        REQUIRE(v == pass(*a.stage, "valid", 3, valid));
        REQUIRE(v == std::vector<std::int64_t>{0, 6, 3, 4, 1, 5, 2});
    }
    SECTION("batch_tokens bounds N * max(F, Tt)") {
        Setup c({{"batch", std::int64_t{64}}, {"batch_tokens", std::int64_t{6}}}, {{"train", train}});
        c.stage->begin("train", 0);
        Batch b;
        while (c.stage->next(b))
            REQUIRE((b.outputs[0].dim(1) == 1 ||
                     b.outputs[0].dim(1) * std::max(b.outputs[0].dim(0), b.outputs[1].dim(0)) <= 6));
    }
}

TEST_CASE("caption_batches: length filter, prediction split and errors", "[stage][data][caption_batches]") {
    const Pairs train = make(8);
    Setup f({{"max_target_length", std::int64_t{3}}}, {{"train", train}});
    REQUIRE(f.stage->value("dropped") == 4);  // captions of 3 and 4 words
    REQUIRE(pass(*f.stage, "train", 0, train).size() == 4);
    SECTION("infer: features only, targets (1, N) of length 0") {
        Setup h({}, {{"infer", make(3)}}, false);
        h.stage->begin("infer", 0);
        Batch b;
        REQUIRE(h.stage->next(b));
        REQUIRE(b.outputs[1].shape() == Shape{1, 3});
        REQUIRE(b.outputs[1].lengths == std::vector<std::int32_t>{0, 0, 0});
    }
    REQUIRE_THROWS_WITH(Setup({}, {{"train", train}}, false), "split 'train' has features but no captions");
    REQUIRE_THROWS_WITH(Setup({}, {{"train", train}}, true, caption_vocab({"<pad>", "<unk>"})),
                        "the target vocabulary lacks <pad>, <sos> or <eos>");
    Pairs uneven = make(4);
    uneven.captions.pop_back();
    REQUIRE_THROWS_WITH(Setup({}, {{"train", uneven}}), "split 'train': 4 feature items (f.npy) but 3 captions (c.txt)");
    REQUIRE_THROWS_WITH(Setup({{"max_target_length", std::int64_t{1}}}, {{"train", train}}),
                        "no training pair is left after filtering (8 longer than max_target_length 1)");
}

TEST_CASE("caption_batches: state is the mean of each column's rows", "[stage][data][caption_batches]") {
    const Pairs train = make(9);
    Setup a({{"batch", std::int64_t{4}}}, {{"train", train}});
    const PortInfo info = a.ctx.out_info("state");
    REQUIRE(info.type == PortType::state);
    REQUIRE(info.channels == 2);
    REQUIRE(info.directions == 1);
    a.stage->begin("train", 0);
    Batch b;
    std::int64_t columns = 0;
    while (a.stage->next(b)) {
        const Tensor& st = b.outputs[3];
        const std::int64_t N = b.outputs[0].dim(1);
        REQUIRE(st.shape() == Shape{1, 1, N, 2});
        for (std::int64_t n = 0; n < N; ++n, ++columns) {
            // Pair i has rows (i, r) for r < 1 + i % 3: the mean is (i, (rows - 1) / 2).
            const auto id = b.item_ids[static_cast<std::size_t>(n)];
            const double rows = 1 + id % 3;
            REQUIRE(st.data<float>()[n * 2] == static_cast<float>(id));
            REQUIRE(st.data<float>()[n * 2 + 1] == static_cast<float>((rows - 1) / 2));
        }
    }
    REQUIRE(columns == 9);
}

TEST_CASE("caption_batches: with groups, evaluation passes give each item once", "[stage][data][caption_batches]") {
    const Pairs train = make(6), valid = make(6);
    // Pairs 0, 2, 5 are captions of item "a"; 1 and 4 of "b"; 3 of "c".
    const TextSplit keys{{"a", "b", "a", "c", "b", "a"}, "items"};
    StageSchema schema = CaptionBatches::schema();
    CaptionBatches stage(params_for(schema, {{"batch", std::int64_t{2}}}));
    FakePrepare ctx{schema, 1};
    auto vocab = caption_vocab();
    ctx.info("features", PortInfo{PortType::frames, 2, -1, nullptr});
    ctx.info("target", PortInfo{PortType::sequences, -1, vocab->size(), vocab});
    ctx.info("groups", PortInfo{PortType::text, -1, -1, nullptr});
    for (const auto& [split, p] : std::map<std::string, Pairs>{{"train", train}, {"valid", valid}}) {
        ctx.data("features", split, p.frames);
        ctx.data("target", split, SequenceSplit{p.captions, "c.txt"});
        ctx.data("groups", split, keys);
    }
    stage.prepare(ctx);
    auto ids = pass(stage, "valid", 0, valid);
    std::sort(ids.begin(), ids.end());
    REQUIRE(ids == std::vector<std::int64_t>{0, 1, 3});  // the first pair of a, b, c
    REQUIRE(pass(stage, "train", 0, train).size() == 6);  // training sees every caption

    FakePrepare bad{schema, 1};
    bad.info("features", PortInfo{PortType::frames, 2, -1, nullptr});
    bad.info("target", PortInfo{PortType::sequences, -1, vocab->size(), vocab});
    bad.info("groups", PortInfo{PortType::text, -1, -1, nullptr});
    bad.data("features", "valid", valid.frames);
    bad.data("target", "valid", SequenceSplit{valid.captions, "c.txt"});
    bad.data("groups", "valid", TextSplit{{"a", "b"}, "items"});
    CaptionBatches stage2(params_for(schema, {}));
    REQUIRE_THROWS_WITH(stage2.prepare(bad), "split 'valid': 6 feature items (f.npy) but 2 groups (items)");
}
