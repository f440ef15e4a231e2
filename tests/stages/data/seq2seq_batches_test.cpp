#include <catch2/catch.hpp>

#include <set>

#include "stages/data/seq2seq_batches.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::Seq2seqBatches;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;

namespace {
using Set = std::map<std::string, ParamValue>;
using Seqs = std::vector<std::vector<std::int32_t>>;

// Source vocabulary: <pad>=0 <unk>=1, tokens 2..; target: <pad>=0 <unk>=1 <sos>=2 <eos>=3, tokens 4..
std::shared_ptr<const Vocabulary> vocab(std::vector<std::string> specials, int tokens) {
    std::vector<std::string> t = specials;
    for (int i = 0; i < tokens; ++i) t.push_back(std::to_string(i).insert(0, 1, 't'));
    return std::make_shared<const Vocabulary>(t, std::vector<std::int64_t>(t.size(), 1), specials, TokenizerSpec{});
}

struct Data {
    Seqs src, tgt;
};

// n pairs with varied lengths: source i has 1 + (i * 7) % 13 tokens, target 1 + (i * 5) % 9.
Data make(int n) {
    Data d;
    for (int i = 0; i < n; ++i) {
        std::vector<std::int32_t> s, t;
        for (int k = 0; k < 1 + (i * 7) % 13; ++k) s.push_back(2 + (i + k) % 20);
        for (int k = 0; k < 1 + (i * 5) % 9; ++k) t.push_back(4 + (i * 3 + k) % 20);
        d.src.push_back(s);
        d.tgt.push_back(t);
    }
    return d;
}

struct Setup {
    StageSchema schema = Seq2seqBatches::schema();
    std::unique_ptr<Seq2seqBatches> stage;
    std::unique_ptr<FakePrepare> ctx;
    Setup(const Set& set, const std::map<std::string, Data>& splits, std::uint64_t seed = 1) {
        stage = std::make_unique<Seq2seqBatches>(params_for(schema, set));
        ctx = std::make_unique<FakePrepare>(schema, seed);
        const auto sv = vocab({"<pad>", "<unk>"}, 20), tv = vocab({"<pad>", "<unk>", "<sos>", "<eos>"}, 20);
        ctx->info("source", PortInfo{PortType::sequences, -1, sv->size(), sv});
        ctx->info("target", PortInfo{PortType::sequences, -1, tv->size(), tv});
        for (const auto& [split, d] : splits) {
            ctx->data("source", split, SequenceSplit{d.src, "src"});
            ctx->data("target", split, SequenceSplit{d.tgt, "tgt"});
        }
        stage->prepare(*ctx);
    }
};

// Every batch of a pass, checked for layout; returns the item ids in order.
std::vector<std::int64_t> pass(Seq2seqBatches& s, const std::string& split, std::int64_t epoch, const Data& d,
                               bool reversed = false, std::int64_t max_batch = 1 << 30, std::int64_t* max_spread = nullptr) {
    std::vector<std::int64_t> ids;
    const std::int64_t n = s.begin(split, epoch);
    Batch b;
    std::int64_t count = 0;
    while (s.next(b)) {
        ++count;
        REQUIRE(b.outputs.size() == 3);
        const Tensor& x = b.outputs[0];
        const Tensor& yi = b.outputs[1];
        const Tensor& yo = b.outputs[2];
        const std::int64_t N = x.dim(1);
        REQUIRE(N <= max_batch);
        REQUIRE(b.item_ids.size() == static_cast<std::size_t>(N));
        REQUIRE(yi.shape() == yo.shape());
        REQUIRE(yi.lengths == yo.lengths);
        std::int32_t lo = 1 << 30, hi = 0;
        std::int64_t tokens = 0;
        for (std::int64_t c = 0; c < N; ++c) {
            const auto id = b.item_ids[static_cast<std::size_t>(c)];
            ids.push_back(id);
            auto src = d.src[static_cast<std::size_t>(id)];
            if (reversed) std::reverse(src.begin(), src.end());
            const auto& tgt = d.tgt[static_cast<std::size_t>(id)];
            REQUIRE(x.lengths[static_cast<std::size_t>(c)] == static_cast<std::int32_t>(src.size()));
            lo = std::min(lo, x.lengths[static_cast<std::size_t>(c)]);
            hi = std::max(hi, x.lengths[static_cast<std::size_t>(c)]);
            for (std::int64_t t = 0; t < x.dim(0); ++t) {
                const std::int32_t want = t < static_cast<std::int64_t>(src.size()) ? src[static_cast<std::size_t>(t)] : 0;
                REQUIRE(x.data<std::int32_t>()[t * N + c] == want);  // padding = source <pad> (0)
            }
            const auto L = static_cast<std::int64_t>(tgt.size()) + 1;
            REQUIRE(yi.lengths[static_cast<std::size_t>(c)] == L);
            tokens += L;
            for (std::int64_t t = 0; t < yi.dim(0); ++t) {
                const std::int32_t in = t == 0 ? 2 : t < L ? tgt[static_cast<std::size_t>(t - 1)] : 0;
                const std::int32_t out = t < L - 1 ? tgt[static_cast<std::size_t>(t)] : t == L - 1 ? 3 : 0;
                REQUIRE(yi.data<std::int32_t>()[t * N + c] == in);
                REQUIRE(yo.data<std::int32_t>()[t * N + c] == out);
            }
        }
        REQUIRE(x.dim(0) == hi);  // no wasted steps
        REQUIRE(b.items == tokens);
        if (max_spread) *max_spread = std::max<std::int64_t>(*max_spread, hi - lo);
    }
    CHECK(count == n);
    return ids;
}
}  // namespace

