#include <catch2/catch.hpp>

#include <numeric>

#include "stages/data/lm_batches.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::LmBatches;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;
using Set = std::map<std::string, ParamValue>;
using Vec = std::vector<std::int32_t>;

namespace {

// ids 0..25 in two items (so concatenation is exercised): 0..9 and 10..25.
SequenceSplit stream_0_to_25() {
    SequenceSplit s;
    Vec a(10), b(16);
    std::iota(a.begin(), a.end(), 0);
    std::iota(b.begin(), b.end(), 10);
    s.items = {a, b};
    s.origin = "train.txt";
    return s;
}

Vec values(const Tensor& t) {
    const auto* p = t.data<std::int32_t>();
    return Vec(p, p + t.numel());
}

}  // namespace

TEST_CASE("lm_batches: schema defaults", "[stage][data]") {
    const auto s = LmBatches::schema();
    REQUIRE(s.type() == "lm_batches");
    REQUIRE(s.role() == Role::source);
    REQUIRE(s.outputs()[0].name == "ids");
    REQUIRE(s.outputs()[1].name == "targets");
    const Params p = default_params(s);
    REQUIRE(p.get_int("batch") == 32);
    REQUIRE(p.get_int("bptt") == 64);
    REQUIRE(StageSchema::check(*s.find_param("batch"), ParamValue(std::int64_t{0})) ==
            "must be in [1, 4096], got 0");
}

TEST_CASE("lm_batches: exact ids and targets, N=2, T=4, ids 0..25", "[stage][data]") {
    static const StageSchema s = LmBatches::schema();
    LmBatches stage(params_for(s, {{"batch", std::int64_t{2}}, {"bptt", std::int64_t{4}}}));
    FakePrepare ctx(s);
    auto vocab = std::make_shared<const Vocabulary>();
    ctx.info("in", PortInfo{PortType::sequences, -1, 26, vocab});
    ctx.data("in", "train", stream_0_to_25());
    stage.prepare(ctx);
    REQUIRE(ctx.out_info("ids").type == PortType::ids);
    REQUIRE(ctx.out_info("ids").classes == 26);
    REQUIRE(ctx.out_info("targets").classes == 26);
    REQUIRE(ctx.out_info("targets").vocab == vocab);

    // L = (26 - 1) / 2 = 12: stream 0 = 0..11, stream 1 = 12..23; 3 batches of 4 steps.
    for (int epoch = 0; epoch < 2; ++epoch) {  // a second pass gives the same batches
        REQUIRE(stage.begin("train", epoch) == 3);
        Batch b;
        REQUIRE(stage.next(b));
        REQUIRE(b.outputs.size() == 2);
        REQUIRE(b.outputs[0].shape() == Shape{4, 2});
        REQUIRE(b.outputs[0].lengths.empty());
        // (T, N) time-major: row t = {stream0[t], stream1[t]}
        REQUIRE(values(b.outputs[0]) == Vec{0, 12, 1, 13, 2, 14, 3, 15});
        REQUIRE(values(b.outputs[1]) == Vec{1, 13, 2, 14, 3, 15, 4, 16});
        REQUIRE(b.reset_state);
        REQUIRE(b.items == 8);
        REQUIRE(stage.next(b));
        REQUIRE(values(b.outputs[0]) == Vec{4, 16, 5, 17, 6, 18, 7, 19});
        REQUIRE_FALSE(b.reset_state);
        REQUIRE(stage.next(b));
        REQUIRE(values(b.outputs[0]) == Vec{8, 20, 9, 21, 10, 22, 11, 23});
        REQUIRE(values(b.outputs[1]) == Vec{9, 21, 10, 22, 11, 23, 12, 24});  // stream 0 ends into stream 1
        REQUIRE_FALSE(b.reset_state);
        REQUIRE_FALSE(stage.next(b));
    }
}

TEST_CASE("lm_batches: a short last batch", "[stage][data]") {
    static const StageSchema s = LmBatches::schema();
    LmBatches stage(params_for(s, {{"batch", std::int64_t{2}}, {"bptt", std::int64_t{5}}}));
    FakePrepare ctx(s);
    ctx.info("in", PortInfo{PortType::sequences, -1, 26, nullptr});
    ctx.data("in", "train", stream_0_to_25());
    stage.prepare(ctx);
    REQUIRE(stage.begin("train", 0) == 3);  // L = 12: 5 + 5 + 2
    Batch b;
    REQUIRE(stage.next(b));
    REQUIRE(stage.next(b));
    REQUIRE(stage.next(b));
    REQUIRE(b.outputs[0].shape() == Shape{2, 2});
    REQUIRE(b.outputs[0].lengths.empty());
    REQUIRE(values(b.outputs[0]) == Vec{10, 22, 11, 23});
    REQUIRE(values(b.outputs[1]) == Vec{11, 23, 12, 24});
    REQUIRE(b.items == 4);
    REQUIRE_FALSE(b.reset_state);
    REQUIRE_FALSE(stage.next(b));
}

TEST_CASE("lm_batches: splits without data, restore mode, too-short error", "[stage][data]") {
    static const StageSchema s = LmBatches::schema();
    SECTION("missing and empty splits give 0 batches") {
        LmBatches stage(params_for(s, {{"batch", std::int64_t{2}}}));
        FakePrepare ctx(s);
        ctx.info("in", PortInfo{PortType::sequences, -1, 26, nullptr});
        ctx.data("in", "train", stream_0_to_25());
        ctx.data("in", "valid", SequenceSplit{{{}, {}}, "valid.txt"});
        stage.prepare(ctx);
        REQUIRE(stage.begin("valid", 0) == 0);
        REQUIRE(stage.begin("test", 0) == 0);
        Batch b;
        REQUIRE_FALSE(stage.next(b));
    }
    SECTION("restore mode") {
        LmBatches stage(default_params(s));
        FakePrepare ctx(s, 1, PrepareMode::restore);
        ctx.info("in", PortInfo{PortType::sequences, -1, 26, nullptr});
        stage.prepare(ctx);
        REQUIRE(ctx.out_info("ids").classes == 26);
        REQUIRE(stage.begin("train", 0) == 0);
    }
    SECTION("a split too short for N streams") {
        LmBatches stage(params_for(s, {{"batch", std::int64_t{4}}}));
        FakePrepare ctx(s);
        ctx.info("in", PortInfo{PortType::sequences, -1, 26, nullptr});
        ctx.data("in", "train", stream_0_to_25());
        ctx.data("in", "valid", SequenceSplit{{{1, 2, 3, 4}}, "valid.txt"});
        try {
            stage.prepare(ctx);
            FAIL("no error");
        } catch (const Error& e) {
            REQUIRE(e.message() ==
                    "split 'valid' (valid.txt) has 4 ids, too few for batch = 4 streams (each needs at least 2)");
            REQUIRE(e.hint() == "lower batch to at most 3");
        }
    }
}
