// crf: a linear-chain conditional random field over per-token scores — a tagger's loss and decoder.
//
// A tag path y_0 .. y_{L-1} of a sequence of length L scores
//   s(y) = start[y_0] + Σ_{t<L} scores[t, y_t] + Σ_{0<t<L} transitions[y_{t-1}, y_t] + end[y_{L-1}]
// and p(y | scores) = exp s(y) / Z, Z = Σ over all K^L paths of exp s(y'). The loss of a sequence
// is its negative log-likelihood NLL = log Z - s(gold). log Z comes from the forward algorithm in
// log space: α_0[j] = start[j] + scores[0, j], α_t[j] = scores[t, j] + lse_i(α_{t-1}[i] +
// transitions[i, j]), log Z = lse_j(α_{L-1}[j] + end[j]), lse(x) = m + log Σ exp(x - m), m = max x
// (stable; -inf when every x is -inf). Decoding is Viterbi: the same recursion with max for lse.
//
// Ports:  scores   tensor f32 (T, N, K) + lengths: per-token tag scores (e.g. a `linear` with
//                  out_dim: tags.size)
//         target   ids    i32 (T, N) + lengths: gold tag ids, as cross_entropy's target. Column n
//                  is scored when its target length is > 0 (then it must equal the scores'
//                  length); prediction runs give lengths 0, and the stage only decodes.
//         loss     loss   f32 (2) = (Σ NLL over scored columns, count); count = their tokens
//                  (average: token, the default — the same scale as cross_entropy's per-token
//                  mean, so optimiser settings carry over when the CRF replaces a softmax head)
//                  or the number of scored columns (average: sequence, as Lample et al. sum per
//                  sentence). A `perplexity` on it reports exp(NLL per token or per sentence).
//         decoded  tensor f32 (T, N, K) + the scores' lengths: the Viterbi path one-hot (1 at the
//                  path's tag, 0 elsewhere; all 0 at padded steps), so that argmax over K is the
//                  Viterbi tag — evaluators and prediction take it in place of logits
//                  (classification_metrics: logits: crf.decoded). It carries no gradient.
// Params: transitions (K, K) [from, to], start (K), end (K); all start at zero (the usual CRF
//         start: every path equally likely until the scores and data say otherwise), so the
//         stage needs no random numbers. Saved and restored by name like other parameters, and
//         `init:` transfers them as for any model stage.
// Exact with padded, ragged batches: column n uses only its own L = length(n) steps, with start
//   at its step 0 and end at its step L - 1; padded steps get no gradient and decode to zeros.
// constraints: none | iob1 | iob2 | iobes: transitions a tag scheme forbids are -inf in both the
//   forward algorithm and Viterbi, and their gradients stay zero (the parameter values there are
//   kept but never read). Tag names come from the target's vocabulary (pipeline/core/
//   tag_scheme.hpp's parse_tag: "B-PER" → B, PER). Forbidden: iob2 O/B-Y/I-Y → I-X (Y ≠ X) and
//   start → I-X; iob1 O/I-Y/B-Y → B-X (Y ≠ X) and start → B-X; iobes anything but B-X / I-X →
//   I-X / E-X, B-X / I-X → anything but I-X / E-X, start → I-X / E-X, B-X / I-X → end. Tags that
//   are not "O" or a known prefix with a type (e.g. a <pad> special) are not constrained. A gold
//   path that uses a forbidden transition is an error naming it (its NLL would be infinite).
// Backward (g = diff_loss[0]; diff_loss[1] multiplies the count, a constant: ignored): with the
//   backward recursion β_{L-1}[j] = end[j], β_t[i] = lse_j(transitions[i, j] + scores[t+1, j] +
//   β_{t+1}[j]), the marginals p_t(j) = exp(α_t[j] + β_t[j] - log Z) and p_t(i, j) =
//   exp(α_{t-1}[i] + transitions[i, j] + scores[t, j] + β_t[j] - log Z) give expected counts; the
//   gradient is g · (expected - gold counts): diff_scores[t, n, j] = g (p_t(j) - [y_t = j]),
//   transitions += g Σ_t (p_t(i, j) - [y_{t-1} = i, y_t = j]), start += g (p_0 - onehot(y_0)),
//   end += g (p_{L-1} - onehot(y_{L-1})). Everything is computed in double (the parameters and
//   scores converted once per call); columns one after another, so sums do not depend on threads.
//   Cost O(T N K²) per forward and per backward, against the O(T N H²) of the recurrent layers
//   below it: each step of both recursions is a matrix-vector product on exp-scaled values (K exp
//   and K² multiply-adds, the K² exp of the transitions taken once per sequence), falling back to
//   plain log-sum-exp where scaling would underflow (crf.cpp, LogMatVec). Measured (K = 17, T 30,
//   N 16, 1 thread, loaded 2-core machine): about 2 µs per token forward (α and Viterbi) and 2-4 µs
//   backward, against 7 and 13 µs with K² exp per step.
// References: Lafferty, McCallum & Pereira, "Conditional Random Fields" (ICML 2001); Collobert et
//   al., "Natural Language Processing (Almost) from Scratch" (JMLR 2011, the sentence-level
//   log-likelihood over network scores); Lample et al., "Neural Architectures for Named Entity
//   Recognition" (NAACL 2016, the bi-LSTM-CRF with start / end scores).
// Not supported: higher-order (second-order) CRFs, semi-Markov (segment) CRFs, k-best Viterbi,
//   max-marginal or posterior outputs (decoded is the one-hot path), constraints for schemes other
//   than IOB1 / IOB2 / IOBES, and gradients through `decoded`.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

