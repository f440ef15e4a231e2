#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

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

TEST_CASE("tokenize: inner punctuation and number folding", "[stage][data]") {
    const std::vector<std::string> text{"It's 3.14, not 1,000 -- e-mail me in 1984."};
    SECTION("keep_inner_punct keeps punctuation between word characters") {
        auto ctx = run({{"mode", std::string("word")}, {"split_punct", true}, {"keep_inner_punct", true}}, text);
        REQUIRE(ctx.out<TokenSplit>("out", "train").items ==
                Toks{{"It's", "3.14", ",", "not", "1,000", "-", "-", "e-mail", "me", "in", "1984", "."}});
    }
    SECTION("fold_numbers maps digits to 0, in word and char mode") {
        auto ctx = run({{"mode", std::string("word")}, {"split_punct", true}, {"keep_inner_punct", true},
                        {"fold_numbers", true}}, text);
        const auto& items = ctx.out<TokenSplit>("out", "train").items;
        REQUIRE(items[0][1] == "0.00");
        REQUIRE(items[0][4] == "0,000");
        REQUIRE(items[0][10] == "0000");
        REQUIRE(ctx.out<TokenSplit>("out", "train").spec.fold_numbers);
        auto chars = run({{"fold_numbers", true}}, {"a7"});
        REQUIRE(chars.out<TokenSplit>("out", "train").items == Toks{{"a", "0"}});
    }
    SECTION("the settings travel with the vocabulary file") {
        TokenizerSpec spec;
        spec.mode = "word";
        spec.split_punct = spec.keep_inner_punct = spec.fold_numbers = true;
        const rnnflow::Vocabulary v({"<unk>", "a"}, {0, 1}, {"<unk>"}, spec);
        const auto file = std::filesystem::temp_directory_path() / ("rnnflow_tok_vocab_" + std::to_string(::getpid()) + ".tsv");
        v.save(file);
        const auto back = rnnflow::Vocabulary::load(file);
        std::filesystem::remove(file);
        REQUIRE(back.tokenizer().keep_inner_punct);
        REQUIRE(back.tokenizer().fold_numbers);
        REQUIRE(back.tokenizer().tokenize("x 12") == std::vector<std::string>{"x", "00"});
    }
    REQUIRE_THROWS_WITH(Tokenize(params_for(Tokenize::schema(), {{"keep_inner_punct", true}})),
                        "keep_inner_punct needs split_punct: true");
}
