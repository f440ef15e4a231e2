#include "pool.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>

namespace rnnflow::stages {

static Pool::Mode mode_from(const std::string& s) {
    if (s == "last") return Pool::Mode::last;
    if (s == "mean") return Pool::Mode::mean;
    if (s == "max") return Pool::Mode::max;
    return Pool::Mode::attention;
}

StageSchema Pool::schema() {
    return StageSchema("pool", "one vector per sequence: last valid step, mean, max or attention",
                       Role::model)
        .input("in", PortType::tensor, "activations (T, N, C) + lengths")
        .output("out", PortType::tensor,
                "(1, N, C): each column pooled over its own valid steps; zeros for length 0")
        .param_choice("mode", "last", {"last", "mean", "max", "attention"},
                      "last: the last valid step (see directions); mean / max: over valid steps; "
                      "attention: softmax(q . u_t) over valid steps, weighted sum of the steps")
        .param_int("directions", 1, Range{1, 2},
                   "mode last only: 2 for a bidirectional_concat input: the first C/2 channels "
                   "from the last valid step, the last C/2 (right-to-left half) from step 0")
        .param_int("attention_dim", 0, Range{0, 65536},
                   "mode attention: A > 0 scores u_t = tanh(x_t W + b) (W (C, A)) against the "
                   "query; 0 scores x_t directly (query of C channels)")
        .param_float("init_scale", 0.1, Range{0, 10},
                     "mode attention: query (and weight) start uniform in [-s, s], bias at 0")
        .differentiable()
        .details("Many-to-one heads over each sequence's valid steps (padding never enters). "
                 "last: x[L-1] (directions 2: [l2r half of x[L-1], r2l half of x[0]]); mean: "
                 "sum x[t] / L; max: channel-wise max (gradient to the first maximal step); "
                 "attention: a = masked softmax(q . u_t), u_t = x_t or tanh(x_t W + b), out = "
                 "sum a_t x_t. Params (attention): query (A or C), weight (C, A), bias (A). "
                 "Put a linear on top for class logits (1, N, K). Ref: Yang et al. 2016.");
}

Pool::Pool(const Params& p)
    : mode_(mode_from(p.get_string("mode"))),
      directions_(p.get_int("directions")),
      att_dim_(p.get_int("attention_dim")),
      init_scale_(p.get_float("init_scale")) {
    if (directions_ == 2 && mode_ != Mode::last)
        throw Error("pool: 'directions: 2' only applies to mode 'last' (got mode '" +
                        p.get_string("mode") + "')",
                    "mean, max and attention treat both halves alike; drop 'directions'",
                    p.loc("directions"));
    if (att_dim_ > 0 && mode_ != Mode::attention)
        throw Error("pool: 'attention_dim' only applies to mode 'attention' (got mode '" +
                        p.get_string("mode") + "')",
                    "drop 'attention_dim' or set mode: attention", p.loc("attention_dim"));
}

void Pool::prepare(PrepareContext& ctx) {
    const PortInfo& info = ctx.input_info("in");
    RNNFLOW_CHECK(info.channels > 0, "pool needs the channel count of input 'in', got ",
                  info.channels);
    channels_ = info.channels;
    if (directions_ == 2 && channels_ % 2 != 0)
        throw Error("pool: 'directions: 2' needs an even channel count (two halves), input 'in' has " +
                        std::to_string(channels_),
                    "connect the 'out' of a bidirectional_concat recurrent stage");
    params_.clear();
    if (mode_ == Mode::attention) {
        const std::int64_t C = channels_, A = att_dim_;
        std::uniform_real_distribution<float> uni(static_cast<float>(-init_scale_),
                                                  static_cast<float>(init_scale_));
        auto make = [&](const char* name, Shape shape, const char* layout, bool random) {
            Param p;
            p.name = name;
            p.layout = layout;
            p.value = Tensor::f32(shape);
            p.grad = Tensor::f32(shape);
            if (random && init_scale_ > 0)
                for (std::int64_t i = 0; i < p.value.numel(); ++i) p.value.data<float>()[i] = uni(ctx.rng());
            params_.push_back(std::move(p));
        };
        make("query", {A > 0 ? A : C}, A > 0 ? "(A)" : "(C)", true);
        if (A > 0) {
            make("weight", {C, A}, "(C, A)", true);
            make("bias", {A}, "(A)", false);
        }
    }
    PortInfo out;
    out.type = PortType::tensor;
    out.channels = channels_;
    ctx.set_output_info("out", out);
}

void Pool::check_input(const Tensor& x) const {
    RNNFLOW_ASSERT(channels_ > 0);  // prepare ran
    RNNFLOW_CHECK(x.dtype() == DType::f32 && x.rank() == 3 && x.dim(2) == channels_,
                  "pool: input 'in' must be f32 (T, N, ", channels_, "), got ",
                  to_string(x.dtype()), " ", shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1);
    RNNFLOW_CHECK(x.lengths.empty() || std::ssize(x.lengths) == N, "pool: input 'in' has ",
                  x.lengths.size(), " lengths for ", N, " batch columns");
    for (std::int64_t n = 0; n < N; ++n)
        RNNFLOW_CHECK(x.length(n) >= 0 && x.length(n) <= T, "pool: input 'in' column ", n,
                      " has length ", x.length(n), ", outside [0, ", T, "]");
}

void Pool::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)step;
    const Tensor& x = in.at("in");  // (T, N, C)
    check_input(x);
    const std::int64_t N = x.dim(1), C = channels_;
    Tensor& y = out.at("out");  // (1, N, C)
    y.resize(DType::f32, {1, N, C});
    y.zero();
    y.lengths.clear();
    float* ys = y.data<float>();
    switch (mode_) {
        case Mode::last: last_forward(x, ys); break;
        case Mode::mean: mean_forward(x, ys); break;
        case Mode::max:
            saved.tensors.resize(1);
            max_forward(x, ys, saved.tensors[0]);
            break;
        case Mode::attention: attention_forward(x, ys, saved); break;
    }
}

