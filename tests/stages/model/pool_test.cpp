#include <catch2/catch.hpp>

#include <cmath>

#include "stages/model/pool.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Pool;

namespace {

Tensor random_tensor(Shape shape, std::uint64_t seed) {
    Tensor t = Tensor::f32(std::move(shape));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> uni(-1.f, 1.f);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = uni(rng);
    return t;
}

Pool prepared(const StageSchema& s, std::int64_t C, const std::map<std::string, ParamValue>& set) {
    Pool p(params_for(s, set));
    FakePrepare ctx(s);
    ctx.info("in", PortInfo{PortType::tensor, C, -1, nullptr});
    p.prepare(ctx);
    REQUIRE(ctx.out_info("out").channels == C);
    return p;
}

Tensor run(Pool& p, const StageSchema& s, const Tensor& x) {
    Tensor y;
    Saved saved;
    auto in = make_inputs(s, {&x});
    auto o = make_outputs(s, {&y});
    p.forward(in, o, saved, StepInfo{});
    return y;
}

// Forward and backward with diff_out = g; returns diff_in.
Tensor run_backward(Pool& p, const StageSchema& s, const Tensor& x, const Tensor& g) {
    Tensor y, dx;
    Saved saved;
    auto in = make_inputs(s, {&x});
    auto o = make_outputs(s, {&y});
    p.forward(in, o, saved, StepInfo{});
    auto dd = make_diff_dst(s, {const_cast<Tensor*>(&g)});
    auto ds = make_diff_src(s, {&dx});
    p.backward(in, o, saved, dd, ds, StepInfo{});
    return dx;
}

using Settings = std::map<std::string, ParamValue>;

std::vector<std::pair<std::string, Settings>> all_modes() {
    return {
        {"last", {{"mode", std::string("last")}}},
        {"last, 2 directions", {{"mode", std::string("last")}, {"directions", std::int64_t(2)}}},
        {"mean", {{"mode", std::string("mean")}}},
        {"max", {{"mode", std::string("max")}}},
        {"attention", {{"mode", std::string("attention")}, {"init_scale", 0.5}}},
        {"attention, A 3",
         {{"mode", std::string("attention")}, {"attention_dim", std::int64_t(3)}, {"init_scale", 0.5}}},
    };
}

}  // namespace

TEST_CASE("pool: schema and parameter combinations", "[stage][pool]") {
    const StageSchema s = Pool::schema();
    REQUIRE(s.type() == "pool");
    REQUIRE(s.is_differentiable());
    const Params d = default_params(s);
    REQUIRE(d.get_string("mode") == "last");
    REQUIRE(d.get_int("directions") == 1);
    REQUIRE_THROWS_WITH(Pool(params_for(s, {{"mode", std::string("mean")}, {"directions", std::int64_t(2)}})),
                        Catch::Contains("'directions: 2' only applies to mode 'last'"));
    REQUIRE_THROWS_WITH(Pool(params_for(s, {{"mode", std::string("max")}, {"attention_dim", std::int64_t(4)}})),
                        Catch::Contains("'attention_dim' only applies to mode 'attention'"));
    Pool odd(params_for(s, {{"directions", std::int64_t(2)}}));
    FakePrepare ctx(s);
    ctx.info("in", PortInfo{PortType::tensor, 5, -1, nullptr});
    REQUIRE_THROWS_WITH(odd.prepare(ctx), Catch::Contains("needs an even channel count"));
    REQUIRE(prepared(s, 4, {}).params().empty());
    Pool att = prepared(s, 4, {{"mode", std::string("attention")}, {"attention_dim", std::int64_t(3)}});
    REQUIRE(att.params().size() == 3);
    REQUIRE(att.params()[0].name == "query");
    REQUIRE(att.params()[0].value.shape() == Shape{3});
    REQUIRE(att.params()[1].value.shape() == Shape{4, 3});
    REQUIRE(att.params()[2].value.shape() == Shape{3});
}

