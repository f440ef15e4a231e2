// attention_decoder: the stage (schema, parameters), its decoder's units with each forward next to
// its backward (cell, attention, combine and output, bridge), and the teacher-forced training pass
// built from them. Greedy and beam search are in attention_decoder_search.cpp.
#include "attention_decoder.hpp"
#include "attention_decoder_detail.hpp"

#include "dropout_mask.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>

namespace rnnflow::stages {

using attention_detail::copy_row;
using attention_detail::dot;
using attention_detail::gemm;
using attention_detail::grow;
using attention_detail::gru_row;
using attention_detail::kNegInf;
using attention_detail::lstm_row;
using attention_detail::unit;

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
        .param_choice("attention", "general", {"bahdanau", "dot", "general", "none"},
                      "scoring: additive v.tanh(W_q h + W_k m), dot h.m (needs E = hidden), "
                      "general h.(W_a m); none: no attention, every step sees the fixed context C, "
                      "the encoder's final state (needs state)")
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
            "sum a_ts m_s (attention none: c_t = C, the encoder's last-layer final state [h_l2r; "
            "h_r2l], for every t: the plain encoder-decoder of Cho et al. 2014); h~_t = tanh([c_t; "
            "h_t] W_c + b_c); logits = h~_t W_o + b_o. Bridge "
            "(linear): h_0 = tanh([h_l2r; h_r2l] of the encoder's last layer B_h + b_h) per "
            "decoder layer; lstm c_0 likewise from the encoder's c (zero if it has none). "
            "Params: embedding (V, Ee); layer<l>.weights_layer (C_l, G, H), .weights_iter (H, "
            "G, H), .bias (4, H) (gru: u, r, n, hn); bridge.weights_h (Db, L, H), .bias_h (L, "
            "H), lstm .weights_c, .bias_c; attention.weights (E, H) (general) or "
            ".weights_key (E, A), .weights_query (H, A), .v (A) (bahdanau); combine.weights "
            "(E + H, H) (none: (Db + H, H)), .bias (H); output.weights (H, V), .bias (V). Decoding: greedy or beam "
            "search (finished hypotheses kept until every beam of a sentence ends at <eos> or "
            "the length limit; ranked by log p / ((5 + |y|)/6)^length_penalty, |y| counting "
            "<eos>); beam 1 equals greedy. Refs: Cho et al. 2014; Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015; "
            "Bengio et al. 2015; Wu et al. 2016. Not supported: coverage, local attention, "
            "multi-head attention, weight tying.");
}

AttentionDecoder::AttentionDecoder(const Params& p)
    : lstm_(p.get_string("cell") == "lstm"), H_(p.get_int("hidden")), L_(p.get_int("layers")),
      Ee_(p.get_int("embedding_dim")),
      A_(p.get_int("attention_dim") > 0 ? p.get_int("attention_dim") : p.get_int("hidden")),
      scoring_(p.get_string("attention") == "bahdanau" ? Scoring::bahdanau
               : p.get_string("attention") == "dot"    ? Scoring::dot
               : p.get_string("attention") == "none"   ? Scoring::none
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
    if (scoring_ == Scoring::none)
        RNNFLOW_CHECK(state_in_, "attention_decoder: attention 'none' needs the 'state' input: its "
                      "fixed context vector C is the encoder's final state (connect state: <encoder>.state)");
    if (bridge_linear_ || scoring_ == Scoring::none) {
        RNNFLOW_CHECK(state_in_, "attention_decoder: bridge 'linear' needs the 'state' input "
                      "(connect it to the encoder's state, or set bridge: zeros)");
        const PortInfo info = ctx.input_info("state");
        He_ = info.channels;
        RNNFLOW_CHECK(He_ > 0, "attention_decoder needs the channel count of input 'state', got ", He_);
        RNNFLOW_CHECK(info.directions == -1 || info.directions == 1 || info.directions == 2,
                      "attention_decoder: input 'state' has ", info.directions, " directions (1 or 2)");
        // The producer says how many directions its last layer has (recurrent stages do); a
        // plug-in that does not: two when memory has 2 * H_enc channels (a concatenating encoder).
        De_ = info.directions > 0 ? info.directions : E_ == 2 * He_ ? 2 : 1;
    }
    Ke_ = scoring_ == Scoring::dot ? E_ : scoring_ == Scoring::general ? H_ : scoring_ == Scoring::none ? 0 : A_;
    Ec_ = scoring_ == Scoring::none ? De_ * He_ : E_;

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
    i_comb_w_ = add("combine.weights", {Ec_ + H_, H_},
                    scoring_ == Scoring::none ? "(Db + H, H) rows: C then h" : "(E + H, H) rows: context then h",
                    scale(Ec_ + H_));
    i_comb_b_ = add("combine.bias", {H_}, "(H)", 0);
    i_out_w_ = add("output.weights", {H_, V_}, "(H, V)", scale(H_));
    i_out_b_ = add("output.bias", {V_}, "(V)", 0);

    dropout_seed_ = ctx.rng()();
    seed_ = ctx.rng()();

    ctx.set_output_info("logits", PortInfo{PortType::tensor, V_, -1, nullptr});
    ctx.set_output_info("hypothesis", PortInfo{PortType::ids, -1, V_, tgt.vocab});
    ctx.set_output_info("attention", PortInfo{PortType::tensor, -1, -1, nullptr});
}

