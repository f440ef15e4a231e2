#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "pipeline/core/registry.hpp"
#include "pipeline/graph/graph.hpp"
#include "stages/model/activation.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Activation;

namespace {

// f and f' are float libm calls and a few float operations: a few ulps (2^-24 each) of the true
// value. Near f' = 0 (tanh, sigmoid saturating) the float y leaves an absolute error of about
// 2^-24 in 1 - y², hence the margin.
constexpr double kFloatRel = 1e-6;
constexpr double kFloatAbs = 1e-7;

Activation prepared(const StageSchema& s, const std::string& function, std::int64_t C,
                    double slope = 0.01) {
    Activation a(params_for(s, {{"function", function}, {"slope", slope}}));
    FakePrepare ctx(s);
    ctx.info("in", PortInfo{PortType::tensor, C, -1, nullptr});
    a.prepare(ctx);
    REQUIRE(ctx.out_info("out").channels == C);
    return a;
}

Tensor make_tensor(Shape shape, const std::vector<float>& v, std::vector<std::int32_t> lengths = {}) {
    Tensor t = Tensor::f32(std::move(shape));
    REQUIRE(static_cast<std::int64_t>(v.size()) == t.numel());
    std::copy(v.begin(), v.end(), t.data<float>());
    t.lengths = std::move(lengths);
    return t;
}

// out = f(x); dx = dy * f'(x) through the stage's forward and backward.
struct Run {
    Tensor y, dx;
    Run(Activation& a, const StageSchema& s, const Tensor& x, Tensor dy) {
        Saved saved;
        auto in = make_inputs(s, {&x});
        auto out = make_outputs(s, {&y});
        a.forward(in, out, saved, StepInfo{});
        auto dd = make_diff_dst(s, {&dy});
        auto ds = make_diff_src(s, {&dx});
        a.backward(in, out, saved, dd, ds, StepInfo{});
    }
};

// Values in ±[0.1, 2]: away from relu's kink by more than the finite-difference step.
Tensor away_from_zero(Shape shape, std::uint64_t seed) {
    Tensor t = Tensor::f32(std::move(shape));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> magnitude(0.1f, 2.f);
    std::bernoulli_distribution negative(0.5);
    for (std::int64_t i = 0; i < t.numel(); ++i)
        t.data<float>()[i] = negative(rng) ? -magnitude(rng) : magnitude(rng);
    return t;
}

const std::vector<std::string> kFunctions{"relu", "leaky_relu", "tanh", "sigmoid", "gelu"};

}  // namespace

TEST_CASE("activation: schema defaults and bad values", "[stage][activation]") {
    const StageSchema s = Activation::schema();
    REQUIRE(s.type() == "activation");
    REQUIRE(s.role() == Role::model);
    REQUIRE(s.is_differentiable());
    REQUIRE(s.find_input("in")->type == PortType::tensor);
    REQUIRE(s.find_output("out")->type == PortType::tensor);
    const Params p = default_params(s);
    REQUIRE(p.get_string("function") == "relu");
    REQUIRE(p.get_float("slope") == 0.01);
    REQUIRE(StageSchema::check(*s.find_param("function"), ParamValue(std::string("swish"))) ==
            "must be one of relu, leaky_relu, tanh, sigmoid, gelu, got 'swish'");
    REQUIRE(StageSchema::check(*s.find_param("slope"), ParamValue(1.5)) == "must be in [0, 1], got 1.5");
    REQUIRE(Registry::global().find("activation") != nullptr);  // a built-in
}

TEST_CASE("activation: an unknown function in a graph names the file, stage and choices",
          "[stage][activation]") {
    const std::string text =
        "experiment: mlp\n"
        "stages:\n"
        "  data:  {type: tsv_text, train: t.tsv}\n"
        "  act:   {type: activation, in: data.text, function: swish}\n";
    std::string first;
    try {
        load_graph_text(text, "graphs/x.yaml", "graphs", {}, Registry::global());
    } catch (const LoadError& e) {
        REQUIRE(!e.diagnostics().empty());
        first = e.diagnostics().front().format();
    }
    REQUIRE(first.substr(0, first.find('\n')) ==
            "graphs/x.yaml:4:54: error: stage 'act' (activation): 'function' must be one of relu, "
            "leaky_relu, tanh, sigmoid, gelu, got 'swish'");
}

