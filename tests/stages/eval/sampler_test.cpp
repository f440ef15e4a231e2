#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "stages/eval/sampler.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::Sampler;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;
using Set = std::map<std::string, ParamValue>;
using List = std::vector<std::string>;

namespace {

// A model without state: the logits at step t depend only on the id fed at step t.
class FakeModel : public ModelRunner {
public:
    FakeModel(std::int64_t vocab, std::function<std::vector<float>(std::int32_t)> row)
        : v_(vocab), row_(std::move(row)) {}
    const Tensor& run(const Tensor& ids, bool reset) override {
        calls.push_back({ids.dim(0), ids.dim(1), reset});
        for (std::int64_t t = 0; t < ids.dim(0); ++t) fed.push_back(ids.data<std::int32_t>()[t]);
        out_.resize(DType::f32, {ids.dim(0), 1, v_});  // (T, 1, V)
        for (std::int64_t t = 0; t < ids.dim(0); ++t) {
            const auto r = row_(ids.data<std::int32_t>()[t]);
            std::copy(r.begin(), r.end(), out_.data<float>() + t * v_);
        }
        return out_;
    }
    struct Call { std::int64_t t, n; bool reset; };
    std::vector<Call> calls;
    std::vector<std::int32_t> fed;

private:
    std::int64_t v_;
    std::function<std::vector<float>(std::int32_t)> row_;
    Tensor out_;
};

// ids: 0 <pad>, 1 <unk>, 2 <sos>, 3 <eos>, 4 a, 5 b, 6 c, 7 d
std::shared_ptr<const Vocabulary> make_vocab(List specials = {"<pad>", "<unk>", "<sos>", "<eos>"},
                                             std::string mode = "char") {
    List tokens = specials;
    for (const char* t : {"a", "b", "c", "d"}) tokens.push_back(t);
    TokenizerSpec spec;
    spec.mode = std::move(mode);
    return std::make_shared<const Vocabulary>(tokens, std::vector<std::int64_t>(tokens.size(), 1),
                                              specials, spec);
}

constexpr std::int32_t kA = 4;
constexpr std::int64_t kV = 8;

// Prefers the next letter (a→b→c→d→a) by `margin`; the specials get `special_logit`.
std::function<std::vector<float>(std::int32_t)> cycle(float margin, float special_logit = 0.f) {
    return [=](std::int32_t id) {
        std::vector<float> r(kV, 0.f);
        for (int s = 0; s < kA; ++s) r[static_cast<std::size_t>(s)] = special_logit;
        const std::int32_t next = id < kA ? kA : kA + (id - kA + 1) % 4;
        r[static_cast<std::size_t>(next)] = margin;
        return r;
    };
}

std::string sample(const std::shared_ptr<const Vocabulary>& v, FakeModel& model, const Set& set,
                   SampleRequest req) {
    static const StageSchema s = Sampler::schema();
    Sampler stage(params_for(s, set));
    FakePrepare ctx(s);
    ctx.info("logits", PortInfo{PortType::tensor, v->size(), -1, nullptr});
    ctx.info("vocab", PortInfo{PortType::vocab, -1, v->size(), v});
    stage.prepare(ctx);
    return stage.generate(model, req);
}

SampleRequest request(std::string prime, std::int64_t length) {
    SampleRequest r;
    r.prime = std::move(prime);
    r.length = length;
    return r;
}

}  // namespace

TEST_CASE("sampler: schema defaults", "[stage][eval]") {
    const auto s = Sampler::schema();
    REQUIRE(s.type() == "sampler");
    REQUIRE(s.role() == Role::sampler);
    const Params p = default_params(s);
    REQUIRE(p.get_float("temperature") == 1.0);
    REQUIRE(p.get_int("top_k") == 0);
    REQUIRE(p.get_int("seed") == 1);
    REQUIRE(p.get_int("length") == 200);
    REQUIRE(p.get_string("prime").empty());
    REQUIRE(StageSchema::check(*s.find_param("temperature"), ParamValue(0.0)) ==
            "must be in [0.01, 100], got 0");
}

