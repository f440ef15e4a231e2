// Greedy and beam search for any decoder stage: the decoder runs one step for a set of rows and
// lets beams follow their parents; DecodeSearch keeps the bookkeeping (live beams and their
// scores, finished hypotheses, their ranking, the history they are traced back through).
//
// In the SDK so that a plug-in's decoder can use it as the built-in attention_decoder does: it
// needs nothing but Tensor.
//
//   rows      greedy: one per sentence, r = n; beam: r = n * beam + k (sentence n, beam k)
//   step t    the decoder gets every row's last token (<start> at t = 0) and gives logits (rows, V),
//             optionally attention weights (rows, A); the search takes log p = log-softmax of the
//             logits over the allowed ids (in double; banned ids never emitted)
//   greedy    each sentence takes its most probable token
//   beam      each sentence keeps the `beam` best (log p of the prefix) continuations of its live
//             beams; a continuation ending in <eos> finishes, the others are the next step's beams
//             (slots n * beam + k in rank order; dead slots score -inf); then reorder(parents)
//   limits    a hypothesis finishes at <eos> (not part of it, but counted in |y|) or unterminated at
//             its sentence's max_len tokens; a sentence's search ends when none of its beams is
//             alive; max_len <= 0 gives the empty hypothesis at once
//   ranking   finished hypotheses by log p / lp, lp = ((5 + |y|) / 6)^length_penalty (GNMT, Wu et
//             al. 2016; 0: lp = 1); greedy: log p; the first finished wins a tie
//
// Not supported: sampling, n-best lists, coverage penalties, constrained decoding.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tensor.hpp"

namespace rnnflow {

// What one decoding step gives, for all rows (pointers into the decoder's buffers, valid until its
// next step or reorder).
struct DecodeStep {
    std::span<const float> logits;     // (rows, V) unnormalised scores
    std::span<const float> attention;  // (rows, A) weights to record, or empty (A = 0)
};

// The decoder side of a search. Before DecodeSearch::run, the decoder sets up `rows` rows for its
// N sentences, each beam of a sentence starting from the sentence's initial state.
class DecodeModel {
public:
    virtual ~DecodeModel() = default;
    // Feeds each row its next input token (rows); returns the step's logits and attention rows.
    virtual DecodeStep step(std::span<const std::int32_t> tokens) = 0;
    // Beam search, after each step: row r continues from row parents[r] (rows), so every row takes
    // over the state that its parent reached in the step.
    virtual void reorder(std::span<const std::int32_t> parents) = 0;
};

struct DecodeOptions {
    std::int64_t vocabulary = 0;        // V, the logits' row width
    std::int64_t attention = 0;         // A, the attention rows' width (0: none recorded)
    bool beam_search = false;           // false: greedy
    std::int64_t beam = 1;              // beams per sentence (beam search)
    double length_penalty = 0.0;        // GNMT alpha (beam search; 0: raw log p)
    std::int32_t start = 0;             // every row's first input (<sos>)
    std::int32_t eos = 0;               // ends a hypothesis
    std::int32_t pad = -1;              // fills dead beams and the hypothesis' padding (-1: 0)
    std::vector<std::int32_t> banned;   // never emitted (<pad>, <sos>; -1 entries ignored)
};

// One search per call of run; the buffers are kept and reused (grow-only) by the next call.
class DecodeSearch {
public:
    // Decodes N = max_len.size() sentences over model's N * (beam or 1) rows. Writes hyp: ids
    // (Th, N) + lengths, the best hypothesis per sentence without <eos>, padded; and, when
    // o.attention > 0 and attn is given, attn: f32 (Th, N, A) + lengths, each hypothesis token's
    // attention row. Th = max(1, longest hypothesis).
    void run(DecodeModel& model, const DecodeOptions& o, std::span<const std::int64_t> max_len,
             Tensor& hyp, Tensor* attn);
    // The last run's best hypotheses: log p, and the ranking score, per sentence.
    const std::vector<double>& log_prob() const { return log_prob_; }
    const std::vector<double>& score() const { return score_; }

private:
    struct Finished {
        double raw, norm;               // log p, and the ranking score
        std::int64_t t_last, row, len;  // chain ends at history (t_last, row); len tokens
    };
    void start(const DecodeOptions& o, std::span<const std::int64_t> max_len);
    void log_softmax(const float* logits, double* lp) const;
    bool all_done() const;
    void record(std::int64_t t, std::int64_t r, std::int32_t token, std::int64_t parent,
                const DecodeStep& st);
    void greedy(DecodeModel& model);
    void greedy_pick(std::int64_t n, std::int64_t t, const DecodeStep& st);
    void beam(DecodeModel& model);
    void extend_beams(std::int64_t n, std::int64_t t);
    void advance_beams(std::int64_t t, const DecodeStep& st);
    void finish_at_limit(std::int64_t t);
    double length_penalty(std::int64_t len) const;
    void write_best(Tensor& hyp, Tensor* attn);

    const DecodeOptions* o_ = nullptr;
    std::int64_t N_ = 0, K_ = 1, R_ = 0, V_ = 0, A_ = 0, Tmax_ = 0;
    std::vector<std::int64_t> max_len_;
    std::vector<char> allowed_;              // (V) not banned
    std::vector<std::vector<Finished>> fin_;  // per sentence
    std::vector<char> done_;                 // per sentence
    std::vector<std::int32_t> tok_;          // (R) the rows' next inputs
    std::vector<double> raw_;                // greedy: (N) log p so far
    std::vector<std::int64_t> len_;          // greedy: (N) tokens so far
    std::vector<double> lp_;                 // greedy: (V); beam: (R, V) log p of the step
    std::vector<double> beam_score_, new_score_;  // beam: (R) log p of the prefix; -inf dead
    std::vector<std::int32_t> new_src_, new_tok_;  // beam: (R) the next beams' parents, tokens
    std::vector<std::int64_t> cand_;         // beam: candidates k * V + v of one sentence
    std::vector<std::int32_t> hist_tok_, hist_parent_;  // (Tmax, R) per step and row
    std::vector<float> hist_attn_;           // (Tmax, R, A)
    std::vector<double> log_prob_, score_;
};

}  // namespace rnnflow