TEST_CASE("pool: forward against hand-computed numbers", "[stage][pool]") {
    const StageSchema s = Pool::schema();
    // T = 3, N = 2, C = 2; column 0 has length 3, column 1 length 2 (step 2 is padding: 99).
    Tensor x = Tensor::f32({3, 2, 2});
    const std::vector<float> v{1, -1, 5, 6,   // t = 0: col 0 (1, -1), col 1 (5, 6)
                               3, 2, -7, 8,   // t = 1
                               -2, 0, 99, 99};  // t = 2: col 1 padding
    std::copy(v.begin(), v.end(), x.data<float>());
    x.lengths = {3, 2};
    auto check = [&](const Settings& set, std::vector<float> want) {
        Pool p = prepared(s, 2, set);
        const Tensor y = run(p, s, x);
        REQUIRE(y.shape() == Shape{1, 2, 2});
        REQUIRE(y.lengths.empty());
        for (int i = 0; i < 4; ++i) REQUIRE(y.data<float>()[i] == Approx(want[i]));
    };
    check({{"mode", std::string("last")}}, {-2, 0, -7, 8});
    // Directions 2: channel 0 from the last valid step, channel 1 from step 0.
    check({{"mode", std::string("last")}, {"directions", std::int64_t(2)}}, {-2, -1, -7, 6});
    check({{"mode", std::string("mean")}}, {2.f / 3, 1.f / 3, -1, 7});
    check({{"mode", std::string("max")}}, {3, 2, 5, 8});

    // Attention with query (1, 0): weights softmax(x_t[0]) over valid steps.
    Pool att = prepared(s, 2, {{"mode", std::string("attention")}});
    att.params()[0].value.data<float>()[0] = 1;
    att.params()[0].value.data<float>()[1] = 0;
    const Tensor y = run(att, s, x);
    const double z0 = std::exp(1.0) + std::exp(3.0) + std::exp(-2.0);
    const double a0[3] = {std::exp(1.0) / z0, std::exp(3.0) / z0, std::exp(-2.0) / z0};
    REQUIRE(y.data<float>()[0] == Approx(a0[0] * 1 + a0[1] * 3 + a0[2] * -2));
    REQUIRE(y.data<float>()[1] == Approx(a0[0] * -1 + a0[1] * 2 + a0[2] * 0));
    const double z1 = std::exp(5.0) + std::exp(-7.0);
    REQUIRE(y.data<float>()[2] == Approx((std::exp(5.0) * 5 + std::exp(-7.0) * -7) / z1));
    REQUIRE(y.data<float>()[3] == Approx((std::exp(5.0) * 6 + std::exp(-7.0) * 8) / z1));
}

TEST_CASE("pool: a column of length 0 gives zeros and no gradient", "[stage][pool]") {
    const StageSchema s = Pool::schema();
    for (const auto& [name, set] : all_modes()) {
        INFO(name);
        Pool p = prepared(s, 4, set);
        Tensor x = random_tensor({3, 2, 4}, 3);
        x.lengths = {0, 2};
        Tensor g = random_tensor({1, 2, 4}, 4);
        const Tensor y = run(p, s, x);
        for (int c = 0; c < 4; ++c) REQUIRE(y.data<float>()[c] == 0.f);
        const Tensor dx = run_backward(p, s, x, g);
        for (int t = 0; t < 3; ++t)
            for (int c = 0; c < 4; ++c) REQUIRE(dx.data<float>()[(t * 2 + 0) * 4 + c] == 0.f);
    }
}

