#include "recurrent.hpp"

#include "dropout_mask.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <random>
#include <type_traits>
#include <unordered_map>
#include <variant>


namespace rnnflow::stages {

namespace {

using dnnl::memory;
using md = dnnl::memory::desc;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Weight kinds, in the order of each (layer, direction)'s params (absent kinds skipped).
enum Kind : int { kWl, kWi, kBias, kPeep, kProj, kKinds };
constexpr int kWeightArg[kKinds] = {DNNL_ARG_WEIGHTS_LAYER, DNNL_ARG_WEIGHTS_ITER, DNNL_ARG_BIAS,
                                    DNNL_ARG_WEIGHTS_PEEPHOLE, DNNL_ARG_WEIGHTS_PROJECTION};
constexpr int kDiffArg[kKinds] = {DNNL_ARG_DIFF_WEIGHTS_LAYER, DNNL_ARG_DIFF_WEIGHTS_ITER,
                                  DNNL_ARG_DIFF_BIAS, DNNL_ARG_DIFF_WEIGHTS_PEEPHOLE,
                                  DNNL_ARG_DIFF_WEIGHTS_PROJECTION};

// Saved::tensors holds kSlots tensors per (layer, direction), at (l * D + d) * kSlots + slot.
enum Slot : std::size_t {
    kSrc,  // (rows, C_l) packed layer input, when it is not x itself or the layer below's kDst
    kDst,  // (rows, H') packed output, as oneDNN wrote it
    kWs,   // workspaces of every chunk, forward → backward unchanged
    kH,    // (boundary rows, H') h at every chunk boundary: initial, then each chunk's dst_iter
    kC,    // (boundary rows, H) c likewise (lstm)
    kSlots
};

memory mem(const md& d) { return memory(d, rnnflow::cpu_engine(), DNNL_MEMORY_NONE); }

void resize_bytes(Tensor& t, std::size_t bytes) {
    t.resize(DType::f32, {static_cast<std::int64_t>((bytes + 3) / 4)});
}
void reserve_bytes(Tensor& t, std::size_t bytes) {
    if (t.bytes() < bytes) resize_bytes(t, bytes);
}
std::size_t align64(std::size_t b) { return (b + 63) / 64 * 64; }

// bf16 storage of f32 values: round to nearest even (NaN kept a NaN), and back by widening.
std::uint16_t to_bf16(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>(u >> 16);
}
float from_bf16(std::uint16_t h) {
    const std::uint32_t u = std::uint32_t{h} << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Packed activations (layer inputs and outputs, h) in f32 or bf16: element access by index.
struct Act {
    bool bf16;
    std::size_t es() const { return bf16 ? 2 : 4; }
    std::byte* at(void* base, std::int64_t i) const { return static_cast<std::byte*>(base) + i * static_cast<std::int64_t>(es()); }
    const std::byte* at(const void* base, std::int64_t i) const {
        return static_cast<const std::byte*>(base) + i * static_cast<std::int64_t>(es());
    }
    float get(const void* base, std::int64_t i) const {
        return bf16 ? from_bf16(static_cast<const std::uint16_t*>(base)[i]) : static_cast<const float*>(base)[i];
    }
    void set(void* base, std::int64_t i, float v) const {
        if (bf16) static_cast<std::uint16_t*>(base)[i] = to_bf16(v);
        else static_cast<float*>(base)[i] = v;
    }
    // n values from f32 into base[i, i + n), and back.
    void put(void* base, std::int64_t i, const float* v, std::int64_t n) const {
        if (!bf16) {
            std::memcpy(static_cast<float*>(base) + i, v, static_cast<std::size_t>(n) * 4);
            return;
        }
        std::uint16_t* d = static_cast<std::uint16_t*>(base) + i;
        for (std::int64_t k = 0; k < n; ++k) d[k] = to_bf16(v[k]);
    }
    void take(const void* base, std::int64_t i, float* v, std::int64_t n) const {
        if (!bf16) {
            std::memcpy(v, static_cast<const float*>(base) + i, static_cast<std::size_t>(n) * 4);
            return;
        }
        const std::uint16_t* s = static_cast<const std::uint16_t*>(base) + i;
        for (std::int64_t k = 0; k < n; ++k) v[k] = from_bf16(s[k]);
    }
};

// Set a memory argument's data handle when the primitive has that argument.
void set_handle(std::unordered_map<int, memory>& args, int arg, const void* p) {
    auto it = args.find(arg);
    if (it != args.end()) it->second.set_data_handle(const_cast<void*>(p));
}

// Every argument an RNN primitive may take; those its descriptor leaves empty are skipped.
constexpr int kFwdArgs[] = {DNNL_ARG_SRC_LAYER, DNNL_ARG_SRC_ITER, DNNL_ARG_SRC_ITER_C,
                            DNNL_ARG_WEIGHTS_LAYER, DNNL_ARG_WEIGHTS_ITER,
                            DNNL_ARG_WEIGHTS_PEEPHOLE, DNNL_ARG_WEIGHTS_PROJECTION, DNNL_ARG_BIAS,
                            DNNL_ARG_DST_LAYER, DNNL_ARG_DST_ITER, DNNL_ARG_DST_ITER_C,
                            DNNL_ARG_WORKSPACE, DNNL_ARG_SCRATCHPAD};
constexpr int kBwdOnlyArgs[] = {
    DNNL_ARG_DIFF_SRC_LAYER, DNNL_ARG_DIFF_SRC_ITER, DNNL_ARG_DIFF_SRC_ITER_C,
    DNNL_ARG_DIFF_WEIGHTS_LAYER, DNNL_ARG_DIFF_WEIGHTS_ITER, DNNL_ARG_DIFF_WEIGHTS_PEEPHOLE,
    DNNL_ARG_DIFF_WEIGHTS_PROJECTION, DNNL_ARG_DIFF_BIAS, DNNL_ARG_DIFF_DST_LAYER,
    DNNL_ARG_DIFF_DST_ITER, DNNL_ARG_DIFF_DST_ITER_C};

std::unordered_map<int, memory> make_args(const dnnl::primitive_desc_base& pd, bool backward) {
    std::unordered_map<int, memory> args;
    auto add = [&](int a) {
        const md d = pd.query_md(dnnl::query::exec_arg_md, a);
        if (d.get_size() > 0 || a == DNNL_ARG_SCRATCHPAD) args.emplace(a, mem(d));
    };
    for (int a : kFwdArgs) add(a);
    if (backward)
        for (int a : kBwdOnlyArgs) add(a);
    return args;
}

// Orthonormal rows or columns (whichever are fewer) of a rows x cols matrix, row-major:
// Gram-Schmidt on Gaussian vectors.
std::vector<double> orthogonal(std::int64_t rows, std::int64_t cols, std::mt19937_64& rng) {
    const bool by_cols = rows >= cols;
    const std::int64_t k = by_cols ? cols : rows, n = by_cols ? rows : cols;  // k vectors of n
    std::normal_distribution<double> g(0.0, 1.0);
    std::vector<double> v(static_cast<std::size_t>(k * n));
    for (auto& e : v) e = g(rng);
    for (std::int64_t a = 0; a < k; ++a) {
        double* va = &v[static_cast<std::size_t>(a * n)];
        for (int pass = 0; pass < 2; ++pass)  // twice is enough (Giraud et al. 2005)
            for (std::int64_t b = 0; b < a; ++b) {
                const double* vb = &v[static_cast<std::size_t>(b * n)];
                double dot = 0;
                for (std::int64_t e = 0; e < n; ++e) dot += va[e] * vb[e];
                for (std::int64_t e = 0; e < n; ++e) va[e] -= dot * vb[e];
            }
        double norm = 0;
        for (std::int64_t e = 0; e < n; ++e) norm += va[e] * va[e];
        norm = std::sqrt(norm);
        for (std::int64_t e = 0; e < n; ++e) va[e] /= norm;
    }
    std::vector<double> m(static_cast<std::size_t>(rows * cols));
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
            m[static_cast<std::size_t>(r * cols + c)] =
                by_cols ? v[static_cast<std::size_t>(c * n + r)] : v[static_cast<std::size_t>(r * n + c)];
    return m;
}

Direction direction_from(const std::string& s) {
    if (s == "right_to_left") return Direction::right_to_left;
    if (s == "bidirectional_concat") return Direction::bidirectional_concat;
    if (s == "bidirectional_sum") return Direction::bidirectional_sum;
    return Direction::left_to_right;
}

}  // namespace

const char* to_string(Cell c) {
    switch (c) {
        case Cell::rnn: return "rnn";
        case Cell::lstm: return "lstm";
        case Cell::gru: return "gru";
    }
    return "?";
}

// How one batch runs: columns sorted by length, time cut into chunks at the distinct lengths.
// Packed layout (rows of one (step, column) each): chunk after chunk, within a chunk step-major
// over its n active columns in sorted order, so chunk j is a dense (t1 - t0, n, C) tnc block.
struct Recurrent::Plan {
    std::int64_t T = 0, N = 0;
    std::vector<std::int32_t> lengths;  // as given, to recognise the same batch in backward
    bool identity = true;               // every column runs T steps: no sort, one chunk
    std::vector<std::int64_t> order;    // sorted position → column
    std::vector<std::int64_t> len;      // by sorted position
    struct Chunk {
        std::int64_t t0, t1, n, row0;
    };
    std::vector<Chunk> chunks;
    std::vector<std::int64_t> bound_row0;  // first row of boundary k (k = 0..K) in state buffers
    std::int64_t bound_rows = 0;           // rows of all boundaries
    std::vector<std::int64_t> end_bound;   // by sorted position: boundary holding its final state
    std::int64_t rows = 0;                 // packed rows = sum of lengths
    std::vector<std::int64_t> grid[2];     // packed row → t * N + n: left-to-right, right-to-left
    // The row of sorted column i's final state in the boundary buffers.
    std::int64_t end_row(std::int64_t i) const { return bound_row0[end_bound[i]] + i; }
};

struct Recurrent::Prim {
    std::int64_t cin = 0, T = 0, N = 0;
    std::variant<dnnl::lstm_forward::primitive_desc, dnnl::gru_forward::primitive_desc,
                 dnnl::lbr_gru_forward::primitive_desc, dnnl::vanilla_rnn_forward::primitive_desc>
        fwd_pd;
    dnnl::primitive fwd, bwd;
    bool has_bwd = false;
    std::size_t ws_bytes = 0;
    md wfwd[kKinds], wbwd[kKinds], dw[kKinds];  // weights layouts each primitive wants
    std::unordered_map<int, memory> fargs, bargs;
};

struct Recurrent::Reorder {
    md from, to;
    dnnl::reorder prim;
    std::unordered_map<int, memory> args;
};

// One batch as forward and backward both see it: sizes, plan, the saved slots, and the layout
// rules they share.
struct Recurrent::Batch {
    const Tensor& x;  // (T, N, C)
    Saved& saved;     // kSlots tensors per (layer, direction), at (l * D + d) * kSlots + slot
    const Plan& P;
    std::int64_t T, N, H, Hp, Y;  // Hp = H': P with projection, else H
    std::int64_t D, S, LD;        // LD = L * D
    bool r2l_only, drop;
    Act act;  // the packed activations' and h's storage
    // The grid (reading order) of direction d.
    int gd(std::int64_t d) const { return r2l_only ? 1 : static_cast<int>(d); }
    // No padding, one direction, left to right: oneDNN reads and writes the ports' own tensors.
    bool direct() const { return P.identity && D == 1 && !r2l_only; }
    // The saved slots of layer l, direction d.
    Tensor* slots(std::int64_t l, std::int64_t d) const {
        return &saved.tensors[static_cast<std::size_t>((l * D + d) * kSlots)];
    }
    // Whether layer l, direction d reads its input where it lies (x, or one direction's layer
    // below without dropout) rather than packed into its own kSrc slot.
    bool in_place(std::int64_t l, std::int64_t d) const {
        return (l == 0 && gd(d) == 0 && P.identity && !act.bf16) || (l > 0 && D == 1 && !drop);
    }
    // Where layer l, direction d reads its packed input (forward wrote it; backward reads it again).
    const void* layer_src(std::int64_t l, std::int64_t d) const {
        if (!in_place(l, d)) return slots(l, d)[kSrc].raw();
        return l == 0 ? x.raw() : slots(l - 1, d)[kDst].raw();
    }
    // Channels of state slot s: h has H', c has H.
    std::int64_t width(std::int64_t s) const { return s == 0 ? Hp : H; }
    // Storage of state slot s: h as the activations, c always f32.
    Act state_act(std::int64_t s) const { return Act{s == 0 && act.bf16}; }
    // Offset of (slot s, layer l, direction d, column n) in an (S, L*D, N, H) state tensor.
    std::int64_t state_at(std::int64_t s, std::int64_t l, std::int64_t d, std::int64_t n) const {
        return ((s * LD + l * D + d) * N + n) * H;
    }
};

// The weights of one (layer, direction) as its primitives take them.
struct Recurrent::WeightSet {
    Param* param[kKinds] = {};  // by kind; null: the cell has none of that kind
    md user[kKinds];            // the params' own layouts: ldigo, ldgo, ldio
    md held[kKinds];            // the layout kind k's reorder buffer holds this call; empty: none
    std::size_t buf0 = 0;       // kind k's reorder buffer: wfwd_ or wbwd_[buf0 + k]
};

Recurrent::~Recurrent() = default;

StageSchema Recurrent::make_schema(const std::string& type, const std::string& summary, Cell cell,
                                   const std::string& details) {
    StageSchema s(type, summary, Role::model);
    s.input("in", PortType::tensor, "f32 (T, N, C) + lengths")
        .optional_input("state", PortType::state,
                        "f32 (S, L*D, N, H) initial state (S = 2 for lstm: h, c; row l*D + d is "
                        "layer l, direction d); absent: zeros or the carried state")
        .output("out", PortType::tensor,
                "f32 (T, N, Y): the last layer's h (Y = H, P with projection, doubled by "
                "bidirectional_concat); 0 at padded steps")
        .output("state", PortType::state,
                "f32 (S, L*D, N, H): each sequence's state after its own last valid step "
                "(right-to-left: after its first token)")
        .param_int("hidden", 256, Range{1, 65536}, "H, the size of h (and c) in every layer")
        .param_int("layers", 1, Range{1, 16}, "the number of stacked layers")
        .param_choice("direction", "left_to_right",
                      {"left_to_right", "right_to_left", "bidirectional_concat", "bidirectional_sum"},
                      "reading order; bidirectional runs both and concatenates or sums the outputs "
                      "(padding exact in every case)");
    switch (cell) {
        case Cell::rnn:
            s.param_choice("activation", "tanh", {"tanh", "relu", "sigmoid"},
                           "the cell's nonlinearity: h' = act(x W + h U + b)");
            break;
        case Cell::lstm:
            s.param_bool("peephole", false,
                         "peephole connections: the i, f gates read c(t-1), the o gate c(t), "
                         "through weights_peephole (3, H)")
                .param_int("projection", 0, Range{0, 65536},
                           "P > 0: project h to P channels (LSTMP) through weights_projection "
                           "(H, P), P < H; 0: none")
                .param_float("forget_bias", 0.0, Range{-10, 10},
                             "added to the forget-gate bias at init; 1 helps long memories early on");
            break;
        case Cell::gru:
            s.param_bool("linear_before_reset", true,
                         "true: n = tanh(x W + b + r * (h U + b_hn)), PyTorch's and cuDNN's GRU "
                         "(oneDNN lbr_gru, 4 bias gates); false: n = tanh(x W + (r * h) U + b), "
                         "the original GRU (oneDNN gru)");
            break;
    }
    s.param_float("dropout", 0.0, Range{0, 0.95},
                  "dropout probability on the output of every layer but the last, in training "
                  "only (inverted: kept values scaled by 1/(1-p)); masks are fixed by the seed")
        .param_bool("carry_state", false,
                    "start each batch from the previous batch's final state unless the batch "
                    "resets it (truncated BPTT, kept per split); excludes a state input")
        .param_choice("initializer", "uniform", {"uniform", "xavier", "orthogonal"},
                      "uniform: every param U[-init_scale, init_scale]; xavier: each gate's "
                      "matrix U[-a, a], a = init_gain sqrt(6 / (fan_in + H)), biases 0; "
                      "orthogonal: weights_iter gate blocks (and projection) init_gain times "
                      "orthogonal, weights_layer xavier, biases 0")
        .param_float("init_scale", 0.1, Range{0, 10},
                     "s for initializer: uniform (Zaremba et al. use 0.1, 0.05, 0.04 for small, medium, "
                     "large models)")
        .param_float("init_gain", 1.0, Range{0, 10}, "gain for initializer: xavier and orthogonal")
        .param_choice("dtype", "f32", {"f32", "bf16"},
                      "bf16: the recurrent products read bf16 (AMX / AVX512-BF16 where the CPU has "
                      "them): layer inputs, outputs, h and bf16 copies of the weights; c, biases, "
                      "gradients and the params stay f32. Faster for wide layers only: with oneDNN "
                      "2.6.3 the bf16 backward is slower than f32 at 200 units, faster at 650 "
                      "(bench/README.md)")
        .differentiable()
        .details(details);
    return s;
}

Recurrent::Recurrent(Cell cell, const Params& p)
    : cell_(cell),
      hidden_(p.get_int("hidden")),
      layers_(p.get_int("layers")),
      direction_(direction_from(p.get_string("direction"))),
      dropout_(p.get_float("dropout")),
      carry_state_(p.get_bool("carry_state")),
      init_(p.get_string("initializer")),
      init_scale_(p.get_float("init_scale")),
      init_gain_(p.get_float("init_gain")),
      forget_bias_(0) {
    bf16_ = p.get_string("dtype") == "bf16";
    es_ = bf16_ ? 2 : 4;
    dirs_ = direction_ == Direction::bidirectional_concat || direction_ == Direction::bidirectional_sum ? 2 : 1;
    if (cell == Cell::rnn) {
        const std::string& a = p.get_string("activation");
        activation_ = a == "relu" ? dnnl::algorithm::eltwise_relu
                      : a == "sigmoid" ? dnnl::algorithm::eltwise_logistic
                                       : dnnl::algorithm::eltwise_tanh;
    } else if (cell == Cell::lstm) {
        peephole_ = p.get_bool("peephole");
        proj_ = p.get_int("projection");
        forget_bias_ = p.get_float("forget_bias");
        RNNFLOW_CHECK(proj_ < hidden_, "'projection' must be smaller than 'hidden' (", hidden_,
                      "), got ", proj_);
        // Measured: oneDNN 2.6.3's bf16 LSTMP backward returns wrong gradients (the forward is
        // right), so the combination is refused rather than trained wrongly.
        if (proj_ > 0 && bf16_)
            throw Error("dtype bf16 with projection: oneDNN 2.6.3's bf16 backward of a projected "
                        "LSTM gives wrong gradients",
                        "use dtype: f32 with projection, or projection: 0 with bf16");
    } else {
        lbr_ = p.get_bool("linear_before_reset");
    }
    per_dir_ = 3 + (peephole_ ? 1 : 0) + (proj_ > 0 ? 1 : 0);
}

std::int64_t Recurrent::gates() const { return cell_ == Cell::lstm ? 4 : cell_ == Cell::gru ? 3 : 1; }
std::int64_t Recurrent::bias_gates() const { return gates() + (cell_ == Cell::gru && lbr_ ? 1 : 0); }
std::int64_t Recurrent::out_channels() const {
    const std::int64_t h = proj_ > 0 ? proj_ : hidden_;
    return direction_ == Direction::bidirectional_concat ? 2 * h : h;
}

void Recurrent::prepare(PrepareContext& ctx) {
    channels_ = ctx.input_info("in").channels;
    RNNFLOW_CHECK(channels_ > 0, "input 'in' must have a known channel count > 0, got ", channels_);
    state_input_ = ctx.connected("state");
    if (state_input_ && carry_state_)
        throw Error("carry_state and a connected 'state' input both set the initial state",
                    "drop one: carry_state: false, or leave 'state' unconnected");
    ctx.set_output_info("out", PortInfo{PortType::tensor, out_channels(), -1, nullptr});
    ctx.set_output_info("state", PortInfo{PortType::state, hidden_, -1, nullptr, dirs_});

    init_params(ctx);
    dropout_seed_ = ctx.rng()();

    stream_ = dnnl::stream(cpu_engine());
    cache_.clear();
    reorders_.clear();
    carried_.clear();
    plan_ = std::make_unique<Plan>();
    const auto n = static_cast<std::size_t>(layers_ * dirs_ * kKinds);
    for (auto* v : {&wfwd_, &wbwd_}) {
        v->clear();
        v->resize(n);
    }
}

void Recurrent::init_params(PrepareContext& ctx) {
    const std::int64_t H = hidden_, G = gates(), Hp = proj_ > 0 ? proj_ : H;
    const std::string mode = init_;
    const float s = static_cast<float>(init_scale_);
    auto& rng = ctx.rng();
    std::uniform_real_distribution<float> uni(-s, s);
    params_.clear();
    params_.reserve(static_cast<std::size_t>(layers_ * dirs_ * per_dir_));
    const char* dname[2] = {"l2r", "r2l"};
    const std::string gate_names = cell_ == Cell::lstm ? "i f g o" : cell_ == Cell::gru ? "u r n" : "h";
    for (std::int64_t l = 0; l < layers_; ++l)
        for (std::int64_t d = 0; d < dirs_; ++d) {
            const std::int64_t in = l == 0 ? channels_ : out_channels();
            const int di = direction_ == Direction::right_to_left ? 1 : static_cast<int>(d);
            const std::string pre = "layer" + std::to_string(l) + "." + dname[di] + ".";
            auto add = [&](const std::string& name, Shape shape, std::string layout) -> Param& {
                Param& p = params_.emplace_back();
                p.name = pre + name;
                p.value = Tensor::f32(shape);
                p.grad = Tensor::f32(std::move(shape));
                p.layout = std::move(layout);
                p.overwrites_grad = true;  // backward clears a stale gradient itself (settle_grad)
                if (mode == "uniform") {
                    float* v = p.value.data<float>();
                    for (std::int64_t e = 0; e < p.value.numel(); ++e) v[e] = s > 0 ? uni(rng) : 0.f;
                }
                return p;
            };
            // Per gate g, block [i, g, o] of an (I, G, H) ldigo tensor.
            auto xavier = [&](Param& p, std::int64_t I, std::int64_t Gn) {
                const float a = static_cast<float>(init_gain_ * std::sqrt(6.0 / double(I + H)));
                std::uniform_real_distribution<float> u(-a, a);
                float* v = p.value.data<float>();
                for (std::int64_t e = 0; e < I * Gn * H; ++e) v[e] = u(rng);
            };
            auto ortho = [&](Param& p, std::int64_t I, std::int64_t Gn) {
                float* v = p.value.data<float>();
                for (std::int64_t g = 0; g < Gn; ++g) {
                    const auto q = orthogonal(I, H, rng);
                    for (std::int64_t i = 0; i < I; ++i)
                        for (std::int64_t o = 0; o < H; ++o)
                            v[(i * Gn + g) * H + o] = static_cast<float>(init_gain_ * q[static_cast<std::size_t>(i * H + o)]);
                }
            };
            Param& wl = add("weights_layer", {in, G, H},
                            "(C_l, G, H) ldigo: input channel, gate " + gate_names + ", unit");
            Param& wi = add("weights_iter", {Hp, G, H},
                            "(H', G, H) ldigo: h channel, gate " + gate_names + ", unit");
            Param& b = add("bias", {bias_gates(), H},
                           std::string("(Gb, H) ldgo: gate ") +
                               (cell_ == Cell::gru && lbr_ ? "u r n hn" : gate_names) + ", unit");
            if (mode != "uniform") {
                xavier(wl, in, G);
                if (mode == "orthogonal") ortho(wi, Hp, G);
                else xavier(wi, Hp, G);
            }
            if (cell_ == Cell::lstm)
                for (std::int64_t o = 0; o < H; ++o) b.value.data<float>()[1 * H + o] += static_cast<float>(forget_bias_);
            if (peephole_) add("weights_peephole", {3, H}, "(3, H): gate i f o, unit");
            if (proj_ > 0) {
                Param& r = add("weights_projection", {H, proj_}, "(H, P) ldio: h unit, output channel");
                if (mode == "orthogonal") {
                    const auto q = orthogonal(H, proj_, rng);
                    for (std::int64_t e = 0; e < H * proj_; ++e)
                        r.value.data<float>()[e] = static_cast<float>(init_gain_ * q[static_cast<std::size_t>(e)]);
                } else if (mode == "xavier") {
                    const float a = static_cast<float>(init_gain_ * std::sqrt(6.0 / double(H + proj_)));
                    std::uniform_real_distribution<float> u(-a, a);
                    for (std::int64_t e = 0; e < H * proj_; ++e) r.value.data<float>()[e] = u(rng);
                }
            }
        }
}

Recurrent::Reorder& Recurrent::reorder(const md& from, const md& to) {
    for (auto& r : reorders_)
        if (r->from == from && r->to == to) return *r;
    auto r = std::make_unique<Reorder>();
    r->from = from;
    r->to = to;
    const dnnl::reorder::primitive_desc pd(cpu_engine(), from, cpu_engine(), to, user_scratchpad_attr());
    r->prim = dnnl::reorder(pd);
    reserve_bytes(scratchpad_, pd.scratchpad_desc().get_size());
    r->args = {{DNNL_ARG_FROM, mem(from)}, {DNNL_ARG_TO, mem(to)}};
    if (pd.scratchpad_desc().get_size() > 0) r->args.emplace(DNNL_ARG_SCRATCHPAD, mem(pd.scratchpad_desc()));
    reorders_.push_back(std::move(r));
    return *reorders_.back();
}

void Recurrent::run_reorder(const md& from, const void* src, const md& to, void* dst) {
    Reorder& r = reorder(from, to);
    set_handle(r.args, DNNL_ARG_FROM, src);
    set_handle(r.args, DNNL_ARG_TO, dst);
    set_handle(r.args, DNNL_ARG_SCRATCHPAD, scratchpad_.raw());
    r.prim.execute(stream_, r.args);
}

// A primitive oneDNN cannot make here: with dtype bf16 most likely the CPU (no AVX-512).
void Recurrent::unsupported(const dnnl::error& e) const {
    if (bf16_ && e.status == dnnl_unimplemented)
        throw Error(std::string("dtype bf16: oneDNN 2.6 has no bf16 ") + to_string(cell_) +
                        " primitive for this CPU (" + e.what() + ")",
                    "use dtype: f32, or a CPU with AVX-512 (AVX512-BF16 or AMX for speed)");
    throw;
}

// The memory descriptors of one layer and direction, shared by the forward and backward
// primitives of a (input channels, steps, columns) shape.
Recurrent::Descs Recurrent::descs(std::int64_t cin, std::int64_t T, std::int64_t N) const {
    const std::int64_t H = hidden_, Hp = proj_ > 0 ? proj_ : H, G = gates();
    // bf16: activations, h and the weight matrices in bf16; c, biases and peepholes in f32. The
    // backward primitive takes every diff tensor in f32 (the only bf16 backward oneDNN 2.6 has).
    const dt a = bf16_ ? dt::bf16 : dt::f32;
    Descs m;
    m.src = md({T, N, cin}, a, tag::tnc);
    m.dst = md({T, N, Hp}, a, tag::tnc);
    // Always explicit state memories, zeros when none: oneDNN 2.6.3's backward with a zero
    // src_iter desc ("start from zeros") returns a wrong diff_weights_iter.
    m.h = md({1, 1, N, Hp}, a, tag::ldnc);
    m.c = md({1, 1, N, H}, dt::f32, tag::ldnc);
    m.wl = md({1, 1, cin, G, H}, a, tag::any);
    m.wi = md({1, 1, Hp, G, H}, a, tag::any);
    m.bias = md({1, 1, bias_gates(), H}, dt::f32, tag::ldgo);
    if (peephole_) m.wp = md({1, 1, 3, H}, dt::f32, tag::ldgo);
    if (proj_ > 0) m.wr = md({1, 1, H, proj_}, a, tag::any);
    m.dsrc = md({T, N, cin}, dt::f32, tag::tnc);
    m.ddst = md({T, N, Hp}, dt::f32, tag::tnc);
    m.dh = md({1, 1, N, Hp}, dt::f32, tag::ldnc);
    // Diff weights in the params' own layouts: oneDNN writes them straight into the grads (its
    // preferred layout pads the rows when G·H is not a multiple of 16, and cost a copy per step).
    m.dwl = md({1, 1, cin, G, H}, dt::f32, tag::ldigo);
    m.dwi = md({1, 1, Hp, G, H}, dt::f32, tag::ldigo);
    if (proj_ > 0) m.dwr = md({1, 1, H, proj_}, dt::f32, tag::ldio);
    return m;
}

// Everything oneDNN for one (input channels, steps, columns): created once, then only data
// handles change.
Recurrent::Prim& Recurrent::prim(std::int64_t cin, std::int64_t T, std::int64_t N) {
    auto it = cache_.find({cin, T, N});
    if (it != cache_.end()) return *it->second;
    auto p = std::make_unique<Prim>();
    p->cin = cin;
    p->T = T;
    p->N = N;
    const Descs m = descs(cin, T, N);
    const md &src = m.src, &dst = m.dst, &h_md = m.h, &c_md = m.c, &wl = m.wl, &wi = m.wi,
             &bias = m.bias, &wp = m.wp, &wr = m.wr;
    const auto fwd = dnnl::prop_kind::forward_training;
    const auto l2r = dnnl::rnn_direction::unidirectional_left2right;
    const auto attr = user_scratchpad_attr();
    auto& eng = cpu_engine();
    const dnnl::primitive_desc_base* base = nullptr;
    try {
        if (cell_ == Cell::lstm) {
            const dnnl::lstm_forward::desc d(fwd, l2r, src, h_md, c_md, wl, wi, wp, wr, bias, dst, h_md, c_md);
            auto& pd = p->fwd_pd.emplace<dnnl::lstm_forward::primitive_desc>(d, attr, eng);
            p->fwd = dnnl::lstm_forward(pd);
            base = &pd;
        } else if (cell_ == Cell::gru && !lbr_) {
            const dnnl::gru_forward::desc d(fwd, l2r, src, h_md, wl, wi, bias, dst, h_md);
            auto& pd = p->fwd_pd.emplace<dnnl::gru_forward::primitive_desc>(d, attr, eng);
            p->fwd = dnnl::gru_forward(pd);
            base = &pd;
        } else if (cell_ == Cell::gru) {
            const dnnl::lbr_gru_forward::desc d(fwd, l2r, src, h_md, wl, wi, bias, dst, h_md);
            auto& pd = p->fwd_pd.emplace<dnnl::lbr_gru_forward::primitive_desc>(d, attr, eng);
            p->fwd = dnnl::lbr_gru_forward(pd);
            base = &pd;
        } else {
            const dnnl::vanilla_rnn_forward::desc d(fwd, activation_, l2r, src, h_md, wl, wi, bias, dst, h_md);
            auto& pd = p->fwd_pd.emplace<dnnl::vanilla_rnn_forward::primitive_desc>(d, attr, eng);
            p->fwd = dnnl::vanilla_rnn_forward(pd);
            base = &pd;
        }
    } catch (const dnnl::error& e) {
        unsupported(e);
    }
    p->fargs = make_args(*base, false);
    p->ws_bytes = base->workspace_desc().get_size();
    reserve_bytes(scratchpad_, base->scratchpad_desc().get_size());
    for (int k = 0; k < kKinds; ++k) p->wfwd[k] = base->query_md(dnnl::query::exec_arg_md, kWeightArg[k]);
    auto& ref = *p;
    cache_.emplace(std::make_tuple(cin, T, N), std::move(p));
    return ref;
}

void Recurrent::make_backward(Prim& p) {
    const Descs m = descs(p.cin, p.T, p.N);
    const md &src = m.src, &dst = m.dst, &h_md = m.h, &c_md = m.c, &wl = m.wl, &wi = m.wi,
             &bias = m.bias, &wp = m.wp, &wr = m.wr, &dsrc = m.dsrc, &ddst = m.ddst, &dh = m.dh,
             &dwl = m.dwl, &dwi = m.dwi, &dwr = m.dwr;
    const auto bwd = dnnl::prop_kind::backward;
    const auto l2r = dnnl::rnn_direction::unidirectional_left2right;
    const auto attr = user_scratchpad_attr();
    auto& eng = cpu_engine();
    // A handle copy, not a base-class pointer: primitive_desc_base has no virtual destructor.
    dnnl::primitive_desc_base base;
    try {
        if (cell_ == Cell::lstm) {
            const dnnl::lstm_backward::desc d(bwd, l2r, src, h_md, c_md, wl, wi, wp, wr, bias, dst, h_md, c_md,
                                              dsrc, dh, c_md, dwl, dwi, wp, dwr, bias, ddst, dh, c_md);
            const dnnl::lstm_backward::primitive_desc pd(
                d, attr, eng, std::get<dnnl::lstm_forward::primitive_desc>(p.fwd_pd));
            p.bwd = dnnl::lstm_backward(pd);
            base = pd;
        } else if (cell_ == Cell::gru) {
            // gru and lbr_gru take the same arguments.
            auto gru_like = [&](auto bwd_type, auto fwd_type) {
                using B = typename decltype(bwd_type)::type;
                using F = typename decltype(fwd_type)::type;
                const typename B::desc d(bwd, l2r, src, h_md, wl, wi, bias, dst, h_md, dsrc, dh, dwl, dwi,
                                         bias, ddst, dh);
                const typename B::primitive_desc pd(d, attr, eng, std::get<typename F::primitive_desc>(p.fwd_pd));
                p.bwd = B(pd);
                base = pd;
            };
            if (lbr_) gru_like(std::type_identity<dnnl::lbr_gru_backward>{}, std::type_identity<dnnl::lbr_gru_forward>{});
            else gru_like(std::type_identity<dnnl::gru_backward>{}, std::type_identity<dnnl::gru_forward>{});
        } else {
            const dnnl::vanilla_rnn_backward::desc d(bwd, activation_, l2r, src, h_md, wl, wi, bias, dst, h_md,
                                                     dsrc, dh, dwl, dwi, bias, ddst, dh);
            const dnnl::vanilla_rnn_backward::primitive_desc pd(
                d, attr, eng, std::get<dnnl::vanilla_rnn_forward::primitive_desc>(p.fwd_pd));
            p.bwd = dnnl::vanilla_rnn_backward(pd);
            base = pd;
        }
    } catch (const dnnl::error& e) {
        unsupported(e);
    }
    RNNFLOW_ASSERT(base.workspace_desc().get_size() == p.ws_bytes);
    p.bargs = make_args(base, true);
    reserve_bytes(scratchpad_, base.scratchpad_desc().get_size());
    for (int k = 0; k < kKinds; ++k) {
        p.wbwd[k] = base.query_md(dnnl::query::exec_arg_md, kWeightArg[k]);
        p.dw[k] = base.query_md(dnnl::query::exec_arg_md, kDiffArg[k]);
    }
    p.has_bwd = true;
}

void Recurrent::make_plan(const Tensor& x) {
    Plan& P = *plan_;
    const std::int64_t T = x.dim(0), N = x.dim(1);
    if (P.T == T && P.N == N && P.lengths == x.lengths && !P.order.empty()) return;
    P.T = T;
    P.N = N;
    P.lengths = x.lengths;
    P.order.resize(static_cast<std::size_t>(N));
    std::iota(P.order.begin(), P.order.end(), 0);
    P.identity = true;
    for (std::int64_t n = 0; n < N; ++n) P.identity = P.identity && x.length(n) == T;
    std::stable_sort(P.order.begin(), P.order.end(),
                     [&](std::int64_t a, std::int64_t b) { return x.length(a) > x.length(b); });
    P.len.resize(static_cast<std::size_t>(N));
    for (std::int64_t i = 0; i < N; ++i) P.len[i] = x.length(P.order[i]);
    P.chunks.clear();
    P.bound_row0.assign(1, 0);
    P.bound_rows = N;
    std::int64_t t0 = 0, row0 = 0;
    for (std::int64_t i = N - 1; i >= 0; --i) {  // distinct lengths, ascending
        const std::int64_t t1 = P.len[i];
        if (t1 <= t0) continue;
        std::int64_t n = i + 1;  // columns with len >= t1: a prefix in sorted order
        P.chunks.push_back({t0, t1, n, row0});
        row0 += (t1 - t0) * n;
        P.bound_row0.push_back(P.bound_rows);
        P.bound_rows += n;
        t0 = t1;
    }
    P.rows = row0;
    P.end_bound.assign(static_cast<std::size_t>(N), 0);
    for (std::int64_t i = 0; i < N; ++i)
        for (std::size_t j = 0; j < P.chunks.size(); ++j)
            if (P.chunks[j].t1 == P.len[i]) P.end_bound[i] = static_cast<std::int64_t>(j) + 1;
    for (auto& g : P.grid) g.resize(static_cast<std::size_t>(P.rows));
    for (const auto& c : P.chunks)
        for (std::int64_t t = c.t0; t < c.t1; ++t)
            for (std::int64_t i = 0; i < c.n; ++i) {
                const std::int64_t r = c.row0 + (t - c.t0) * c.n + i, col = P.order[i];
                P.grid[0][r] = t * N + col;
                P.grid[1][r] = (P.len[i] - 1 - t) * N + col;
            }
}

std::uint64_t Recurrent::mask_key(const StepInfo& step, std::int64_t layer) const {
    return splitmix64(dropout_seed_ ^ splitmix64(static_cast<std::uint64_t>(step.epoch) ^
                      splitmix64(static_cast<std::uint64_t>(step.batch) ^
                      splitmix64(static_cast<std::uint64_t>(layer)))));
}

// Dropout between layers: element e = (t * N + n) * Y + c of a layer's combined output is scaled
// by DropoutMask(dropout, mask_key(step, layer)).at(e) (stages/model/dropout_mask.hpp).

// Forward and backward work on one batch by units, each forward next to its backward: the layer
// input, the initial state, the final state, the chunked primitive calls and the layer output.

// The sizes, plan and saved slots of one batch, made once per forward and once per backward.
Recurrent::Batch Recurrent::batch(const Tensor& x, Saved& saved, const StepInfo& step) {
    make_plan(x);
    const std::int64_t H = hidden_, D = dirs_;
    return Batch{x, saved, *plan_,
                 x.dim(0), x.dim(1), H, proj_ > 0 ? proj_ : H, out_channels(),  // T, N, H, H', Y
                 D, state_slots(), layers_ * D,                                  // D, S, L*D
                 direction_ == Direction::right_to_left, dropout_on(step), Act{bf16_}};
}

// Check that input 'in' is f32 (T, N, C), not empty, with every length in [0, T].
void Recurrent::check_input(const Tensor& x) const {
    RNNFLOW_CHECK(x.dtype() == DType::f32 && x.rank() == 3 && x.dim(2) == channels_,
                  "input 'in' must be f32 (T, N, ", channels_, "), got ", to_string(x.dtype()), " ",
                  shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1);
    RNNFLOW_CHECK(T > 0 && N > 0, "input 'in' is empty: ", shape_str(x.shape()));
    RNNFLOW_CHECK(x.lengths.empty() || static_cast<std::int64_t>(x.lengths.size()) == N,
                  "input 'in' has ", x.lengths.size(), " lengths for ", N, " columns");
    for (std::int64_t n = 0; n < N; ++n)
        RNNFLOW_CHECK(x.length(n) >= 0 && x.length(n) <= T, "input 'in' column ", n, " has length ",
                      x.length(n), ", outside [0, ", T, "]");
}

// The initial state (S, L*D, N, H): the state input, the carried state, or null for zeros.
const float* Recurrent::initial_state_source(const Inputs& in, const StepInfo& step, std::int64_t N) const {
    if (state_input_) {
        const Tensor& st = in.at("state");
        RNNFLOW_CHECK(st.dtype() == DType::f32 && st.shape() == state_shape(N),
                      "input 'state' must be f32 (S, L*D, N, H) = ", shape_str(state_shape(N)),
                      ", got ", to_string(st.dtype()), " ", shape_str(st.shape()));
        return st.data<float>();
    }
    if (carries(step) && !step.reset_state) {
        auto it = carried_.find(step.split);
        if (it != carried_.end() && !it->second.empty()) {
            RNNFLOW_CHECK(it->second.dim(2) == N, "carry_state: this batch has ", N,
                          " columns, the previous '", step.split, "' batch had ",
                          it->second.dim(2), "; the carried state cannot continue it");
            return it->second.data<float>();
        }
    }
    return nullptr;
}

// Pack layer l's input in direction d's reading order into its kSrc slot (dropout applied, bf16
// converted), unless the layer reads it where it lies (Batch::in_place).
void Recurrent::input_forward(const Batch& b, const StepInfo& step, std::int64_t l, std::int64_t d) {
    if (b.in_place(l, d)) return;
    const Plan& P = b.P;
    const Act act = b.act;
    const std::int64_t cin = l == 0 ? channels_ : b.Y;
    const std::vector<std::int64_t>& grid = P.grid[b.gd(d)];
    const DropoutMask mask(dropout_, l > 0 && b.drop ? mask_key(step, l - 1) : 0);
    Tensor* sv = b.slots(l, d);
    resize_bytes(sv[kSrc], static_cast<std::size_t>(P.rows * cin) * es_);
    void* s = sv[kSrc].raw();
    if (l == 0) {
        for (std::int64_t r = 0; r < P.rows; ++r) act.put(s, r * cin, b.x.data<float>() + grid[r] * cin, cin);
    } else if (b.D == 1) {  // with dropout (else in place): the layer below's output, masked
        const void* below = b.slots(l - 1, d)[kDst].raw();
#pragma omp parallel for schedule(static) if (P.rows * cin > (std::int64_t{1} << 15))
        for (std::int64_t r = 0; r < P.rows; ++r) {
            const auto e0 = static_cast<std::uint64_t>(grid[r] * cin);
            if (!act.bf16) {
                mask.row(static_cast<const float*>(below) + r * cin, static_cast<float*>(s) + r * cin, cin, e0);
                continue;
            }
            for (std::int64_t c = 0; c < cin; ++c)
                act.set(s, r * cin + c, act.get(below, r * cin + c) * mask.at(e0 + static_cast<std::uint64_t>(c)));
        }
    } else {  // bidirectional: comb_ holds the layer below's combined output
        const float* cb = comb_.data<float>();
        for (std::int64_t r = 0; r < P.rows; ++r)
            for (std::int64_t c = 0; c < cin; ++c)
                act.set(s, r * cin + c, cb[grid[r] * cin + c] *
                        (b.drop ? mask.at(static_cast<std::uint64_t>(grid[r] * cin + c)) : 1.f));
    }
}

// Where layer l, direction d's diff wrt its input goes: straight into diff_src 'in' when the
// batch is direct, else into dsrc_[d] in packed order.
float* Recurrent::input_diff_buffer(const Batch& b, std::int64_t l, std::int64_t d, Tensor* dx) {
    if (l == 0 && b.direct() && dx) {
        dx->resize(DType::f32, {b.T, b.N, channels_});
        return dx->data<float>();
    }
    dsrc_[d].resize(DType::f32, {std::max<std::int64_t>(b.P.rows, 1), l == 0 ? channels_ : b.Y});
    return dsrc_[d].data<float>();
}

// Hand layer l's input diff (dsrc_) down: to the layer below's packed outputs (ddst_) through the
// dropout mask, or for layer 0 into diff_src 'in' (dx, null when not wanted).
void Recurrent::input_backward(const Batch& b, const StepInfo& step, std::int64_t l, Tensor* dx) {
    const Plan& P = b.P;
    const std::int64_t T = b.T, N = b.N, Y = b.Y, D = b.D;
    if (l > 0) {
        const DropoutMask mask(dropout_, b.drop ? mask_key(step, l - 1) : 0);
        if (D == 1) {
            std::swap(ddst_[0], dsrc_[0]);
            if (b.drop) {
                const auto& grid = P.grid[b.gd(0)];
                float* g = ddst_[0].data<float>();
#pragma omp parallel for schedule(static) if (P.rows * Y > (std::int64_t{1} << 15))
                for (std::int64_t r = 0; r < P.rows; ++r)
                    mask.row(g + r * Y, g + r * Y, Y, static_cast<std::uint64_t>(grid[r] * Y));
            }
            return;
        }
        comb_.resize(DType::f32, {T, N, Y});
        comb_.zero();
        float* cb = comb_.data<float>();
        for (std::int64_t d = 0; d < D; ++d) {
            const float* g = dsrc_[d].data<float>();
            const auto& grid = P.grid[d];
            for (std::int64_t r = 0; r < P.rows; ++r)
                for (std::int64_t c = 0; c < Y; ++c)
                    cb[grid[r] * Y + c] += g[r * Y + c] *
                        (b.drop ? mask.at(static_cast<std::uint64_t>(grid[r] * Y + c)) : 1.f);
        }
        output_backward(b, cb);
        return;
    }
    if (!dx) return;
    dx->lengths = b.x.lengths;
    if (b.direct()) return;  // oneDNN wrote it in place (input_diff_buffer)
    dx->resize(DType::f32, {T, N, channels_});
    dx->zero();
    float* o = dx->data<float>();
    for (std::int64_t d = 0; d < D; ++d) {
        const float* g = dsrc_[d].data<float>();
        const auto& grid = P.grid[b.gd(d)];
        for (std::int64_t r = 0; r < P.rows; ++r)
            for (std::int64_t c = 0; c < channels_; ++c) o[grid[r] * channels_ + c] += g[r * channels_ + c];
    }
}

// Size layer l, direction d's output and boundary-state slots and fill boundary 0 with the
// initial state in sorted order (init null: zeros).
void Recurrent::initial_state_forward(const Batch& b, const float* init, std::int64_t l, std::int64_t d) const {
    const Plan& P = b.P;
    Tensor* sv = b.slots(l, d);
    resize_bytes(sv[kDst], static_cast<std::size_t>(std::max<std::int64_t>(P.rows, 1) * b.Hp) * es_);
    resize_bytes(sv[kH], static_cast<std::size_t>(P.bound_rows * b.Hp) * es_);
    if (b.S == 2) sv[kC].resize(DType::f32, {P.bound_rows, b.H});
    for (std::int64_t s = 0; s < b.S; ++s) {
        const std::int64_t w = b.width(s);
        const Act a = b.state_act(s);
        void* buf = sv[s == 0 ? kH : kC].raw();
        for (std::int64_t i = 0; i < b.N; ++i) {
            if (init)
                a.put(buf, i * w, init + b.state_at(s, l, d, P.order[i]), w);
            else
                std::memset(a.at(buf, i * w), 0, static_cast<std::size_t>(w) * a.es());
        }
    }
}

// Layer l, direction d's diff wrt its initial state (boundary 0 of dh_, dc_) into ds, the
// diff_src 'state' (S, L*D, N, H), in column order.
void Recurrent::initial_state_backward(const Batch& b, Tensor& ds, std::int64_t l, std::int64_t d) const {
    float* o = ds.data<float>();
    for (std::int64_t s = 0; s < b.S; ++s) {
        const std::int64_t wd = b.width(s);
        const float* buf = (s == 0 ? dh_ : dc_).data<float>();
        for (std::int64_t i = 0; i < b.N; ++i)
            std::memcpy(o + b.state_at(s, l, d, b.P.order[i]), buf + i * wd, static_cast<std::size_t>(wd) * 4);
    }
}

// Every column's final state (boundary end_bound[i], row i) into fs (S, L*D, N, H), in column
// order; with projection h fills [0, P) and zeros above.
void Recurrent::final_state_forward(const Batch& b, Tensor& fs) const {
    const Plan& P = b.P;
    fs.resize(DType::f32, state_shape(b.N));
    if (proj_ > 0) fs.zero();
    float* f = fs.data<float>();
    for (std::int64_t l = 0; l < layers_; ++l)
        for (std::int64_t d = 0; d < b.D; ++d) {
            const Tensor* sv = b.slots(l, d);
            for (std::int64_t s = 0; s < b.S; ++s) {
                const std::int64_t w = b.width(s);
                const Act a = b.state_act(s);
                const void* buf = sv[s == 0 ? kH : kC].raw();
                for (std::int64_t i = 0; i < b.N; ++i)
                    a.take(buf, P.end_row(i) * w, f + b.state_at(s, l, d, P.order[i]), w);
            }
        }
}

// Diff states of layer l, direction d at every boundary (dh_, dc_): each column's final-state diff
// (dfinal, null: zeros) where it ends; the chunks write the rest (diff_src_iter of chunk j fills
// the first n_j rows of boundary j).
void Recurrent::final_state_backward(const Batch& b, const float* dfinal, std::int64_t l, std::int64_t d) {
    const Plan& P = b.P;
    dh_.resize(DType::f32, {P.bound_rows, b.Hp});
    if (b.S == 2) dc_.resize(DType::f32, {P.bound_rows, b.H});
    for (std::int64_t s = 0; s < b.S; ++s) {
        const std::int64_t w = b.width(s);
        float* buf = (s == 0 ? dh_ : dc_).data<float>();
        for (std::int64_t i = 0; i < b.N; ++i) {
            float* row = buf + P.end_row(i) * w;
            if (dfinal)
                std::memcpy(row, dfinal + b.state_at(s, l, d, P.order[i]), static_cast<std::size_t>(w) * 4);
            else
                std::fill(row, row + w, 0.f);
        }
    }
}

// The weights of layer l, direction d: each kind's param and its own (user) layout.
Recurrent::WeightSet Recurrent::weight_set(std::int64_t l, std::int64_t d) {
    WeightSet ws;
    Param* w = weights(l, d);
    const int kp[kKinds] = {0, 1, 2, peephole_ ? 3 : -1, proj_ > 0 ? 3 + (peephole_ ? 1 : 0) : -1};
    for (int k = 0; k < kKinds; ++k) {
        if (kp[k] < 0) continue;
        ws.param[k] = &w[kp[k]];
        const Tensor& v = ws.param[k]->value;
        ws.user[k] = k == kWl || k == kWi ? md({1, 1, v.dim(0), v.dim(1), v.dim(2)}, dt::f32, tag::ldigo)
                     : k == kProj         ? md({1, 1, v.dim(0), v.dim(1)}, dt::f32, tag::ldio)
                                          : md({1, 1, v.dim(0), v.dim(1)}, dt::f32, tag::ldgo);
    }
    ws.buf0 = static_cast<std::size_t>((l * dirs_ + d) * kKinds);
    return ws;
}

// Point p's weight argument of kind k at the param itself when the primitive wants the param's
// layout, else at a buffer reordered into the wanted layout (once per call: weights change every
// optimiser step, not per chunk).
void Recurrent::bind_weight(Prim& p, bool bwd, int k, WeightSet& ws) {
    auto& args = bwd ? p.bargs : p.fargs;
    const md& want = bwd ? p.wbwd[k] : p.wfwd[k];
    Tensor& buf = (bwd ? wbwd_ : wfwd_)[ws.buf0 + static_cast<std::size_t>(k)];
    const Tensor& v = ws.param[k]->value;
    if (want == ws.user[k]) {
        set_handle(args, kWeightArg[k], v.raw());
        return;
    }
    if (!(ws.held[k] == want)) {
        reserve_bytes(buf, want.get_size());
        run_reorder(ws.user[k], v.raw(), want, buf.raw());
        ws.held[k] = want;
    }
    set_handle(args, kWeightArg[k], buf.raw());
}

// Point p's data arguments, forward's and the same ones in backward, at chunk j of layer l,
// direction d: its input and output rows, h (and c) at boundaries j and j + 1, its workspace.
void Recurrent::bind_chunk(Prim& p, bool bwd, const Batch& b, std::int64_t l, std::int64_t d,
                           std::size_t j) const {
    auto& a = bwd ? p.bargs : p.fargs;
    const Plan& P = b.P;
    const Plan::Chunk& c = P.chunks[j];
    const std::int64_t Hp = b.Hp, H = b.H;
    const Tensor* sv = b.slots(l, d);
    set_handle(a, DNNL_ARG_SRC_LAYER, b.act.at(b.layer_src(l, d), c.row0 * p.cin));
    set_handle(a, DNNL_ARG_DST_LAYER, b.act.at(sv[kDst].raw(), c.row0 * Hp));
    set_handle(a, DNNL_ARG_SRC_ITER, b.act.at(sv[kH].raw(), P.bound_row0[j] * Hp));
    set_handle(a, DNNL_ARG_DST_ITER, b.act.at(sv[kH].raw(), P.bound_row0[j + 1] * Hp));
    if (b.S == 2) {
        set_handle(a, DNNL_ARG_SRC_ITER_C, sv[kC].data<float>() + P.bound_row0[j] * H);
        set_handle(a, DNNL_ARG_DST_ITER_C, sv[kC].data<float>() + P.bound_row0[j + 1] * H);
    }
    set_handle(a, DNNL_ARG_WORKSPACE, static_cast<const std::byte*>(sv[kWs].raw()) + ws_offs_[j]);
    set_handle(a, DNNL_ARG_SCRATCHPAD, scratchpad_.raw());
}

// Each chunk's offset in a (layer, direction)'s workspace slot, into ws_offs_; returns the total.
std::size_t Recurrent::chunk_workspaces(const Plan& P, std::int64_t cin) {
    std::size_t total = 0;
    ws_offs_.clear();
    for (const auto& c : P.chunks) {
        ws_offs_.push_back(total);
        total += align64(prim(cin, c.t1 - c.t0, c.n).ws_bytes);
    }
    return total;
}

// Run layer l, direction d forward chunk by chunk, each chunk's dst_iter the next one's src_iter.
void Recurrent::chunks_forward(const Batch& b, std::int64_t l, std::int64_t d) {
    const std::int64_t cin = l == 0 ? channels_ : b.Y;
    resize_bytes(b.slots(l, d)[kWs], std::max<std::size_t>(chunk_workspaces(b.P, cin), 4));
    WeightSet ws = weight_set(l, d);
    for (std::size_t j = 0; j < b.P.chunks.size(); ++j) {
        const auto& c = b.P.chunks[j];
        Prim& p = prim(cin, c.t1 - c.t0, c.n);
        for (int k = 0; k < kKinds; ++k)
            if (ws.param[k]) bind_weight(p, false, k, ws);
        bind_chunk(p, false, b, l, d, j);
        p.fwd.execute(stream_, p.fargs);
    }
    stream_.wait();
}

// Run layer l, direction d backward chunk by chunk in reverse, each chunk's diff_src_iter the
// diff_dst_iter of the one before; the weight diffs are added into the grads.
void Recurrent::chunks_backward(const Batch& b, float* dsrc, std::int64_t l, std::int64_t d) {
    const Plan& P = b.P;
    const std::int64_t cin = l == 0 ? channels_ : b.Y, Hp = b.Hp, H = b.H;
    WeightSet ws = weight_set(l, d);
    chunk_workspaces(P, cin);
    for (std::size_t j = P.chunks.size(); j-- > 0;) {
        const auto& c = P.chunks[j];
        Prim& p = prim(cin, c.t1 - c.t0, c.n);
        if (!p.has_bwd) make_backward(p);
        auto& a = p.bargs;
        for (int k = 0; k < kKinds; ++k) {
            if (!ws.param[k]) continue;
            bind_weight(p, true, k, ws);
            // oneDNN adds into the diff weights, asked for in the params' layouts
            // (descs): straight into the grads, a stale gradient cleared first.
            RNNFLOW_ASSERT(p.dw[k] == ws.user[k]);
            settle_grad(*ws.param[k]);
            set_handle(a, kDiffArg[k], ws.param[k]->grad.raw());
        }
        bind_chunk(p, true, b, l, d, j);
        set_handle(a, DNNL_ARG_DIFF_SRC_LAYER, dsrc + c.row0 * cin);
        set_handle(a, DNNL_ARG_DIFF_DST_LAYER, ddst_[d].data<float>() + c.row0 * Hp);
        set_handle(a, DNNL_ARG_DIFF_SRC_ITER, dh_.data<float>() + P.bound_row0[j] * Hp);
        set_handle(a, DNNL_ARG_DIFF_DST_ITER, dh_.data<float>() + P.bound_row0[j + 1] * Hp);
        if (b.S == 2) {
            set_handle(a, DNNL_ARG_DIFF_SRC_ITER_C, dc_.data<float>() + P.bound_row0[j] * H);
            set_handle(a, DNNL_ARG_DIFF_DST_ITER_C, dc_.data<float>() + P.bound_row0[j + 1] * H);
        }
        p.bwd.execute(stream_, a);
    }
    stream_.wait();
}

// Layer l's output into y (T, N, Y), zero at padding: one direction's packed output put back in
// place, or both directions concatenated or summed.
void Recurrent::output_forward(const Batch& b, std::int64_t l, Tensor& y) const {
    const Plan& P = b.P;
    const Act act = b.act;
    const std::int64_t Hp = b.Hp, Y = b.Y;
    y.resize(DType::f32, {b.T, b.N, Y});
    if (b.D == 1) {
        const void* h = b.slots(l, 0)[kDst].raw();
        if (P.identity && !b.r2l_only) {
            act.take(h, 0, y.data<float>(), y.numel());
        } else {
            y.zero();
            const auto& grid = P.grid[b.gd(0)];
            for (std::int64_t r = 0; r < P.rows; ++r) act.take(h, r * Y, y.data<float>() + grid[r] * Y, Y);
        }
        return;
    }
    y.zero();
    float* o = y.data<float>();
    for (std::int64_t d = 0; d < b.D; ++d) {
        const void* h = b.slots(l, d)[kDst].raw();
        const auto& grid = P.grid[d];
        const std::int64_t off = direction_ == Direction::bidirectional_concat ? d * Hp : 0;
        for (std::int64_t r = 0; r < P.rows; ++r)
            for (std::int64_t c = 0; c < Hp; ++c) o[grid[r] * Y + off + c] += act.get(h, r * Hp + c);
    }
}

// The diff wrt a layer's output dy (T, N, Y) gathered into each direction's packed ddst_: its
// channel block when concatenated, all of it when summed.
void Recurrent::output_backward(const Batch& b, const float* dy) {
    const Plan& P = b.P;
    const std::int64_t Hp = b.Hp, Y = b.Y;
    for (std::int64_t d = 0; d < b.D; ++d) {
        const auto& grid = P.grid[b.gd(d)];
        ddst_[d].resize(DType::f32, {std::max<std::int64_t>(P.rows, 1), Hp});
        float* g = ddst_[d].data<float>();
        const std::int64_t off = direction_ == Direction::bidirectional_concat ? d * Hp : 0;
        if (b.direct())
            std::memcpy(g, dy, static_cast<std::size_t>(P.rows * Hp) * 4);
        else
            for (std::int64_t r = 0; r < P.rows; ++r)
                std::memcpy(g + r * Hp, dy + grid[r] * Y + off, static_cast<std::size_t>(Hp) * 4);
    }
}

void Recurrent::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    const Tensor& x = in.at("in");  // (T, N, C)
    check_input(x);
    const Batch b = batch(x, saved, step);
    const float* init = initial_state_source(in, step, b.N);  // (S, L*D, N, H); null: zeros
    saved.tensors.resize(static_cast<std::size_t>(b.LD) * kSlots);
    for (std::int64_t l = 0; l < layers_; ++l) {
        for (std::int64_t d = 0; d < b.D; ++d) {
            input_forward(b, step, l, d);
            initial_state_forward(b, init, l, d);
            chunks_forward(b, l, d);
        }
        // The stage's output, or a bidirectional layer's combined output: the next layer's input
        // (one direction reads the layer below's packed output as it is).
        const bool last = l + 1 == layers_;
        if (last || b.D == 2) output_forward(b, l, last ? out.at("out") : comb_);
    }
    out.at("out").lengths = x.lengths;

