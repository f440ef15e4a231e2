#include <catch2/catch.hpp>

#include "stages/model/word_dropout.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::WordDropout;

namespace {

// <pad> 0, <unk> 1, "common" 2 (count 1000), "rare" 3 (count 1).
PortInfo vocab_info() {
    PortInfo i;
    i.type = PortType::ids;
    i.vocab = std::make_shared<const Vocabulary>(std::vector<std::string>{"<pad>", "<unk>", "common", "rare"},
                                                 std::vector<std::int64_t>{0, 0, 1000, 1},
                                                 std::vector<std::string>{"<pad>", "<unk>"}, TokenizerSpec{});
    i.classes = i.vocab->size();
    return i;
}

Tensor run(WordDropout& d, const StageSchema& s, const Tensor& x, Phase phase, std::int64_t batch = 0) {
    Tensor y;
    Saved saved;
    auto in = make_inputs(s, {&x});
    auto o = make_outputs(s, {&y});
    StepInfo step;
    step.phase = phase;
    step.batch = batch;
    d.forward(in, o, saved, step);
    return y;
}

}  // namespace

TEST_CASE("word_dropout: replaces by <unk> in training only, rare words more often", "[stage][word_dropout]") {
    const StageSchema s = WordDropout::schema();
    REQUIRE(!s.is_differentiable());
    WordDropout d(params_for(s, {{"alpha", 0.25}}));
    FakePrepare ctx(s);
    ctx.info("in", vocab_info());
    d.prepare(ctx);
    REQUIRE(ctx.out_info("out").classes == 4);
    // T = 2000, N = 2: column 0 all "common"/"rare" alternating; column 1 length 1000 (padding 3s).
    Tensor x = Tensor::i32({2000, 2});
    for (int t = 0; t < 2000; ++t) {
        x.data<std::int32_t>()[t * 2] = t % 2 ? 3 : 2;
        x.data<std::int32_t>()[t * 2 + 1] = t < 1000 ? 0 : 3;  // <pad> tokens are never replaced
    }
    x.lengths = {2000, 1000};
    const Tensor e = run(d, s, x, Phase::evaluate);
    REQUIRE(e.lengths == x.lengths);
    for (int i = 0; i < 4000; ++i) REQUIRE(e.data<std::int32_t>()[i] == x.data<std::int32_t>()[i]);

    const Tensor y = run(d, s, x, Phase::train);
    int common = 0, rare = 0;
    for (int t = 0; t < 2000; ++t) {
        const std::int32_t v = y.data<std::int32_t>()[t * 2];
        REQUIRE((v == x.data<std::int32_t>()[t * 2] || v == 1));
        if (v == 1) (t % 2 ? rare : common) += 1;
        REQUIRE(y.data<std::int32_t>()[t * 2 + 1] == x.data<std::int32_t>()[t * 2 + 1]);  // pad, padding
    }
    // Expected: rare 1000 * 0.25 / 1.25 = 200; common 1000 * 0.25 / 1000.25 ~ 0.25.
    REQUIRE(rare > 150);
    REQUIRE(rare < 250);
    REQUIRE(common <= 5);
    // Same step, same choice; another batch, another.
    const Tensor y2 = run(d, s, x, Phase::train);
    for (int i = 0; i < 4000; ++i) REQUIRE(y2.data<std::int32_t>()[i] == y.data<std::int32_t>()[i]);
    const Tensor y3 = run(d, s, x, Phase::train, 1);
    int differ = 0;
    for (int i = 0; i < 4000; ++i) differ += y3.data<std::int32_t>()[i] != y.data<std::int32_t>()[i];
    REQUIRE(differ > 0);
}

TEST_CASE("word_dropout: needs a vocabulary with <unk>", "[stage][word_dropout]") {
    const StageSchema s = WordDropout::schema();
    WordDropout d(params_for(s, {{"p", 0.1}}));
    FakePrepare ctx(s);
    PortInfo none;
    none.type = PortType::ids;
    none.classes = 5;
    ctx.info("in", none);
    REQUIRE_THROWS_WITH(d.prepare(ctx), Catch::Contains("needs ids from a vocabulary"));
    PortInfo nounk = vocab_info();
    nounk.vocab = std::make_shared<const Vocabulary>(std::vector<std::string>{"a", "b"}, std::vector<std::int64_t>{2, 1},
                                                     std::vector<std::string>{}, TokenizerSpec{});
    FakePrepare ctx2(s);
    ctx2.info("in", nounk);
    REQUIRE_THROWS_WITH(d.prepare(ctx2), Catch::Contains("has no <unk>"));
}
