#include <catch2/catch.hpp>

#include <cmath>

#include "stages/train/cross_entropy.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::CrossEntropy;

namespace {

Tensor make_logits(Shape shape, std::vector<float> v, std::vector<std::int32_t> lengths = {}) {
    Tensor t = Tensor::f32(std::move(shape));
    REQUIRE(static_cast<std::int64_t>(v.size()) == t.numel());
    std::copy(v.begin(), v.end(), t.data<float>());
    t.lengths = std::move(lengths);
    return t;
}

Tensor make_ids(std::int64_t T, std::int64_t N, std::vector<std::int32_t> v,
                std::vector<std::int32_t> lengths = {}) {
    Tensor t = Tensor::i32({T, N});
    std::copy(v.begin(), v.end(), t.data<std::int32_t>());
    t.lengths = std::move(lengths);
    return t;
}

struct Run {
    StageSchema schema = CrossEntropy::schema();
    CrossEntropy stage;
    Tensor loss, diff_logits;
    Saved saved;
    explicit Run(std::int64_t ignore = -1)
        : stage(params_for(schema, {{"ignore_index", ignore}})) {}
    explicit Run(const std::map<std::string, ParamValue>& set) : stage(params_for(schema, set)) {}
    void forward(const Tensor& logits, const Tensor& target, Phase phase = Phase::train) {
        auto in = make_inputs(schema, {&logits, &target});
        auto out = make_outputs(schema, {&loss});
        StepInfo step;
        step.phase = phase;
        stage.forward(in, out, saved, step);
    }
    void backward(const Tensor& logits, const Tensor& target, float g0, float g1) {
        Tensor dd = Tensor::f32({2});
        dd.data<float>()[0] = g0;
        dd.data<float>()[1] = g1;
        auto in = make_inputs(schema, {&logits, &target});
        auto out = make_outputs(schema, {&loss});
        auto ddst = make_diff_dst(schema, {&dd});
        auto dsrc = make_diff_src(schema, {&diff_logits});
        stage.backward(in, out, saved, ddst, dsrc, StepInfo{});
    }
};

}  // namespace

TEST_CASE("cross_entropy: schema defaults and bad values", "[stage][cross_entropy]") {
    const StageSchema s = CrossEntropy::schema();
    REQUIRE(s.type() == "cross_entropy");
    REQUIRE(s.is_differentiable());
    REQUIRE(s.outputs().at(0).type == PortType::loss);
    REQUIRE(default_params(s).get_int("ignore_index") == -1);
    REQUIRE(StageSchema::check(*s.find_param("ignore_index"), ParamValue(std::int64_t(-2))) ==
            "must be in [-1, 2147483647], got -2");

    CrossEntropy ce(default_params(s));
    FakePrepare ctx(s);
    PortInfo logits, target;
    logits.channels = 5;
    target.type = PortType::ids;
    target.classes = 6;
    ctx.info("logits", logits).info("target", target);
    REQUIRE_THROWS_WITH(ce.prepare(ctx), "cross_entropy: 'logits' has 5 channels but 'target' has "
                                         "6 classes; they must be equal (hint: out_dim: vocab.size)");
}

TEST_CASE("cross_entropy: forward against hand-computed numbers", "[stage][cross_entropy]") {
    Run r(0);
    // T = 2, N = 2, V = 3. Target column 1 has length 1: (1, 1) is padding.
    //   (0, 0) logits (0, 0, 0)  target 1 → log 3
    //   (0, 1) logits (1, 2, 3)  target 2 → log(e + e² + e³) - 3
    //   (1, 0) logits (5, 5, 5)  target 0 = ignore_index → not counted
    //   (1, 1) padding, target 0 → not counted
    const Tensor logits = make_logits({2, 2, 3}, {0, 0, 0, 1, 2, 3, 5, 5, 5, 9, 9, 9});
    const Tensor target = make_ids(2, 2, {1, 2, 0, 0}, {2, 1});
    r.forward(logits, target);
    REQUIRE(r.loss.shape() == Shape{2});
    const double e = std::exp(1.0);
    const double want = std::log(3.0) + std::log(e + e * e + e * e * e) - 3.0;
    REQUIRE(r.loss.data<float>()[0] == Approx(want).epsilon(1e-6));
    REQUIRE(r.loss.data<float>()[1] == 2.f);
}

TEST_CASE("cross_entropy: large logits stay finite", "[stage][cross_entropy]") {
    Run r;
    const Tensor logits = make_logits({1, 1, 2}, {1000, 1000});
    const Tensor target = make_ids(1, 1, {0});
    r.forward(logits, target);
    REQUIRE(r.loss.data<float>()[0] == Approx(std::log(2.0)));
    r.backward(logits, target, 1, 0);
    REQUIRE(r.diff_logits.data<float>()[0] == Approx(-0.5));
    REQUIRE(r.diff_logits.data<float>()[1] == Approx(0.5));
}