// ---------------------------------------------------------------------------------------------
// The cell of layer l on M rows (training: rows t * N + n; decoding: beams).

// gates (M, G*H) = x (M, C_l) W_l + bias (u, r, n for gru).
void AttentionDecoder::project(std::int64_t l, std::int64_t M, const float* x, float* g) const {
    const std::int64_t GH = gates() * H_, C = in_channels(l);
    const float* b = pv(i_b_[l]);
    for (std::int64_t m = 0; m < M; ++m) copy_row(g + m * GH, b, GH);
    gemm(false, false, M, GH, C, x, C, pv(i_wl_[l]), GH, 1.f, g, GH);
}

// Backward of project for layer l, steps [t0, t1) of training: dx = dgates W_l^T goes to the layer
// below (through its dropout mask), or to the embedding rows of the tokens and, with input
// feeding, to h~ of the step before.
void AttentionDecoder::project_backward(Work& w, std::int64_t l, std::int64_t t0, std::int64_t t1) {
    const std::int64_t N = w.N, H = H_, GH = gates() * H_;
    const std::int64_t r0 = t0 * N, M = (t1 - t0) * N, C = in_channels(l);
    float* dx = w.dx.data();
    gemm(false, true, M, C, GH, w.dgx[l].data() + r0 * GH, GH, pv(i_wl_[l]), GH, 0.f, dx, C);
    if (l > 0) {
        float* dh = w.dhin[l - 1].data() + r0 * H;
        const float* mk = w.dropout ? w.mask_layer.data() + r0 * H : nullptr;
        for (std::int64_t e = 0; e < M * H; ++e) dh[e] += mk ? dx[e] * mk[e] : dx[e];
        return;
    }
    float* demb = pg(i_emb_);
    for (std::int64_t i = 0; i < M; ++i) {
        const std::int64_t r = r0 + i, t = r / N, n = r % N;
        if (t >= w.tgt_len[std::size_t(n)]) continue;
        float* de = demb + std::int64_t(w.tokens[std::size_t(r)]) * Ee_;
        const float* dxr = dx + i * C;
        for (std::int64_t e = 0; e < Ee_; ++e) de[e] += dxr[e];
        if (input_feeding_ && t > 0) {
            float* dh = w.dht.data() + (r - N) * H;
            for (std::int64_t j = 0; j < H; ++j) dh[j] += dxr[Ee_ + j];
        }
    }
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

// Backward of recur for layer l at training step t: dhin[l] of the step plus the carried dh (and
// dc) give the gates' gradients dgx (gru: dgh for the h U side) and the carries of step t - 1.
void AttentionDecoder::recur_backward(Work& w, std::int64_t l, std::int64_t t) const {
    const std::int64_t N = w.N, H = H_, GH = gates() * H_, b = t * N;
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
        return;
    }
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

// The weight gradients of layer l's cell over all training rows at once: W_l, U_l, bias.
void AttentionDecoder::cell_weight_grads(const Work& w, std::int64_t l) {
    const std::int64_t rows = w.T * w.N, H = H_, GH = gates() * H_, C = in_channels(l);
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

// ---------------------------------------------------------------------------------------------
// Attention over the memory.

// keys (rows, K) = memory (rows, E) W (general: W_a, bahdanau: W_k); dot uses memory itself.
void AttentionDecoder::make_keys(const float* memory, std::int64_t rows, float* keys) const {
    if (scoring_ == Scoring::dot || scoring_ == Scoring::none) return;
    gemm(false, false, rows, Ke_, E_, memory, E_, pv(i_att_w_), Ke_, 0.f, keys, Ke_);
}

// Backward of make_keys and of bahdanau's query projection, over all rows once every step's
// dkeys and dqp are summed: W_a / W_k, W_q, and memory += dkeys W^T.
void AttentionDecoder::keys_backward(const Work& w, const float* mem, float* dmem) {
    const std::int64_t N = w.N, Ts = w.Ts, rows = w.T * w.N, H = H_, E = E_, K = Ke_;
    if (scoring_ == Scoring::general || scoring_ == Scoring::bahdanau) {
        gemm(true, false, E, K, Ts * N, mem, E, w.dkeys.data(), K, 1.f, pg(i_att_w_), K);
        if (dmem) gemm(false, true, Ts * N, E, K, w.dkeys.data(), K, pv(i_att_w_), K, 1.f, dmem, E);
    }
    if (scoring_ == Scoring::bahdanau)
        gemm(true, false, H, A_, rows, w.h[L_ - 1].data() + N * H, H, w.dqp.data(), A_, 1.f,
             pg(i_att_wq_), A_);
}

// Attention for a block of query rows q, `count` rows per memory column: column n's rows are
// n * step + i * stride, i < count (training: step 1, stride N, count steps; decoding: step K,
// stride 1, count K beams). Writes alpha (rows, Ts), cat (rows, E + H) = [context; q], bahdanau
// qp (rows, A) and tb (rows, Ts, A). Scores (dot, general) and contexts are one GEMM per column.
void AttentionDecoder::attend(std::int64_t count, std::int64_t stride, std::int64_t step,
                              const float* q, const float* memory, const std::int32_t* src_len,
                              std::int64_t Ts, std::int64_t N, const float* keys, float* alpha,
                              float* cat, float* qp, float* tb) const {
    const std::int64_t E = E_, H = H_, K = Ke_, EH = Ec_ + H_, M = N * count;
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
    for (std::int64_t m = 0; m < M; ++m) copy_row(cat + m * EH + E, q + m * H, H);
}

// Backward of attend for training rows [r0, r1) (whole steps), given dcat's context part: the
// query (top layer's h) gets dhin[top], memory gets alpha^T dctx (and, dot, dscore^T q); the keys'
// and bahdanau's query-projection gradients are summed into dkeys and dqp for keys_backward.
void AttentionDecoder::attend_backward(Work& w, const float* mem, float* dmem, std::int64_t r0,
                                       std::int64_t r1) {
    const std::int64_t N = w.N, Ts = w.Ts, H = H_, E = E_, EH = Ec_ + H_, K = Ke_, top = L_ - 1;
    const std::int64_t count = (r1 - r0) / N;
    const float* kb = scoring_ == Scoring::dot ? mem : w.keys.data();
    float* dhtop = w.dhin[top].data();
    float* dsc = w.dscore.data();  // (count, Ls)
    // Per memory column n, its rows r0 + n + i * N, i < count.
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t Ls = w.src_len[std::size_t(n)], b = r0 + n;
        if (Ls == 0) continue;
        const float* a = w.alpha.data() + b * Ts;
        const float* dctx = w.dcat.data() + b * EH;
        const float* q = w.h[top].data() + (b + N) * H;
        // dalpha = dctx . m_s; memory gets alpha^T dctx.
        gemm(false, true, count, Ls, E, dctx, N * EH, mem + n * E, N * E, 0.f, dsc, Ls);
        if (dmem) gemm(true, false, Ls, E, count, a, N * Ts, dctx, N * EH, 1.f, dmem + n * E, N * E);
        // The softmax's Jacobian: dscore = alpha * (dalpha - sum alpha dalpha).
        for (std::int64_t i = 0; i < count; ++i) {
            const float* ai = a + i * N * Ts;
            float* di = dsc + i * Ls;
            float sum = 0.f;
            for (std::int64_t s = 0; s < Ls; ++s) sum += ai[s] * di[s];
            for (std::int64_t s = 0; s < Ls; ++s) di[s] = ai[s] * (di[s] - sum);
        }
        if (scoring_ == Scoring::bahdanau) {
            additive_score_backward(w, n, b, count, Ls);
        } else {
            // dq += dscore . keys; keys (or memory, dot) get dscore^T q.
            gemm(false, false, count, K, Ls, dsc, Ls, kb + n * K, N * K, 1.f, dhtop + b * H, N * H);
            float* dk = scoring_ == Scoring::dot ? dmem : w.dkeys.data();
            if (dk) gemm(true, false, Ls, K, count, dsc, Ls, q, N * H, 1.f, dk + n * K, N * K);
        }
    }
    if (scoring_ == Scoring::bahdanau)
        gemm(false, true, r1 - r0, H, A_, w.dqp.data() + r0 * A_, A_, pv(i_att_wq_), A_, 1.f,
             dhtop + r0 * H, H);
}

// Backward of bahdanau's score v . tanh(W_q h + W_k m_s) for column n's rows b + i * N, given
// dscore: v's gradient, and dqp, dkeys (the pre-activation gradient goes to both).
void AttentionDecoder::additive_score_backward(Work& w, std::int64_t n, std::int64_t b,
                                               std::int64_t count, std::int64_t Ls) {
    const std::int64_t N = w.N, Ts = w.Ts;
    const float* v_att = pv(i_att_v_);
    float* dv_att = pg(i_att_v_);
    const float* dsc = w.dscore.data();
    for (std::int64_t i = 0; i < count; ++i) {
        const std::int64_t r = b + i * N;
        float* dqa = w.dqp.data() + r * A_;
        for (std::int64_t s = 0; s < Ls; ++s) {
            const float g = dsc[i * Ls + s];
            const float* t = w.tb.data() + (r * Ts + s) * A_;
            float* dk = w.dkeys.data() + (s * N + n) * A_;
            for (std::int64_t a = 0; a < A_; ++a) {
                dv_att[a] += g * t[a];
                const float dz = g * v_att[a] * (1.f - t[a] * t[a]);
                dqa[a] += dz;
                dk[a] += dz;
            }
        }
    }
}

// attention: none, the plain encoder-decoder: cat (M, Db + H) = [C_n; q] for rows m of column
// n = (m / K) % N (training: K = 1, rows t * N + n; decoding: rows n * K + k), C = ctx (N, Db).
void AttentionDecoder::fixed_context(const float* ctx, std::int64_t M, std::int64_t N, std::int64_t K,
                                     const float* q, float* cat) const {
    const std::int64_t H = H_, Ec = Ec_, EH = Ec_ + H_;
    for (std::int64_t m = 0; m < M; ++m) {
        copy_row(cat + m * EH, ctx + ((m / K) % N) * Ec, Ec);
        copy_row(cat + m * EH + Ec, q + m * H, H);
    }
}

// Backward of fixed_context for training rows [r0, r1): dctx (N, Db) sums dcat's C part.
void AttentionDecoder::fixed_context_backward(Work& w, std::int64_t r0, std::int64_t r1) const {
    const std::int64_t N = w.N, Ec = Ec_, EH = Ec_ + H_;
    for (std::int64_t r = r0; r < r1; ++r) {
        float* d = w.dctx.data() + (r % N) * Ec;
        const float* g = w.dcat.data() + r * EH;
        for (std::int64_t e = 0; e < Ec; ++e) d[e] += g[e];
    }
}

// The context's backward for training rows [r0, r1): attention's or the fixed C's.
void AttentionDecoder::context_backward(Work& w, const float* mem, float* dmem, std::int64_t r0,
                                        std::int64_t r1) {
    if (scoring_ == Scoring::none) fixed_context_backward(w, r0, r1);
    else attend_backward(w, mem, dmem, r0, r1);
}

// ---------------------------------------------------------------------------------------------
// The attentional hidden state h~ and the output layer.

// ht = tanh(cat W_c + b_c); htd = ht * mask (mask null: htd = ht, may alias); logits = htd W_o + b_o.
void AttentionDecoder::combine_output(std::int64_t M, const float* cat, float* ht, float* htd,
                                      float* logits, const float* mask) const {
    const std::int64_t H = H_, EH = Ec_ + H_, V = V_;
    const float* bc = pv(i_comb_b_);
    for (std::int64_t m = 0; m < M; ++m) copy_row(ht + m * H, bc, H);
    gemm(false, false, M, H, EH, cat, EH, pv(i_comb_w_), H, 1.f, ht, H);
    for (std::int64_t e = 0; e < M * H; ++e) ht[e] = fast_tanh(ht[e]);
    const float* src = ht;
    if (mask) {
        for (std::int64_t e = 0; e < M * H; ++e) htd[e] = ht[e] * mask[e];
        src = htd;
    }
    const float* bo = pv(i_out_b_);
    for (std::int64_t m = 0; m < M; ++m) copy_row(logits + m * V, bo, V);
    gemm(false, false, M, V, H, src, H, pv(i_out_w_), V, 1.f, logits, V);
}

// Backward of the output layer over all training rows (the logits' gradient at padding dropped):
// W_o, b_o, and dht = dlogits W_o^T through the dropout mask.
void AttentionDecoder::output_backward(const Tensor& dlogits, Work& w) {
    const std::int64_t T = w.T, N = w.N, rows = T * N, H = H_, V = V_;
    const float* dl_in = dlogits.data<float>();
    float* dlog = grow(w.dlog, rows * V);
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t r = t * N + n;
            if (t < w.tgt_len[std::size_t(n)]) copy_row(dlog + r * V, dl_in + r * V, V);
            else std::fill_n(dlog + r * V, V, 0.f);
        }
    const float* htd = w.dropout ? w.htd.data() : w.ht.data();
    gemm(true, false, H, V, rows, htd, H, dlog, V, 1.f, pg(i_out_w_), V);
    float* db = pg(i_out_b_);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t v = 0; v < V; ++v) db[v] += dlog[r * V + v];
    float* dht = grow(w.dht, rows * H);
    gemm(false, true, rows, H, V, dlog, V, pv(i_out_w_), V, 0.f, dht, H);
    if (w.dropout)
        for (std::int64_t e = 0; e < rows * H; ++e) dht[e] *= w.mask_out[std::size_t(e)];
}

