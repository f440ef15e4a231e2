#include "linear.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <vector>

#include "pipeline/core/cpu.hpp"
#include "pipeline/core/onednn.hpp"

namespace rnnflow::stages {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

// A copy through a reorder; handles bound per call (Linear::copy).
struct Linear::Copy {
    dnnl::reorder prim;
    memory from, to;
    std::vector<dnnl_exec_arg_t> args;
};

struct Linear::Plan {
    dnnl::matmul fwd, bwd_data, bwd_weights;
    dnnl::matmul bwd_weights_set;  // writes diff_weights instead of adding (a stale gradient)
    // Memory objects without buffers; handles are set before every execution.
    memory src, weights, bias, dst;            // fwd: (M, C) · (C, O) + (1, O) → (M, O)
    memory diff_dst, weights_t, diff_src;      // bwd_data: (M, O) · (O, C)ᵀ-view → (M, C)
    memory src_t, diff_weights;                // bwd_weights: (C, M) · (M, O) += (C, O)
    memory fwd_pad, data_pad, weights_pad;     // scratchpads
    // Argument lists for the C API: the C++ execute() builds a vector on every call.
    std::vector<dnnl_exec_arg_t> fwd_args, data_args, weights_args;
    // dtype bf16: f32 → bf16 copies of in (M, C), weight (C, O) and diff_out (M, O); the
    // products read them (bound to the memories above) and write f32.
    Copy to_bf16_x, to_bf16_w, to_bf16_dy;
    // in (M, C) f32 → inᵀ (C, M) in the products' dtype, a real copy: the weight product reads
    // it 1.2-1.3x faster than a transposed view of in (bench/matmul_ceiling).
    Copy to_x_t;
    memory reorder_pad;  // bound to the stage's reorder scratchpad at every execution
};

StageSchema Linear::schema() {
    return StageSchema("linear", "affine map over channels", Role::model)
        .input("in", PortType::tensor, "activations (T, N, C) + lengths")
        .output("out", PortType::tensor, "in · weight + bias (T, N, out_dim), zero at padded steps")
        .required_int("out_dim", Range{1, 1e7}, "output channels O (e.g. vocab.size for logits)")
        .allow_ref()
        .param_bool("bias", true, "add a learned bias (O); starts at zero")
        .param_float("init_scale", 0.0, Range{0, 10},
                     "weights start uniform in [-s, s]; 0 means s = 1/sqrt(C)")
        .param_choice("dtype", "f32", {"f32", "bf16"},
                      "bf16: the three matrix products read bf16 copies of in, weight and the "
                      "output gradient (AMX / AVX512-BF16 where the CPU has them) and write f32; "
                      "weights, gradients and outputs stay f32 (f32 master weights)")
        .differentiable()
        .details("out = in · weight + bias over the channel axis. weight (C, O), bias (O). "
                 "Not supported: weight tying with an embedding (its layout is (V, C)).");
}

Linear::Linear(const Params& p)
    : out_dim_(p.get_int("out_dim")), has_bias_(p.get_bool("bias")),
      init_scale_(p.get_float("init_scale")), bf16_(p.get_string("dtype") == "bf16") {}

Linear::~Linear() = default;
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;

void Linear::prepare(PrepareContext& ctx) {
    const PortInfo& info = ctx.input_info("in");
    RNNFLOW_CHECK(info.channels > 0, "linear needs the channel count of input 'in', got ",
                  info.channels);
    in_dim_ = info.channels;
    const float s = static_cast<float>(init_scale_ > 0 ? init_scale_ : 1.0 / std::sqrt(double(in_dim_)));
    std::uniform_real_distribution<float> uni(-s, s);

    Param& w = params_[0];
    w.name = "weight";
    w.layout = "(C, O)";
    w.value = Tensor::f32({in_dim_, out_dim_});
    w.grad = Tensor::f32({in_dim_, out_dim_});
    w.overwrites_grad = true;  // backward writes a stale gradient (Param::overwrites_grad)
    w.grad_stale = false;
    float* v = w.value.data<float>();
    for (std::int64_t i = 0; i < w.value.numel(); ++i) v[i] = uni(ctx.rng());

    Param& b = params_[1];
    b.name = "bias";
    b.layout = "(O)";
    b.value = has_bias_ ? Tensor::f32({out_dim_}) : Tensor();
    b.grad = has_bias_ ? Tensor::f32({out_dim_}) : Tensor();

    stream_ = std::make_unique<dnnl::stream>(cpu_engine());
    plans_.clear();

    PortInfo out;
    out.type = PortType::tensor;
    out.channels = out_dim_;
    ctx.set_output_info("out", out);
}

// Grow a byte buffer (kept as f32 words for its 64-byte alignment).
static void reserve_bytes(Tensor& buf, std::size_t bytes) {
    const auto words = static_cast<std::int64_t>((bytes + 3) / 4);
    if (buf.numel() < words) buf.resize(DType::f32, {words});
}

Linear::Plan& Linear::plan(std::int64_t m) {
    auto it = plans_.find(m);
    if (it != plans_.end()) return *it->second;

    auto& eng = cpu_engine();
    const memory::dim M = m, C = in_dim_, O = out_dim_;
    const auto f32 = memory::data_type::f32;
    const auto in_t = bf16_ ? memory::data_type::bf16 : f32;  // what the products read
    const memory::desc src_md({M, C}, in_t, tag::ab);
    const memory::desc w_md({C, O}, in_t, tag::ab);
    const memory::desc b_md({1, O}, f32, tag::ab);
    const memory::desc dst_md({M, O}, f32, tag::ab);
    const memory::desc dy_md({M, O}, in_t, tag::ab);     // diff_out as the products read it
    const memory::desc wt_md({O, C}, in_t, tag::ba);    // weight (C, O) seen as Wᵀ (O, C)
    const memory::desc src_t_md({C, M}, in_t, tag::ab); // inᵀ (C, M), copied
    const memory::desc dw_md({C, O}, f32, tag::ab);

    auto p = std::make_unique<Plan>();
    dnnl::primitive_attr attr = user_scratchpad_attr();

    const auto fwd_d = has_bias_ ? dnnl::matmul::desc(src_md, w_md, b_md, dst_md)
                                 : dnnl::matmul::desc(src_md, w_md, dst_md);
    const dnnl::matmul::primitive_desc fwd_pd(fwd_d, attr, eng);
    const memory::desc dsrc_md({M, C}, f32, tag::ab);
    const dnnl::matmul::primitive_desc data_pd(dnnl::matmul::desc(dy_md, wt_md, dsrc_md), attr, eng);
    dnnl::post_ops accumulate;
    accumulate.append_sum(1.0f);  // diff_weights += product, no temporary
    dnnl::primitive_attr wattr = user_scratchpad_attr();
    wattr.set_post_ops(accumulate);
    const dnnl::matmul::primitive_desc weights_pd(dnnl::matmul::desc(src_t_md, dy_md, dw_md), wattr, eng);
    const dnnl::matmul::primitive_desc weights_set_pd(dnnl::matmul::desc(src_t_md, dy_md, dw_md), attr, eng);

    p->fwd = dnnl::matmul(fwd_pd);
    p->bwd_data = dnnl::matmul(data_pd);
    p->bwd_weights = dnnl::matmul(weights_pd);
    p->bwd_weights_set = dnnl::matmul(weights_set_pd);

    auto none = [&](const memory::desc& md) { return memory(md, eng, DNNL_MEMORY_NONE); };
    p->src = none(src_md);
    p->weights = none(w_md);
    p->bias = none(b_md);
    p->dst = none(dst_md);
    p->diff_dst = none(dy_md);
    p->weights_t = none(wt_md);
    p->diff_src = none(dsrc_md);
    p->src_t = none(src_t_md);
    p->diff_weights = none(dw_md);
    p->fwd_pad = none(fwd_pd.scratchpad_desc());
    p->data_pad = none(data_pd.scratchpad_desc());
    p->weights_pad = none(weights_pd.scratchpad_desc().get_size() >= weights_set_pd.scratchpad_desc().get_size()
                              ? weights_pd.scratchpad_desc()
                              : weights_set_pd.scratchpad_desc());
    reserve_bytes(fwd_scratch_, fwd_pd.scratchpad_desc().get_size());
    reserve_bytes(bwd_scratch_, std::max({data_pd.scratchpad_desc().get_size(),
                                          weights_pd.scratchpad_desc().get_size(),
                                          weights_set_pd.scratchpad_desc().get_size()}));

    p->fwd_args = {{DNNL_ARG_SRC, p->src.get()}, {DNNL_ARG_WEIGHTS, p->weights.get()},
                   {DNNL_ARG_DST, p->dst.get()}, {DNNL_ARG_SCRATCHPAD, p->fwd_pad.get()}};
    if (has_bias_) p->fwd_args.push_back({DNNL_ARG_BIAS, p->bias.get()});
    p->data_args = {{DNNL_ARG_SRC, p->diff_dst.get()}, {DNNL_ARG_WEIGHTS, p->weights_t.get()},
                    {DNNL_ARG_DST, p->diff_src.get()}, {DNNL_ARG_SCRATCHPAD, p->data_pad.get()}};
    p->weights_args = {{DNNL_ARG_SRC, p->src_t.get()}, {DNNL_ARG_WEIGHTS, p->diff_dst.get()},
                       {DNNL_ARG_DST, p->diff_weights.get()},
                       {DNNL_ARG_SCRATCHPAD, p->weights_pad.get()}};
    p->reorder_pad = memory(memory::desc({1}, memory::data_type::u8, tag::a), eng, DNNL_MEMORY_NONE);
    auto copy = [&](const memory::desc& from, const memory::desc& to) {
        Copy c{{}, none(from), none(to), {}};
        // User scratchpad as for every primitive here: concurrent runs must not share one.
        const dnnl::reorder::primitive_desc pd(eng, from, eng, to, user_scratchpad_attr());
        c.prim = dnnl::reorder(pd);
        c.args = {{DNNL_ARG_FROM, c.from.get()}, {DNNL_ARG_TO, c.to.get()},
                  {DNNL_ARG_SCRATCHPAD, p->reorder_pad.get()}};
        reserve_bytes(reorder_scratch_, std::max<std::size_t>(pd.scratchpad_desc().get_size(), 64));
        return c;
    };
    // The (M, C) "ba" layout of in_t is inᵀ (C, M) "ab", byte for byte.
    p->to_x_t = copy(memory::desc({M, C}, f32, tag::ab), memory::desc({M, C}, in_t, tag::ba));
    reserve_bytes(x_t_, src_t_md.get_size());
    if (bf16_) {
        p->to_bf16_x = copy(memory::desc({M, C}, f32, tag::ab), src_md);
        p->to_bf16_w = copy(memory::desc({C, O}, f32, tag::ab), w_md);
        p->to_bf16_dy = copy(dst_md, dy_md);
        reserve_bytes(x_bf16_, src_md.get_size());
        reserve_bytes(w_bf16_, w_md.get_size());
        reserve_bytes(dy_bf16_, dy_md.get_size());
    }
    return *plans_.emplace(m, std::move(p)).first->second;
}

static void execute(const dnnl::primitive& prim, dnnl::stream& s,
                    const std::vector<dnnl_exec_arg_t>& args) {
    dnnl::error::wrap_c_api(dnnl_primitive_execute(prim.get(), s.get(), static_cast<int>(args.size()),
                                                   args.data()),
                            "linear: could not execute a matmul");
}

// A copy through a cached reorder (f32 → bf16, or a transpose; handles bound per call).
void Linear::copy(Plan& p, Copy& c, const void* src, void* dst) {
    dnnl::stream& s = *stream_;
    c.from.set_data_handle(const_cast<void*>(src));
    c.to.set_data_handle(dst);
    p.reorder_pad.set_data_handle(reorder_scratch_.raw());
    dnnl::error::wrap_c_api(dnnl_primitive_execute(c.prim.get(), s.get(), static_cast<int>(c.args.size()), c.args.data()),
                            "linear: could not copy a matrix (bf16 or transposed copy)");
    s.wait();
}

// Zero rows (t, n) with t >= length(n) of a time-major (T, N, K) buffer.
static void zero_padding(float* x, const Tensor& like, std::int64_t T, std::int64_t N, std::int64_t K) {
    if (like.lengths.empty()) return;
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n)
            if (t >= like.length(n)) std::fill_n(x + (t * N + n) * K, K, 0.f);
}

