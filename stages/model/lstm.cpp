#include "lstm.hpp"

#include <algorithm>
#include <cstring>
#include <random>
#include <unordered_map>

namespace rnnflow::stages {

namespace {

using dnnl::memory;
using md = dnnl::memory::desc;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Saved::tensors holds kSaved tensors per layer, at layer * kSaved + one of these.
enum SavedSlot : std::size_t {
    kWorkspace,  // oneDNN workspace, forward → backward unchanged
    kDst,        // (T, N, H) this layer's h, exactly as oneDNN wrote it
    kMask,       // (T, N, H) dropout scale 0 or 1/(1-p) on this layer's output (not the last)
    kDropped,    // (T, N, H) dst * mask: the next layer's input
    kH0, kC0,    // (N, H) initial state: carried or zeros
    kHT, kCT,    // (N, H) final state
    kSaved
};

Tensor& slot(Saved& s, std::int64_t layer, SavedSlot k) {
    return s.tensors[static_cast<std::size_t>(layer) * kSaved + k];
}

memory mem(const md& d) { return memory(d, rnnflow::cpu_engine(), DNNL_MEMORY_NONE); }
void bind(memory& m, const void* p) { m.set_data_handle(const_cast<void*>(p)); }

// Grow a byte buffer (kept in an f32 Tensor for its 64-byte alignment); never shrinks.
void reserve_bytes(Tensor& t, std::size_t bytes) {
    if (t.bytes() < bytes) t.resize(DType::f32, {static_cast<std::int64_t>((bytes + 3) / 4)});
}
void resize_bytes(Tensor& t, std::size_t bytes) {
    t.resize(DType::f32, {static_cast<std::int64_t>((bytes + 3) / 4)});
}

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// A primitive with its arguments bound once; data handles change, the map does not.
struct Exec {
    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
    void run(dnnl::stream& s) { prim.execute(s, args); }
};

// A reorder between two layouts of the same weights, with the stage's scratchpad.
Exec make_reorder(const memory& from, const memory& to, memory& scratch) {
    const dnnl::reorder::primitive_desc pd(rnnflow::cpu_engine(), from.get_desc(),
                                           rnnflow::cpu_engine(), to.get_desc(),
                                           rnnflow::user_scratchpad_attr());
    scratch = mem(pd.scratchpad_desc());
    return Exec{dnnl::reorder(pd), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_SCRATCHPAD, scratch}}};
}

}  // namespace

// Everything oneDNN for one (T, N): created once, then only data handles are set per step.
struct Lstm::Prims {
    struct Layer {
        std::int64_t in = 0;  // C_l
        dnnl::lstm_forward::primitive_desc fwd_pd;
        Exec fwd;
        bool fwd_direct = true;   // forward takes the Params' ldigo weights as they are
        Exec to_fwd_wl, to_fwd_wi;
        std::size_t ws_bytes = 0;
        // Memories shared by forward and backward arguments.
        memory src, h0, c0, wl_user, wi_user, wl_fwd, wi_fwd, bias, dst, hT, cT, ws, scratch_fwd;

        bool has_bwd = false;
        Exec bwd;
        bool bwd_direct = false;   // backward takes ldigo weights (it usually wants ldgoi)
        bool diff_direct = true;   // diff weights come back in ldigo: add straight into grads
        Exec to_bwd_wl, to_bwd_wi, diff_to_user_wl, diff_to_user_wi;
        memory wl_bwd, wi_bwd, dsrc, dh0, dc0, dwl, dwi, dbias, ddst, dhT, dcT, scratch_bwd;
        memory dwl_user, dwi_user;
        memory scratch_r[6];
    };
    std::int64_t T = 0, N = 0;
    std::vector<Layer> layers;
};

Lstm::~Lstm() = default;

