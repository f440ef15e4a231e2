// regression_loss: mse and mae against hand-computed sums (only the first K target channels,
// padding never counted), gradients against their formulas and finite differences, a ragged
// padded batch against each column alone, shapes refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "stages/train/regression_loss.hpp"
#include "support/error_text.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::RegressionLoss;

namespace {

Tensor random_tensor(Shape shape, std::uint64_t seed) {
    Tensor t = Tensor::f32(std::move(shape));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> uni(-2.f, 2.f);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = uni(rng);
    return t;
}

struct Run {
    StageSchema schema = RegressionLoss::schema();
    RegressionLoss stage;
    Tensor loss, diff_x, diff_y;
    Saved saved;
    explicit Run(const std::string& kind) : stage(params_for(schema, {{"kind", kind}})) {}
    void forward(const Tensor& x, const Tensor& y) {
        auto out = make_outputs(schema, {&loss});
        stage.forward(make_inputs(schema, {&x, &y}), out, saved, StepInfo{});
    }
    void backward(const Tensor& x, const Tensor& y, float g0, bool target_grad = false) {
        Tensor dd = Tensor::f32({2});
        dd.data<float>()[0] = g0;
        dd.data<float>()[1] = 5.f;  // the count's gradient: ignored
        auto out = make_outputs(schema, {&loss});
        auto dsrc = make_diff_src(schema, {&diff_x, target_grad ? &diff_y : nullptr});
        stage.backward(make_inputs(schema, {&x, &y}), out, saved, make_diff_dst(schema, {&dd}), dsrc, StepInfo{});
    }
};

// T = 2, N = 2, K = 1 against D = 2 (the second target channel is an input-only feature);
// column 1 has length 1, so (1, 1) is padding.
const Tensor kX = f32_tensor({2, 2, 1}, {1.5f, -1.f, 0.f, 50.f});
const Tensor kY = f32_tensor({2, 2, 2}, {1.f, 9.f, 1.f, 9.f, 0.f, 9.f, -50.f, 9.f}, {2, 1});

}  // namespace

TEST_CASE("regression_loss: schema and channel check", "[stage][regression_loss]") {
    const StageSchema s = RegressionLoss::schema();
    REQUIRE(s.type() == "regression_loss");
    REQUIRE(s.is_differentiable());
    REQUIRE(s.find_param("kind")->default_value == ParamValue(std::string("mse")));
    REQUIRE(StageSchema::check(*s.find_param("kind"), ParamValue(std::string("huber"))).find("must be one of") != std::string::npos);
    RegressionLoss loss(default_params(s));
    FakePrepare ctx(s);
    ctx.info("prediction", PortInfo{PortType::tensor, 3, -1, nullptr}).info("target", PortInfo{PortType::tensor, 2, -1, nullptr});
    REQUIRE(error_text([&] { loss.prepare(ctx); }) ==
            "regression_loss: 'prediction' has 3 channels but 'target' only 2 (hint: out_dim: series.targets)");
    Run r("mse");
    const Tensor wrong = f32_tensor({1, 2, 1}, {0, 0});
    REQUIRE(error_text([&] { r.forward(wrong, kY); }) ==
            "regression_loss: 'prediction' (1, 2, 1) and 'target' (2, 2, 2) must be (T, N, K) and (T, N, D) with K <= D");
}

TEST_CASE("regression_loss: mse and mae over valid steps and the first K channels", "[stage][regression_loss]") {
    SECTION("mse") {
        Run r("mse");
        r.forward(kX, kY);
        REQUIRE(r.loss.data<float>()[0] == Approx(0.25 + 4.0 + 0.0));
        REQUIRE(r.loss.data<float>()[1] == 3.f);  // K · valid steps
    }
    SECTION("mae") {
        Run r("mae");
        r.forward(kX, kY);
        REQUIRE(r.loss.data<float>()[0] == Approx(0.5 + 2.0 + 0.0));
        REQUIRE(r.loss.data<float>()[1] == 3.f);
    }
}

