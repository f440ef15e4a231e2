// rmsprop and adagrad: updates against hand-computed values, weight decay, clipping, the state
// round trip and bad parameters. The engine-level kill-and-resume test is in resume_test.cpp.
#include <catch2/catch.hpp>

#include <cmath>

#include "stages/train/adagrad.hpp"
#include "stages/train/rmsprop.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Adagrad;
using rnnflow::stages::Rmsprop;

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

// float state against double by hand over three steps: relative error ~1e-6.
const double float_state = 1e-5;

// The optimiser's state tensors, copied out by name.
template <class Opt>
std::map<std::string, Tensor> state_of(const Opt& opt) {
    std::map<std::string, Tensor> saved;
    for (const auto& [name, t] : opt.state()) saved[name] = *t;
    return saved;
}

}  // namespace

TEST_CASE("rmsprop: schema defaults and bad values", "[stage][rmsprop]") {
    const StageSchema s = Rmsprop::schema();
    REQUIRE(s.role() == Role::optimizer);
    REQUIRE(s.inputs().at(0).type == PortType::loss);
    const Params p = default_params(s);
    REQUIRE(p.get_float("lr") == Approx(1e-2));
    REQUIRE(p.get_float("alpha") == Approx(0.99));
    REQUIRE(p.get_float("eps") == Approx(1e-8));
    REQUIRE(p.get_float("weight_decay") == 0.0);
    REQUIRE(p.get_float("clip_norm") == 0.0);
    REQUIRE(StageSchema::check(*s.find_param("alpha"), ParamValue(1.0)) ==
            "must be in [0, 0.9999], got 1");
    REQUIRE(StageSchema::check(*s.find_param("eps"), ParamValue(0.0)) ==
            "must be in [1e-12, 1], got 0");
    REQUIRE(StageSchema::check(*s.find_param("lr"), ParamValue(-0.1)) ==
            "must be in [1e-12, 100], got -0.1");
}

TEST_CASE("rmsprop: three steps by hand (decay rate, eps outside the root)", "[stage][rmsprop]") {
    // A large eps and a small alpha make both visible: eps inside the root (TensorFlow 1) or
    // alpha = 0.99 would give other numbers at the first step already.
    const double lr = 0.1, alpha = 0.5, eps = 0.25;
    Rmsprop opt(params_for(Rmsprop::schema(), {{"lr", lr}, {"alpha", alpha}, {"eps", eps}}));
    Param a = make_param("a", {1, -2}, {0, 0});
    opt.attach({{"a", &a}});
    const std::vector<std::vector<double>> grads{{0.5, -1.0}, {-0.2, 3.0}, {0.1, 0.0}};
    double w[2] = {1, -2}, v[2] = {0, 0};
    for (const auto& g : grads) {
        set_grad(a, {static_cast<float>(g[0]), static_cast<float>(g[1])});
        REQUIRE(opt.step(StepInfo{}) == Approx(std::hypot(g[0], g[1])));
        for (int e = 0; e < 2; ++e) {
            v[e] = alpha * v[e] + (1 - alpha) * g[e] * g[e];
            w[e] -= lr * g[e] / (std::sqrt(v[e]) + eps);
            REQUIRE(a.value.data<float>()[e] == Approx(w[e]).epsilon(float_state));
            REQUIRE(a.grad.data<float>()[e] == 0.f);
        }
    }
    // Step 1 by hand: v = 0.125, w = 1 - 0.1 · 0.5 / (0.35355 + 0.25) = 0.917157.
    Rmsprop one(params_for(Rmsprop::schema(), {{"lr", lr}, {"alpha", alpha}, {"eps", eps}}));
    Param b = make_param("b", {1}, {0.5f});
    one.attach({{"b", &b}});
    one.step(StepInfo{});
    REQUIRE(b.value.data<float>()[0] == Approx(0.917157).epsilon(1e-5));
    REQUIRE(state_of(one).at("b.square_avg").data<float>()[0] == Approx(0.125));
}

