#include "attention_decoder.hpp"

#include "dropout_mask.hpp"  // splitmix64

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <numeric>
#include <random>

#include <dnnl.h>

#include "stages/fast_math.hpp"

namespace rnnflow::stages {

namespace {

// Row-major C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C on oneDNN's sgemm.
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const float* A,
          std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        for (std::int64_t i = 0; i < M; ++i)
            for (std::int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
        return;
    }
    const dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B,
                                       ldb, beta, C, ldc);
    RNNFLOW_CHECK(s == dnnl_success, "attention_decoder: dnnl_sgemm failed (status ", int(s), ")");
}

// Grow-only buffer: allocates only when a batch is larger than any before.
float* grow(std::vector<float>& v, std::int64_t n) {
    if (static_cast<std::int64_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
    return v.data();
}
template <class T>
T* grow_t(std::vector<T>& v, std::int64_t n) {
    if (static_cast<std::int64_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
    return v.data();
}

inline float sigmoid(float z) { return fast_sigmoid(z); }

// The fused cells of one row; gates in, activations out (restrict: the loops vectorise).
void lstm_row(std::int64_t H, float* __restrict gi, float* __restrict gf, float* __restrict gg,
              float* __restrict go, const float* __restrict cprev, float* __restrict c,
              float* __restrict tc, float* __restrict h) {
    for (std::int64_t j = 0; j < H; ++j) {
        const float i = sigmoid(gi[j]), f = sigmoid(gf[j]), g = fast_tanh(gg[j]), o = sigmoid(go[j]);
        const float cn = f * cprev[j] + i * g;
        const float t = fast_tanh(cn);
        gi[j] = i; gf[j] = f; gg[j] = g; go[j] = o;
        c[j] = cn;
        tc[j] = t;
        h[j] = o * t;
    }
}
// gru (linear before reset): u, r, n gates hold x W + b on entry; hu_* = h U; hn = h U_n + b_hn.
void gru_row(std::int64_t H, float* __restrict gu, float* __restrict gr, float* __restrict gn,
             const float* __restrict hu_u, const float* __restrict hu_r, const float* __restrict hu_n,
             const float* __restrict bhn, const float* __restrict hprev, float* __restrict hn,
             float* __restrict h) {
    for (std::int64_t j = 0; j < H; ++j) {
        const float u = sigmoid(gu[j] + hu_u[j]), r = sigmoid(gr[j] + hu_r[j]);
        const float hv = hu_n[j] + bhn[j];
        const float n = fast_tanh(gn[j] + r * hv);
        gu[j] = u; gr[j] = r; gn[j] = n;
        hn[j] = hv;
        h[j] = u * hprev[j] + (1.f - u) * n;
    }
}

// Dot product over 16 independent partial sums (vectorises; fixed order, so deterministic).
inline float dot(const float* a, const float* b, std::int64_t n) {
    float acc[16] = {};
    std::int64_t e = 0;
    for (; e + 16 <= n; e += 16)
        for (int j = 0; j < 16; ++j) acc[j] += a[e + j] * b[e + j];
    float s = 0.f;
    for (; e < n; ++e) s += a[e] * b[e];
    for (int j = 0; j < 16; ++j) s += acc[j];
    return s;
}

double unit(std::uint64_t h) { return double(h >> 11) * (1.0 / 9007199254740992.0); }

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

struct AttentionDecoder::Work {
    std::int64_t T = 0, N = 0, Ts = 0, rows = 0;
    bool fast = false, dropout = false;
    std::vector<std::int32_t> tokens, src_len, tgt_len;
    // Training forward, rows r = t * N + n.
    std::vector<float> x0;                 // (rows, C_0) layer-0 input
    std::vector<float> xin;                // (rows, H) layer-1 input: dropout(h of layer 0)
    std::vector<float> mask_layer, mask_out;  // (rows, H) dropout masks (scaled), when on
    std::vector<float> gates[2];           // (rows, G*H) gate activations
    std::vector<float> hn[2];              // (rows, H) gru: h U_n + b_hn
    std::vector<float> h[2], c[2];         // ((T + 1) * N, H): block 0 initial, block t+1 step t
    std::vector<float> tc[2];              // (rows, H) lstm tanh(c_t)
    std::vector<float> hu;                 // (rows, G*H) scratch: h U
    std::vector<float> keys;               // (Ts * N, K) projected memory (general, bahdanau)
    std::vector<float> qp, tb;             // bahdanau: (rows, A) W_q h, (rows, Ts, A) tanh
    std::vector<float> alpha;              // (rows, Ts)
    std::vector<float> cat;                // (rows, E + H) [context; h]
    std::vector<float> ht, htd;            // (rows, H) h~ and dropout(h~)
    std::vector<float> bin_h, bin_c, bout_h, bout_c;  // bridge (N, Db) in, (N, L*H) out
    bool have_c = false;                   // the state input has a c (lstm encoder)
    // Backward.
    std::vector<float> dlog, dht, dpre_c, dcat, dkeys, dqp, dx, dbin, dscore;
    std::vector<float> dhin[2], dgx[2], dgh[2], dhc[2], dcc[2];
    // Decoding, rows r = n * beam + k.
    std::vector<float> dec_x, dec_g, dec_hn, dec_tc, dec_hu, dec_h[2], dec_c[2], dec_nh[2],
        dec_nc[2], dec_alpha, dec_cat, dec_qp, dec_tb, dec_ht, dec_nht, dec_logits, hist_alpha;
    std::vector<std::int32_t> dec_tok, hist_tok, hist_parent;
    std::vector<double> score, new_score, logp;
    std::vector<std::int32_t> new_src, new_tok;
    std::vector<std::int64_t> cand;
};

StageSchema AttentionDecoder::schema() {
    return StageSchema("attention_decoder",
                       "recurrent decoder with attention; teacher forcing, greedy and beam decoding",
                       Role::model)
        .input("memory", PortType::tensor, "encoder outputs f32 (Ts, N, E) + lengths; padding masked")
        .optional_input("state", PortType::state,
                        "the encoder's final state (S, L*D, N, H_enc), mapped to the decoder's "
                        "initial state by the bridge")
        .input("target_in", PortType::ids,
               "<sos> y1 .. yn (Tt, N) + lengths; its vocabulary must have <sos> and <eos>")
        .output("logits", PortType::tensor,
                "teacher-forced scores (Tt, N, V), 0 at padding (infer: (1, N, V), lengths 0)")
        .output("hypothesis", PortType::ids,
                "decoded ids without <sos>/<eos> (Th, N) + lengths, in evaluate and infer phases "
                "(train: (1, N), lengths 0)")
        .output("attention", PortType::tensor,
                "attention weights of the hypothesis (Th, N, Ts) + lengths, rows sum to 1 over the "
                "source's valid positions (train: (1, N, Ts), lengths 0)")
        .param_choice("cell", "lstm", {"lstm", "gru"}, "decoder cell (gru: linear-before-reset)")
        .param_int("hidden", 256, Range{1, 65536}, "H, size of h (and c, and h~)")
        .param_int("layers", 1, Range{1, 2}, "stacked decoder layers")
        .param_int("embedding_dim", 64, Range{1, 65536}, "size of the target embedding")
        .param_choice("attention", "general", {"bahdanau", "dot", "general"},
                      "scoring: additive v.tanh(W_q h + W_k m), dot h.m (needs E = hidden), "
                      "general h.(W_a m)")
        .param_int("attention_dim", 0, Range{0, 65536}, "bahdanau: A, width of W_q, W_k, v; 0: hidden")
        .param_bool("input_feeding", false,
                    "feed h~_{t-1} with the next input embedding (Luong); forces the step-by-step "
                    "training path")
        .param_choice("bridge", "linear", {"linear", "zeros"},
                      "initial state: tanh(linear) of the encoder's last-layer state, or zeros")
        .param_float("dropout", 0.0, Range{0.0, 0.99},
                     "inverted dropout (training) between decoder layers and on h~ before the "
                     "output projection")
        .param_float("teacher_forcing", 1.0, Range{0.0, 1.0},
                     "probability of feeding the gold token; below 1, the model's argmax is fed "
                     "otherwise (scheduled sampling, seeded; step-by-step path)")
        .param_choice("decode", "greedy", {"greedy", "beam"}, "decoding in evaluate/infer phases")
        .param_int("beam", 5, Range{1, 256}, "beam width (decode: beam)")
        .param_float("length_penalty", 0.0, Range{0.0, 10.0},
                     "GNMT alpha: beam hypotheses ranked by log p / ((5 + |y|) / 6)^alpha; 0: log p")
        .param_float("max_len_ratio", 2.0, Range{0.0, 1000.0},
                     "decoded length limit = max_len_ratio * source length + max_len_offset")
        .param_int("max_len_offset", 10, Range{0, 100000}, "see max_len_ratio")
        .param_float("init_scale", 0.0, Range{0.0, 10.0},
                     "weights start uniform in [-s, s]; 0: s = 1/sqrt(fan in) per matrix "
                     "(embedding 0.1); biases 0")
        .param_float("forget_bias", 1.0, Range{-10.0, 10.0}, "lstm: initial forget-gate bias")
        .differentiable()
        .details(
            "x_t = [emb(y_{t-1}); h~_{t-1}] (input feeding) or emb(y_{t-1}); h_t = cell(x_t, "
            "h_{t-1}) (lstm gates i, f, g, o; gru gates u, r, n, n = tanh(x W_n + b_n + r * (h "
            "U_n + b_hn))); a_t = softmax over valid source positions of score(h_t, m_s); c_t = "
            "sum a_ts m_s; h~_t = tanh([c_t; h_t] W_c + b_c); logits = h~_t W_o + b_o. Bridge "
            "(linear): h_0 = tanh([h_l2r; h_r2l] of the encoder's last layer B_h + b_h) per "
            "decoder layer; lstm c_0 likewise from the encoder's c (zero if it has none). "
            "Params: embedding (V, Ee); layer<l>.weights_layer (C_l, G, H), .weights_iter (H, "
            "G, H), .bias (4, H) (gru: u, r, n, hn); bridge.weights_h (Db, L, H), .bias_h (L, "
            "H), lstm .weights_c, .bias_c; attention.weights (E, H) (general) or "
            ".weights_key (E, A), .weights_query (H, A), .v (A) (bahdanau); combine.weights "
            "(E + H, H), .bias (H); output.weights (H, V), .bias (V). Decoding: greedy or beam "
            "search (finished hypotheses kept until every beam of a sentence ends at <eos> or "
            "the length limit; ranked by log p / ((5 + |y|)/6)^length_penalty, |y| counting "
            "<eos>); beam 1 equals greedy. Refs: Bahdanau et al. 2015; Luong et al. 2015; "
            "Bengio et al. 2015; Wu et al. 2016. Not supported: coverage, local attention, "
            "multi-head attention, weight tying.");
}

AttentionDecoder::AttentionDecoder(const Params& p)
    : lstm_(p.get_string("cell") == "lstm"), H_(p.get_int("hidden")), L_(p.get_int("layers")),
      Ee_(p.get_int("embedding_dim")),
      A_(p.get_int("attention_dim") > 0 ? p.get_int("attention_dim") : p.get_int("hidden")),
      scoring_(p.get_string("attention") == "bahdanau" ? Scoring::bahdanau
               : p.get_string("attention") == "dot"    ? Scoring::dot
                                                       : Scoring::general),
      input_feeding_(p.get_bool("input_feeding")), bridge_linear_(p.get_string("bridge") == "linear"),
      dropout_(p.get_float("dropout")), teacher_forcing_(p.get_float("teacher_forcing")),
      init_scale_(p.get_float("init_scale")), forget_bias_(p.get_float("forget_bias")),
      beam_search_(p.get_string("decode") == "beam"), beam_(p.get_int("beam")),
      length_penalty_(p.get_float("length_penalty")), max_len_ratio_(p.get_float("max_len_ratio")),
      max_len_offset_(p.get_int("max_len_offset")), seed_(0) {}

AttentionDecoder::~AttentionDecoder() = default;

std::int64_t AttentionDecoder::in_channels(std::int64_t l) const {
    return l == 0 ? Ee_ + (input_feeding_ ? H_ : 0) : H_;
}

Param& AttentionDecoder::param(const std::string& name) {
    for (auto& p : params_)
        if (p.name == name) return p;
    throw Error("attention_decoder has no parameter '" + name + "'");
}

void AttentionDecoder::prepare(PrepareContext& ctx) {
    const PortInfo& mem = ctx.input_info("memory");
    RNNFLOW_CHECK(mem.channels > 0, "attention_decoder needs the channel count of input 'memory', got ",
                  mem.channels);
    E_ = mem.channels;
    const PortInfo& tgt = ctx.input_info("target_in");
    RNNFLOW_CHECK(tgt.vocab != nullptr,
                  "attention_decoder: input 'target_in' carries no vocabulary (connect it to a "
                  "batch source whose targets come from a vocabulary with <sos> and <eos>)");
    V_ = tgt.classes > 0 ? tgt.classes : tgt.vocab->size();
    sos_ = tgt.vocab->special("<sos>");
    eos_ = tgt.vocab->special("<eos>");
    pad_ = tgt.vocab->special("<pad>");
    RNNFLOW_CHECK(sos_ >= 0 && eos_ >= 0,
                  "attention_decoder: the target vocabulary needs the specials <sos> and <eos> "
                  "(add them to the vocabulary stage's specials)");
    if (scoring_ == Scoring::dot)
        RNNFLOW_CHECK(E_ == H_, "attention_decoder: attention 'dot' needs memory channels E equal "
                      "to hidden, got E = ", E_, " and hidden = ", H_,
                      " (use attention: general or bahdanau, or set hidden: ", E_, ")");
    state_in_ = ctx.connected("state");
    if (bridge_linear_) {
        RNNFLOW_CHECK(state_in_, "attention_decoder: bridge 'linear' needs the 'state' input "
                      "(connect it to the encoder's state, or set bridge: zeros)");
        He_ = ctx.input_info("state").channels;
        RNNFLOW_CHECK(He_ > 0, "attention_decoder needs the channel count of input 'state', got ", He_);
        De_ = E_ == 2 * He_ ? 2 : 1;
    }
    Ke_ = scoring_ == Scoring::dot ? E_ : scoring_ == Scoring::general ? H_ : A_;

    // Parameters.
    params_.clear();
    params_.reserve(24);
    auto add = [&](const std::string& name, Shape shape, const std::string& layout, double scale) {
        Param p;
        p.name = name;
        p.layout = layout;
        p.value = Tensor::f32(shape);
        p.grad = Tensor::f32(shape);
        if (scale > 0) {
            std::uniform_real_distribution<float> u(float(-scale), float(scale));
            float* v = p.value.data<float>();
            for (std::int64_t e = 0; e < p.value.numel(); ++e) v[e] = u(ctx.rng());
        }
        params_.push_back(std::move(p));
        return static_cast<int>(params_.size() - 1);
    };
    auto scale = [&](std::int64_t fan_in) {
        return init_scale_ > 0 ? init_scale_ : 1.0 / std::sqrt(double(fan_in));
    };
    const std::int64_t G = gates();
    i_emb_ = add("embedding", {V_, Ee_}, "(V, Ee)", init_scale_ > 0 ? init_scale_ : 0.1);
    for (std::int64_t l = 0; l < L_; ++l) {
        const std::string pre = "layer" + std::to_string(l) + ".";
        i_wl_[l] = add(pre + "weights_layer", {in_channels(l), G, H_}, "(C_l, G, H)", scale(in_channels(l)));
        i_wi_[l] = add(pre + "weights_iter", {H_, G, H_}, "(H, G, H)", scale(H_));
        i_b_[l] = add(pre + "bias", {4, H_}, lstm_ ? "(4, H) i, f, g, o" : "(4, H) u, r, n, hn", 0);
        if (lstm_) {
            float* b = params_[static_cast<std::size_t>(i_b_[l])].value.data<float>();
            for (std::int64_t j = 0; j < H_; ++j) b[H_ + j] = static_cast<float>(forget_bias_);
        }
    }
    if (bridge_linear_) {
        const std::int64_t Db = De_ * He_;
        i_bh_w_ = add("bridge.weights_h", {Db, L_, H_}, "(Db, L, H)", scale(Db));
        i_bh_b_ = add("bridge.bias_h", {L_, H_}, "(L, H)", 0);
        if (lstm_) {
            i_bc_w_ = add("bridge.weights_c", {Db, L_, H_}, "(Db, L, H)", scale(Db));
            i_bc_b_ = add("bridge.bias_c", {L_, H_}, "(L, H)", 0);
        }
    }
    if (scoring_ == Scoring::general) i_att_w_ = add("attention.weights", {E_, H_}, "(E, H)", scale(E_));
    if (scoring_ == Scoring::bahdanau) {
        i_att_w_ = add("attention.weights_key", {E_, A_}, "(E, A)", scale(E_));
        i_att_wq_ = add("attention.weights_query", {H_, A_}, "(H, A)", scale(H_));
        i_att_v_ = add("attention.v", {A_}, "(A)", scale(A_));
    }
    i_comb_w_ = add("combine.weights", {E_ + H_, H_}, "(E + H, H) rows: context then h", scale(E_ + H_));
    i_comb_b_ = add("combine.bias", {H_}, "(H)", 0);
    i_out_w_ = add("output.weights", {H_, V_}, "(H, V)", scale(H_));
    i_out_b_ = add("output.bias", {V_}, "(V)", 0);

    dropout_seed_ = ctx.rng()();
    seed_ = ctx.rng()();

    ctx.set_output_info("logits", PortInfo{PortType::tensor, V_, -1, nullptr});
    ctx.set_output_info("hypothesis", PortInfo{PortType::ids, -1, V_, tgt.vocab});
    ctx.set_output_info("attention", PortInfo{PortType::tensor, -1, -1, nullptr});
}

float AttentionDecoder::dropout_mask(std::uint64_t key, std::uint64_t e) const {
    const double u = unit(splitmix64(key ^ splitmix64(e + 0x51ed27a3ull)));
    return u < dropout_ ? 0.f : static_cast<float>(1.0 / (1.0 - dropout_));
}

// ---------------------------------------------------------------------------------------------
// Building blocks.

// gates (M, G*H) = x (M, C_l) W_l + bias (u, r, n for gru).
void AttentionDecoder::project(std::int64_t l, std::int64_t M, const float* x, float* g) const {
    const std::int64_t GH = gates() * H_, C = in_channels(l);
    const float* b = pv(i_b_[l]);
    for (std::int64_t m = 0; m < M; ++m) std::memcpy(g + m * GH, b, sizeof(float) * std::size_t(GH));
    gemm(false, false, M, GH, C, x, C, pv(i_wl_[l]), GH, 1.f, g, GH);
}

// One recurrent step of layer l on M rows; gates holds x W + b on entry, activations on exit.
void AttentionDecoder::recur(std::int64_t l, std::int64_t M, const float* hprev, const float* cprev,
                             float* g, float* hn, float* h, float* c, float* tc, float* hu) const {
    const std::int64_t H = H_, GH = gates() * H;
    const float* U = pv(i_wi_[l]);
    if (lstm_) {
        gemm(false, false, M, GH, H, hprev, H, U, GH, 1.f, g, GH);
        for (std::int64_t m = 0; m < M; ++m) {
            float* gm = g + m * GH;
            lstm_row(H, gm, gm + H, gm + 2 * H, gm + 3 * H, cprev + m * H, c + m * H, tc + m * H, h + m * H);
        }
    } else {
        gemm(false, false, M, GH, H, hprev, H, U, GH, 0.f, hu, GH);
        const float* bhn = pv(i_b_[l]) + 3 * H;
        for (std::int64_t m = 0; m < M; ++m) {
            float* gm = g + m * GH;
            const float* um = hu + m * GH;
            gru_row(H, gm, gm + H, gm + 2 * H, um, um + H, um + 2 * H, bhn, hprev + m * H, hn + m * H, h + m * H);
        }
    }
}

// keys (rows, K) = memory (rows, E) W (general: W_a, bahdanau: W_k); dot uses memory itself.
void AttentionDecoder::make_keys(const float* memory, std::int64_t rows, float* keys) const {
    if (scoring_ == Scoring::dot) return;
    gemm(false, false, rows, Ke_, E_, memory, E_, pv(i_att_w_), Ke_, 0.f, keys, Ke_);
}

// Attention for a block of query rows q, `count` rows per memory column: column n's rows are
// n * step + i * stride, i < count (training: step 1, stride N, count steps; decoding: step K,
// stride 1, count K beams). Writes alpha (rows, Ts), cat (rows, E + H) = [context; q], bahdanau
// qp (rows, A) and tb (rows, Ts, A). Scores (dot, general) and contexts are one GEMM per column.
void AttentionDecoder::attend(std::int64_t count, std::int64_t stride, std::int64_t step,
                              const float* q, const float* memory, const std::int32_t* src_len,
                              std::int64_t Ts, std::int64_t N, const float* keys, float* alpha,
                              float* cat, float* qp, float* tb) const {
    const std::int64_t E = E_, H = H_, K = Ke_, EH = E_ + H_, M = N * count;
    if (scoring_ == Scoring::bahdanau) gemm(false, false, M, A_, H, q, H, pv(i_att_wq_), A_, 0.f, qp, A_);
    const float* v = scoring_ == Scoring::bahdanau ? pv(i_att_v_) : nullptr;
    const float* kb = scoring_ == Scoring::dot ? memory : keys;
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t Ls = src_len[n], r0 = n * step;
        // Scores (count, Ls) into alpha's rows.
        if (scoring_ == Scoring::bahdanau) {
            for (std::int64_t i = 0; i < count; ++i) {
                const std::int64_t m = r0 + i * stride;
                const float* qa = qp + m * A_;
                for (std::int64_t s = 0; s < Ls; ++s) {
                    const float* k = kb + (s * N + n) * K;
                    float* t = tb + (m * Ts + s) * A_;
                    for (std::int64_t a = 0; a < A_; ++a) t[a] = fast_tanh(qa[a] + k[a]);
                    alpha[m * Ts + s] = dot(v, t, A_);
                }
            }
        } else {
            gemm(false, true, count, Ls, K, q + r0 * H, stride * H, kb + n * K, N * K, 0.f,
                 alpha + r0 * Ts, stride * Ts);
        }
        for (std::int64_t i = 0; i < count; ++i) {
            float* am = alpha + (r0 + i * stride) * Ts;
            float mx = kNegInf;
            for (std::int64_t s = 0; s < Ls; ++s) mx = std::max(mx, am[s]);
            float z = 0.f;
            for (std::int64_t s = 0; s < Ls; ++s) {
                am[s] = fast_exp(am[s] - mx);
                z += am[s];
            }
            const float inv = 1.f / z;
            for (std::int64_t s = 0; s < Ls; ++s) am[s] *= inv;
            for (std::int64_t s = Ls; s < Ts; ++s) am[s] = 0.f;
        }
        // Contexts (count, E) = alpha (count, Ls) . memory column n (Ls, E).
        gemm(false, false, count, E, Ls, alpha + r0 * Ts, stride * Ts, memory + n * E, N * E, 0.f,
             cat + r0 * EH, stride * EH);
    }
    for (std::int64_t m = 0; m < M; ++m) std::memcpy(cat + m * EH + E, q + m * H, sizeof(float) * std::size_t(H));
}

// ht = tanh(cat W_c + b_c); htd = ht * mask (mask null: htd = ht, may alias); logits = htd W_o + b_o.
void AttentionDecoder::combine_output(std::int64_t M, const float* cat, float* ht, float* htd,
                                      float* logits, const float* mask) const {
    const std::int64_t H = H_, EH = E_ + H_, V = V_;
    const float* bc = pv(i_comb_b_);
    for (std::int64_t m = 0; m < M; ++m) std::memcpy(ht + m * H, bc, sizeof(float) * std::size_t(H));
    gemm(false, false, M, H, EH, cat, EH, pv(i_comb_w_), H, 1.f, ht, H);
    for (std::int64_t e = 0; e < M * H; ++e) ht[e] = fast_tanh(ht[e]);
    const float* src = ht;
    if (mask) {
        for (std::int64_t e = 0; e < M * H; ++e) htd[e] = ht[e] * mask[e];
        src = htd;
    }
    const float* bo = pv(i_out_b_);
    for (std::int64_t m = 0; m < M; ++m) std::memcpy(logits + m * V, bo, sizeof(float) * std::size_t(V));
    gemm(false, false, M, V, H, src, H, pv(i_out_w_), V, 1.f, logits, V);
}

// Initial states into w.h[l], w.c[l] block 0 (N rows).
void AttentionDecoder::bridge_forward(const Tensor* state, std::int64_t N, Work& w) const {
    const std::int64_t H = H_;
    w.have_c = false;
    for (std::int64_t l = 0; l < L_; ++l) {
        std::fill_n(w.h[l].data(), N * H, 0.f);
        if (lstm_) std::fill_n(w.c[l].data(), N * H, 0.f);
    }
    if (!bridge_linear_ || state == nullptr) return;
    const std::int64_t S = state->dim(0), LD = state->dim(1), Db = De_ * He_, LH = L_ * H;
    const float* st = state->data<float>();
    auto run = [&](std::int64_t slot, int iw, int ib, std::vector<float>& bin, std::vector<float>& bout,
                   std::vector<float>* dst) {
        float* in = grow(bin, N * Db);
        for (std::int64_t d = 0; d < De_; ++d) {
            const std::int64_t row = LD - De_ + d;
            for (std::int64_t n = 0; n < N; ++n)
                std::memcpy(in + n * Db + d * He_, st + ((slot * LD + row) * N + n) * He_,
                            sizeof(float) * std::size_t(He_));
        }
        float* out = grow(bout, N * LH);
        for (std::int64_t n = 0; n < N; ++n) std::memcpy(out + n * LH, pv(ib), sizeof(float) * std::size_t(LH));
        gemm(false, false, N, LH, Db, in, Db, pv(iw), LH, 1.f, out, LH);
        for (std::int64_t e = 0; e < N * LH; ++e) out[e] = fast_tanh(out[e]);
        for (std::int64_t l = 0; l < L_; ++l)
            for (std::int64_t n = 0; n < N; ++n)
                std::memcpy(dst[l].data() + n * H, out + n * LH + l * H, sizeof(float) * std::size_t(H));
    };
    run(0, i_bh_w_, i_bh_b_, w.bin_h, w.bout_h, w.h);
    if (lstm_ && S == 2) {
        w.have_c = true;
        run(1, i_bc_w_, i_bc_b_, w.bin_c, w.bout_c, w.c);
    }
}

// ---------------------------------------------------------------------------------------------
// Training (and evaluation) forward with teacher forcing or scheduled sampling.

void AttentionDecoder::run_training_forward(const Tensor& memory, const Tensor* state,
                                            const Tensor& target, Tensor& logits, Work& w,
                                            const StepInfo& step) {
    const std::int64_t T = target.dim(0), N = target.dim(1), Ts = memory.dim(0);
    const std::int64_t H = H_, G = gates(), GH = G * H, C0 = in_channels(0), EH = E_ + H_, V = V_;
    const std::int64_t rows = T * N;
    const bool training = step.training();
    const bool sampling = training && teacher_forcing_ < 1.0;
    w.fast = !input_feeding_ && !sampling;
    w.dropout = training && dropout_ > 0;
    last_fast_ = w.fast;
    w.T = T;
    w.rows = rows;

    const std::int32_t* y = target.data<std::int32_t>();
    std::int32_t* tok = grow_t(w.tokens, rows);
    std::int32_t* tl = grow_t(w.tgt_len, N);
    for (std::int64_t n = 0; n < N; ++n) tl[n] = static_cast<std::int32_t>(target.length(n));
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t r = t * N + n;
            std::int32_t id = y[r];
            if (t < tl[n])
                RNNFLOW_CHECK(id >= 0 && id < V, "attention_decoder: target_in id ", id, " at step ",
                              t, ", column ", n, " is outside [0, ", V, ")");
            else if (id < 0 || id >= V)
                id = 0;  // padding: any valid id, its outputs are discarded
            tok[r] = id;
        }

    for (std::int64_t l = 0; l < L_; ++l) {
        grow(w.gates[l], rows * GH);
        grow(w.h[l], (T + 1) * N * H);
        if (lstm_) {
            grow(w.c[l], (T + 1) * N * H);
            grow(w.tc[l], rows * H);
        } else {
            grow(w.hn[l], rows * H);
        }
    }
    grow(w.hu, rows * GH);
    grow(w.x0, rows * C0);
    if (L_ > 1) grow(w.xin, rows * H);
    grow(w.alpha, rows * Ts);
    grow(w.cat, rows * EH);
    grow(w.ht, rows * H);
    grow(w.htd, rows * H);
    if (scoring_ == Scoring::bahdanau) {
        grow(w.qp, rows * A_);
        grow(w.tb, rows * Ts * A_);
    }
    const float* mask_l = nullptr;
    const float* mask_o = nullptr;
    if (w.dropout) {
        const std::uint64_t key = splitmix64(dropout_seed_ ^ splitmix64(std::uint64_t(step.epoch) * 1000003u +
                                                                         std::uint64_t(step.batch)));
        float* mo = grow(w.mask_out, rows * H);
        for (std::int64_t e = 0; e < rows * H; ++e) mo[e] = dropout_mask(key, std::uint64_t(e));
        mask_o = mo;
        if (L_ > 1) {
            float* ml = grow(w.mask_layer, rows * H);
            for (std::int64_t e = 0; e < rows * H; ++e) ml[e] = dropout_mask(key + 1, std::uint64_t(e));
            mask_l = ml;
        }
    }

    bridge_forward(state, N, w);
    const float* mem = memory.data<float>();
    const float* emb = pv(i_emb_);
    float* out = logits.data<float>();

    auto embed_rows = [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r)
            std::memcpy(w.x0.data() + r * C0, emb + std::int64_t(tok[r]) * Ee_, sizeof(float) * std::size_t(Ee_));
    };
    auto layer_step = [&](std::int64_t l, std::int64_t t) {
        const std::int64_t b = t * N;
        recur(l, N, w.h[l].data() + b * H, lstm_ ? w.c[l].data() + b * H : nullptr,
              w.gates[l].data() + b * GH, lstm_ ? nullptr : w.hn[l].data() + b * H,
              w.h[l].data() + (b + N) * H, lstm_ ? w.c[l].data() + (b + N) * H : nullptr,
              lstm_ ? w.tc[l].data() + b * H : nullptr, w.hu.data() + b * GH);
    };
    auto layer1_input = [&](std::int64_t r0, std::int64_t r1) {  // dropout(h of layer 0)
        const float* h0 = w.h[0].data() + N * H;
        for (std::int64_t e = r0 * H; e < r1 * H; ++e) w.xin[std::size_t(e)] = mask_l ? h0[e] * mask_l[e] : h0[e];
    };
    auto attend_rows = [&](std::int64_t r0, std::int64_t r1) {
        attend((r1 - r0) / N, N, 1, w.h[L_ - 1].data() + (r0 + N) * H, mem, w.src_len.data(), Ts, N,
               w.keys.data(), w.alpha.data() + r0 * Ts, w.cat.data() + r0 * EH,
               scoring_ == Scoring::bahdanau ? w.qp.data() + r0 * A_ : nullptr,
               scoring_ == Scoring::bahdanau ? w.tb.data() + r0 * Ts * A_ : nullptr);
        combine_output(r1 - r0, w.cat.data() + r0 * EH, w.ht.data() + r0 * H, w.htd.data() + r0 * H,
                       out + r0 * V, mask_o ? mask_o + r0 * H : nullptr);
    };

    if (w.fast) {
        embed_rows(0, rows);
        for (std::int64_t l = 0; l < L_; ++l) {
            if (l == 1) layer1_input(0, rows);
            project(l, rows, l == 0 ? w.x0.data() : w.xin.data(), w.gates[l].data());
            for (std::int64_t t = 0; t < T; ++t) layer_step(l, t);
        }
        attend_rows(0, rows);
    } else {
        const std::uint64_t skey = splitmix64(seed_ ^ splitmix64(std::uint64_t(step.epoch) * 1000003u +
                                                                 std::uint64_t(step.batch)));
        for (std::int64_t t = 0; t < T; ++t) {
            const std::int64_t r0 = t * N, r1 = r0 + N;
            if (sampling && t > 0)
                for (std::int64_t n = 0; n < N; ++n) {
                    if (unit(splitmix64(skey ^ splitmix64(std::uint64_t(r0 + n)))) < teacher_forcing_) continue;
                    const float* lr = out + (r0 - N + n) * V;
                    tok[r0 + n] = static_cast<std::int32_t>(std::max_element(lr, lr + V) - lr);
                }
            embed_rows(r0, r1);
            if (input_feeding_)
                for (std::int64_t n = 0; n < N; ++n) {
                    float* dst = w.x0.data() + (r0 + n) * C0 + Ee_;
                    if (t == 0) std::fill_n(dst, H, 0.f);
                    else std::memcpy(dst, w.ht.data() + (r0 - N + n) * H, sizeof(float) * std::size_t(H));
                }
            for (std::int64_t l = 0; l < L_; ++l) {
                if (l == 1) layer1_input(r0, r1);
                project(l, N, (l == 0 ? w.x0.data() + r0 * C0 : w.xin.data() + r0 * H),
                        w.gates[l].data() + r0 * GH);
                layer_step(l, t);
            }
            attend_rows(r0, r1);
        }
    }
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n)
            if (t >= tl[n]) std::fill_n(out + (t * N + n) * V, V, 0.f);
}