TEST_CASE("cross_entropy: backward is g · (softmax - onehot) at counted positions", "[stage][cross_entropy]") {
    Run r(0);
    const Tensor logits = make_logits({2, 2, 3}, {0, 0, 0, 1, 2, 3, 5, 5, 5, 9, 9, 9});
    const Tensor target = make_ids(2, 2, {1, 2, 0, 0}, {2, 1});
    r.forward(logits, target);
    r.backward(logits, target, 0.5f, 123.f);  // diff[1] (the count's) is ignored
    REQUIRE(r.diff_logits.shape() == Shape{2, 2, 3});
    const double e = std::exp(1.0), z = e + e * e + e * e * e;
    const std::vector<double> want{0.5 / 3, 0.5 * (1.0 / 3 - 1), 0.5 / 3,
                                   0.5 * e / z, 0.5 * e * e / z, 0.5 * (e * e * e / z - 1),
                                   0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 12; ++i) REQUIRE(r.diff_logits.data<float>()[i] == Approx(want[i]).margin(1e-7));
}

// Training forward writes the gradient for the engine's seed (1 / count) and backward hands it
// over; evaluation forward writes none and backward computes it. Both must give the same bits,
// and any other scale must be computed afresh.
TEST_CASE("cross_entropy: the gradient training forward prepares equals backward's own, bit for bit",
          "[stage][cross_entropy]") {
    const std::map<std::string, ParamValue> set =
        GENERATE(std::map<std::string, ParamValue>{},
                 std::map<std::string, ParamValue>{{"label_smoothing", 0.2}, {"ignore_index", std::int64_t{3}},
                                                   {"class_weights", std::vector<std::string>{"1", "0.5", "2", "1", "3"}}});
    std::vector<float> v(4 * 3 * 5);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.7f * float(i)) * 4.f;
    const Tensor logits = make_logits({4, 3, 5}, v, {4, 2, 3});
    const Tensor target = make_ids(4, 3, {0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1}, {4, 2, 3});
    const float scale_factor = GENERATE(1.f, 2.f);  // 1: the engine's seed; 2: another scale

    Run train(set), eval(set);
    train.forward(logits, target, Phase::train);
    eval.forward(logits, target, Phase::evaluate);
    REQUIRE(train.loss.data<float>()[0] == eval.loss.data<float>()[0]);
    REQUIRE(train.loss.data<float>()[1] == eval.loss.data<float>()[1]);
    const float g = scale_factor / train.loss.data<float>()[1];
    for (int twice = 0; twice < 2; ++twice) {  // the second backward has nothing prepared
        train.backward(logits, target, g, 0);
        eval.backward(logits, target, g, 0);
        REQUIRE(train.diff_logits.shape() == logits.shape());
        REQUIRE(train.diff_logits.lengths == logits.lengths);
        for (std::int64_t i = 0; i < logits.numel(); ++i) {
            INFO("element " << i);
            REQUIRE(train.diff_logits.data<float>()[i] == eval.diff_logits.data<float>()[i]);
        }
    }
}

TEST_CASE("cross_entropy: target out of range is an error", "[stage][cross_entropy]") {
    Run r;
    const Tensor logits = make_logits({1, 2, 3}, {0, 0, 0, 0, 0, 0});
    REQUIRE_THROWS_WITH(r.forward(logits, make_ids(1, 2, {0, 3})),
                        "cross_entropy: target id 3 at step 0, column 1 is outside [0, 3) (V = 3)");
    // Out-of-range ids at padding are never read.
    r.forward(logits, make_ids(1, 2, {0, 3}, {1, 0}));
    REQUIRE(r.loss.data<float>()[1] == 1.f);
}

TEST_CASE("cross_entropy: backward matches finite differences with padding and ignore_index",
          "[stage][cross_entropy][grad]") {
    const StageSchema s = CrossEntropy::schema();
    CrossEntropy ce(params_for(s, {{"ignore_index", std::int64_t(1)}}));
    Tensor logits = Tensor::f32({3, 2, 4});
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<float> uni(-2.f, 2.f);
    for (std::int64_t i = 0; i < logits.numel(); ++i) logits.data<float>()[i] = uni(rng);
    logits.lengths = {3, 2};
    Tensor target = make_ids(3, 2, {0, 3, 1, 2, 3, 0}, {3, 2});  // (1, 0) ignored, (2, 1) padding
    const auto r = check_gradients(ce, s, {&logits, &target});
    INFO(r.report);
    REQUIRE(r.ok);
    REQUIRE(r.checked == 24);
}