TEST_CASE("rmsprop: weight decay in the gradient, clipping and schedule", "[stage][rmsprop]") {
    SECTION("weight decay is added to the gradient before the average") {
        Rmsprop opt(params_for(Rmsprop::schema(), {{"lr", 0.1}, {"alpha", 0.5}, {"weight_decay", 0.5}}));
        Param a = make_param("a", {2}, {0});
        opt.attach({{"a", &a}});
        opt.step(StepInfo{});
        // g = 1, v = 0.5: w = 2 - 0.1 / sqrt(0.5)
        REQUIRE(a.value.data<float>()[0] == Approx(2 - 0.1 / std::sqrt(0.5)).epsilon(1e-6));
    }
    SECTION("clipping scales all gradients by one factor; the norm returned is before clipping") {
        Rmsprop opt(params_for(Rmsprop::schema(), {{"alpha", 0.0}, {"clip_norm", 1.0}}));
        Param a = make_param("a", {0}, {3});
        Param b = make_param("b", {0}, {-4});
        opt.attach({{"a", &a}, {"b", &b}});
        REQUIRE(opt.step(StepInfo{}) == Approx(5.0));
        REQUIRE(state_of(opt).at("a.square_avg").data<float>()[0] == Approx(0.36));
        REQUIRE(state_of(opt).at("b.square_avg").data<float>()[0] == Approx(0.64));
    }
    SECTION("schedule") {
        Rmsprop opt(params_for(Rmsprop::schema(), {{"lr", 0.01}, {"lr_decay", 0.5}, {"decay_after", std::int64_t(2)}}));
        opt.begin_epoch(0);
        REQUIRE(opt.learning_rate() == Approx(0.01));
        opt.begin_epoch(1);  // e + 1 - decay_after = 0: the full rate
        REQUIRE(opt.learning_rate() == Approx(0.01));
        opt.begin_epoch(3);  // halved twice
        REQUIRE(opt.learning_rate() == Approx(0.0025));
    }
}

TEST_CASE("adagrad: schema defaults and bad values", "[stage][adagrad]") {
    const StageSchema s = Adagrad::schema();
    REQUIRE(s.role() == Role::optimizer);
    const Params p = default_params(s);
    REQUIRE(p.get_float("lr") == Approx(1e-2));
    REQUIRE(p.get_float("eps") == Approx(1e-10));
    REQUIRE(p.get_float("initial_accumulator") == 0.0);
    REQUIRE(p.get_float("weight_decay") == 0.0);
    REQUIRE(StageSchema::check(*s.find_param("initial_accumulator"), ParamValue(-1.0)) ==
            "must be in [0, 100], got -1");
    REQUIRE(StageSchema::check(*s.find_param("weight_decay"), ParamValue(2.0)) ==
            "must be in [0, 1], got 2");
}

TEST_CASE("adagrad: three steps by hand (initial accumulator, eps outside the root)", "[stage][adagrad]") {
    const double lr = 0.5, eps = 0.25, init = 0.5, wd = 0.1;
    Adagrad opt(params_for(Adagrad::schema(),
                           {{"lr", lr}, {"eps", eps}, {"initial_accumulator", init}, {"weight_decay", wd}}));
    Param a = make_param("a", {1, -2}, {0, 0});
    opt.attach({{"a", &a}});
    const std::vector<std::vector<double>> grads{{0.5, -1.0}, {-0.2, 3.0}, {0.1, 0.0}};
    double w[2] = {1, -2}, s[2] = {init, init};
    for (const auto& g : grads) {
        set_grad(a, {static_cast<float>(g[0]), static_cast<float>(g[1])});
        opt.step(StepInfo{});
        for (int e = 0; e < 2; ++e) {
            const double ge = g[e] + wd * w[e];
            s[e] += ge * ge;
            w[e] -= lr * ge / (std::sqrt(s[e]) + eps);
            REQUIRE(a.value.data<float>()[e] == Approx(w[e]).epsilon(float_state));
        }
    }
    REQUIRE(state_of(opt).at("a.sum").data<float>()[1] == Approx(s[1]).epsilon(float_state));
    // Step 1 by hand, without decay: s = 0.5 + 0.25, w = 1 - 0.5 · 0.5 / (0.866025 + 0.25) = 0.775995.
    Adagrad one(params_for(Adagrad::schema(), {{"lr", lr}, {"eps", eps}, {"initial_accumulator", init}}));
    Param b = make_param("b", {1}, {0.5f});
    one.attach({{"b", &b}});
    one.step(StepInfo{});
    REQUIRE(b.value.data<float>()[0] == Approx(0.775995).epsilon(1e-5));
}