// The algorithms on one sequence, in double, for the stage and its tests. Emissions e (L, K)
// row-major; forbidden transitions are -inf in the model.
namespace crf {

struct Model {
    std::int64_t K = 0;
    const double* transitions = nullptr;  // (K, K) [from, to]
    const double* start = nullptr;        // (K)
    const double* end = nullptr;          // (K)
};

// log Z by the forward algorithm; writes alpha (L, K). L >= 1.
double forward_alpha(const Model& m, const double* e, std::int64_t L, double* alpha);
// s(y) of the path y (L); -inf when it uses a forbidden transition.
double path_score(const Model& m, const double* e, std::int64_t L, const std::int32_t* y);
// Adds g · ∂(log Z - s(y)) into d_e (L, K), d_transitions (K, K), d_start (K), d_end (K), given
// forward_alpha's alpha and log Z; beta (L, K) is scratch.
void nll_backward(const Model& m, const double* e, std::int64_t L, const std::int32_t* y,
                  const double* alpha, double log_z, double g, double* beta, double* d_e,
                  double* d_transitions, double* d_start, double* d_end);
// The best path into y (L); returns its score. delta (L, K) and back (L, K) are scratch.
double viterbi(const Model& m, const double* e, std::int64_t L, std::int32_t* y, double* delta,
               std::int32_t* back);

// Which transitions a scheme allows among `tags` (names in id order): 1 allowed, 0 forbidden.
struct Allowed {
    std::vector<char> transitions;  // (K, K) [from, to]
    std::vector<char> start, end;   // (K)
};
// scheme: "none", "iob1", "iob2" or "iobes".
Allowed allowed_transitions(const std::vector<std::string>& tags, const std::string& scheme);

}  // namespace crf

class Crf final : public ModelStage {
public:
    static StageSchema schema();
    explicit Crf(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override;
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override;
    std::span<Param> params() override { return params_; }

private:
    // The parameters in double with forbidden entries at -inf, in `buf` (K² + 2K): a buffer of
    // the caller's, so that forward and backward share no scratch.
    crf::Model model(std::vector<double>& buf) const;
    Error forbidden_gold(const std::vector<std::int32_t>& y, std::int64_t n) const;

    std::string constraints_;
    bool per_sequence_;           // average: sequence
    std::int64_t K_ = 0;
    std::vector<std::string> tags_;  // the target vocabulary's names, for messages (may be empty)
    crf::Allowed allowed_;
    std::array<Param, 3> params_;  // transitions (K, K), start (K), end (K)
};

}  // namespace rnnflow::stages