static bool has_padding(const Tensor& x) {
    for (std::int64_t n = 0; n < static_cast<std::int64_t>(x.lengths.size()); ++n)
        if (x.length(n) < x.dim(0)) return true;
    return false;
}

void Linear::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    (void)saved; (void)step;
    const Tensor& x = in.at("in");  // (T, N, C)
    Tensor& y = out.at("out");      // (T, N, O)
    RNNFLOW_ASSERT(in_dim_ > 0);    // prepare ran
    RNNFLOW_CHECK(x.rank() == 3 && x.dim(2) == in_dim_, "linear: input 'in' must be (T, N, ",
                  in_dim_, "), got ", shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1), O = out_dim_;
    RNNFLOW_CHECK(x.lengths.empty() || std::ssize(x.lengths) == N, "linear: input 'in' has ",
                  x.lengths.size(), " lengths for ", N, " batch columns");
    y.resize(DType::f32, {T, N, O});
    y.lengths = x.lengths;
    if (T * N == 0) return;

    Plan& p = plan(T * N);
    if (bf16_) {  // the products read bf16 copies of in and weight
        copy(p, p.to_bf16_x, x.raw(), x_bf16_.raw());
        copy(p, p.to_bf16_w, params_[0].value.raw(), w_bf16_.raw());
        p.src.set_data_handle(x_bf16_.raw());
        p.weights.set_data_handle(w_bf16_.raw());
    } else {
        p.src.set_data_handle(const_cast<void*>(x.raw()));  // oneDNN only reads sources
        p.weights.set_data_handle(params_[0].value.raw());
    }
    if (has_bias_) p.bias.set_data_handle(params_[1].value.raw());
    p.dst.set_data_handle(y.raw());
    p.fwd_pad.set_data_handle(fwd_scratch_.raw());
    execute(p.fwd, *stream_, p.fwd_args);
    stream_->wait();
    zero_padding(y.data<float>(), x, T, N, O);
}

