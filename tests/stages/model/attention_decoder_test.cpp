// attention_decoder: finite-difference gradients for every variant, padding invariance, the two
// training paths against each other, decoding (greedy, beam, beam 1 = greedy, beam finds the
// best sequence where greedy does not), hand-computed attention, and a tiny reverse task.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include "stages/model/attention_decoder.hpp"
#include "stages/model/embedding.hpp"
#include "stages/model/lstm.hpp"
#include "stages/train/adam.hpp"
#include "stages/train/cross_entropy.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::AttentionDecoder;

namespace {

using Set = std::map<std::string, ParamValue>;

// <pad> <unk> <sos> <eos>, then `words` tokens "a", "b", ...
std::shared_ptr<const Vocabulary> target_vocab(int words) {
    std::vector<std::string> tokens{"<pad>", "<unk>", "<sos>", "<eos>"};
    for (int i = 0; i < words; ++i) tokens.push_back(std::string(1, char('a' + i)));
    std::vector<std::int64_t> counts(tokens.size(), 1);
    return std::make_shared<const Vocabulary>(tokens, counts,
                                              std::vector<std::string>{"<pad>", "<unk>", "<sos>", "<eos>"},
                                              TokenizerSpec{});
}
constexpr std::int32_t kPad = 0, kSos = 2, kEos = 3;

struct Rig {
    StageSchema schema = AttentionDecoder::schema();
    std::unique_ptr<AttentionDecoder> dec;
    test::FakePrepare ctx;
    Tensor logits, hyp, attn;
    Saved saved;
    // E memory channels; He > 0 connects the state input with He channels.
    Rig(const Set& set, std::int64_t E, std::int64_t He, int words, std::uint64_t seed = 1)
        : ctx(schema, seed) {
        dec = std::make_unique<AttentionDecoder>(test::params_for(schema, set));
        ctx.info("memory", PortInfo{PortType::tensor, E, -1, nullptr});
        if (He > 0) ctx.info("state", PortInfo{PortType::state, He, -1, nullptr});
        const auto v = target_vocab(words);
        ctx.info("target_in", PortInfo{PortType::ids, -1, v->size(), v});
        dec->prepare(ctx);
    }
    void forward(const Tensor& mem, const Tensor* st, const Tensor& tgt, Phase phase = Phase::train) {
        StepInfo step;
        step.phase = phase;
        auto in = test::make_inputs(schema, {&mem, st, &tgt});
        auto out = test::make_outputs(schema, {&logits, &hyp, &attn});
        dec->forward(in, out, saved, step);
    }
};

Tensor random_tensor(Shape s, std::uint64_t seed, float scale = 1.f) {
    Tensor t = Tensor::f32(std::move(s));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-scale, scale);
    for (std::int64_t e = 0; e < t.numel(); ++e) t.data<float>()[e] = u(rng);
    return t;
}

// Memory (Ts, N, E) zero at padding, with lengths.
Tensor memory_of(std::int64_t Ts, std::int64_t E, const std::vector<std::int32_t>& len, std::uint64_t seed) {
    const std::int64_t N = std::ssize(len);
    Tensor m = random_tensor({Ts, N, E}, seed);
    for (std::int64_t t = 0; t < Ts; ++t)
        for (std::int64_t n = 0; n < N; ++n)
            if (t >= len[std::size_t(n)]) std::fill_n(m.data<float>() + (t * N + n) * E, E, 0.f);
    m.lengths = len;
    return m;
}

// target_in (Tt, N): <sos> then random words, <pad> beyond each length.
Tensor target_of(std::int64_t Tt, const std::vector<std::int32_t>& len, int words, std::uint64_t seed) {
    const std::int64_t N = std::ssize(len);
    Tensor y = Tensor::i32({Tt, N});
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> u(4, 4 + words - 1);
    for (std::int64_t t = 0; t < Tt; ++t)
        for (std::int64_t n = 0; n < N; ++n)
            y.data<std::int32_t>()[t * N + n] = t >= len[std::size_t(n)] ? kPad : t == 0 ? kSos : u(rng);
    y.lengths = len;
    return y;
}

// Column n alone: (T_n, 1, ...) slices of a time-major tensor, with its own length.
Tensor column(const Tensor& x, std::int64_t n) {
    const std::int64_t T = x.length(n), N = x.dim(1);
    const std::int64_t per = x.numel() / (x.dim(0) * N);
    Shape s = x.shape();
    s[0] = std::max<std::int64_t>(T, 1);
    s[1] = 1;
    Tensor c(x.dtype(), s);
    const std::size_t b = dtype_size(x.dtype());
    for (std::int64_t t = 0; t < T; ++t)
        std::memcpy(static_cast<std::byte*>(c.raw()) + std::size_t(t * per) * b,
                    static_cast<const std::byte*>(x.raw()) + std::size_t((t * N + n) * per) * b,
                    std::size_t(per) * b);
    c.lengths = {static_cast<std::int32_t>(T)};
    return c;
}
// State (S, LD, N, H) column n.
Tensor state_column(const Tensor& st, std::int64_t n) {
    const std::int64_t S = st.dim(0), LD = st.dim(1), N = st.dim(2), H = st.dim(3);
    Tensor c = Tensor::f32({S, LD, 1, H});
    for (std::int64_t a = 0; a < S * LD; ++a)
        std::memcpy(c.data<float>() + a * H, st.data<float>() + (a * N + n) * H, sizeof(float) * std::size_t(H));
    return c;
}

