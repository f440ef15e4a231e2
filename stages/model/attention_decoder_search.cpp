// attention_decoder's decoding in the evaluate and infer phases: greedy search and beam search over
// the decoder cell of attention_decoder.cpp, one step for all N * beam rows at a time, then each
// sentence's best finished hypothesis traced back into the hypothesis and attention outputs.
//
// A hypothesis finishes at <eos> or at its sentence's length limit
// floor(max_len_ratio * source length + max_len_offset); a sentence's search ends when none of its
// beams is alive. Finished hypotheses are ranked by log p / ((5 + |y|) / 6)^length_penalty
// (|y| counts <eos>; length_penalty 0: log p). <pad> and <sos> are never emitted.
#include "attention_decoder.hpp"
#include "attention_decoder_detail.hpp"

#include <algorithm>
#include <cmath>

namespace rnnflow::stages {

using attention_detail::copy_row;
using attention_detail::grow;

namespace {

constexpr double kNegInfD = -std::numeric_limits<double>::infinity();

// log-softmax of a logits row in double, <pad> and <sos> excluded (-inf).
void log_softmax(const float* lr, double* lp, std::int64_t V, std::int64_t pad, std::int64_t sos) {
    double mx = kNegInfD;
    for (std::int64_t v = 0; v < V; ++v)
        if (v != pad && v != sos) mx = std::max(mx, double(lr[v]));
    double z = 0;
    for (std::int64_t v = 0; v < V; ++v)
        if (v != pad && v != sos) z += std::exp(double(lr[v]) - mx);
    const double lse = mx + std::log(z);
    for (std::int64_t v = 0; v < V; ++v) lp[v] = (v == pad || v == sos) ? kNegInfD : double(lr[v]) - lse;
}

}  // namespace

// The state of one decoding call: limits, the finished hypotheses and the history they are traced
// back through (step t, row r: the token chosen, the row it continued, its attention weights).
struct AttentionDecoder::Search {
    struct Finished {
        double raw, norm;               // log p, and the ranking score
        std::int64_t t_last, row, len;  // chain ends at history (t_last, row); len tokens
    };
    std::int64_t N = 0, K = 1, R = 0, Ts = 0, Tmax = 0;
    std::vector<std::int64_t> maxlen;
    std::vector<std::vector<Finished>> fin;
    std::vector<char> done;
    std::int32_t* hist_tok = nullptr;
    std::int32_t* hist_parent = nullptr;
    float* hist_alpha = nullptr;

