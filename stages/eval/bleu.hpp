// Corpus BLEU as sacreBLEU 2 computes it by default (BLEU with tokenize='13a', smooth_method='exp',
// max n-gram order 4, effective_order off), with one or several references per segment.
//
//   tokens  = tokenize_13a(line)  (lowercased first for the lower-cased variant)
//   p_n     = 100 * Σ_seg Σ_g min(count_hyp(g), max_ref count_ref(g)) / Σ_seg (|hyp| - n + 1)
//             over the hypothesis n-grams g: a count is clipped by the largest count of g in any
//             one of the segment's references
//   r_seg   = the length of the segment's reference closest to |hyp| (a tie goes to the shorter)
//   BP      = exp(1 - r / c) if c < r (c = Σ_seg |hyp|, r = Σ_seg r_seg), 1 otherwise, 0 if c = 0
//   BLEU    = BP * exp((1/4) Σ_{n=1..4} ln p_n)          (0..100)
// With one reference per segment this is the usual single-reference BLEU (the same integers).
// 'exp' smoothing (mteval-v13a's): walking n = 1..4, the k-th order whose clipped count is 0
// gets p_n = 100 / (2^k * total_n) instead of 0. An order with no hypothesis n-gram at all
// (total_n = 0: every hypothesis shorter than n) makes BLEU 0, as in sacreBLEU; so does a corpus
// without a single matching n-gram (sacreBLEU 2 stops early there: all p_n are 0, not smoothed).
// A reference list may hold empty references (length 0, no n-grams), as sacreBLEU's '' does.
// tests/stages/eval/bleu_test.cpp checks these against numbers from sacreBLEU 2.6.0 itself.
//
// 13a tokenisation (mteval-v13a.pl as sacreBLEU implements it): remove "<skipped>", join
// "-\n", newlines to spaces, unescape &quot; &amp; &lt; &gt;; then, each rule over the whole
// line left to right without overlapping matches:
//   1. every ASCII character in { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /
//      gets a space on both sides (not ' - . , which rules 2-4 handle)
//   2. a non-digit followed by '.' or ',': a space after the first and on both sides of the second
//   3. '.' or ',' followed by a non-digit: a space on both sides of the first
//   4. a digit followed by '-': a space on both sides of the '-'
//   and split at whitespace (Python's str.split: ASCII whitespace, \x1c-\x1f and the Unicode
// spaces U+0085 U+00A0 U+1680 U+2000-U+200A U+2028 U+2029 U+202F U+205F U+3000).
// So "3.5" and "1,000" stay whole, "end." splits, "--" stays one token, '"' splits, "can't"
// stays one token.
// Difference from sacreBLEU: lowercasing (lowercase=True) covers ASCII and Latin-1 / Latin
// Extended-A letters, where Python's str.lower() covers every script.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rnnflow::stages {

std::vector<std::string> tokenize_13a(const std::string& line);
// ASCII, Latin-1 Supplement and Latin Extended-A upper-case letters to lower case (UTF-8 in, out).
std::string lowercase_utf8(const std::string& s);

// Sufficient statistics of corpus BLEU; add segments, then score().
struct BleuStats {
    std::array<std::int64_t, 4> correct{};  // clipped n-gram matches, n = 1..4
    std::array<std::int64_t, 4> total{};    // hypothesis n-grams
    std::int64_t hyp_len = 0, ref_len = 0;

    void add(const std::vector<std::string>& hyp, const std::vector<std::string>& ref);
    // A segment with several references (at least one).
    void add_multi(const std::vector<std::string>& hyp, std::span<const std::vector<std::string>> refs);
    // Adds a segment tokenised by 13a (lowercased first when lowercase).
    void add_text(const std::string& hyp, const std::string& ref, bool lowercase = false);
    void add_text_multi(const std::string& hyp, std::span<const std::string> refs, bool lowercase = false);
    double score() const;             // 0..100
    double brevity_penalty() const;   // 0..1
    std::array<double, 4> precisions() const;  // 0..100, smoothed as in score()
};

double corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                   bool lowercase = false);
// refs[i]: the references of segment i (any number >= 1 each; sacreBLEU's reference streams
// transposed, with its None entries left out). A name of its own: braced lists of strings would
// make an overload of corpus_bleu ambiguous.
double corpus_bleu_multi(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                         bool lowercase = false);

}  // namespace rnnflow::stages
