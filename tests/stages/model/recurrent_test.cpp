// The recurrent family (rnn, lstm, gru) against its defining equations, finite differences and
// sequences run alone, for every cell and direction.
#include <catch2/catch.hpp>

#include <limits>

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "stages/model/gru.hpp"
#include "stages/model/lstm.hpp"
#include "stages/model/rnn.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::Recurrent;

namespace {

// float forward vs double reference: a few ulps per step of accumulation.
constexpr double kRefRtol = 2e-5;
constexpr double kRefAtol = 2e-6;
// Padded batch vs each column alone: same math, other GEMM blocking and summation order.
constexpr double kPadRtol = 1e-4;
constexpr double kPadAtol = 1e-6;

using Set = std::map<std::string, ParamValue>;

struct CellCase {
    std::string name, type;
    Set set;
};

const std::vector<CellCase>& cell_cases() {
    static const std::vector<CellCase> cases = {
        {"rnn tanh", "rnn", {{"activation", std::string("tanh")}}},
        {"rnn relu", "rnn", {{"activation", std::string("relu")}}},
        {"rnn sigmoid", "rnn", {{"activation", std::string("sigmoid")}}},
        {"lstm", "lstm", {}},
        {"lstm peephole", "lstm", {{"peephole", true}}},
        {"lstm projection", "lstm", {{"projection", std::int64_t(2)}}},
        {"lstm peephole projection", "lstm", {{"peephole", true}, {"projection", std::int64_t(2)}}},
        {"gru", "gru", {{"linear_before_reset", false}}},
        {"lbr gru", "gru", {{"linear_before_reset", true}}},
    };
    return cases;
}

const char* const kDirections[] = {"left_to_right", "right_to_left", "bidirectional_concat",
                                   "bidirectional_sum"};

StageSchema schema_of(const std::string& type) {
    if (type == "rnn") return stages::Rnn::schema();
    if (type == "lstm") return stages::Lstm::schema();
    return stages::Gru::schema();
}

// A prepared stage with C input channels; the state input connected or not.
struct Rig {
    StageSchema schema;
    std::unique_ptr<Recurrent> rnn;
    test::FakePrepare ctx;
    Rig(const std::string& type, const Set& set, std::int64_t C, std::uint64_t seed = 1,
        bool state_in = false)
        : schema(schema_of(type)), ctx(schema, seed) {
        const Params p = test::params_for(schema, set);
        if (type == "rnn") rnn = std::make_unique<stages::Rnn>(p);
        else if (type == "lstm") rnn = std::make_unique<stages::Lstm>(p);
        else rnn = std::make_unique<stages::Gru>(p);
        ctx.info("in", PortInfo{PortType::tensor, C, -1, nullptr});
        if (state_in) ctx.info("state", PortInfo{PortType::state, p.get_int("hidden"), -1, nullptr});
        rnn->prepare(ctx);
    }
    // Returns (out, final state).
    std::pair<Tensor, Tensor> forward(const Tensor& x, const Tensor* st, Saved& saved,
                                      const StepInfo& step = {}) {
        Tensor y, fs;
        auto in = test::make_inputs(schema, {&x, st});
        auto out = test::make_outputs(schema, {&y, &fs});
        rnn->forward(in, out, saved, step);
        return {y, fs};
    }
    // Returns (diff wrt in, diff wrt state input); adds into the params' grads.
    std::pair<Tensor, Tensor> backward(const Tensor& x, const Tensor* st, Saved& saved, Tensor dy,
                                       Tensor dfs, const StepInfo& step = {}) {
        Tensor dx, dst, y, fs;
        auto in = test::make_inputs(schema, {&x, st});
        auto out = test::make_outputs(schema, {&y, &fs});
        auto ddst = test::make_diff_dst(schema, {&dy, &dfs});
        auto dsrc = test::make_diff_src(schema, {&dx, st ? &dst : nullptr});
        rnn->backward(in, out, saved, ddst, dsrc, step);
        return {dx, dst};
    }
    Param& param(const std::string& name) {
        for (auto& p : rnn->params())
            if (p.name == name) return p;
        FAIL("no param " << name);
        throw;
    }
};

Tensor random_tensor(Shape s, std::uint64_t seed, float scale = 1.f) {
    Tensor t = Tensor::f32(std::move(s));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-scale, scale);
    for (std::int64_t e = 0; e < t.numel(); ++e) t.data<float>()[e] = u(rng);
    return t;
}

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

bool close(double a, double b, double rtol, double atol) {
    return std::abs(a - b) <= atol + rtol * std::max(std::abs(a), std::abs(b));
}

// ---------------------------------------------------------------------------------------------
// The defining equations in double, one column, layer and direction at a time.
struct Ref {
    std::vector<double> out;    // (T, N, Y), 0 at padding
    std::vector<double> state;  // (S, L*D, N, H)
};

