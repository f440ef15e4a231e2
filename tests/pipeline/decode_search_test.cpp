// decode_search: greedy and beam search over a toy decoder whose next-token distribution depends
// only on the token it is fed (a Markov chain written as probabilities), so that every hypothesis'
// log p is a product of the table's entries, computed by hand here.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "pipeline/core/decode_search.hpp"

using namespace rnnflow;

namespace {

constexpr std::int32_t kPad = 0, kSos = 1, kEos = 2, kA = 3, kB = 4;
constexpr std::int64_t kV = 5;

// p(next | fed): from <sos> a .5, b .4, <eos> .1; from a: a .35, b .35, <eos> .3; from b: <eos> .9,
// a .05, b .05. <pad> and <sos> get large logits that the search must never emit.
struct Chain final : DecodeModel {
    std::vector<float> logits, attention;
    std::vector<std::vector<std::int32_t>> reorders;
    int steps = 0;
    DecodeStep step(std::span<const std::int32_t> tokens) override {
        ++steps;
        const std::size_t R = tokens.size();
        logits.assign(R * kV, 0.f);
        attention.assign(R, 0.f);
        for (std::size_t r = 0; r < R; ++r) {
            float* l = logits.data() + r * kV;
            const double* p = tokens[r] == kA ? kFromA : tokens[r] == kB ? kFromB : kFromSos;
            l[kPad] = 9.f;
            l[kSos] = 9.f;
            for (int v = kEos; v < kV; ++v) l[v] = static_cast<float>(std::log(p[v - kEos]));
            attention[r] = static_cast<float>(tokens[r]);  // which token the row was fed
        }
        return {logits, attention};
    }
    void reorder(std::span<const std::int32_t> parents) override {
        reorders.emplace_back(parents.begin(), parents.end());
    }
    static constexpr double kFromSos[3] = {0.1, 0.5, 0.4};  // <eos>, a, b
    static constexpr double kFromA[3] = {0.3, 0.35, 0.35};
    static constexpr double kFromB[3] = {0.9, 0.05, 0.05};
};

DecodeOptions options(bool beam, std::int64_t width, double length_penalty = 0.0) {
    DecodeOptions o;
    o.vocabulary = kV;
    o.attention = 1;
    o.beam_search = beam;
    o.beam = width;
    o.length_penalty = length_penalty;
    o.start = kSos;
    o.eos = kEos;
    o.pad = kPad;
    o.banned = {kPad, kSos};
    return o;
}

std::vector<std::int32_t> column(const Tensor& hyp, std::int64_t n) {
    std::vector<std::int32_t> out;
    for (std::int64_t t = 0; t < hyp.length(n); ++t) out.push_back(hyp.data<std::int32_t>()[t * hyp.dim(1) + n]);
    return out;
}

// The float logits' log-softmax differs from log p in the last bits.
constexpr double kLogTol = 1e-6;

}  // namespace

TEST_CASE("decode_search: greedy takes the most probable token, never <pad> or <sos>", "[decode_search]") {
    Chain m;
    DecodeSearch s;
    Tensor hyp, attn;
    const std::vector<std::int64_t> max_len = {2, 5};
    s.run(m, options(false, 1), max_len, hyp, &attn);
    // Sentence 0 stops at its limit: a a (the tie a/b goes to the lower id). Sentence 1: a a a a a.
    CHECK(column(hyp, 0) == std::vector<std::int32_t>{kA, kA});
    CHECK(column(hyp, 1) == std::vector<std::int32_t>{kA, kA, kA, kA, kA});
    CHECK(hyp.dim(0) == 5);
    CHECK(s.log_prob()[0] == Approx(std::log(0.5 * 0.35)).margin(kLogTol));
    CHECK(s.score()[0] == s.log_prob()[0]);  // greedy ranks by log p
    CHECK(m.reorders.empty());
    // The attention rows traced back: step t's row was fed <sos>, then a.
    REQUIRE(attn.dim(2) == 1);
    CHECK(attn.data<float>()[0 * 2 + 0] == float(kSos));
    CHECK(attn.data<float>()[1 * 2 + 0] == float(kA));
    CHECK(attn.lengths == hyp.lengths);
}

TEST_CASE("decode_search: beam search finds the more probable hypothesis greedy misses", "[decode_search]") {
    Chain m;
    DecodeSearch s;
    Tensor hyp, attn;
    const std::vector<std::int64_t> max_len = {2};
    s.run(m, options(true, 2), max_len, hyp, &attn);
    // Step 0 keeps a .5 and b .4 (<eos> .1 is not among the 2 best); step 1: b <eos> .36 finishes,
    // a a .175 (a b ties, the lower id goes on) finishes at the limit: b wins.
    CHECK(column(hyp, 0) == std::vector<std::int32_t>{kB});
    CHECK(s.log_prob()[0] == Approx(std::log(0.4 * 0.9)).margin(kLogTol));
    CHECK(s.score()[0] == s.log_prob()[0]);  // length_penalty 0
    CHECK(attn.data<float>()[0] == float(kSos));
    // One reorder per step: step 0's beams a, b both continue row 0.
    REQUIRE(m.reorders.size() == 2);
    CHECK(m.reorders[0] == std::vector<std::int32_t>{0, 0});
}

TEST_CASE("decode_search: the GNMT length penalty ranks finished hypotheses", "[decode_search]") {
    Chain m;
    DecodeSearch s;
    Tensor hyp;
    const std::vector<std::int64_t> max_len = {3};
    const double alpha = 1.0;
    s.run(m, options(true, 2, alpha), max_len, hyp, nullptr);
    const double lp = std::pow((5.0 + double(hyp.length(0) + 1)) / 6.0, alpha);  // |y| counts <eos>
    CHECK(s.score()[0] == Approx(s.log_prob()[0] / lp).epsilon(1e-12));
    CHECK(column(hyp, 0) == std::vector<std::int32_t>{kB});
}

TEST_CASE("decode_search: a limit of 0 gives the empty hypothesis without a step", "[decode_search]") {
    Chain m;
    DecodeSearch s;
    Tensor hyp, attn;
    const std::vector<std::int64_t> max_len = {0, 0};
    s.run(m, options(true, 3), max_len, hyp, &attn);
    CHECK(m.steps == 0);
    CHECK(hyp.dim(0) == 1);
    CHECK(hyp.lengths == std::vector<std::int32_t>{0, 0});
    CHECK(hyp.data<std::int32_t>()[0] == kPad);
    CHECK(s.log_prob() == std::vector<double>{0.0, 0.0});
}

TEST_CASE("decode_search: two runs give identical results, buffers reused", "[decode_search]") {
    Chain m;
    DecodeSearch s;
    Tensor h1, h2, a1, a2;
    const std::vector<std::int64_t> long_len = {4, 6, 1}, short_len = {3};
    s.run(m, options(true, 3, 0.6), long_len, h1, &a1);
    const std::vector<double> lp1 = s.log_prob();
    s.run(m, options(true, 3, 0.6), short_len, h2, &a2);
    s.run(m, options(true, 3, 0.6), long_len, h2, &a2);
    CHECK(s.log_prob() == lp1);
    CHECK(h1.lengths == h2.lengths);
    CHECK(std::equal(h1.data<std::int32_t>(), h1.data<std::int32_t>() + h1.numel(), h2.data<std::int32_t>()));
}
