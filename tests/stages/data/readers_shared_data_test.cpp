// The readers on the real datasets in ../shared/data: counts against the figures its README
// gives (skipped, exit 77, where ../shared is absent).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <iostream>
#include <set>

#include "cls_support.hpp"
#include "stages/data/conllu.hpp"
#include "stages/data/tsv_text.hpp"

using namespace rnnflow;
using namespace rnnflow::test;

namespace {

std::filesystem::path shared_data(const std::string& sub) {
    const auto p = std::filesystem::path(RNNFLOW_SOURCE_DIR) / ".." / "shared" / "data" / sub;
    if (!std::filesystem::exists(p)) {
        std::cerr << "skipped: " << p.string() << " not found (../shared/data exists only on developer machines and in CI)\n";
        std::exit(77);
    }
    return p;
}

}  // namespace

TEST_CASE("conllu: UD English EWT has the published sentence and word counts", "[stage][data][reader][shared]") {
    const auto dir = shared_data("ud_english_ewt");
    const StageSchema s = stages::Conllu::schema();
    stages::Conllu reader(params_for(s, {{"train", std::string("en_ewt-ud-train.conllu")},
                                         {"valid", std::string("en_ewt-ud-dev.conllu")},
                                         {"test", std::string("en_ewt-ud-test.conllu")}}));
    FakePrepare ctx(s);
    ctx.base(dir);
    reader.prepare(ctx);
    REQUIRE(reader.value("skipped") == 0);
    // README: train 12,544 / 204,577, dev 2,001 / 25,147, test 2,077 / 25,094 (syntactic words).
    auto words = [&](const std::string& split) {
        std::size_t n = 0;
        for (const auto& s2 : ctx.out<TokenSplit>("tokens", split).items) n += s2.size();
        return n;
    };
    REQUIRE(ctx.out<TokenSplit>("tokens", "train").items.size() == 12544);
    REQUIRE(words("train") == 204577);
    REQUIRE(ctx.out<TokenSplit>("tokens", "valid").items.size() == 2001);
    REQUIRE(words("valid") == 25147);
    REQUIRE(ctx.out<TokenSplit>("labels", "test").items.size() == 2077);
    REQUIRE(words("test") == 25094);
    std::set<std::string> tags;
    for (const auto& s2 : ctx.out<TokenSplit>("labels", "train").items) tags.insert(s2.begin(), s2.end());
    REQUIRE(tags.size() == 17);  // the UPOS tag set
}

TEST_CASE("tsv_text: SST-2 in both packagings has the published counts", "[stage][data][reader][shared]") {
    const auto dir = shared_data("sst2");
    const StageSchema s = stages::TsvText::schema();
    {
        // "<label> <sentence>" lines.
        stages::TsvText reader(params_for(s, {{"train", std::string("sentence_level/stsa.binary.train")},
                                              {"test", std::string("sentence_level/stsa.binary.test")},
                                              {"delimiter", std::string(" ")}, {"header", false},
                                              {"max_fields", std::int64_t{2}}, {"label", std::string("1")},
                                              {"text", std::string("2")}}));
        FakePrepare ctx(s);
        ctx.base(dir);
        reader.prepare(ctx);
        const auto& labels = ctx.out<TokenSplit>("labels", "train").items;
        REQUIRE(labels.size() == 6920);
        REQUIRE(std::count(labels.begin(), labels.end(), std::vector<std::string>{"1"}) == 3610);
        REQUIRE(ctx.out<TextSplit>("text", "test").items.size() == 1821);
    }
    {
        // GLUE TSV with a header (ALPS split: test.tsv is GLUE's dev set, 444 / 428).
        stages::TsvText reader(params_for(s, {{"train", std::string("glue_phrases_alps/train.tsv")},
                                              {"valid", std::string("glue_phrases_alps/dev.tsv")},
                                              {"test", std::string("glue_phrases_alps/test.tsv")}}));
        FakePrepare ctx(s);
        ctx.base(dir);
        reader.prepare(ctx);
        REQUIRE(reader.value("skipped") == 0);
        REQUIRE(ctx.out<TextSplit>("text", "train").items.size() + ctx.out<TextSplit>("text", "valid").items.size() == 67349);
        const auto& test = ctx.out<TokenSplit>("labels", "test").items;
        REQUIRE(test.size() == 872);
        REQUIRE(std::count(test.begin(), test.end(), std::vector<std::string>{"1"}) == 444);
    }
}
