#include <catch2/catch.hpp>
#include <omp.h>

#include <cstring>

#include "stages/model/concat.hpp"
#include "stages/model/dropout.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Concat;
using rnnflow::stages::Dropout;

namespace {

Tensor random_tensor(Shape shape, std::uint64_t seed) {
    Tensor t = Tensor::f32(std::move(shape));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> uni(-1.f, 1.f);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = uni(rng);
    return t;
}

PortInfo tensor_info(std::int64_t c) { return PortInfo{PortType::tensor, c, -1, nullptr}; }

}  // namespace

TEST_CASE("concat: forward joins channels, zero at padding", "[stage][concat]") {
    const StageSchema s = Concat::schema();
    Concat c(default_params(s));
    FakePrepare ctx(s);
    ctx.info("a", tensor_info(2)).info("b", tensor_info(1));
    c.prepare(ctx);
    REQUIRE(ctx.out_info("out").channels == 3);
    Tensor a = random_tensor({2, 2, 2}, 1), b = random_tensor({2, 2, 1}, 2);
    a.lengths = b.lengths = {2, 1};
    Tensor y;
    Saved saved;
    auto in = make_inputs(s, {&a, &b});
    auto o = make_outputs(s, {&y});
    c.forward(in, o, saved, StepInfo{});
    REQUIRE(y.shape() == Shape{2, 2, 3});
    REQUIRE(y.lengths == a.lengths);
    for (int m = 0; m < 3; ++m) {  // (0,0), (0,1), (1,0)
        REQUIRE(y.data<float>()[m * 3 + 0] == a.data<float>()[m * 2]);
        REQUIRE(y.data<float>()[m * 3 + 1] == a.data<float>()[m * 2 + 1]);
        REQUIRE(y.data<float>()[m * 3 + 2] == b.data<float>()[m]);
    }
    for (int k = 0; k < 3; ++k) REQUIRE(y.data<float>()[9 + k] == 0.f);

    b.lengths = {2, 2};
    REQUIRE_THROWS_WITH(c.forward(in, o, saved, StepInfo{}),
                        Catch::Contains("column 1 has length 1 in input 'a' but 2 in input 'b'"));
}

TEST_CASE("concat: backward matches finite differences with padding", "[stage][concat][grad]") {
    const StageSchema s = Concat::schema();
    Concat c(default_params(s));
    FakePrepare ctx(s);
    ctx.info("a", tensor_info(3)).info("b", tensor_info(2));
    c.prepare(ctx);
    Tensor a = random_tensor({3, 2, 3}, 3), b = random_tensor({3, 2, 2}, 4);
    a.lengths = b.lengths = {3, 1};
    const auto r = check_gradients(c, s, {&a, &b});
    INFO(r.report);
    REQUIRE(r.ok);
}

TEST_CASE("dropout: identity outside training, inverted mask in training", "[stage][dropout]") {
    const StageSchema s = Dropout::schema();
    Dropout d(params_for(s, {{"p", 0.25}}));
    FakePrepare ctx(s);
    ctx.info("in", tensor_info(50));
    d.prepare(ctx);
    Tensor x = random_tensor({4, 10, 50}, 5);
    x.lengths = {4, 4, 4, 4, 4, 4, 4, 4, 4, 3};
    Tensor y;
    Saved saved;
    auto in = make_inputs(s, {&x});
    auto o = make_outputs(s, {&y});
    StepInfo eval;
    eval.phase = Phase::evaluate;
    d.forward(in, o, saved, eval);
    for (std::int64_t e = 0; e < 39 * 50; ++e) REQUIRE(y.data<float>()[e] == x.data<float>()[e]);
    for (std::int64_t c = 0; c < 50; ++c) REQUIRE(y.data<float>()[39 * 50 + c] == 0.f);  // padding

    StepInfo train;
    d.forward(in, o, saved, train);
    int zeros = 0;
    for (std::int64_t e = 0; e < 39 * 50; ++e) {
        const float v = y.data<float>()[e];
        if (v == 0.f) ++zeros;
        else REQUIRE(v == Approx(x.data<float>()[e] / 0.75f));
    }
    REQUIRE(zeros > 39 * 50 * 0.2);
    REQUIRE(zeros < 39 * 50 * 0.3);
    // Same step, same mask; another batch, another mask.
    Tensor y2;
    auto o2 = make_outputs(s, {&y2});
    d.forward(in, o2, saved, train);
    for (std::int64_t e = 0; e < y.numel(); ++e) REQUIRE(y2.data<float>()[e] == y.data<float>()[e]);
    train.batch = 1;
    d.forward(in, o2, saved, train);
    int same_zero = 0;
    for (std::int64_t e = 0; e < 39 * 50; ++e) same_zero += (y.data<float>()[e] == 0.f && y2.data<float>()[e] == 0.f);
    REQUIRE(same_zero < zeros);
}

TEST_CASE("dropout: the mask does not depend on the thread count", "[stage][dropout]") {
    // Large enough for the rows to be split between threads; a ragged batch.
    const StageSchema s = Dropout::schema();
    Dropout d(params_for(s, {{"p", 0.5}}));
    FakePrepare ctx(s);
    ctx.info("in", tensor_info(130));
    d.prepare(ctx);
    Tensor x = random_tensor({35, 20, 130}, 7);
    x.lengths.assign(20, 35);
    x.lengths[3] = 17;
    StepInfo train;
    train.batch = 2;
    auto run = [&](int threads, Tensor& y, Tensor& dx) {
        const int before = omp_get_max_threads();
        omp_set_num_threads(threads);
        Saved saved;
        auto in = make_inputs(s, {&x});
        auto o = make_outputs(s, {&y});
        d.forward(in, o, saved, train);
        Tensor dy = x;  // any diff: the mask must agree with forward's
        auto dd = make_diff_dst(s, {&dy});
        auto ds = make_diff_src(s, {&dx});
        d.backward(in, o, saved, dd, ds, train);
        omp_set_num_threads(before);
    };
    Tensor y1, y2, d1, d2;
    run(1, y1, d1);
    run(2, y2, d2);
    REQUIRE(y1.bytes() == y2.bytes());
    REQUIRE(std::memcmp(y1.raw(), y2.raw(), y1.bytes()) == 0);
    REQUIRE(std::memcmp(d1.raw(), d2.raw(), d1.bytes()) == 0);
    REQUIRE(std::memcmp(y1.raw(), d1.raw(), y1.bytes()) == 0);  // forward and backward: one mask
    for (std::int64_t t = 17; t < 35; ++t)
        for (std::int64_t c = 0; c < 130; ++c) REQUIRE(y1.data<float>()[(t * 20 + 3) * 130 + c] == 0.f);
}

TEST_CASE("dropout: backward matches finite differences in training", "[stage][dropout][grad]") {
    const StageSchema s = Dropout::schema();
    Dropout d(params_for(s, {{"p", 0.5}}));
    FakePrepare ctx(s);
    ctx.info("in", tensor_info(4));
    d.prepare(ctx);
    Tensor x = random_tensor({3, 2, 4}, 6);
    x.lengths = {3, 2};
    GradCheckOptions opt;
    opt.step.phase = Phase::train;
    opt.step.batch = 3;
    const auto r = check_gradients(d, s, {&x}, opt);
    INFO(r.report);
    REQUIRE(r.ok);
}
