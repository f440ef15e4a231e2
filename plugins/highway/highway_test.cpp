// highway: schema, forward by hand, backward against finite differences (both activations),
// and the built plug-in.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>

#include <rnnflow/registry.hpp>
#include <rnnflow/testing/gradcheck.hpp>
#include <rnnflow/testing/harness.hpp>

#include "highway.hpp"

using namespace rnnflow;
using highway_plugin::Highway;

namespace {

const StageSchema& schema() {
    static const StageSchema s = Highway::schema();
    return s;
}

std::unique_ptr<Highway> prepared(std::int64_t C, const std::map<std::string, ParamValue>& set = {}) {
    auto st = std::make_unique<Highway>(test::params_for(schema(), set));
    test::FakePrepare ctx(schema(), /*seed=*/5);
    ctx.info("in", PortInfo{PortType::tensor, C, -1, nullptr});
    st->prepare(ctx);
    REQUIRE(ctx.out_info("out").channels == C);
    return st;
}

Tensor run(Highway& st, const Tensor& x) {
    Tensor y;
    Saved saved;
    auto in = test::make_inputs(schema(), {&x});
    auto out = test::make_outputs(schema(), {&y});
    st.forward(in, out, saved, StepInfo{});
    return y;
}

}  // namespace

TEST_CASE("highway: schema defaults and bad values", "[highway]") {
    REQUIRE(schema().type() == "highway");
    REQUIRE(schema().is_differentiable());
    const Params p = default_params(schema());
    REQUIRE(p.get_float("gate_bias") == -1.0);
    REQUIRE(p.get_string("act") == "tanh");
    REQUIRE(StageSchema::check(*schema().find_param("gate_bias"), ParamValue(-11.0)) == "must be in [-10, 10], got -11");
    REQUIRE_THAT(StageSchema::check(*schema().find_param("act"), ParamValue(std::string("gelu"))),
                 Catch::StartsWith("must be one of"));
}

TEST_CASE("highway: parameters start as documented", "[highway]") {
    auto st = prepared(4, {{"gate_bias", -2.0}});
    auto ps = st->params();
    REQUIRE(ps.size() == 4);
    REQUIRE(ps[0].name == "weights_h");
    REQUIRE(ps[0].value.shape() == Shape{4, 4});
    REQUIRE(ps[3].name == "bias_t");
    for (int c = 0; c < 4; ++c) {
        REQUIRE(ps[1].value.data<float>()[c] == 0.f);
        REQUIRE(ps[3].value.data<float>()[c] == -2.f);
    }
    for (int e = 0; e < 16; ++e) REQUIRE(std::abs(ps[0].value.data<float>()[e]) <= 0.5f);  // 1/sqrt(4)
}

TEST_CASE("highway: forward against hand-computed numbers", "[highway]") {
    // With zero weights the transform is act(b_h) and the gate sigmoid(b_t), for every row.
    auto st = prepared(2, {{"act", std::string("relu")}});
    auto ps = st->params();
    ps[0].value.zero();
    ps[2].value.zero();
    ps[1].value.data<float>()[0] = 2.f;   // b_h
    ps[1].value.data<float>()[1] = -1.f;  // relu(-1) = 0
    ps[3].value.data<float>()[0] = 0.f;   // t = 0.5
    ps[3].value.data<float>()[1] = std::log(3.f);  // t = 0.75
    Tensor x = Tensor::f32({2, 1, 2});  // (T, N, C); the second step is padding
    x.data<float>()[0] = 4.f;
    x.data<float>()[1] = 8.f;
    x.data<float>()[2] = 1.f;
    x.data<float>()[3] = 1.f;
    x.lengths = {1};
    const Tensor y = run(*st, x);
    REQUIRE(y.shape() == Shape{2, 1, 2});
    const double tol = 1e-6;  // float rounding of sigmoid and exp
    REQUIRE(y.data<float>()[0] == Approx(0.5 * 2 + 0.5 * 4).margin(tol));
    REQUIRE(y.data<float>()[1] == Approx(0.75 * 0 + 0.25 * 8).margin(tol));
    REQUIRE(y.data<float>()[2] == 0.f);
    REQUIRE(y.data<float>()[3] == 0.f);
    REQUIRE(y.lengths == x.lengths);
}

TEST_CASE("highway: a very negative gate bias passes the input through", "[highway]") {
    auto st = prepared(8, {{"gate_bias", -10.0}});
    Tensor x = Tensor::f32({3, 2, 8});
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.37f * static_cast<float>(i));
    const Tensor y = run(*st, x);
    // t = sigmoid(-10 + x W_t) <= 1e-4 here; |act - x| <= 2, so |y - x| <= 2e-4 + rounding.
    for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(std::abs(y.data<float>()[i] - x.data<float>()[i]) < 3e-4f);
}

TEST_CASE("highway: backward matches finite differences", "[highway][grad]") {
    const std::string act = GENERATE(std::string("tanh"), std::string("relu"));
    INFO("act " << act);
    auto st = prepared(5, {{"act", act}, {"gate_bias", 0.3}});
    Tensor x = Tensor::f32({3, 4, 5});  // (T, N, C), columns of 3, 1, 2 and 3 valid steps
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::cos(0.71f * static_cast<float>(i));
    x.lengths = {3, 1, 2, 3};
    test::GradCheckOptions opt;
    opt.eps = 1e-3;  // relu kinks: a small step rarely straddles one (fixed data: it does not here)
    opt.atol = 5e-3;
    const test::GradCheckResult r = test::check_gradients(*st, schema(), {&x}, opt);
    INFO(r.report);
    REQUIRE(r.ok);
    REQUIRE(r.checked >= 4 * 5);
}

TEST_CASE("highway: the built plug-in adds the stage type", "[highway][plugin]") {
    Registry r;
    load_plugin(r, PLUGIN_FILE);
    REQUIRE(r.find("highway") != nullptr);
    REQUIRE(r.find("highway")->origin == PLUGIN_FILE);
    REQUIRE(r.find("highway")->schema.role() == Role::model);
}
