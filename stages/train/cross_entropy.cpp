#include "cross_entropy.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

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

void CrossEntropy::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)step;
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
    // lse = max + log Σ exp(x - max), kept as its two parts: adding them in float would lose
    // the low digits of log Σ when |max| is large, and backward needs exp((x - max) - log Σ).
    if (saved.tensors.size() < 2) saved.tensors.resize(2);
    Tensor& max = saved.tensors[0];      // (T, N)
    Tensor& log_sum = saved.tensors[1];  // (T, N)
    max.resize(DType::f32, {T, N});
    log_sum.resize(DType::f32, {T, N});
    const float* logits = x.data<float>();
    const std::int32_t* y = target.data<std::int32_t>();
    float* mx = max.data<float>();
    float* ls = log_sum.data<float>();

    RNNFLOW_CHECK(weights_.empty() || static_cast<std::int64_t>(weights_.size()) == V, "cross_entropy: class_weights has ",
                  weights_.size(), " numbers but 'logits' has ", V, " classes");
    const double eps = smoothing_;
    double sum = 0;
    double count = 0;
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t r = t * N + n;
            mx[r] = 0.f;
            ls[r] = 0.f;
            if (!counted(target, t, n, y[r])) continue;
            RNNFLOW_CHECK(y[r] >= 0 && y[r] < V, "cross_entropy: target id ", y[r], " at step ", t,
                          ", column ", n, " is outside [0, ", V, ") (V = ", V, ")");
            const float* row = logits + r * V;
            const float m = *std::max_element(row, row + V);
            double s = 0;
            for (std::int64_t v = 0; v < V; ++v) s += double(std::exp(row[v] - m));  // float exp, double sum
            mx[r] = m;
            ls[r] = static_cast<float>(std::log(s));
            const double w = weights_.empty() ? 1.0 : weights_[static_cast<std::size_t>(y[r])];
            double l = std::log(s) - (1.0 - eps) * double(row[y[r]] - m);
            if (eps > 0) {
                double centred = 0;  // Σ_v (x_v - m)
                for (std::int64_t v = 0; v < V; ++v) centred += double(row[v] - m);
                l -= eps / double(V) * centred;
            }
            sum += w * l;
            count += w;
        }
    Tensor& loss = out.at("loss");  // (2)
    loss.resize(DType::f32, {2});
    loss.lengths.clear();
    loss.data<float>()[0] = static_cast<float>(sum);
    loss.data<float>()[1] = static_cast<float>(count);
}

void CrossEntropy::backward(const Inputs& in, const Outputs& out, Saved& saved,
                            const Grads& diff_dst, Grads& diff_src, const StepInfo& step) {
    (void)out; (void)step;
    if (!diff_src.has("logits")) return;
    const Tensor& x = in.at("logits");       // (T, N, V)
    const Tensor& target = in.at("target");  // (T, N)
    const Tensor& max = saved.tensors.at(0);      // (T, N)
    const Tensor& log_sum = saved.tensors.at(1);  // (T, N)
    const float scale = diff_dst.at("loss").data<float>()[0];
    const std::int64_t T = x.dim(0), N = x.dim(1), V = x.dim(2);
    Tensor& dx = diff_src.at("logits");      // (T, N, V)
    dx.resize(DType::f32, {T, N, V});
    dx.lengths = x.lengths;
    const float* logits = x.data<float>();
    const std::int32_t* y = target.data<std::int32_t>();
    const float* mx = max.data<float>();
    const float* ls = log_sum.data<float>();
    float* d = dx.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t r = t * N + n;
            float* drow = d + r * V;
            if (!counted(target, t, n, y[r])) {
                std::fill_n(drow, V, 0.f);
                continue;
            }
            const float* row = logits + r * V;
            const float ws = scale * (weights_.empty() ? 1.f : weights_[static_cast<std::size_t>(y[r])]);
            const auto eps = static_cast<float>(smoothing_);
            const float spread = eps / static_cast<float>(V);
            for (std::int64_t v = 0; v < V; ++v) drow[v] = ws * (std::exp((row[v] - mx[r]) - ls[r]) - spread);
            drow[y[r]] -= ws * (1.f - eps);
        }
}

}  // namespace rnnflow::stages