// Backward of h~ = tanh(cat W_c + b_c) for rows [r0, r1): dpre_c, dcat = dpre_c W_c^T, and the
// h part of dcat into dhin[top].
void AttentionDecoder::combine_backward(Work& w, std::int64_t r0, std::int64_t r1) const {
    const std::int64_t H = H_, E = Ec_, EH = Ec_ + H_;
    float* dpre_c = w.dpre_c.data();
    float* dcat = w.dcat.data();
    for (std::int64_t e = r0 * H; e < r1 * H; ++e) {
        const float h = w.ht[std::size_t(e)];
        dpre_c[e] = w.dht[std::size_t(e)] * (1.f - h * h);
    }
    gemm(false, true, r1 - r0, EH, H, dpre_c + r0 * H, H, pv(i_comb_w_), H, 0.f, dcat + r0 * EH, EH);
    float* dhtop = w.dhin[L_ - 1].data();
    for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t j = 0; j < H; ++j) dhtop[r * H + j] += dcat[r * EH + E + j];
}

// W_c and b_c's gradients over all training rows at once.
void AttentionDecoder::combine_weight_grads(const Work& w) {
    const std::int64_t rows = w.T * w.N, H = H_, EH = Ec_ + H_;
    const float* dpre_c = w.dpre_c.data();
    gemm(true, false, EH, H, rows, w.cat.data(), EH, dpre_c, H, 1.f, pg(i_comb_w_), H);
    float* db = pg(i_comb_b_);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < H; ++j) db[j] += dpre_c[r * H + j];
}