StageSchema Lstm::schema() {
    return StageSchema("lstm", "stacked left-to-right LSTM (oneDNN)", Role::model)
        .input("in", PortType::tensor, "f32 (T, N, C) + lengths")
        .output("out", PortType::tensor, "f32 (T, N, H): the last layer's h; 0 at padded steps")
        .param_int("hidden", 256, Range{1, 65536}, "H, the size of h and c in every layer")
        .param_int("layers", 1, Range{1, 16}, "the number of stacked LSTM layers")
        .param_float("dropout", 0.0, Range{0, 0.95},
                     "dropout probability on the output of every layer but the last, in training "
                     "only (inverted: kept values scaled by 1/(1-p)); masks are fixed by the seed")
        .param_bool("carry_state", false,
                    "start each batch from the previous batch's final state unless the batch "
                    "resets it (truncated BPTT, kept per split); needs unpadded batches")
        .param_float("init_scale", 0.1, Range{0, 10},
                     "s: weights and biases start uniform in [-s, s] (Zaremba et al. use 0.1, "
                     "0.05, 0.04 for small, medium, large models)")
        .param_float("forget_bias", 0.0, Range{-10, 10},
                     "added to the forget-gate bias at init; 1 helps long memories early on")
        .differentiable()
        .details(
            "i, f, o = sigmoid(x W + h U + b), g = tanh(x W_g + h U_g + b_g), c' = f*c + i*g, "
            "h' = o*tanh(c'). Params per layer l: layer<l>.weights_layer (C_l, 4, H), "
            "layer<l>.weights_iter (H, 4, H) (oneDNN ldigo, gates i, f, g, o) and layer<l>.bias "
            "(4, H). Padded batches give each sequence's own numbers. Ref: Hochreiter & "
            "Schmidhuber 1997; Zaremba et al. 2014. Not supported: bidirectional, peephole, "
            "projection.");
}

Lstm::Lstm(const Params& p)
    : hidden_(p.get_int("hidden")),
      layers_(p.get_int("layers")),
      dropout_(p.get_float("dropout")),
      carry_state_(p.get_bool("carry_state")),
      init_scale_(p.get_float("init_scale")),
      forget_bias_(p.get_float("forget_bias")) {}

void Lstm::prepare(PrepareContext& ctx) {
    channels_ = ctx.input_info("in").channels;
    RNNFLOW_CHECK(channels_ > 0, "input 'in' must have a known channel count > 0, got ", channels_);
    ctx.set_output_info("out", PortInfo{PortType::tensor, hidden_, -1, nullptr});

    const std::int64_t H = hidden_;
    const float s = static_cast<float>(init_scale_);
    std::uniform_real_distribution<float> uni(-s, s);
    auto& rng = ctx.rng();
    params_.clear();
    params_.reserve(static_cast<std::size_t>(3 * layers_));
    for (std::int64_t l = 0; l < layers_; ++l) {
        const std::int64_t in = l == 0 ? channels_ : H;
        const std::string pre = "layer" + std::to_string(l) + ".";
        auto add = [&](const std::string& name, Shape shape, std::string layout) -> Param& {
            Param& p = params_.emplace_back();
            p.name = pre + name;
            p.value = Tensor::f32(shape);
            p.grad = Tensor::f32(std::move(shape));
            p.layout = std::move(layout);
            float* v = p.value.data<float>();
            for (std::int64_t e = 0; e < p.value.numel(); ++e) v[e] = s > 0 ? uni(rng) : 0.f;
            return p;
        };
        add("weights_layer", {in, 4, H}, "(C_in, 4, H) ldigo: input channel, gate i f g o, unit");
        add("weights_iter", {H, 4, H}, "(H, 4, H) ldigo: h channel, gate i f g o, unit");
        Param& b = add("bias", {4, H}, "(4, H) ldgo: gate i f g o, unit");
        for (std::int64_t o = 0; o < H; ++o) b.value.data<float>()[1 * H + o] += static_cast<float>(forget_bias_);
    }
    dropout_seed_ = rng();

    stream_ = dnnl::stream(cpu_engine());
    cache_.clear();
    carried_.clear();
    const auto n = static_cast<std::size_t>(2 * layers_);
    // Default-constructed, not copies: a copy of an empty Tensor is a rank-0 tensor of one
    // element copied from a null pointer (a core bug, reported).
    for (auto* v : {&weights_fwd_, &weights_bwd_, &diff_weights_tmp_, &diff_weights_user_}) {
        v->clear();
        v->resize(n);
    }
}