TEST_CASE("sampler: a confident model gives its greedy path; calls and resets", "[stage][eval]") {
    auto v = make_vocab();
    FakeModel model(kV, cycle(50.f));
    REQUIRE(sample(v, model, {}, request("ab", 6)) == "abcdabcd");
    REQUIRE(model.calls.size() == 6);  // the prime, then one (1, 1) call per token but the last
    REQUIRE(model.calls[0].t == 2);
    REQUIRE(model.calls[0].n == 1);
    REQUIRE(model.calls[0].reset);
    for (std::size_t i = 1; i < model.calls.size(); ++i) {
        REQUIRE(model.calls[i].t == 1);
        REQUIRE_FALSE(model.calls[i].reset);
    }
    REQUIRE(model.fed == std::vector<std::int32_t>{4, 5, 6, 7, 4, 5, 6});
}

TEST_CASE("sampler: temperature and top_k", "[stage][eval]") {
    auto v = make_vocab();
    const std::string greedy = "abcdabcdabcdabcd";  // the prime "a", then 15 tokens
    SECTION("a low temperature follows a 1-logit margin like argmax") {
        FakeModel model(kV, cycle(1.f));
        REQUIRE(sample(v, model, {{"temperature", 0.01}}, request("a", 15)) == greedy);
    }
    SECTION("a high temperature wanders off the argmax path") {
        FakeModel model(kV, cycle(1.f));
        const std::string text = sample(v, model, {{"temperature", 100.0}}, request("a", 100));
        REQUIRE(text.size() == 101);
        REQUIRE(text.substr(0, 16) != greedy);
        for (char c : std::string("abcd")) REQUIRE(text.find(c) != std::string::npos);
    }
    SECTION("top_k = 1 is argmax at any temperature") {
        FakeModel model(kV, cycle(1.f));
        REQUIRE(sample(v, model, {{"temperature", 100.0}, {"top_k", std::int64_t{1}}}, request("a", 15)) == greedy);
    }
    SECTION("request values override the parameters") {
        FakeModel model(kV, cycle(1.f));
        SampleRequest r = request("a", 15);
        r.top_k = 1;
        REQUIRE(sample(v, model, {{"temperature", 100.0}}, r) == greedy);
        r.top_k = -1;
        r.temperature = 0;  // greedy
        REQUIRE(sample(v, model, {{"temperature", 100.0}}, r) == greedy);
    }
    SECTION("drawn frequencies follow softmax: logits log 1, log 3 → 1/4, 3/4") {
        FakeModel model(kV, [](std::int32_t) {
            std::vector<float> r(kV, -1e30f);
            r[kA] = 0.f;
            r[kA + 1] = static_cast<float>(std::log(3.0));
            return r;
        });
        const std::string text = sample(v, model, {}, request("a", 4000));
        const double b = static_cast<double>(std::count(text.begin() + 1, text.end(), 'b')) / 4000.0;
        // Tolerance: 4 standard deviations of a binomial(4000, 0.75) frequency ≈ 0.027.
        REQUIRE(std::abs(b - 0.75) < 0.03);
    }
}

TEST_CASE("sampler: seeds decide the text", "[stage][eval]") {
    auto v = make_vocab();
    auto uniform = [](std::int32_t) { return std::vector<float>(kV, 0.f); };
    FakeModel m1(kV, uniform), m2(kV, uniform), m3(kV, uniform);
    const std::string a = sample(v, m1, {{"seed", std::int64_t{7}}}, request("a", 60));
    const std::string b = sample(v, m2, {{"seed", std::int64_t{7}}}, request("a", 60));
    SampleRequest other = request("a", 60);
    other.seed = 8;
    const std::string c = sample(v, m3, {{"seed", std::int64_t{7}}}, other);
    REQUIRE(a == b);
    REQUIRE(a != c);
    // A uniform model may draw any letter but never <pad>, <unk>, <sos>; <eos> is a newline.
    for (char ch : a) REQUIRE(std::string("abcd\n").find(ch) != std::string::npos);
}

