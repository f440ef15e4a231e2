#include <catch2/catch.hpp>

#include <cmath>

#include "stages/eval/perplexity.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Perplexity;

namespace {
void add(Perplexity& p, const StageSchema& s, float sum, float count) {
    Tensor loss = Tensor::f32({2});
    loss.data<float>()[0] = sum;
    loss.data<float>()[1] = count;
    p.accumulate(make_inputs(s, {&loss}), StepInfo{});
}
}  // namespace

TEST_CASE("perplexity: schema", "[stage][perplexity]") {
    const StageSchema s = Perplexity::schema();
    REQUIRE(s.type() == "perplexity");
    REQUIRE(s.role() == Role::metric);
    REQUIRE(s.inputs().at(0).type == PortType::loss);
    REQUIRE(s.params().empty());
}

TEST_CASE("perplexity: exp of the mean loss, with loss and bpc", "[stage][perplexity]") {
    const StageSchema s = Perplexity::schema();
    Perplexity p(default_params(s));
    p.begin("valid");
    add(p, s, 2.0f, 2);
    add(p, s, 1.0f, 1);  // mean loss (2 + 1) / 3 = 1 nat
    const auto m = p.end();
    REQUIRE(m.size() == 3);
    REQUIRE(m[0].name.empty());
    REQUIRE(m[0].value == Approx(std::exp(1.0)));
    REQUIRE_FALSE(m[0].higher_is_better);
    REQUIRE(m[1].name == "loss");
    REQUIRE(m[1].value == Approx(1.0));
    REQUIRE(m[2].name == "bpc");
    REQUIRE(m[2].value == Approx(1.0 / std::log(2.0)));

    // begin resets.
    p.begin("test");
    add(p, s, 0.0f, 4);
    REQUIRE(p.end()[0].value == Approx(1.0));
}

TEST_CASE("perplexity: no items is an error", "[stage][perplexity]") {
    const StageSchema s = Perplexity::schema();
    Perplexity p(default_params(s));
    p.begin("valid");
    add(p, s, 0.0f, 0);
    REQUIRE_THROWS_WITH(p.end(), "perplexity: no items evaluated in split 'valid' (count 0); is the split empty?");
}