Lstm::Prims& Lstm::prims(std::int64_t T, std::int64_t N) {
    auto it = cache_.find({T, N});
    if (it != cache_.end()) return *it->second;

    auto p = std::make_unique<Prims>();
    p->T = T;
    p->N = N;
    const std::int64_t H = hidden_;
    for (std::int64_t l = 0; l < layers_; ++l) {
        Prims::Layer& L = p->layers.emplace_back();
        L.in = l == 0 ? channels_ : H;
        const md src_md({T, N, L.in}, dt::f32, tag::tnc);
        const md dst_md({T, N, H}, dt::f32, tag::tnc);
        // Always explicit state memories, zeros when not carried: oneDNN 2.6.3's backward with a
        // zero src_iter desc (documented as "start from zeros") returns a wrong diff_weights_iter
        // (nonzero even for T = 1); the forward is right. Measured, see the lstm tests.
        const md iter_md({1, 1, N, H}, dt::f32, tag::ldnc);
        const md wl_any({1, 1, L.in, 4, H}, dt::f32, tag::any);
        const md wi_any({1, 1, H, 4, H}, dt::f32, tag::any);
        const md bias_md({1, 1, 4, H}, dt::f32, tag::ldgo);
        const dnnl::lstm_forward::desc d(dnnl::prop_kind::forward_training,
                                         dnnl::rnn_direction::unidirectional_left2right,
                                         src_md,            // src_layer (T, N, C_l)
                                         iter_md, iter_md,  // src_iter h, c (1, 1, N, H)
                                         wl_any, wi_any,    // weights: layout chosen by oneDNN
                                         bias_md,           // (1, 1, 4, H)
                                         dst_md,            // dst_layer (T, N, H)
                                         iter_md, iter_md); // dst_iter h, c
        L.fwd_pd = dnnl::lstm_forward::primitive_desc(d, user_scratchpad_attr(), cpu_engine());

        L.src = mem(src_md);
        L.dst = mem(dst_md);
        L.bias = mem(bias_md);
        L.wl_user = mem(md({1, 1, L.in, 4, H}, dt::f32, tag::ldigo));
        L.wi_user = mem(md({1, 1, H, 4, H}, dt::f32, tag::ldigo));
        L.ws = mem(L.fwd_pd.workspace_desc());
        L.ws_bytes = L.fwd_pd.workspace_desc().get_size();
        L.scratch_fwd = mem(L.fwd_pd.scratchpad_desc());
        reserve_bytes(scratchpad_, L.fwd_pd.scratchpad_desc().get_size());
        L.fwd_direct = L.fwd_pd.weights_layer_desc() == L.wl_user.get_desc() &&
                       L.fwd_pd.weights_iter_desc() == L.wi_user.get_desc();
        if (L.fwd_direct) {
            L.wl_fwd = L.wl_user;
            L.wi_fwd = L.wi_user;
        } else {
            L.wl_fwd = mem(L.fwd_pd.weights_layer_desc());
            L.wi_fwd = mem(L.fwd_pd.weights_iter_desc());
            reserve_bytes(weights_fwd_[2 * l], L.wl_fwd.get_desc().get_size());
            reserve_bytes(weights_fwd_[2 * l + 1], L.wi_fwd.get_desc().get_size());
            L.to_fwd_wl = make_reorder(L.wl_user, L.wl_fwd, L.scratch_r[0]);
            L.to_fwd_wi = make_reorder(L.wi_user, L.wi_fwd, L.scratch_r[1]);
        }
        L.h0 = mem(iter_md);
        L.c0 = mem(iter_md);
        L.hT = mem(iter_md);
        L.cT = mem(iter_md);
        L.fwd = Exec{dnnl::lstm_forward(L.fwd_pd),
                     {{DNNL_ARG_SRC_LAYER, L.src}, {DNNL_ARG_SRC_ITER, L.h0},
                      {DNNL_ARG_SRC_ITER_C, L.c0}, {DNNL_ARG_WEIGHTS_LAYER, L.wl_fwd},
                      {DNNL_ARG_WEIGHTS_ITER, L.wi_fwd}, {DNNL_ARG_BIAS, L.bias},
                      {DNNL_ARG_DST_LAYER, L.dst}, {DNNL_ARG_DST_ITER, L.hT},
                      {DNNL_ARG_DST_ITER_C, L.cT}, {DNNL_ARG_WORKSPACE, L.ws},
                      {DNNL_ARG_SCRATCHPAD, L.scratch_fwd}}};
    }
    auto& ref = *p;
    cache_.emplace(std::make_pair(T, N), std::move(p));
    return ref;
}