bool close(double a, double b, double rtol, double atol) {
    return std::abs(a - b) <= atol + rtol * std::max(std::abs(a), std::abs(b));
}

// Small shapes: E = 2 * He (bidirectional encoder) = H, so every scoring applies.
constexpr std::int64_t kH = 8, kHe = 4, kE = 8, kTs = 5, kTt = 4;
constexpr int kWords = 5;
const std::vector<std::int32_t> kSrcLen{5, 3, 1};
const std::vector<std::int32_t> kTgtLen{4, 2, 3};

Set base_set(const std::string& cell, const std::string& scoring, bool feed) {
    return {{"cell", cell}, {"hidden", kH}, {"embedding_dim", std::int64_t(5)},
            {"attention", scoring}, {"attention_dim", std::int64_t(6)}, {"input_feeding", feed}};
}

void run_gradcheck(const Set& set, std::int64_t S, std::int64_t LD, std::uint64_t seed) {
    Rig r(set, kE, kHe, kWords, seed);
    Tensor mem = memory_of(kTs, kE, kSrcLen, seed + 1);
    Tensor st = random_tensor({S, LD, 3, kHe}, seed + 2);
    Tensor tgt = target_of(kTt, kTgtLen, kWords, seed + 3);
    test::GradCheckOptions opt;
    opt.samples = 16;
    const auto res = test::check_gradients(*r.dec, r.schema, {&mem, &st, &tgt}, opt);
    INFO(res.report);
    CHECK(res.ok);
    CHECK(res.checked > 100);
}

}  // namespace

TEST_CASE("attention_decoder: schema defaults and bad configurations", "[stage][attention_decoder]") {
    const StageSchema s = AttentionDecoder::schema();
    CHECK(s.is_differentiable());
    CHECK(value_str(*s.find_param("attention")->default_value) == "general");
    CHECK(StageSchema::check(*s.find_param("layers"), std::int64_t(3)) == "must be in [1, 2], got 3");
    // dot needs E = hidden.
    try {
        Rig r({{"attention", std::string("dot")}, {"hidden", std::int64_t(6)}}, 8, 4, 3);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("attention 'dot' needs memory channels E equal to hidden, got E = 8 and hidden = 6") != std::string::npos);
    }
    // linear bridge needs the state input.
    try {
        Rig r({}, 8, 0, 3);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("bridge 'linear' needs the 'state' input") != std::string::npos);
    }
    // A vocabulary without <sos>/<eos>.
    StageSchema schema = AttentionDecoder::schema();
    test::FakePrepare ctx(schema);
    ctx.info("memory", PortInfo{PortType::tensor, 8, -1, nullptr});
    auto v = std::make_shared<const Vocabulary>(std::vector<std::string>{"<unk>", "a"}, std::vector<std::int64_t>{1, 1},
                                                std::vector<std::string>{"<unk>"}, TokenizerSpec{});
    ctx.info("target_in", PortInfo{PortType::ids, -1, 2, v});
    AttentionDecoder d(test::params_for(schema, {{"bridge", std::string("zeros")}}));
    CHECK_THROWS_WITH(d.prepare(ctx), Catch::Contains("needs the specials <sos> and <eos>"));
}

TEST_CASE("attention_decoder: gradients match finite differences", "[stage][attention_decoder][grad]") {
    const std::string cell = GENERATE(std::string("lstm"), std::string("gru"));
    const std::string scoring =
        GENERATE(std::string("bahdanau"), std::string("dot"), std::string("general"), std::string("none"));
    const bool feed = GENERATE(false, true);
    INFO(cell << " " << scoring << (feed ? " input feeding" : ""));
    // Encoder state: 2-layer bidirectional lstm (S 2, LD 4) or 1-layer bidirectional gru (S 1, LD 2).
    run_gradcheck(base_set(cell, scoring, feed), cell == "lstm" ? 2 : 1, cell == "lstm" ? 4 : 2, 11);
}

TEST_CASE("attention_decoder: gradients with two layers, dropout, gru encoder state, scheduled sampling",
          "[stage][attention_decoder][grad]") {
    SECTION("lstm, 2 layers, dropout, input feeding") {
        Set s = base_set("lstm", "general", true);
        s["layers"] = std::int64_t(2);
        s["dropout"] = 0.3;
        run_gradcheck(s, 2, 2, 21);
    }
    SECTION("gru, 2 layers, dropout, bahdanau") {
        Set s = base_set("gru", "bahdanau", false);
        s["layers"] = std::int64_t(2);
        s["dropout"] = 0.3;
        run_gradcheck(s, 1, 2, 22);
    }
    SECTION("lstm decoder from a state without c (zero c_0)") {
        run_gradcheck(base_set("lstm", "dot", false), 1, 2, 23);
    }
    SECTION("scheduled sampling (teacher_forcing 0.5), step-by-step path") {
        Set s = base_set("gru", "general", false);
        s["teacher_forcing"] = 0.5;
        run_gradcheck(s, 1, 2, 24);
    }
    SECTION("bridge zeros with the state connected: no state gradient") {
        Set s = base_set("lstm", "general", false);
        s["bridge"] = std::string("zeros");
        run_gradcheck(s, 2, 2, 25);
    }
}