void Pool::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                    Grads& diff_src, const StepInfo& step) {
    (void)out; (void)step;
    const Tensor& x = in.at("in");          // (T, N, C)
    const Tensor& dy = diff_dst.at("out");  // (1, N, C)
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_;
    RNNFLOW_ASSERT(dy.numel() == N * C);
    const float* g = dy.data<float>();
    const bool want_dx = diff_src.has("in");
    Tensor scratch_dx;  // attention without diff_in: its parameters' gradients still need dx's loop
    Tensor& dx = want_dx ? diff_src.at("in") : scratch_dx;
    if (want_dx || mode_ == Mode::attention) {
        dx.resize(DType::f32, {T, N, C});
        dx.zero();
        dx.lengths = x.lengths;
    }
    if (!want_dx && mode_ != Mode::attention) return;  // no params outside attention
    float* d = dx.data<float>();
    switch (mode_) {
        case Mode::last: last_backward(x, g, d); break;
        case Mode::mean: mean_backward(x, g, d); break;
        case Mode::max:
            RNNFLOW_ASSERT(saved.tensors.size() == 1 && saved.tensors[0].numel() == N * C);
            max_backward(x, saved.tensors[0], g, d);
            break;
        case Mode::attention: attention_backward(x, saved, g, d); break;
    }
}

// Rows of a (T, N, C) buffer.
namespace {
template <class F>
F* step_row(F* base, std::int64_t t, std::int64_t n, std::int64_t N, std::int64_t C) {
    return base + (t * N + n) * C;
}
}  // namespace

// last: y = x_{L-1}; directions 2: [first half of x_{L-1}, second half of x_0].
void Pool::last_forward(const Tensor& x, float* ys) const {
    const std::int64_t N = x.dim(1), C = channels_;
    const float* xs = x.data<float>();
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = x.length(n);
        if (L == 0) continue;
        float* o = ys + n * C;
        if (directions_ == 1) {
            std::memcpy(o, step_row(xs, L - 1, n, N, C), static_cast<std::size_t>(C) * sizeof(float));
        } else {
            const std::int64_t h = C / 2;
            std::memcpy(o, step_row(xs, L - 1, n, N, C), static_cast<std::size_t>(h) * sizeof(float));
            std::memcpy(o + h, step_row(xs, 0, n, N, C) + h, static_cast<std::size_t>(h) * sizeof(float));
        }
    }
}

void Pool::last_backward(const Tensor& x, const float* g, float* d) const {
    const std::int64_t N = x.dim(1), C = channels_;
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = x.length(n);
        if (L == 0) continue;
        const float* gn = g + n * C;
        if (directions_ == 1) {
            std::memcpy(step_row(d, L - 1, n, N, C), gn, static_cast<std::size_t>(C) * sizeof(float));
        } else {
            const std::int64_t h = C / 2;
            float* last = step_row(d, L - 1, n, N, C);
            float* first = step_row(d, 0, n, N, C);
            for (std::int64_t c = 0; c < h; ++c) last[c] += gn[c];
            for (std::int64_t c = h; c < C; ++c) first[c] += gn[c];
        }
    }
}