// ---------------------------------------------------------------------------------------------
// The bridge: the decoder's initial state from the encoder's final state.

// out (N, Db) = [h_l2r; h_r2l] of the encoder's last layer in state slot (0: h, 1: c).
void AttentionDecoder::read_last_layer(const Tensor& state, std::int64_t slot, float* out) const {
    const std::int64_t LD = state.dim(1), N = state.dim(2), Db = De_ * He_;
    const float* st = state.data<float>();
    for (std::int64_t d = 0; d < De_; ++d) {
        const std::int64_t row = LD - De_ + d;
        for (std::int64_t n = 0; n < N; ++n)
            copy_row(out + n * Db + d * He_, st + ((slot * LD + row) * N + n) * He_, He_);
    }
}

// Backward of read_last_layer: dstate's slot rows += d (N, Db).
void AttentionDecoder::add_last_layer(Tensor& dstate, std::int64_t slot, const float* d) const {
    const std::int64_t LD = dstate.dim(1), N = dstate.dim(2), Db = De_ * He_;
    float* ds = dstate.data<float>();
    for (std::int64_t k = 0; k < De_; ++k) {
        const std::int64_t row = LD - De_ + k;
        for (std::int64_t n = 0; n < N; ++n) {
            float* dst = ds + ((slot * LD + row) * N + n) * He_;
            const float* src = d + n * Db + k * He_;
            for (std::int64_t j = 0; j < He_; ++j) dst[j] += src[j];
        }
    }
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
    const std::int64_t S = state->dim(0), Db = De_ * He_, LH = L_ * H;
    auto run = [&](std::int64_t slot, int iw, int ib, std::vector<float>& bin, std::vector<float>& bout,
                   std::vector<float>* dst) {
        float* in = grow(bin, N * Db);
        read_last_layer(*state, slot, in);
        float* out = grow(bout, N * LH);
        for (std::int64_t n = 0; n < N; ++n) copy_row(out + n * LH, pv(ib), LH);
        gemm(false, false, N, LH, Db, in, Db, pv(iw), LH, 1.f, out, LH);
        for (std::int64_t e = 0; e < N * LH; ++e) out[e] = fast_tanh(out[e]);
        for (std::int64_t l = 0; l < L_; ++l)
            for (std::int64_t n = 0; n < N; ++n) copy_row(dst[l].data() + n * H, out + n * LH + l * H, H);
    };
    run(0, i_bh_w_, i_bh_b_, w.bin_h, w.bout_h, w.h);
    if (lstm_ && S == 2) {
        w.have_c = true;
        run(1, i_bc_w_, i_bc_b_, w.bin_c, w.bout_c, w.c);
    }
}

