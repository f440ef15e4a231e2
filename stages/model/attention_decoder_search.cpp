// attention_decoder's decoding in the evaluate and infer phases: greedy or beam search by
// DecodeSearch (pipeline/core/decode_search.hpp, which holds the rules: limits, <eos>, ranking by
// log p / lp) over the decoder cell of attention_decoder.cpp, one step for all N * beam rows at a
// time. Here: the sentences' length limits floor(max_len_ratio * source length + max_len_offset),
// the rows' initial states (the bridge's, copied to every beam), one step, and the beams' states
// following their parents.
#include "attention_decoder.hpp"
#include "attention_decoder_detail.hpp"

#include <algorithm>
#include <cmath>

namespace rnnflow::stages {

using attention_detail::copy_row;
using attention_detail::grow;

// The decoder as DecodeSearch sees it: rows r = n * K + k over Work's decoding buffers.
class AttentionDecoder::Stepper final : public DecodeModel {
public:
    Stepper(const AttentionDecoder& d, Work& w, const float* mem, std::int64_t N, std::int64_t K, std::int64_t Ts)
        : d_(d), w_(w), mem_(mem), N_(N), K_(K), Ts_(Ts) {}
    DecodeStep step(std::span<const std::int32_t> tokens) override {
        RNNFLOW_ASSERT(std::int64_t(tokens.size()) == N_ * K_);
        d_.decode_step(tokens.data(), N_, K_, Ts_, w_, mem_);
        const std::size_t R = std::size_t(N_ * K_);
        DecodeStep st;
        st.logits = {w_.dec_logits.data(), R * std::size_t(d_.V_)};
        if (d_.scoring_ != Scoring::none) st.attention = {w_.dec_alpha.data(), R * std::size_t(Ts_)};
        return st;
    }
    void reorder(std::span<const std::int32_t> parents) override { d_.reorder_rows(parents.data(), N_ * K_, w_); }

private:
    const AttentionDecoder& d_;
    Work& w_;
    const float* mem_;
    std::int64_t N_, K_, Ts_;
};

void AttentionDecoder::decode(const Tensor& memory, const Tensor* state, Tensor& hyp, Tensor& attn,
                              Work& w) {
    const std::int64_t N = memory.dim(1), Ts = memory.dim(0), K = beam_search_ ? beam_ : 1;
    std::vector<std::int64_t> max_len(static_cast<std::size_t>(N));
    for (std::int64_t n = 0; n < N; ++n)
        max_len[std::size_t(n)] = static_cast<std::int64_t>(
            std::floor(max_len_ratio_ * double(w.src_len[std::size_t(n)]) + double(max_len_offset_)));
    start_rows(state, N, K, Ts, w);
    DecodeOptions o;
    o.vocabulary = V_;
    o.attention = scoring_ == Scoring::none ? 0 : Ts;
    o.beam_search = beam_search_;
    o.beam = beam_;
    o.length_penalty = length_penalty_;
    o.start = sos_;
    o.eos = eos_;
    o.pad = pad_;
    o.banned = {pad_, sos_};
    Stepper model(*this, w, memory.data<float>(), N, K, Ts);
    w.search.run(model, o, max_len, hyp, &attn);
    hyp_logp_ = w.search.log_prob();
    hyp_score_ = w.search.score();
    if (scoring_ == Scoring::none) {  // no attention weights to show: (1, N, Ts), lengths 0
        attn.resize(DType::f32, {1, N, Ts});
        attn.zero();
        attn.lengths.assign(std::size_t(N), 0);
    }
}

// The bridge's initial state copied to every beam of a sentence (R = N * K rows), and the step's
// buffers.
void AttentionDecoder::start_rows(const Tensor* state, std::int64_t N, std::int64_t K, std::int64_t Ts,
                                  Work& w) const {
    const std::int64_t R = N * K, H = H_, GH = gates() * H_;
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
            copy_row(h + r * H, w.h[l].data() + (r / K) * H, H);
            if (lstm_) copy_row(c + r * H, w.c[l].data() + (r / K) * H, H);
        }
    }
    grow(w.dec_x, R * in_channels(0));
    grow(w.dec_g, R * GH);
    grow(w.dec_hn, R * H);
    grow(w.dec_tc, R * H);
    grow(w.dec_hu, R * GH);
    std::fill_n(grow(w.dec_alpha, R * Ts), R * Ts, 0.f);
    grow(w.dec_cat, R * (Ec_ + H_));
    if (scoring_ == Scoring::bahdanau) {
        grow(w.dec_qp, R * A_);
        grow(w.dec_tb, R * Ts * A_);
    }
    std::fill_n(grow(w.dec_ht, R * H), R * H, 0.f);
    grow(w.dec_nht, R * H);
    grow(w.dec_logits, R * V_);
}