// mean: y = (1/L) sum_{t<L} x_t.
void Pool::mean_forward(const Tensor& x, float* ys) const {
    const std::int64_t N = x.dim(1), C = channels_;
    const float* xs = x.data<float>();
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = x.length(n);
        if (L == 0) continue;
        float* o = ys + n * C;
        for (std::int64_t t = 0; t < L; ++t) {
            const float* r = step_row(xs, t, n, N, C);
            for (std::int64_t c = 0; c < C; ++c) o[c] += r[c];
        }
        const float inv = 1.f / static_cast<float>(L);
        for (std::int64_t c = 0; c < C; ++c) o[c] *= inv;
    }
}

void Pool::mean_backward(const Tensor& x, const float* g, float* d) const {
    const std::int64_t N = x.dim(1), C = channels_;
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = x.length(n);
        if (L == 0) continue;
        const float inv = 1.f / static_cast<float>(L);
        const float* gn = g + n * C;
        for (std::int64_t t = 0; t < L; ++t) {
            float* r = step_row(d, t, n, N, C);
            for (std::int64_t c = 0; c < C; ++c) r[c] = gn[c] * inv;
        }
    }
}

// max: y[c] = max_{t<L} x_t[c]; arg: i32 (N, C), the first step giving each maximum (-1 for
// length 0), where backward sends the gradient.
void Pool::max_forward(const Tensor& x, float* ys, Tensor& arg) const {
    const std::int64_t N = x.dim(1), C = channels_;
    const float* xs = x.data<float>();
    arg.resize(DType::i32, {N, C});
    std::int32_t* a = arg.data<std::int32_t>();
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = x.length(n);
        float* o = ys + n * C;
        std::int32_t* an = a + n * C;
        if (L == 0) {
            std::fill_n(an, C, -1);
            continue;
        }
        std::memcpy(o, step_row(xs, 0, n, N, C), static_cast<std::size_t>(C) * sizeof(float));
        std::fill_n(an, C, 0);
        for (std::int64_t t = 1; t < L; ++t) {
            const float* r = step_row(xs, t, n, N, C);
            for (std::int64_t c = 0; c < C; ++c)
                if (r[c] > o[c]) {
                    o[c] = r[c];
                    an[c] = static_cast<std::int32_t>(t);
                }
        }
    }
}

void Pool::max_backward(const Tensor& x, const Tensor& arg, const float* g, float* d) const {
    const std::int64_t N = x.dim(1), C = channels_;
    const std::int32_t* a = arg.data<std::int32_t>();
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c) {
            const std::int32_t t = a[n * C + c];
            if (t >= 0) step_row(d, t, n, N, C)[c] += g[n * C + c];
        }
}

// attention: s_t = q . u_t (u_t = x_t, or tanh(x_t W + b) into u (A)), a = softmax of s over
// t < L, y = sum a_t x_t. saved[0]: f32 (T, N) the weights a (0 at padding); saved[1]: f32
// (T, N, A) the u_t when A > 0.
void Pool::attention_forward(const Tensor& x, float* ys, Saved& saved) const {
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_, A = att_dim_;
    const float* xs = x.data<float>();
    saved.tensors.resize(A > 0 ? 2 : 1);
    Tensor& att = saved.tensors[0];
    att.resize(DType::f32, {T, N});
    att.zero();
    float* a = att.data<float>();
    const float* q = params_[0].value.data<float>();
    float* u = nullptr;
    if (A > 0) {
        saved.tensors[1].resize(DType::f32, {T, N, A});
        saved.tensors[1].zero();
        u = saved.tensors[1].data<float>();
    }
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = x.length(n);
        if (L == 0) continue;
        float smax = -std::numeric_limits<float>::infinity();
        for (std::int64_t t = 0; t < L; ++t) {
            const float* r = step_row(xs, t, n, N, C);
            double s = 0;
            if (A == 0) {
                for (std::int64_t c = 0; c < C; ++c) s += double(q[c]) * double(r[c]);
            } else {
                float* ut = u + (t * N + n) * A;
                const float* w = params_[1].value.data<float>();
                std::memcpy(ut, params_[2].value.data<float>(), static_cast<std::size_t>(A) * sizeof(float));
                for (std::int64_t c = 0; c < C; ++c) {
                    const float xc = r[c];
                    const float* wc = w + c * A;
                    for (std::int64_t k = 0; k < A; ++k) ut[k] += xc * wc[k];
                }
                for (std::int64_t k = 0; k < A; ++k) {
                    ut[k] = std::tanh(ut[k]);
                    s += double(q[k]) * double(ut[k]);
                }
            }
            a[t * N + n] = static_cast<float>(s);
            smax = std::max(smax, static_cast<float>(s));
        }
        double z = 0;
        for (std::int64_t t = 0; t < L; ++t) {
            const double e = std::exp(double(a[t * N + n]) - double(smax));
            a[t * N + n] = static_cast<float>(e);
            z += e;
        }
        float* o = ys + n * C;
        for (std::int64_t t = 0; t < L; ++t) {
            const float at = static_cast<float>(double(a[t * N + n]) / z);
            a[t * N + n] = at;
            const float* r = step_row(xs, t, n, N, C);
            for (std::int64_t c = 0; c < C; ++c) o[c] += at * r[c];
        }
    }
}