// Backward of bridge_forward from the carries left at step 0 (dhc, dcc): B_h, b_h (lstm: B_c,
// b_c), and the encoder's state when dstate is given.
void AttentionDecoder::bridge_backward(const Tensor& state, Work& w, Tensor* dstate) {
    const std::int64_t N = w.N, H = H_;
    const std::int64_t S = state.dim(0), Db = De_ * He_, LH = L_ * H;
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
        add_last_layer(*dstate, slot, dbin);
    };
    back(0, i_bh_w_, i_bh_b_, w.bin_h, w.bout_h, w.dhc);
    if (lstm_ && S == 2 && w.have_c) back(1, i_bc_w_, i_bc_b_, w.bin_c, w.bout_c, w.dcc);
}

// ---------------------------------------------------------------------------------------------
// The training pass (train and evaluate phases): teacher forcing or scheduled sampling.

// Checks the target ids into w.tokens (padding: id 0) and w.tgt_len; sizes the buffers.
void AttentionDecoder::start_training_rows(const Tensor& target, Work& w) const {
    const std::int64_t T = target.dim(0), N = w.N, Ts = w.Ts, rows = T * N;
    const std::int64_t H = H_, GH = gates() * H_, EH = Ec_ + H_, V = V_;
    w.T = T;
    w.rows = rows;
    const std::int32_t* y = target.data<std::int32_t>();
    std::int32_t* tok = grow(w.tokens, rows);
    std::int32_t* tl = grow(w.tgt_len, N);
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
    grow(w.x0, rows * in_channels(0));
    if (L_ > 1) grow(w.xin, rows * H);
    grow(w.alpha, rows * Ts);
    grow(w.cat, rows * EH);
    grow(w.ht, rows * H);
    grow(w.htd, rows * H);
    if (scoring_ == Scoring::bahdanau) {
        grow(w.qp, rows * A_);
        grow(w.tb, rows * Ts * A_);
    }
}

