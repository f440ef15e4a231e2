#include "cross_entropy.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include "pipeline/core/cpu.hpp"
#include "stages/fast_math.hpp"

namespace rnnflow::stages {

StageSchema CrossEntropy::schema() {
    return StageSchema("cross_entropy", "softmax cross-entropy against target ids", Role::model)
        .input("logits", PortType::tensor, "unnormalised scores (T, N, V) + lengths")
        .input("target", PortType::ids, "target ids (T, N) + lengths; padding is not counted")
        .output("loss", PortType::loss, "(sum of -log p(target), number of counted positions)")
        .param_int("ignore_index", -1, Range{-1, 2147483647},
                   "target id that is not counted (e.g. a padding id); -1: none")
        .param_list("class_weights", {},
                    "a weight per class (numbers, in id order), or [balanced]: n / (K · n_k) from the "
                    "target vocabulary's training counts; [] = all 1")
        .param_float("label_smoothing", 0.0, Range{0.0, 0.999},
                     "ε: the target distribution is (1 - ε) on the target plus ε / V on every class")
        .differentiable()
        .details("loss = sum over counted (t, n) of w_y · (-(1 - ε) log p_y - ε/V Σ_v log p_v), "
                 "p = softmax(logits[t, n]), with count Σ w_y (the number of positions without "
                 "weights); a position counts when t < target length and target != ignore_index. "
                 "Not supported: soft targets given as distributions.");
}

CrossEntropy::CrossEntropy(const Params& p)
    : ignore_index_(p.get_int("ignore_index")), smoothing_(p.get_float("label_smoothing")),
      weight_spec_(p.get_list("class_weights")) {
    if (weight_spec_.size() == 1 && weight_spec_[0] == "balanced") return;
    for (const auto& w : weight_spec_) {
        std::size_t used = 0;
        double v = 0;
        try {
            v = std::stod(w, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != w.size() || w.empty() || !std::isfinite(v) || v < 0)
            throw Error("class_weights: '" + w + "' is not a non-negative number",
                        "give one number per class, or [balanced]");
        weights_.push_back(static_cast<float>(v));
    }
}

void CrossEntropy::prepare(PrepareContext& ctx) {
    const PortInfo& logits = ctx.input_info("logits");
    const PortInfo& target = ctx.input_info("target");
    RNNFLOW_CHECK(logits.channels <= 0 || target.classes <= 0 || logits.channels == target.classes,
                  "cross_entropy: 'logits' has ", logits.channels, " channels but 'target' has ",
                  target.classes, " classes; they must be equal (hint: out_dim: vocab.size)");
    if (weight_spec_.size() == 1 && weight_spec_[0] == "balanced") {
        RNNFLOW_CHECK(target.vocab != nullptr, "cross_entropy: class_weights: [balanced] needs the target's "
                      "vocabulary (its training counts); connect 'target' to ids from a vocabulary");
        const auto K = target.vocab->size();
        double total = 0;
        for (std::int32_t k = 0; k < K; ++k) total += static_cast<double>(target.vocab->count(k));
        RNNFLOW_CHECK(total > 0, "cross_entropy: class_weights: [balanced]: the target vocabulary has no counts");
        weights_.assign(static_cast<std::size_t>(K), 0.f);
        for (std::int32_t k = 0; k < K; ++k) {
            const auto n = static_cast<double>(target.vocab->count(k));
            if (n > 0) weights_[static_cast<std::size_t>(k)] = static_cast<float>(total / (static_cast<double>(K) * n));
        }
    } else if (!weights_.empty()) {
        const std::int64_t K = target.classes > 0 ? target.classes : logits.channels;
        RNNFLOW_CHECK(K <= 0 || static_cast<std::int64_t>(weights_.size()) == K, "cross_entropy: class_weights has ",
                      weights_.size(), " numbers but there are ", K, " classes");
    }
    PortInfo out;
    out.type = PortType::loss;
    ctx.set_output_info("loss", out);
}

namespace {

// The row kernels, written once and compiled twice: for AVX-512 (chosen at run time where the CPU
// has it; the project builds for baseline x86-64) and for the baseline. `omp simd` makes the
// loops vector loops (float reductions in vector lanes: a fixed order for a given CPU path).
#define RNNFLOW_CE_KERNELS(SUFFIX, ATTR)                                                           \
    ATTR float row_max_##SUFFIX(const float* __restrict row, std::int64_t V) {                     \
        float m = -std::numeric_limits<float>::infinity();                                         \
        _Pragma("omp simd reduction(max : m)") for (std::int64_t v = 0; v < V; ++v) m =            \
            m > row[v] ? m : row[v];                                                               \
        return m;                                                                                  \
    }                                                                                              \
    /* Σ exp(row[v] - m), nothing written. */                                                 \
    ATTR float sum_exp_row_##SUFFIX(const float* __restrict row, float m, std::int64_t V) {       \
        float s = 0;                                                                               \
        _Pragma("omp simd reduction(+ : s)") for (std::int64_t v = 0; v < V; ++v) s +=             \
            fast_exp(row[v] - m);                                                                  \
        return s;                                                                                  \
    }                                                                                              \
    /* e[v] = exp(row[v] - m), returning Σ e: the same sum as sum_exp_row's. */               \
    ATTR float exp_store_row_##SUFFIX(const float* __restrict row, float m, float* __restrict e,  \
                                      std::int64_t V) {                                            \
        float s = 0;                                                                               \
        _Pragma("omp simd reduction(+ : s)") for (std::int64_t v = 0; v < V; ++v) {                \
            e[v] = fast_exp(row[v] - m);                                                           \
            s += e[v];                                                                             \
        }                                                                                          \
        return s;                                                                                  \
    }                                                                                              \
    /* d[v] = a · d[v] - b, in place over exp_store_row's values. */                              \
    ATTR void affine_row_##SUFFIX(float* __restrict d, float a, float b, std::int64_t V) {         \
        _Pragma("omp simd") for (std::int64_t v = 0; v < V; ++v) d[v] = a * d[v] - b;              \
    }                                                                                              \
    /* d[v] = a · exp(row[v] - m) - b: the same exp values as the sum's, computed again. */       \
    ATTR void exp_affine_row_##SUFFIX(const float* __restrict row, float m, float a, float b,     \
                                      float* __restrict d, std::int64_t V) {                      \
        _Pragma("omp simd") for (std::int64_t v = 0; v < V; ++v) d[v] = a * fast_exp(row[v] - m) - b; \
    }