TEST_CASE("sampler: masked specials, <eos>, empty prime", "[stage][eval]") {
    SECTION("<pad>, <unk>, <sos> are never drawn even when the model prefers them") {
        auto v = make_vocab();
        FakeModel model(kV, cycle(1.f, 100.f));
        const std::string text = sample(v, model, {{"top_k", std::int64_t{1}}}, request("a", 8));
        REQUIRE(text == "a\n\n\n\n\n\n\n\n");  // <eos> (id 3) is the best allowed token
    }
    SECTION("empty prime starts after <eos>, which is not written") {
        auto v = make_vocab();
        FakeModel model(kV, cycle(50.f));
        REQUIRE(sample(v, model, {}, request("", 3)) == "abc");
        REQUIRE(model.calls[0].t == 1);
        REQUIRE(model.fed[0] == 3);
    }
    SECTION("the prime parameter is used when the request has none") {
        auto v = make_vocab();
        FakeModel model(kV, cycle(50.f));
        REQUIRE(sample(v, model, {{"prime", std::string("c")}}, request("", 2)) == "cda");
    }
    SECTION("without <eos>, an empty prime starts from a drawn token, counted in length") {
        auto v = make_vocab({"<unk>"});
        FakeModel model(5, [](std::int32_t id) {
            std::vector<float> r(5, 0.f);
            r[static_cast<std::size_t>(id == 4 ? 1 : id + 1)] = 50.f;
            return r;
        });
        const std::string text = sample(v, model, {}, request("", 5));
        REQUIRE(text.size() == 5);
        const std::string cyc = "abcdabcd";
        REQUIRE(cyc.find(text) != std::string::npos);
    }
    SECTION("word mode: <eos> ends a line") {
        auto v = make_vocab({"<unk>", "<eos>"}, "word");
        // ids: 0 <unk>, 1 <eos>, 2 a, 3 b, 4 c, 5 d; a → b → <eos> → c → d → a
        FakeModel model(6, [](std::int32_t id) {
            const std::int32_t next[] = {2, 4, 3, 1, 5, 2};
            std::vector<float> r(6, 0.f);
            r[static_cast<std::size_t>(next[id])] = 50.f;
            return r;
        });
        REQUIRE(sample(v, model, {}, request("a", 5)) == "a b\nc d a");
    }
}

TEST_CASE("sampler: prime tokens outside the vocabulary", "[stage][eval]") {
    SECTION("become <unk> but are written as given") {
        auto v = make_vocab();
        FakeModel model(kV, cycle(50.f));
        REQUIRE(sample(v, model, {}, request("az", 2)) == "azab");
        REQUIRE(model.fed[1] == 1);
    }
    SECTION("without <unk> they are an error") {
        auto v = make_vocab({"<eos>"});
        FakeModel model(5, [](std::int32_t) { return std::vector<float>(5, 0.f); });
        try {
            sample(v, model, {}, request("az", 2));
            FAIL("no error");
        } catch (const Error& e) {
            REQUIRE(e.message() == "prime token 'z' is not in the vocabulary");
        }
    }
    SECTION("logits of the wrong width are an error") {
        auto v = make_vocab();
        FakeModel model(5, [](std::int32_t) { return std::vector<float>(5, 0.f); });
        REQUIRE_THROWS_WITH(sample(v, model, {}, request("a", 2)),
                            "model gave logits (1, 1, 5), the sampler expects (1, 1, 8)");
    }
}

TEST_CASE("sampler: frames to prime with are refused", "[stage][eval]") {
    // rnnflow generate --prime-from on a text model: say which option fits instead.
    auto v = make_vocab();
    FakeModel model(kV, cycle(5.f));
    SampleRequest req = request("a", 2);
    req.prime_from = "test:3";
    REQUIRE_THROWS_WITH(sample(v, model, {}, req),
                        "this run's sampler generates text: it primes with text, not with frames of a piece");
    req.prime_from.clear();
    req.prime_frames = 4;
    REQUIRE_THROWS_WITH(sample(v, model, {}, req), Catch::StartsWith("this run's sampler generates text"));
    REQUIRE(model.calls.empty());
}

