#include <catch2/catch.hpp>

#include <limits>

#include "stages/model/linear.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Linear;

namespace {

PortInfo tensor_info(std::int64_t channels) {
    PortInfo i;
    i.type = PortType::tensor;
    i.channels = channels;
    return i;
}

Tensor make_tensor(Shape shape, std::vector<float> v, std::vector<std::int32_t> lengths = {}) {
    Tensor t = Tensor::f32(std::move(shape));
    REQUIRE(static_cast<std::int64_t>(v.size()) == t.numel());
    std::copy(v.begin(), v.end(), t.data<float>());
    t.lengths = std::move(lengths);
    return t;
}

Tensor random_tensor(Shape shape, std::uint64_t seed) {
    Tensor t = Tensor::f32(std::move(shape));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> uni(-1.f, 1.f);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = uni(rng);
    return t;
}

Linear prepared(const StageSchema& s, std::int64_t C, std::int64_t O, bool bias = true) {
    Linear l(params_for(s, {{"out_dim", O}, {"bias", bias}}));
    FakePrepare ctx(s);
    ctx.info("in", tensor_info(C));
    l.prepare(ctx);
    REQUIRE(ctx.out_info("out").channels == O);
    return l;
}

Tensor forward(Linear& l, const StageSchema& s, const Tensor& x) {
    Tensor out;
    Saved saved;
    auto in = make_inputs(s, {&x});
    auto o = make_outputs(s, {&out});
    l.forward(in, o, saved, StepInfo{});
    return out;
}

// The hand-computed backward case: W = [[1, 2], [3, 4]] (C, O), x = rows (1, 2), (3, 4)
// (T 1, N 2), diff_out = rows (1, 0), (0, 2). backward() runs the stage's backward on them.
struct HandBackward {
    StageSchema s = Linear::schema();
    Linear l = prepared(s, 2, 2);
    Tensor x = make_tensor({1, 2, 2}, {1, 2, 3, 4});
    Tensor dy = make_tensor({1, 2, 2}, {1, 0, 0, 2});
    Tensor y, dx;
    Saved saved;
    HandBackward() {
        const std::vector<float> w{1, 2, 3, 4};
        std::copy(w.begin(), w.end(), l.params()[0].value.data<float>());
        y = forward(l, s, x);
    }
    void backward() {
        auto in = make_inputs(s, {&x});
        auto o = make_outputs(s, {&y});
        auto dd = make_diff_dst(s, {&dy});
        auto ds = make_diff_src(s, {&dx});
        l.backward(in, o, saved, dd, ds, StepInfo{});
    }
};

}  // namespace

TEST_CASE("linear: schema defaults and bad values", "[stage][linear]") {
    const StageSchema s = Linear::schema();
    REQUIRE(s.type() == "linear");
    REQUIRE(s.is_differentiable());
    const ParamSpec* out_dim = s.find_param("out_dim");
    REQUIRE(!out_dim->default_value);  // required
    REQUIRE(out_dim->allow_ref);       // out_dim: vocab.size
    const Params p = default_params(s);
    REQUIRE(p.get_bool("bias"));
    REQUIRE(p.get_float("init_scale") == 0.0);
    REQUIRE(StageSchema::check(*out_dim, ParamValue(std::int64_t(0))) ==
            "must be in [1, 10000000], got 0");
    REQUIRE(StageSchema::check(*s.find_param("init_scale"), ParamValue(11.0)) ==
            "must be in [0, 10], got 11");
}

TEST_CASE("linear: prepare lays out params and initialises within 1/sqrt(C)", "[stage][linear]") {
    const StageSchema s = Linear::schema();
    Linear l = prepared(s, 16, 3);
    REQUIRE(l.params().size() == 2);
    REQUIRE(l.params()[0].name == "weight");
    REQUIRE(l.params()[0].layout == "(C, O)");
    REQUIRE(l.params()[0].value.shape() == Shape{16, 3});
    REQUIRE(l.params()[1].name == "bias");
    REQUIRE(l.params()[1].value.shape() == Shape{3});
    for (std::int64_t i = 0; i < 48; ++i) REQUIRE(std::abs(l.params()[0].value.data<float>()[i]) <= 0.25f);
    REQUIRE(prepared(s, 4, 2, false).params().size() == 1);

    Linear bad(params_for(s, {{"out_dim", std::int64_t(2)}}));
    FakePrepare ctx(s);
    ctx.info("in", tensor_info(-1));
    REQUIRE_THROWS_WITH(bad.prepare(ctx), "linear needs the channel count of input 'in', got -1");
}