// The batch's dropout masks (dropout_mask.hpp's, keyed by seed, epoch and batch): elements
// [0, rows * H) for h~ before the output layer, the next rows * H for layer 0's output (2 layers).
void AttentionDecoder::make_dropout_masks(Work& w, const StepInfo& step) const {
    const std::int64_t n = w.rows * H_;
    const DropoutMask mask(dropout_, batch_key(dropout_seed_, step.epoch, step.batch));
    float* mo = grow(w.mask_out, n);
    for (std::int64_t e = 0; e < n; ++e) mo[e] = mask.at(std::uint64_t(e));
    if (L_ < 2) return;
    float* ml = grow(w.mask_layer, n);
    for (std::int64_t e = 0; e < n; ++e) ml[e] = mask.at(std::uint64_t(n + e));
}

// x0's embedding part for rows [r0, r1).
void AttentionDecoder::embed_rows(Work& w, std::int64_t r0, std::int64_t r1) const {
    const std::int64_t C0 = in_channels(0);
    const float* emb = pv(i_emb_);
    for (std::int64_t r = r0; r < r1; ++r)
        copy_row(w.x0.data() + r * C0, emb + std::int64_t(w.tokens[std::size_t(r)]) * Ee_, Ee_);
}

// Layer l's recurrence at step t (its gates already hold the input projection).
void AttentionDecoder::layer_step(Work& w, std::int64_t l, std::int64_t t) const {
    const std::int64_t H = H_, GH = gates() * H_, b = t * w.N, N = w.N;
    recur(l, N, w.h[l].data() + b * H, lstm_ ? w.c[l].data() + b * H : nullptr,
          w.gates[l].data() + b * GH, lstm_ ? nullptr : w.hn[l].data() + b * H,
          w.h[l].data() + (b + N) * H, lstm_ ? w.c[l].data() + (b + N) * H : nullptr,
          lstm_ ? w.tc[l].data() + b * H : nullptr, w.hu.data() + b * GH);
}