// The backward primitives of a shape, made at its first backward (evaluation shapes need none).
void Lstm::make_backward(Prims& p) {
    const std::int64_t T = p.T, N = p.N, H = hidden_;
    for (std::size_t l = 0; l < p.layers.size(); ++l) {
        Prims::Layer& L = p.layers[l];
        const md src_md({T, N, L.in}, dt::f32, tag::tnc);
        const md dst_md({T, N, H}, dt::f32, tag::tnc);
        const md iter_md({1, 1, N, H}, dt::f32, tag::ldnc);  // explicit: see prims()
        const md wl_any({1, 1, L.in, 4, H}, dt::f32, tag::any);
        const md wi_any({1, 1, H, 4, H}, dt::f32, tag::any);
        const md bias_md({1, 1, 4, H}, dt::f32, tag::ldgo);
        const dnnl::lstm_backward::desc d(dnnl::prop_kind::backward,
                                          dnnl::rnn_direction::unidirectional_left2right,
                                          src_md, iter_md, iter_md,  // src_layer, src_iter h, c
                                          wl_any, wi_any, bias_md,   // weights, bias
                                          dst_md, iter_md, iter_md,  // dst_layer, dst_iter h, c
                                          src_md, iter_md, iter_md,  // diff_src_layer, _iter h, c
                                          wl_any, wi_any, bias_md,   // diff_weights, diff_bias
                                          dst_md, iter_md, iter_md); // diff_dst_layer, _iter h, c
        const dnnl::lstm_backward::primitive_desc pd(d, user_scratchpad_attr(), cpu_engine(), L.fwd_pd);
        RNNFLOW_ASSERT(pd.workspace_desc() == L.fwd_pd.workspace_desc());

        L.scratch_bwd = mem(pd.scratchpad_desc());
        reserve_bytes(scratchpad_, pd.scratchpad_desc().get_size());
        L.bwd_direct = pd.weights_layer_desc() == L.wl_user.get_desc() &&
                       pd.weights_iter_desc() == L.wi_user.get_desc();
        if (L.bwd_direct) {
            L.wl_bwd = L.wl_user;
            L.wi_bwd = L.wi_user;
        } else {
            L.wl_bwd = mem(pd.weights_layer_desc());
            L.wi_bwd = mem(pd.weights_iter_desc());
            reserve_bytes(weights_bwd_[2 * l], L.wl_bwd.get_desc().get_size());
            reserve_bytes(weights_bwd_[2 * l + 1], L.wi_bwd.get_desc().get_size());
            L.to_bwd_wl = make_reorder(L.wl_user, L.wl_bwd, L.scratch_r[2]);
            L.to_bwd_wi = make_reorder(L.wi_user, L.wi_bwd, L.scratch_r[3]);
        }
        L.diff_direct = pd.diff_weights_layer_desc() == L.wl_user.get_desc() &&
                        pd.diff_weights_iter_desc() == L.wi_user.get_desc();
        if (L.diff_direct) {
            L.dwl = mem(L.wl_user.get_desc());
            L.dwi = mem(L.wi_user.get_desc());
        } else {
            L.dwl = mem(pd.diff_weights_layer_desc());
            L.dwi = mem(pd.diff_weights_iter_desc());
            L.dwl_user = mem(L.wl_user.get_desc());
            L.dwi_user = mem(L.wi_user.get_desc());
            reserve_bytes(diff_weights_tmp_[2 * l], L.dwl.get_desc().get_size());
            reserve_bytes(diff_weights_tmp_[2 * l + 1], L.dwi.get_desc().get_size());
            reserve_bytes(diff_weights_user_[2 * l], L.dwl_user.get_desc().get_size());
            reserve_bytes(diff_weights_user_[2 * l + 1], L.dwi_user.get_desc().get_size());
            L.diff_to_user_wl = make_reorder(L.dwl, L.dwl_user, L.scratch_r[4]);
            L.diff_to_user_wi = make_reorder(L.dwi, L.dwi_user, L.scratch_r[5]);
        }
        for (const auto& r : L.scratch_r)
            if (r) reserve_bytes(scratchpad_, r.get_desc().get_size());
        L.dbias = mem(bias_md);
        L.dsrc = mem(src_md);
        L.ddst = mem(dst_md);
        L.bwd = Exec{dnnl::lstm_backward(pd),
                     {{DNNL_ARG_SRC_LAYER, L.src}, {DNNL_ARG_WEIGHTS_LAYER, L.wl_bwd},
                      {DNNL_ARG_WEIGHTS_ITER, L.wi_bwd}, {DNNL_ARG_BIAS, L.bias},
                      {DNNL_ARG_DST_LAYER, L.dst}, {DNNL_ARG_WORKSPACE, L.ws},
                      {DNNL_ARG_DIFF_SRC_LAYER, L.dsrc}, {DNNL_ARG_DIFF_WEIGHTS_LAYER, L.dwl},
                      {DNNL_ARG_DIFF_WEIGHTS_ITER, L.dwi}, {DNNL_ARG_DIFF_BIAS, L.dbias},
                      {DNNL_ARG_DIFF_DST_LAYER, L.ddst}, {DNNL_ARG_SCRATCHPAD, L.scratch_bwd}}};
        L.dh0 = mem(iter_md);
        L.dc0 = mem(iter_md);
        L.dhT = mem(iter_md);
        L.dcT = mem(iter_md);
        L.bwd.args.insert({{DNNL_ARG_SRC_ITER, L.h0}, {DNNL_ARG_SRC_ITER_C, L.c0},
                           {DNNL_ARG_DST_ITER, L.hT}, {DNNL_ARG_DST_ITER_C, L.cT},
                           {DNNL_ARG_DIFF_SRC_ITER, L.dh0}, {DNNL_ARG_DIFF_SRC_ITER_C, L.dc0},
                           {DNNL_ARG_DIFF_DST_ITER, L.dhT}, {DNNL_ARG_DIFF_DST_ITER_C, L.dcT}});
        L.has_bwd = true;
    }
}