TEST_CASE("linear: forward against hand-computed numbers", "[stage][linear]") {
    const StageSchema s = Linear::schema();
    Linear l = prepared(s, 2, 3);
    // weight (C=2, O=3) = [[1, 2, 3], [4, 5, 6]], bias = (0.5, -1, 0)
    const std::vector<float> w{1, 2, 3, 4, 5, 6}, b{0.5f, -1, 0};
    std::copy(w.begin(), w.end(), l.params()[0].value.data<float>());
    std::copy(b.begin(), b.end(), l.params()[1].value.data<float>());
    // T = 2, N = 2, column 1 has length 1: (1, 1) is padding.
    const Tensor x = make_tensor({2, 2, 2}, {1, 0, 0, 1, 2, -1, 7, 7}, {2, 1});
    const Tensor y = forward(l, s, x);
    REQUIRE(y.shape() == Shape{2, 2, 3});
    REQUIRE(y.lengths == x.lengths);
    // (1,0)→(1.5, 1, 3); (0,1)→(4.5, 4, 6); (2,-1)→(-1.5, -2, 0); padding → 0.
    const std::vector<float> want{1.5f, 1, 3, 4.5f, 4, 6, -1.5f, -2, 0, 0, 0, 0};
    for (int i = 0; i < 12; ++i) REQUIRE(y.data<float>()[i] == Approx(want[i]));

    // Another M (a new cached plan), then the first again: same numbers.
    const Tensor x1 = make_tensor({1, 1, 2}, {1, 1});
    const Tensor y1 = forward(l, s, x1);
    for (int o = 0; o < 3; ++o) REQUIRE(y1.data<float>()[o] == Approx(w[o] + w[3 + o] + b[o]));
    const Tensor y2 = forward(l, s, x);
    for (int i = 0; i < 12; ++i) REQUIRE(y2.data<float>()[i] == y.data<float>()[i]);
}

TEST_CASE("linear: backward against hand-computed numbers", "[stage][linear]") {
    HandBackward h;
    Linear& l = h.l;
    const Tensor& dx = h.dx;
    for (auto& p : l.params()) p.grad.zero();
    l.params()[0].grad.data<float>()[0] = 100;  // backward adds to what is there
    h.backward();
    // dx = dy · Wᵀ: row (1, 0) → (1, 3); row (0, 2) → (4, 8).
    const std::vector<float> want_dx{1, 3, 4, 8};
    for (int i = 0; i < 4; ++i) REQUIRE(dx.data<float>()[i] == Approx(want_dx[i]));
    // dW = xᵀ · dy = [[1, 6], [2, 8]] (+100 already there); db = (1, 2).
    const std::vector<float> want_dw{101, 6, 2, 8};
    for (int i = 0; i < 4; ++i) REQUIRE(l.params()[0].grad.data<float>()[i] == Approx(want_dw[i]));
    REQUIRE(l.params()[1].grad.data<float>()[0] == Approx(1));
    REQUIRE(l.params()[1].grad.data<float>()[1] == Approx(2));
}

TEST_CASE("linear: a stale weight gradient is written, a fresh one added to", "[stage][linear]") {
    HandBackward h;
    Linear& l = h.l;
    REQUIRE(l.params()[0].overwrites_grad);
    REQUIRE_FALSE(l.params()[1].overwrites_grad);
    Param& wp = l.params()[0];
    l.params()[1].grad.zero();
    // Old values the optimiser left behind, NaN included: none may survive.
    std::fill_n(wp.grad.data<float>(), 4, std::numeric_limits<float>::quiet_NaN());
    wp.grad.data<float>()[1] = 100;
    wp.grad_stale = true;
    h.backward();
    REQUIRE_FALSE(wp.grad_stale);
    // dW = xᵀ · dy = [[1, 6], [2, 8]], written.
    const std::vector<float> want_dw{1, 6, 2, 8};
    for (int i = 0; i < 4; ++i) REQUIRE(wp.grad.data<float>()[i] == want_dw[i]);
    // A second backward in the same step adds.
    h.backward();
    for (int i = 0; i < 4; ++i) REQUIRE(wp.grad.data<float>()[i] == 2 * want_dw[i]);
    REQUIRE(l.params()[1].grad.data<float>()[1] == 4);
}

TEST_CASE("linear: backward matches finite differences with padding", "[stage][linear][grad]") {
    const StageSchema s = Linear::schema();
    const bool bias = GENERATE(true, false);
    Linear l = prepared(s, 4, 5, bias);
    Tensor x = random_tensor({3, 2, 4}, 7);
    x.lengths = {3, 1};
    const auto r = check_gradients(l, s, {&x});
    INFO(r.report);
    REQUIRE(r.ok);
}