TEST_CASE("activation: forward and f' against hand-computed values", "[stage][activation]") {
    // f(x) and f'(x) at x = -20, -2, -0.5, 0, 0.5, 2, 20, from Python's math module in double
    // (tanh, exp, erfc); f' is what backward gives for diff_out = 1.
    struct Case {
        std::string function;
        std::vector<double> f, df;
    };
    const std::vector<Case> cases{
        {"relu", {0, 0, 0, 0, 0.5, 2, 20}, {0, 0, 0, 0, 1, 1, 1}},  // f'(0) = 0
        {"leaky_relu",  // slope 0.1; f'(0) = slope
         {-2, -0.2, -0.05, 0, 0.5, 2, 20}, {0.1, 0.1, 0.1, 0.1, 1, 1, 1}},
        {"tanh",
         {-1, -0.9640275800758169, -0.46211715726000974, 0, 0.46211715726000974, 0.9640275800758169, 1},
         {0, 0.07065082485316443, 0.7864477329659274, 1, 0.7864477329659274, 0.07065082485316443, 0}},
        {"sigmoid",
         {2.0611536181902037e-09, 0.11920292202211755, 0.3775406687981454, 0.5, 0.6224593312018546,
          0.8807970779778823, 0.9999999979388463},
         {2.0611536139e-09, 0.1049935854035065, 0.2350037122015945, 0.25, 0.2350037122015945,
          0.10499358540350662, 2.0611536139e-09}},
        {"gelu",
         {-5.507248237212663e-88, -0.04550026389635844, -0.15426876936299344, 0, 0.34573123063700656,
          1.9544997361036416, 20},
         {0, -0.0852318010781969, 0.13250487534383712, 0.5, 0.8674951246561629, 1.085231801078197, 1}},
    };
    const StageSchema s = Activation::schema();
    const Tensor x = make_tensor({1, 1, 7}, {-20, -2, -0.5, 0, 0.5, 2, 20});
    const Tensor ones = make_tensor({1, 1, 7}, {1, 1, 1, 1, 1, 1, 1});
    for (const Case& c : cases) {
        INFO(c.function);
        Activation a = prepared(s, c.function, 7, 0.1);
        const Run r(a, s, x, ones);
        for (int i = 0; i < 7; ++i) {
            INFO("x = " << x.data<float>()[i]);
            CHECK(r.y.data<float>()[i] == Approx(c.f[i]).epsilon(kFloatRel).margin(kFloatAbs));
            CHECK(r.dx.data<float>()[i] == Approx(c.df[i]).epsilon(kFloatRel).margin(kFloatAbs));
        }
    }
    // The sigmoid's tail keeps its relative precision (e^x / (1 + e^x) for x < 0): σ(-80).
    Activation sig = prepared(s, "sigmoid", 1);
    const Run tail(sig, s, make_tensor({1, 1, 1}, {-80}), make_tensor({1, 1, 1}, {1}));
    CHECK(tail.y.data<float>()[0] == Approx(1.8048513878454153e-35).epsilon(kFloatRel));
    CHECK(tail.dx.data<float>()[0] == Approx(1.8048513878454153e-35).epsilon(kFloatRel));
}

TEST_CASE("activation: large |x| gives finite outputs and gradients", "[stage][activation]") {
    const float big = std::numeric_limits<float>::max();
    const std::vector<float> v{-big, -1e4f, -88.8f, -30, 30, 88.8f, 1e4f, big};
    const StageSchema s = Activation::schema();
    const Tensor x = make_tensor({1, 1, 8}, v);
    const Tensor ones = make_tensor({1, 1, 8}, std::vector<float>(8, 1.f));
    for (const std::string& function : kFunctions) {
        INFO(function);
        Activation a = prepared(s, function, 8);
        const Run r(a, s, x, ones);
        for (int i = 0; i < 8; ++i) {
            INFO("x = " << v[i]);
            const float y = r.y.data<float>()[i], d = r.dx.data<float>()[i];
            REQUIRE(std::isfinite(y));
            REQUIRE(std::isfinite(d));
            if (function == "tanh") REQUIRE(y == (v[i] < 0 ? -1.f : 1.f));
            if (function == "sigmoid") REQUIRE(y == Approx(v[i] < 0 ? 0. : 1.).margin(1e-12));
            if (function == "tanh" || function == "sigmoid") REQUIRE(d == Approx(0).margin(1e-12));
        }
    }
}