namespace {

// db += Σ_rows g: columns in blocks of 256 in parallel, rows added in order in each block (the
// same sums for any number of threads). Compiled twice (pipeline/core/cpu.hpp), rounding alike.
#define RNNFLOW_COLUMN_SUMS(SUFFIX, ATTR)                                                          \
    ATTR void column_sums_##SUFFIX(float* db, const float* g, std::int64_t rows, std::int64_t O) { \
        constexpr std::int64_t kBlock = 256;                                                       \
        const std::int64_t blocks = (O + kBlock - 1) / kBlock;                                     \
        _Pragma("omp parallel for schedule(static) if (rows * O > (1 << 15))")                     \
        for (std::int64_t b = 0; b < blocks; ++b) {                                                \
            const std::int64_t o0 = b * kBlock, o1 = std::min(O, o0 + kBlock);                    \
            float* __restrict acc = db + o0;                                                       \
            for (std::int64_t r = 0; r < rows; ++r) {                                              \
                const float* __restrict row = g + r * O + o0;                                      \
                for (std::int64_t o = 0; o < o1 - o0; ++o) acc[o] += row[o];                       \
            }                                                                                      \
        }                                                                                          \
    }
#ifdef RNNFLOW_AVX512
RNNFLOW_COLUMN_SUMS(avx512, RNNFLOW_AVX512_TARGET)
#endif
RNNFLOW_COLUMN_SUMS(base, )
#undef RNNFLOW_COLUMN_SUMS

}  // namespace