// Layer 1's input for rows [r0, r1): dropout(h of layer 0).
void AttentionDecoder::layer1_input(Work& w, std::int64_t r0, std::int64_t r1) const {
    const std::int64_t H = H_;
    const float* h0 = w.h[0].data() + w.N * H;
    const float* mask = w.dropout ? w.mask_layer.data() : nullptr;
    for (std::int64_t e = r0 * H; e < r1 * H; ++e) w.xin[std::size_t(e)] = mask ? h0[e] * mask[e] : h0[e];
}

// Attention, h~ and logits for rows [r0, r1) (whole steps) from the top layer's h.
void AttentionDecoder::attend_rows(Work& w, const float* mem, float* out, std::int64_t r0,
                                   std::int64_t r1) const {
    const std::int64_t N = w.N, Ts = w.Ts, H = H_, EH = Ec_ + H_;
    const bool additive = scoring_ == Scoring::bahdanau;
    if (scoring_ == Scoring::none)
        fixed_context(w.ctx.data(), r1 - r0, N, 1, w.h[L_ - 1].data() + (r0 + N) * H, w.cat.data() + r0 * EH);
    else
        attend((r1 - r0) / N, N, 1, w.h[L_ - 1].data() + (r0 + N) * H, mem, w.src_len.data(), Ts, N,
           w.keys.data(), w.alpha.data() + r0 * Ts, w.cat.data() + r0 * EH,
           additive ? w.qp.data() + r0 * A_ : nullptr, additive ? w.tb.data() + r0 * Ts * A_ : nullptr);
    combine_output(r1 - r0, w.cat.data() + r0 * EH, w.ht.data() + r0 * H, w.htd.data() + r0 * H,
                   out + r0 * V_, w.dropout ? w.mask_out.data() + r0 * H : nullptr);
}

// The step-by-step path (input feeding, scheduled sampling): step t's input may depend on step
// t - 1's h~ or prediction.
void AttentionDecoder::step_by_step_forward(Work& w, const float* mem, float* out, bool sampling,
                                            const StepInfo& step) const {
    const std::int64_t T = w.T, N = w.N, H = H_, GH = gates() * H_, C0 = in_channels(0), V = V_;
    const std::uint64_t skey = batch_key(seed_, step.epoch, step.batch);
    std::int32_t* tok = w.tokens.data();
    for (std::int64_t t = 0; t < T; ++t) {
        const std::int64_t r0 = t * N, r1 = r0 + N;
        if (sampling && t > 0)
            for (std::int64_t n = 0; n < N; ++n) {
                if (unit(splitmix64(skey ^ splitmix64(std::uint64_t(r0 + n)))) < teacher_forcing_) continue;
                const float* lr = out + (r0 - N + n) * V;
                tok[r0 + n] = static_cast<std::int32_t>(std::max_element(lr, lr + V) - lr);
            }
        embed_rows(w, r0, r1);
        if (input_feeding_)
            for (std::int64_t n = 0; n < N; ++n) {
                float* dst = w.x0.data() + (r0 + n) * C0 + Ee_;
                if (t == 0) std::fill_n(dst, H, 0.f);
                else copy_row(dst, w.ht.data() + (r0 - N + n) * H, H);
            }
        for (std::int64_t l = 0; l < L_; ++l) {
            if (l == 1) layer1_input(w, r0, r1);
            project(l, N, (l == 0 ? w.x0.data() + r0 * C0 : w.xin.data() + r0 * H),
                    w.gates[l].data() + r0 * GH);
            layer_step(w, l, t);
        }
        attend_rows(w, mem, out, r0, r1);
    }
}

// The whole-sequence path when nothing feeds back (one GEMM per layer for every step's input),
// else the step-by-step one; logits at padded steps are 0.
void AttentionDecoder::run_training_forward(const Tensor& memory, const Tensor* state,
                                            const Tensor& target, Tensor& logits, Work& w,
                                            const StepInfo& step) {
    const bool training = step.training();
    const bool sampling = training && teacher_forcing_ < 1.0;
    w.fast = !input_feeding_ && !sampling;
    w.dropout = training && dropout_ > 0;
    last_fast_ = w.fast;
    start_training_rows(target, w);
    if (w.dropout) make_dropout_masks(w, step);
    bridge_forward(state, w.N, w);
    const float* mem = memory.data<float>();
    float* out = logits.data<float>();
    const std::int64_t T = w.T, N = w.N, rows = w.rows, V = V_;
    if (w.fast) {
        embed_rows(w, 0, rows);
        for (std::int64_t l = 0; l < L_; ++l) {
            if (l == 1) layer1_input(w, 0, rows);
            project(l, rows, l == 0 ? w.x0.data() : w.xin.data(), w.gates[l].data());
            for (std::int64_t t = 0; t < T; ++t) layer_step(w, l, t);
        }
        attend_rows(w, mem, out, 0, rows);
    } else {
        step_by_step_forward(w, mem, out, sampling, step);
    }
    for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t n = 0; n < N; ++n)
            if (t >= w.tgt_len[std::size_t(n)]) std::fill_n(out + (t * N + n) * V, V, 0.f);
}