void Lstm::make_mask(Tensor& mask, const StepInfo& step, std::int64_t layer) const {
    const std::uint64_t key = splitmix64(dropout_seed_ ^ splitmix64(static_cast<std::uint64_t>(step.epoch) ^
                              splitmix64(static_cast<std::uint64_t>(step.batch) ^
                              splitmix64(static_cast<std::uint64_t>(layer)))));
    // Keep when the top 24 bits of the hash reach p * 2^24.
    const auto threshold = static_cast<std::uint64_t>(dropout_ * double(1 << 24));
    const float scale = static_cast<float>(1.0 / (1.0 - dropout_));
    float* m = mask.data<float>();
    for (std::int64_t e = 0; e < mask.numel(); ++e)
        m[e] = (splitmix64(key + static_cast<std::uint64_t>(e)) >> 40) >= threshold ? scale : 0.f;
}

void Lstm::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    const Tensor& x = in.at("in");  // (T, N, C)
    RNNFLOW_CHECK(x.dtype() == DType::f32 && x.rank() == 3 && x.dim(2) == channels_,
                  "input 'in' must be f32 (T, N, ", channels_, "), got ", to_string(x.dtype()), " ",
                  shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1), H = hidden_;
    RNNFLOW_CHECK(T > 0 && N > 0, "input 'in' is empty: ", shape_str(x.shape()));
    RNNFLOW_CHECK(x.lengths.empty() || static_cast<std::int64_t>(x.lengths.size()) == N,
                  "input 'in' has ", x.lengths.size(), " lengths for ", N, " columns");
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t len = x.length(n);
        RNNFLOW_CHECK(len >= 0 && len <= T, "input 'in' column ", n, " has length ", len,
                      ", outside [0, ", T, "]");
        if (carry_state_ && len != T)
            throw Error(detail::concat("carry_state needs every column to run all ", T,
                                       " steps (the final state of a padded column is not its "
                                       "last valid state), but column ", n, " has length ", len),
                        "batch continuous text (e.g. lm_batches) or set carry_state: false");
    }

    Prims& p = prims(T, N);
    saved.tensors.resize(static_cast<std::size_t>(layers_) * kSaved);
    const bool drop = dropout_on(step);
    std::vector<Tensor>* carry = nullptr;
    if (carry_state_) {
        carry = &carried_[step.split];
        if (!step.reset_state && !carry->empty())
            RNNFLOW_CHECK(carry->front().dim(0) == N, "carry_state: this batch has ", N,
                          " columns, the previous '", step.split, "' batch had ",
                          carry->front().dim(0), "; the carried state cannot continue it");
    }
    const bool from_carry = carry && !step.reset_state && !carry->empty();

    for (std::int64_t l = 0; l < layers_; ++l) {
        Prims::Layer& L = p.layers[static_cast<std::size_t>(l)];
        Tensor* sv = &slot(saved, l, kWorkspace);
        const Tensor& src = l == 0 ? x : slot(saved, l - 1, drop ? kDropped : kDst);
        const Param* w = &params_[static_cast<std::size_t>(3 * l)];
        resize_bytes(sv[kWorkspace], L.ws_bytes);
        sv[kDst].resize(DType::f32, {T, N, H});
        bind(L.src, src.raw());
        bind(L.dst, sv[kDst].raw());
        bind(L.ws, sv[kWorkspace].raw());
        bind(L.wl_user, w[0].value.raw());
        bind(L.wi_user, w[1].value.raw());
        bind(L.bias, w[2].value.raw());
        bind(L.scratch_fwd, scratchpad_.raw());
        if (!L.fwd_direct) {
            bind(L.wl_fwd, weights_fwd_[2 * l].raw());
            bind(L.wi_fwd, weights_fwd_[2 * l + 1].raw());
            bind(L.scratch_r[0], scratchpad_.raw());
            bind(L.scratch_r[1], scratchpad_.raw());
            L.to_fwd_wl.run(stream_);
            L.to_fwd_wi.run(stream_);
        }
        for (auto k : {kH0, kC0, kHT, kCT}) sv[k].resize(DType::f32, {N, H});
        if (from_carry) {
            std::memcpy(sv[kH0].raw(), (*carry)[2 * l].raw(), sv[kH0].bytes());
            std::memcpy(sv[kC0].raw(), (*carry)[2 * l + 1].raw(), sv[kC0].bytes());
        } else {
            sv[kH0].zero();
            sv[kC0].zero();
        }
        bind(L.h0, sv[kH0].raw());
        bind(L.c0, sv[kC0].raw());
        bind(L.hT, sv[kHT].raw());
        bind(L.cT, sv[kCT].raw());
        L.fwd.run(stream_);
        stream_.wait();

        if (drop && l + 1 < layers_) {
            sv[kMask].resize(DType::f32, {T, N, H});
            sv[kDropped].resize(DType::f32, {T, N, H});
            make_mask(sv[kMask], step, l);
            const float* y = sv[kDst].data<float>();
            const float* m = sv[kMask].data<float>();
            float* d = sv[kDropped].data<float>();
            for (std::int64_t e = 0; e < T * N * H; ++e) d[e] = y[e] * m[e];
        }
    }
    if (carry) {
        carry->resize(static_cast<std::size_t>(2 * layers_));
        for (std::int64_t l = 0; l < layers_; ++l) {
            const Tensor* sv = &slot(saved, l, kWorkspace);
            (*carry)[2 * l] = sv[kHT];  // copy-assign reuses the allocation
            (*carry)[2 * l + 1] = sv[kCT];
        }
    }

    // out = last layer's h, zero at padded steps.
    Tensor& y = out.at("out");
    y.resize(DType::f32, {T, N, H});
    y.lengths = x.lengths;
    const float* h = slot(saved, layers_ - 1, kDst).data<float>();
    float* o = y.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t off = (t * N + n) * H;
            if (t < x.length(n)) std::memcpy(o + off, h + off, static_cast<std::size_t>(H) * sizeof(float));
            else std::fill(o + off, o + off + H, 0.f);
        }
}

