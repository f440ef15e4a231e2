// Greedy and beam search over a DecodeModel (decode_search.hpp has the rules).
#include "decode_search.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.hpp"

namespace rnnflow {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

template <class T>
T* grow(std::vector<T>& v, std::int64_t n) {  // grow-only: reused by the next, smaller run
    if (static_cast<std::int64_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
    return v.data();
}

}  // namespace

void DecodeSearch::run(DecodeModel& model, const DecodeOptions& o, std::span<const std::int64_t> max_len,
                       Tensor& hyp, Tensor* attn) {
    start(o, max_len);
    if (o.beam_search) beam(model);
    else greedy(model);
    write_best(hyp, attn);
    o_ = nullptr;
}

// Limits, the rows' first tokens, buffers; sentences whose limit is 0 finish at once with the empty
// hypothesis (row: their first beam).
void DecodeSearch::start(const DecodeOptions& o, std::span<const std::int64_t> max_len) {
    RNNFLOW_ASSERT(o.vocabulary > 0 && o.beam >= 1 && o.attention >= 0);
    o_ = &o;
    N_ = static_cast<std::int64_t>(max_len.size());
    K_ = o.beam_search ? o.beam : 1;
    R_ = N_ * K_;
    V_ = o.vocabulary;
    A_ = o.attention;
    max_len_.assign(max_len.begin(), max_len.end());
    Tmax_ = 0;
    for (const std::int64_t m : max_len_) Tmax_ = std::max(Tmax_, m);
    allowed_.assign(std::size_t(V_), 1);
    for (const std::int32_t b : o.banned)
        if (b >= 0 && b < V_) allowed_[std::size_t(b)] = 0;
    fin_.resize(std::size_t(N_));
    for (auto& f : fin_) f.clear();
    done_.assign(std::size_t(N_), 0);
    tok_.assign(std::size_t(R_), o.start);
    const std::int64_t hist = std::max<std::int64_t>(Tmax_, 1);
    grow(hist_tok_, hist * R_);
    grow(hist_parent_, hist * R_);
    if (A_ > 0) grow(hist_attn_, hist * R_ * A_);
    for (std::int64_t n = 0; n < N_; ++n)
        if (max_len_[std::size_t(n)] <= 0) {
            done_[std::size_t(n)] = 1;
            fin_[std::size_t(n)].push_back({0.0, 0.0, -1, n * K_, 0});
        }
}

// log-softmax of a logits row in double over the allowed ids; banned ids get -inf.
void DecodeSearch::log_softmax(const float* lr, double* lp) const {
    const char* ok = allowed_.data();
    double mx = kNegInf;
    for (std::int64_t v = 0; v < V_; ++v)
        if (ok[v]) mx = std::max(mx, double(lr[v]));
    double z = 0;
    for (std::int64_t v = 0; v < V_; ++v)
        if (ok[v]) z += std::exp(double(lr[v]) - mx);
    const double lse = mx + std::log(z);
    for (std::int64_t v = 0; v < V_; ++v) lp[v] = ok[v] ? double(lr[v]) - lse : kNegInf;
}

bool DecodeSearch::all_done() const {
    return std::all_of(done_.begin(), done_.end(), [](char d) { return d != 0; });
}

// History of step t, row r: the token chosen, the row it continued, that row's attention weights.
void DecodeSearch::record(std::int64_t t, std::int64_t r, std::int32_t token, std::int64_t parent,
                          const DecodeStep& st) {
    hist_tok_[std::size_t(t * R_ + r)] = token;
    hist_parent_[std::size_t(t * R_ + r)] = static_cast<std::int32_t>(parent);
    if (A_ > 0)
        std::memcpy(hist_attn_.data() + (t * R_ + r) * A_, st.attention.data() + parent * A_,
                    sizeof(float) * std::size_t(A_));
}

// Greedy search: each sentence takes its most probable token until <eos> or its limit.
void DecodeSearch::greedy(DecodeModel& model) {
    raw_.assign(std::size_t(N_), 0.0);
    len_.assign(std::size_t(N_), 0);
    grow(lp_, V_);
    for (std::int64_t t = 0; t < Tmax_ && !all_done(); ++t) {
        const DecodeStep st = model.step(tok_);
        RNNFLOW_ASSERT(std::int64_t(st.logits.size()) >= R_ * V_);
        RNNFLOW_ASSERT(A_ == 0 || std::int64_t(st.attention.size()) >= R_ * A_);
        for (std::int64_t n = 0; n < N_; ++n)
            if (!done_[std::size_t(n)]) greedy_pick(n, t, st);
    }
}

// Sentence n at step t: the arg max of its logits (the first on a tie), scored by its log p.
void DecodeSearch::greedy_pick(std::int64_t n, std::int64_t t, const DecodeStep& st) {
    const std::size_t un = std::size_t(n);
    const float* lr = st.logits.data() + n * V_;
    std::int64_t best = -1;
    for (std::int64_t v = 0; v < V_; ++v)
        if (allowed_[std::size_t(v)] && (best < 0 || lr[v] > lr[best])) best = v;
    RNNFLOW_ASSERT(best >= 0);
    log_softmax(lr, lp_.data());
    raw_[un] += lp_[std::size_t(best)];
    tok_[un] = static_cast<std::int32_t>(best);
    record(t, n, tok_[un], n, st);
    if (best == o_->eos) {
        fin_[un].push_back({raw_[un], raw_[un], t - 1, n, len_[un]});
        done_[un] = 1;
    } else if (++len_[un] == max_len_[un]) {
        fin_[un].push_back({raw_[un], raw_[un], t, n, len_[un]});
        done_[un] = 1;
    }
}

// Beam search: per sentence, the K best continuations of its live beams; those ending in <eos>
// finish, the others become the next step's beams.
void DecodeSearch::beam(DecodeModel& model) {
    double* score = grow(beam_score_, R_);
    double* lps = grow(lp_, R_ * V_);
    grow(new_score_, R_);
    grow(new_src_, R_);
    grow(new_tok_, R_);
    for (std::int64_t r = 0; r < R_; ++r) score[r] = (r % K_ == 0) ? 0.0 : kNegInf;
    for (std::int64_t t = 0; t < Tmax_ && !all_done(); ++t) {
        const DecodeStep st = model.step(tok_);
        RNNFLOW_ASSERT(std::int64_t(st.logits.size()) >= R_ * V_);
        RNNFLOW_ASSERT(A_ == 0 || std::int64_t(st.attention.size()) >= R_ * A_);
        for (std::int64_t r = 0; r < R_; ++r)
            if (score[r] > kNegInf && !done_[std::size_t(r / K_)])
                log_softmax(st.logits.data() + r * V_, lps + r * V_);
        for (std::int64_t n = 0; n < N_; ++n) extend_beams(n, t);
        advance_beams(t, st);
        model.reorder(std::span<const std::int32_t>(new_src_.data(), std::size_t(R_)));
        finish_at_limit(t);
    }
}

// GNMT's length normaliser ((5 + len) / 6)^alpha; 1 when length_penalty is 0.
double DecodeSearch::length_penalty(std::int64_t len) const {
    return o_->length_penalty > 0 ? std::pow((5.0 + double(len)) / 6.0, o_->length_penalty) : 1.0;
}

// Sentence n at step t: the K best (score + log p) candidates over its live beams into new_score_,
// new_src_, new_tok_ (ties: the lower beam, then the lower id); candidates ending in <eos> finish.
void DecodeSearch::extend_beams(std::int64_t n, std::int64_t t) {
    const std::int64_t K = K_, V = V_;
    const double* score = beam_score_.data();
    const double* lps = lp_.data();
    double* nscore = new_score_.data();
    std::int32_t* nsrc = new_src_.data();
    std::int32_t* ntok = new_tok_.data();
    for (std::int64_t k = 0; k < K; ++k) {  // default: dead slot keeping its row
        nscore[n * K + k] = kNegInf;
        nsrc[n * K + k] = static_cast<std::int32_t>(n * K + k);
        ntok[n * K + k] = o_->pad >= 0 ? o_->pad : 0;
    }
    if (done_[std::size_t(n)]) return;
    cand_.clear();
    for (std::int64_t k = 0; k < K; ++k) {
        if (score[n * K + k] == kNegInf) continue;
        for (std::int64_t v = 0; v < V; ++v)
            if (lps[(n * K + k) * V + v] > kNegInf) cand_.push_back(k * V + v);
    }
    auto total = [&](std::int64_t c) { return score[n * K + c / V] + lps[(n * K + c / V) * V + c % V]; };
    const std::size_t top = std::min<std::size_t>(cand_.size(), std::size_t(K));
    std::partial_sort(cand_.begin(), cand_.begin() + std::ptrdiff_t(top), cand_.end(),
                      [&](std::int64_t a, std::int64_t b) {
                          const double ta = total(a), tb = total(b);
                          return ta > tb || (ta == tb && a < b);
                      });
    std::int64_t live = 0;
    for (std::size_t i = 0; i < top; ++i) {
        const std::int64_t c = cand_[i], src = n * K + c / V, v = c % V;
        const double sc = total(c);
        if (v == o_->eos) {
            fin_[std::size_t(n)].push_back({sc, sc / length_penalty(t + 1), t - 1, src, t});
        } else {
            const std::int64_t slot = n * K + live++;
            nscore[slot] = sc;
            nsrc[slot] = static_cast<std::int32_t>(src);
            ntok[slot] = static_cast<std::int32_t>(v);
        }
    }
    if (live == 0) done_[std::size_t(n)] = 1;
}

// Step t's history (each new beam's token, parent, and the parent's attention row), then the new
// beams' tokens and scores; the model's states follow in reorder.
void DecodeSearch::advance_beams(std::int64_t t, const DecodeStep& st) {
    for (std::int64_t r = 0; r < R_; ++r) {
        const std::size_t ur = std::size_t(r);
        record(t, r, new_tok_[ur], new_src_[ur], st);
        tok_[ur] = new_tok_[ur];
        beam_score_[ur] = new_score_[ur];
    }
}

// Length limit after step t: a sentence's live beams finish unterminated.
void DecodeSearch::finish_at_limit(std::int64_t t) {
    for (std::int64_t n = 0; n < N_; ++n) {
        if (done_[std::size_t(n)] || t + 1 < max_len_[std::size_t(n)]) continue;
        for (std::int64_t k = 0; k < K_; ++k) {
            const double sc = beam_score_[std::size_t(n * K_ + k)];
            if (sc > kNegInf) fin_[std::size_t(n)].push_back({sc, sc / length_penalty(t + 1), t, n * K_ + k, t + 1});
        }
        done_[std::size_t(n)] = 1;
    }
}

// The best finished hypothesis per sentence, traced back through the history into hyp and attn.
void DecodeSearch::write_best(Tensor& hyp, Tensor* attn) {
    const std::int64_t N = N_, R = R_, A = A_;
    log_prob_.assign(std::size_t(N), 0.0);
    score_.assign(std::size_t(N), 0.0);
    std::vector<const Finished*> best(std::size_t(N), nullptr);
    std::int64_t Th = 1;
    for (std::int64_t n = 0; n < N; ++n) {
        const Finished*& b = best[std::size_t(n)];
        for (const Finished& f : fin_[std::size_t(n)])
            if (!b || f.norm > b->norm) b = &f;
        RNNFLOW_ASSERT(b != nullptr);
        Th = std::max(Th, b->len);
        log_prob_[std::size_t(n)] = b->raw;
        score_[std::size_t(n)] = b->norm;
    }
    if (A == 0) attn = nullptr;
    hyp.resize(DType::i32, {Th, N});
    hyp.lengths.assign(std::size_t(N), 0);
    std::int32_t* hy = hyp.data<std::int32_t>();
    std::fill_n(hy, Th * N, o_->pad >= 0 ? o_->pad : 0);
    float* at = nullptr;
    if (attn) {
        attn->resize(DType::f32, {Th, N, A});
        attn->lengths.assign(std::size_t(N), 0);
        at = attn->data<float>();
        std::fill_n(at, Th * N * A, 0.f);
    }
    for (std::int64_t n = 0; n < N; ++n) {
        const Finished& f = *best[std::size_t(n)];
        hyp.lengths[std::size_t(n)] = static_cast<std::int32_t>(f.len);
        if (attn) attn->lengths[std::size_t(n)] = static_cast<std::int32_t>(f.len);
        std::int64_t row = f.row;
        for (std::int64_t t = f.t_last; t >= 0; --t) {
            RNNFLOW_ASSERT(t < f.len);
            hy[t * N + n] = hist_tok_[std::size_t(t * R + row)];
            if (at)
                std::memcpy(at + (t * N + n) * A, hist_attn_.data() + (t * R + row) * A, sizeof(float) * std::size_t(A));
            row = hist_parent_[std::size_t(t * R + row)];
        }
    }
}

}  // namespace rnnflow