TEST_CASE("attention_decoder: the whole-sequence path equals the step-by-step path", "[stage][attention_decoder]") {
    const std::string cell = GENERATE(std::string("lstm"), std::string("gru"));
    Set fast = base_set(cell, "bahdanau", false);
    fast["layers"] = std::int64_t(2);
    Set slow = fast;
    slow["teacher_forcing"] = 0.999999999;  // step by step; the chance of one sampled token is ~1e-8
    Rig a(fast, kE, kHe, kWords, 5), b(slow, kE, kHe, kWords, 5);
    Tensor mem = memory_of(kTs, kE, kSrcLen, 6);
    Tensor st = random_tensor({2, 2, 3, kHe}, 7);
    Tensor tgt = target_of(kTt, kTgtLen, kWords, 8);
    a.forward(mem, &st, tgt);
    b.forward(mem, &st, tgt);
    CHECK(a.dec->last_forward_was_fast());
    CHECK_FALSE(b.dec->last_forward_was_fast());
    REQUIRE(a.logits.shape() == b.logits.shape());
    for (std::int64_t e = 0; e < a.logits.numel(); ++e)
        REQUIRE(close(a.logits.data<float>()[e], b.logits.data<float>()[e], 1e-5, 1e-6));
}

TEST_CASE("attention_decoder: scheduled sampling feeds the model's own predictions, reproducibly",
          "[stage][attention_decoder]") {
    Set gold = base_set("lstm", "general", false);
    gold["init_scale"] = 0.8;
    Set own = gold;
    own["teacher_forcing"] = 0.0;  // always the model's argmax after the first step
    Rig a(gold, kE, kHe, kWords, 51), b(own, kE, kHe, kWords, 51);
    Tensor mem = memory_of(kTs, kE, kSrcLen, 52);
    Tensor st = random_tensor({2, 2, 3, kHe}, 53);
    Tensor tgt = target_of(kTt, kTgtLen, kWords, 54);
    a.forward(mem, &st, tgt);
    b.forward(mem, &st, tgt);
    const std::int64_t N = 3, V = a.logits.dim(2);
    // Step 0 reads <sos> either way (the paths differ: GEMM blocking, not values); later steps
    // read the argmax of the step before.
    for (std::int64_t e = 0; e < N * V; ++e) REQUIRE(close(a.logits.data<float>()[e], b.logits.data<float>()[e], 1e-5, 1e-6));
    Tensor fed = tgt;
    for (std::int64_t t = 1; t < kTt; ++t)
        for (std::int64_t n = 0; n < N; ++n) {
            const float* row = b.logits.data<float>() + ((t - 1) * N + n) * V;
            if (t < kTgtLen[std::size_t(n)])
                fed.data<std::int32_t>()[t * N + n] = static_cast<std::int32_t>(std::max_element(row, row + V) - row);
        }
    int differ = 0;
    for (std::int64_t e = 0; e < fed.numel(); ++e) differ += fed.data<std::int32_t>()[e] != tgt.data<std::int32_t>()[e];
    CHECK(differ > 0);  // the test feeds something other than the gold tokens
    // Teacher forcing on the argmax chain gives the sampled run's logits.
    a.forward(mem, &st, fed);
    for (std::int64_t e = 0; e < a.logits.numel(); ++e)
        REQUIRE(close(a.logits.data<float>()[e], b.logits.data<float>()[e], 1e-5, 1e-6));
    // Same step, same choices.
    const Tensor first = b.logits;
    b.forward(mem, &st, tgt);
    for (std::int64_t e = 0; e < first.numel(); ++e) REQUIRE(first.data<float>()[e] == b.logits.data<float>()[e]);
}

TEST_CASE("attention_decoder: dropout acts in training only", "[stage][attention_decoder]") {
    Set plain = base_set("gru", "dot", true);
    plain["layers"] = std::int64_t(2);
    Set drop = plain;
    drop["dropout"] = 0.5;
    Rig a(plain, kE, kHe, kWords, 61), b(drop, kE, kHe, kWords, 61);
    Tensor mem = memory_of(kTs, kE, kSrcLen, 62);
    Tensor st = random_tensor({1, 2, 3, kHe}, 63);
    Tensor tgt = target_of(kTt, kTgtLen, kWords, 64);
    a.forward(mem, &st, tgt, Phase::evaluate);
    b.forward(mem, &st, tgt, Phase::evaluate);
    for (std::int64_t e = 0; e < a.logits.numel(); ++e) REQUIRE(a.logits.data<float>()[e] == b.logits.data<float>()[e]);
    b.forward(mem, &st, tgt, Phase::train);
    int differ = 0;
    for (std::int64_t e = 0; e < a.logits.numel(); ++e) differ += a.logits.data<float>()[e] != b.logits.data<float>()[e];
    CHECK(differ > a.logits.numel() / 4);
}

