#include <catch2/catch.hpp>

#include "stages/model/embedding.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Embedding;

namespace {

PortInfo ids_info(std::int64_t classes) {
    PortInfo i;
    i.type = PortType::ids;
    i.classes = classes;
    return i;
}

Tensor make_ids(std::int64_t T, std::int64_t N, std::vector<std::int32_t> v,
                std::vector<std::int32_t> lengths = {}) {
    Tensor t = Tensor::i32({T, N});
    std::copy(v.begin(), v.end(), t.data<std::int32_t>());
    t.lengths = std::move(lengths);
    return t;
}

// A prepared embedding with V = 4, C = 2 and weight row v = (10 v, 10 v + 1).
struct Fixture {
    StageSchema schema = Embedding::schema();
    Embedding stage{params_for(schema, {{"dim", std::int64_t(2)}})};
    Fixture() {
        FakePrepare ctx(schema);
        ctx.info("in", ids_info(4));
        stage.prepare(ctx);
        REQUIRE(ctx.out_info("out").channels == 2);
        float* w = stage.params()[0].value.data<float>();
        for (int v = 0; v < 4; ++v) {
            w[2 * v] = 10.f * v;
            w[2 * v + 1] = 10.f * v + 1;
        }
    }
    Tensor run(const Tensor& ids) {
        Tensor out;
        Saved saved;
        auto in = make_inputs(schema, {&ids});
        auto o = make_outputs(schema, {&out});
        stage.forward(in, o, saved, StepInfo{});
        return out;
    }
};

}  // namespace

TEST_CASE("embedding: schema defaults and bad values", "[stage][embedding]") {
    const StageSchema s = Embedding::schema();
    REQUIRE(s.type() == "embedding");
    REQUIRE(s.role() == Role::model);
    REQUIRE(s.is_differentiable());
    const Params p = default_params(s);
    REQUIRE(p.get_int("dim") == 64);
    REQUIRE(p.get_float("init_scale") == Approx(0.1));
    REQUIRE(StageSchema::check(*s.find_param("dim"), ParamValue(std::int64_t(0))) ==
            "must be in [1, 65536], got 0");
    REQUIRE(StageSchema::check(*s.find_param("init_scale"), ParamValue(-1.0)) ==
            "must be in [0, 10], got -1");
}

TEST_CASE("embedding: prepare needs a vocabulary size and initialises in range", "[stage][embedding]") {
    const StageSchema s = Embedding::schema();
    Embedding e(params_for(s, {{"dim", std::int64_t(3)}, {"init_scale", 0.5}}));
    FakePrepare bad(s);
    bad.info("in", ids_info(-1));
    REQUIRE_THROWS_WITH(e.prepare(bad),
                        "embedding needs the number of distinct ids of input 'in', got -1 "
                        "(connect it to ids that come from a vocabulary)");
    FakePrepare ctx(s);
    ctx.info("in", ids_info(7));
    e.prepare(ctx);
    const Param& w = e.params()[0];
    REQUIRE(w.name == "weight");
    REQUIRE(w.layout == "(V, C)");
    REQUIRE(w.value.shape() == Shape{7, 3});
    bool nonzero = false;
    for (std::int64_t i = 0; i < w.value.numel(); ++i) {
        REQUIRE(std::abs(w.value.data<float>()[i]) <= 0.5f);
        nonzero |= w.value.data<float>()[i] != 0.f;
    }
    REQUIRE(nonzero);

    // Same seed, same weights.
    Embedding e2(params_for(s, {{"dim", std::int64_t(3)}, {"init_scale", 0.5}}));
    FakePrepare ctx2(s);
    ctx2.info("in", ids_info(7));
    e2.prepare(ctx2);
    for (std::int64_t i = 0; i < w.value.numel(); ++i)
        REQUIRE(e2.params()[0].value.data<float>()[i] == w.value.data<float>()[i]);
}

TEST_CASE("embedding: forward looks up rows and zeroes padding", "[stage][embedding]") {
    Fixture f;
    // T = 2, N = 2; column 1 has length 1, so (1, 1) is padding (its id 9 is never read).
    const Tensor ids = make_ids(2, 2, {3, 1, 0, 9}, {2, 1});
    const Tensor out = f.run(ids);
    REQUIRE(out.shape() == Shape{2, 2, 2});
    REQUIRE(out.lengths == std::vector<std::int32_t>{2, 1});
    const std::vector<float> want{30, 31, 10, 11, 0, 1, 0, 0};
    for (int i = 0; i < 8; ++i) REQUIRE(out.data<float>()[i] == want[i]);
}

TEST_CASE("embedding: an id out of range names the id and V", "[stage][embedding]") {
    Fixture f;
    REQUIRE_THROWS_WITH(f.run(make_ids(1, 2, {1, 4})),
                        "embedding: id 4 at step 0, column 1 is outside [0, 4) (V = 4)");
    REQUIRE_THROWS_WITH(f.run(make_ids(1, 1, {-2})),
                        "embedding: id -2 at step 0, column 0 is outside [0, 4) (V = 4)");
    REQUIRE_THROWS_WITH(f.run(make_ids(1, 2, {0, 1}, {1})),
                        "embedding: input 'in' has 1 lengths for 2 batch columns");
}

TEST_CASE("embedding: backward scatter-adds into weight.grad, padding adds nothing", "[stage][embedding]") {
    Fixture f;
    const Tensor ids = make_ids(2, 2, {2, 2, 0, 3}, {2, 1});
    Tensor out = f.run(ids);
    Tensor dy = Tensor::f32({2, 2, 2});
    const std::vector<float> g{1, 2, 3, 4, 5, 6, 100, 100};  // last row is padding
    std::copy(g.begin(), g.end(), dy.data<float>());
    Saved saved;
    auto in = make_inputs(f.schema, {&ids});
    auto o = make_outputs(f.schema, {&out});
    auto dd = make_diff_dst(f.schema, {&dy});
    auto ds = make_diff_src(f.schema, {});
    f.stage.params()[0].grad.zero();
    f.stage.backward(in, o, saved, dd, ds, StepInfo{});
    f.stage.backward(in, o, saved, dd, ds, StepInfo{});  // adds, does not overwrite
    const float* dw = f.stage.params()[0].grad.data<float>();
    // row 0 ← (5, 6); row 2 ← (1, 2) + (3, 4); rows 1, 3 untouched (3 only at padding). Twice.
    const std::vector<float> want{10, 12, 0, 0, 8, 12, 0, 0};
    for (int i = 0; i < 8; ++i) REQUIRE(dw[i] == want[i]);
    // The gradient is row-sparse: exactly the rows added into are listed, once each, sorted.
    const Param& w = f.stage.params()[0];
    REQUIRE(w.sparse_rows);
    REQUIRE(w.grad_rows == std::vector<std::int64_t>{0, 2});
    REQUIRE(grad_sum_squares(w) == Approx(10 * 10 + 12 * 12 + 8 * 8 + 12 * 12));
}

TEST_CASE("embedding: backward matches finite differences", "[stage][embedding][grad]") {
    const StageSchema s = Embedding::schema();
    Embedding e(params_for(s, {{"dim", std::int64_t(3)}, {"init_scale", 1.0}}));
    FakePrepare ctx(s);
    ctx.info("in", ids_info(5));
    e.prepare(ctx);
    Tensor ids = make_ids(3, 2, {0, 4, 2, 2, 4, 1}, {3, 2});
    const auto r = check_gradients(e, s, {&ids});
    INFO(r.report);
    REQUIRE(r.ok);
    REQUIRE(r.checked == 15);
}
