#include <catch2/catch.hpp>

#include <cmath>

#include "stages/train/sgd.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Sgd;

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

Sgd make_sgd(const std::map<std::string, ParamValue>& set) {
    return Sgd(params_for(Sgd::schema(), set));
}

}  // namespace

TEST_CASE("sgd: schema defaults and bad values", "[stage][sgd]") {
    const StageSchema s = Sgd::schema();
    REQUIRE(s.role() == Role::optimizer);
    REQUIRE(s.inputs().at(0).name == "minimize");
    REQUIRE(s.inputs().at(0).type == PortType::loss);
    const Params p = default_params(s);
    REQUIRE(p.get_float("lr") == 1.0);
    REQUIRE(p.get_float("momentum") == 0.0);
    REQUIRE(p.get_float("weight_decay") == 0.0);
    REQUIRE(p.get_float("clip_norm") == 0.0);
    REQUIRE(p.get_float("lr_decay") == 1.0);
    REQUIRE(p.get_int("decay_after") == 0);
    REQUIRE(StageSchema::check(*s.find_param("lr"), ParamValue(0.0)) == "must be in [1e-12, 100], got 0");
    REQUIRE(StageSchema::check(*s.find_param("momentum"), ParamValue(1.0)) ==
            "must be in [0, 0.999], got 1");
}

TEST_CASE("sgd: plain step, norm returned and gradients zeroed", "[stage][sgd]") {
    Sgd sgd = make_sgd({{"lr", 0.1}});
    Param a = make_param("a.weight", {1, 2}, {0.5f, -1});
    sgd.attach({{"a.weight", &a}});
    REQUIRE(sgd.step(StepInfo{}) == Approx(std::sqrt(1.25)));
    REQUIRE(a.value.data<float>()[0] == Approx(0.95));
    REQUIRE(a.value.data<float>()[1] == Approx(2.1));
    REQUIRE(a.grad.data<float>()[0] == 0.f);
    REQUIRE(a.grad.data<float>()[1] == 0.f);
    REQUIRE(sgd.state().empty());  // no momentum, no state
}

TEST_CASE("sgd: a gradient its stage overwrites is left stale, with the same update", "[stage][sgd]") {
    const double momentum = GENERATE(0.0, 0.9);
    Sgd sgd = make_sgd({{"lr", 0.1}, {"momentum", momentum}, {"weight_decay", 0.01}});
    Param a = make_param("a.weight", {1, 2}, {0.5f, -1});
    Param b = make_param("b.weight", {1, 2}, {0.5f, -1});
    b.overwrites_grad = true;
    sgd.attach({{"a.weight", &a}, {"b.weight", &b}});
    for (int step = 0; step < 2; ++step) {
        set_grad(a, {0.5f, -1});
        set_grad(b, {0.5f, -1});
        b.grad_stale = false;  // the stage wrote it
        sgd.step(StepInfo{});
        REQUIRE(a.value.data<float>()[0] == b.value.data<float>()[0]);
        REQUIRE(a.value.data<float>()[1] == b.value.data<float>()[1]);
        REQUIRE(a.grad.data<float>()[0] == 0.f);
        REQUIRE_FALSE(a.grad_stale);
        REQUIRE(b.grad_stale);
        REQUIRE(b.grad.data<float>()[0] == 0.5f);  // left as it was: not read again
    }
    REQUIRE(a.value.data<float>()[0] != 1.f);
}

TEST_CASE("sgd: a row-sparse gradient updates its listed rows exactly as the dense step", "[stage][sgd]") {
    // Two copies of a (5, 3) parameter with the same gradient in rows 1 and 3, one marked
    // row-sparse: the same values after clipped steps, every gradient zeroed, the list cleared.
    // With momentum (or weight decay) every row changes, so the sparse copy takes the dense pass.
    const double momentum = GENERATE(0.0, 0.9);
    INFO("momentum " << momentum);
    Param d, s;
    for (Param* p : {&d, &s}) {
        p->value = Tensor::f32({5, 3});
        p->grad = Tensor::f32({5, 3});
        for (int e = 0; e < 15; ++e) p->value.data<float>()[e] = 0.1f * float(e) - 0.7f;
    }
    s.sparse_rows = true;
    Sgd sd = make_sgd({{"lr", 0.5}, {"clip_norm", 1.0}, {"momentum", momentum}});
    Sgd ss = make_sgd({{"lr", 0.5}, {"clip_norm", 1.0}, {"momentum", momentum}});
    sd.attach({{"w", &d}});
    ss.attach({{"w", &s}});
    for (int step = 0; step < 3; ++step) {
        for (Param* p : {&d, &s}) {
            p->grad.zero();
            for (int c = 0; c < 3; ++c) {
                p->grad.data<float>()[1 * 3 + c] = 0.3f * float(c + step) - 0.2f;
                p->grad.data<float>()[3 * 3 + c] = 0.9f - 0.4f * float(c);
            }
        }
        s.grad_rows = {1, 3};
        REQUIRE(grad_sum_squares(s) == Approx(grad_sum_squares(d)).epsilon(1e-12));
        REQUIRE(ss.step(StepInfo{}) == Approx(sd.step(StepInfo{})).epsilon(1e-12));
        for (int e = 0; e < 15; ++e) {
            REQUIRE(s.value.data<float>()[e] == d.value.data<float>()[e]);
            REQUIRE(s.grad.data<float>()[e] == 0.f);
        }
        REQUIRE(s.grad_rows.empty());
    }
    REQUIRE(s.value.data<float>()[0] == d.value.data<float>()[0]);
}

