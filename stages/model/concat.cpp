#include "concat.hpp"

#include <algorithm>
#include <cstring>

namespace rnnflow::stages {

StageSchema Concat::schema() {
    return StageSchema("concat", "join two activations on the channel axis", Role::model)
        .input("a", PortType::tensor, "activations (T, N, Ca) + lengths")
        .input("b", PortType::tensor, "activations (T, N, Cb) + the same lengths")
        .output("out", PortType::tensor, "(T, N, Ca + Cb): a's channels, then b's; 0 at padding")
        .differentiable()
        .details("out[t, n, :] = [a[t, n, :], b[t, n, :]]. Both inputs must have the same T, N "
                 "and lengths. Not supported: more than two inputs (chain concats), other axes.");
}

Concat::Concat(const Params& p) { (void)p; }

void Concat::prepare(PrepareContext& ctx) {
    ca_ = ctx.input_info("a").channels;
    cb_ = ctx.input_info("b").channels;
    RNNFLOW_CHECK(ca_ > 0 && cb_ > 0, "concat needs the channel counts of inputs 'a' and 'b', got ",
                  ca_, " and ", cb_);
    PortInfo out;
    out.type = PortType::tensor;
    out.channels = ca_ + cb_;
    ctx.set_output_info("out", out);
}

void Concat::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved; (void)step;
    const Tensor& a = in.at("a");
    const Tensor& b = in.at("b");
    RNNFLOW_ASSERT(ca_ > 0);  // prepare ran
    RNNFLOW_CHECK(a.dtype() == DType::f32 && a.rank() == 3 && a.dim(2) == ca_,
                  "concat: input 'a' must be f32 (T, N, ", ca_, "), got ", to_string(a.dtype()), " ",
                  shape_str(a.shape()));
    RNNFLOW_CHECK(b.dtype() == DType::f32 && b.rank() == 3 && b.dim(2) == cb_,
                  "concat: input 'b' must be f32 (T, N, ", cb_, "), got ", to_string(b.dtype()), " ",
                  shape_str(b.shape()));
    RNNFLOW_CHECK(a.dim(0) == b.dim(0) && a.dim(1) == b.dim(1), "concat: inputs 'a' ",
                  shape_str(a.shape()), " and 'b' ", shape_str(b.shape()), " differ in (T, N)");
    const std::int64_t T = a.dim(0), N = a.dim(1), C = ca_ + cb_;
    for (std::int64_t n = 0; n < N; ++n)
        RNNFLOW_CHECK(a.length(n) == b.length(n), "concat: column ", n, " has length ",
                      a.length(n), " in input 'a' but ", b.length(n), " in input 'b'");
    Tensor& y = out.at("out");
    y.resize(DType::f32, {T, N, C});
    y.lengths = a.lengths.empty() ? b.lengths : a.lengths;
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* py = y.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            float* o = py + (t * N + n) * C;
            if (t >= a.length(n)) {
                std::fill_n(o, C, 0.f);
                continue;
            }
            std::memcpy(o, pa + (t * N + n) * ca_, static_cast<std::size_t>(ca_) * sizeof(float));
            std::memcpy(o + ca_, pb + (t * N + n) * cb_, static_cast<std::size_t>(cb_) * sizeof(float));
        }
}

void Concat::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                      Grads& diff_src, const StepInfo& step) {
    (void)out; (void)saved; (void)step;
    const Tensor& a = in.at("a");
    const Tensor& dy = diff_dst.at("out");
    const std::int64_t T = a.dim(0), N = a.dim(1), C = ca_ + cb_;
    RNNFLOW_ASSERT(dy.numel() == T * N * C);
    const float* g = dy.data<float>();
    for (int side = 0; side < 2; ++side) {
        const char* name = side == 0 ? "a" : "b";
        if (!diff_src.has(name)) continue;
        const std::int64_t w = side == 0 ? ca_ : cb_, off = side == 0 ? 0 : ca_;
        Tensor& d = diff_src.at(name);
        d.resize(DType::f32, {T, N, w});
        d.lengths = in.at(name).lengths;
        float* pd = d.data<float>();
        for (std::int64_t t = 0; t < T; ++t)
            for (std::int64_t n = 0; n < N; ++n) {
                float* r = pd + (t * N + n) * w;
                if (t >= a.length(n)) std::fill_n(r, w, 0.f);
                else std::memcpy(r, g + (t * N + n) * C + off, static_cast<std::size_t>(w) * sizeof(float));
            }
    }
}

}  // namespace rnnflow::stages
