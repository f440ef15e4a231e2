// attention_decoder conditioned on one vector per item (Show and Tell): a state input of one row
// (1, 1, N, D) that says it has one direction (caption_batches.state), as the bridge's source and,
// with attention none, as the fixed context C. Its memory has E = 2 * D channels: the case where
// guessing the directions from the channel counts would read two rows that are not there.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <random>

#include "stages/model/attention_decoder.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::AttentionDecoder;

namespace {

using Set = std::map<std::string, ParamValue>;

std::shared_ptr<const Vocabulary> words_vocab() {
    std::vector<std::string> t{"<pad>", "<unk>", "<sos>", "<eos>", "a", "b", "c", "d"};
    return std::make_shared<const Vocabulary>(t, std::vector<std::int64_t>(t.size(), 1),
                                              std::vector<std::string>{"<pad>", "<unk>", "<sos>", "<eos>"},
                                              TokenizerSpec{});
}

constexpr std::int64_t kD = 3, kE = 6, kN = 3;  // E = 2 * D on purpose

Tensor random_tensor(Shape s, std::uint64_t seed) {
    Tensor t = Tensor::f32(std::move(s));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (std::int64_t e = 0; e < t.numel(); ++e) t.data<float>()[e] = u(rng);
    return t;
}

struct Inputs3 {
    Tensor memory, state, target;
};

// Memory (F, N, E): regions of the items, 4, 1 and 2 rows; state (1, 1, N, D); targets.
Inputs3 inputs(std::uint64_t seed) {
    Inputs3 x;
    x.memory = random_tensor({4, kN, kE}, seed);
    x.memory.lengths = {4, 1, 2};
    for (std::int64_t r = 0; r < 4; ++r)
        for (std::int64_t n = 0; n < kN; ++n)
            if (r >= x.memory.lengths[std::size_t(n)])
                std::fill_n(x.memory.data<float>() + (r * kN + n) * kE, kE, 0.f);
    x.state = random_tensor({1, 1, kN, kD}, seed + 1);
    x.target = Tensor::i32({3, kN});
    const std::int32_t y[] = {2, 2, 2, 4, 5, 6, 7, 0, 4};
    std::copy(std::begin(y), std::end(y), x.target.data<std::int32_t>());
    x.target.lengths = {3, 2, 3};
    return x;
}

std::unique_ptr<AttentionDecoder> prepared(const StageSchema& schema, const Set& set) {
    auto dec = std::make_unique<AttentionDecoder>(test::params_for(schema, set));
    test::FakePrepare ctx(schema, 5);
    ctx.info("memory", PortInfo{PortType::tensor, kE, -1, nullptr});
    ctx.info("state", PortInfo{PortType::state, kD, -1, nullptr, 1});
    const auto v = words_vocab();
    ctx.info("target_in", PortInfo{PortType::ids, -1, v->size(), v});
    dec->prepare(ctx);
    return dec;
}

}  // namespace

TEST_CASE("attention_decoder: a one-vector state (directions 1) feeds the bridge and the fixed context",
          "[stage][attention_decoder][grad]") {
    const std::string cell = GENERATE(std::string("lstm"), std::string("gru"));
    const std::string scoring = GENERATE(std::string("bahdanau"), std::string("none"));
    INFO(cell << " " << scoring);
    const StageSchema schema = AttentionDecoder::schema();
    const Set set{{"cell", cell}, {"hidden", std::int64_t(5)}, {"embedding_dim", std::int64_t(4)},
                  {"attention", scoring}, {"attention_dim", std::int64_t(3)}};
    auto dec = prepared(schema, set);
    // One direction: the bridge maps D channels, not 2 * D.
    CHECK(dec->param("bridge.weights_h").value.shape() == Shape{kD, 1, 5});
    if (scoring == "none") CHECK(dec->param("combine.weights").value.shape() == Shape{kD + 5, 5});
    Inputs3 x = inputs(17);
    test::GradCheckOptions opt;
    opt.samples = 16;
    const auto res = test::check_gradients(*dec, schema, {&x.memory, &x.state, &x.target}, opt);
    INFO(res.report);
    CHECK(res.ok);
    CHECK(res.checked > 60);
}

TEST_CASE("attention_decoder: the state's directions decide, not the channel counts",
          "[stage][attention_decoder]") {
    const StageSchema schema = AttentionDecoder::schema();
    const Set set{{"cell", std::string("gru")}, {"hidden", std::int64_t(5)}, {"attention", std::string("none")}};
    auto make = [&](std::int64_t directions) {
        auto dec = std::make_unique<AttentionDecoder>(test::params_for(schema, set));
        test::FakePrepare ctx(schema, 5);
        ctx.info("memory", PortInfo{PortType::tensor, kE, -1, nullptr});
        ctx.info("state", PortInfo{PortType::state, kD, -1, nullptr, directions});
        const auto v = words_vocab();
        ctx.info("target_in", PortInfo{PortType::ids, -1, v->size(), v});
        dec->prepare(ctx);
        return dec;
    };
    CHECK(make(1)->param("bridge.weights_h").value.dim(0) == kD);
    CHECK(make(2)->param("bridge.weights_h").value.dim(0) == 2 * kD);
    // A producer that does not say (a plug-in): two when memory has 2 * D channels, as before.
    CHECK(make(-1)->param("bridge.weights_h").value.dim(0) == 2 * kD);
    REQUIRE_THROWS_WITH(make(3), Catch::Contains("input 'state' has 3 directions (1 or 2)"));
}