Ref reference(Recurrent& r, const Params& p, const Tensor& x, const Tensor* init) {
    const std::int64_t T = x.dim(0), N = x.dim(1), C = x.dim(2), H = r.hidden();
    const std::int64_t D = r.directions(), L = r.layers(), S = r.state_slots(), P = r.projection();
    const std::int64_t Hp = P > 0 ? P : H, Y = r.out_channels(), G = r.gates();
    const std::string dir = p.get_string("direction");
    const bool concat = dir == "bidirectional_concat";
    const bool peep = r.cell() == stages::Cell::lstm && p.get_bool("peephole");
    const bool lbr = r.cell() == stages::Cell::gru && p.get_bool("linear_before_reset");
    const std::string act = r.cell() == stages::Cell::rnn ? p.get_string("activation") : "";
    auto find = [&](const std::string& name) -> const float* {
        for (auto& q : r.params())
            if (q.name == name) return q.value.data<float>();
        return nullptr;
    };
    Ref ref;
    ref.out.assign(static_cast<std::size_t>(T * N * Y), 0.0);
    ref.state.assign(static_cast<std::size_t>(S * L * D * N * H), 0.0);
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t len = x.length(n);
        std::vector<std::vector<double>> seq(static_cast<std::size_t>(len));  // layer input
        for (std::int64_t t = 0; t < len; ++t)
            for (std::int64_t c = 0; c < C; ++c) seq[t].push_back(x.data<float>()[(t * N + n) * C + c]);
        for (std::int64_t l = 0; l < L; ++l) {
            const std::int64_t in = l == 0 ? C : Y;
            std::vector<std::vector<double>> next(static_cast<std::size_t>(len), std::vector<double>(Y, 0.0));
            for (std::int64_t d = 0; d < D; ++d) {
                const bool r2l = dir == "right_to_left" || d == 1;
                const std::string pre = "layer" + std::to_string(l) + (r2l ? ".r2l." : ".l2r.");
                const float* W = find(pre + "weights_layer");   // (in, G, H)
                const float* U = find(pre + "weights_iter");    // (Hp, G, H)
                const float* b = find(pre + "bias");            // (Gb, H)
                const float* pp = find(pre + "weights_peephole");   // (3, H)
                const float* R = find(pre + "weights_projection");  // (H, P)
                const std::int64_t row = l * D + d;
                std::vector<double> h(Hp, 0.0), c(H, 0.0);
                if (init) {
                    const float* s0 = init->data<float>();
                    for (std::int64_t o = 0; o < Hp; ++o) h[o] = s0[(row * N + n) * H + o];
                    if (S == 2)
                        for (std::int64_t o = 0; o < H; ++o) c[o] = s0[((L * D + row) * N + n) * H + o];
                }
                for (std::int64_t k = 0; k < len; ++k) {
                    const std::int64_t t = r2l ? len - 1 - k : k;
                    // z[g][o] = x W + h U + b, per gate; for gru's n gate the parts stay apart.
                    std::vector<double> xw(static_cast<std::size_t>(G * H)), hu(static_cast<std::size_t>(G * H));
                    for (std::int64_t g = 0; g < G; ++g)
                        for (std::int64_t o = 0; o < H; ++o) {
                            double a = 0, u = 0;
                            for (std::int64_t i = 0; i < in; ++i) a += seq[t][i] * W[(i * G + g) * H + o];
                            for (std::int64_t j = 0; j < Hp; ++j) u += h[j] * U[(j * G + g) * H + o];
                            xw[g * H + o] = a;
                            hu[g * H + o] = u;
                        }
                    std::vector<double> hn(H);
                    if (r.cell() == stages::Cell::rnn) {
                        for (std::int64_t o = 0; o < H; ++o) {
                            const double z = xw[o] + hu[o] + b[o];
                            hn[o] = act == "relu" ? std::max(z, 0.0) : act == "sigmoid" ? sigmoid(z) : std::tanh(z);
                        }
                    } else if (r.cell() == stages::Cell::lstm) {
                        for (std::int64_t o = 0; o < H; ++o) {
                            auto z = [&](int g) { return xw[g * H + o] + hu[g * H + o] + b[g * H + o]; };
                            const double ig = sigmoid(z(0) + (peep ? pp[0 * H + o] * c[o] : 0));
                            const double fg = sigmoid(z(1) + (peep ? pp[1 * H + o] * c[o] : 0));
                            const double gg = std::tanh(z(2));
                            c[o] = fg * c[o] + ig * gg;
                            const double og = sigmoid(z(3) + (peep ? pp[2 * H + o] * c[o] : 0));
                            hn[o] = og * std::tanh(c[o]);
                        }
                    } else {
                        // Non-lbr n needs (r * h) U: recompute with the reset gate applied.
                        std::vector<double> rg(H);
                        for (std::int64_t o = 0; o < H; ++o) rg[o] = sigmoid(xw[H + o] + hu[H + o] + b[H + o]);
                        for (std::int64_t o = 0; o < H; ++o) {
                            const double ug = sigmoid(xw[o] + hu[o] + b[o]);
                            double nz;
                            if (lbr) {
                                nz = xw[2 * H + o] + b[2 * H + o] + rg[o] * (hu[2 * H + o] + b[3 * H + o]);
                            } else {
                                double rh = 0;
                                for (std::int64_t j = 0; j < H; ++j) rh += rg[j] * h[j] * U[(j * G + 2) * H + o];
                                nz = xw[2 * H + o] + rh + b[2 * H + o];
                            }
                            hn[o] = ug * h[o] + (1 - ug) * std::tanh(nz);
                        }
                    }
                    if (P > 0) {
                        for (std::int64_t q = 0; q < P; ++q) {
                            h[q] = 0;
                            for (std::int64_t o = 0; o < H; ++o) h[q] += hn[o] * R[o * P + q];
                        }
                    } else {
                        h = hn;
                    }
                    for (std::int64_t o = 0; o < Hp; ++o) next[t][(concat ? d * Hp : 0) + o] += h[o];
                }
                for (std::int64_t o = 0; o < Hp; ++o) ref.state[(row * N + n) * H + o] = h[o];
                if (S == 2)
                    for (std::int64_t o = 0; o < H; ++o) ref.state[((L * D + row) * N + n) * H + o] = c[o];
            }
            seq = next;
        }
        for (std::int64_t t = 0; t < len; ++t)
            for (std::int64_t o = 0; o < Y; ++o) ref.out[(t * N + n) * Y + o] = seq[t][o];
    }
    return ref;
}