void Lstm::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                    Grads& diff_src, const StepInfo& step) {
    (void)out;
    const Tensor& x = in.at("in");  // (T, N, C)
    const std::int64_t T = x.dim(0), N = x.dim(1), H = hidden_;
    RNNFLOW_ASSERT(saved.tensors.size() == static_cast<std::size_t>(layers_) * kSaved);
    Prims& p = prims(T, N);
    if (!p.layers.front().has_bwd) make_backward(p);
    const bool drop = dropout_on(step);

    // diff wrt out, zero at padded steps: then every gradient at padded steps is exactly zero.
    const Tensor& dy = diff_dst.at("out");  // (T, N, H)
    RNNFLOW_CHECK(dy.shape() == (Shape{T, N, H}), "diff_dst 'out' must be ",
                  shape_str({T, N, H}), ", got ", shape_str(dy.shape()));
    diff_dst_.resize(DType::f32, {T, N, H});
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t off = (t * N + n) * H;
            float* d = diff_dst_.data<float>() + off;
            if (t < x.length(n)) std::memcpy(d, dy.data<float>() + off, static_cast<std::size_t>(H) * sizeof(float));
            else std::fill(d, d + H, 0.f);
        }
    const std::int64_t widest = std::max(channels_, H);
    for (auto& b : diff_layer_) reserve_bytes(b, static_cast<std::size_t>(T * N * widest) * sizeof(float));
    reserve_bytes(diff_iter_sink_, static_cast<std::size_t>(N * H) * sizeof(float));
    diff_iter_zero_.resize(DType::f32, {N, H});
    diff_iter_zero_.zero();
    Tensor* want_dx = diff_src.has("in") ? &diff_src.at("in") : nullptr;
    if (want_dx) {
        want_dx->resize(DType::f32, {T, N, channels_});
        want_dx->lengths = x.lengths;
    }

    const Tensor* ddst = &diff_dst_;
    for (std::int64_t l = layers_ - 1; l >= 0; --l) {
        Prims::Layer& L = p.layers[static_cast<std::size_t>(l)];
        Tensor* sv = &slot(saved, l, kWorkspace);
        const Tensor& src = l == 0 ? x : slot(saved, l - 1, drop ? kDropped : kDst);
        Param* w = &params_[static_cast<std::size_t>(3 * l)];
        Tensor& dsrc = l == 0 && want_dx ? *want_dx : diff_layer_[l % 2];

        bind(L.src, src.raw());
        bind(L.dst, sv[kDst].raw());
        bind(L.ws, sv[kWorkspace].raw());
        bind(L.wl_user, w[0].value.raw());
        bind(L.wi_user, w[1].value.raw());
        bind(L.bias, w[2].value.raw());
        bind(L.dsrc, dsrc.raw());
        bind(L.ddst, ddst->raw());
        bind(L.dbias, w[2].grad.raw());
        bind(L.scratch_bwd, scratchpad_.raw());
        for (auto& r : L.scratch_r)
            if (r) bind(r, scratchpad_.raw());
        // Weights change every optimiser step: reorder into the backward layout every call.
        if (!L.bwd_direct) {
            bind(L.wl_bwd, weights_bwd_[2 * l].raw());
            bind(L.wi_bwd, weights_bwd_[2 * l + 1].raw());
            L.to_bwd_wl.run(stream_);
            L.to_bwd_wi.run(stream_);
        }
        if (L.diff_direct) {  // oneDNN adds into diff weights: straight into the grads
            bind(L.dwl, w[0].grad.raw());
            bind(L.dwi, w[1].grad.raw());
        } else {
            bind(L.dwl, diff_weights_tmp_[2 * l].raw());
            bind(L.dwi, diff_weights_tmp_[2 * l + 1].raw());
            bind(L.dwl_user, diff_weights_user_[2 * l].raw());
            bind(L.dwi_user, diff_weights_user_[2 * l + 1].raw());
            std::memset(diff_weights_tmp_[2 * l].raw(), 0, diff_weights_tmp_[2 * l].bytes());
            std::memset(diff_weights_tmp_[2 * l + 1].raw(), 0, diff_weights_tmp_[2 * l + 1].bytes());
        }
        bind(L.h0, sv[kH0].raw());
        bind(L.c0, sv[kC0].raw());
        bind(L.hT, sv[kHT].raw());
        bind(L.cT, sv[kCT].raw());
        bind(L.dh0, diff_iter_sink_.raw());  // truncated BPTT: dropped
        bind(L.dc0, diff_iter_sink_.raw());
        bind(L.dhT, diff_iter_zero_.raw());
        bind(L.dcT, diff_iter_zero_.raw());
        L.bwd.run(stream_);
        if (!L.diff_direct) {
            L.diff_to_user_wl.run(stream_);
            L.diff_to_user_wi.run(stream_);
        }
        stream_.wait();
        if (!L.diff_direct)
            for (int k = 0; k < 2; ++k) {
                const float* a = diff_weights_user_[2 * l + k].data<float>();
                float* g = w[k].grad.data<float>();
                for (std::int64_t e = 0; e < w[k].grad.numel(); ++e) g[e] += a[e];
            }

        if (l > 0 && drop) {  // through the dropout between layer l-1 and l
            const float* m = slot(saved, l - 1, kMask).data<float>();
            float* d = dsrc.data<float>();
            for (std::int64_t e = 0; e < T * N * H; ++e) d[e] *= m[e];
        }
        ddst = &dsrc;
    }
}

std::vector<Tensor> Lstm::carried_state(const std::string& split) const {
    auto it = carried_.find(split);
    return it == carried_.end() ? std::vector<Tensor>{} : it->second;
}

void Lstm::set_carried_state(const std::string& split, std::vector<Tensor> state) {
    RNNFLOW_CHECK(state.empty() || static_cast<std::int64_t>(state.size()) == 2 * layers_,
                  "carried state needs ", 2 * layers_, " tensors (h, c per layer), got ", state.size());
    for (const auto& s : state)
        RNNFLOW_CHECK(s.rank() == 2 && s.dim(1) == hidden_ && s.dim(0) == state.front().dim(0),
                      "carried state tensors must be (N, ", hidden_, "), got ", shape_str(s.shape()));
    carried_[split] = std::move(state);
}

}  // namespace rnnflow::stages
