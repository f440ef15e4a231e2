// binary_cross_entropy: the loss against a double-precision reference kept here, finite at huge
// logits, backward against its formula and against finite differences, padding never changes a
// number (a column alone and in a ragged batch), bad targets refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "stages/train/binary_cross_entropy.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::BinaryCrossEntropy;

namespace {

Tensor make(Shape shape, std::vector<float> v, std::vector<std::int32_t> lengths = {}) {
    Tensor t = Tensor::f32(std::move(shape));
    REQUIRE(static_cast<std::int64_t>(v.size()) == t.numel());
    std::copy(v.begin(), v.end(), t.data<float>());
    t.lengths = std::move(lengths);
    return t;
}

// The naive definition in double: -y log σ(x) - (1 - y) log(1 - σ(x)).
double reference_unit(double x, double y) {
    const double s = 1.0 / (1.0 + std::exp(-x));
    return -y * std::log(s) - (1 - y) * std::log(1 - s);
}

struct Run {
    StageSchema schema = BinaryCrossEntropy::schema();
    BinaryCrossEntropy stage{default_params(schema)};
    Tensor loss, diff_logits, diff_target;
    Saved saved;
    void forward(const Tensor& x, const Tensor& y) {
        auto in = make_inputs(schema, {&x, &y});
        auto out = make_outputs(schema, {&loss});
        stage.forward(in, out, saved, StepInfo{});
    }
    void backward(const Tensor& x, const Tensor& y, float g0, bool target_grad = false) {
        Tensor dd = Tensor::f32({2});
        dd.data<float>()[0] = g0;
        dd.data<float>()[1] = 7.f;  // the count's gradient: ignored
        auto in = make_inputs(schema, {&x, &y});
        auto out = make_outputs(schema, {&loss});
        auto ddst = make_diff_dst(schema, {&dd});
        auto dsrc = make_diff_src(schema, {&diff_logits, target_grad ? &diff_target : nullptr});
        stage.backward(in, out, saved, ddst, dsrc, StepInfo{});
    }
};

Tensor random_tensor(Shape shape, std::uint64_t seed, float lo, float hi) {
    Tensor t = Tensor::f32(std::move(shape));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> uni(lo, hi);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = uni(rng);
    return t;
}

}  // namespace

TEST_CASE("binary_cross_entropy: schema and channel check", "[stage][binary_cross_entropy]") {
    const StageSchema s = BinaryCrossEntropy::schema();
    REQUIRE(s.type() == "binary_cross_entropy");
    REQUIRE(s.is_differentiable());
    REQUIRE(s.find_input("target")->type == PortType::tensor);
    REQUIRE(s.outputs().at(0).type == PortType::loss);
    BinaryCrossEntropy bce(default_params(s));
    FakePrepare ctx(s);
    ctx.info("logits", PortInfo{PortType::tensor, 87, -1, nullptr}).info("target", PortInfo{PortType::tensor, 88, -1, nullptr});
    REQUIRE_THROWS_WITH(bce.prepare(ctx), "binary_cross_entropy: 'logits' has 87 channels but 'target' has 88; "
                                          "they must be equal (hint: out_dim: notes.pitches)");
}

TEST_CASE("binary_cross_entropy: sum over units, count of valid steps, against the naive double form",
          "[stage][binary_cross_entropy]") {
    Run r;
    // T = 2, N = 2, P = 3; column 1 has length 1: (1, 1) is padding (its huge logits never count).
    const Tensor x = make({2, 2, 3}, {0.5f, -1.f, 2.f, 0.f, 3.f, -4.f, 1.f, 1.f, -2.f, 99.f, -99.f, 99.f});
    const Tensor y = make({2, 2, 3}, {1, 0, 1, 0, 1, 0, 0.25f, 1, 0, 0, 1, 0}, {2, 1});
    r.forward(x, y);
    double want = 0;
    for (int i = 0; i < 9; ++i) want += reference_unit(x.data<float>()[i], y.data<float>()[i]);
    REQUIRE(r.loss.shape() == Shape{2});
    REQUIRE(r.loss.data<float>()[0] == Approx(want).epsilon(1e-6));
    REQUIRE(r.loss.data<float>()[1] == 3.f);  // valid steps, not units
}

