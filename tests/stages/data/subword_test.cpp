#include <catch2/catch.hpp>

#include "cls_support.hpp"
#include "stages/data/subword.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Subword;
using Set = std::map<std::string, ParamValue>;

namespace {

std::vector<std::string> corpus() {
    std::vector<std::string> v;
    const std::vector<std::string> words{"lower", "lowest", "newer", "newest", "wider", "widest", "slow", "slower"};
    for (int i = 0; i < 300; ++i)
        v.push_back(words[static_cast<std::size_t>(i) % words.size()] + " " + words[static_cast<std::size_t>(i * 3 + 1) % words.size()] +
                    " and " + words[static_cast<std::size_t>(i * 5 + 2) % words.size()]);
    v.push_back("");  // empty items are not trained on, and encode to nothing
    return v;
}

// Removes SentencePiece's word-start marks: the pieces of a text give back its words.
std::string join(const std::vector<std::string>& pieces) {
    std::string s;
    for (const auto& p : pieces) s += p;
    std::string out;
    const std::string mark = "\xE2\x96\x81";
    for (std::size_t i = 0; i < s.size();) {
        if (s.compare(i, mark.size(), mark) == 0) {
            if (!out.empty()) out += ' ';
            i += mark.size();
        } else {
            out += s[i++];
        }
    }
    return out;
}

}  // namespace

TEST_CASE("subword: BPE and unigram models round-trip and restore from the state folder", "[stage][data][subword]") {
    const std::string model = GENERATE(std::string("bpe"), std::string("unigram"));
    ClsTempDir d;
    const StageSchema s = Subword::schema();
    Subword stage(params_for(s, {{"model", model}, {"vocab_size", std::int64_t{40}}}));
    FakePrepare ctx(s);
    ctx.dir(d.path / "state");
    ctx.info("in", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.data("in", "train", TextSplit{corpus(), "train.txt"});
    ctx.data("in", "test", TextSplit{{"slowest newer", "lowly widest"}, "test.txt"});
    stage.prepare(ctx);
    REQUIRE(std::filesystem::exists(d.path / "state" / "subword.model"));
    REQUIRE(stage.value("size") <= 40);
    REQUIRE(stage.value("size") > 10);
    const auto& train = ctx.out<TokenSplit>("out", "train");
    REQUIRE(train.items.size() == corpus().size());
    REQUIRE(train.items.back().empty());
    for (std::size_t i = 0; i < 20; ++i) REQUIRE(join(train.items[i]) == corpus()[i]);
    const auto& test = ctx.out<TokenSplit>("out", "test");
    REQUIRE(join(test.items[0]) == "slowest newer");
    REQUIRE(join(test.items[1]) == "lowly widest");
    // Subwords: a word seen often is one piece or a few, never more pieces than characters.
    REQUIRE(test.items[0].size() < std::string("slowest newer").size());

    // Restore (e.g. a prediction run): the saved model, the same pieces.
    Subword again(params_for(s, {{"model", model}, {"vocab_size", std::int64_t{40}}}));
    InferPrepare ip(s, {});
    ip.dir(d.path / "state");
    ip.info("in", PortInfo{PortType::text, -1, -1, nullptr});
    ip.data("in", "infer", TextSplit{{"slowest newer"}, "input lines"});
    again.prepare(ip);
    REQUIRE(ip.out<TokenSplit>("out", "infer").items[0] == test.items[0]);
    REQUIRE(again.value("size") == stage.value("size"));
}

TEST_CASE("subword: errors", "[stage][data][subword]") {
    const StageSchema s = Subword::schema();
    ClsTempDir d;
    {
        Subword stage(default_params(s));
        FakePrepare ctx(s, 1, PrepareMode::restore);
        ctx.dir(d.path / "nothing");
        ctx.info("in", PortInfo{PortType::text, -1, -1, nullptr});
        REQUIRE_THROWS_WITH(stage.prepare(ctx), Catch::StartsWith("no saved subword model at '"));
    }
    {
        Subword stage(default_params(s));
        FakePrepare ctx(s);
        ctx.info("in", PortInfo{PortType::text, -1, -1, nullptr});
        ctx.data("in", "train", TextSplit{{"", "  "}, "train.txt"});
        REQUIRE_THROWS_WITH(stage.prepare(ctx), "no text in the training split (train.txt)");
    }
}
