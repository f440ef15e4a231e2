#include "crf.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "pipeline/core/tag_scheme.hpp"

namespace rnnflow::stages {

namespace crf {

namespace {

constexpr double neg_inf = -std::numeric_limits<double>::infinity();

// log Σ_i exp(x[i · stride]) over n values, stable; -inf when every value is -inf.
double log_sum_exp(const double* x, std::int64_t n, std::int64_t stride = 1) {
    double m = neg_inf;
    for (std::int64_t i = 0; i < n; ++i) m = std::max(m, x[i * stride]);
    if (m == neg_inf) return neg_inf;
    double s = 0;
    for (std::int64_t i = 0; i < n; ++i) s += std::exp(x[i * stride] - m);
    return m + std::log(s);
}

// out[j] = log Σ_i exp(v[i] + M[i, j]) for every j, the step of both recursions, as
// exp(max v + c_j) · Σ_i exp(v[i] - max v) · exp(M[i, j] - c_j), c_j = max_i M[i, j]: the K² exp
// of M are taken once per sequence (init), so a step costs K exp and K² multiply-adds instead of
// K² exp. Where the scaled sum underflows (terms more than ~640 nats below both maxima) the
// output is computed by plain log-sum-exp instead, so the result is exact in all cases.
struct LogMatVec {
    std::int64_t K = 0;
    std::vector<double> m, ex, c, p;  // M (K, K), exp(M - c) (K, K), c (K), scratch (K)
    // M = A (transpose false) or Aᵀ.
    void init(const double* A, std::int64_t k, bool transpose) {
        K = k;
        const auto KK = static_cast<std::size_t>(K * K);
        m.resize(KK), ex.resize(KK), c.assign(static_cast<std::size_t>(K), neg_inf), p.resize(static_cast<std::size_t>(K));
        for (std::int64_t i = 0; i < K; ++i)
            for (std::int64_t j = 0; j < K; ++j) {
                const double a = transpose ? A[j * K + i] : A[i * K + j];
                m[static_cast<std::size_t>(i * K + j)] = a;
                c[static_cast<std::size_t>(j)] = std::max(c[static_cast<std::size_t>(j)], a);
            }
        for (std::int64_t i = 0; i < K; ++i)
            for (std::int64_t j = 0; j < K; ++j) {
                const auto ij = static_cast<std::size_t>(i * K + j);
                ex[ij] = c[static_cast<std::size_t>(j)] == neg_inf ? 0.0 : std::exp(m[ij] - c[static_cast<std::size_t>(j)]);
            }
    }
    // p[i] = exp(v[i] - max v); returns max v.
    double scale(const double* v) {
        double mv = neg_inf;
        for (std::int64_t i = 0; i < K; ++i) mv = std::max(mv, v[i]);
        for (std::int64_t i = 0; i < K; ++i) p[static_cast<std::size_t>(i)] = mv == neg_inf ? 0.0 : std::exp(v[i] - mv);
        return mv;
    }
    // log Σ_i exp(v[i] + M[i, j]) the plain way.
    double exact(const double* v, std::int64_t j, double* tmp) const {
        for (std::int64_t i = 0; i < K; ++i) tmp[i] = v[i] + m[static_cast<std::size_t>(i * K + j)];
        return log_sum_exp(tmp, K);
    }
    void apply(const double* v, double* out, double* tmp) {
        const double mv = scale(v);
        for (std::int64_t j = 0; j < K; ++j) {
            const double cj = c[static_cast<std::size_t>(j)];
            if (mv == neg_inf || cj == neg_inf) {
                out[j] = neg_inf;
                continue;
            }
            double sum = 0;
            for (std::int64_t i = 0; i < K; ++i) sum += p[static_cast<std::size_t>(i)] * ex[static_cast<std::size_t>(i * K + j)];
            out[j] = sum > 1e-280 ? mv + cj + std::log(sum) : exact(v, j, tmp);
        }
    }
};

}  // namespace

// α_0[j] = start[j] + e[0, j]; α_t[j] = e[t, j] + lse_i(α_{t-1}[i] + A[i, j]);
// log Z = lse_j(α_{L-1}[j] + end[j]).
double forward_alpha(const Model& m, const double* e, std::int64_t L, double* alpha) {
    const std::int64_t K = m.K;
    std::vector<double> tmp(static_cast<std::size_t>(K));
    LogMatVec step;
    step.init(m.transitions, K, false);
    for (std::int64_t j = 0; j < K; ++j) alpha[j] = m.start[j] + e[j];
    for (std::int64_t t = 1; t < L; ++t) {
        step.apply(alpha + (t - 1) * K, alpha + t * K, tmp.data());
        for (std::int64_t j = 0; j < K; ++j) alpha[t * K + j] += e[t * K + j];
    }
    for (std::int64_t j = 0; j < K; ++j) tmp[static_cast<std::size_t>(j)] = alpha[(L - 1) * K + j] + m.end[j];
    return log_sum_exp(tmp.data(), K);
}

double path_score(const Model& m, const double* e, std::int64_t L, const std::int32_t* y) {
    const std::int64_t K = m.K;
    double s = m.start[y[0]] + m.end[y[L - 1]];
    for (std::int64_t t = 0; t < L; ++t) s += e[t * K + y[t]];
    for (std::int64_t t = 1; t < L; ++t) s += m.transitions[y[t - 1] * K + y[t]];
    return s;
}

// β_{L-1}[i] = end[i]; β_t[i] = lse_j(A[i, j] + e[t+1, j] + β_{t+1}[j]); then the marginals
// (expected counts) minus the gold counts, times g. Forbidden entries are -inf in α, β or A, so
// their marginals are exp(-inf) = 0: their gradients stay zero. The pair marginals
// p_t(i, j) = exp(α_{t-1}[i] - max α_{t-1}) · exp(A[i, j] - c_j) · exp(max α_{t-1} + c_j + w_j -
// log Z), w_j = e[t, j] + β_t[j], reuse the forward step's exp(A - c); a column whose last
// factor would overflow (it cannot when the marginals are ≤ 1 unless the others underflow) is
// computed term by term.
void nll_backward(const Model& m, const double* e, std::int64_t L, const std::int32_t* y,
                  const double* alpha, double log_z, double g, double* beta, double* d_e,
                  double* d_transitions, double* d_start, double* d_end) {
    const std::int64_t K = m.K;
    std::vector<double> tmp(static_cast<std::size_t>(K)), w(static_cast<std::size_t>(K));
    LogMatVec back, fwd;
    back.init(m.transitions, K, true);
    fwd.init(m.transitions, K, false);
    for (std::int64_t i = 0; i < K; ++i) beta[(L - 1) * K + i] = m.end[i];
    for (std::int64_t t = L - 2; t >= 0; --t) {
        for (std::int64_t j = 0; j < K; ++j) w[static_cast<std::size_t>(j)] = e[(t + 1) * K + j] + beta[(t + 1) * K + j];
        back.apply(w.data(), beta + t * K, tmp.data());
    }
    for (std::int64_t t = 0; t < L; ++t)
        for (std::int64_t j = 0; j < K; ++j) {
            const double p = std::exp(alpha[t * K + j] + beta[t * K + j] - log_z);  // p_t(j)
            d_e[t * K + j] += g * p;
            if (t == 0) d_start[j] += g * p;
            if (t == L - 1) d_end[j] += g * p;
        }
    for (std::int64_t t = 1; t < L; ++t) {
        const double* a = alpha + (t - 1) * K;
        const double ma = fwd.scale(a);
        if (ma == neg_inf) continue;
        for (std::int64_t j = 0; j < K; ++j) {
            const double x = ma + fwd.c[static_cast<std::size_t>(j)] + e[t * K + j] + beta[t * K + j] - log_z;
            if (x == neg_inf) continue;
            if (x < 600) {
                const double f = g * std::exp(x);
                for (std::int64_t i = 0; i < K; ++i)
                    d_transitions[i * K + j] += f * fwd.p[static_cast<std::size_t>(i)] * fwd.ex[static_cast<std::size_t>(i * K + j)];
            } else {
                for (std::int64_t i = 0; i < K; ++i)
                    d_transitions[i * K + j] +=
                        g * std::exp(a[i] + m.transitions[i * K + j] + e[t * K + j] + beta[t * K + j] - log_z);
            }
        }
    }
    for (std::int64_t t = 0; t < L; ++t) d_e[t * K + y[t]] -= g;
    for (std::int64_t t = 1; t < L; ++t) d_transitions[y[t - 1] * K + y[t]] -= g;
    d_start[y[0]] -= g;
    d_end[y[L - 1]] -= g;
}

// δ_0 = start + e_0; δ_t[j] = e[t, j] + max_i(δ_{t-1}[i] + A[i, j]), back[t, j] its argmax (the
// lowest i on ties); the path ends at argmax_j(δ_{L-1}[j] + end[j]) and follows back.
double viterbi(const Model& m, const double* e, std::int64_t L, std::int32_t* y, double* delta,
               std::int32_t* back) {
    const std::int64_t K = m.K;
    for (std::int64_t j = 0; j < K; ++j) delta[j] = m.start[j] + e[j];
    for (std::int64_t t = 1; t < L; ++t)
        for (std::int64_t j = 0; j < K; ++j) {
            double best = neg_inf;
            std::int32_t arg = 0;
            for (std::int64_t i = 0; i < K; ++i) {
                const double v = delta[(t - 1) * K + i] + m.transitions[i * K + j];
                if (v > best) best = v, arg = static_cast<std::int32_t>(i);
            }
            delta[t * K + j] = e[t * K + j] + best;
            back[t * K + j] = arg;
        }
    double best = neg_inf;
    std::int32_t last = 0;
    for (std::int64_t j = 0; j < K; ++j) {
        const double v = delta[(L - 1) * K + j] + m.end[j];
        if (v > best) best = v, last = static_cast<std::int32_t>(j);
    }
    y[L - 1] = last;
    for (std::int64_t t = L - 1; t > 0; --t) y[t - 1] = back[t * K + y[t]];
    return best;
}

namespace {

// A tag as the constraints see it: prefix O, B, I, E or S, and a type; `known` false for names
// the scheme does not describe (they are left unconstrained).
struct TagRole {
    char prefix = 'O';
    std::string type;
    bool known = false;
};

TagRole tag_role(const std::string& name, const std::string& scheme) {
    const TagParts p = parse_tag(name);
    TagRole r;
    if (p.prefix == "O" && p.type.empty()) return {'O', "", true};
    const std::string prefixes = scheme == "iobes" ? "BIES" : "BI";
    if (p.prefix.size() != 1 || p.type.empty() || prefixes.find(p.prefix[0]) == std::string::npos) return r;
    return {p.prefix[0], p.type, true};
}

bool inside(const TagRole& r) { return r.prefix == 'B' || r.prefix == 'I'; }

bool may_start(const TagRole& to, const std::string& scheme) {
    if (scheme == "iob2") return to.prefix != 'I';
    if (scheme == "iob1") return to.prefix != 'B';
    return to.prefix != 'I' && to.prefix != 'E';  // iobes
}

bool may_end(const TagRole& from, const std::string& scheme) {
    return scheme != "iobes" || !inside(from);
}

bool may_follow(const TagRole& from, const TagRole& to, const std::string& scheme) {
    const bool same = from.type == to.type;
    if (scheme == "iob2") return to.prefix != 'I' || (inside(from) && same);
    if (scheme == "iob1") return to.prefix != 'B' || (inside(from) && same);
    // iobes: a chunk open after B-X / I-X must go on with I-X or end with E-X.
    const bool continues = to.prefix == 'I' || to.prefix == 'E';
    return inside(from) ? continues && same : !continues;
}

}  // namespace

Allowed allowed_transitions(const std::vector<std::string>& tags, const std::string& scheme) {
    const auto K = tags.size();
    Allowed a;
    a.transitions.assign(K * K, 1);
    a.start.assign(K, 1);
    a.end.assign(K, 1);
    if (scheme == "none") return a;
    std::vector<TagRole> roles;
    for (const auto& t : tags) roles.push_back(tag_role(t, scheme));
    for (std::size_t j = 0; j < K; ++j) {
        if (!roles[j].known) continue;
        a.start[j] = may_start(roles[j], scheme);
        a.end[j] = may_end(roles[j], scheme);
        for (std::size_t i = 0; i < K; ++i)
            if (roles[i].known) a.transitions[i * K + j] = may_follow(roles[i], roles[j], scheme);
    }
    return a;
}

}  // namespace crf

StageSchema Crf::schema() {
    return StageSchema("crf", "linear-chain CRF: sequence NLL by the forward algorithm, Viterbi decoding",
                       Role::model)
        .input("scores", PortType::tensor, "per-token tag scores (T, N, K) + lengths")
        .input("target", PortType::ids, "gold tag ids (T, N) + lengths; columns of length 0 are only decoded")
        .output("loss", PortType::loss, "(Σ negative log-likelihood of the gold paths, tokens or sequences)")
        .output("decoded", PortType::tensor,
                "the Viterbi path one-hot (T, N, K), 0 at padded steps: argmax is the tag; use it "
                "in place of logits")
        .param_choice("constraints", "none", {"none", "iob1", "iob2", "iobes"},
                      "forbid the transitions the tag scheme does not allow (e.g. O → I-PER in iob2), "
                      "in training and decoding; tag names from the target's vocabulary")
        .param_choice("average", "token", {"token", "sequence"},
                      "the loss's count: tokens (the same scale as cross_entropy) or sequences")
        .differentiable()
        .details("NLL = log Z - s(gold), s(y) = start[y_0] + Σ_t scores[t, y_t] + Σ_t "
                 "transitions[y_{t-1}, y_t] + end[y_{L-1}], log Z by the forward algorithm in log "
                 "space; decoded = Viterbi path one-hot. Parameters transitions (K, K) [from, to], "
                 "start (K), end (K), zero at first. Each column uses its own length. Not supported: "
                 "higher-order or semi-Markov CRFs, k-best decoding, gradients through decoded.");
}

Crf::Crf(const Params& p)
    : constraints_(p.get_string("constraints")), per_sequence_(p.get_string("average") == "sequence") {}

void Crf::prepare(PrepareContext& ctx) {
    const PortInfo& scores = ctx.input_info("scores");
    const PortInfo& target = ctx.input_info("target");
    RNNFLOW_CHECK(scores.channels > 0, "crf needs the channel count (tags K) of input 'scores', got ",
                  scores.channels);
    RNNFLOW_CHECK(target.classes <= 0 || scores.channels == target.classes, "crf: 'scores' has ",
                  scores.channels, " channels but 'target' has ", target.classes,
                  " classes; they must be equal (hint: out_dim: tags.size)");
    K_ = scores.channels;
    tags_.clear();
    if (target.vocab && target.vocab->size() == K_) tags_ = target.vocab->tokens();
    if (constraints_ != "none") {
        RNNFLOW_CHECK(!tags_.empty(), "crf: constraints: ", constraints_,
                      " needs the tag names: connect 'target' to ids from a vocabulary of the ", K_,
                      " tags (hint: or set constraints: none)");
    }
    allowed_ = crf::allowed_transitions(tags_.empty() ? std::vector<std::string>(static_cast<std::size_t>(K_), "")
                                                      : tags_,
                                        tags_.empty() ? "none" : constraints_);
    const std::array<std::pair<const char*, Shape>, 3> specs{
        {{"transitions", {K_, K_}}, {"start", {K_}}, {"end", {K_}}}};
    for (std::size_t i = 0; i < 3; ++i) {
        Param& p = params_[i];
        p.name = specs[i].first;
        p.layout = i == 0 ? "(K, K) [from, to]" : "(K)";
        p.value = Tensor::f32(specs[i].second);  // zeros
        p.grad = Tensor::f32(specs[i].second);
    }
    ctx.set_output_info("loss", PortInfo{PortType::loss, -1, -1, nullptr});
    ctx.set_output_info("decoded", PortInfo{PortType::tensor, K_, -1, nullptr});
}

crf::Model Crf::model(std::vector<double>& buf) const {
    const std::int64_t K = K_;
    buf.resize(static_cast<std::size_t>(K * K + 2 * K));
    const float* a = params_[0].value.data<float>();
    const float* s = params_[1].value.data<float>();
    const float* f = params_[2].value.data<float>();
    constexpr double neg_inf = -std::numeric_limits<double>::infinity();
    double* d = buf.data();
    for (std::int64_t i = 0; i < K * K; ++i) d[i] = allowed_.transitions[static_cast<std::size_t>(i)] ? a[i] : neg_inf;
    for (std::int64_t j = 0; j < K; ++j) {
        d[K * K + j] = allowed_.start[static_cast<std::size_t>(j)] ? s[j] : neg_inf;
        d[K * K + K + j] = allowed_.end[static_cast<std::size_t>(j)] ? f[j] : neg_inf;
    }
    return {K, d, d + K * K, d + K * K + K};
}

namespace {

// What forward keeps for backward, per column n: α (T, K) at n·T·K, log Z, and whether the
// column was scored.
struct CrfSaved {
    std::vector<double> alpha;
    std::vector<double> log_z;
    std::vector<char> scored;
};

// Column n's first L steps of x (T, N, K) into e (L, K) in double.
void gather(const Tensor& x, std::int64_t n, std::int64_t L, double* e) {
    const std::int64_t N = x.dim(1), K = x.dim(2);
    const float* p = x.data<float>();
    for (std::int64_t t = 0; t < L; ++t)
        for (std::int64_t k = 0; k < K; ++k) e[t * K + k] = p[(t * N + n) * K + k];
}

// Column n's gold tags (L), or an empty vector when the column is not scored; checks them.
std::vector<std::int32_t> gold_tags(const Tensor& target, std::int64_t n, std::int64_t L, std::int64_t K) {
    const std::int64_t TL = target.length(n);
    if (TL == 0 || L == 0) return {};
    RNNFLOW_CHECK(TL == L && target.dim(0) >= L, "crf: 'target' column ", n, " has length ", TL,
                  " but 'scores' has ", L, "; they must be equal");
    std::vector<std::int32_t> y(static_cast<std::size_t>(L));
    const std::int64_t N = target.dim(1);
    for (std::int64_t t = 0; t < L; ++t) {
        y[static_cast<std::size_t>(t)] = target.data<std::int32_t>()[t * N + n];
        RNNFLOW_CHECK(y[static_cast<std::size_t>(t)] >= 0 && y[static_cast<std::size_t>(t)] < K, "crf: target id ",
                      y[static_cast<std::size_t>(t)], " at step ", t, ", column ", n, " is outside [0, ", K, ")");
    }
    return y;
}

}  // namespace

// The error for column n's gold tags y when they use a forbidden transition: the first one.
Error Crf::forbidden_gold(const std::vector<std::int32_t>& y, std::int64_t n) const {
    const auto L = y.size(), K = static_cast<std::size_t>(K_);
    auto name = [&](std::size_t t) {
        const auto id = static_cast<std::size_t>(y[t]);
        return tags_.empty() ? std::to_string(id) : tags_[id];
    };
    std::size_t t = 0;
    if (allowed_.start[static_cast<std::size_t>(y[0])])
        for (t = 1; t < L && allowed_.transitions[static_cast<std::size_t>(y[t - 1]) * K + static_cast<std::size_t>(y[t])];)
            ++t;
    const std::string what = t == 0 ? "start → " + name(0)
                             : t < L ? name(t - 1) + " → " + name(t)
                                     : name(L - 1) + " → end";
    return Error(detail::concat("crf: the gold tags of column ", n, " go ", what, " at step ", std::min(t, L - 1),
                                ", which constraints: ", constraints_, " forbids"),
                 "read the tags in the scheme the constraints name (the reader's scheme conversion), or "
                 "set constraints: none");
}

// Per column, one after another: Viterbi into `decoded`; with gold tags, log Z by the forward
// algorithm (α kept for backward) and the gold path's score. Sums in column order.
void Crf::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)step;
    const Tensor& x = in.at("scores");       // (T, N, K)
    const Tensor& target = in.at("target");  // (T, N)
    RNNFLOW_CHECK(x.rank() == 3 && x.dim(2) == K_ && target.rank() == 2 && target.dim(1) == x.dim(1),
                  "crf: 'scores' ", shape_str(x.shape()), " and 'target' ", shape_str(target.shape()),
                  " must be (T, N, ", K_, ") and (T, N)");
    const std::int64_t T = x.dim(0), N = x.dim(1), K = K_;
    if (!std::any_cast<CrfSaved>(&saved.extra)) saved.extra = CrfSaved{};
    auto& s = *std::any_cast<CrfSaved>(&saved.extra);
    s.alpha.resize(static_cast<std::size_t>(N * T * K));
    s.log_z.assign(static_cast<std::size_t>(N), 0);
    s.scored.assign(static_cast<std::size_t>(N), 0);
    Tensor& decoded = out.at("decoded");  // (T, N, K)
    decoded.resize(DType::f32, {T, N, K});
    decoded.zero();
    decoded.lengths = x.lengths;
    std::vector<double> model_buf;
    const crf::Model m = model(model_buf);
    std::vector<double> e(static_cast<std::size_t>(T * K)), delta(e.size());
    std::vector<std::int32_t> back(e.size()), path(static_cast<std::size_t>(T));
    double sum = 0, count = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = x.length(n);
        if (L == 0) continue;
        gather(x, n, L, e.data());
        crf::viterbi(m, e.data(), L, path.data(), delta.data(), back.data());
        float* d = decoded.data<float>();
        for (std::int64_t t = 0; t < L; ++t) d[(t * N + n) * K + path[static_cast<std::size_t>(t)]] = 1.f;
        const std::vector<std::int32_t> y = gold_tags(target, n, L, K);
        if (y.empty()) continue;
        const double gold = crf::path_score(m, e.data(), L, y.data());
        if (gold == -std::numeric_limits<double>::infinity()) throw forbidden_gold(y, n);
        double* alpha = s.alpha.data() + n * T * K;
        const double log_z = crf::forward_alpha(m, e.data(), L, alpha);
        s.log_z[static_cast<std::size_t>(n)] = log_z;
        s.scored[static_cast<std::size_t>(n)] = 1;
        sum += log_z - gold;
        count += per_sequence_ ? 1.0 : static_cast<double>(L);
    }
    Tensor& loss = out.at("loss");  // (2)
    loss.resize(DType::f32, {2});
    loss.lengths.clear();
    loss.data<float>()[0] = static_cast<float>(sum);
    loss.data<float>()[1] = static_cast<float>(count);
}