Set with(Set s, const Set& more) {
    for (const auto& [k, v] : more) s[k] = v;
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
TEST_CASE("rnn, lstm, gru: schemas, defaults and bad values", "[stage][rnn]") {
    for (const char* type : {"rnn", "lstm", "gru"}) {
        INFO(type);
        const StageSchema s = schema_of(type);
        CHECK(s.type() == type);
        CHECK(s.role() == Role::model);
        CHECK(s.is_differentiable());
        REQUIRE(s.find_input("state") != nullptr);
        CHECK(s.find_input("state")->type == PortType::state);
        CHECK(s.find_input("state")->optional);
        CHECK(s.find_output("state")->type == PortType::state);
        CHECK(s.find_output("out")->type == PortType::tensor);
        const Params p = default_params(s);
        CHECK(p.get_int("hidden") == 256);
        CHECK(p.get_string("direction") == "left_to_right");
        CHECK(p.get_string("initializer") == "uniform");
        CHECK(StageSchema::check(*s.find_param("direction"), ParamValue(std::string("both"))) ==
              "must be one of left_to_right, right_to_left, bidirectional_concat, "
              "bidirectional_sum, got 'both'");
        CHECK(StageSchema::check(*s.find_param("initializer"), ParamValue(std::string("he"))) ==
              "must be one of uniform, xavier, orthogonal, got 'he'");
        CHECK(StageSchema::check(*s.find_param("layers"), ParamValue(std::int64_t(0))) ==
              "must be in [1, 16], got 0");
    }
    const StageSchema r = stages::Rnn::schema();
    CHECK(default_params(r).get_string("activation") == "tanh");
    CHECK(StageSchema::check(*r.find_param("activation"), ParamValue(std::string("gelu"))) ==
          "must be one of tanh, relu, sigmoid, got 'gelu'");
    CHECK(r.find_param("peephole") == nullptr);
    const StageSchema g = stages::Gru::schema();
    CHECK(default_params(g).get_bool("linear_before_reset") == true);
    CHECK(g.find_param("forget_bias") == nullptr);
    const StageSchema l = stages::Lstm::schema();
    CHECK(default_params(l).get_bool("peephole") == false);
    CHECK(default_params(l).get_int("projection") == 0);
    CHECK(StageSchema::check(*l.find_param("projection"), ParamValue(std::int64_t(-1))) ==
          "must be in [0, 65536], got -1");
    CHECK_THROWS_WITH(stages::Lstm(test::params_for(l, {{"hidden", std::int64_t(4)},
                                                        {"projection", std::int64_t(4)}})),
                      "'projection' must be smaller than 'hidden' (4), got 4");
}

TEST_CASE("rnn, lstm, gru: params, port infos and state shapes", "[stage][rnn]") {
    SECTION("bidirectional lstm with peephole and projection") {
        Rig r("lstm", {{"hidden", std::int64_t(5)}, {"layers", std::int64_t(2)},
                       {"direction", std::string("bidirectional_concat")}, {"peephole", true},
                       {"projection", std::int64_t(3)}}, 4);
        CHECK(r.ctx.out_info("out").channels == 6);
        CHECK(r.ctx.out_info("state").type == PortType::state);
        auto ps = r.rnn->params();
        REQUIRE(ps.size() == 2 * 2 * 5);
        CHECK(ps[0].name == "layer0.l2r.weights_layer");
        CHECK(ps[0].value.shape() == Shape{4, 4, 5});
        CHECK(ps[1].name == "layer0.l2r.weights_iter");
        CHECK(ps[1].value.shape() == Shape{3, 4, 5});  // reads the projected h
        CHECK(ps[2].value.shape() == Shape{4, 5});
        CHECK(ps[3].name == "layer0.l2r.weights_peephole");
        CHECK(ps[3].value.shape() == Shape{3, 5});
        CHECK(ps[4].name == "layer0.l2r.weights_projection");
        CHECK(ps[4].value.shape() == Shape{5, 3});
        CHECK(ps[5].name == "layer0.r2l.weights_layer");
        CHECK(ps[10].name == "layer1.l2r.weights_layer");
        CHECK(ps[10].value.shape() == Shape{6, 4, 5});  // concat of both directions below
        CHECK(r.rnn->state_shape(7) == Shape{2, 4, 7, 5});
    }
    SECTION("right-to-left lbr gru and sum rnn") {
        Rig g("gru", {{"hidden", std::int64_t(3)}, {"direction", std::string("right_to_left")}}, 2);
        CHECK(g.rnn->params()[0].name == "layer0.r2l.weights_layer");
        CHECK(g.rnn->params()[0].value.shape() == Shape{2, 3, 3});
        CHECK(g.rnn->params()[2].value.shape() == Shape{4, 3});  // u, r, n, hn
        Rig o("gru", {{"hidden", std::int64_t(3)}, {"linear_before_reset", false}}, 2);
        CHECK(o.rnn->params()[2].value.shape() == Shape{3, 3});
        Rig s("rnn", {{"hidden", std::int64_t(3)}, {"layers", std::int64_t(2)},
                      {"direction", std::string("bidirectional_sum")}}, 2);
        CHECK(s.ctx.out_info("out").channels == 3);
        CHECK(s.rnn->params()[6].value.shape() == Shape{3, 1, 3});
        CHECK(s.rnn->state_shape(2) == Shape{1, 4, 2, 3});
    }
    SECTION("forward writes both outputs with the documented shapes") {
        Rig r("lstm", {{"hidden", std::int64_t(3)}, {"direction", std::string("bidirectional_concat")}}, 2);
        Tensor x = random_tensor({4, 2, 2}, 1);
        x.lengths = {4, 2};
        Saved saved;
        auto [y, fs] = r.forward(x, nullptr, saved);
        CHECK(y.shape() == Shape{4, 2, 6});
        CHECK(y.lengths == x.lengths);
        CHECK(fs.shape() == Shape{2, 2, 2, 3});
        CHECK(fs.lengths.empty());
    }
}

TEST_CASE("rnn, lstm, gru: state input errors name the expected shape", "[stage][rnn]") {
    Rig r("lstm", {{"hidden", std::int64_t(3)}, {"layers", std::int64_t(2)}}, 2, 1, true);
    Tensor x = random_tensor({2, 4, 2}, 2);
    Tensor bad = Tensor::f32({2, 2, 3, 3});
    Saved saved;
    CHECK_THROWS_WITH(r.forward(x, &bad, saved),
                      "input 'state' must be f32 (S, L*D, N, H) = (2, 2, 4, 3), got f32 (2, 2, 3, 3)");
    Tensor wrong_c = random_tensor({2, 4, 5}, 3);
    CHECK_THROWS_WITH(r.forward(wrong_c, nullptr, saved),
                      Catch::Contains("input 'in' must be f32 (T, N, 2), got f32 (2, 4, 5)"));

    const StageSchema s = stages::Gru::schema();
    stages::Gru g(test::params_for(s, {{"hidden", std::int64_t(3)}, {"carry_state", true}}));
    test::FakePrepare ctx(s);
    ctx.info("in", PortInfo{PortType::tensor, 2, -1, nullptr});
    ctx.info("state", PortInfo{PortType::state, 3, -1, nullptr});
    CHECK_THROWS_WITH(g.prepare(ctx), Catch::Contains("carry_state and a connected 'state' input"));
}

// ---------------------------------------------------------------------------------------------
// Hand-worked values: C = H = 1, every gate's W = 0.5, U = -0.5, b = 0.1 (lbr's b_hn too),
// x = 1 then -1, h = c = 0 before.
TEST_CASE("rnn, lstm, gru: one and two steps match hand-computed values", "[stage][rnn]") {
    struct Hand {
        std::string type;
        Set set;
        double h1, h2;
    };
    // rnn tanh: h1 = tanh(0.5 + 0.1) = tanh(0.6) = 0.5370496;
    //           h2 = tanh(-0.5 - 0.5*0.5370496 + 0.1) = tanh(-0.6685248) = -0.5840087.
    // rnn relu: h1 = 0.6; h2 = max(0, -0.5 - 0.3 + 0.1) = 0.
    // rnn sigmoid: h1 = sigmoid(0.6) = 0.6456563; h2 = sigmoid(-0.7228282) = 0.3267705.
    // lstm: z = 0.6, i = f = o = sigmoid(0.6) = 0.6456563, g = tanh(0.6) = 0.5370496,
    //       c1 = i*g = 0.3467494, h1 = o*tanh(c1) = 0.2153197; step 2: z = -0.5076598,
    //       c2 = f*c1 + i*g = -0.0456040, h2 = -0.0171235.
    // lstm peephole (all p = 0.5): c1 = 0.3467494 (c0 = 0), o = sigmoid(0.6 + 0.5*c1),
    //       h1 = 0.2281904; h2 = -0.0193180.
    // lstm projection (H = 2, P = 1, R = (1, 1)): each unit as the lstm above, h1 = 2*0.2153197
    //       = 0.4306394; step 2 reads U h1 = -0.2153197: h2 = -0.0494290.
    // gru: u = r = sigmoid(0.6), n = tanh(0.5 + r*0*U + 0.1) = 0.5370496,
    //      h1 = (1 - u)*n = 0.1903001; h2 = -0.1828949.
    // lbr gru: n = tanh(0.5 + 0.1 + r*(0*U + 0.1)) = tanh(0.6 + 0.0645656) = 0.5814..,
    //      h1 = 0.2060132; h2 = -0.1597421.
    const std::vector<Hand> hands = {
        {"rnn", {{"activation", std::string("tanh")}}, 0.5370495669980353, -0.5840086501831303},
        {"rnn", {{"activation", std::string("relu")}}, 0.6, 0.0},
        {"rnn", {{"activation", std::string("sigmoid")}}, 0.6456563062257954, 0.32677050861678303},
        {"lstm", {}, 0.21531968574043805, -0.01712348035899273},
        {"lstm", {{"peephole", true}}, 0.22819043627702335, -0.01931802347266375},
        {"lstm", {{"projection", std::int64_t(1)}, {"hidden", std::int64_t(2)}}, 0.4306393714808761,
         -0.0494289818289133},
        {"gru", {{"linear_before_reset", false}}, 0.190300127309921, -0.182894898246749},
        {"gru", {{"linear_before_reset", true}}, 0.20601322585189766, -0.1597421317396389},
    };
    for (const auto& hc : hands) {
        Set set = with({{"hidden", std::int64_t(1)}, {"init_scale", 0.0}}, hc.set);
        Rig r(hc.type, set, 1);
        for (auto& p : r.rnn->params()) {
            float* v = p.value.data<float>();
            const bool wl = p.name.ends_with("weights_layer"), wi = p.name.ends_with("weights_iter");
            for (std::int64_t e = 0; e < p.value.numel(); ++e)
                v[e] = wl ? 0.5f : wi ? -0.5f : p.name.ends_with("bias") ? 0.1f : 0.5f;
            if (p.name.ends_with("weights_projection")) std::fill(v, v + p.value.numel(), 1.f);
        }
        INFO(hc.type << " " << (hc.set.empty() ? std::string() : hc.set.begin()->first));
        Tensor x = Tensor::f32({2, 1, 1});
        x.data<float>()[0] = 1.f;
        x.data<float>()[1] = -1.f;
        Saved saved;
        Tensor one = Tensor::f32({1, 1, 1});
        one.data<float>()[0] = 1.f;
        auto [y1, s1] = r.forward(one, nullptr, saved);
        CHECK(y1.data<float>()[0] == Approx(hc.h1).epsilon(1e-6).margin(1e-7));
        auto [y, fs] = r.forward(x, nullptr, saved);
        CHECK(y.data<float>()[0] == Approx(hc.h1).epsilon(1e-6).margin(1e-7));
        CHECK(y.data<float>()[1] == Approx(hc.h2).epsilon(1e-5).margin(1e-7));
        CHECK(fs.data<float>()[0] == Approx(hc.h2).epsilon(1e-5).margin(1e-7));
    }
}

TEST_CASE("rnn, lstm, gru: ragged forward matches the defining equations", "[stage][rnn]") {
    const auto& cc = GENERATE(from_range(cell_cases()));
    const std::string dir = GENERATE(from_range(std::begin(kDirections), std::end(kDirections)));
    const bool state_in = GENERATE(false, true);
    INFO(cc.name << ", " << dir << (state_in ? ", initial state" : ""));
    const Set set = with({{"hidden", std::int64_t(3)}, {"layers", std::int64_t(2)},
                          {"direction", dir}, {"init_scale", 0.6}}, cc.set);
    Rig r(cc.type, set, 3, 7, state_in);
    const Params p = test::params_for(r.schema, set);
    Tensor x = random_tensor({5, 4, 3}, 11);
    x.lengths = {3, 5, 0, 2};
    const Tensor st = random_tensor(r.rnn->state_shape(4), 12, 0.8f);
    Saved saved;
    auto [y, fs] = r.forward(x, state_in ? &st : nullptr, saved);
    const Ref ref = reference(*r.rnn, p, x, state_in ? &st : nullptr);
    REQUIRE(y.numel() == static_cast<std::int64_t>(ref.out.size()));
    for (std::int64_t e = 0; e < y.numel(); ++e) {
        INFO("out[" << e << "]");
        CHECK(close(y.data<float>()[e], ref.out[e], kRefRtol, kRefAtol));
    }
    REQUIRE(fs.numel() == static_cast<std::int64_t>(ref.state.size()));
    for (std::int64_t e = 0; e < fs.numel(); ++e) {
        INFO("state[" << e << "]");
        CHECK(close(fs.data<float>()[e], ref.state[e], kRefRtol, kRefAtol));
    }
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("rnn, lstm, gru: backward matches finite differences", "[stage][rnn][grad]") {
    const auto& cc = GENERATE(from_range(cell_cases()));
    const std::string dir = GENERATE(from_range(std::begin(kDirections), std::end(kDirections)));
    const std::int64_t layers = GENERATE(1, 2);
    const bool state_in = GENERATE(false, true);
    INFO(cc.name << ", " << dir << ", " << layers << " layers" << (state_in ? ", initial state" : ""));
    const Set set = with({{"hidden", std::int64_t(3)}, {"layers", layers}, {"direction", dir},
                          {"init_scale", 0.6}}, cc.set);
    Rig r(cc.type, set, 3, 5, state_in);
    Tensor x = random_tensor({4, 3, 3}, 21);
    x.lengths = {2, 4, 3};
    Tensor st = random_tensor(r.rnn->state_shape(3), 22, 0.8f);
    test::GradCheckOptions opt;
    opt.samples = 12;  // elements per tensor: 144 cases stay within seconds
    // relu's kink: a smaller step keeps probes on one side of it.
    if (cc.name == "rnn relu") opt.eps = 1e-3;
    const auto res = test::check_gradients(*r.rnn, r.schema, {&x, state_in ? &st : nullptr}, opt);
    INFO(res.report);
    CHECK(res.ok);
    CHECK(res.checked > 20);  // rnn, 1 layer, no state: 3 params + input, 12 samples each
}

TEST_CASE("rnn, lstm, gru: dropout between layers keeps gradients exact", "[stage][rnn][grad]") {
    const std::string dir = GENERATE(std::string("left_to_right"), std::string("bidirectional_concat"),
                                     std::string("right_to_left"));
    INFO(dir);
    Rig r("gru", {{"hidden", std::int64_t(3)}, {"layers", std::int64_t(3)}, {"direction", dir},
                  {"dropout", 0.4}, {"init_scale", 0.6}}, 2, 4);
    Tensor x = random_tensor({4, 3, 2}, 31);
    x.lengths = {4, 1, 3};
    test::GradCheckOptions opt;
    opt.samples = 24;
    opt.step.batch = 5;
    const auto res = test::check_gradients(*r.rnn, r.schema, {&x}, opt);
    INFO(res.report);
    CHECK(res.ok);
}

// ---------------------------------------------------------------------------------------------
// The padded batch against each column run alone (N = 1), with an initial state and gradients
// arriving at both outputs.
TEST_CASE("rnn, lstm, gru: a padded batch gives each sequence's own numbers", "[stage][rnn]") {
    const auto& cc = GENERATE(from_range(cell_cases()));
    const std::string dir = GENERATE(from_range(std::begin(kDirections), std::end(kDirections)));
    INFO(cc.name << ", " << dir);
    const Set set = with({{"hidden", std::int64_t(3)}, {"layers", std::int64_t(2)},
                          {"direction", dir}, {"init_scale", 0.5}}, cc.set);
    Rig batch(cc.type, set, 3, 8, true);
    Rig alone(cc.type, set, 3, 8, true);  // same seed: same weights
    const std::int64_t T = 5, N = 4, C = 3;
    const std::int64_t Y = batch.rnn->out_channels(), S = batch.rnn->state_slots();
    const std::int64_t LD = batch.rnn->layers() * batch.rnn->directions(), H = 3;
    Tensor x = random_tensor({T, N, C}, 40);
    x.lengths = {2, 5, 1, 3};
    const Tensor st = random_tensor(batch.rnn->state_shape(N), 41);
    const Tensor dy = random_tensor({T, N, Y}, 42);  // nonzero at padding: the stage ignores it
    const Tensor dfs = random_tensor(batch.rnn->state_shape(N), 43);
    Saved saved;
    auto [y, fs] = batch.forward(x, &st, saved);
    auto [dx, dst] = batch.backward(x, &st, saved, dy, dfs);

    for (auto& p : alone.rnn->params()) p.grad.zero();
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t len = x.length(n);
        Tensor xn = Tensor::f32({len, 1, C}), dyn = Tensor::f32({len, 1, Y});
        for (std::int64_t t = 0; t < len; ++t) {
            std::copy_n(x.data<float>() + (t * N + n) * C, C, xn.data<float>() + t * C);
            std::copy_n(dy.data<float>() + (t * N + n) * Y, Y, dyn.data<float>() + t * Y);
        }
        Tensor sn = Tensor::f32(alone.rnn->state_shape(1)), dsn = Tensor::f32(alone.rnn->state_shape(1));
        for (std::int64_t k = 0; k < S * LD; ++k) {
            std::copy_n(st.data<float>() + (k * N + n) * H, H, sn.data<float>() + k * H);
            std::copy_n(dfs.data<float>() + (k * N + n) * H, H, dsn.data<float>() + k * H);
        }
        Saved s1;
        auto [yn, fsn] = alone.forward(xn, &sn, s1);
        auto [dxn, dstn] = alone.backward(xn, &sn, s1, dyn, dsn);  // grads add up over columns
        INFO("column " << n);
        for (std::int64_t t = 0; t < T; ++t)
            for (std::int64_t o = 0; o < Y; ++o) {
                const float got = y.data<float>()[(t * N + n) * Y + o];
                if (t < len) CHECK(close(got, yn.data<float>()[t * Y + o], kPadRtol, kPadAtol));
                else CHECK(got == 0.f);
            }
        for (std::int64_t t = 0; t < T; ++t)
            for (std::int64_t c = 0; c < C; ++c) {
                const float got = dx.data<float>()[(t * N + n) * C + c];
                if (t < len) CHECK(close(got, dxn.data<float>()[t * C + c], kPadRtol, kPadAtol));
                else CHECK(got == 0.f);
            }
        for (std::int64_t k = 0; k < S * LD; ++k)
            for (std::int64_t o = 0; o < H; ++o) {
                INFO("state row " << k << " channel " << o);
                CHECK(close(fs.data<float>()[(k * N + n) * H + o], fsn.data<float>()[k * H + o], kPadRtol, kPadAtol));
                CHECK(close(dst.data<float>()[(k * N + n) * H + o], dstn.data<float>()[k * H + o], kPadRtol, kPadAtol));
            }
    }
    auto pb = batch.rnn->params(), pa = alone.rnn->params();
    for (std::size_t k = 0; k < pb.size(); ++k)
        for (std::int64_t e = 0; e < pb[k].grad.numel(); ++e) {
            INFO(pb[k].name << "[" << e << "]");
            CHECK(close(pb[k].grad.data<float>()[e], pa[k].grad.data<float>()[e], kPadRtol, kPadAtol));
        }
}

// The optimiser leaves these gradients stale (Param::overwrites_grad) instead of zeroing them:
// backward must write over whatever they hold (hidden 3 and 4: G·H a multiple of 16 or not, where
// oneDNN's own weight layouts pad the rows).
TEST_CASE("rnn, lstm, gru: a stale gradient is written, a fresh one added to", "[stage][rnn]") {
    const auto& cc = GENERATE(from_range(cell_cases()));
    const std::int64_t H = GENERATE(3, 4);
    INFO(cc.name << ", hidden " << H);
    const Set set = with({{"hidden", H}, {"layers", std::int64_t(2)},
                          {"direction", std::string("bidirectional_concat")}, {"init_scale", 0.5}}, cc.set);
    Rig r(cc.type, set, 3, 8);
    const std::int64_t T = 4, N = 3;
    Tensor x = random_tensor({T, N, 3}, 50);
    x.lengths = {4, 2, 3};
    const Tensor dy = random_tensor({T, N, r.rnn->out_channels()}, 51);
    const Tensor dfs = random_tensor(r.rnn->state_shape(N), 52);
    auto step = [&] {
        Saved saved;
        r.forward(x, nullptr, saved);
        r.backward(x, nullptr, saved, dy, dfs);
    };
    for (auto& p : r.rnn->params()) {
        REQUIRE(p.overwrites_grad);
        p.grad.zero();
    }
    step();
    std::vector<Tensor> once;
    for (auto& p : r.rnn->params()) once.push_back(p.grad);
    for (auto& p : r.rnn->params()) {
        std::fill_n(p.grad.data<float>(), p.grad.numel(), std::numeric_limits<float>::quiet_NaN());
        p.grad_stale = true;
    }
    step();
    auto ps = r.rnn->params();
    for (std::size_t k = 0; k < ps.size(); ++k) {
        INFO(ps[k].name);
        REQUIRE_FALSE(ps[k].grad_stale);
        for (std::int64_t e = 0; e < ps[k].grad.numel(); ++e) REQUIRE(ps[k].grad.data<float>()[e] == once[k].data<float>()[e]);
    }
    step();  // not stale: adds (oneDNN adds step by step into what is there: equal to rounding)
    for (std::size_t k = 0; k < ps.size(); ++k) {
        INFO(ps[k].name);
        for (std::int64_t e = 0; e < ps[k].grad.numel(); ++e)
            REQUIRE(ps[k].grad.data<float>()[e] == Approx(2 * once[k].data<float>()[e]).epsilon(1e-5).margin(1e-6));
    }
}

// A right-to-left pass starts at each sequence's own last token: its first output is what the
// sequence's last token gives from the initial state alone.
TEST_CASE("rnn, lstm, gru: right-to-left starts at each sequence's last token", "[stage][rnn]") {
    Rig r("rnn", {{"hidden", std::int64_t(2)}, {"direction", std::string("right_to_left")},
                  {"init_scale", 0.5}}, 2, 3);
    Tensor x = random_tensor({4, 2, 2}, 50);
    x.lengths = {4, 2};
    Saved saved;
    auto [y, fs] = r.forward(x, nullptr, saved);
    Tensor last = Tensor::f32({1, 1, 2});
    std::copy_n(x.data<float>() + (1 * 2 + 1) * 2, 2, last.data<float>());  // column 1, t = 1
    Saved s1;
    auto [y1, f1] = r.forward(last, nullptr, s1);
    CHECK(y.data<float>()[(1 * 2 + 1) * 2] == Approx(y1.data<float>()[0]).epsilon(1e-6));
    CHECK(y.data<float>()[(1 * 2 + 1) * 2 + 1] == Approx(y1.data<float>()[1]).epsilon(1e-6));
    // The final state of a right-to-left pass is its output at t = 0.
    CHECK(fs.data<float>()[1 * 2] == y.data<float>()[(0 * 2 + 1) * 2]);
}

TEST_CASE("rnn, lstm, gru: initialisers", "[stage][rnn]") {
    SECTION("orthogonal weights_iter gate blocks have orthonormal columns") {
        Rig r("gru", {{"hidden", std::int64_t(4)}, {"initializer", std::string("orthogonal")},
                      {"init_gain", 1.0}}, 6);
        const Param& wi = r.param("layer0.l2r.weights_iter");  // (4, 3, 4)
        for (std::int64_t g = 0; g < 3; ++g)
            for (std::int64_t a = 0; a < 4; ++a)
                for (std::int64_t b = 0; b < 4; ++b) {
                    double dot = 0;
                    for (std::int64_t i = 0; i < 4; ++i)
                        dot += double(wi.value.data<float>()[(i * 3 + g) * 4 + a]) * wi.value.data<float>()[(i * 3 + g) * 4 + b];
                    CHECK(dot == Approx(a == b ? 1.0 : 0.0).margin(1e-5));
                }
        const Param& b = r.param("layer0.l2r.bias");
        for (std::int64_t e = 0; e < b.value.numel(); ++e) CHECK(b.value.data<float>()[e] == 0.f);
    }
    SECTION("xavier bounds and the forget bias") {
        Rig r("lstm", {{"hidden", std::int64_t(8)}, {"initializer", std::string("xavier")},
                       {"init_gain", 1.0}, {"forget_bias", 1.0}}, 4);
        const Param& wl = r.param("layer0.l2r.weights_layer");
        const double a = std::sqrt(6.0 / (4 + 8));
        double maxabs = 0;
        for (std::int64_t e = 0; e < wl.value.numel(); ++e) maxabs = std::max(maxabs, double(std::abs(wl.value.data<float>()[e])));
        CHECK(maxabs <= a);
        CHECK(maxabs > 0.5 * a);
        const Param& b = r.param("layer0.l2r.bias");
        for (std::int64_t g = 0; g < 4; ++g) CHECK(b.value.data<float>()[g * 8] == (g == 1 ? 1.f : 0.f));
    }
}

TEST_CASE("rnn, lstm, gru: carried state continues ragged columns exactly", "[stage][rnn]") {
    // With exact final states a padded column continues from its own last valid step.
    const Set set{{"hidden", std::int64_t(3)}, {"layers", std::int64_t(2)}, {"init_scale", 0.5}};
    Rig carry("lstm", with(set, {{"carry_state", true}}), 2, 6);
    Rig once("lstm", set, 2, 6);
    Tensor a = random_tensor({3, 2, 2}, 60), b = random_tensor({2, 2, 2}, 61);
    a.lengths = {3, 1};
    StepInfo step;
    Saved s1, s2, s3;
    (void)carry.forward(a, nullptr, s1, step);
    step.reset_state = false;
    auto [yb, fb] = carry.forward(b, nullptr, s2, step);
    // Column 1 alone: a[0] then b[0..1].
    Tensor whole = Tensor::f32({3, 1, 2});
    std::copy_n(a.data<float>() + 1 * 2, 2, whole.data<float>());
    std::copy_n(b.data<float>() + 1 * 2, 2, whole.data<float>() + 2);
    std::copy_n(b.data<float>() + 3 * 2, 2, whole.data<float>() + 4);
    auto [yw, fw] = once.forward(whole, nullptr, s3);
    for (std::int64_t o = 0; o < 3; ++o)
        CHECK(close(yb.data<float>()[(1 * 2 + 1) * 3 + o], yw.data<float>()[2 * 3 + o], kPadRtol, kPadAtol));
}

// ---------------------------------------------------------------------------------------------
// Through the real engine: an encoder hands its final state to a decoder (the state ports are
// typed edges), a bidirectional GRU and a right-to-left RNN train on a pattern.
#include <unistd.h>

#include <fstream>

#include "pipeline/exec/engine.hpp"
#include "pipeline/graph/graph.hpp"

TEST_CASE("rnn, lstm, gru: state ports wire an encoder to a decoder in the engine", "[stage][rnn][engine]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("rnnflow_recurrent_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    {
        std::ofstream os(dir / "p.txt");
        for (int i = 0; i < 300; ++i) os << "abcabdabce ";
    }
    const std::string cell = GENERATE(std::string("lstm"), std::string("gru"), std::string("rnn"));
    INFO(cell);
    const std::string text =
        "experiment: encdec\n"
        "seed: 3\n"
        "stages:\n"
        "  corpus: {type: text_file, train: ['" + (dir / "p.txt").string() + "'], by: file, valid_fraction: 0.1}\n"
        "  tokens: {type: tokenize, in: corpus, mode: char}\n"
        "  vocab:  {type: vocabulary, in: tokens, specials: [<unk>]}\n"
        "  batch:  {type: lm_batches, in: vocab.out, batch: 4, bptt: 8}\n"
        "  embed:  {type: embedding, in: batch.ids, dim: 8}\n"
        "  enc:    {type: " + cell + ", in: embed, hidden: 8, layers: 2, direction: bidirectional_sum}\n"
        "  dec:    {type: " + cell + ", in: enc, state: enc.state, hidden: 8, layers: 2, direction: bidirectional_concat}\n"
        "  logits: {type: linear, in: dec, out_dim: vocab.size}\n"
        "  loss:   {type: cross_entropy, logits: logits, target: batch.targets}\n"
        "  optim:  {type: adam, minimize: loss, lr: 0.01}\n"
        "  ppl:    {type: perplexity, loss: loss}\n"
        "train: {epochs: 2, keep: best(ppl.valid), threads: 1}\n";
    RunOptions opt;
    opt.run_dir = dir / ("run_" + cell);
    Engine e(compile(load_graph_text(text, "encdec.yaml", dir, {}, Registry::global()), Registry::global()), opt);
    e.prepare();
    const TrainResult r = e.train();
    double first = NAN, last = NAN;
    for (const auto& row : r.rows)
        if (row.split == "train") {
            if (std::isnan(first)) first = row.get("loss");
            last = row.get("loss");
        }
    INFO("first " << first << " last " << last);
    CHECK(std::isfinite(last));
    CHECK(last < first);
    fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// dtype bf16 against f32 with the same weights: the products read bf16 (8 significant bits), so
// outputs, states and every gradient agree to bf16 precision; padding stays exactly zero, the
// params and their gradients stay f32, and the numbers really differ (it is not the f32 path).
TEST_CASE("rnn, lstm, gru: dtype bf16 matches f32 to bf16 precision, ragged, every direction", "[stage][rnn]") {
    const auto& cc = GENERATE(from_range(cell_cases()));
    const std::string dir = GENERATE(from_range(std::begin(kDirections), std::end(kDirections)));
    INFO(cc.name << ", " << dir);
    const std::int64_t T = 6, N = 4, C = 5, H = 8;
    Set set = with({{"hidden", H}, {"layers", std::int64_t(2)}, {"direction", dir},
                    {"init_scale", 0.4}}, cc.set);
    if (set.count("projection")) {  // refused: oneDNN 2.6.3's bf16 LSTMP backward is wrong
        const StageSchema s = schema_of(cc.type);
        REQUIRE_THROWS_WITH(stages::Lstm(test::params_for(s, with(set, {{"dtype", std::string("bf16")}}))),
                            Catch::Contains("dtype bf16 with projection"));
        return;
    }
    // relu's derivative is a step: bf16 rounding moves pre-activations near 0 across it and
    // switches whole gradient paths, so for relu only the forward values are compared here.
    const bool grads = cc.name != "rnn relu";
    const double tol = 0.03;
    if (dir == "left_to_right") set["dropout"] = 0.3;  // the dropped, converted layer input
    Rig f(cc.type, set, C, 9, true);
    Rig b(cc.type, with(set, {{"dtype", std::string("bf16")}}), C, 9, true);
    auto pf = f.rnn->params(), pb = b.rnn->params();
    REQUIRE(pf.size() == pb.size());
    for (std::size_t k = 0; k < pf.size(); ++k) {
        REQUIRE(pb[k].value.dtype() == DType::f32);
        REQUIRE(pb[k].grad.dtype() == DType::f32);
        for (std::int64_t e = 0; e < pf[k].value.numel(); ++e)
            REQUIRE(pf[k].value.data<float>()[e] == pb[k].value.data<float>()[e]);  // same seed
        pf[k].grad.zero();
        pb[k].grad.zero();
    }
    Tensor x = random_tensor({T, N, C}, 50);
    x.lengths = {3, 6, 1, 6};
    const Tensor st = random_tensor(f.rnn->state_shape(N), 51, 0.5f);
    const std::int64_t Y = f.rnn->out_channels();
    const Tensor dy = random_tensor({T, N, Y}, 52);
    const Tensor dfs = random_tensor(f.rnn->state_shape(N), 53);
    StepInfo step;
    step.batch = 3;
    Saved sf, sb;
    // oneDNN 2.6 has bf16 recurrent primitives only from AVX-512 on: elsewhere a clear error.
    const auto isa = dnnl::get_effective_cpu_isa();
    if (isa != dnnl::cpu_isa::avx512_core && isa != dnnl::cpu_isa::avx512_core_vnni &&
        isa != dnnl::cpu_isa::avx512_core_bf16 && isa != dnnl::cpu_isa::avx512_core_amx) {
        try {
            Saved probe;
            b.forward(x, &st, probe, step);
        } catch (const std::exception& e) {
            WARN("no AVX-512 on this CPU: only the bf16 error message is checked");
            CHECK_THAT(e.what(), Catch::Contains("dtype bf16"));
            return;
        }
    }
    auto [yf, fsf] = f.forward(x, &st, sf, step);
    auto [yb, fsb] = b.forward(x, &st, sb, step);
    auto [dxf, dstf] = f.backward(x, &st, sf, dy, dfs, step);
    auto [dxb, dstb] = b.backward(x, &st, sb, dy, dfs, step);
    // Worst difference against the f32 tensor's own scale (largest magnitude, at least 0.1).
    auto agree = [tol](const Tensor& a, const Tensor& c, const std::string& what) {
        REQUIRE(a.numel() == c.numel());
        double worst = 0, scale = 0.1;
        bool differ = false;
        for (std::int64_t i = 0; i < a.numel(); ++i) {
            const double u = a.data<float>()[i], v = c.data<float>()[i];
            worst = std::max(worst, std::abs(u - v));
            scale = std::max(scale, std::abs(u));
            differ = differ || u != v;
        }
        INFO(what << ": largest difference " << worst << " against scale " << scale);
        CHECK(worst <= tol * scale);
        return differ;
    };
    const bool differs = agree(yf, yb, "out");
    agree(fsf, fsb, "final state");
    if (grads) {
        agree(dxf, dxb, "diff in");
        agree(dstf, dstb, "diff state");
        for (std::size_t k = 0; k < pf.size(); ++k) agree(pf[k].grad, pb[k].grad, pf[k].name + " grad");
    }
    CHECK(differs);
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t t = x.length(n); t < T; ++t) {
            for (std::int64_t o = 0; o < Y; ++o) REQUIRE(yb.data<float>()[(t * N + n) * Y + o] == 0.f);
            for (std::int64_t c = 0; c < C; ++c) REQUIRE(dxb.data<float>()[(t * N + n) * C + c] == 0.f);
        }
}