TEST_CASE("activation: backward matches finite differences, every function",
          "[stage][activation][grad]") {
    const std::string function = GENERATE(from_range(kFunctions));
    INFO(function);
    const StageSchema s = Activation::schema();
    Activation a = prepared(s, function, 4, 0.2);
    Tensor x = away_from_zero({3, 2, 4}, 7);
    x.lengths = {3, 1};
    for (int t = 1; t < 3; ++t)  // column 1's padded steps hold large values
        for (int c = 0; c < 4; ++c) x.data<float>()[(t * 2 + 1) * 4 + c] = 1e3f;
    // A smooth elementwise f: the central difference with h = 1e-2 is off by h² f''' / 6 < 1e-4,
    // and J's float outputs add ~1e-5 after dividing by 2h; the defaults (2e-2) would hide slips
    // such as a wrong factor of slope.
    GradCheckOptions opt;
    opt.rtol = 1e-3;
    opt.atol = 2e-4;
    const auto r = check_gradients(a, s, {&x}, opt);
    INFO(r.report);
    REQUIRE(r.ok);
    REQUIRE(r.checked == 24);
}

TEST_CASE("activation: padded steps give 0 and no gradient, whatever they hold", "[stage][activation]") {
    const StageSchema s = Activation::schema();
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    // (T 3, N 2, C 2): column 0 full, column 1 of length 1 with NaN and inf at its padded steps.
    const Tensor x = make_tensor({3, 2, 2}, {0.3f, -1, 2, -0.5f,  0.7f, 1.5f, nan, inf,  -2, 0.1f, -inf, nan},
                                 {3, 1});
    const Tensor dy = make_tensor({3, 2, 2}, {1, 2, 3, 4,  5, 6, 1e3f, 1e3f,  7, 8, 1e3f, 1e3f}, {3, 1});
    // The same numbers without padding: each column alone as a full batch.
    const Tensor col0 = make_tensor({3, 1, 2}, {0.3f, -1, 0.7f, 1.5f, -2, 0.1f});
    const Tensor dy0 = make_tensor({3, 1, 2}, {1, 2, 5, 6, 7, 8});
    const Tensor col1 = make_tensor({1, 1, 2}, {2, -0.5f});
    const Tensor dy1 = make_tensor({1, 1, 2}, {3, 4});
    for (const std::string& function : kFunctions) {
        INFO(function);
        Activation a = prepared(s, function, 2);
        const Run padded(a, s, x, dy), alone0(a, s, col0, dy0), alone1(a, s, col1, dy1);
        REQUIRE(padded.y.lengths == x.lengths);
        REQUIRE(padded.dx.lengths == x.lengths);
        for (int t = 0; t < 3; ++t)
            for (int c = 0; c < 2; ++c) {
                const int e0 = (t * 2) * 2 + c, e1 = (t * 2 + 1) * 2 + c;
                REQUIRE(padded.y.data<float>()[e0] == alone0.y.data<float>()[t * 2 + c]);
                REQUIRE(padded.dx.data<float>()[e0] == alone0.dx.data<float>()[t * 2 + c]);
                if (t == 0) {
                    REQUIRE(padded.y.data<float>()[e1] == alone1.y.data<float>()[c]);
                    REQUIRE(padded.dx.data<float>()[e1] == alone1.dx.data<float>()[c]);
                } else {  // exactly 0, also for sigmoid (f(0) = 0.5) and gelu
                    REQUIRE(padded.y.data<float>()[e1] == 0.f);
                    REQUIRE(padded.dx.data<float>()[e1] == 0.f);
                }
            }
        REQUIRE(alone0.y.lengths.empty());  // no lengths: every step valid
    }
}

TEST_CASE("activation: bad inputs name the stage", "[stage][activation]") {
    const StageSchema s = Activation::schema();
    Activation a = prepared(s, "tanh", 4);
    const Tensor dy = make_tensor({1, 1, 3}, {0, 0, 0});
    REQUIRE_THROWS_WITH(Run(a, s, make_tensor({1, 1, 3}, {1, 2, 3}), dy),
                        "activation: input 'in' must be f32 (T, N, 4), got f32 (1, 1, 3)");
    REQUIRE_THROWS_WITH(Run(a, s, make_tensor({1, 2, 4}, std::vector<float>(8, 0.f), {1}), dy),
                        "activation: input 'in' has 1 lengths for 2 batch columns");
    Activation unprepared(default_params(s));
    FakePrepare ctx(s);
    ctx.info("in", PortInfo{PortType::tensor, -1, -1, nullptr});
    REQUIRE_THROWS_WITH(unprepared.prepare(ctx),
                        "activation needs the channel count of input 'in', got -1");
}