TEST_CASE("seq2seq_batches: every pair once per epoch, layout and padding, deterministic", "[stage][data]") {
    const Data d = make(500);
    Setup s({{"batch", std::int64_t{16}}, {"pool", std::int64_t{4}}}, {{"train", d}, {"valid", make(40)}});
    std::vector<std::vector<std::int64_t>> epochs;
    for (std::int64_t e = 0; e < 3; ++e) {
        auto ids = pass(*s.stage, "train", e, d, false, 16);
        std::set<std::int64_t> unique(ids.begin(), ids.end());
        REQUIRE(ids.size() == 500);
        REQUIRE(unique.size() == 500);
        epochs.push_back(ids);
    }
    CHECK(epochs[0] != epochs[1]);  // shuffled per epoch
    Setup again({{"batch", std::int64_t{16}}, {"pool", std::int64_t{4}}}, {{"train", d}, {"valid", make(40)}});
    CHECK(pass(*again.stage, "train", 1, d) == epochs[1]);  // same seed, same order
    Setup other({{"batch", std::int64_t{16}}, {"pool", std::int64_t{4}}}, {{"train", d}}, 2);
    CHECK(pass(*other.stage, "train", 1, d) != epochs[1]);  // other run seed, other order
    // Validation: the same order every pass, all items.
    const Data v = make(40);
    const auto v0 = pass(*s.stage, "valid", 0, v), v1 = pass(*s.stage, "valid", 5, v);
    CHECK(v0 == v1);
    CHECK(std::set<std::int64_t>(v0.begin(), v0.end()).size() == 40);
    CHECK(s.stage->begin("test", 0) == 0);
}

TEST_CASE("seq2seq_batches: buckets are length-homogeneous", "[stage][data]") {
    const Data d = make(2000);
    // 13 source lengths over 2000 pairs, pools of 50 batches of 16: each pool holds ~60 pairs per
    // length, so a batch spans at most two neighbouring lengths.
    Setup s({{"batch", std::int64_t{16}}, {"pool", std::int64_t{50}}}, {{"train", d}});
    std::int64_t spread = 0;
    pass(*s.stage, "train", 0, d, false, 16, &spread);
    CHECK(spread <= 1);
    // Without bucketing (pool 1 = sort within a single batch) the spread is much larger.
    Setup flat({{"batch", std::int64_t{16}}, {"pool", std::int64_t{1}}}, {{"train", d}});
    std::int64_t flat_spread = 0;
    pass(*flat.stage, "train", 0, d, false, 16, &flat_spread);
    CHECK(flat_spread >= 8);
}