// ---------------------------------------------------------------------------------------------
// Decoding: greedy (beam 1 path of its own) and beam search.

void AttentionDecoder::decode(const Tensor& memory, const Tensor* state, Tensor& hyp, Tensor& attn,
                              Work& w) {
    const std::int64_t N = memory.dim(1), Ts = memory.dim(0), H = H_, GH = gates() * H_,
                       C0 = in_channels(0), EH = E_ + H_, V = V_;
    const std::int64_t K = beam_search_ ? beam_ : 1, R = N * K;
    const std::int32_t* Ls = w.src_len.data();
    std::vector<std::int64_t> maxlen(static_cast<std::size_t>(N));
    std::int64_t Tmax = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        maxlen[std::size_t(n)] = static_cast<std::int64_t>(std::floor(max_len_ratio_ * double(Ls[n]) +
                                                                      double(max_len_offset_)));
        Tmax = std::max(Tmax, maxlen[std::size_t(n)]);
    }

    // Initial state: the bridge on N rows (w.h/w.c block 0), copied to each beam.
    for (std::int64_t l = 0; l < L_; ++l) {
        grow(w.h[l], N * H);
        if (lstm_) grow(w.c[l], N * H);
    }
    bridge_forward(state, N, w);
    for (std::int64_t l = 0; l < L_; ++l) {
        float* h = grow(w.dec_h[l], R * H);
        float* c = grow(w.dec_c[l], R * H);
        grow(w.dec_nh[l], R * H);
        grow(w.dec_nc[l], R * H);
        for (std::int64_t r = 0; r < R; ++r) {
            std::memcpy(h + r * H, w.h[l].data() + (r / K) * H, sizeof(float) * std::size_t(H));
            if (lstm_) std::memcpy(c + r * H, w.c[l].data() + (r / K) * H, sizeof(float) * std::size_t(H));
        }
    }
    float* x = grow(w.dec_x, R * C0);
    float* g = grow(w.dec_g, R * GH);
    float* hn = grow(w.dec_hn, R * H);
    float* tc = grow(w.dec_tc, R * H);
    float* hu = grow(w.dec_hu, R * GH);
    float* alpha = grow(w.dec_alpha, R * Ts);
    float* cat = grow(w.dec_cat, R * EH);
    float* qp = scoring_ == Scoring::bahdanau ? grow(w.dec_qp, R * A_) : nullptr;
    float* tb = scoring_ == Scoring::bahdanau ? grow(w.dec_tb, R * Ts * A_) : nullptr;
    float* ht = grow(w.dec_ht, R * H);
    float* nht = grow(w.dec_nht, R * H);
    float* logits = grow(w.dec_logits, R * V);
    std::fill_n(ht, R * H, 0.f);
    std::int32_t* tok = grow_t(w.dec_tok, R);
    std::fill_n(tok, R, sos_);
    const std::int64_t hist = std::max<std::int64_t>(Tmax, 1);
    std::int32_t* htok = grow_t(w.hist_tok, hist * R);
    std::int32_t* hpar = grow_t(w.hist_parent, hist * R);
    float* halpha = grow(w.hist_alpha, hist * R * Ts);
    const float* emb = pv(i_emb_);
    const float* mem = memory.data<float>();

    auto step_forward = [&]() {
        for (std::int64_t r = 0; r < R; ++r) {
            std::memcpy(x + r * C0, emb + std::int64_t(tok[r]) * Ee_, sizeof(float) * std::size_t(Ee_));
            if (input_feeding_) std::memcpy(x + r * C0 + Ee_, ht + r * H, sizeof(float) * std::size_t(H));
        }
        const float* in = x;
        for (std::int64_t l = 0; l < L_; ++l) {
            project(l, R, in, g);
            recur(l, R, w.dec_h[l].data(), lstm_ ? w.dec_c[l].data() : nullptr, g, hn,
                  w.dec_nh[l].data(), lstm_ ? w.dec_nc[l].data() : nullptr, tc, hu);
            std::swap(w.dec_h[l], w.dec_nh[l]);
            if (lstm_) std::swap(w.dec_c[l], w.dec_nc[l]);
            in = w.dec_h[l].data();
        }
        attend(K, 1, K, w.dec_h[L_ - 1].data(), mem, Ls, Ts, N, w.keys.data(), alpha, cat, qp, tb);
        combine_output(R, cat, ht, ht, logits, nullptr);
    };
    // log-softmax of a logits row in double, <pad> and <sos> excluded (-inf).
    auto log_softmax = [&](const float* lr, double* lp) {
        double mx = -std::numeric_limits<double>::infinity();
        for (std::int64_t v = 0; v < V; ++v)
            if (v != pad_ && v != sos_) mx = std::max(mx, double(lr[v]));
        double z = 0;
        for (std::int64_t v = 0; v < V; ++v)
            if (v != pad_ && v != sos_) z += std::exp(double(lr[v]) - mx);
        const double lse = mx + std::log(z);
        for (std::int64_t v = 0; v < V; ++v)
            lp[v] = (v == pad_ || v == sos_) ? -std::numeric_limits<double>::infinity() : double(lr[v]) - lse;
    };

    struct Fin {
        double raw, norm;
        std::int64_t t_last, row, len;  // chain ends at history (t_last, row); len tokens
    };
    std::vector<std::vector<Fin>> fin(static_cast<std::size_t>(N));
    std::vector<char> done(static_cast<std::size_t>(N), 0);
    auto lp_of = [&](std::int64_t len) {
        return length_penalty_ > 0 ? std::pow((5.0 + double(len)) / 6.0, length_penalty_) : 1.0;
    };
    std::vector<double> lp(static_cast<std::size_t>(V));

    if (!beam_search_) {
        std::vector<double> raw(static_cast<std::size_t>(N), 0.0);
        std::vector<std::int64_t> len(static_cast<std::size_t>(N), 0);
        for (std::int64_t n = 0; n < N; ++n)
            if (maxlen[std::size_t(n)] <= 0) {
                done[std::size_t(n)] = 1;
                fin[std::size_t(n)].push_back({0.0, 0.0, -1, n, 0});
            }
        for (std::int64_t t = 0; t < Tmax; ++t) {
            if (std::all_of(done.begin(), done.end(), [](char d) { return d != 0; })) break;
            step_forward();
            for (std::int64_t n = 0; n < N; ++n) {
                if (done[std::size_t(n)]) continue;
                const float* lr = logits + n * V;
                std::int64_t best = -1;
                for (std::int64_t v = 0; v < V; ++v)
                    if (v != pad_ && v != sos_ && (best < 0 || lr[v] > lr[best])) best = v;
                log_softmax(lr, lp.data());
                raw[std::size_t(n)] += lp[std::size_t(best)];
                tok[n] = static_cast<std::int32_t>(best);
                htok[t * R + n] = tok[n];
                hpar[t * R + n] = static_cast<std::int32_t>(n);
                std::memcpy(halpha + (t * R + n) * Ts, alpha + n * Ts, sizeof(float) * std::size_t(Ts));
                if (best == eos_) {
                    fin[std::size_t(n)].push_back({raw[std::size_t(n)], raw[std::size_t(n)], t - 1, n, len[std::size_t(n)]});
                    done[std::size_t(n)] = 1;
                } else if (++len[std::size_t(n)] == maxlen[std::size_t(n)]) {
                    fin[std::size_t(n)].push_back({raw[std::size_t(n)], raw[std::size_t(n)], t, n, len[std::size_t(n)]});
                    done[std::size_t(n)] = 1;
                }
            }
        }
    } else {
        double* score = grow_t(w.score, R);
        double* nscore = grow_t(w.new_score, R);
        std::int32_t* nsrc = grow_t(w.new_src, R);
        std::int32_t* ntok = grow_t(w.new_tok, R);
        double* lps = grow_t(w.logp, R * V);
        constexpr double ninf = -std::numeric_limits<double>::infinity();
        for (std::int64_t r = 0; r < R; ++r) score[r] = (r % K == 0) ? 0.0 : ninf;
        for (std::int64_t n = 0; n < N; ++n)
            if (maxlen[std::size_t(n)] <= 0) {
                done[std::size_t(n)] = 1;
                fin[std::size_t(n)].push_back({0.0, 0.0, -1, n * K, 0});
            }
        std::vector<std::int64_t>& cand = w.cand;
        for (std::int64_t t = 0; t < Tmax; ++t) {
            if (std::all_of(done.begin(), done.end(), [](char d) { return d != 0; })) break;
            step_forward();
            for (std::int64_t r = 0; r < R; ++r)
                if (score[r] > ninf && !done[std::size_t(r / K)]) log_softmax(logits + r * V, lps + r * V);
            for (std::int64_t n = 0; n < N; ++n) {
                for (std::int64_t k = 0; k < K; ++k) {  // default: dead slot keeping its row
                    nscore[n * K + k] = ninf;
                    nsrc[n * K + k] = static_cast<std::int32_t>(n * K + k);
                    ntok[n * K + k] = pad_ >= 0 ? pad_ : 0;
                }
                if (done[std::size_t(n)]) continue;
                cand.clear();
                for (std::int64_t k = 0; k < K; ++k) {
                    if (score[n * K + k] == ninf) continue;
                    for (std::int64_t v = 0; v < V; ++v)
                        if (lps[(n * K + k) * V + v] > ninf) cand.push_back(k * V + v);
                }
                auto total = [&](std::int64_t c) {
                    return score[n * K + c / V] + lps[(n * K + c / V) * V + c % V];
                };
                const std::size_t top = std::min<std::size_t>(cand.size(), std::size_t(K));
                std::partial_sort(cand.begin(), cand.begin() + std::ptrdiff_t(top), cand.end(),
                                  [&](std::int64_t a, std::int64_t b) {
                                      const double ta = total(a), tb2 = total(b);
                                      return ta > tb2 || (ta == tb2 && a < b);
                                  });
                std::int64_t live = 0;
                for (std::size_t i = 0; i < top; ++i) {
                    const std::int64_t c = cand[i], src = n * K + c / V, v = c % V;
                    const double s = total(c);
                    if (v == eos_) {
                        fin[std::size_t(n)].push_back({s, s / lp_of(t + 1), t - 1, src, t});
                    } else {
                        const std::int64_t slot = n * K + live++;
                        nscore[slot] = s;
                        nsrc[slot] = static_cast<std::int32_t>(src);
                        ntok[slot] = static_cast<std::int32_t>(v);
                    }
                }
                if (live == 0) done[std::size_t(n)] = 1;
            }
            // Reorder states, record history.
            for (std::int64_t l = 0; l < L_; ++l) {
                std::swap(w.dec_h[l], w.dec_nh[l]);
                if (lstm_) std::swap(w.dec_c[l], w.dec_nc[l]);
                for (std::int64_t r = 0; r < R; ++r) {
                    std::memcpy(w.dec_h[l].data() + r * H, w.dec_nh[l].data() + nsrc[r] * H, sizeof(float) * std::size_t(H));
                    if (lstm_)
                        std::memcpy(w.dec_c[l].data() + r * H, w.dec_nc[l].data() + nsrc[r] * H, sizeof(float) * std::size_t(H));
                }
            }
            for (std::int64_t r = 0; r < R; ++r) {
                std::memcpy(nht + r * H, ht + nsrc[r] * H, sizeof(float) * std::size_t(H));
                htok[t * R + r] = ntok[r];
                hpar[t * R + r] = nsrc[r];
                std::memcpy(halpha + (t * R + r) * Ts, alpha + nsrc[r] * Ts, sizeof(float) * std::size_t(Ts));
                tok[r] = ntok[r];
                score[r] = nscore[r];
            }
            std::memcpy(ht, nht, sizeof(float) * std::size_t(R * H));
            // Length limit: live beams finish unterminated.
            for (std::int64_t n = 0; n < N; ++n) {
                if (done[std::size_t(n)] || t + 1 < maxlen[std::size_t(n)]) continue;
                for (std::int64_t k = 0; k < K; ++k)
                    if (score[n * K + k] > ninf)
                        fin[std::size_t(n)].push_back({score[n * K + k], score[n * K + k] / lp_of(t + 1), t, n * K + k, t + 1});
                done[std::size_t(n)] = 1;
            }
        }
    }

    // The best finished hypothesis per sentence, traced back through the history.
    hyp_logp_.assign(std::size_t(N), 0.0);
    hyp_score_.assign(std::size_t(N), 0.0);
    std::vector<const Fin*> best(std::size_t(N), nullptr);
    std::int64_t Th = 1;
    for (std::int64_t n = 0; n < N; ++n) {
        for (const Fin& f : fin[std::size_t(n)])
            if (!best[std::size_t(n)] || f.norm > best[std::size_t(n)]->norm) best[std::size_t(n)] = &f;
        RNNFLOW_ASSERT(best[std::size_t(n)] != nullptr);
        Th = std::max(Th, best[std::size_t(n)]->len);
        hyp_logp_[std::size_t(n)] = best[std::size_t(n)]->raw;
        hyp_score_[std::size_t(n)] = best[std::size_t(n)]->norm;
    }
    hyp.resize(DType::i32, {Th, N});
    attn.resize(DType::f32, {Th, N, Ts});
    hyp.lengths.assign(std::size_t(N), 0);
    attn.lengths.assign(std::size_t(N), 0);
    std::int32_t* hy = hyp.data<std::int32_t>();
    float* at = attn.data<float>();
    std::fill_n(hy, Th * N, pad_ >= 0 ? pad_ : 0);
    std::fill_n(at, Th * N * Ts, 0.f);
    for (std::int64_t n = 0; n < N; ++n) {
        const Fin& f = *best[std::size_t(n)];
        hyp.lengths[std::size_t(n)] = static_cast<std::int32_t>(f.len);
        attn.lengths[std::size_t(n)] = static_cast<std::int32_t>(f.len);
        std::int64_t row = f.row;
        for (std::int64_t t = f.t_last; t >= 0; --t) {
            RNNFLOW_ASSERT(t < f.len);
            hy[t * N + n] = htok[t * R + row];
            std::memcpy(at + (t * N + n) * Ts, halpha + (t * R + row) * Ts, sizeof(float) * std::size_t(Ts));
            row = hpar[t * R + row];
        }
    }
}

