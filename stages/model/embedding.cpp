#include "embedding.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace rnnflow::stages {

StageSchema Embedding::schema() {
    return StageSchema("embedding", "look up a learned vector per id", Role::model)
        .input("in", PortType::ids, "ids (T, N) + lengths; ids in [0, V), V from the producer")
        .output("out", PortType::tensor, "vectors (T, N, dim), zero at padded steps")
        .param_int("dim", 64, Range{1, 65536}, "size C of each id's vector")
        .param_float("init_scale", 0.1, Range{0, 10},
                     "weights start uniform in [-init_scale, init_scale]")
        .differentiable()
        .details("out[t, n, :] = weight[in[t, n], :] for t < length(n), 0 at padding. "
                 "Param weight (V, C). Ids outside [0, V) are an error. "
                 "Not supported: padding_idx, max_norm, sparse gradients.");
}

Embedding::Embedding(const Params& p)
    : dim_(p.get_int("dim")), init_scale_(p.get_float("init_scale")) {}

void Embedding::prepare(PrepareContext& ctx) {
    const PortInfo& info = ctx.input_info("in");
    RNNFLOW_CHECK(info.classes > 0,
                  "embedding needs the number of distinct ids of input 'in', got ", info.classes,
                  " (connect it to ids that come from a vocabulary)");
    vocab_ = info.classes;
    Param& w = params_[0];
    w.name = "weight";
    w.layout = "(V, C)";
    w.value = Tensor::f32({vocab_, dim_});
    w.grad = Tensor::f32({vocab_, dim_});
    std::uniform_real_distribution<float> uni(static_cast<float>(-init_scale_),
                                              static_cast<float>(init_scale_));
    float* v = w.value.data<float>();
    for (std::int64_t i = 0; i < w.value.numel(); ++i) v[i] = init_scale_ > 0 ? uni(ctx.rng()) : 0.f;

    PortInfo out;
    out.type = PortType::tensor;
    out.channels = dim_;
    ctx.set_output_info("out", out);
}

void Embedding::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved; (void)step;
    const Tensor& ids = in.at("in");     // (T, N)
    Tensor& y = out.at("out");           // (T, N, C)
    RNNFLOW_CHECK(ids.rank() == 2, "embedding: input 'in' must be ids (T, N), got shape ",
                  shape_str(ids.shape()));
    RNNFLOW_ASSERT(vocab_ > 0);  // prepare ran
    const std::int64_t T = ids.dim(0), N = ids.dim(1), C = dim_;
    RNNFLOW_CHECK(ids.lengths.empty() || std::ssize(ids.lengths) == N, "embedding: input 'in' has ",
                  ids.lengths.size(), " lengths for ", N, " batch columns");
    y.resize(DType::f32, {T, N, C});
    y.lengths = ids.lengths;
    const std::int32_t* id = ids.data<std::int32_t>();
    const float* w = params_[0].value.data<float>();
    float* dst = y.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            float* row = dst + (t * N + n) * C;
            if (t >= ids.length(n)) {
                std::fill(row, row + C, 0.f);
                continue;
            }
            const std::int32_t v = id[t * N + n];
            RNNFLOW_CHECK(v >= 0 && v < vocab_, "embedding: id ", v, " at step ", t, ", column ",
                          n, " is outside [0, ", vocab_, ") (V = ", vocab_, ")");
            std::memcpy(row, w + v * C, static_cast<std::size_t>(C) * sizeof(float));
        }
}

void Embedding::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                         Grads& diff_src, const StepInfo& step) {
    (void)out; (void)saved; (void)diff_src; (void)step;
    const Tensor& ids = in.at("in");        // (T, N)
    const Tensor& dy = diff_dst.at("out");  // (T, N, C)
    const std::int64_t T = ids.dim(0), N = ids.dim(1), C = dim_;
    RNNFLOW_ASSERT(dy.numel() == T * N * C);
    const std::int32_t* id = ids.data<std::int32_t>();
    const float* g = dy.data<float>();
    float* dw = params_[0].grad.data<float>();
    // Forward checked every id; sequential so repeated ids add in a fixed order.
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            if (t >= ids.length(n)) continue;
            float* row = dw + static_cast<std::int64_t>(id[t * N + n]) * C;
            const float* src = g + (t * N + n) * C;
            for (std::int64_t c = 0; c < C; ++c) row[c] += src[c];
        }
}

}  // namespace rnnflow::stages
