// token_noise: schema, noise only where asked, determinism, rates, the built plug-in.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>

#include <rnnflow/registry.hpp>
#include <rnnflow/testing/harness.hpp>

#include "token_noise.hpp"

using namespace rnnflow;
using token_noise_plugin::TokenNoise;

namespace {

const StageSchema& schema() {
    static const StageSchema s = TokenNoise::schema();
    return s;
}

std::vector<std::string> chars(const std::string& s) {
    std::vector<std::string> out;
    for (char c : s) out.emplace_back(1, c);
    return out;
}

TokenSplit split_of(const std::vector<std::string>& lines) {
    TokenSplit t;
    t.origin = "test";
    t.spec.mode = "char";
    for (const auto& l : lines) t.items.push_back(chars(l));
    return t;
}

// Runs prepare on train/valid data; returns the context to read outputs from.
std::unique_ptr<test::FakePrepare> run(const std::map<std::string, ParamValue>& set, std::uint64_t run_seed = 1) {
    TokenNoise st(test::params_for(schema(), set));
    auto ctx = std::make_unique<test::FakePrepare>(schema(), run_seed);
    ctx->info("in", PortInfo{PortType::tokens, -1, -1, nullptr});
    std::string long_text;
    for (int i = 0; i < 400; ++i) long_text += "the quick brown fox ";
    ctx->data("in", "train", split_of({long_text, "abc"}));
    ctx->data("in", "valid", split_of({long_text}));
    st.prepare(*ctx);
    return ctx;
}

std::size_t total(const TokenSplit& s) {
    std::size_t n = 0;
    for (const auto& i : s.items) n += i.size();
    return n;
}

}  // namespace

TEST_CASE("token_noise: schema defaults and bad values", "[token_noise]") {
    REQUIRE(schema().type() == "token_noise");
    REQUIRE(schema().role() == Role::data);
    const Params p = default_params(schema());
    REQUIRE(p.get_float("drop") == 0.05);
    REQUIRE(p.get_float("swap") == 0.0);
    REQUIRE(p.get_int("seed") == -1);
    REQUIRE(p.get_list("splits") == std::vector<std::string>{"train"});
    REQUIRE(StageSchema::check(*schema().find_param("drop"), ParamValue(0.95)) == "must be in [0, 0.9], got 0.95");
    REQUIRE_THAT(StageSchema::check(*schema().find_param("splits"), ParamValue(std::vector<std::string>{"dev"})),
                 Catch::Contains("dev"));
}

TEST_CASE("token_noise: no noise is the identity; the tokenizer spec passes on", "[token_noise]") {
    auto ctx = run({{"drop", 0.0}, {"swap", 0.0}});
    const auto& in = ctx->input<TokenSplit>("in", "train");
    const auto& out = ctx->out<TokenSplit>("out", "train");
    REQUIRE(out.items == in.items);
    REQUIRE(out.spec.mode == "char");
    REQUIRE(ctx->out_info("out").type == PortType::tokens);
}

TEST_CASE("token_noise: only the chosen splits change", "[token_noise]") {
    auto ctx = run({{"drop", 0.2}, {"swap", 0.1}});
    REQUIRE(ctx->out<TokenSplit>("out", "train").items != ctx->input<TokenSplit>("in", "train").items);
    REQUIRE(ctx->out<TokenSplit>("out", "valid").items == ctx->input<TokenSplit>("in", "valid").items);
    auto both = run({{"drop", 0.2}, {"splits", std::vector<std::string>{"train", "valid"}}});
    REQUIRE(both->out<TokenSplit>("out", "valid").items != both->input<TokenSplit>("in", "valid").items);
}

TEST_CASE("token_noise: the same seed gives the same noise; another seed other noise", "[token_noise]") {
    const auto a = run({{"drop", 0.1}, {"swap", 0.1}, {"seed", std::int64_t(9)}}, 1);
    const auto b = run({{"drop", 0.1}, {"swap", 0.1}, {"seed", std::int64_t(9)}}, 2);  // run seed unused
    const auto c = run({{"drop", 0.1}, {"swap", 0.1}, {"seed", std::int64_t(10)}}, 1);
    REQUIRE(a->out<TokenSplit>("out", "train").items == b->out<TokenSplit>("out", "train").items);
    REQUIRE(a->out<TokenSplit>("out", "train").items != c->out<TokenSplit>("out", "train").items);
    // seed -1 follows the run's seed.
    const auto d = run({{"drop", 0.1}}, 1), e = run({{"drop", 0.1}}, 1), f = run({{"drop", 0.1}}, 2);
    REQUIRE(d->out<TokenSplit>("out", "train").items == e->out<TokenSplit>("out", "train").items);
    REQUIRE(d->out<TokenSplit>("out", "train").items != f->out<TokenSplit>("out", "train").items);
}

TEST_CASE("token_noise: drop removes about that share; swaps keep every token", "[token_noise]") {
    const auto dropped = run({{"drop", 0.2}, {"seed", std::int64_t(3)}});
    const double n_in = static_cast<double>(total(dropped->input<TokenSplit>("in", "train")));
    const double n_out = static_cast<double>(total(dropped->out<TokenSplit>("out", "train")));
    // 8003 tokens: the kept share's standard deviation is sqrt(0.2 * 0.8 / 8003) = 0.0045.
    REQUIRE(n_out / n_in == Approx(0.8).margin(0.02));

    const auto swapped = run({{"drop", 0.0}, {"swap", 0.3}, {"seed", std::int64_t(3)}});
    auto a = swapped->input<TokenSplit>("in", "train").items[0];
    auto b = swapped->out<TokenSplit>("out", "train").items[0];
    REQUIRE(a != b);
    REQUIRE(a.size() == b.size());
    // Every token is at most one place from where it was: sorting restores the same multiset.
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    REQUIRE(a == b);
}

TEST_CASE("token_noise: restore mode reads no data", "[token_noise]") {
    TokenNoise st(default_params(schema()));
    test::FakePrepare ctx(schema(), 1, PrepareMode::restore);
    ctx.info("in", PortInfo{PortType::tokens, -1, -1, nullptr});
    st.prepare(ctx);
    REQUIRE(ctx.out_info("out").type == PortType::tokens);
    REQUIRE(!ctx.has_out("out", "train"));
}

TEST_CASE("token_noise: the built plug-in adds the stage type", "[token_noise][plugin]") {
    Registry r;
    load_plugin(r, PLUGIN_FILE);
    REQUIRE(r.find("token_noise") != nullptr);
    REQUIRE(r.find("token_noise")->origin == PLUGIN_FILE);
}