TEST_CASE("attention_decoder: a sentence alone gives what it gives in a padded batch", "[stage][attention_decoder]") {
    const std::string cell = GENERATE(std::string("lstm"), std::string("gru"));
    const bool feed = GENERATE(false, true);
    const std::string decode = GENERATE(std::string("greedy"), std::string("beam"));
    const std::string scoring = GENERATE(std::string("bahdanau"), std::string("none"));
    Set s = base_set(cell, scoring, feed);
    s["decode"] = decode;
    s["beam"] = std::int64_t(3);
    s["max_len_offset"] = std::int64_t(3);
    s["max_len_ratio"] = 1.0;
    Rig r(s, kE, kHe, kWords, 31);
    Tensor mem = memory_of(kTs, kE, kSrcLen, 32);
    Tensor st = random_tensor({2, 2, 3, kHe}, 33);
    Tensor tgt = target_of(kTt, kTgtLen, kWords, 34);
    r.forward(mem, &st, tgt, Phase::evaluate);
    const Tensor logits = r.logits, hyp = r.hyp, attn = r.attn;
    const std::vector<double> score = r.dec->hypothesis_log_prob();
    for (std::int64_t n = 0; n < 3; ++n) {
        INFO("column " << n);
        Tensor m1 = column(mem, n), s1 = state_column(st, n), t1 = column(tgt, n);
        r.forward(m1, &s1, t1, Phase::evaluate);
        for (std::int64_t t = 0; t < kTt; ++t)
            for (std::int64_t v = 0; v < r.logits.dim(2); ++v) {
                const float batched = logits.data<float>()[(t * 3 + n) * r.logits.dim(2) + v];
                if (t >= kTgtLen[std::size_t(n)]) {
                    REQUIRE(batched == 0.f);  // padding is zero
                    continue;
                }
                REQUIRE(close(r.logits.data<float>()[t * r.logits.dim(2) + v], batched, 1e-4, 1e-6));
            }
        REQUIRE(r.hyp.lengths[0] == hyp.lengths[std::size_t(n)]);
        for (std::int64_t t = 0; t < r.hyp.lengths[0]; ++t) {
            REQUIRE(r.hyp.data<std::int32_t>()[t] == hyp.data<std::int32_t>()[t * 3 + n]);
            if (scoring == "none") continue;  // no attention weights
            for (std::int64_t sidx = 0; sidx < kSrcLen[std::size_t(n)]; ++sidx)
                REQUIRE(close(r.attn.data<float>()[t * r.attn.dim(2) + sidx],
                              attn.data<float>()[(t * 3 + n) * kTs + sidx], 1e-4, 1e-6));
        }
        REQUIRE(close(r.dec->hypothesis_log_prob()[0], score[std::size_t(n)], 1e-4, 1e-5));
    }
}

TEST_CASE("attention_decoder: beam search of width 1 equals greedy", "[stage][attention_decoder][decode]") {
    const std::string cell = GENERATE(std::string("lstm"), std::string("gru"));
    const bool feed = GENERATE(false, true);
    const std::string scoring = GENERATE(std::string("general"), std::string("none"));
    Set g = base_set(cell, scoring, feed);
    g["max_len_ratio"] = 1.5;
    g["max_len_offset"] = std::int64_t(2);
    g["init_scale"] = 0.8;  // sharp, varied predictions: some stop at <eos>, some at the limit
    Set b = g;
    b["decode"] = std::string("beam");
    b["beam"] = std::int64_t(1);
    b["length_penalty"] = 0.6;
    Rig rg(g, kE, kHe, kWords, 41), rb(b, kE, kHe, kWords, 41);
    const std::vector<std::int32_t> len{5, 3, 1, 4, 2, 5};
    Tensor mem = memory_of(kTs, kE, len, 42);
    Tensor st = random_tensor({2, 2, 6, kHe}, 43);
    Tensor tgt = target_of(1, std::vector<std::int32_t>(6, 0), kWords, 44);
    rg.forward(mem, &st, tgt, Phase::infer);
    rb.forward(mem, &st, tgt, Phase::infer);
    REQUIRE(rg.hyp.shape() == rb.hyp.shape());
    CHECK(rg.hyp.lengths == rb.hyp.lengths);
    for (std::int64_t e = 0; e < rg.hyp.numel(); ++e) REQUIRE(rg.hyp.data<std::int32_t>()[e] == rb.hyp.data<std::int32_t>()[e]);
    for (std::int64_t e = 0; e < rg.attn.numel(); ++e) REQUIRE(rg.attn.data<float>()[e] == rb.attn.data<float>()[e]);
    for (std::size_t n = 0; n < 6; ++n)
        CHECK(rg.dec->hypothesis_log_prob()[n] == Approx(rb.dec->hypothesis_log_prob()[n]).epsilon(1e-12));
    // Not a degenerate case: lengths differ between sentences.
    CHECK(*std::min_element(rg.hyp.lengths.begin(), rg.hyp.lengths.end()) <
          *std::max_element(rg.hyp.lengths.begin(), rg.hyp.lengths.end()));
    // Infer phase: logits (1, N, V) with lengths 0.
    CHECK(rg.logits.shape() == Shape{1, 6, 4 + kWords});
    CHECK(rg.logits.lengths == std::vector<std::int32_t>(6, 0));
}