TEST_CASE("binary_cross_entropy: huge logits stay finite and exact", "[stage][binary_cross_entropy]") {
    Run r;
    const Tensor x = make({1, 1, 4}, {1000.f, -1000.f, 1000.f, -1000.f});
    const Tensor y = make({1, 1, 4}, {1, 0, 0, 1});
    r.forward(x, y);
    REQUIRE(r.loss.data<float>()[0] == Approx(2000.0));  // the wrong ones cost |x| each
    r.backward(x, y, 1.f);
    REQUIRE(r.diff_logits.data<float>()[0] == 0.f);
    REQUIRE(r.diff_logits.data<float>()[2] == 1.f);
    REQUIRE(r.diff_logits.data<float>()[3] == -1.f);
}

TEST_CASE("binary_cross_entropy: backward is g · (σ(x) - y), -g · x for the target, 0 at padding",
          "[stage][binary_cross_entropy]") {
    Run r;
    const Tensor x = make({2, 1, 2}, {0.f, 2.f, 5.f, 5.f}, {});
    const Tensor y = make({2, 1, 2}, {1, 0, 0, 0}, {1});
    r.forward(x, y);
    r.backward(x, y, 0.5f, true);
    const double s2 = 1 / (1 + std::exp(-2.0));
    REQUIRE(r.diff_logits.data<float>()[0] == Approx(0.5 * (0.5 - 1)));
    REQUIRE(r.diff_logits.data<float>()[1] == Approx(0.5 * s2));
    REQUIRE(r.diff_logits.data<float>()[2] == 0.f);
    REQUIRE(r.diff_logits.data<float>()[3] == 0.f);
    REQUIRE(r.diff_target.data<float>()[1] == Approx(-1.0));
    REQUIRE(r.diff_target.data<float>()[2] == 0.f);
}

TEST_CASE("binary_cross_entropy: backward matches finite differences, with padding and soft targets",
          "[stage][binary_cross_entropy][grad]") {
    const StageSchema s = BinaryCrossEntropy::schema();
    BinaryCrossEntropy bce(default_params(s));
    Tensor x = random_tensor({3, 2, 4}, 3, -3.f, 3.f);
    Tensor y = random_tensor({3, 2, 4}, 4, 0.f, 1.f);  // soft targets: dℓ/dy = -x is checked too
    x.lengths = {3, 2};
    y.lengths = {3, 2};
    SECTION("logits and target") {
        const auto r = check_gradients(bce, s, {&x, &y});
        INFO(r.report);
        REQUIRE(r.ok);
        REQUIRE(r.checked == 48);
    }
    SECTION("binary targets, logits only") {
        for (std::int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] = y.data<float>()[i] > 0.5f ? 1.f : 0.f;
        GradCheckOptions opt;
        opt.no_grad_inputs = {1};
        const auto r = check_gradients(bce, s, {&x, &y}, opt);
        INFO(r.report);
        REQUIRE(r.ok);
        REQUIRE(r.checked == 24);
    }
}

