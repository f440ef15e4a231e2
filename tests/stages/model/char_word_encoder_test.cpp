#include <catch2/catch.hpp>

#include "stages/model/char_word_encoder.hpp"
#include "stages/model/gru.hpp"
#include "stages/model/lstm.hpp"
#include "support/gradcheck.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::CharWordEncoder;

namespace {

constexpr std::int64_t kVc = 7;  // character vocabulary

std::unique_ptr<CharWordEncoder> prepared(const StageSchema& s,
                                          const std::map<std::string, ParamValue>& set) {
    auto e = std::make_unique<CharWordEncoder>(params_for(s, set));
    FakePrepare ctx(s);
    ctx.info("chars", PortInfo{PortType::ids, -1, kVc, nullptr});
    ctx.info("like", PortInfo{PortType::ids, -1, 50, nullptr});
    e->prepare(ctx);
    REQUIRE(ctx.out_info("out").channels == e->out_channels());
    return e;
}

// Words as character id lists, laid out as a (T, N) batch with `lengths`; words[t*N + n].
struct WordBatch {
    Tensor chars, like;
};
WordBatch make_batch(std::int64_t T, std::int64_t N, const std::vector<std::vector<std::int32_t>>& words,
                 std::vector<std::int32_t> lengths, std::int32_t pad_chars_fill = 0) {
    WordBatch b;
    std::size_t Lc = 1;
    for (const auto& w : words) Lc = std::max(Lc, w.size());
    b.chars = Tensor::i32({static_cast<std::int64_t>(Lc), T * N});
    b.chars.lengths.assign(static_cast<std::size_t>(T * N), 0);
    std::fill_n(b.chars.data<std::int32_t>(), b.chars.numel(), pad_chars_fill);
    for (std::int64_t m = 0; m < T * N; ++m) {
        const auto& w = words[static_cast<std::size_t>(m)];
        b.chars.lengths[static_cast<std::size_t>(m)] = static_cast<std::int32_t>(w.size());
        for (std::size_t l = 0; l < w.size(); ++l) b.chars.data<std::int32_t>()[l * T * N + m] = w[l];
    }
    b.like = Tensor::i32({T, N});
    b.like.lengths = std::move(lengths);
    return b;
}

Tensor run(CharWordEncoder& e, const StageSchema& s, const WordBatch& b, StepInfo step = {}) {
    Tensor y;
    Saved saved;
    auto in = make_inputs(s, {&b.chars, &b.like});
    auto o = make_outputs(s, {&y});
    e.forward(in, o, saved, step);
    return y;
}

}  // namespace

TEST_CASE("char_word_encoder: schema and params", "[stage][char_word_encoder]") {
    const StageSchema s = CharWordEncoder::schema();
    REQUIRE(s.type() == "char_word_encoder");
    REQUIRE(s.is_differentiable());
    auto pe = prepared(s, {{"char_dim", std::int64_t(3)}, {"hidden", std::int64_t(4)}});
    CharWordEncoder& e = *pe;
    REQUIRE(e.out_channels() == 8);
    // char_embedding, then one lstm layer in two directions (weights_layer, weights_iter, bias).
    REQUIRE(e.params().size() == 7);
    REQUIRE(e.params()[0].name == "char_embedding");
    REQUIRE(e.params()[0].value.shape() == Shape{kVc, 3});
    REQUIRE(e.params()[1].name == "rnn.layer0.l2r.weights_layer");
    REQUIRE(e.params()[1].value.shape() == Shape{3, 4, 4});
    REQUIRE(e.params()[4].name == "rnn.layer0.r2l.weights_layer");
    auto pg = prepared(s, {{"cell", std::string("gru")}, {"bidirectional", false},
                                     {"hidden", std::int64_t(5)}});
    CharWordEncoder& g = *pg;
    REQUIRE(g.out_channels() == 5);
    REQUIRE(g.params().size() == 4);

    CharWordEncoder bad(params_for(s, {}));
    FakePrepare ctx(s);
    ctx.info("chars", PortInfo{PortType::ids, -1, -1, nullptr});
    ctx.info("like", PortInfo{PortType::ids, -1, 5, nullptr});
    REQUIRE_THROWS_WITH(bad.prepare(ctx), Catch::Contains("needs the character vocabulary size"));
}

