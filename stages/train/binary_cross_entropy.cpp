#include "binary_cross_entropy.hpp"

#include <iterator>

namespace rnnflow::stages {

StageSchema BinaryCrossEntropy::schema() {
    return StageSchema("binary_cross_entropy", "sigmoid + binary cross-entropy per unit against target frames",
                       Role::model)
        .input("logits", PortType::tensor, "unnormalised scores (T, N, P) + lengths; the sigmoid is applied here")
        .input("target", PortType::tensor, "target frames (T, N, P) in [0, 1] + lengths; padding is not counted")
        .output("loss", PortType::loss, "(sum over valid steps of Σ_p -log p(target unit), number of valid steps)")
        .differentiable()
        .details("loss = Σ over valid (t, n) of Σ_p [max(x, 0) - x y + log(1 + e^-|x|)] (the binary "
                 "cross-entropy of σ(x) against y, in a form that cannot overflow), with count the "
                 "number of valid steps: sum / count is the negative log-likelihood per time step "
                 "of the polyphonic-music papers (nats). A step is valid when t < target length. "
                 "Not supported: per-unit weights, label smoothing.");
}

BinaryCrossEntropy::BinaryCrossEntropy(const Params& p) { (void)p; }

void BinaryCrossEntropy::prepare(PrepareContext& ctx) {
    const PortInfo& logits = ctx.input_info("logits");
    const PortInfo& target = ctx.input_info("target");
    RNNFLOW_CHECK(logits.channels <= 0 || target.channels <= 0 || logits.channels == target.channels,
                  "binary_cross_entropy: 'logits' has ", logits.channels, " channels but 'target' has ",
                  target.channels, "; they must be equal (hint: out_dim: notes.pitches)");
    ctx.set_output_info("loss", PortInfo{PortType::loss, -1, -1, nullptr});
}

namespace {

// The checks, before any arithmetic: shapes, lengths, and targets in [0, 1] at valid steps.
void check_inputs(const Tensor& x, const Tensor& y) {
    RNNFLOW_CHECK(x.rank() == 3 && x.shape() == y.shape(), "binary_cross_entropy: 'logits' ", shape_str(x.shape()),
                  " and 'target' ", shape_str(y.shape()), " must both be (T, N, P)");
    const std::int64_t T = x.dim(0), N = x.dim(1), P = x.dim(2);
    RNNFLOW_CHECK(y.lengths.empty() || std::ssize(y.lengths) == N, "binary_cross_entropy: 'target' has ",
                  y.lengths.size(), " lengths for ", N, " batch columns");
    const float* yd = y.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            if (t >= y.length(n)) continue;
            for (std::int64_t p = 0; p < P; ++p) {
                const float v = yd[(t * N + n) * P + p];
                RNNFLOW_CHECK(v >= 0.f && v <= 1.f, "binary_cross_entropy: target ", v, " at step ", t, ", column ", n,
                              ", unit ", p, " is outside [0, 1]");
            }
        }
}

}  // namespace

// Rows (t, n) in parallel; each valid row's loss Σ_p ℓ in double, rows added in order.
void BinaryCrossEntropy::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved; (void)step;
    const Tensor& x = in.at("logits");  // (T, N, P)
    const Tensor& y = in.at("target");  // (T, N, P)
    check_inputs(x, y);
    const std::int64_t T = x.dim(0), N = x.dim(1), P = x.dim(2), R = T * N;
    if (std::ssize(row_loss_) < R) row_loss_.resize(static_cast<std::size_t>(R));
    const float* xd = x.data<float>();
    const float* yd = y.data<float>();
    double* rl = row_loss_.data();
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < R; ++r) {
        double l = 0;
        if (r / N < y.length(r % N))
            for (std::int64_t p = 0; p < P; ++p) l += binary_cross_entropy_unit(xd[r * P + p], yd[r * P + p]);
        rl[r] = l;
    }
    double sum = 0, count = 0;
    for (std::int64_t r = 0; r < R; ++r) sum += rl[r];
    for (std::int64_t n = 0; n < N; ++n) count += static_cast<double>(std::min(T, y.length(n)));
    Tensor& loss = out.at("loss");  // (2)
    loss.resize(DType::f32, {2});
    loss.lengths.clear();
    loss.data<float>()[0] = static_cast<float>(sum);
    loss.data<float>()[1] = static_cast<float>(count);
}

// dℓ/dx = σ(x) - y, dℓ/dy = -x, at valid steps; zero at padding.
void BinaryCrossEntropy::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                                  Grads& diff_src, const StepInfo& step) {
    (void)out; (void)saved; (void)step;
    const Tensor& x = in.at("logits");  // (T, N, P)
    const Tensor& y = in.at("target");  // (T, N, P)
    const float g = diff_dst.at("loss").data<float>()[0];
    const std::int64_t T = x.dim(0), N = x.dim(1), P = x.dim(2), R = T * N;
    const float* xd = x.data<float>();
    const float* yd = y.data<float>();
    float* dx = nullptr;
    float* dy = nullptr;
    if (diff_src.has("logits")) {
        Tensor& d = diff_src.at("logits");  // (T, N, P)
        d.resize(DType::f32, {T, N, P});
        d.lengths = x.lengths;
        dx = d.data<float>();
    }
    if (diff_src.has("target")) {
        Tensor& d = diff_src.at("target");  // (T, N, P)
        d.resize(DType::f32, {T, N, P});
        d.lengths = y.lengths;
        dy = d.data<float>();
    }
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < R; ++r) {
        const bool valid = r / N < y.length(r % N);
        for (std::int64_t p = 0; p < P; ++p) {
            const std::int64_t i = r * P + p;
            if (dx) dx[i] = valid ? g * (stable_sigmoid(xd[i]) - yd[i]) : 0.f;
            if (dy) dy[i] = valid ? -g * xd[i] : 0.f;
        }
    }
}

}  // namespace rnnflow::stages