// Per scored column: β, marginals minus gold counts (crf::nll_backward) into double sums, then
// diff_scores written and the parameter gradients added once.
void Crf::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                   Grads& diff_src, const StepInfo& step) {
    (void)out; (void)step;
    const Tensor& x = in.at("scores");       // (T, N, K)
    const Tensor& target = in.at("target");  // (T, N)
    const auto& s = std::any_cast<const CrfSaved&>(saved.extra);
    const double g = diff_dst.at("loss").data<float>()[0];
    const std::int64_t T = x.dim(0), N = x.dim(1), K = K_;
    std::vector<double> model_buf;
    const crf::Model m = model(model_buf);
    std::vector<double> d_par(static_cast<std::size_t>(K * K + 2 * K), 0.0);
    std::vector<double> e(static_cast<std::size_t>(T * K)), beta(e.size()), d_e(e.size());
    float* dx = nullptr;
    if (diff_src.has("scores")) {
        Tensor& d = diff_src.at("scores");
        d.resize(DType::f32, {T, N, K});
        d.zero();
        d.lengths = x.lengths;
        dx = d.data<float>();
    }
    for (std::int64_t n = 0; n < N; ++n) {
        if (!s.scored[static_cast<std::size_t>(n)]) continue;
        const std::int64_t L = x.length(n);
        gather(x, n, L, e.data());
        const std::vector<std::int32_t> y = gold_tags(target, n, L, K);
        std::fill(d_e.begin(), d_e.end(), 0.0);
        crf::nll_backward(m, e.data(), L, y.data(), s.alpha.data() + n * T * K, s.log_z[static_cast<std::size_t>(n)], g,
                          beta.data(), d_e.data(), d_par.data(), d_par.data() + K * K, d_par.data() + K * K + K);
        if (dx)
            for (std::int64_t t = 0; t < L; ++t)
                for (std::int64_t k = 0; k < K; ++k) dx[(t * N + n) * K + k] = static_cast<float>(d_e[static_cast<std::size_t>(t * K + k)]);
    }
    float* da = params_[0].grad.data<float>();
    for (std::int64_t i = 0; i < K * K; ++i) da[i] += static_cast<float>(d_par[static_cast<std::size_t>(i)]);
    for (std::int64_t j = 0; j < K; ++j) {
        params_[1].grad.data<float>()[j] += static_cast<float>(d_par[static_cast<std::size_t>(K * K + j)]);
        params_[2].grad.data<float>()[j] += static_cast<float>(d_par[static_cast<std::size_t>(K * K + K + j)]);
    }
}

}  // namespace rnnflow::stages
