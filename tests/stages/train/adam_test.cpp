#include <catch2/catch.hpp>

#include <cmath>

#include "stages/train/adam.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Adam;

namespace {

Param make_param(const std::string& name, std::vector<float> value, std::vector<float> grad) {
    Param p;
    p.name = name;
    const auto n = static_cast<std::int64_t>(value.size());
    p.value = Tensor::f32({n});
    p.grad = Tensor::f32({n});
    std::copy(value.begin(), value.end(), p.value.data<float>());
    std::copy(grad.begin(), grad.end(), p.grad.data<float>());
    return p;
}

void set_grad(Param& p, std::vector<float> g) { std::copy(g.begin(), g.end(), p.grad.data<float>()); }

Adam make_adam(const std::map<std::string, ParamValue>& set) {
    return Adam(params_for(Adam::schema(), set));
}

}  // namespace

TEST_CASE("adam: schema defaults and bad values", "[stage][adam]") {
    const StageSchema s = Adam::schema();
    REQUIRE(s.role() == Role::optimizer);
    REQUIRE(s.inputs().at(0).type == PortType::loss);
    const Params p = default_params(s);
    REQUIRE(p.get_float("lr") == Approx(1e-3));
    REQUIRE(p.get_float("beta1") == Approx(0.9));
    REQUIRE(p.get_float("beta2") == Approx(0.999));
    REQUIRE(p.get_float("eps") == Approx(1e-8));
    REQUIRE(p.get_float("weight_decay") == 0.0);
    REQUIRE(p.get_float("clip_norm") == 0.0);
    REQUIRE(p.get_float("lr_decay") == 1.0);
    REQUIRE(p.get_int("decay_after") == 0);
    REQUIRE(StageSchema::check(*s.find_param("beta1"), ParamValue(1.0)) ==
            "must be in [0, 0.9999], got 1");
}

TEST_CASE("adam: two steps by hand", "[stage][adam]") {
    Adam adam = make_adam({{"lr", 0.1}});
    Param a = make_param("a", {1}, {0.5f});
    adam.attach({{"a", &a}});
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8, lr = 0.1;
    REQUIRE(adam.step(StepInfo{}) == Approx(0.5));
    // k = 1: m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25; w = 1 - 0.1 · 0.5 / (0.5 + eps)
    double m = 0.05, v = 0.00025;
    double w = 1 - lr * (m / (1 - b1)) / (std::sqrt(v / (1 - b2)) + eps);
    REQUIRE(a.value.data<float>()[0] == Approx(w).epsilon(1e-6));
    REQUIRE(a.grad.data<float>()[0] == 0.f);
    set_grad(a, {-0.2f});
    adam.step(StepInfo{});
    // k = 2: m = 0.9 · 0.05 - 0.1 · 0.2 = 0.025, v = 0.999 · 0.00025 + 0.001 · 0.04
    m = 0.025;
    v = 0.00028975;
    w -= lr * (m / (1 - b1 * b1)) / (std::sqrt(v / (1 - b2 * b2)) + eps);
    // float moments against double by hand: the relative error of the step is ~1e-5.
    const double float_moments = 1e-5;
    REQUIRE(a.value.data<float>()[0] == Approx(w).epsilon(float_moments));  // ≈ 0.86544
}

TEST_CASE("adam: decoupled weight decay, clipping and schedule", "[stage][adam]") {
    SECTION("weight decay shrinks weights outside the moments") {
        Adam adam = make_adam({{"lr", 0.1}, {"weight_decay", 0.5}});
        Param a = make_param("a", {2}, {0});
        adam.attach({{"a", &a}});
        adam.step(StepInfo{});
        REQUIRE(a.value.data<float>()[0] == Approx(2 * (1 - 0.1 * 0.5)));
    }
    SECTION("clipping: the first step is lr · sign for any scale, the norm is pre-clip") {
        Adam adam = make_adam({{"lr", 0.1}, {"clip_norm", 1.0}});
        Param a = make_param("a", {0}, {3});
        Param b = make_param("b", {0}, {-4});
        adam.attach({{"a", &a}, {"b", &b}});
        REQUIRE(adam.step(StepInfo{}) == Approx(5.0));
        REQUIRE(a.value.data<float>()[0] == Approx(-0.1));
        REQUIRE(b.value.data<float>()[0] == Approx(0.1));
        // m holds the clipped gradient (1 - b1) · 0.6.
        REQUIRE(adam.state().at(0).first == "a.m");
        REQUIRE(adam.state().at(0).second->data<float>()[0] == Approx(0.1 * 0.6));
    }
    SECTION("schedule") {
        Adam adam = make_adam({{"lr", 0.01}, {"lr_decay", 0.1}, {"decay_after", std::int64_t(1)}});
        adam.begin_epoch(0);
        REQUIRE(adam.learning_rate() == Approx(0.01));
        adam.begin_epoch(2);
        REQUIRE(adam.learning_rate() == Approx(0.0001));
    }
}

TEST_CASE("adam: state round-trip continues exactly", "[stage][adam]") {
    const std::map<std::string, ParamValue> cfg{{"lr", 0.05}};
    Adam one = make_adam(cfg);
    Param a = make_param("embed.weight", {1, -1}, {0.3f, 0.7f});
    one.attach({{"embed.weight", &a}});
    one.step(StepInfo{});
    set_grad(a, {0.1f, -0.4f});
    one.step(StepInfo{});

    std::map<std::string, Tensor> saved;
    for (const auto& [name, t] : one.state()) saved[name] = *t;
    REQUIRE(saved.size() == 3);
    REQUIRE(saved.at("step").dtype() == DType::i32);
    REQUIRE(saved.at("step").data<std::int32_t>()[0] == 2);
    REQUIRE(saved.count("embed.weight.m") == 1);
    REQUIRE(saved.count("embed.weight.v") == 1);

    Param b = a;
    Adam two = make_adam(cfg);
    two.attach({{"embed.weight", &b}});
    two.load_state(saved);
    set_grad(a, {-0.5f, 0.2f});
    set_grad(b, {-0.5f, 0.2f});
    one.step(StepInfo{});
    two.step(StepInfo{});
    for (int i = 0; i < 2; ++i) REQUIRE(a.value.data<float>()[i] == b.value.data<float>()[i]);

    saved.erase("step");
    Adam three = make_adam(cfg);
    three.attach({{"embed.weight", &b}});
    REQUIRE_THROWS_WITH(three.load_state(saved), "adam: optimiser state has no 'step'");
}