    bool all_done() const { return std::all_of(done.begin(), done.end(), [](char d) { return d != 0; }); }
    // Sentences whose limit is 0 finish at once with the empty hypothesis (row: its first beam).
    void finish_empty() {
        for (std::int64_t n = 0; n < N; ++n)
            if (maxlen[std::size_t(n)] <= 0) {
                done[std::size_t(n)] = 1;
                fin[std::size_t(n)].push_back({0.0, 0.0, -1, n * K, 0});
            }
    }
    // Records what row r chose at step t: token, parent row, attention weights.
    void record(std::int64_t t, std::int64_t r, std::int32_t token, std::int64_t parent, const float* alpha) {
        hist_tok[t * R + r] = token;
        hist_parent[t * R + r] = static_cast<std::int32_t>(parent);
        copy_row(hist_alpha + (t * R + r) * Ts, alpha, Ts);
    }
};

void AttentionDecoder::decode(const Tensor& memory, const Tensor* state, Tensor& hyp, Tensor& attn,
                              Work& w) {
    Search s = start_search(memory, state, w);
    const float* mem = memory.data<float>();
    if (beam_search_) beam_search(s, w, mem);
    else greedy_search(s, w, mem);
    write_best(s, hyp, attn);
    if (scoring_ == Scoring::none) {  // no attention weights to show: (1, N, Ts), lengths 0
        attn.resize(DType::f32, {1, s.N, s.Ts});
        attn.zero();
        attn.lengths.assign(std::size_t(s.N), 0);
    }
}

// Length limits, the bridge's initial state copied to every beam, buffers and history.
AttentionDecoder::Search AttentionDecoder::start_search(const Tensor& memory, const Tensor* state, Work& w) {
    Search s;
    s.N = memory.dim(1);
    s.Ts = memory.dim(0);
    s.K = beam_search_ ? beam_ : 1;
    s.R = s.N * s.K;
    const std::int64_t N = s.N, K = s.K, R = s.R, H = H_, GH = gates() * H_, Ts = s.Ts;
    s.maxlen.resize(static_cast<std::size_t>(N));
    s.fin.resize(static_cast<std::size_t>(N));
    s.done.assign(static_cast<std::size_t>(N), 0);
    for (std::int64_t n = 0; n < N; ++n) {
        s.maxlen[std::size_t(n)] = static_cast<std::int64_t>(
            std::floor(max_len_ratio_ * double(w.src_len[std::size_t(n)]) + double(max_len_offset_)));
        s.Tmax = std::max(s.Tmax, s.maxlen[std::size_t(n)]);
    }
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
    std::fill_n(grow(w.dec_alpha, R * Ts), R * Ts, 0.f);  // stays 0 with attention: none
    grow(w.dec_cat, R * (Ec_ + H_));
    if (scoring_ == Scoring::bahdanau) {
        grow(w.dec_qp, R * A_);
        grow(w.dec_tb, R * Ts * A_);
    }
    std::fill_n(grow(w.dec_ht, R * H), R * H, 0.f);
    grow(w.dec_nht, R * H);
    grow(w.dec_logits, R * V_);
    std::fill_n(grow(w.dec_tok, R), R, sos_);
    const std::int64_t hist = std::max<std::int64_t>(s.Tmax, 1);
    s.hist_tok = grow(w.hist_tok, hist * R);
    s.hist_parent = grow(w.hist_parent, hist * R);
    s.hist_alpha = grow(w.hist_alpha, hist * R * Ts);
    return s;
}

// One decoder step for all R rows: the tokens in w.dec_tok in, w.dec_logits and w.dec_alpha out.
void AttentionDecoder::decode_step(const Search& s, Work& w, const float* mem) const {
    const std::int64_t R = s.R, H = H_, C0 = in_channels(0);
    float* x = w.dec_x.data();
    const float* emb = pv(i_emb_);
    for (std::int64_t r = 0; r < R; ++r) {
        copy_row(x + r * C0, emb + std::int64_t(w.dec_tok[std::size_t(r)]) * Ee_, Ee_);
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
        fixed_context(w.ctx.data(), R, s.N, s.K, w.dec_h[L_ - 1].data(), w.dec_cat.data());
    else
        attend(s.K, 1, s.K, w.dec_h[L_ - 1].data(), mem, w.src_len.data(), s.Ts, s.N, w.keys.data(),
               w.dec_alpha.data(), w.dec_cat.data(), w.dec_qp.data(), w.dec_tb.data());
    combine_output(R, w.dec_cat.data(), w.dec_ht.data(), w.dec_ht.data(), w.dec_logits.data(), nullptr);
}

// Greedy search: each sentence takes its most probable token until <eos> or its limit.
void AttentionDecoder::greedy_search(Search& s, Work& w, const float* mem) const {
    const std::int64_t N = s.N, V = V_;
    std::vector<double> raw(static_cast<std::size_t>(N), 0.0), lp(static_cast<std::size_t>(V));
    std::vector<std::int64_t> len(static_cast<std::size_t>(N), 0);
    s.finish_empty();
    for (std::int64_t t = 0; t < s.Tmax && !s.all_done(); ++t) {
        decode_step(s, w, mem);
        for (std::int64_t n = 0; n < N; ++n) {
            const std::size_t un = std::size_t(n);
            if (s.done[un]) continue;
            const float* lr = w.dec_logits.data() + n * V;
            std::int64_t best = -1;
            for (std::int64_t v = 0; v < V; ++v)
                if (v != pad_ && v != sos_ && (best < 0 || lr[v] > lr[best])) best = v;
            log_softmax(lr, lp.data(), V, pad_, sos_);
            raw[un] += lp[std::size_t(best)];
            w.dec_tok[un] = static_cast<std::int32_t>(best);
            s.record(t, n, w.dec_tok[un], n, w.dec_alpha.data() + n * s.Ts);
            if (best == eos_) {
                s.fin[un].push_back({raw[un], raw[un], t - 1, n, len[un]});
                s.done[un] = 1;
            } else if (++len[un] == s.maxlen[un]) {
                s.fin[un].push_back({raw[un], raw[un], t, n, len[un]});
                s.done[un] = 1;
            }
        }
    }
}

// Beam search: per sentence, the K best continuations of its live beams; those ending in <eos>
// finish, the others become the next step's beams (slots n * K + k; dead slots score -inf).
void AttentionDecoder::beam_search(Search& s, Work& w, const float* mem) const {
    const std::int64_t N = s.N, K = s.K, R = s.R, V = V_;
    double* score = grow(w.score, R);
    double* lps = grow(w.logp, R * V);
    for (std::int64_t r = 0; r < R; ++r) score[r] = (r % K == 0) ? 0.0 : kNegInfD;
    s.finish_empty();
    for (std::int64_t t = 0; t < s.Tmax && !s.all_done(); ++t) {
        decode_step(s, w, mem);
        for (std::int64_t r = 0; r < R; ++r)
            if (score[r] > kNegInfD && !s.done[std::size_t(r / K)])
                log_softmax(w.dec_logits.data() + r * V, lps + r * V, V, pad_, sos_);
        for (std::int64_t n = 0; n < N; ++n) extend_beams(s, w, n, t);
        reorder_beams(s, w, t);
        // Length limit: live beams finish unterminated.
        for (std::int64_t n = 0; n < N; ++n) {
            if (s.done[std::size_t(n)] || t + 1 < s.maxlen[std::size_t(n)]) continue;
            for (std::int64_t k = 0; k < K; ++k)
                if (score[n * K + k] > kNegInfD)
                    s.fin[std::size_t(n)].push_back(
                        {score[n * K + k], score[n * K + k] / length_penalty(t + 1), t, n * K + k, t + 1});
            s.done[std::size_t(n)] = 1;
        }
    }
}

// GNMT's length normaliser ((5 + len) / 6)^alpha; 1 when length_penalty is 0.
double AttentionDecoder::length_penalty(std::int64_t len) const {
    return length_penalty_ > 0 ? std::pow((5.0 + double(len)) / 6.0, length_penalty_) : 1.0;
}

// Sentence n at step t: the K best (score + log p) candidates over its live beams into
// w.new_score / new_src / new_tok; candidates ending in <eos> finish.
void AttentionDecoder::extend_beams(Search& s, Work& w, std::int64_t n, std::int64_t t) const {
    const std::int64_t K = s.K, V = V_;
    const double* score = w.score.data();
    const double* lps = w.logp.data();
    double* nscore = grow(w.new_score, s.R);
    std::int32_t* nsrc = grow(w.new_src, s.R);
    std::int32_t* ntok = grow(w.new_tok, s.R);
    for (std::int64_t k = 0; k < K; ++k) {  // default: dead slot keeping its row
        nscore[n * K + k] = kNegInfD;
        nsrc[n * K + k] = static_cast<std::int32_t>(n * K + k);
        ntok[n * K + k] = pad_ >= 0 ? pad_ : 0;
    }
    if (s.done[std::size_t(n)]) return;
    std::vector<std::int64_t>& cand = w.cand;
    cand.clear();
    for (std::int64_t k = 0; k < K; ++k) {
        if (score[n * K + k] == kNegInfD) continue;
        for (std::int64_t v = 0; v < V; ++v)
            if (lps[(n * K + k) * V + v] > kNegInfD) cand.push_back(k * V + v);
    }
    auto total = [&](std::int64_t c) { return score[n * K + c / V] + lps[(n * K + c / V) * V + c % V]; };
    const std::size_t top = std::min<std::size_t>(cand.size(), std::size_t(K));
    std::partial_sort(cand.begin(), cand.begin() + std::ptrdiff_t(top), cand.end(),
                      [&](std::int64_t a, std::int64_t b) {
                          const double ta = total(a), tb = total(b);
                          return ta > tb || (ta == tb && a < b);
                      });
    std::int64_t live = 0;
    for (std::size_t i = 0; i < top; ++i) {
        const std::int64_t c = cand[i], src = n * K + c / V, v = c % V;
        const double sc = total(c);
        if (v == eos_) {
            s.fin[std::size_t(n)].push_back({sc, sc / length_penalty(t + 1), t - 1, src, t});
        } else {
            const std::int64_t slot = n * K + live++;
            nscore[slot] = sc;
            nsrc[slot] = static_cast<std::int32_t>(src);
            ntok[slot] = static_cast<std::int32_t>(v);
        }
    }
    if (live == 0) s.done[std::size_t(n)] = 1;
}

// The new beams take their parents' states, h~, scores; step t's history is recorded.
void AttentionDecoder::reorder_beams(Search& s, Work& w, std::int64_t t) const {
    const std::int64_t R = s.R, H = H_;
    const std::int32_t* nsrc = w.new_src.data();
    for (std::int64_t l = 0; l < L_; ++l) {
        std::swap(w.dec_h[l], w.dec_nh[l]);
        if (lstm_) std::swap(w.dec_c[l], w.dec_nc[l]);
        for (std::int64_t r = 0; r < R; ++r) {
            copy_row(w.dec_h[l].data() + r * H, w.dec_nh[l].data() + nsrc[r] * H, H);
            if (lstm_) copy_row(w.dec_c[l].data() + r * H, w.dec_nc[l].data() + nsrc[r] * H, H);
        }
    }
    float* ht = w.dec_ht.data();
    float* nht = w.dec_nht.data();
    for (std::int64_t r = 0; r < R; ++r) {
        copy_row(nht + r * H, ht + nsrc[r] * H, H);
        s.record(t, r, w.new_tok[std::size_t(r)], nsrc[r], w.dec_alpha.data() + nsrc[r] * s.Ts);
        w.dec_tok[std::size_t(r)] = w.new_tok[std::size_t(r)];
        w.score[std::size_t(r)] = w.new_score[std::size_t(r)];
    }
    copy_row(ht, nht, R * H);
}

// The best finished hypothesis per sentence, traced back through the history into hyp and attn.
void AttentionDecoder::write_best(const Search& s, Tensor& hyp, Tensor& attn) {
    const std::int64_t N = s.N, R = s.R, Ts = s.Ts;
    hyp_logp_.assign(std::size_t(N), 0.0);
    hyp_score_.assign(std::size_t(N), 0.0);
    std::vector<const Search::Finished*> best(std::size_t(N), nullptr);
    std::int64_t Th = 1;
    for (std::int64_t n = 0; n < N; ++n) {
        const Search::Finished*& b = best[std::size_t(n)];
        for (const Search::Finished& f : s.fin[std::size_t(n)])
            if (!b || f.norm > b->norm) b = &f;
        RNNFLOW_ASSERT(b != nullptr);
        Th = std::max(Th, b->len);
        hyp_logp_[std::size_t(n)] = b->raw;
        hyp_score_[std::size_t(n)] = b->norm;
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
        const Search::Finished& f = *best[std::size_t(n)];
        hyp.lengths[std::size_t(n)] = static_cast<std::int32_t>(f.len);
        attn.lengths[std::size_t(n)] = static_cast<std::int32_t>(f.len);
        std::int64_t row = f.row;
        for (std::int64_t t = f.t_last; t >= 0; --t) {
            RNNFLOW_ASSERT(t < f.len);
            hy[t * N + n] = s.hist_tok[t * R + row];
            copy_row(at + (t * N + n) * Ts, s.hist_alpha + (t * R + row) * Ts, Ts);
            row = s.hist_parent[t * R + row];
        }
    }
}

}  // namespace rnnflow::stages