TEST_CASE("attention_decoder: attention none sees only the encoder's final state",
          "[stage][attention_decoder]") {
    const bool feed = GENERATE(false, true);
    Set s = base_set("lstm", "none", feed);
    s["init_scale"] = 0.5;
    Rig r(s, kE, kHe, kWords, 71);
    CHECK_THROWS_WITH(r.dec->param("attention.weights"), Catch::Contains("has no parameter"));
    CHECK(r.dec->param("combine.weights").value.shape() == Shape{2 * kHe + kH, kH});  // C = [h_l2r; h_r2l]
    Tensor mem = memory_of(kTs, kE, kSrcLen, 72);
    Tensor st = random_tensor({2, 4, 3, kHe}, 73);
    Tensor tgt = target_of(kTt, kTgtLen, kWords, 74);
    r.forward(mem, &st, tgt, Phase::evaluate);
    const Tensor logits = r.logits, hyp = r.hyp;
    CHECK(r.attn.lengths == std::vector<std::int32_t>(3, 0));  // no attention weights to show
    // Other memory contents (same lengths): the same logits and hypotheses.
    Tensor other = memory_of(kTs, kE, kSrcLen, 75);
    r.forward(other, &st, tgt, Phase::evaluate);
    for (std::int64_t e = 0; e < logits.numel(); ++e) REQUIRE(r.logits.data<float>()[e] == logits.data<float>()[e]);
    for (std::int64_t e = 0; e < hyp.numel(); ++e) REQUIRE(r.hyp.data<std::int32_t>()[e] == hyp.data<std::int32_t>()[e]);
    // Another last layer of the encoder's h changes them; a lower layer alone does not matter
    // (the bridge and C read the last layer only).
    Tensor lower = st;
    for (std::int64_t e = 0; e < 2 * 3 * kHe; ++e) lower.data<float>()[e] += 0.5f;  // slot 0, rows 0-1
    r.forward(mem, &lower, tgt, Phase::evaluate);
    for (std::int64_t e = 0; e < logits.numel(); ++e) REQUIRE(r.logits.data<float>()[e] == logits.data<float>()[e]);
    Tensor last = st;
    for (std::int64_t e = 2 * 3 * kHe; e < 4 * 3 * kHe; ++e) last.data<float>()[e] += 0.5f;  // slot 0, rows 2-3
    r.forward(mem, &last, tgt, Phase::evaluate);
    int differ = 0;
    for (std::int64_t e = 0; e < logits.numel(); ++e) differ += r.logits.data<float>()[e] != logits.data<float>()[e];
    CHECK(differ > 0);
    // The state input is required, with either bridge.
    for (const std::string bridge : {"linear", "zeros"}) {
        Set z = s;
        z["bridge"] = bridge;
        try {
            Rig bad(z, kE, 0, kWords);
            FAIL("no error");
        } catch (const Error& e) {
            CHECK(std::string(e.what()).find("attention 'none' needs the 'state' input") != std::string::npos);
        }
    }
}

namespace {

// A first-order Markov model built by hand: h_t = onehot(y_{t-1}) (up to tanh scaling) through
// a gru whose update gate is shut, h~ = tanh(h), logits = h~ W_o, W_o row y = log p(. | y) / k.
// Tokens: <pad> <unk> <sos> <eos> a b.
struct MarkovModel {
    Rig rig;
    explicit MarkovModel(const Set& extra)
        : rig(with(extra), 2, 0, 2) {
        for (auto& p : rig.dec->params()) p.value.zero();
        const std::int64_t V = 6, H = 6;
        float* emb = rig.dec->param("embedding").value.data<float>();
        for (std::int64_t v = 0; v < V; ++v) emb[v * H + v] = 3.f;
        float* wl = rig.dec->param("layer0.weights_layer").value.data<float>();  // (6, 3, 6)
        for (std::int64_t c = 0; c < H; ++c) wl[(c * 3 + 2) * H + c] = 1.f;     // n gate
        float* b = rig.dec->param("layer0.bias").value.data<float>();            // (4, 6) u r n hn
        for (std::int64_t j = 0; j < H; ++j) b[j] = -30.f;                       // u = 0: h = n
        float* wc = rig.dec->param("combine.weights").value.data<float>();      // (E + H, H), E = 2
        for (std::int64_t j = 0; j < H; ++j) wc[(2 + j) * H + j] = 1.f;
        const float k = std::tanh(std::tanh(3.f));
        const double p[6][6] = {
            // to: pad unk sos eos a b          from:
            {0, 0, 0, 0, 0, 0},                    // pad (unused)
            {0, 0, 0, 0, 0, 0},                    // unk (unused)
            {0, 1e-9, 0, 1e-9, 0.55, 0.45},        // sos
            {0, 0, 0, 0, 0, 0},                    // eos (unused)
            {0, 1e-9, 0, 0.30, 0.36, 0.34},        // a
            {0, 1e-9, 0, 0.95, 0.025, 0.025},      // b
        };
        float* wo = rig.dec->param("output.weights").value.data<float>();  // (H, V)
        for (std::int64_t y = 0; y < V; ++y)
            for (std::int64_t v = 0; v < V; ++v)
                wo[y * V + v] = p[y][v] > 0 ? static_cast<float>(std::log(p[y][v]) / k) : -30.f / k;
    }
    static Set with(Set s) {
        s["cell"] = std::string("gru");
        s["hidden"] = std::int64_t(6);
        s["embedding_dim"] = std::int64_t(6);
        s["bridge"] = std::string("zeros");
        s["max_len_ratio"] = 0.0;
        s["max_len_offset"] = std::int64_t(4);
        return s;
    }
};

}  // namespace

