#include "regression_loss.hpp"

#include <cmath>
#include <iterator>

namespace rnnflow::stages {

StageSchema RegressionLoss::schema() {
    return StageSchema("regression_loss", "mean squared or absolute error of real-valued predictions, masked for padding",
                       Role::model)
        .input("prediction", PortType::tensor, "predicted values (T, N, K) + lengths")
        .input("target", PortType::tensor, "target frames (T, N, D >= K) + lengths; the first K channels are compared")
        .output("loss", PortType::loss, "(sum of the errors over valid steps and K channels, K · valid steps)")
        .param_choice("kind", "mse", {"mse", "mae"}, "mse: squared error (x - y)²; mae: absolute error |x - y|")
        .differentiable()
        .details("loss = Σ over valid (t, n) and k < K of ℓ(x - y), ℓ(e) = e² (mse) or |e| (mae), with "
                 "count K times the valid steps, so sum / count is the mean error per value. A step is "
                 "valid when t < target length. Target channels past K (input-only features) are not "
                 "compared. Gradient 2e or sign(e) (0 at e = 0).");
}

RegressionLoss::RegressionLoss(const Params& p) : squared_(p.get_string("kind") == "mse") {}

void RegressionLoss::prepare(PrepareContext& ctx) {
    const std::int64_t k = ctx.input_info("prediction").channels, d = ctx.input_info("target").channels;
    RNNFLOW_CHECK(k <= 0 || d <= 0 || k <= d, "regression_loss: 'prediction' has ", k, " channels but 'target' only ", d,
                  " (hint: out_dim: series.targets)");
    ctx.set_output_info("loss", PortInfo{PortType::loss, -1, -1, nullptr});
}

namespace {

void check_inputs(const Tensor& x, const Tensor& y) {
    RNNFLOW_CHECK(x.rank() == 3 && y.rank() == 3 && x.dim(0) == y.dim(0) && x.dim(1) == y.dim(1) && x.dim(2) <= y.dim(2),
                  "regression_loss: 'prediction' ", shape_str(x.shape()), " and 'target' ", shape_str(y.shape()),
                  " must be (T, N, K) and (T, N, D) with K <= D");
    RNNFLOW_CHECK(y.lengths.empty() || std::ssize(y.lengths) == y.dim(1), "regression_loss: 'target' has ",
                  y.lengths.size(), " lengths for ", y.dim(1), " batch columns");
}

}  // namespace

// Rows (t, n) in parallel; each valid row's Σ_k ℓ in double, rows added in order.
void RegressionLoss::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved; (void)step;
    const Tensor& x = in.at("prediction");  // (T, N, K)
    const Tensor& y = in.at("target");      // (T, N, D)
    check_inputs(x, y);
    const std::int64_t T = x.dim(0), N = x.dim(1), K = x.dim(2), D = y.dim(2), R = T * N;
    if (std::ssize(row_loss_) < R) row_loss_.resize(static_cast<std::size_t>(R));
    const float* xd = x.data<float>();
    const float* yd = y.data<float>();
    double* rl = row_loss_.data();
    const bool sq = squared_;
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < R; ++r) {
        double l = 0;
        if (r / N < y.length(r % N))
            for (std::int64_t k = 0; k < K; ++k) {
                const double e = static_cast<double>(xd[r * K + k]) - yd[r * D + k];
                l += sq ? e * e : std::abs(e);
            }
        rl[r] = l;
    }
    double sum = 0, count = 0;
    for (std::int64_t r = 0; r < R; ++r) sum += rl[r];
    for (std::int64_t n = 0; n < N; ++n) count += static_cast<double>(std::min(T, y.length(n)) * K);
    Tensor& loss = out.at("loss");  // (2)
    loss.resize(DType::f32, {2});
    loss.lengths.clear();
    loss.data<float>()[0] = static_cast<float>(sum);
    loss.data<float>()[1] = static_cast<float>(count);
}

// dℓ/dx = 2e (mse) or sign(e) (mae), dℓ/dy = -dℓ/dx on the first K channels; zero at padding.
void RegressionLoss::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                              Grads& diff_src, const StepInfo& step) {
    (void)out; (void)saved; (void)step;
    const Tensor& x = in.at("prediction");  // (T, N, K)
    const Tensor& y = in.at("target");      // (T, N, D)
    const float g = diff_dst.at("loss").data<float>()[0];
    const std::int64_t T = x.dim(0), N = x.dim(1), K = x.dim(2), D = y.dim(2), R = T * N;
    const float* xd = x.data<float>();
    const float* yd = y.data<float>();
    float* dx = nullptr;
    float* dy = nullptr;
    if (diff_src.has("prediction")) {
        Tensor& d = diff_src.at("prediction");  // (T, N, K)
        d.resize(DType::f32, {T, N, K});
        d.lengths = x.lengths;
        dx = d.data<float>();
    }
    if (diff_src.has("target")) {
        Tensor& d = diff_src.at("target");  // (T, N, D)
        d.resize(DType::f32, {T, N, D});
        d.zero();
        d.lengths = y.lengths;
        dy = d.data<float>();
    }
    const bool sq = squared_;
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < R; ++r) {
        const bool valid = r / N < y.length(r % N);
        for (std::int64_t k = 0; k < K; ++k) {
            const float e = xd[r * K + k] - yd[r * D + k];
            const float de = !valid ? 0.f : sq ? 2.f * g * e : e > 0 ? g : e < 0 ? -g : 0.f;
            if (dx) dx[r * K + k] = de;
            if (dy) dy[r * D + k] = -de;
        }
    }
}

}  // namespace rnnflow::stages