void Linear::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                      Grads& diff_src, const StepInfo& step) {
    (void)out; (void)saved; (void)step;
    const Tensor& x = in.at("in");           // (T, N, C)
    const Tensor& dy = diff_dst.at("out");   // (T, N, O)
    const std::int64_t T = x.dim(0), N = x.dim(1), C = in_dim_, O = out_dim_;
    RNNFLOW_ASSERT(dy.numel() == T * N * O);
    if (T * N == 0) return;

    // Padded outputs are constants: their incoming gradient must not reach anything.
    const float* g = dy.data<float>();
    if (has_padding(x)) {
        if (masked_diff_.numel() < T * N * O) masked_diff_.resize(DType::f32, {T * N * O});
        std::memcpy(masked_diff_.raw(), g, static_cast<std::size_t>(T * N * O) * sizeof(float));
        zero_padding(masked_diff_.data<float>(), x, T, N, O);
        g = masked_diff_.data<float>();
    }

    const float* g32 = g;  // diff_out in f32 (the bias gradient sums it)
    Plan& p = plan(T * N);
    const void* w = params_[0].value.raw();
    if (bf16_) {  // weight's bf16 copy is forward's (the weights have not changed since)
        copy(p, p.to_bf16_dy, g, dy_bf16_.raw());
        g = dy_bf16_.data<float>();  // (bf16 bytes)
        w = w_bf16_.raw();
    }
    copy(p, p.to_x_t, x.raw(), x_t_.raw());
    p.diff_dst.set_data_handle(const_cast<float*>(g));
    if (diff_src.has("in")) {
        Tensor& dx = diff_src.at("in");  // (T, N, C)
        dx.resize(DType::f32, {T, N, C});
        dx.lengths = x.lengths;
        p.weights_t.set_data_handle(const_cast<void*>(w));
        p.diff_src.set_data_handle(dx.raw());
        p.data_pad.set_data_handle(bwd_scratch_.raw());
        execute(p.bwd_data, *stream_, p.data_args);
    }
    p.src_t.set_data_handle(x_t_.raw());
    Param& wp = params_[0];
    p.diff_weights.set_data_handle(wp.grad.raw());
    p.weights_pad.set_data_handle(bwd_scratch_.raw());
    // A stale weight gradient (the optimiser left it: Param::overwrites_grad) is written, saving
    // the read of its old values; else the product is added.
    execute(wp.grad_stale ? p.bwd_weights_set : p.bwd_weights, *stream_, p.weights_args);
    wp.grad_stale = false;
    stream_->wait();

    if (has_bias_) RNNFLOW_PICK_KERNEL(column_sums)(params_[1].grad.data<float>(), g32, T * N, O);
}

}  // namespace rnnflow::stages