    const bool want_state = out.has("state");
    if (want_state || carries(step)) {
        Tensor& fs = want_state ? out.at("state") : carried_[step.split];
        final_state_forward(b, fs);
        if (carries(step) && want_state) carried_[step.split] = fs;  // copy reuses the allocation
    }
}

void Recurrent::backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                         Grads& diff_src, const StepInfo& step) {
    (void)out;
    const Tensor& x = in.at("in");  // (T, N, C)
    RNNFLOW_ASSERT(saved.tensors.size() == static_cast<std::size_t>(layers_ * dirs_) * kSlots);
    const Batch b = batch(x, saved, step);

    const Tensor& dy = diff_dst.at("out");  // (T, N, Y)
    RNNFLOW_CHECK(dy.shape() == (Shape{b.T, b.N, b.Y}), "diff_dst 'out' must be ",
                  shape_str({b.T, b.N, b.Y}), ", got ", shape_str(dy.shape()));
    const float* dfinal = nullptr;  // (S, L*D, N, H)
    if (diff_dst.has("state")) {
        const Tensor& ds = diff_dst.at("state");
        RNNFLOW_CHECK(ds.shape() == state_shape(b.N), "diff_dst 'state' must be ",
                      shape_str(state_shape(b.N)), ", got ", shape_str(ds.shape()));
        dfinal = ds.data<float>();
    }
    Tensor* want_dx = diff_src.has("in") ? &diff_src.at("in") : nullptr;
    Tensor* want_ds = state_input_ && diff_src.has("state") ? &diff_src.at("state") : nullptr;
    if (want_ds) {
        want_ds->resize(DType::f32, state_shape(b.N));
        want_ds->zero();
    }

    output_backward(b, dy.data<float>());  // the top layer's diff wrt its packed outputs
    for (std::int64_t l = layers_ - 1; l >= 0; --l) {
        for (std::int64_t d = 0; d < b.D; ++d) {
            float* dsrc = input_diff_buffer(b, l, d, want_dx);
            final_state_backward(b, dfinal, l, d);
            chunks_backward(b, dsrc, l, d);
            // The diff wrt the initial state; dropped for a carried or zero state.
            if (want_ds) initial_state_backward(b, *want_ds, l, d);
        }
        input_backward(b, step, l, want_dx);
    }
}

Tensor Recurrent::carried_state(const std::string& split) const {
    auto it = carried_.find(split);
    return it == carried_.end() ? Tensor{} : it->second;
}

void Recurrent::set_carried_state(const std::string& split, Tensor state) {
    RNNFLOW_CHECK(state.empty() || (state.rank() == 4 && state.shape() == state_shape(state.dim(2))),
                  "carried state must be ", shape_str(state_shape(-1)), " with N columns, got ",
                  shape_str(state.shape()));
    carried_[split] = std::move(state);
}

void Recurrent::save_run_state(StageState& state) const {
    for (const auto& [split, t] : carried_)
        if (!t.empty()) state.put("carried." + split, t);
}

void Recurrent::load_run_state(const StageState& state) {
    carried_.clear();
    for (const auto& [name, t] : state.tensors())
        if (name.rfind("carried.", 0) == 0) set_carried_state(name.substr(8), t);
}

}  // namespace rnnflow::stages