TEST_CASE("cross_entropy: class weights and label smoothing against hand-computed numbers", "[stage][cross_entropy]") {
    const StageSchema s = CrossEntropy::schema();
    const Tensor logits = make_logits({1, 2, 3}, {0, 0, 0, 1, 2, 3});
    const Tensor target = make_ids(1, 2, {1, 2});
    const double e = std::exp(1.0), z = e + e * e + e * e * e;
    const double lse1 = std::log(z);  // column 1: log Σ exp
    auto run = [&](const std::map<std::string, ParamValue>& set, float* loss) {
        CrossEntropy ce(params_for(s, set));
        Tensor out, dx;
        Saved saved;
        auto in = make_inputs(s, {&logits, &target});
        auto o = make_outputs(s, {&out});
        ce.forward(in, o, saved, StepInfo{});
        loss[0] = out.data<float>()[0];
        loss[1] = out.data<float>()[1];
    };
    float l[2];
    SECTION("weights: sum Σ w_y ℓ, count Σ w_y") {
        run({{"class_weights", std::vector<std::string>{"1", "0.5", "2"}}}, l);
        REQUIRE(l[0] == Approx(0.5 * std::log(3.0) + 2 * (lse1 - 3)).epsilon(1e-6));
        REQUIRE(l[1] == Approx(2.5));
    }
    SECTION("smoothing ε = 0.3: ℓ = lse - 0.7 x_y - 0.1 Σ x") {
        run({{"label_smoothing", 0.3}}, l);
        REQUIRE(l[0] == Approx(std::log(3.0) + (lse1 - 0.7 * 3 - 0.1 * 6)).epsilon(1e-6));
        REQUIRE(l[1] == 2.f);
    }
    SECTION("balanced weights from the target vocabulary's counts") {
        CrossEntropy ce(params_for(s, {{"class_weights", std::vector<std::string>{"balanced"}}}));
        FakePrepare ctx(s);
        PortInfo li, ti;
        li.channels = 3;
        ti.type = PortType::ids;
        ti.classes = 3;
        // counts 6, 3, 1 of 10: weights 10/18, 10/9, 10/3.
        ti.vocab = std::make_shared<const rnnflow::Vocabulary>(std::vector<std::string>{"a", "b", "c"},
                                                               std::vector<std::int64_t>{6, 3, 1},
                                                               std::vector<std::string>{}, TokenizerSpec{});
        ctx.info("logits", li).info("target", ti);
        ce.prepare(ctx);
        Tensor out;
        Saved saved;
        auto in = make_inputs(s, {&logits, &target});
        auto o = make_outputs(s, {&out});
        ce.forward(in, o, saved, StepInfo{});
        REQUIRE(out.data<float>()[0] == Approx(10.0 / 9 * std::log(3.0) + 10.0 / 3 * (lse1 - 3)).epsilon(1e-6));
        REQUIRE(out.data<float>()[1] == Approx(10.0 / 9 + 10.0 / 3));
    }
    REQUIRE_THROWS_WITH(CrossEntropy(params_for(s, {{"class_weights", std::vector<std::string>{"1", "x"}}})),
                        "class_weights: 'x' is not a non-negative number");
    CrossEntropy two(params_for(s, {{"class_weights", std::vector<std::string>{"1", "2"}}}));
    Tensor out;
    Saved saved;
    auto in = make_inputs(s, {&logits, &target});
    auto o = make_outputs(s, {&out});
    REQUIRE_THROWS_WITH(two.forward(in, o, saved, StepInfo{}),
                        "cross_entropy: class_weights has 2 numbers but 'logits' has 3 classes");
}

TEST_CASE("cross_entropy: backward matches finite differences with class weights and label smoothing",
          "[stage][cross_entropy][grad]") {
    const StageSchema s = CrossEntropy::schema();
    CrossEntropy ce(params_for(s, {{"ignore_index", std::int64_t(1)},
                                   {"class_weights", std::vector<std::string>{"0.5", "1", "2", "3"}},
                                   {"label_smoothing", 0.2}}));
    Tensor logits = Tensor::f32({3, 2, 4});
    std::mt19937_64 rng(5);
    std::uniform_real_distribution<float> uni(-2.f, 2.f);
    for (std::int64_t i = 0; i < logits.numel(); ++i) logits.data<float>()[i] = uni(rng);
    logits.lengths = {3, 2};
    Tensor target = make_ids(3, 2, {0, 3, 1, 2, 3, 0}, {3, 2});  // (1, 0) ignored, (2, 1) padding
    const auto r = check_gradients(ce, s, {&logits, &target});
    INFO(r.report);
    REQUIRE(r.ok);
    REQUIRE(r.checked == 24);
}
