// conll_columns: columns, -DOCSTART-, sentences, scheme conversion, digit folding, the
// malformed-line policy and prediction runs.
#include <catch2/catch.hpp>

#include "cls_support.hpp"
#include "stages/data/conll_columns.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::ConllColumns;
using Set = std::map<std::string, ParamValue>;
using Toks = std::vector<std::vector<std::string>>;

namespace {
// CoNLL-2003's layout: word POS chunk NER, IOB1; two sentences after a document line.
const char* kConll2003 =
    "-DOCSTART- -X- -X- O\n"
    "\n"
    "EU NNP B-NP I-ORG\n"
    "rejects VBZ B-VP O\n"
    "German JJ B-NP I-MISC\n"
    "call NN I-NP O\n"
    "\n"
    "Peter NNP B-NP I-PER\n"
    "Blackburn NNP I-NP I-PER\n"
    "Jim NNP I-NP B-PER\n"
    "in IN B-PP O\n"
    "1996 CD B-NP O\n";

FakePrepare run(const ClsTempDir& d, const Set& set, std::int64_t* skipped = nullptr) {
    return run_reader<ConllColumns>(d, set, skipped);
}
std::string message_of(const ClsTempDir& d, const Set& set) { return reader_message<ConllColumns>(d, set); }
}  // namespace

TEST_CASE("conll_columns: schema defaults and bad parameters", "[stage][data][reader][conll]") {
    const auto s = ConllColumns::schema();
    const Params p = default_params(s);
    REQUIRE(p.get_int("word") == 0);
    REQUIRE(p.get_int("label") == -1);
    REQUIRE(p.get_string("scheme") == "file");
    REQUIRE(p.get_string("digits") == "keep");
    REQUIRE_THROWS_WITH(ConllColumns(params_for(s, {{"label", std::int64_t{0}}})), "word and label are both column 0");
}

TEST_CASE("conll_columns: CoNLL-2003 as written: last column, DOCSTART skipped", "[stage][data][reader][conll]") {
    ClsTempDir d;
    d.write("train.txt", kConll2003);
    auto ctx = run(d, {{"train", std::string("train.txt")}});
    REQUIRE(ctx.out<TextSplit>("text", "train").items ==
            std::vector<std::string>{"EU rejects German call", "Peter Blackburn Jim in 1996"});
    REQUIRE(ctx.out<TokenSplit>("words", "train").items == ctx.out<TokenSplit>("tokens", "train").items);
    REQUIRE(ctx.out<TokenSplit>("labels", "train").items ==
            Toks{{"I-ORG", "O", "I-MISC", "O"}, {"I-PER", "I-PER", "B-PER", "O", "O"}});
    SECTION("another column as the label: the chunk tags") {
        auto chunks = run(d, {{"train", std::string("train.txt")}, {"label", std::int64_t{2}}});
        REQUIRE(chunks.out<TokenSplit>("labels", "train").items.front() == std::vector<std::string>{"B-NP", "B-VP", "B-NP", "I-NP"});
    }
}

TEST_CASE("conll_columns: IOB1 read as IOB2 and IOBES, digits folded", "[stage][data][reader][conll]") {
    ClsTempDir d;
    d.write("train.txt", kConll2003);
    auto iob2 = run(d, {{"train", std::string("train.txt")}, {"scheme", std::string("iob2")},
                        {"digits", std::string("zero")}});
    REQUIRE(iob2.out<TokenSplit>("labels", "train").items ==
            Toks{{"B-ORG", "O", "B-MISC", "O"}, {"B-PER", "I-PER", "B-PER", "O", "O"}});
    REQUIRE(iob2.out<TokenSplit>("tokens", "train").items.back().back() == "0000");
    REQUIRE(iob2.out<TokenSplit>("words", "train").items.back().back() == "1996");
    REQUIRE(iob2.out<TextSplit>("text", "train").items.back() == "Peter Blackburn Jim in 1996");
    auto iobes = run(d, {{"train", std::string("train.txt")}, {"scheme", std::string("iobes")}});
    REQUIRE(iobes.out<TokenSplit>("labels", "train").items ==
            Toks{{"S-ORG", "O", "S-MISC", "O"}, {"B-PER", "E-PER", "S-PER", "O", "O"}});
}

TEST_CASE("conll_columns: malformed lines name file:line, or drop their sentence with a count",
          "[stage][data][reader][conll]") {
    ClsTempDir d;
    d.write("train.txt", "a\tO\nb\n\nc O\n\nd X-PER\n\ne O\n");
    REQUIRE(message_of(d, {{"train", std::string("train.txt")}}) ==
            "train.txt:2: 1 column, too few for word column 0 and label column -1");
    std::int64_t skipped = -1;
    auto ctx = run(d, {{"train", std::string("train.txt")}, {"on_error", std::string("skip")}}, &skipped);
    REQUIRE(skipped == 1);
    REQUIRE(ctx.out<TokenSplit>("words", "train").items == Toks{{"c"}, {"d"}, {"e"}});
    SECTION("a bad tag only matters when converting") {
        d.write("bad_tag.txt", "c O\n\nd X-PER\n");
        REQUIRE(message_of(d, {{"train", std::string("bad_tag.txt")}, {"scheme", std::string("iob2")}}) ==
                "bad_tag.txt:3: tag 'X-PER' is not O or B-, I-, E-, S- with a type");
        auto kept = run(d, {{"train", std::string("bad_tag.txt")}, {"scheme", std::string("iob2")},
                            {"on_error", std::string("skip")}}, &skipped);
        REQUIRE(skipped == 1);
        REQUIRE(kept.out<TokenSplit>("labels", "train").items == Toks{{"O"}});
    }
    SECTION("a file of only DOCSTART has no sentences") {
        d.write("empty.txt", "-DOCSTART- O\n\n");
        REQUIRE(message_of(d, {{"train", std::string("empty.txt")}}) == "train file 'empty.txt' has no sentences");
    }
}

TEST_CASE("conll_columns: a prediction run reads input lines, folded like training", "[stage][data][reader][conll]") {
    const auto s = ConllColumns::schema();
    ConllColumns stage(params_for(s, {{"digits", std::string("zero")}}));
    InferPrepare ctx(s, {"Jim Henson  visited Paris in 1990"});
    stage.prepare(ctx);
    REQUIRE(ctx.out<TokenSplit>("words", "infer").items ==
            Toks{{"Jim", "Henson", "visited", "Paris", "in", "1990"}});
    REQUIRE(ctx.out<TokenSplit>("tokens", "infer").items.front().back() == "0000");
    REQUIRE_FALSE(ctx.has_out("labels", "infer"));
}