#ifdef RNNFLOW_AVX512
RNNFLOW_CE_KERNELS(avx512, RNNFLOW_AVX512_FMA_TARGET)
#endif
RNNFLOW_CE_KERNELS(base, )
#undef RNNFLOW_CE_KERNELS

// The gradient of one counted row, for the loss's incoming gradient g: d = a · exp(x - max) - b,
// then d[target] -= t (a = ws / Σ exp(x - max), b = ws · ε / V, t = ws · (1 - ε), ws = g times the
// target's class weight). One formula for forward's prepared gradient and backward's own.
struct RowGrad {
    float a, b, t;
    RowGrad(float g, float class_weight, float log_sum, float eps, std::int64_t V) {
        const float ws = g * class_weight;
        a = ws * static_cast<float>(std::exp(-double(log_sum)));
        b = ws * (eps / static_cast<float>(V));
        t = ws * (1.f - eps);
    }
};

}  // namespace

// Per row, rows in parallel (OpenMP, the team oneDNN uses): max, then Σ exp(x - max), then the
// row's loss. In training the row's gradient follows at once (for the engine's seed; see
// pending_), while the row is in cache; otherwise nothing of size V is written and backward
// computes the exp values again while it writes the gradient. Row losses are added in row order
// afterwards, so the sum does not depend on the threads.
void CrossEntropy::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    const Tensor& x = in.at("logits");       // (T, N, V)
    const Tensor& target = in.at("target");  // (T, N)
    RNNFLOW_CHECK(x.rank() == 3 && target.rank() == 2 && x.dim(0) == target.dim(0) &&
                      x.dim(1) == target.dim(1),
                  "cross_entropy: 'logits' ", shape_str(x.shape()), " and 'target' ",
                  shape_str(target.shape()), " must be (T, N, V) and (T, N)");
    const std::int64_t T = x.dim(0), N = x.dim(1), V = x.dim(2);
    RNNFLOW_CHECK(V > 0, "cross_entropy: 'logits' has no classes (V = 0)");
    RNNFLOW_CHECK(target.lengths.empty() || std::ssize(target.lengths) == N,
                  "cross_entropy: 'target' has ", target.lengths.size(), " lengths for ", N,
                  " batch columns");
    RNNFLOW_CHECK(weights_.empty() || static_cast<std::int64_t>(weights_.size()) == V, "cross_entropy: class_weights has ",
                  weights_.size(), " numbers but 'logits' has ", V, " classes");
    const std::int64_t R = T * N;
    // Saved: the row max (R); log Σ exp(x - max) (R), or -1 at rows not counted (the sum is
    // >= 1, so its log is >= 0). Buffers only grow.
    if (saved.tensors.size() < 2) saved.tensors.resize(2);
    Tensor& row_max = saved.tensors[0];
    Tensor& log_sum = saved.tensors[1];
    if (row_max.numel() < R) row_max.resize(DType::f32, {R});
    if (log_sum.numel() < R) log_sum.resize(DType::f32, {R});
    if (std::ssize(row_loss_) < R) row_loss_.resize(static_cast<std::size_t>(R));
    const float* logits = x.data<float>();
    const std::int32_t* y = target.data<std::int32_t>();
    float* mx = row_max.data<float>();
    float* ls = log_sum.data<float>();
    double* rl = row_loss_.data();

    // Checks first: nothing may throw inside the parallel loop.
    std::vector<char>& use = counted_;
    use.assign(static_cast<std::size_t>(R), 0);
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t r = t * N + n;
            if (!counted(target, t, n, y[r])) continue;
            RNNFLOW_CHECK(y[r] >= 0 && y[r] < V, "cross_entropy: target id ", y[r], " at step ", t,
                          ", column ", n, " is outside [0, ", V, ") (V = ", V, ")");
            use[static_cast<std::size_t>(r)] = 1;
        }
    const double eps = smoothing_;
    const char* u = use.data();
    const float* w = weights_.empty() ? nullptr : weights_.data();
    double count = 0;  // counted rows (their class weights): the loss's second number
    for (std::int64_t r = 0; r < R; ++r)
        if (u[r]) count += w ? double(w[y[r]]) : 1.0;

    // Training: the gradient for the engine's seed 1 / count as well, each row while it is in
    // cache (exp computed once, stored, then scaled in place), so backward need not read the
    // logits again. The same numbers backward would compute for that scale.
    const bool fuse = step.training();
    const float count_f = static_cast<float>(count);
    const float seed = count_f > 0 ? 1.0f / count_f : 0.0f;
    pending_ready_ = false;
    float* pd = nullptr;
    if (fuse) {
        pending_.resize(DType::f32, {T, N, V});
        pending_.lengths = x.lengths;
        pd = pending_.data<float>();
    }
    const auto epsf = static_cast<float>(smoothing_);
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < R; ++r) {
        float* drow = pd ? pd + r * V : nullptr;
        if (!u[r]) {
            ls[r] = -1.f;
            rl[r] = 0;
            if (drow) std::fill_n(drow, V, 0.f);
            continue;
        }
        const float* row = logits + r * V;
        const float m = RNNFLOW_PICK_KERNEL(row_max)(row, V);
        mx[r] = m;
        const double s = drow ? RNNFLOW_PICK_KERNEL(exp_store_row)(row, m, drow, V)
                              : RNNFLOW_PICK_KERNEL(sum_exp_row)(row, m, V);
        const double lsd = std::log(s);
        ls[r] = static_cast<float>(lsd);
        double l = lsd - (1.0 - eps) * double(row[y[r]] - m);
        if (eps > 0) {
            double centred = 0;  // Σ_v (x_v - m)
            for (std::int64_t v = 0; v < V; ++v) centred += double(row[v] - m);
            l -= eps / double(V) * centred;
        }
        rl[r] = (w ? double(w[y[r]]) : 1.0) * l;
        if (drow) {  // as backward, over the stored exp values
            const RowGrad rg(seed, w ? w[y[r]] : 1.f, ls[r], epsf, V);
            RNNFLOW_PICK_KERNEL(affine_row)(drow, rg.a, rg.b, V);
            drow[y[r]] -= rg.t;
        }
    }
    pending_ready_ = fuse;
    pending_scale_ = seed;
    double sum = 0;
    for (std::int64_t r = 0; r < R; ++r)
        if (u[r]) sum += rl[r];
    Tensor& loss = out.at("loss");  // (2)
    loss.resize(DType::f32, {2});
    loss.lengths.clear();
    loss.data<float>()[0] = static_cast<float>(sum);
    loss.data<float>()[1] = count_f;
}