// Sizes and zeroes the backward buffers that accumulate.
void AttentionDecoder::start_backward(Work& w) const {
    const std::int64_t rows = w.T * w.N, N = w.N, H = H_, GH = gates() * H_, C0 = in_channels(0);
    grow(w.dpre_c, rows * H);
    grow(w.dcat, rows * (Ec_ + H_));
    if (scoring_ == Scoring::none) std::fill_n(grow(w.dctx, N * Ec_), N * Ec_, 0.f);
    if (scoring_ == Scoring::general || scoring_ == Scoring::bahdanau) std::fill_n(grow(w.dkeys, w.Ts * N * Ke_), w.Ts * N * Ke_, 0.f);
    if (scoring_ == Scoring::bahdanau) std::fill_n(grow(w.dqp, rows * A_), rows * A_, 0.f);
    grow(w.dx, rows * std::max(C0, H));
    grow(w.dscore, w.T * w.Ts);
    for (std::int64_t l = 0; l < L_; ++l) {
        std::fill_n(grow(w.dhin[l], rows * H), rows * H, 0.f);
        grow(w.dgx[l], rows * GH);
        if (!lstm_) grow(w.dgh[l], rows * GH);
        std::fill_n(grow(w.dhc[l], N * H), N * H, 0.f);
        if (lstm_) std::fill_n(grow(w.dcc[l], N * H), N * H, 0.f);
    }
}

// ---------------------------------------------------------------------------------------------
// The stage's forward and backward.

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
    if (state && (bridge_linear_ || scoring_ == Scoring::none))
        RNNFLOW_CHECK(state->rank() == 4 && (state->dim(0) == 1 || state->dim(0) == 2) &&
                          state->dim(1) >= De_ && state->dim(2) == N && state->dim(3) == He_,
                      "attention_decoder: input 'state' must be (S, L*D >= ", De_, ", ", N, ", ", He_,
                      "), got ", shape_str(state->shape()));
    if (!saved.extra.has_value()) saved.extra = std::make_shared<Work>();
    Work& w = *std::any_cast<std::shared_ptr<Work>&>(saved.extra);
    w.N = N;
    w.Ts = Ts;
    std::int32_t* sl = grow(w.src_len, N);
    for (std::int64_t n = 0; n < N; ++n) {
        sl[n] = static_cast<std::int32_t>(memory.length(n));
        RNNFLOW_CHECK(sl[n] >= 0 && sl[n] <= Ts, "attention_decoder: memory length ", sl[n], " of column ",
                      n, " is outside [0, ", Ts, "]");
    }
    if (scoring_ == Scoring::none) read_last_layer(*state, 0, grow(w.ctx, N * Ec_));
    if (Ke_ > 0 && scoring_ != Scoring::dot) make_keys(memory.data<float>(), Ts * N, grow(w.keys, Ts * N * Ke_));

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
    const std::int64_t T = w.T, N = w.N;
    if (T * N == 0) return;

    output_backward(diff_dst.at("logits"), w);
    start_backward(w);
    const float* mem = memory.data<float>();
    if (!input_feeding_) {  // every step's attention at once, then each layer through time
        combine_backward(w, 0, T * N);
        context_backward(w, mem, dmem, 0, T * N);
        for (std::int64_t l = L_ - 1; l >= 0; --l) {
            for (std::int64_t t = T - 1; t >= 0; --t) recur_backward(w, l, t);
            project_backward(w, l, 0, T);
        }
    } else {  // h~_{t-1} feeds step t: step by step, last first
        for (std::int64_t t = T - 1; t >= 0; --t) {
            combine_backward(w, t * N, (t + 1) * N);
            context_backward(w, mem, dmem, t * N, (t + 1) * N);
            for (std::int64_t l = L_ - 1; l >= 0; --l) {
                recur_backward(w, l, t);
                project_backward(w, l, t, t + 1);
            }
        }
    }
    for (std::int64_t l = 0; l < L_; ++l) cell_weight_grads(w, l);
    combine_weight_grads(w);
    keys_backward(w, mem, dmem);
    if (bridge_linear_ && state) bridge_backward(*state, w, dstate);
    if (scoring_ == Scoring::none && dstate) add_last_layer(*dstate, 0, w.dctx.data());
}

}  // namespace rnnflow::stages