TEST_CASE("attention_decoder: beam search finds the best sequence where greedy does not",
          "[stage][attention_decoder][decode]") {
    MarkovModel greedy({}), beam({{"decode", std::string("beam")}, {"beam", std::int64_t(2)}});
    Tensor mem = memory_of(1, 2, {1}, 1);
    Tensor none = target_of(1, {0}, 2, 1);
    greedy.rig.forward(mem, nullptr, none, Phase::infer);
    beam.rig.forward(mem, nullptr, none, Phase::infer);

    // Every sequence over {unk, a, b} of up to 4 tokens: ended by <eos> (up to 3 tokens + <eos>
    // ... or 4 + <eos>) or cut at the limit of 4; scored by the model's teacher-forced logits.
    std::vector<std::vector<std::int32_t>> seqs;  // tokens scored, <eos> included when ended
    std::function<void(std::vector<std::int32_t>)> grow = [&](std::vector<std::int32_t> s) {
        if (s.size() == 4) {
            seqs.push_back(s);  // cut at the limit
            return;
        }
        auto e = s;
        e.push_back(kEos);
        seqs.push_back(e);
        for (std::int32_t v : {1, 4, 5}) {
            auto c = s;
            c.push_back(v);
            grow(c);
        }
    };
    grow({});
    const std::int64_t N = std::ssize(seqs), T = 5;
    Tensor tgt = Tensor::i32({T, N});
    std::vector<std::int32_t> len(static_cast<std::size_t>(N));
    for (std::int64_t n = 0; n < N; ++n) {
        const auto& s = seqs[std::size_t(n)];
        len[std::size_t(n)] = static_cast<std::int32_t>(s.size());
        for (std::int64_t t = 0; t < T; ++t)
            tgt.data<std::int32_t>()[t * N + n] = t == 0 ? kSos : t <= std::ssize(s) - 1 ? s[std::size_t(t - 1)] : kPad;
    }
    tgt.lengths = len;
    Tensor mems = memory_of(1, 2, std::vector<std::int32_t>(std::size_t(N), 1), 2);
    MarkovModel scorer({});
    scorer.rig.forward(mems, nullptr, tgt, Phase::train);
    double best = -1e300;
    std::int64_t best_n = -1;
    for (std::int64_t n = 0; n < N; ++n) {
        double lp = 0;
        const auto& s = seqs[std::size_t(n)];
        for (std::int64_t t = 0; t < std::ssize(s); ++t) {
            const float* row = scorer.rig.logits.data<float>() + (t * N + n) * 6;
            double z = 0;
            for (int v : {1, 3, 4, 5}) z += std::exp(double(row[v]));  // <pad>, <sos> never emitted
            lp += double(row[s[std::size_t(t)]]) - std::log(z);
        }
        if (lp > best) {
            best = lp;
            best_n = n;
        }
    }
    const auto& want = seqs[std::size_t(best_n)];
    INFO("best by enumeration: " << want.size() << " tokens, log p " << best);
    // Beam's hypothesis is the enumeration's best (here "b <eos>") and its score is that best.
    REQUIRE(beam.rig.hyp.lengths[0] + 1 == std::ssize(want));
    for (std::int64_t t = 0; t < beam.rig.hyp.lengths[0]; ++t)
        CHECK(beam.rig.hyp.data<std::int32_t>()[t] == want[std::size_t(t)]);
    CHECK(want == std::vector<std::int32_t>{5, kEos});
    CHECK(beam.rig.dec->hypothesis_log_prob()[0] == Approx(best).epsilon(1e-5));
    // Greedy follows "a" and ends worse.
    CHECK(greedy.rig.hyp.data<std::int32_t>()[0] == 4);
    CHECK(greedy.rig.dec->hypothesis_log_prob()[0] < best - 0.5);
}

