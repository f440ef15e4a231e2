#include "dropout.hpp"

#include "dropout_mask.hpp"
#include "pipeline/core/cpu.hpp"

#include <algorithm>
#include <cstring>

namespace rnnflow::stages {

StageSchema Dropout::schema() {
    return StageSchema("dropout", "randomly zero activations in training (inverted dropout)",
                       Role::model)
        .input("in", PortType::tensor, "activations (T, N, C) + lengths")
        .output("out", PortType::tensor, "(T, N, C): in * mask / (1 - p) in training, in otherwise")
        .param_float("p", 0.5, Range{0, 0.95}, "probability of zeroing each element in training")
        .differentiable()
        .details("Training: out = in * m / (1 - p), m ~ Bernoulli(1 - p) per element, from a hash "
                 "of (seed, epoch, batch, element); evaluation and prediction: out = in. 0 at "
                 "padded steps. Ref: Srivastava et al. 2014.");
}

Dropout::Dropout(const Params& p) : p_(p.get_float("p")) {}

void Dropout::prepare(PrepareContext& ctx) {
    channels_ = ctx.input_info("in").channels;
    RNNFLOW_CHECK(channels_ > 0, "dropout needs the channel count of input 'in', got ", channels_);
    seed_ = ctx.rng()();
    PortInfo out;
    out.type = PortType::tensor;
    out.channels = channels_;
    ctx.set_output_info("out", out);
}

namespace {

// DropoutMask::row, compiled twice like the loss kernels: for AVX-512 (64-bit vector multiplies,
// chosen at run time; the project builds for baseline x86-64) and for the baseline. The same
// integer arithmetic as DropoutMask::at, so the same mask on either path.
#define RNNFLOW_DROPOUT_KERNEL(SUFFIX, ATTR)                                                       \
    ATTR void mask_row_##SUFFIX(const float* src, float* dst,                                     \
                                std::int64_t C, std::uint64_t key, std::uint64_t e0,              \
                                std::uint64_t threshold, float keep) {                            \
        _Pragma("omp simd") for (std::int64_t c = 0; c < C; ++c) {                                 \
            const std::uint64_t h = splitmix64(key + e0 + static_cast<std::uint64_t>(c));                 \
            dst[c] = src[c] * ((h >> 40) >= threshold ? keep : 0.f);                               \
        }                                                                                          \
    }

#ifdef RNNFLOW_AVX512
RNNFLOW_DROPOUT_KERNEL(avx512, RNNFLOW_AVX512_TARGET)
#endif
RNNFLOW_DROPOUT_KERNEL(base, )
#undef RNNFLOW_DROPOUT_KERNEL

}  // namespace

void DropoutMask::row(const float* src, float* dst, std::int64_t C, std::uint64_t e0) const {
    RNNFLOW_PICK_KERNEL(mask_row)(src, dst, C, key, e0, threshold, keep);
}

// The key is a hash of (seed, epoch, batch); element e = (t·N + n)·C + c. Rows run in parallel:
// the mask depends only on e, never on the thread.
void Dropout::apply(const float* src, float* dst, const Tensor& x, const StepInfo& step) const {
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_;
    const bool on = step.training() && p_ > 0;
    const DropoutMask mask(p_, batch_key(seed_, step.epoch, step.batch));
    const std::int64_t rows = T * N;
#pragma omp parallel for schedule(static) if (rows * C > (std::int64_t{1} << 15))
    for (std::int64_t row = 0; row < rows; ++row) {
        const std::int64_t t = row / N, n = row % N, r = row * C;
        if (t >= x.length(n))
            std::fill_n(dst + r, C, 0.f);
        else if (!on)
            std::memcpy(dst + r, src + r, static_cast<std::size_t>(C) * sizeof(float));
        else
            mask.row(src + r, dst + r, C, static_cast<std::uint64_t>(r));
    }
}

void Dropout::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved;
    const Tensor& x = in.at("in");
    RNNFLOW_ASSERT(channels_ > 0);  // prepare ran
    RNNFLOW_CHECK(x.dtype() == DType::f32 && x.rank() == 3 && x.dim(2) == channels_,
                  "dropout: input 'in' must be f32 (T, N, ", channels_, "), got ",
                  to_string(x.dtype()), " ", shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_;
    Tensor& y = out.at("out");
    y.resize(DType::f32, {T, N, C});
    y.lengths = x.lengths;
    apply(x.data<float>(), y.data<float>(), x, step);
}

void Dropout::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                       Grads& diff_src, const StepInfo& step) {
    (void)out; (void)saved;
    if (!diff_src.has("in")) return;
    const Tensor& x = in.at("in");
    const Tensor& dy = diff_dst.at("out");
    const std::int64_t T = x.dim(0), N = x.dim(1), C = channels_;
    Tensor& dx = diff_src.at("in");
    dx.resize(DType::f32, {T, N, C});
    dx.lengths = x.lengths;
    apply(dy.data<float>(), dx.data<float>(), x, step);
}

}  // namespace rnnflow::stages