TEST_CASE("seq2seq_batches: reverse_source, batch_tokens, length filters", "[stage][data]") {
    const Data d = make(300);
    Setup rev({{"batch", std::int64_t{8}}, {"reverse_source", true}}, {{"train", d}, {"valid", d}});
    pass(*rev.stage, "valid", 0, d, true);
    CHECK(pass(*rev.stage, "train", 0, d, true).size() == 300);

    Setup tok({{"batch", std::int64_t{64}}, {"batch_tokens", std::int64_t{40}}}, {{"valid", d}, {"train", d}});
    tok.stage->begin("valid", 0);
    Batch b;
    while (tok.stage->next(b)) {
        const std::int64_t longest = std::max(b.outputs[0].dim(0), b.outputs[1].dim(0));
        CHECK((b.outputs[0].dim(1) * longest <= 40 || b.outputs[0].dim(1) == 1));
    }

    // Filters apply to training only: source > 6 tokens or target + <eos> > 5.
    Setup f({{"batch", std::int64_t{8}}, {"max_source_length", std::int64_t{6}}, {"max_target_length", std::int64_t{5}}},
            {{"train", d}, {"valid", d}});
    std::int64_t expect = 0;
    for (std::size_t i = 0; i < d.src.size(); ++i) expect += (d.src[i].size() > 6 || d.tgt[i].size() + 1 > 5) ? 1 : 0;
    REQUIRE(expect > 0);
    CHECK(f.stage->value("dropped") == expect);
    const auto ids = pass(*f.stage, "train", 0, d);
    CHECK(static_cast<std::int64_t>(ids.size()) == 300 - expect);
    for (auto id : ids) CHECK((d.src[static_cast<std::size_t>(id)].size() <= 6 && d.tgt[static_cast<std::size_t>(id)].size() <= 4));
    CHECK(pass(*f.stage, "valid", 0, d).size() == 300);
}

TEST_CASE("seq2seq_batches: infer split has source only; errors", "[stage][data]") {
    const StageSchema schema = Seq2seqBatches::schema();
    const auto sv = vocab({"<pad>", "<unk>"}, 5), tv = vocab({"<pad>", "<unk>", "<sos>", "<eos>"}, 5);
    {
        Seq2seqBatches st(params_for(schema, {{"batch", std::int64_t{2}}}));
        FakePrepare ctx(schema, 1, PrepareMode::restore);
        ctx.splits_ = {"infer"};
        ctx.info("source", PortInfo{PortType::sequences, -1, sv->size(), sv});
        ctx.info("target", PortInfo{PortType::sequences, -1, tv->size(), tv});
        ctx.data("source", "infer", SequenceSplit{{{2, 3, 4}, {5}, {2, 2}}, "input lines"});
        st.prepare(ctx);
        CHECK(ctx.out_info("target_in").vocab == tv);
        CHECK(ctx.out_info("target_out").classes == tv->size());
        CHECK(ctx.out_info("source").vocab == sv);
        CHECK(st.begin("infer", 0) == 2);
        Batch b;
        std::set<std::int64_t> ids;
        std::int64_t items = 0;
        while (st.next(b)) {
            const std::int64_t N = b.outputs[0].dim(1);
            CHECK(b.outputs[1].shape() == Shape{1, N});
            CHECK(b.outputs[2].lengths == std::vector<std::int32_t>(static_cast<std::size_t>(N), 0));
            ids.insert(b.item_ids.begin(), b.item_ids.end());
            items += b.items;
        }
        CHECK(ids == std::set<std::int64_t>{0, 1, 2});
        CHECK(items == 6);  // source tokens in infer
    }
    auto message = [&](std::shared_ptr<const Vocabulary> s, std::shared_ptr<const Vocabulary> t, Seqs src, Seqs tgt,
                       const std::string& split = "valid") {
        Seq2seqBatches st(params_for(schema, {}));
        FakePrepare ctx(schema);
        ctx.info("source", PortInfo{PortType::sequences, -1, s->size(), s});
        ctx.info("target", PortInfo{PortType::sequences, -1, t->size(), t});
        ctx.data("source", split, SequenceSplit{src, "s.txt"});
        ctx.data("target", split, SequenceSplit{tgt, "t.txt"});
        try {
            st.prepare(ctx);
        } catch (const Error& e) {
            return e.message();
        }
        return std::string("(no error)");
    };
    CHECK(message(vocab({"<unk>"}, 3), tv, {{1}}, {{4}}) == "the source vocabulary has no <pad>");
    CHECK(message(sv, vocab({"<pad>", "<unk>"}, 3), {{1}}, {{4}}) == "the target vocabulary lacks <pad>, <sos> or <eos>");
    CHECK(message(sv, tv, {{2}, {3}}, {{4}}) == "split 'valid': 2 source items (s.txt) but 1 target items (t.txt)");
    CHECK(message(sv, tv, {{2}, {}}, {{4}, {5}}) ==
          "split 'valid' item 2 (s.txt) has an empty source: there is nothing to encode");
    CHECK(message(sv, tv, {{2}, {}}, {{4}, {5}}, "train") == "(no error)");  // dropped and counted
}