TEST_CASE("attention_decoder: dot attention weights computed by hand, padding masked",
          "[stage][attention_decoder]") {
    // h_t = q for every step: gru with W = U = 0, shut update gate and n bias atanh(q).
    const float q[2] = {0.5f, -0.25f};
    Rig r({{"cell", std::string("gru")}, {"hidden", std::int64_t(2)}, {"embedding_dim", std::int64_t(2)},
           {"attention", std::string("dot")}, {"bridge", std::string("zeros")}, {"max_len_ratio", 0.0},
           {"max_len_offset", std::int64_t(2)}},
          2, 0, 2);
    for (auto& p : r.dec->params()) p.value.zero();
    float* b = r.dec->param("layer0.bias").value.data<float>();  // (4, 2): u, r, n, hn
    b[0] = b[1] = -30.f;
    b[4] = std::atanh(q[0]);
    b[5] = std::atanh(q[1]);
    // memory (3, 2, 2): column 0 has 3 valid steps, column 1 has 2 (its third row must be ignored
    // even though it holds a large value).
    Tensor mem = Tensor::f32({3, 2, 2});
    const float m[3][2][2] = {{{1, 0}, {2, 2}}, {{0, 1}, {-1, 0}}, {{1, 1}, {50, 50}}};
    std::memcpy(mem.data<float>(), m, sizeof(m));
    mem.lengths = {3, 2};
    Tensor tgt = target_of(1, {0, 0}, 2, 1);
    r.forward(mem, nullptr, tgt, Phase::infer);
    // Column 0: scores q.m = 0.5, -0.25, 0.25; column 1: 0.5, -0.5 (third masked).
    const double e0[3] = {std::exp(0.5), std::exp(-0.25), std::exp(0.25)};
    const double z0 = e0[0] + e0[1] + e0[2];
    const double e1[2] = {std::exp(0.5), std::exp(-0.5)};
    const double z1 = e1[0] + e1[1];
    REQUIRE(r.attn.shape() == Shape{2, 2, 3});
    CHECK(r.attn.lengths == std::vector<std::int32_t>{2, 2});
    for (std::int64_t t = 0; t < 2; ++t) {
        const float* a0 = r.attn.data<float>() + (t * 2 + 0) * 3;
        const float* a1 = r.attn.data<float>() + (t * 2 + 1) * 3;
        for (int s = 0; s < 3; ++s) CHECK(a0[s] == Approx(e0[s] / z0).epsilon(1e-5));
        CHECK(a1[0] == Approx(e1[0] / z1).epsilon(1e-5));
        CHECK(a1[1] == Approx(e1[1] / z1).epsilon(1e-5));
        CHECK(a1[2] == 0.f);
    }
    // Hand-computed numbers for column 1: softmax(0.5, -0.5) = (0.7310586, 0.2689414).
    CHECK(r.attn.data<float>()[3] == Approx(0.7310586).epsilon(1e-5));
}