TEST_CASE("sgd: momentum and weight decay, two steps by hand", "[stage][sgd]") {
    Sgd sgd = make_sgd({{"lr", 0.5}, {"momentum", 0.9}, {"weight_decay", 0.1}});
    Param a = make_param("a", {2}, {1});
    sgd.attach({{"a", &a}});
    sgd.step(StepInfo{});
    // g = 1 + 0.1·2 = 1.2; buf = 1.2; w = 2 - 0.5·1.2 = 1.4
    REQUIRE(a.value.data<float>()[0] == Approx(1.4));
    set_grad(a, {-1});
    sgd.step(StepInfo{});
    // g = -1 + 0.1·1.4 = -0.86; buf = 0.9·1.2 - 0.86 = 0.22; w = 1.4 - 0.5·0.22 = 1.29
    REQUIRE(a.value.data<float>()[0] == Approx(1.29));
    REQUIRE(sgd.state().at(0).first == "a.momentum");
    REQUIRE(sgd.state().at(0).second->data<float>()[0] == Approx(0.22));
}

TEST_CASE("sgd: clipping scales the global norm to clip_norm", "[stage][sgd]") {
    Sgd sgd = make_sgd({{"lr", 1.0}, {"clip_norm", 1.0}});
    Param a = make_param("a", {0}, {3});
    Param b = make_param("b", {0}, {4});
    Param frozen = make_param("f", {7}, {100});
    frozen.trainable = false;
    sgd.attach({{"a", &a}, {"b", &b}, {"f", &frozen}});
    REQUIRE(sgd.step(StepInfo{}) == Approx(5.0));  // before clipping; frozen not counted
    REQUIRE(a.value.data<float>()[0] == Approx(-0.6));
    REQUIRE(b.value.data<float>()[0] == Approx(-0.8));
    REQUIRE(frozen.value.data<float>()[0] == 7.f);
    REQUIRE(frozen.grad.data<float>()[0] == 0.f);
    // Below the threshold nothing is scaled.
    set_grad(a, {0.3f});
    set_grad(b, {0.4f});
    REQUIRE(sgd.step(StepInfo{}) == Approx(0.5));
    REQUIRE(a.value.data<float>()[0] == Approx(-0.9));
}

TEST_CASE("sgd: learning rate per epoch", "[stage][sgd]") {
    // PTB schedule: lr 1 for 4 epochs, then halve each epoch.
    Sgd ptb = make_sgd({{"lr", 1.0}, {"lr_decay", 0.5}, {"decay_after", std::int64_t(4)}});
    const std::vector<double> want{1, 1, 1, 1, 0.5, 0.25, 0.125};
    for (std::int64_t e = 0; e < 7; ++e) {
        ptb.begin_epoch(e);
        REQUIRE(ptb.learning_rate() == Approx(want[static_cast<std::size_t>(e)]));
    }
    Sgd flat = make_sgd({{"lr", 0.3}, {"lr_decay", 0.5}});  // decay_after 0: never decays
    flat.begin_epoch(9);
    REQUIRE(flat.learning_rate() == Approx(0.3));
    // The rate in use is the epoch's.
    Param a = make_param("a", {0}, {1});
    ptb.attach({{"a", &a}});
    ptb.begin_epoch(5);
    ptb.step(StepInfo{});
    REQUIRE(a.value.data<float>()[0] == Approx(-0.25));
}

TEST_CASE("sgd: state round-trip continues exactly", "[stage][sgd]") {
    const std::map<std::string, ParamValue> cfg{{"lr", 0.1}, {"momentum", 0.5}};
    Sgd one = make_sgd(cfg);
    Param a = make_param("a", {1, -1}, {0.3f, 0.7f});
    one.attach({{"a", &a}});
    one.step(StepInfo{});

    std::map<std::string, Tensor> saved;
    for (const auto& [name, t] : one.state()) saved[name] = *t;
    REQUIRE(saved.count("a.momentum") == 1);
    Param b = a;
    Sgd two = make_sgd(cfg);
    two.attach({{"a", &b}});
    two.load_state(saved);
    set_grad(a, {-0.2f, 0.1f});
    set_grad(b, {-0.2f, 0.1f});
    one.step(StepInfo{});
    two.step(StepInfo{});
    for (int i = 0; i < 2; ++i) REQUIRE(a.value.data<float>()[i] == b.value.data<float>()[i]);

    Sgd three = make_sgd(cfg);
    three.attach({{"a", &b}});
    REQUIRE_THROWS_WITH(three.load_state({}), "sgd: optimiser state has no 'a.momentum'");
    std::map<std::string, Tensor> wrong{{"a.momentum", Tensor::f32({3})}};
    REQUIRE_THROWS_WITH(three.load_state(wrong),
                        "sgd: optimiser state 'a.momentum' is f32 (3), expected f32 (2)");
}

TEST_CASE("sgd: a NaN gradient is an error and changes nothing", "[stage][sgd]") {
    Sgd sgd = make_sgd({});
    Param a = make_param("a", {1}, {std::nanf("")});
    sgd.attach({{"a", &a}});
    REQUIRE_THROWS_WITH(sgd.step(StepInfo{}),
                        "sgd: gradient norm is nan (NaN or inf in a gradient); lower lr or set clip_norm");
    REQUIRE(a.value.data<float>()[0] == 1.f);
}