void CrossEntropy::backward(const Inputs& in, const Outputs& out, Saved& saved,
                            const Grads& diff_dst, Grads& diff_src, const StepInfo& step) {
    (void)out; (void)step;
    if (!diff_src.has("logits")) return;
    const Tensor& x = in.at("logits");       // (T, N, V)
    const Tensor& target = in.at("target");  // (T, N)
    const float* mx = saved.tensors.at(0).data<float>();       // row max (R)
    const float* ls = saved.tensors.at(1).data<float>();       // log Σ (R), -1: not counted
    const float scale = diff_dst.at("loss").data<float>()[0];
    const std::int64_t T = x.dim(0), N = x.dim(1), V = x.dim(2);
    Tensor& dx = diff_src.at("logits");      // (T, N, V)
    // Forward computed this gradient already (the usual case: the engine's seed): hand it over.
    // Swapping keeps both allocations, so steady-state steps allocate nothing.
    if (pending_ready_ && scale == pending_scale_ && pending_.shape() == x.shape()) {
        std::swap(dx, pending_);
        pending_ready_ = false;
        return;
    }
    dx.resize(DType::f32, {T, N, V});
    dx.lengths = x.lengths;
    const std::int32_t* y = target.data<std::int32_t>();
    const float* logits = x.data<float>();
    float* d = dx.data<float>();
    const float* w = weights_.empty() ? nullptr : weights_.data();
    const auto eps = static_cast<float>(smoothing_);
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < T * N; ++r) {
        float* __restrict drow = d + r * V;
        if (ls[r] < 0) {
            std::fill_n(drow, V, 0.f);
            continue;
        }
        const RowGrad rg(scale, w ? w[y[r]] : 1.f, ls[r], eps, V);
        RNNFLOW_PICK_KERNEL(exp_affine_row)(logits + r * V, mx[r], rg.a, rg.b, drow, V);
        drow[y[r]] -= rg.t;
    }
}

}  // namespace rnnflow::stages