// ---------------------------------------------------------------------------------------------

void AttentionDecoder::forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) {
    RNNFLOW_ASSERT(V_ > 0);  // prepare ran
    const Tensor& memory = in.at("memory");     // (Ts, N, E)
    const Tensor& target = in.at("target_in");  // (Tt, N)
    const Tensor* state = in.has("state") ? &in.at("state") : nullptr;
    RNNFLOW_CHECK(memory.rank() == 3 && memory.dim(2) == E_, "attention_decoder: input 'memory' must be (Ts, N, ",
                  E_, "), got ", shape_str(memory.shape()));
    const std::int64_t Ts = memory.dim(0), N = memory.dim(1);
    RNNFLOW_CHECK(target.rank() == 2 && target.dim(1) == N, "attention_decoder: input 'target_in' must be (Tt, ",
                  N, ") like memory's batch, got ", shape_str(target.shape()));
    RNNFLOW_CHECK(memory.lengths.empty() || std::ssize(memory.lengths) == N,
                  "attention_decoder: input 'memory' has ", memory.lengths.size(), " lengths for ", N, " columns");
    RNNFLOW_CHECK(target.lengths.empty() || std::ssize(target.lengths) == N,
                  "attention_decoder: input 'target_in' has ", target.lengths.size(), " lengths for ", N, " columns");
    if (state && bridge_linear_)
        RNNFLOW_CHECK(state->rank() == 4 && (state->dim(0) == 1 || state->dim(0) == 2) &&
                          state->dim(1) >= De_ && state->dim(2) == N && state->dim(3) == He_,
                      "attention_decoder: input 'state' must be (S, L*D >= ", De_, ", ", N, ", ", He_,
                      "), got ", shape_str(state->shape()));
    if (!saved.extra.has_value()) saved.extra = std::make_shared<Work>();
    Work& w = *std::any_cast<std::shared_ptr<Work>&>(saved.extra);
    w.N = N;
    w.Ts = Ts;
    std::int32_t* sl = grow_t(w.src_len, N);
    for (std::int64_t n = 0; n < N; ++n) {
        sl[n] = static_cast<std::int32_t>(memory.length(n));
        RNNFLOW_CHECK(sl[n] >= 0 && sl[n] <= Ts, "attention_decoder: memory length ", sl[n], " of column ",
                      n, " is outside [0, ", Ts, "]");
    }
    if (scoring_ != Scoring::dot) make_keys(memory.data<float>(), Ts * N, grow(w.keys, Ts * N * Ke_));

    Tensor& logits = out.at("logits");
    Tensor& hyp = out.at("hypothesis");
    Tensor& attn = out.at("attention");
    const bool has_target = step.phase != Phase::infer;
    if (has_target) {
        const std::int64_t T = target.dim(0);
        logits.resize(DType::f32, {T, N, V_});
        logits.lengths.assign(std::size_t(N), 0);
        for (std::int64_t n = 0; n < N; ++n) logits.lengths[std::size_t(n)] = static_cast<std::int32_t>(target.length(n));
        run_training_forward(memory, state, target, logits, w, step);
    } else {
        logits.resize(DType::f32, {1, N, V_});
        logits.zero();
        logits.lengths.assign(std::size_t(N), 0);
        w.T = 0;
    }
    if (step.phase == Phase::train) {
        hyp.resize(DType::i32, {1, N});
        hyp.zero();
        hyp.lengths.assign(std::size_t(N), 0);
        attn.resize(DType::f32, {1, N, Ts});
        attn.zero();
        attn.lengths.assign(std::size_t(N), 0);
    } else {
        decode(memory, state, hyp, attn, w);
    }
}