namespace {

// Fixed probabilities a 0.5, b 0.3, c 0.15, d 0.05 whatever is fed; specials never drawn.
std::vector<float> fixed_row(std::int32_t) {
    std::vector<float> r(kV, -1e30f);
    const double p[] = {0.5, 0.3, 0.15, 0.05};
    for (int i = 0; i < 4; ++i) r[static_cast<std::size_t>(kA + i)] = static_cast<float>(std::log(p[i]));
    return r;
}

// Letter counts of `n` tokens drawn after the prime "a".
std::map<char, int> counts(const Set& set, std::int64_t n, double req_top_p = -1) {
    auto v = make_vocab();
    FakeModel model(kV, fixed_row);
    SampleRequest r = request("a", n);
    r.top_p = req_top_p;
    const std::string text = sample(v, model, set, r);
    std::map<char, int> c;
    for (std::size_t i = 1; i < text.size(); ++i) ++c[text[i]];
    return c;
}

}  // namespace

TEST_CASE("sampler: top_p draws only inside the nucleus", "[stage][eval][top_p]") {
    REQUIRE(default_params(Sampler::schema()).get_float("top_p") == 1.0);
    REQUIRE(StageSchema::check(*Sampler::schema().find_param("top_p"), ParamValue(1.5)) ==
            "must be in [0, 1], got 1.5");
    const std::int64_t n = 4000;
    SECTION("0.7: a and b (0.5 + 0.3 reach it), renormalised to 5/8, 3/8") {
        auto c = counts({{"top_p", 0.7}}, n);
        REQUIRE(c.size() == 2);
        REQUIRE(c['a'] + c['b'] == n);
        // Tolerance: 4 standard deviations of a binomial(4000, 0.625) frequency ≈ 0.031.
        REQUIRE(std::abs(c['a'] / static_cast<double>(n) - 0.625) < 0.031);
    }
    SECTION("0.9: a, b, c; never d") {
        auto c = counts({{"top_p", 0.9}}, n);
        REQUIRE(c.size() == 3);
        REQUIRE(c.count('d') == 0);
    }
    SECTION("0 keeps only the most likely token") {
        REQUIRE(counts({{"top_p", 0.0}}, 50) == std::map<char, int>{{'a', 50}});
    }
    SECTION("1 cuts nothing: the same draws as without the parameter, d included") {
        auto v = make_vocab();
        FakeModel m1(kV, fixed_row), m2(kV, fixed_row);
        const std::string with = sample(v, m1, {{"top_p", 1.0}}, request("a", 500));
        REQUIRE(with == sample(v, m2, {}, request("a", 500)));
        REQUIRE(with.find('d') != std::string::npos);
    }
    SECTION("after top_k: top_k 2 wins over a wider nucleus, a narrow nucleus inside top_k 3 wins") {
        auto c = counts({{"top_p", 0.9}, {"top_k", std::int64_t{2}}}, 500);
        REQUIRE(c.size() == 2);
        REQUIRE(c['a'] + c['b'] == 500);
        // Within top_k 3 a has 0.5 / 0.95 = 0.526 >= 0.5: a alone.
        REQUIRE(counts({{"top_p", 0.5}, {"top_k", std::int64_t{3}}}, 50) == std::map<char, int>{{'a', 50}});
    }
    SECTION("on the tempered distribution: temperature 2 flattens it, 0.7 then needs c too") {
        // ∝ sqrt(p): a 0.379, b 0.294, c 0.208, d 0.120; a + b = 0.673 < 0.7.
        auto c = counts({{"top_p", 0.7}, {"temperature", 2.0}}, n);
        REQUIRE(c.size() == 3);
        REQUIRE(c.count('d') == 0);
        // Temperature 0 stays greedy whatever top_p.
        REQUIRE(counts({{"top_p", 0.7}}, 20, -1).size() == 2);
        auto v = make_vocab();
        FakeModel model(kV, fixed_row);
        SampleRequest r = request("a", 20);
        r.temperature = 0;
        r.top_p = 0.9;
        REQUIRE(sample(v, model, {}, r) == std::string(21, 'a'));
    }
    SECTION("the request's top_p overrides the parameter; out of range is an error") {
        auto c = counts({{"top_p", 1.0}}, n, 0.7);
        REQUIRE(c.size() == 2);
        auto v = make_vocab();
        FakeModel model(kV, fixed_row);
        SampleRequest r = request("a", 5);
        r.top_p = 1.5;
        REQUIRE_THROWS_WITH(sample(v, model, {}, r), "top_p must be in [0, 1], got 1.5");
    }
}