// The loss is linear in the target and smooth in the logits: a double-precision check of the
// analytic gradient against central differences of the reference, with steps too small for float.
TEST_CASE("binary_cross_entropy: the gradient formula matches finite differences in double",
          "[stage][binary_cross_entropy][grad]") {
    constexpr double h = 1e-6;       // double central differences: error ~h² · ℓ''' ≈ 1e-12
    constexpr double tol = 1e-8;     // far above that, far below any wrong formula
    for (const double xv : {-30.0, -3.0, -0.1, 0.0, 0.7, 4.0, 25.0})
        for (const double yv : {0.0, 0.3, 1.0}) {
            Run r;
            const Tensor x = make({1, 1, 1}, {static_cast<float>(xv)});
            const Tensor y = make({1, 1, 1}, {static_cast<float>(yv)});
            r.forward(x, y);
            r.backward(x, y, 1.f, true);
            const double xf = x.data<float>()[0];
            const double num_x = (stages::binary_cross_entropy_unit(xf + h, yv) - stages::binary_cross_entropy_unit(xf - h, yv)) / (2 * h);
            const double num_y = (stages::binary_cross_entropy_unit(xf, yv + h) - stages::binary_cross_entropy_unit(xf, yv - h)) / (2 * h);
            INFO("x " << xv << " y " << yv);
            REQUIRE(std::abs(r.diff_logits.data<float>()[0] - num_x) < 1e-6);  // float σ: 1e-7 relative
            REQUIRE(std::abs(r.diff_target.data<float>()[0] - num_y) < tol + 1e-6 * std::abs(xv));
            // The naive reference's log(1 - σ) loses digits once σ is within 1e-3 of 0 or 1: compared
            // only where it is exact to 1e-9 (huge logits: the test above).
            if (std::abs(xv) <= 5) REQUIRE(stages::binary_cross_entropy_unit(xf, yv) == Approx(reference_unit(xf, yv)).epsilon(1e-9));
        }
}

TEST_CASE("binary_cross_entropy: a column alone and in a padded batch give the same loss and gradients",
          "[stage][binary_cross_entropy]") {
    const std::vector<std::int32_t> lengths{4, 1, 3};
    const std::int64_t T = 4, N = 3, P = 5;
    Tensor x = random_tensor({T, N, P}, 7, -4.f, 4.f);
    Tensor y = random_tensor({T, N, P}, 8, 0.f, 1.f);
    for (std::int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] = y.data<float>()[i] > 0.7f ? 1.f : 0.f;
    x.lengths = lengths;
    y.lengths = lengths;
    Run batch;
    batch.forward(x, y);
    batch.backward(x, y, 0.25f);
    double loss_sum = 0, count = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = lengths[static_cast<std::size_t>(n)];
        Tensor xa = Tensor::f32({L, 1, P}), ya = Tensor::f32({L, 1, P});
        for (std::int64_t t = 0; t < L; ++t)
            for (std::int64_t p = 0; p < P; ++p) {
                xa.data<float>()[t * P + p] = x.data<float>()[(t * N + n) * P + p];
                ya.data<float>()[t * P + p] = y.data<float>()[(t * N + n) * P + p];
            }
        Run alone;
        alone.forward(xa, ya);
        alone.backward(xa, ya, 0.25f);
        loss_sum += alone.loss.data<float>()[0];
        count += alone.loss.data<float>()[1];
        for (std::int64_t t = 0; t < T; ++t)
            for (std::int64_t p = 0; p < P; ++p) {
                const float b = batch.diff_logits.data<float>()[(t * N + n) * P + p];
                REQUIRE(b == (t < L ? alone.diff_logits.data<float>()[t * P + p] : 0.f));
            }
    }
    REQUIRE(batch.loss.data<float>()[0] == Approx(loss_sum).epsilon(1e-6));
    REQUIRE(batch.loss.data<float>()[1] == count);
}

TEST_CASE("binary_cross_entropy: targets outside [0, 1] and mismatched shapes are refused", "[stage][binary_cross_entropy]") {
    Run r;
    const Tensor x = make({1, 2, 2}, {0, 0, 0, 0});
    REQUIRE_THROWS_WITH(r.forward(x, make({1, 2, 2}, {0, 1, 1, 2})),
                        "binary_cross_entropy: target 2 at step 0, column 1, unit 1 is outside [0, 1]");
    REQUIRE_THROWS_WITH(r.forward(x, make({1, 2, 2}, {0, 1, 1, std::nanf("")})),
                        "binary_cross_entropy: target nan at step 0, column 1, unit 1 is outside [0, 1]");
    REQUIRE_NOTHROW(r.forward(x, make({1, 2, 2}, {0, 1, 1, 5}, {1, 0})));  // padding is never read
    REQUIRE_THROWS_WITH(r.forward(x, make({1, 1, 4}, {0, 0, 0, 0})),
                        "binary_cross_entropy: 'logits' (1, 2, 2) and 'target' (1, 1, 4) must both be (T, N, P)");
}