TEST_CASE("linear: padded diff_out reaches no gradient", "[stage][linear]") {
    const StageSchema s = Linear::schema();
    Linear l = prepared(s, 2, 2);
    Tensor x = make_tensor({2, 1, 2}, {1, 2, 3, 4}, {1});
    Tensor y = forward(l, s, x);
    Tensor dy = make_tensor({2, 1, 2}, {0, 0, 5, 5});  // only the padded step has gradient
    Tensor dx;
    Saved saved;
    auto in = make_inputs(s, {&x});
    auto o = make_outputs(s, {&y});
    auto dd = make_diff_dst(s, {&dy});
    auto ds = make_diff_src(s, {&dx});
    for (auto& p : l.params()) p.grad.zero();
    l.backward(in, o, saved, dd, ds, StepInfo{});
    for (int i = 0; i < 4; ++i) {
        REQUIRE(dx.data<float>()[i] == 0.f);
        REQUIRE(l.params()[0].grad.data<float>()[i] == 0.f);
    }
    REQUIRE(l.params()[1].grad.data<float>()[0] == 0.f);
}

TEST_CASE("linear: dtype bf16 matches f32 to bf16 precision, with padding, and keeps f32 weights", "[stage][linear]") {
    // The f32 path is checked by finite differences above; bf16 products read inputs rounded to
    // 8 significant bits, so outputs and every gradient agree with f32's to ~1% of their scale.
    const StageSchema s = Linear::schema();
    const std::int64_t C = 24, O = 40;
    Linear f(params_for(s, {{"out_dim", O}}));
    Linear b(params_for(s, {{"out_dim", O}, {"dtype", std::string("bf16")}}));
    for (Linear* l : {&f, &b}) {
        FakePrepare ctx(s);
        ctx.info("in", tensor_info(C));
        l->prepare(ctx);
    }
    const Tensor w = random_tensor({C, O}, 3), bias = random_tensor({O}, 4);
    for (Linear* l : {&f, &b}) {
        std::copy_n(w.data<float>(), w.numel(), l->params()[0].value.data<float>());
        std::copy_n(bias.data<float>(), bias.numel(), l->params()[1].value.data<float>());
        for (auto& p : l->params()) p.grad.zero();
    }
    Tensor x = random_tensor({5, 3, C}, 5);
    x.lengths = {5, 2, 4};
    Tensor dy = random_tensor({5, 3, O}, 6);
    struct Result { Tensor y, dx; };
    auto run = [&](Linear& l) {
        Result r;
        Saved saved;
        auto in = make_inputs(s, {&x});
        auto o = make_outputs(s, {&r.y});
        l.forward(in, o, saved, StepInfo{});
        auto dd = make_diff_dst(s, {&dy});
        auto ds = make_diff_src(s, {&r.dx});
        l.backward(in, o, saved, dd, ds, StepInfo{});
        return r;
    };
    const Result rf = run(f), rb = run(b);
    auto close = [](const Tensor& a, const Tensor& c, double scale) {
        REQUIRE(a.numel() == c.numel());
        double worst = 0;
        bool differ = false;
        for (std::int64_t i = 0; i < a.numel(); ++i) {
            worst = std::max(worst, std::abs(double(a.data<float>()[i]) - double(c.data<float>()[i])));
            differ = differ || a.data<float>()[i] != c.data<float>()[i];
        }
        INFO("largest difference " << worst << " against scale " << scale);
        REQUIRE(worst < 0.02 * scale);
        return differ;
    };
    // |y| ~ sqrt(C) · (1/3) = 1.6 at most a few; gradients likewise.
    const bool y_differs = close(rf.y, rb.y, 4.0);
    close(rf.dx, rb.dx, 4.0);
    close(f.params()[0].grad, b.params()[0].grad, 4.0);
    close(f.params()[1].grad, b.params()[1].grad, 4.0);
    REQUIRE(y_differs);  // the bf16 path really rounds (it is not the f32 path)
    // Padded steps stay exactly zero; weights and gradients stay f32 tensors.
    for (std::int64_t t = 2; t < 5; ++t)
        for (std::int64_t o = 0; o < O; ++o) REQUIRE(rb.y.data<float>()[(t * 3 + 1) * O + o] == 0.f);
    REQUIRE(b.params()[0].value.dtype() == DType::f32);
    REQUIRE(b.params()[0].grad.dtype() == DType::f32);
}
