#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "stages/train/crf.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Crf;
namespace crf = rnnflow::stages::crf;

namespace {

constexpr double neg_inf = -std::numeric_limits<double>::infinity();

// A stage prepared for K tags (names `tags`, or none), with its parameters set to `values`
// (transitions, start, end; empty = keep the zeros prepare gives).
struct CrfRun {
    StageSchema schema = Crf::schema();
    Crf stage;
    Tensor loss, decoded, diff_scores;
    Saved saved;
    CrfRun(std::int64_t K, const std::map<std::string, ParamValue>& set = {},
           const std::vector<std::string>& tags = {})
        : stage(params_for(schema, set)) {
        FakePrepare ctx(schema);
        PortInfo scores, target;
        scores.channels = K;
        target.type = PortType::ids;
        target.classes = K;
        if (!tags.empty())
            target.vocab = std::make_shared<Vocabulary>(tags, std::vector<std::int64_t>(tags.size(), 1),
                                                        std::vector<std::string>{}, TokenizerSpec{});
        ctx.info("scores", scores).info("target", target);
        stage.prepare(ctx);
    }
    void set_params(std::mt19937_64& rng) {
        std::uniform_real_distribution<float> uni(-1.f, 1.f);
        for (Param& p : stage.params())
            for (std::int64_t i = 0; i < p.value.numel(); ++i) p.value.data<float>()[i] = uni(rng);
    }
    void forward(const Tensor& scores, const Tensor& target, Phase phase = Phase::train) {
        auto in = make_inputs(schema, {&scores, &target});
        auto out = make_outputs(schema, {&loss, &decoded});
        StepInfo step;
        step.phase = phase;
        stage.forward(in, out, saved, step);
    }
    void backward(const Tensor& scores, const Tensor& target, float g = 1.f) {
        Tensor dl = Tensor::f32({2}), dd = Tensor::f32(decoded.shape());
        dl.data<float>()[0] = g;
        auto in = make_inputs(schema, {&scores, &target});
        auto out = make_outputs(schema, {&loss, &decoded});
        auto ddst = make_diff_dst(schema, {&dl, &dd});
        auto dsrc = make_diff_src(schema, {&diff_scores});
        stage.backward(in, out, saved, ddst, dsrc, StepInfo{});
    }
};

// A ragged batch: T = 4, N = 3, K = 3, lengths {4, 2, 3} (one length-1 case below); padded
// steps hold large values and invalid ids, which must never be read.
struct Ragged {
    Tensor scores = Tensor::f32({4, 3, 3});
    Tensor target = Tensor::i32({4, 3});
    explicit Ragged(std::vector<std::int32_t> lengths = {4, 2, 3}, std::uint64_t seed = 5) {
        std::mt19937_64 rng(seed);
        std::uniform_real_distribution<float> uni(-2.f, 2.f);
        std::uniform_int_distribution<std::int32_t> tag(0, 2);
        for (std::int64_t t = 0; t < 4; ++t)
            for (std::int64_t n = 0; n < 3; ++n) {
                const bool pad = t >= lengths[static_cast<std::size_t>(n)];
                for (std::int64_t k = 0; k < 3; ++k) scores.data<float>()[(t * 3 + n) * 3 + k] = pad ? 1e4f : uni(rng);
                target.data<std::int32_t>()[t * 3 + n] = pad ? 99 : tag(rng);
            }
        scores.lengths = lengths;
        target.lengths = std::move(lengths);
    }
};

// The reference, kept in the test: every one of the K^L paths of column n enumerated in double.
struct Enumerated {
    double log_z = neg_inf;
    double gold = 0;                  // s(gold)
    std::vector<std::int32_t> best;   // argmax path
};

Enumerated enumerate(Crf& stage, const crf::Allowed& allowed, const Tensor& scores, const Tensor& target,
                     std::int64_t n) {
    const std::int64_t N = scores.dim(1), K = scores.dim(2), L = scores.length(n);
    auto sp = stage.params();
    const float* A = sp[0].value.data<float>();
    const float* S = sp[1].value.data<float>();
    const float* E = sp[2].value.data<float>();
    auto score = [&](const std::vector<std::int32_t>& y) {
        double s = double(S[y[0]]) + double(E[y[static_cast<std::size_t>(L - 1)]]);
        bool ok = allowed.start[static_cast<std::size_t>(y[0])] && allowed.end[static_cast<std::size_t>(y.back())];
        for (std::int64_t t = 0; t < L; ++t) s += double(scores.data<float>()[(t * N + n) * K + y[static_cast<std::size_t>(t)]]);
        for (std::int64_t t = 1; t < L; ++t) {
            const auto ij = static_cast<std::size_t>(y[static_cast<std::size_t>(t - 1)] * K + y[static_cast<std::size_t>(t)]);
            s += double(A[ij]);
            ok = ok && allowed.transitions[ij];
        }
        return ok ? s : neg_inf;
    };
    Enumerated r;
    std::vector<std::int32_t> y(static_cast<std::size_t>(L), 0), gold(y.size());
    for (std::int64_t t = 0; t < L; ++t) gold[static_cast<std::size_t>(t)] = target.data<std::int32_t>()[t * N + n];
    r.gold = score(gold);
    double best = neg_inf, sum = 0;
    for (std::int64_t code = 0; code < static_cast<std::int64_t>(std::pow(K, L)); ++code) {
        std::int64_t c = code;
        for (std::int64_t t = 0; t < L; ++t, c /= K) y[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(c % K);
        const double s = score(y);
        if (s == neg_inf) continue;
        sum += std::exp(s);  // |s| < 20 here: no overflow, the plainest reference
        if (s > best) best = s, r.best = y;
    }
    r.log_z = std::log(sum);
    return r;
}

// Σ_n NLL_n of the batch by enumeration.
double enumerated_nll(Crf& stage, const crf::Allowed& allowed, const Tensor& scores, const Tensor& target) {
    double nll = 0;
    for (std::int64_t n = 0; n < scores.dim(1); ++n) {
        if (scores.length(n) == 0) continue;
        const Enumerated e = enumerate(stage, allowed, scores, target, n);
        nll += e.log_z - e.gold;
    }
    return nll;
}

const std::vector<std::string> iob2_tags{"O", "B-PER", "I-PER"};

// One sequence in double: emissions e (L, K), par = transitions (K, K), start (K), end (K), gold y.
struct DoubleCase {
    std::int64_t K, L;
    std::vector<double> e, par;
    std::vector<std::int32_t> y;
    crf::Model model() const { return {K, par.data(), par.data() + K * K, par.data() + K * K + K}; }
    double log_z(std::vector<double>& alpha) const {
        alpha.resize(static_cast<std::size_t>(L * K));
        return crf::forward_alpha(model(), e.data(), L, alpha.data());
    }
    double nll() const {
        std::vector<double> alpha;
        return log_z(alpha) - crf::path_score(model(), e.data(), L, y.data());
    }
    // nll_backward against central differences of nll() with step h, within `margin`.
    void check_gradients(double h, double margin) {
        std::vector<double> alpha, beta(static_cast<std::size_t>(L * K)), d_e(beta.size(), 0.0), d_par(par.size(), 0.0);
        const double z = log_z(alpha);
        crf::nll_backward(model(), e.data(), L, y.data(), alpha.data(), z, 1.0, beta.data(), d_e.data(), d_par.data(),
                          d_par.data() + K * K, d_par.data() + K * K + K);
        auto fd = [&](double& x) {
            const double keep = x;
            x = keep + h;
            const double plus = nll();
            x = keep - h;
            const double minus = nll();
            x = keep;
            return (plus - minus) / (2 * h);
        };
        for (std::size_t i = 0; i < e.size(); ++i) REQUIRE(d_e[i] == Approx(fd(e[i])).margin(margin));
        for (std::size_t i = 0; i < par.size(); ++i) REQUIRE(d_par[i] == Approx(fd(par[i])).margin(margin));
    }
};

}  // namespace

TEST_CASE("crf: schema defaults and bad values", "[stage][crf]") {
    const StageSchema s = Crf::schema();
    REQUIRE(s.type() == "crf");
    REQUIRE(s.is_differentiable());
    REQUIRE(s.outputs().at(0).type == PortType::loss);
    REQUIRE(default_params(s).get_string("constraints") == "none");
    REQUIRE(default_params(s).get_string("average") == "token");
    REQUIRE(StageSchema::check(*s.find_param("constraints"), ParamValue(std::string("bio"))) ==
            "must be one of none, iob1, iob2, iobes, got 'bio'");
    REQUIRE(StageSchema::check(*s.find_param("average"), ParamValue(std::string("batch"))) ==
            "must be one of token, sequence, got 'batch'");

    Crf c(default_params(s));
    FakePrepare ctx(s);
    PortInfo scores, target;
    scores.channels = 5;
    target.type = PortType::ids;
    target.classes = 6;
    ctx.info("scores", scores).info("target", target);
    REQUIRE_THROWS_WITH(c.prepare(ctx), "crf: 'scores' has 5 channels but 'target' has 6 classes; "
                                        "they must be equal (hint: out_dim: tags.size)");
    Crf constrained(params_for(s, {{"constraints", std::string("iob2")}}));
    FakePrepare ctx2(s);
    target.classes = 5;
    ctx2.info("scores", scores).info("target", target);
    REQUIRE_THROWS_WITH(constrained.prepare(ctx2),
                        "crf: constraints: iob2 needs the tag names: connect 'target' to ids from a "
                        "vocabulary of the 5 tags (hint: or set constraints: none)");
}

TEST_CASE("crf: prepare lays out zero parameters and the outputs", "[stage][crf]") {
    CrfRun r(3);
    auto p = r.stage.params();
    REQUIRE(p.size() == 3);
    REQUIRE(p[0].name == "transitions");
    REQUIRE(p[0].value.shape() == Shape{3, 3});
    REQUIRE(p[1].name == "start");
    REQUIRE(p[2].name == "end");
    REQUIRE(p[2].value.shape() == Shape{3});
    for (const Param& q : p)
        for (std::int64_t i = 0; i < q.value.numel(); ++i) REQUIRE(q.value.data<float>()[i] == 0.f);
}

// Tolerance 1e-5 relative: the stage sums in double and returns the loss as f32 (2^-24 ≈ 6e-8
// relative), the enumeration sums exp in double; the rest is headroom.
TEST_CASE("crf: log Z, the NLL and Viterbi equal brute-force enumeration on a ragged batch", "[stage][crf]") {
    const auto lengths = GENERATE(std::vector<std::int32_t>{4, 2, 3}, std::vector<std::int32_t>{1, 4, 0});
    const std::string constraints = GENERATE(std::string("none"), std::string("iob2"));
    CrfRun r(3, {{"constraints", constraints}}, iob2_tags);
    std::mt19937_64 rng(11);
    r.set_params(rng);
    Ragged b(lengths);
    if (constraints == "iob2")  // a valid iob2 gold: no O → I-PER, no start → I-PER
        for (std::int64_t t = 0; t < 4; ++t)
            for (std::int64_t n = 0; n < 3; ++n)
                if (t < lengths[static_cast<std::size_t>(n)] && b.target.data<std::int32_t>()[t * 3 + n] == 2 &&
                    (t == 0 || b.target.data<std::int32_t>()[(t - 1) * 3 + n] == 0))
                    b.target.data<std::int32_t>()[t * 3 + n] = 1;
    const crf::Allowed allowed = crf::allowed_transitions(iob2_tags, constraints);
    r.forward(b.scores, b.target);
    const double want = enumerated_nll(r.stage, allowed, b.scores, b.target);
    REQUIRE(r.loss.data<float>()[0] == Approx(want).epsilon(1e-5));
    double tokens = 0;
    for (auto l : lengths) tokens += l;
    REQUIRE(r.loss.data<float>()[1] == float(tokens));
    for (std::int64_t n = 0; n < 3; ++n) {
        const std::int64_t L = b.scores.length(n);
        const Enumerated e = L > 0 ? enumerate(r.stage, allowed, b.scores, b.target, n) : Enumerated{};
        for (std::int64_t t = 0; t < 4; ++t)
            for (std::int64_t k = 0; k < 3; ++k) {
                const float want_k = t < L && e.best[static_cast<std::size_t>(t)] == k ? 1.f : 0.f;
                INFO("column " << n << " step " << t << " tag " << k);
                REQUIRE(r.decoded.data<float>()[(t * 3 + n) * 3 + k] == want_k);
            }
    }
    REQUIRE(r.decoded.lengths == lengths);
}

TEST_CASE("crf: average sequence counts scored columns, and a target of length 0 only decodes", "[stage][crf]") {
    CrfRun r(3, {{"average", std::string("sequence")}});
    Ragged b({4, 2, 3});
    r.forward(b.scores, b.target);
    REQUIRE(r.loss.data<float>()[1] == 3.f);
    Tensor none = Tensor::i32({1, 3});  // what classify_batches gives without labels
    none.lengths = {0, 0, 0};
    r.forward(b.scores, none, Phase::infer);
    REQUIRE(r.loss.data<float>()[0] == 0.f);
    REQUIRE(r.loss.data<float>()[1] == 0.f);
    float ones = 0;
    for (std::int64_t i = 0; i < r.decoded.numel(); ++i) ones += r.decoded.data<float>()[i];
    REQUIRE(ones == 9.f);  // one tag per valid step
}

// The stage's f32 gradients against central differences of the enumerated NLL (double) over
// the same f32 values: h = 1e-3 in double gives truncation error ~h² ≈ 1e-6; the analytic side
// is rounded to f32 once from double. Tolerance: 1e-5 absolute + 1e-4 relative.
TEST_CASE("crf: backward matches finite differences of the enumerated NLL, with padding", "[stage][crf][grad]") {
    const std::string constraints = GENERATE(std::string("none"), std::string("iob2"), std::string("iobes"));
    const std::vector<std::string> tags =
        constraints == "iobes" ? std::vector<std::string>{"O", "S-PER", "B-PER"} : iob2_tags;
    CrfRun r(3, {{"constraints", constraints}}, tags);
    std::mt19937_64 rng(17);
    r.set_params(rng);
    Ragged b({4, 2, 3});
    // A gold path every scheme here allows: O and the first tag type's chunk start.
    for (std::int64_t i = 0; i < b.target.numel(); ++i)
        b.target.data<std::int32_t>()[i] = b.target.data<std::int32_t>()[i] == 99 ? 99 : (i % 2 ? 1 : 0);
    const crf::Allowed allowed = crf::allowed_transitions(tags, constraints);
    const float g = 0.5f;
    r.forward(b.scores, b.target);
    r.backward(b.scores, b.target, g);
    const double h = 1e-3;
    auto check = [&](float* x, float analytic, const char* what, std::int64_t i) {
        const float keep = *x;
        *x = static_cast<float>(double(keep) + h);
        const double plus = enumerated_nll(r.stage, allowed, b.scores, b.target);
        *x = static_cast<float>(double(keep) - h);
        const double minus = enumerated_nll(r.stage, allowed, b.scores, b.target);
        const double step = (double(static_cast<float>(double(keep) + h)) - double(static_cast<float>(double(keep) - h)));
        *x = keep;
        const double numeric = g * (plus - minus) / step;
        INFO(what << "[" << i << "]: analytic " << analytic << ", numeric " << numeric);
        REQUIRE(std::abs(analytic - numeric) <= 1e-5 + 1e-4 * std::abs(numeric));
    };
    for (std::int64_t t = 0; t < 4; ++t)
        for (std::int64_t n = 0; n < 3; ++n)
            for (std::int64_t k = 0; k < 3; ++k) {
                const std::int64_t i = (t * 3 + n) * 3 + k;
                if (t >= b.scores.length(n)) {
                    REQUIRE(r.diff_scores.data<float>()[i] == 0.f);  // padding gets nothing
                    continue;
                }
                check(b.scores.data<float>() + i, r.diff_scores.data<float>()[i], "scores", i);
            }
    const char* names[] = {"transitions", "start", "end"};
    for (std::size_t p = 0; p < 3; ++p) {
        Param& q = r.stage.params()[p];
        const auto& mask = p == 0 ? allowed.transitions : p == 1 ? allowed.start : allowed.end;
        for (std::int64_t i = 0; i < q.value.numel(); ++i) {
            if (!mask[static_cast<std::size_t>(i)]) {
                REQUIRE(q.grad.data<float>()[i] == 0.f);  // forbidden: never read, never trained
                continue;
            }
            check(q.value.data<float>() + i, q.grad.data<float>()[i], names[p], i);
        }
    }
}

// The algorithms in double against central differences in double: h = 1e-5 gives truncation
// ~h² ≈ 1e-10 and rounding ~1e-16 / h ≈ 1e-11; tolerance 1e-7.
TEST_CASE("crf: the double-precision NLL gradient matches finite differences", "[stage][crf][grad]") {
    std::mt19937_64 rng(23);
    std::uniform_real_distribution<double> uni(-2, 2);
    DoubleCase c{3, 4, std::vector<double>(12), std::vector<double>(9 + 3 + 3), {0, 1, 2, 0}};
    for (auto& v : c.e) v = uni(rng);
    for (auto& v : c.par) v = uni(rng);
    c.check_gradients(1e-5, 1e-7);
}

TEST_CASE("crf: a column alone and in a padded batch give the same loss and gradients", "[stage][crf]") {
    CrfRun batch_run(3);
    std::mt19937_64 rng(29);
    batch_run.set_params(rng);
    Ragged b({4, 2, 3});
    batch_run.forward(b.scores, b.target);
    batch_run.backward(b.scores, b.target);
    double loss_sum = 0;
    std::vector<double> grad_sum(9 + 3 + 3, 0.0);
    for (std::int64_t n = 0; n < 3; ++n) {
        const std::int64_t L = b.scores.length(n);
        CrfRun alone(3);
        for (std::size_t p = 0; p < 3; ++p) alone.stage.params()[p].value = batch_run.stage.params()[p].value;
        Tensor s = Tensor::f32({L, 1, 3}), y = Tensor::i32({L, 1});
        for (std::int64_t t = 0; t < L; ++t) {
            for (std::int64_t k = 0; k < 3; ++k) s.data<float>()[t * 3 + k] = b.scores.data<float>()[(t * 3 + n) * 3 + k];
            y.data<std::int32_t>()[t] = b.target.data<std::int32_t>()[t * 3 + n];
        }
        alone.forward(s, y);
        alone.backward(s, y);
        loss_sum += alone.loss.data<float>()[0];
        for (std::int64_t t = 0; t < L; ++t)
            for (std::int64_t k = 0; k < 3; ++k) {  // the same double operations: bit for bit
                REQUIRE(alone.diff_scores.data<float>()[t * 3 + k] == batch_run.diff_scores.data<float>()[(t * 3 + n) * 3 + k]);
                REQUIRE(alone.decoded.data<float>()[t * 3 + k] == batch_run.decoded.data<float>()[(t * 3 + n) * 3 + k]);
            }
        std::size_t j = 0;
        for (Param& q : alone.stage.params())
            for (std::int64_t i = 0; i < q.value.numel(); ++i) grad_sum[j++] += q.grad.data<float>()[i];
    }
    // The batch sums the three columns in double and rounds once; the sum of three f32 results
    // differs by a few ulp: 1e-6 relative.
    REQUIRE(batch_run.loss.data<float>()[0] == Approx(loss_sum).epsilon(1e-6));
    std::size_t j = 0;
    for (Param& q : batch_run.stage.params())
        for (std::int64_t i = 0; i < q.value.numel(); ++i, ++j)
            REQUIRE(q.grad.data<float>()[i] == Approx(grad_sum[j]).epsilon(1e-6).margin(1e-6));
}

TEST_CASE("crf: backward adds into the parameter gradients", "[stage][crf]") {
    CrfRun r(3);
    Ragged b;
    r.forward(b.scores, b.target);
    r.backward(b.scores, b.target);
    const Tensor once = r.stage.params()[0].grad;
    r.backward(b.scores, b.target);
    for (std::int64_t i = 0; i < once.numel(); ++i)
        REQUIRE(r.stage.params()[0].grad.data<float>()[i] == 2 * once.data<float>()[i]);
}

TEST_CASE("crf: scheme constraints forbid the invalid transitions", "[stage][crf]") {
    const std::vector<std::string> tags{"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "<pad>"};
    auto allowed = [&](const crf::Allowed& a, const std::string& from, const std::string& to) {
        const auto i = static_cast<std::size_t>(std::find(tags.begin(), tags.end(), from) - tags.begin());
        const auto j = static_cast<std::size_t>(std::find(tags.begin(), tags.end(), to) - tags.begin());
        return a.transitions[i * tags.size() + j] == 1;
    };
    SECTION("iob2") {
        const crf::Allowed a = crf::allowed_transitions(tags, "iob2");
        REQUIRE(!allowed(a, "O", "I-PER"));
        REQUIRE(!allowed(a, "B-LOC", "I-PER"));
        REQUIRE(!allowed(a, "I-LOC", "I-PER"));
        REQUIRE(allowed(a, "B-PER", "I-PER"));
        REQUIRE(allowed(a, "I-PER", "I-PER"));
        REQUIRE(allowed(a, "I-PER", "B-PER"));
        REQUIRE(allowed(a, "O", "B-LOC"));
        REQUIRE(allowed(a, "<pad>", "I-PER"));  // not a scheme tag: unconstrained
        REQUIRE(a.start == std::vector<char>{1, 1, 0, 1, 0, 1});
        REQUIRE(a.end == std::vector<char>(6, 1));
    }
    SECTION("iob1") {
        const crf::Allowed a = crf::allowed_transitions(tags, "iob1");
        REQUIRE(allowed(a, "O", "I-PER"));
        REQUIRE(!allowed(a, "O", "B-PER"));
        REQUIRE(!allowed(a, "I-LOC", "B-PER"));
        REQUIRE(allowed(a, "I-PER", "B-PER"));
        REQUIRE(allowed(a, "B-PER", "B-PER"));
        REQUIRE(a.start == std::vector<char>{1, 0, 1, 0, 1, 1});
    }
    SECTION("iobes") {
        const std::vector<std::string> t{"O", "B-PER", "I-PER", "E-PER", "S-PER", "S-LOC"};
        const crf::Allowed a = crf::allowed_transitions(t, "iobes");
        auto ok = [&](std::size_t i, std::size_t j) { return a.transitions[i * t.size() + j] == 1; };
        REQUIRE(!ok(0, 2));   // O → I-PER
        REQUIRE(!ok(0, 3));   // O → E-PER
        REQUIRE(ok(1, 2));    // B → I
        REQUIRE(ok(1, 3));    // B → E
        REQUIRE(!ok(1, 0));   // B → O
        REQUIRE(!ok(2, 4));   // I → S
        REQUIRE(ok(3, 0));    // E → O
        REQUIRE(ok(4, 5));    // S-PER → S-LOC
        REQUIRE(!ok(4, 3));   // S → E
        REQUIRE(a.start == std::vector<char>{1, 1, 0, 0, 1, 1});
        REQUIRE(a.end == std::vector<char>{1, 0, 0, 1, 1, 1});
    }
}

TEST_CASE("crf: decoding under iob2 constraints never gives O → I-X, however the scores point", "[stage][crf]") {
    CrfRun r(3, {{"constraints", std::string("iob2")}}, iob2_tags);
    Tensor s = Tensor::f32({2, 1, 3}), y = Tensor::i32({2, 1});
    const float v[] = {5, 0, 0, 0, 0, 5};  // step 0 says O, step 1 says I-PER
    std::copy(v, v + 6, s.data<float>());
    r.forward(s, y);
    REQUIRE(r.decoded.data<float>()[0 * 3 + 0] == 1.f);  // O, then not I-PER
    REQUIRE(r.decoded.data<float>()[1 * 3 + 2] == 0.f);
    CrfRun unconstrained(3);
    unconstrained.forward(s, y);
    REQUIRE(unconstrained.decoded.data<float>()[1 * 3 + 2] == 1.f);  // unconstrained: O → I-PER
}

TEST_CASE("crf: a gold path with a forbidden transition is an error naming it", "[stage][crf]") {
    CrfRun r(3, {{"constraints", std::string("iob2")}}, iob2_tags);
    Tensor s = Tensor::f32({3, 2, 3}), y = Tensor::i32({3, 2});
    const std::int32_t gold[] = {0, 1, 1, 0, 2, 2};  // (T, N): column 0 O B-PER I-PER, column 1 B-PER O I-PER
    std::copy(gold, gold + 6, y.data<std::int32_t>());
    REQUIRE_THROWS_WITH(r.forward(s, y), "crf: the gold tags of column 1 go O → I-PER at step 2, which "
                                         "constraints: iob2 forbids");
    y.data<std::int32_t>()[5] = 1;  // column 1 B-PER O B-PER: valid
    y.data<std::int32_t>()[0] = 2;  // column 0 starts with I-PER
    REQUIRE_THROWS_WITH(r.forward(s, y), "crf: the gold tags of column 0 go start → I-PER at step 0, which "
                                         "constraints: iob2 forbids");
    y.data<std::int32_t>()[0] = 3;
    REQUIRE_THROWS_WITH(r.forward(s, y), "crf: target id 3 at step 0, column 0 is outside [0, 3)");
}

// Scores ~1000 nats apart make the scaled step's sum underflow (crf.cpp LogMatVec: it falls back
// to plain log-sum-exp) and the pair marginals' scale factor exceed exp(600) (term by term). log Z
// against the K^L paths' scores, log-sum-exp'd with their maximum taken out (exact in double);
// the gradient against central differences with h = 1e-4: rounding ~1e-16 · 1e3 / 1e-4 ≈ 1e-9,
// truncation ~h² ≈ 1e-8; tolerance 1e-6.
TEST_CASE("crf: scores a thousand nats apart stay exact", "[stage][crf][grad]") {
    // α_0 ≈ (0, -1000, -1000) and column 0 of the transitions (-1000, 0, 0): the step into tag 0
    // has its largest α and its largest transition on different rows (the underflow); e[1, 0] =
    // 1000 makes that step worth taking, so its pair marginals need the term-by-term branch.
    DoubleCase c{3, 4, std::vector<double>(12),
                 {-1000, 0, 1, 0, -1000, 2, 0, 1, -800,  // transitions
                  0, -1000, -1000,                        // start
                  0, 0, -700},                            // end
                 {0, 1, 0, 1}};
    std::mt19937_64 rng(31);
    std::uniform_real_distribution<double> uni(-1, 1);
    for (auto& v : c.e) v = uni(rng);
    c.e[1 * 3 + 0] = 1000;
    std::vector<double> all;
    std::vector<std::int32_t> path(4);
    for (std::int64_t code = 0; code < 81; ++code) {
        for (std::int64_t t = 0, k = code; t < 4; ++t, k /= 3) path[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(k % 3);
        all.push_back(crf::path_score(c.model(), c.e.data(), 4, path.data()));
    }
    const double top = *std::max_element(all.begin(), all.end());
    double sum = 0;
    for (double v : all) sum += std::exp(v - top);
    std::vector<double> alpha;
    REQUIRE(c.log_z(alpha) == Approx(top + std::log(sum)).epsilon(1e-12));
    c.check_gradients(1e-4, 1e-6);
}