TEST_CASE("pool: backward matches finite differences on ragged batches, every mode",
          "[stage][pool][grad]") {
    const StageSchema s = Pool::schema();
    for (const auto& [name, set] : all_modes()) {
        INFO(name);
        Pool p = prepared(s, 6, set);
        // T = 5, N = 4: lengths 5, 2, 1, 4 (ragged, one full, one single step).
        Tensor x = random_tensor({5, 4, 6}, 11);
        if (name == "max") {
            // Well-separated values so a finite-difference step never changes the maximum.
            std::vector<float> vals(static_cast<std::size_t>(x.numel()));
            for (std::size_t i = 0; i < vals.size(); ++i) vals[i] = 0.05f * static_cast<float>(i) - 3.f;
            std::shuffle(vals.begin(), vals.end(), std::mt19937_64(5));
            std::copy(vals.begin(), vals.end(), x.data<float>());
        }
        x.lengths = {5, 2, 1, 4};
        GradCheckOptions opt;
        opt.eps = name == "max" ? 5e-3 : 1e-2;
        const auto r = check_gradients(p, s, {&x}, opt);
        INFO(r.report);
        REQUIRE(r.ok);
        REQUIRE(r.checked >= 40);
    }
}

TEST_CASE("pool: padding does not change outputs or gradients", "[stage][pool]") {
    const StageSchema s = Pool::schema();
    for (const auto& [name, set] : all_modes()) {
        INFO(name);
        Pool p = prepared(s, 4, set);
        // Column alone, no padding (T = 3) ...
        Tensor alone = random_tensor({3, 1, 4}, 21);
        Tensor g1 = random_tensor({1, 1, 4}, 22);
        const Tensor y1 = run(p, s, alone);
        const Tensor d1 = run_backward(p, s, alone, g1);
        std::vector<float> pgrad1;
        for (auto& prm : p.params()) {
            pgrad1.insert(pgrad1.end(), prm.grad.data<float>(), prm.grad.data<float>() + prm.grad.numel());
            prm.grad.zero();
        }
        // ... and as column 1 of a batch of T = 6 with large values at its padded steps and
        // another column next to it (the other column gets no output gradient).
        Tensor batch = random_tensor({6, 2, 4}, 23);
        for (int t = 0; t < 6; ++t)
            for (int c = 0; c < 4; ++c)
                batch.data<float>()[(t * 2 + 1) * 4 + c] = t < 3 ? alone.data<float>()[t * 4 + c] : 1e3f;
        batch.lengths = {6, 3};
        Tensor g2 = Tensor::f32({1, 2, 4});
        for (int c = 0; c < 4; ++c) g2.data<float>()[4 + c] = g1.data<float>()[c];
        const Tensor y2 = run(p, s, batch);
        const Tensor d2 = run_backward(p, s, batch, g2);
        for (int c = 0; c < 4; ++c) REQUIRE(y2.data<float>()[4 + c] == Approx(y1.data<float>()[c]).epsilon(1e-5));
        for (int t = 0; t < 6; ++t)
            for (int c = 0; c < 4; ++c) {
                const float got = d2.data<float>()[(t * 2 + 1) * 4 + c];
                if (t < 3) REQUIRE(got == Approx(d1.data<float>()[t * 4 + c]).epsilon(1e-5).margin(1e-7));
                else REQUIRE(got == 0.f);
            }
        std::vector<float> pgrad2;
        for (auto& prm : p.params())
            pgrad2.insert(pgrad2.end(), prm.grad.data<float>(), prm.grad.data<float>() + prm.grad.numel());
        REQUIRE(pgrad2.size() == pgrad1.size());
        for (std::size_t i = 0; i < pgrad1.size(); ++i) REQUIRE(pgrad2[i] == Approx(pgrad1[i]).epsilon(1e-4).margin(1e-6));
    }
}

TEST_CASE("pool: bad input shapes name the stage", "[stage][pool]") {
    const StageSchema s = Pool::schema();
    Pool p = prepared(s, 4, {{"mode", std::string("mean")}});
    Tensor x = random_tensor({2, 2, 3}, 1);
    REQUIRE_THROWS_WITH(run(p, s, x), Catch::Contains("pool: input 'in' must be f32 (T, N, 4)"));
    Tensor y = random_tensor({2, 2, 4}, 1);
    y.lengths = {3, 1};
    REQUIRE_THROWS_WITH(run(p, s, y), Catch::Contains("has length 3, outside [0, 2]"));
}
