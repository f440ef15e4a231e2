// The readers on the real datasets in ../shared/data: counts against the figures its README
// gives (skipped, exit 77, where ../shared is absent).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <iostream>
#include <set>

#include "cls_support.hpp"
#include "stages/data/conllu.hpp"
#include "stages/data/lm_batches.hpp"
#include "stages/data/text_file.hpp"
#include "stages/data/tokenize.hpp"
#include "stages/data/tsv_text.hpp"
#include "stages/data/vocabulary.hpp"

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

TEST_CASE("PTB: text_file → tokenize → vocabulary (<eos> per line) gives the standard counts", "[stage][data][reader][shared]") {
    // As graphs/ptb_small.yaml reads it: 929,589 / 73,760 / 82,430 tokens with one <eos> per
    // line, 10,000 words; lm_batches with 20 streams of BPTT 20 then has 2,324 / 185 / 207 batches.
    const auto dir = shared_data("ptb");
    const auto s1 = stages::TextFile::schema();
    stages::TextFile reader(params_for(s1, {{"train", std::vector<std::string>{"ptb.train.txt"}},
                                            {"valid", std::string("ptb.valid.txt")},
                                            {"test", std::string("ptb.test.txt")}}));
    FakePrepare c1(s1);
    c1.base(dir);
    reader.prepare(c1);
    const std::vector<std::string> splits{"train", "valid", "test"};

    const auto s2 = stages::Tokenize::schema();
    stages::Tokenize tok(params_for(s2, {{"mode", std::string("word")}}));
    FakePrepare c2(s2);
    c2.info("in", c1.out_info("out"));
    for (const auto& sp : splits) c2.data("in", sp, c1.out<TextSplit>("out", sp));
    tok.prepare(c2);

    const auto s3 = stages::Vocabulary::schema();
    stages::Vocabulary vocab(params_for(s3, {{"specials", std::vector<std::string>{"<unk>", "<eos>"}},
                                             {"append_eos", true}}));
    FakePrepare c3(s3);
    c3.info("in", c2.out_info("out"));
    for (const auto& sp : splits) c3.data("in", sp, c2.out<TokenSplit>("out", sp));
    vocab.prepare(c3);
    REQUIRE(c3.out_info("vocab").vocab->size() == 10000);
    auto tokens = [&](const std::string& sp) {
        std::size_t n = 0;
        for (const auto& item : c3.out<SequenceSplit>("out", sp).items) n += item.size();
        return n;
    };
    REQUIRE(tokens("train") == 929589);
    REQUIRE(tokens("valid") == 73760);
    REQUIRE(tokens("test") == 82430);

    const auto s4 = stages::LmBatches::schema();
    stages::LmBatches batches(params_for(s4, {{"batch", std::int64_t{20}}, {"bptt", std::int64_t{20}}}));
    FakePrepare c4(s4);
    c4.info("in", c3.out_info("out"));
    for (const auto& sp : splits) c4.data("in", sp, c3.out<SequenceSplit>("out", sp));
    batches.prepare(c4);
    REQUIRE(batches.begin("train", 0) == 2324);
    REQUIRE(batches.begin("valid", 0) == 185);
    REQUIRE(batches.begin("test", 0) == 207);
}