TEST_CASE("char_word_encoder: a word's vector is the lstm stage's final states on its characters",
          "[stage][char_word_encoder]") {
    const StageSchema s = CharWordEncoder::schema();
    auto pe = prepared(s, {{"char_dim", std::int64_t(3)}, {"hidden", std::int64_t(4)},
                                     {"init_scale", 0.5}});
    CharWordEncoder& e = *pe;
    // T = 2, N = 2: words "1 2 3" and "4" in column 0, "5 6" and padding in column 1.
    const WordBatch b = make_batch(2, 2, {{1, 2, 3}, {5, 6}, {4}, {}}, {2, 1});
    const Tensor y = run(e, s, b);
    REQUIRE(y.shape() == Shape{2, 2, 8});
    REQUIRE(y.lengths == b.like.lengths);

    // The same computation with the lstm stage on one word's embedded characters.
    const StageSchema ls = stages::Lstm::schema();
    stages::Lstm lstm(params_for(ls, {{"hidden", std::int64_t(4)},
                                      {"direction", std::string("bidirectional_concat")}}));
    FakePrepare lctx(ls);
    lctx.info("in", PortInfo{PortType::tensor, 3, -1, nullptr});
    lstm.prepare(lctx);
    REQUIRE(lstm.params().size() == e.params().size() - 1);
    for (std::size_t i = 0; i < lstm.params().size(); ++i) {
        REQUIRE("rnn." + lstm.params()[i].name == e.params()[i + 1].name);
        lstm.params()[i].value = e.params()[i + 1].value;
    }
    const float* table = e.params()[0].value.data<float>();
    auto word_vector = [&](const std::vector<std::int32_t>& w) {
        Tensor x = Tensor::f32({static_cast<std::int64_t>(w.size()), 1, 3});
        for (std::size_t l = 0; l < w.size(); ++l)
            for (int c = 0; c < 3; ++c) x.data<float>()[l * 3 + c] = table[w[l] * 3 + c];
        Tensor out, state;
        Saved saved;
        auto in = make_inputs(ls, {&x});
        auto o = make_outputs(ls, {&out, &state});
        lstm.forward(in, o, saved, StepInfo{});
        std::vector<float> v(8);
        for (int d = 0; d < 2; ++d)
            for (int c = 0; c < 4; ++c) v[static_cast<std::size_t>(d * 4 + c)] = state.data<float>()[d * 4 + c];
        return v;
    };
    const std::vector<std::vector<std::int32_t>> words{{1, 2, 3}, {5, 6}, {4}};
    const int at[3] = {0, 1, 2};  // column t*N + n
    for (int k = 0; k < 3; ++k) {
        const auto want = word_vector(words[static_cast<std::size_t>(k)]);
        for (int c = 0; c < 8; ++c) REQUIRE(y.data<float>()[at[k] * 8 + c] == Approx(want[static_cast<std::size_t>(c)]).margin(1e-6));
    }
    for (int c = 0; c < 8; ++c) REQUIRE(y.data<float>()[3 * 8 + c] == 0.f);  // padding
}

TEST_CASE("char_word_encoder: padding and batch neighbours do not change a word's vector",
          "[stage][char_word_encoder]") {
    const StageSchema s = CharWordEncoder::schema();
    auto pe = prepared(s, {{"char_dim", std::int64_t(3)}, {"hidden", std::int64_t(4)},
                                     {"init_scale", 0.5}});
    CharWordEncoder& e = *pe;
    const WordBatch alone = make_batch(1, 1, {{2, 3, 1}}, {});
    const Tensor y1 = run(e, s, alone);
    // The same word at (1, 0) of a T = 3, N = 2 batch, longer words around it, the padded
    // character slots holding a valid but unrelated id.
    const WordBatch mixed = make_batch(3, 2, {{6, 6, 6, 6, 5}, {1}, {2, 3, 1}, {4, 4}, {}, {}}, {2, 2}, 5);
    const Tensor y2 = run(e, s, mixed);
    for (int c = 0; c < 8; ++c) REQUIRE(y2.data<float>()[2 * 8 + c] == Approx(y1.data<float>()[c]).margin(1e-6));
}

TEST_CASE("char_word_encoder: backward matches finite differences", "[stage][char_word_encoder][grad]") {
    const StageSchema s = CharWordEncoder::schema();
    const std::string cell = GENERATE(std::string("lstm"), std::string("gru"));
    const bool bidi = GENERATE(true, false);
    INFO(cell << (bidi ? " bidirectional" : " left_to_right"));
    auto pe = prepared(s, {{"char_dim", std::int64_t(3)}, {"hidden", std::int64_t(4)},
                                     {"cell", cell}, {"bidirectional", bidi}, {"init_scale", 0.5}});
    CharWordEncoder& e = *pe;
    // Ragged words and a padded word; character 0 never appears so its row gets no gradient.
    WordBatch b = make_batch(3, 2, {{1, 2, 3, 4}, {5}, {6, 2}, {3, 3, 1}, {4, 5, 6}, {}}, {3, 2});
    GradCheckOptions opt;
    opt.samples = 30;
    const auto r = check_gradients(e, s, {&b.chars, &b.like}, opt);
    INFO(r.report);
    REQUIRE(r.ok);
    REQUIRE(r.checked >= 90);
}

TEST_CASE("char_word_encoder: bad inputs name the stage", "[stage][char_word_encoder]") {
    const StageSchema s = CharWordEncoder::schema();
    auto pe = prepared(s, {{"hidden", std::int64_t(2)}});
    CharWordEncoder& e = *pe;
    WordBatch b = make_batch(2, 1, {{1}, {2}}, {});
    b.chars.data<std::int32_t>()[1] = 9;  // outside the character vocabulary
    REQUIRE_THROWS_WITH(run(e, s, b), Catch::Contains("character id 9"));
    WordBatch c = make_batch(2, 1, {{1}, {2}}, {});
    c.like = Tensor::i32({3, 1});
    REQUIRE_THROWS_WITH(run(e, s, c), Catch::Contains("must be ids (Lc, T*N) = (Lc, 3)"));
}