TEST_CASE("rmsprop, adagrad: state round-trip continues exactly; a missing or misshapen state is refused",
          "[stage][rmsprop][adagrad]") {
    auto check = [](auto make, const std::string& key, const std::string& type) {
        auto one = make();
        Param a = make_param("embed.weight", {1, -1}, {0.3f, 0.7f});
        Param frozen = make_param("frozen", {5}, {1});
        frozen.trainable = false;
        one.attach({{"embed.weight", &a}, {"frozen", &frozen}});
        one.step(StepInfo{});
        REQUIRE(frozen.value.data<float>()[0] == 5.f);
        REQUIRE(frozen.grad.data<float>()[0] == 0.f);
        set_grad(a, {0.1f, -0.4f});
        one.step(StepInfo{});
        std::map<std::string, Tensor> saved = state_of(one);
        REQUIRE(saved.size() == 1);  // nothing for the frozen parameter
        REQUIRE(saved.count(key) == 1);

        Param b = a;
        auto two = make();
        two.attach({{"embed.weight", &b}, {"frozen", &frozen}});
        two.load_state(saved);
        for (int k = 0; k < 3; ++k) {
            set_grad(a, {-0.5f, 0.2f * static_cast<float>(k)});
            set_grad(b, {-0.5f, 0.2f * static_cast<float>(k)});
            one.step(StepInfo{});
            two.step(StepInfo{});
        }
        for (int i = 0; i < 2; ++i) REQUIRE(a.value.data<float>()[i] == b.value.data<float>()[i]);

        auto three = make();
        three.attach({{"embed.weight", &b}, {"frozen", &frozen}});
        saved[key] = Tensor::f32({3});
        REQUIRE_THROWS_WITH(three.load_state(saved), type + ": optimiser state '" + key +
                                                         "' is f32 (3), expected f32 (2)");
        saved.erase(key);
        REQUIRE_THROWS_WITH(three.load_state(saved), type + ": optimiser state has no '" + key + "'");
    };
    SECTION("rmsprop") {
        check([] { return Rmsprop(params_for(Rmsprop::schema(), {{"lr", 0.05}})); },
              "embed.weight.square_avg", "rmsprop");
    }
    SECTION("adagrad") {
        check([] { return Adagrad(params_for(Adagrad::schema(), {{"lr", 0.05}, {"initial_accumulator", 0.1}})); },
              "embed.weight.sum", "adagrad");
    }
}

TEST_CASE("rmsprop, adagrad: a NaN gradient stops the step naming the optimiser", "[stage][rmsprop][adagrad]") {
    Rmsprop r(params_for(Rmsprop::schema(), {}));
    Param a = make_param("a", {1}, {std::nanf("")});
    r.attach({{"a", &a}});
    REQUIRE_THROWS_WITH(r.step(StepInfo{}), Catch::Contains("rmsprop: gradient norm is nan"));
    Adagrad g(params_for(Adagrad::schema(), {}));
    g.attach({{"a", &a}});
    REQUIRE_THROWS_WITH(g.step(StepInfo{}), Catch::Contains("adagrad: gradient norm is nan"));
}