TEST_CASE("attention_decoder: training reverses short random sequences with attention",
          "[stage][attention_decoder][train]") {
    // Encoder: embedding -> bidirectional lstm; decoder with general attention; Adam.
    const int kSym = 6;
    const std::int64_t H = 32, batch = 32;
    const int steps = 600;  // ~0.6 s here, ~10 s under AddressSanitizer (150 steps were too few)
    auto vocab = target_vocab(kSym);
    const std::int64_t V = vocab->size();

    StageSchema es = stages::Embedding::schema(), ls = stages::Lstm::schema(),
                ds = AttentionDecoder::schema(), cs = stages::CrossEntropy::schema(),
                as = stages::Adam::schema();
    stages::Embedding emb(test::params_for(es, {{"dim", std::int64_t(16)}}));
    stages::Lstm enc(test::params_for(ls, {{"hidden", H / 2}, {"direction", std::string("bidirectional_concat")}}));
    AttentionDecoder dec(test::params_for(ds, {{"hidden", H}, {"embedding_dim", std::int64_t(16)},
                                               {"attention", std::string("general")}}));
    stages::CrossEntropy ce(test::params_for(cs, {}));
    stages::Adam adam(test::params_for(as, {{"lr", 1e-2}, {"clip_norm", 5.0}}));
    test::FakePrepare ce_ctx(es, 1), cl_ctx(ls, 2), cd_ctx(ds, 3), cc_ctx(cs, 4);
    ce_ctx.info("in", PortInfo{PortType::ids, -1, 4 + kSym, vocab});
    emb.prepare(ce_ctx);
    cl_ctx.info("in", PortInfo{PortType::tensor, 16, -1, nullptr});
    enc.prepare(cl_ctx);
    cd_ctx.info("memory", PortInfo{PortType::tensor, H, -1, nullptr});
    cd_ctx.info("state", PortInfo{PortType::state, H / 2, -1, nullptr});
    cd_ctx.info("target_in", PortInfo{PortType::ids, -1, V, vocab});
    dec.prepare(cd_ctx);
    cc_ctx.info("logits", PortInfo{PortType::tensor, V, -1, nullptr});
    cc_ctx.info("target", PortInfo{PortType::ids, -1, V, vocab});
    ce.prepare(cc_ctx);
    std::vector<std::pair<std::string, Param*>> all;
    for (auto* st : std::initializer_list<ModelStage*>{&emb, &enc, &dec})
        for (auto& p : st->params()) all.push_back({p.name, &p});
    adam.attach(all);

    std::mt19937_64 rng(7);
    auto make = [&](std::int64_t N, Tensor& src, Tensor& tin, Tensor& tout) {
        std::uniform_int_distribution<int> len_d(3, 6), sym(4, 4 + kSym - 1);
        std::vector<std::vector<std::int32_t>> s(static_cast<std::size_t>(N));
        std::int64_t Ts = 0;
        for (auto& x : s) {
            x.resize(std::size_t(len_d(rng)));
            for (auto& v : x) v = sym(rng);
            Ts = std::max<std::int64_t>(Ts, std::ssize(x));
        }
        src = Tensor::i32({Ts, N});
        tin = Tensor::i32({Ts + 1, N});
        tout = Tensor::i32({Ts + 1, N});
        src.lengths.assign(std::size_t(N), 0);
        tin.lengths.assign(std::size_t(N), 0);
        for (std::int64_t n = 0; n < N; ++n) {
            const auto& x = s[std::size_t(n)];
            const std::int64_t L = std::ssize(x);
            src.lengths[std::size_t(n)] = static_cast<std::int32_t>(L);
            tin.lengths[std::size_t(n)] = static_cast<std::int32_t>(L + 1);
            for (std::int64_t t = 0; t <= Ts; ++t) {
                if (t < Ts) src.data<std::int32_t>()[t * N + n] = t < L ? x[std::size_t(t)] : kPad;
                tin.data<std::int32_t>()[t * N + n] = t == 0 ? kSos : t <= L ? x[std::size_t(L - t)] : kPad;
                tout.data<std::int32_t>()[t * N + n] = t < L ? x[std::size_t(L - 1 - t)] : t == L ? kEos : kPad;
            }
        }
        tout.lengths = tin.lengths;
        return s;
    };
    Saved se, sl, sd, sc;
    Tensor x, y, fs, logits, hyp, attn, loss, dx, dy, dfs, dmem, dst, dlog, dloss, dcross;
    auto run = [&](const Tensor& src, const Tensor& tin, const Tensor& tout, Phase phase) {
        StepInfo step;
        step.phase = phase;
        {
            auto i = test::make_inputs(es, {&src});
            auto o = test::make_outputs(es, {&x});
            emb.forward(i, o, se, step);
        }
        {
            auto i = test::make_inputs(ls, {&x, nullptr});
            auto o = test::make_outputs(ls, {&y, &fs});
            enc.forward(i, o, sl, step);
        }
        {
            auto i = test::make_inputs(ds, {&y, &fs, &tin});
            auto o = test::make_outputs(ds, {&logits, &hyp, &attn});
            dec.forward(i, o, sd, step);
        }
        if (phase == Phase::infer) return;
        auto i = test::make_inputs(cs, {&logits, &tout});
        auto o = test::make_outputs(cs, {&loss});
        ce.forward(i, o, sc, step);
        if (phase != Phase::train) return;
        dloss = Tensor::f32({2});
        dloss.data<float>()[0] = 1.f / loss.data<float>()[1];
        {
            auto dd = test::make_diff_dst(cs, {&dloss});
            auto dsrc = test::make_diff_src(cs, {&dlog, nullptr});
            ce.backward(i, o, sc, dd, dsrc, step);
        }
        Tensor dhyp_unused, dattn = Tensor::f32(attn.shape());
        {
            auto di = test::make_inputs(ds, {&y, &fs, &tin});
            auto doo = test::make_outputs(ds, {&logits, &hyp, &attn});
            auto dd = test::make_diff_dst(ds, {&dlog, nullptr, &dattn});
            auto dsrc = test::make_diff_src(ds, {&dmem, &dst, nullptr});
            dec.backward(di, doo, sd, dd, dsrc, step);
        }
        {
            auto di = test::make_inputs(ls, {&x, nullptr});
            auto doo = test::make_outputs(ls, {&y, &fs});
            auto dd = test::make_diff_dst(ls, {&dmem, &dst});
            auto dsrc = test::make_diff_src(ls, {&dx, nullptr});
            enc.backward(di, doo, sl, dd, dsrc, step);
        }
        {
            auto di = test::make_inputs(es, {&src});
            auto doo = test::make_outputs(es, {&x});
            auto dd = test::make_diff_dst(es, {&dx});
            auto dsrc = test::make_diff_src(es, {nullptr});
            emb.backward(di, doo, se, dd, dsrc, step);
        }
        adam.step(step);
    };
    const auto t0 = std::chrono::steady_clock::now();
    Tensor src, tin, tout;
    for (int i = 0; i < steps; ++i) {
        make(batch, src, tin, tout);
        run(src, tin, tout, Phase::train);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Held-out sequences, greedy decoding.
    const auto held = make(200, src, tin, tout);
    run(src, tin, tout, Phase::infer);
    int exact = 0;
    for (std::int64_t n = 0; n < 200; ++n) {
        const auto& s = held[std::size_t(n)];
        bool ok = hyp.lengths[std::size_t(n)] == std::ssize(s);
        for (std::int64_t t = 0; ok && t < std::ssize(s); ++t)
            ok = hyp.data<std::int32_t>()[t * 200 + n] == s[s.size() - 1 - std::size_t(t)];
        exact += ok;
    }
    WARN("reverse task: " << steps << " steps in " << secs << " s, exact match " << exact << "/200");
    CHECK(exact >= 180);
    // Attention of a reversed sentence looks at the mirrored position: the first output token
    // attends most to the last source token.
    int mirrored = 0;
    for (std::int64_t n = 0; n < 200; ++n) {
        const std::int64_t L = std::ssize(held[std::size_t(n)]);
        const float* a = attn.data<float>() + n * attn.dim(2);
        mirrored += std::max_element(a, a + L) - a == L - 1;
    }
    CHECK(mirrored >= 160);
}