// One decoder step for all R = N * K rows: tokens (R) in, w.dec_logits (R, V) and w.dec_alpha
// (R, Ts) out.
void AttentionDecoder::decode_step(const std::int32_t* tokens, std::int64_t N, std::int64_t K,
                                   std::int64_t Ts, Work& w, const float* mem) const {
    const std::int64_t R = N * K, H = H_, C0 = in_channels(0);
    float* x = w.dec_x.data();
    const float* emb = pv(i_emb_);
    for (std::int64_t r = 0; r < R; ++r) {
        copy_row(x + r * C0, emb + std::int64_t(tokens[r]) * Ee_, Ee_);
        if (input_feeding_) copy_row(x + r * C0 + Ee_, w.dec_ht.data() + r * H, H);
    }
    const float* in = x;
    for (std::int64_t l = 0; l < L_; ++l) {
        project(l, R, in, w.dec_g.data());
        recur(l, R, w.dec_h[l].data(), lstm_ ? w.dec_c[l].data() : nullptr, w.dec_g.data(),
              w.dec_hn.data(), w.dec_nh[l].data(), lstm_ ? w.dec_nc[l].data() : nullptr,
              w.dec_tc.data(), w.dec_hu.data());
        std::swap(w.dec_h[l], w.dec_nh[l]);
        if (lstm_) std::swap(w.dec_c[l], w.dec_nc[l]);
        in = w.dec_h[l].data();
    }
    if (scoring_ == Scoring::none)
        fixed_context(w.ctx.data(), R, N, K, w.dec_h[L_ - 1].data(), w.dec_cat.data());
    else
        attend(K, 1, K, w.dec_h[L_ - 1].data(), mem, w.src_len.data(), Ts, N, w.keys.data(),
               w.dec_alpha.data(), w.dec_cat.data(), w.dec_qp.data(), w.dec_tb.data());
    combine_output(R, w.dec_cat.data(), w.dec_ht.data(), w.dec_ht.data(), w.dec_logits.data(), nullptr);
}

// Beam search: row r continues row parents[r]; every layer's h (and c) and h~ follow.
void AttentionDecoder::reorder_rows(const std::int32_t* parents, std::int64_t R, Work& w) const {
    const std::int64_t H = H_;
    for (std::int64_t l = 0; l < L_; ++l) {
        std::swap(w.dec_h[l], w.dec_nh[l]);
        if (lstm_) std::swap(w.dec_c[l], w.dec_nc[l]);
        for (std::int64_t r = 0; r < R; ++r) {
            copy_row(w.dec_h[l].data() + r * H, w.dec_nh[l].data() + parents[r] * H, H);
            if (lstm_) copy_row(w.dec_c[l].data() + r * H, w.dec_nc[l].data() + parents[r] * H, H);
        }
    }
    float* ht = w.dec_ht.data();
    float* nht = w.dec_nht.data();
    for (std::int64_t r = 0; r < R; ++r) copy_row(nht + r * H, ht + parents[r] * H, H);
    copy_row(ht, nht, R * H);
}

}  // namespace rnnflow::stages