void AttentionDecoder::backward(const Inputs& in, const Outputs& out, Saved& saved,
                                const Grads& diff_dst, Grads& diff_src, const StepInfo& step) {
    (void)out; (void)step;
    const Tensor& memory = in.at("memory");
    const Tensor* state = in.has("state") ? &in.at("state") : nullptr;
    RNNFLOW_ASSERT(saved.extra.has_value());
    Work& w = *std::any_cast<std::shared_ptr<Work>&>(saved.extra);
    const std::int64_t T = w.T, N = w.N, Ts = w.Ts, rows = T * N;
    const std::int64_t H = H_, GH = gates() * H, C0 = in_channels(0), EH = E_ + H_, V = V_, E = E_;
    const std::int64_t top = L_ - 1;

    float* dmem = nullptr;
    if (diff_src.has("memory")) {
        Tensor& dm = diff_src.at("memory");
        dm.resize(DType::f32, memory.shape());
        dm.lengths = memory.lengths;
        dm.zero();
        dmem = dm.data<float>();
    }
    Tensor* dstate = nullptr;
    if (state && diff_src.has("state")) {
        dstate = &diff_src.at("state");
        dstate->resize(DType::f32, state->shape());
        dstate->zero();
    }
    if (rows == 0) return;

    // Output projection, all rows: the logits' gradient at padding is dropped.
    const float* dl_in = diff_dst.at("logits").data<float>();
    float* dlog = grow(w.dlog, rows * V);
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t r = t * N + n;
            if (t < w.tgt_len[std::size_t(n)]) std::memcpy(dlog + r * V, dl_in + r * V, sizeof(float) * std::size_t(V));
            else std::fill_n(dlog + r * V, V, 0.f);
        }
    const float* htd = w.dropout ? w.htd.data() : w.ht.data();
    gemm(true, false, H, V, rows, htd, H, dlog, V, 1.f, pg(i_out_w_), V);
    {
        float* db = pg(i_out_b_);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t v = 0; v < V; ++v) db[v] += dlog[r * V + v];
    }
    float* dht = grow(w.dht, rows * H);
    gemm(false, true, rows, H, V, dlog, V, pv(i_out_w_), V, 0.f, dht, H);
    if (w.dropout)
        for (std::int64_t e = 0; e < rows * H; ++e) dht[e] *= w.mask_out[std::size_t(e)];

    float* dpre_c = grow(w.dpre_c, rows * H);
    float* dcat = grow(w.dcat, rows * EH);
    float* dkeys = nullptr;
    if (scoring_ != Scoring::dot) {
        dkeys = grow(w.dkeys, Ts * N * Ke_);
        std::fill_n(dkeys, Ts * N * Ke_, 0.f);
    }
    float* dqp = nullptr;
    if (scoring_ == Scoring::bahdanau) {
        dqp = grow(w.dqp, rows * A_);
        std::fill_n(dqp, rows * A_, 0.f);
    }
    grow(w.dx, rows * std::max(C0, H));
    grow(w.dscore, T * Ts);
    for (std::int64_t l = 0; l < L_; ++l) {
        std::fill_n(grow(w.dhin[l], rows * H), rows * H, 0.f);
        grow(w.dgx[l], rows * GH);
        if (!lstm_) grow(w.dgh[l], rows * GH);
        std::fill_n(grow(w.dhc[l], N * H), N * H, 0.f);
        if (lstm_) std::fill_n(grow(w.dcc[l], N * H), N * H, 0.f);
    }
    const float* mem = memory.data<float>();
    const float* Wc = pv(i_comb_w_);
    const float* v_att = scoring_ == Scoring::bahdanau ? pv(i_att_v_) : nullptr;
    float* dv_att = scoring_ == Scoring::bahdanau ? pg(i_att_v_) : nullptr;
    const float* kb = scoring_ == Scoring::dot ? mem : w.keys.data();
    const std::int64_t K = Ke_;

    // Combine and attention backward for rows [r0, r1): adds into dhin[top], dmem, dkeys, dqp.
    auto attention_back = [&](std::int64_t r0, std::int64_t r1) {
        const std::int64_t M = r1 - r0;
        for (std::int64_t e = r0 * H; e < r1 * H; ++e) {
            const float h = w.ht[std::size_t(e)];
            dpre_c[e] = dht[e] * (1.f - h * h);
        }
        gemm(false, true, M, EH, H, dpre_c + r0 * H, H, Wc, H, 0.f, dcat + r0 * EH, EH);
        std::vector<float>& dhtop = w.dhin[top];
        for (std::int64_t r = r0; r < r1; ++r)
            for (std::int64_t j = 0; j < H; ++j) dhtop[std::size_t(r * H + j)] += dcat[r * EH + E + j];
        // Per memory column n, its rows r0 + n + i * N, i < count.
        const std::int64_t count = M / N;
        float* dsc = w.dscore.data();  // (count, Ls)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t Ls = w.src_len[std::size_t(n)], b = r0 + n, ld = N;
            if (Ls == 0) continue;
            const float* a = w.alpha.data() + b * Ts;
            const float* dctx = dcat + b * EH;
            const float* q = w.h[top].data() + (b + N) * H;
            // dalpha = dctx . m_s; memory gets alpha^T dctx.
            gemm(false, true, count, Ls, E, dctx, ld * EH, mem + n * E, N * E, 0.f, dsc, Ls);
            if (dmem) gemm(true, false, Ls, E, count, a, ld * Ts, dctx, ld * EH, 1.f, dmem + n * E, N * E);
            // The softmax's Jacobian: dscore = alpha * (dalpha - sum alpha dalpha).
            for (std::int64_t i = 0; i < count; ++i) {
                const float* ai = a + i * ld * Ts;
                float* di = dsc + i * Ls;
                float sum = 0.f;
                for (std::int64_t s = 0; s < Ls; ++s) sum += ai[s] * di[s];
                for (std::int64_t s = 0; s < Ls; ++s) di[s] = ai[s] * (di[s] - sum);
            }
            if (scoring_ == Scoring::bahdanau) {
                for (std::int64_t i = 0; i < count; ++i) {
                    const std::int64_t r = b + i * ld;
                    float* dqa = dqp + r * A_;
                    for (std::int64_t s = 0; s < Ls; ++s) {
                        const float g = dsc[i * Ls + s];
                        const float* t = w.tb.data() + (r * Ts + s) * A_;
                        float* dk = dkeys + (s * N + n) * A_;
                        for (std::int64_t aa = 0; aa < A_; ++aa) {
                            dv_att[aa] += g * t[aa];
                            const float dz = g * v_att[aa] * (1.f - t[aa] * t[aa]);
                            dqa[aa] += dz;
                            dk[aa] += dz;
                        }
                    }
                }
            } else {
                // dq += dscore . keys; keys (or memory, dot) get dscore^T q.
                gemm(false, false, count, K, Ls, dsc, Ls, kb + n * K, N * K, 1.f, dhtop.data() + b * H, ld * H);
                float* dk = scoring_ == Scoring::dot ? dmem : dkeys;
                if (dk) gemm(true, false, Ls, K, count, dsc, Ls, q, ld * H, 1.f, dk + n * K, N * K);
            }
        }
        if (scoring_ == Scoring::bahdanau)
            gemm(false, true, M, H, A_, dqp + r0 * A_, A_, pv(i_att_wq_), A_, 1.f, dhtop.data() + r0 * H, H);
    };

    // Recurrent step backward of layer l at step t: dhin[l] block t + carries -> dgx, dgh, carries.
    auto cell_back = [&](std::int64_t l, std::int64_t t) {
        const std::int64_t b = t * N;
        const float* g = w.gates[l].data() + b * GH;
        float* dgx = w.dgx[l].data() + b * GH;
        float* dhc = w.dhc[l].data();
        const float* dhin = w.dhin[l].data() + b * H;
        if (lstm_) {
            const float* cprev = w.c[l].data() + b * H;
            const float* tc = w.tc[l].data() + b * H;
            float* dcc = w.dcc[l].data();
            for (std::int64_t m = 0; m < N; ++m) {
                const float* gm = g + m * GH;
                float* dm = dgx + m * GH;
                for (std::int64_t j = 0; j < H; ++j) {
                    const std::int64_t e = m * H + j;
                    const float i = gm[j], f = gm[H + j], gg = gm[2 * H + j], o = gm[3 * H + j];
                    const float dh = dhin[e] + dhc[e];
                    const float dO = dh * tc[e];
                    const float dC = dh * o * (1.f - tc[e] * tc[e]) + dcc[e];
                    dm[j] = dC * gg * i * (1.f - i);
                    dm[H + j] = dC * cprev[e] * f * (1.f - f);
                    dm[2 * H + j] = dC * i * (1.f - gg * gg);
                    dm[3 * H + j] = dO * o * (1.f - o);
                    dcc[e] = dC * f;
                }
            }
            gemm(false, true, N, H, GH, dgx, GH, pv(i_wi_[l]), GH, 0.f, dhc, H);
        } else {
            const float* hprev = w.h[l].data() + b * H;
            const float* hn = w.hn[l].data() + b * H;
            float* dgh = w.dgh[l].data() + b * GH;
            for (std::int64_t m = 0; m < N; ++m) {
                const float* gm = g + m * GH;
                float* dx = dgx + m * GH;
                float* dhm = dgh + m * GH;
                for (std::int64_t j = 0; j < H; ++j) {
                    const std::int64_t e = m * H + j;
                    const float u = gm[j], r = gm[H + j], n = gm[2 * H + j];
                    const float dh = dhin[e] + dhc[e];
                    const float dnp = dh * (1.f - u) * (1.f - n * n);
                    const float dup = dh * (hprev[e] - n) * u * (1.f - u);
                    const float drp = dnp * hn[e] * r * (1.f - r);
                    dx[j] = dup; dx[H + j] = drp; dx[2 * H + j] = dnp;
                    dhm[j] = dup; dhm[H + j] = drp; dhm[2 * H + j] = dnp * r;
                    dhc[e] = dh * u;
                }
            }
            gemm(false, true, N, H, GH, dgh, GH, pv(i_wi_[l]), GH, 1.f, dhc, H);
        }
    };

    // Input gradient of layer l for steps [t0, t1): into the layer below, the embedding, and
    // (input feeding) h~ of the step before.
    float* demb = pg(i_emb_);
    auto input_back = [&](std::int64_t l, std::int64_t t0, std::int64_t t1) {
        const std::int64_t r0 = t0 * N, M = (t1 - t0) * N, C = in_channels(l);
        float* dx = w.dx.data();
        gemm(false, true, M, C, GH, w.dgx[l].data() + r0 * GH, GH, pv(i_wl_[l]), GH, 0.f, dx, C);
        if (l > 0) {
            float* dh = w.dhin[l - 1].data() + r0 * H;
            const float* mk = w.dropout ? w.mask_layer.data() + r0 * H : nullptr;
            for (std::int64_t e = 0; e < M * H; ++e) dh[e] += mk ? dx[e] * mk[e] : dx[e];
            return;
        }
        for (std::int64_t i = 0; i < M; ++i) {
            const std::int64_t r = r0 + i, t = r / N, n = r % N;
            if (t >= w.tgt_len[std::size_t(n)]) continue;
            float* de = demb + std::int64_t(w.tokens[std::size_t(r)]) * Ee_;
            const float* dxr = dx + i * C;
            for (std::int64_t e = 0; e < Ee_; ++e) de[e] += dxr[e];
            if (input_feeding_ && t > 0) {
                float* dh = dht + (r - N) * H;
                for (std::int64_t j = 0; j < H; ++j) dh[j] += dxr[Ee_ + j];
            }
        }
    };

    if (!input_feeding_) {
        attention_back(0, rows);
        for (std::int64_t l = top; l >= 0; --l) {
            for (std::int64_t t = T - 1; t >= 0; --t) cell_back(l, t);
            input_back(l, 0, T);
        }
    } else {
        for (std::int64_t t = T - 1; t >= 0; --t) {
            attention_back(t * N, (t + 1) * N);
            for (std::int64_t l = top; l >= 0; --l) {
                cell_back(l, t);
                input_back(l, t, t + 1);
            }
        }
    }

    // Weight gradients over all rows at once.
    for (std::int64_t l = 0; l < L_; ++l) {
        const std::int64_t C = in_channels(l);
        const float* X = l == 0 ? w.x0.data() : w.xin.data();
        const float* dgx = w.dgx[l].data();
        const float* dgh = lstm_ ? dgx : w.dgh[l].data();
        gemm(true, false, C, GH, rows, X, C, dgx, GH, 1.f, pg(i_wl_[l]), GH);
        gemm(true, false, H, GH, rows, w.h[l].data(), H, dgh, GH, 1.f, pg(i_wi_[l]), GH);
        float* db = pg(i_b_[l]);
        for (std::int64_t r = 0; r < rows; ++r) {
            for (std::int64_t e = 0; e < GH; ++e) db[e] += dgx[r * GH + e];
            if (!lstm_)
                for (std::int64_t j = 0; j < H; ++j) db[3 * H + j] += dgh[r * GH + 2 * H + j];
        }
    }
    gemm(true, false, EH, H, rows, w.cat.data(), EH, dpre_c, H, 1.f, pg(i_comb_w_), H);
    {
        float* db = pg(i_comb_b_);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t j = 0; j < H; ++j) db[j] += dpre_c[r * H + j];
    }
    if (scoring_ != Scoring::dot) {
        gemm(true, false, E, K, Ts * N, mem, E, dkeys, K, 1.f, pg(i_att_w_), K);
        if (dmem) gemm(false, true, Ts * N, E, K, dkeys, K, pv(i_att_w_), K, 1.f, dmem, E);
    }
    if (scoring_ == Scoring::bahdanau)
        gemm(true, false, H, A_, rows, w.h[top].data() + N * H, H, dqp, A_, 1.f, pg(i_att_wq_), A_);

    // Bridge.
    if (bridge_linear_ && state) {
        const std::int64_t S = state->dim(0), LD = state->dim(1), Db = De_ * He_, LH = L_ * H;
        auto back = [&](std::int64_t slot, int iw, int ib, const std::vector<float>& bin,
                        const std::vector<float>& bout, std::vector<float>* dinit) {
            float* dpre = grow(w.dlog, N * LH);  // dlog is free now
            for (std::int64_t n = 0; n < N; ++n)
                for (std::int64_t l = 0; l < L_; ++l)
                    for (std::int64_t j = 0; j < H; ++j) {
                        const float o = bout[std::size_t(n * LH + l * H + j)];
                        dpre[n * LH + l * H + j] = dinit[l][std::size_t(n * H + j)] * (1.f - o * o);
                    }
            gemm(true, false, Db, LH, N, bin.data(), Db, dpre, LH, 1.f, pg(iw), LH);
            float* db = pg(ib);
            for (std::int64_t n = 0; n < N; ++n)
                for (std::int64_t e = 0; e < LH; ++e) db[e] += dpre[n * LH + e];
            if (!dstate) return;
            float* dbin = grow(w.dbin, N * Db);
            gemm(false, true, N, Db, LH, dpre, LH, pv(iw), LH, 0.f, dbin, Db);
            float* ds = dstate->data<float>();
            for (std::int64_t d = 0; d < De_; ++d) {
                const std::int64_t row = LD - De_ + d;
                for (std::int64_t n = 0; n < N; ++n)
                    std::memcpy(ds + ((slot * LD + row) * N + n) * He_, dbin + n * Db + d * He_,
                                sizeof(float) * std::size_t(He_));
            }
        };
        back(0, i_bh_w_, i_bh_b_, w.bin_h, w.bout_h, w.dhc);
        if (lstm_ && S == 2 && w.have_c) back(1, i_bc_w_, i_bc_b_, w.bin_c, w.bout_c, w.dcc);
    }
}

}  // namespace rnnflow::stages