// Adds into dx (d) and into the query (and weight, bias) gradients.
void Pool::attention_backward(const Tensor& x, const Saved& saved, const float* g, float* d) {
    const std::int64_t T = x.dim(0), N = x.dim(1), A = att_dim_;
    RNNFLOW_ASSERT(saved.tensors.size() == (A > 0 ? 2u : 1u));
    const float* a = saved.tensors[0].data<float>();
    scratch_.resize(static_cast<std::size_t>(T + A));
    float* da = scratch_.data();  // dJ/da_t, then dJ/ds_t
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t L = x.length(n);
        if (L == 0) continue;
        attention_weights_backward(x, a, g, d, n, da);
        attention_scores_backward(x, saved, d, n, da);
    }
}

// Column n: out = sum a_t x_t gives dx_t += a_t g and da_t = g . x_t; through the softmax,
// ds_t = a_t (da_t - sum_j a_j da_j) into da.
void Pool::attention_weights_backward(const Tensor& x, const float* a, const float* g, float* d,
                                      std::int64_t n, float* da) const {
    const std::int64_t N = x.dim(1), C = channels_, L = x.length(n);
    const float* xs = x.data<float>();
    const float* gn = g + n * C;
    double dot = 0;  // sum_t a_t da_t
    for (std::int64_t t = 0; t < L; ++t) {
        const float at = a[t * N + n];
        const float* r = step_row(xs, t, n, N, C);
        float* dr = step_row(d, t, n, N, C);
        double s = 0;
        for (std::int64_t c = 0; c < C; ++c) {
            dr[c] += at * gn[c];
            s += double(gn[c]) * double(r[c]);
        }
        da[t] = static_cast<float>(s);
        dot += double(at) * s;
    }
    for (std::int64_t t = 0; t < L; ++t)
        da[t] = static_cast<float>(double(a[t * N + n]) * (double(da[t]) - dot));
}

// Column n: the scores' gradients ds (da) into dx and the query (and weight, bias) gradients.
void Pool::attention_scores_backward(const Tensor& x, const Saved& saved, float* d, std::int64_t n,
                                     const float* da) {
    const std::int64_t N = x.dim(1), C = channels_, A = att_dim_, L = x.length(n), T = x.dim(0);
    const float* xs = x.data<float>();
    const float* u = A > 0 ? saved.tensors[1].data<float>() : nullptr;
    const float* q = params_[0].value.data<float>();
    float* dq = params_[0].grad.data<float>();
    const float* w = A > 0 ? params_[1].value.data<float>() : nullptr;
    float* dw = A > 0 ? params_[1].grad.data<float>() : nullptr;
    float* db = A > 0 ? params_[2].grad.data<float>() : nullptr;
    float* dz = scratch_.data() + T;  // dJ/dz for one step (A)
    for (std::int64_t t = 0; t < L; ++t) {
        const float ds = da[t];
        const float* r = step_row(xs, t, n, N, C);
        float* dr = step_row(d, t, n, N, C);
        if (A == 0) {  // s_t = q . x_t
            for (std::int64_t c = 0; c < C; ++c) {
                dr[c] += ds * q[c];
                dq[c] += ds * r[c];
            }
            continue;
        }
        // s_t = q . u_t, u_t = tanh(x_t W + b).
        const float* ut = u + (t * N + n) * A;
        for (std::int64_t k = 0; k < A; ++k) {
            dq[k] += ds * ut[k];
            dz[k] = ds * q[k] * (1.f - ut[k] * ut[k]);
            db[k] += dz[k];
        }
        for (std::int64_t c = 0; c < C; ++c) {
            const float xc = r[c];
            const float* wc = w + c * A;
            float* dwc = dw + c * A;
            float acc = 0;
            for (std::int64_t k = 0; k < A; ++k) {
                dwc[k] += xc * dz[k];
                acc += wc[k] * dz[k];
            }
            dr[c] += acc;
        }
    }
}

}  // namespace rnnflow::stages
