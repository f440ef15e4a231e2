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
        .differentiable()
        .details("loss = sum over counted (t, n) of -log softmax(logits[t, n])[target[t, n]], "
                 "with the count; a position counts when t < target length and target != "
                 "ignore_index. Not supported: label smoothing, class weights, soft targets.");
}

CrossEntropy::CrossEntropy(const Params& p) : ignore_index_(p.get_int("ignore_index")) {}

void CrossEntropy::prepare(PrepareContext& ctx) {
    const PortInfo& logits = ctx.input_info("logits");
    const PortInfo& target = ctx.input_info("target");
    RNNFLOW_CHECK(logits.channels <= 0 || target.classes <= 0 || logits.channels == target.classes,
                  "cross_entropy: 'logits' has ", logits.channels, " channels but 'target' has ",
                  target.classes, " classes; they must be equal (hint: out_dim: vocab.size)");
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

    double sum = 0;
    std::int64_t count = 0;
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
            sum += std::log(s) - double(row[y[r]] - m);
            ++count;
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
            for (std::int64_t v = 0; v < V; ++v) drow[v] = scale * std::exp((row[v] - mx[r]) - ls[r]);
            drow[y[r]] -= scale;
        }
}

}  // namespace rnnflow::stages
