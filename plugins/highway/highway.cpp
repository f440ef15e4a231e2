#include "highway.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace highway_plugin {

using namespace rnnflow;

StageSchema Highway::schema() {
    return StageSchema("highway", "gated skip connection over channels (highway layer)", Role::model)
        .input("in", PortType::tensor, "f32 (T, N, C) + lengths")
        .output("out", PortType::tensor, "f32 (T, N, C) + the same lengths, 0 at padded steps")
        .param_float("gate_bias", -1.0, Range{-10, 10},
                     "initial transform-gate bias; negative starts near the identity")
        .param_choice("act", "tanh", {"tanh", "relu"}, "the transform's activation")
        .differentiable()
        .details("y = t * act(x W_h + b_h) + (1 - t) * x, t = sigmoid(x W_t + b_t). "
                 "Params weights_h (C, C), bias_h (C), weights_t (C, C), bias_t (C). "
                 "Ref: Srivastava et al., Highway Networks (2015). "
                 "Not supported: per-time-step gates, a change of width.");
}

Highway::Highway(const Params& p)
    : gate_bias_(p.get_float("gate_bias")), relu_(p.get_string("act") == "relu") {}

void Highway::prepare(PrepareContext& ctx) {
    const PortInfo& info = ctx.input_info("in");
    RNNFLOW_CHECK(info.channels > 0, "input 'in' needs a known channel count, got ", info.channels);
    const std::int64_t C = channels_ = info.channels;
    const float scale = 1.f / std::sqrt(static_cast<float>(C));
    std::uniform_real_distribution<float> uni(-scale, scale);
    const char* names[] = {"weights_h", "bias_h", "weights_t", "bias_t"};
    for (int i = 0; i < 4; ++i) {
        Param& p = params_[static_cast<std::size_t>(i)];
        const bool matrix = i % 2 == 0;
        p.name = names[i];
        p.layout = matrix ? "(C_in, C_out)" : "(C)";
        p.value = matrix ? Tensor::f32({C, C}) : Tensor::f32({C});
        p.grad = matrix ? Tensor::f32({C, C}) : Tensor::f32({C});
        float* v = p.value.data<float>();
        if (matrix) for (std::int64_t e = 0; e < C * C; ++e) v[e] = uni(ctx.rng());
        else if (i == 3) std::fill_n(v, C, static_cast<float>(gate_bias_));
    }
    ctx.set_output_info("out", info);
}

namespace {

float sigmoid(float z) { return 1.f / (1.f + std::exp(-z)); }

// dst[c'] = b[c'] + sum_c x[c] W[c, c'], W (C, C) row-major.
void affine(const float* x, const float* W, const float* b, std::int64_t C, float* dst) {
    std::copy(b, b + C, dst);
    for (std::int64_t c = 0; c < C; ++c) {
        const float xc = x[c];
        const float* w = W + c * C;
        for (std::int64_t k = 0; k < C; ++k) dst[k] += xc * w[k];
    }
}

}  // namespace

void Highway::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)step;
    const Tensor& x = in.at("in");  // (T, N, C)
    Tensor& y = out.at("out");      // (T, N, C)
    const std::int64_t C = channels_;
    RNNFLOW_CHECK(x.rank() == 3 && x.dim(2) == C, "input 'in' must be (T, N, ", C, "), got ", shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1);
    y.resize(DType::f32, {T, N, C});
    y.lengths = x.lengths;
    // Saved for backward: h = act(x W_h + b_h) and the gate t, both (T, N, C).
    saved.tensors.resize(2);
    Tensor& h = saved.tensors[0];
    Tensor& gate = saved.tensors[1];
    h.resize(DType::f32, {T, N, C});
    gate.resize(DType::f32, {T, N, C});
    const float* Wh = params_[0].value.data<float>();
    const float* bh = params_[1].value.data<float>();
    const float* Wt = params_[2].value.data<float>();
    const float* bt = params_[3].value.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t row = (t * N + n) * C;
            float* yr = y.data<float>() + row;
            float* hr = h.data<float>() + row;
            float* tr = gate.data<float>() + row;
            if (t >= x.length(n)) {
                std::fill(yr, yr + C, 0.f);
                std::fill(hr, hr + C, 0.f);
                std::fill(tr, tr + C, 0.f);
                continue;
            }
            const float* xr = x.data<float>() + row;
            affine(xr, Wh, bh, C, hr);
            affine(xr, Wt, bt, C, tr);
            for (std::int64_t c = 0; c < C; ++c) {
                hr[c] = relu_ ? std::max(hr[c], 0.f) : std::tanh(hr[c]);
                tr[c] = sigmoid(tr[c]);
                yr[c] = tr[c] * hr[c] + (1.f - tr[c]) * xr[c];
            }
        }
}

void Highway::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                       Grads& diff_src, const StepInfo& step) {
    (void)out; (void)step;
    const Tensor& x = in.at("in");          // (T, N, C)
    const Tensor& dy = diff_dst.at("out");  // (T, N, C)
    const Tensor& h = saved.tensors.at(0);  // (T, N, C)
    const Tensor& gate = saved.tensors.at(1);
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_;
    float* dx = nullptr;  // (T, N, C)
    if (diff_src.has("in")) {
        Tensor& d = diff_src.at("in");
        d.resize(DType::f32, x.shape());
        d.lengths = x.lengths;
        dx = d.data<float>();
    }
    const float* Wh = params_[0].value.data<float>();
    const float* Wt = params_[2].value.data<float>();
    float* dWh = params_[0].grad.data<float>();
    float* dbh = params_[1].grad.data<float>();
    float* dWt = params_[2].grad.data<float>();
    float* dbt = params_[3].grad.data<float>();
    std::vector<float> dh_pre(static_cast<std::size_t>(C)), dt_pre(static_cast<std::size_t>(C));
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t row = (t * N + n) * C;
            if (t >= x.length(n)) {
                if (dx) std::fill(dx + row, dx + row + C, 0.f);
                continue;
            }
            const float* xr = x.data<float>() + row;
            const float* g = dy.data<float>() + row;
            const float* hr = h.data<float>() + row;
            const float* tr = gate.data<float>() + row;
            for (std::int64_t c = 0; c < C; ++c) {
                const float act_grad = relu_ ? (hr[c] > 0.f ? 1.f : 0.f) : 1.f - hr[c] * hr[c];
                dh_pre[c] = g[c] * tr[c] * act_grad;
                dt_pre[c] = g[c] * (hr[c] - xr[c]) * tr[c] * (1.f - tr[c]);
                dbh[c] += dh_pre[c];
                dbt[c] += dt_pre[c];
            }
            for (std::int64_t c = 0; c < C; ++c) {
                // Row c of W holds the weights from input channel c.
                const float* wh = Wh + c * C;
                const float* wt = Wt + c * C;
                float* dwh = dWh + c * C;
                float* dwt = dWt + c * C;
                float back = 0.f;
                for (std::int64_t k = 0; k < C; ++k) {
                    back += dh_pre[k] * wh[k] + dt_pre[k] * wt[k];
                    dwh[k] += xr[c] * dh_pre[k];
                    dwt[k] += xr[c] * dt_pre[k];
                }
                if (dx) dx[row + c] = g[c] * (1.f - tr[c]) + back;
            }
        }
}

}  // namespace highway_plugin