TEST_CASE("regression_loss: backward is g · 2e (mse) or g · sign(e) (mae), 0 at padding", "[stage][regression_loss]") {
    SECTION("mse") {
        Run r("mse");
        r.forward(kX, kY);
        r.backward(kX, kY, 0.5f, true);
        REQUIRE(r.diff_x.shape() == kX.shape());
        REQUIRE(r.diff_x.data<float>()[0] == Approx(0.5 * 2 * 0.5));
        REQUIRE(r.diff_x.data<float>()[1] == Approx(0.5 * 2 * -2.0));
        REQUIRE(r.diff_x.data<float>()[2] == 0.f);
        REQUIRE(r.diff_x.data<float>()[3] == 0.f);  // padding
        REQUIRE(r.diff_y.shape() == kY.shape());
        REQUIRE(r.diff_y.data<float>()[0] == Approx(-0.5));
        REQUIRE(r.diff_y.data<float>()[1] == 0.f);  // a feature channel: not compared
        REQUIRE(r.diff_y.data<float>()[6] == 0.f);  // padding
    }
    SECTION("mae, with sign(0) = 0") {
        Run r("mae");
        r.forward(kX, kY);
        r.backward(kX, kY, 2.f);
        REQUIRE(r.diff_x.data<float>()[0] == 2.f);
        REQUIRE(r.diff_x.data<float>()[1] == -2.f);
        REQUIRE(r.diff_x.data<float>()[2] == 0.f);
        REQUIRE(r.diff_x.data<float>()[3] == 0.f);
    }
}

TEST_CASE("regression_loss: backward matches finite differences, with padding and feature channels",
          "[stage][regression_loss][grad]") {
    const StageSchema s = RegressionLoss::schema();
    Tensor x = random_tensor({3, 2, 2}, 3);
    Tensor y = random_tensor({3, 2, 3}, 4);
    x.lengths = {3, 2};
    y.lengths = {3, 2};
    SECTION("mse: prediction and target") {
        RegressionLoss loss(params_for(s, {{"kind", std::string("mse")}}));
        const auto r = check_gradients(loss, s, {&x, &y});
        INFO(r.report);
        REQUIRE(r.ok);
        REQUIRE(r.checked == 12 + 18);
    }
    SECTION("mae: the kink is far from every element (|e| > 0.05 > the step)") {
        for (std::int64_t i = 0; i < x.numel(); ++i) {
            const std::int64_t row = i / 2, k = i % 2;
            float& e = x.data<float>()[i];
            const float yv = y.data<float>()[row * 3 + k];
            if (std::abs(e - yv) < 0.05f) e = yv + 0.5f;
        }
        RegressionLoss loss(params_for(s, {{"kind", std::string("mae")}}));
        const auto r = check_gradients(loss, s, {&x, &y});
        INFO(r.report);
        REQUIRE(r.ok);
        REQUIRE(r.checked == 12 + 18);
    }
}

TEST_CASE("regression_loss: a column alone and in a ragged padded batch give the same loss and gradients",
          "[stage][regression_loss]") {
    const std::string kind = GENERATE(as<std::string>{}, "mse", "mae");
    const std::vector<std::int32_t> lengths{4, 1, 3};
    const std::int64_t T = 4, N = 3, K = 2, D = 3;
    Tensor x = random_tensor({T, N, K}, 7), y = random_tensor({T, N, D}, 8);
    x.lengths = lengths;
    y.lengths = lengths;
    Run batch(kind);
    batch.forward(x, y);
    batch.backward(x, y, 0.25f);
    double loss_sum = 0, count = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = lengths[static_cast<std::size_t>(n)];
        Tensor xa = Tensor::f32({L, 1, K}), ya = Tensor::f32({L, 1, D});
        for (std::int64_t t = 0; t < L; ++t) {
            for (std::int64_t k = 0; k < K; ++k) xa.data<float>()[t * K + k] = x.data<float>()[(t * N + n) * K + k];
            for (std::int64_t d = 0; d < D; ++d) ya.data<float>()[t * D + d] = y.data<float>()[(t * N + n) * D + d];
        }
        Run alone(kind);
        alone.forward(xa, ya);
        alone.backward(xa, ya, 0.25f);
        loss_sum += alone.loss.data<float>()[0];
        count += alone.loss.data<float>()[1];
        for (std::int64_t t = 0; t < T; ++t)
            for (std::int64_t k = 0; k < K; ++k) {
                const float b = batch.diff_x.data<float>()[(t * N + n) * K + k];
                REQUIRE(b == (t < L ? alone.diff_x.data<float>()[t * K + k] : 0.f));
            }
    }
    REQUIRE(batch.loss.data<float>()[0] == Approx(loss_sum).epsilon(1e-6));
    REQUIRE(batch.loss.data<float>()[1] == count);
}
