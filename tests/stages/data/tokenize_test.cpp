#include <catch2/catch.hpp>

#include "stages/data/tokenize.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::Tokenize;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;
using Toks = std::vector<std::vector<std::string>>;

namespace {

FakePrepare run(const std::map<std::string, ParamValue>& set, std::vector<std::string> train,
                PrepareMode mode = PrepareMode::fit) {
    static const StageSchema s = Tokenize::schema();
    Tokenize stage(params_for(s, set));
    FakePrepare ctx(s, 1, mode);
    ctx.info("in", PortInfo{PortType::text, -1, -1, nullptr});
    if (mode == PrepareMode::fit) {
        ctx.data("in", "train", TextSplit{std::move(train), "train.txt"});
        ctx.data("in", "test", TextSplit{{"z"}, "test.txt"});
    }
    stage.prepare(ctx);
    return ctx;
}

}  // namespace

TEST_CASE("tokenize: schema defaults", "[stage][data]") {
    const auto s = Tokenize::schema();
    REQUIRE(s.type() == "tokenize");
    const Params p = default_params(s);
    REQUIRE(p.get_string("mode") == "char");
    REQUIRE_FALSE(p.get_bool("lowercase"));
    REQUIRE_FALSE(p.get_bool("split_punct"));
    REQUIRE(StageSchema::check(*s.find_param("mode"), ParamValue(std::string("bpe"))) ==
            "must be one of char, word, got 'bpe'");
}

TEST_CASE("tokenize: char mode keeps UTF-8 code points whole", "[stage][data]") {
    auto ctx = run({}, {"h\xC3\xA9 \xE2\x82\xAC\xF0\x9F\x98\x80", ""});
    const auto& out = ctx.out<TokenSplit>("out", "train");
    REQUIRE(out.items == Toks{{"h", "\xC3\xA9", " ", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"}, {}});
    REQUIRE(out.origin == "train.txt");
    REQUIRE(out.spec.mode == "char");
    REQUIRE(ctx.out<TokenSplit>("out", "test").items == Toks{{"z"}});
    REQUIRE_FALSE(ctx.has_out("out", "valid"));
    REQUIRE(ctx.out_info("out").type == PortType::tokens);
}

TEST_CASE("tokenize: word mode, lowercase and punctuation", "[stage][data]") {
    const std::vector<std::string> text{"Hello, World!  It's\tfine."};
    SECTION("plain") {
        auto ctx = run({{"mode", std::string("word")}}, text);
        REQUIRE(ctx.out<TokenSplit>("out", "train").items == Toks{{"Hello,", "World!", "It's", "fine."}});
    }
    SECTION("lowercase + split_punct") {
        auto ctx = run({{"mode", std::string("word")}, {"lowercase", true}, {"split_punct", true}}, text);
        const auto& out = ctx.out<TokenSplit>("out", "train");
        REQUIRE(out.items == Toks{{"hello", ",", "world", "!", "it", "'", "s", "fine", "."}});
        REQUIRE(out.spec.mode == "word");
        REQUIRE(out.spec.lowercase);
        REQUIRE(out.spec.split_punct);
    }
}

TEST_CASE("tokenize: restore mode outputs nothing", "[stage][data]") {
    auto ctx = run({}, {}, PrepareMode::restore);
    REQUIRE(ctx.out_info("out").type == PortType::tokens);
    REQUIRE_FALSE(ctx.has_out("out", "train"));
}
