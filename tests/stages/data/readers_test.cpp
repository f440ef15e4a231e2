// tsv_text, conllu, label_lines: edge cases of each format, the malformed-record policy and
// prediction runs.
#include <catch2/catch.hpp>

#include "cls_support.hpp"
#include "stages/data/conllu.hpp"
#include "stages/data/label_lines.hpp"
#include "stages/data/tsv_text.hpp"

using namespace rnnflow;
using namespace rnnflow::test;
using rnnflow::stages::Conllu;
using rnnflow::stages::LabelLines;
using rnnflow::stages::TsvText;
using Set = std::map<std::string, ParamValue>;
using Items = std::vector<std::string>;
using Toks = std::vector<std::vector<std::string>>;

namespace {

Items labels_of(const FakePrepare& ctx, const std::string& split) {
    Items out;
    for (const auto& item : ctx.out<TokenSplit>("labels", split).items) {
        REQUIRE(item.size() == 1);
        out.push_back(item[0]);
    }
    return out;
}

}  // namespace

TEST_CASE("tsv_text: schema defaults and bad parameters", "[stage][data][reader]") {
    const auto s = TsvText::schema();
    const Params p = default_params(s);
    REQUIRE(p.get_string("delimiter") == "\t");
    REQUIRE(p.get_string("quoting") == "none");
    REQUIRE(p.get_bool("header"));
    REQUIRE(p.get_string("on_error") == "error");
    REQUIRE_THROWS_WITH(TsvText(params_for(s, {{"delimiter", std::string("ab")}})),
                        "delimiter must be one character, got 'ab'");
    REQUIRE_THROWS_WITH(TsvText(params_for(s, {{"header", false}})),
                        "column 'sentence' is a name but header is false");
    REQUIRE_THROWS_WITH(TsvText(params_for(s, {{"text", std::string("0")}})), "columns count from 1, got 0");
    REQUIRE(TsvText(params_for(s, {{"delimiter", std::string("comma")}})).value("skipped") == 0);
}

TEST_CASE("tsv_text: header names, CRLF, empty lines, trailing text", "[stage][data][reader]") {
    ClsTempDir d;
    d.write("train.tsv", "id\tlabel\tsentence\r\n1\tpos\ta fine film \r\n\r\n2\tneg\tdull\n\n");
    d.write("dev.tsv", "id\tlabel\tsentence\n3\tpos\tgood");
    auto ctx = run_reader<TsvText>(d, {{"train", std::string("train.tsv")}, {"valid", std::string("dev.tsv")}});
    REQUIRE(ctx.out<TextSplit>("text", "train").items == Items{"a fine film ", "dull"});
    REQUIRE(labels_of(ctx, "train") == Items{"pos", "neg"});
    REQUIRE(ctx.out<TextSplit>("text", "valid").items == Items{"good"});
    REQUIRE(ctx.out<TextSplit>("text", "train").origin == "train.tsv");
    REQUIRE_FALSE(ctx.has_out("text", "test"));
    REQUIRE(ctx.out_info("labels").type == PortType::tokens);
}

TEST_CASE("tsv_text: CSV quoting keeps delimiters, quotes and line breaks inside fields", "[stage][data][reader]") {
    ClsTempDir d;
    d.write("train.csv",
            "text,label\n"
            "\"hello, world\",1\n"
            "\"she said \"\"no\"\"\",0\n"
            "\"two\nlines\",1\n"
            "plain \"inner\" quote,0\n");
    auto ctx = run_reader<TsvText>(d, {{"train", std::string("train.csv")}, {"delimiter", std::string(",")},
                                {"quoting", std::string("csv")}, {"text", std::string("text")}});
    REQUIRE(ctx.out<TextSplit>("text", "train").items ==
            Items{"hello, world", "she said \"no\"", "two\nlines", "plain \"inner\" quote"});
    REQUIRE(labels_of(ctx, "train") == Items{"1", "0", "1", "0"});
    SECTION("without quoting the quotes are bytes and the comma splits") {
        auto raw = run_reader<TsvText>(d, {{"train", std::string("train.csv")}, {"delimiter", std::string(",")},
                                    {"text", std::string("text")}, {"on_error", std::string("skip")}});
        REQUIRE(raw.out<TextSplit>("text", "train").items.front() == "\"hello");
    }
}

TEST_CASE("tsv_text: numbered columns and max_fields read 'label sentence' lines", "[stage][data][reader]") {
    ClsTempDir d;
    d.write("train.txt", "1 a stirring , funny film\n0 dull\n");
    auto ctx = run_reader<TsvText>(d, {{"train", std::string("train.txt")}, {"delimiter", std::string(" ")},
                                {"header", false}, {"text", std::string("2")}, {"label", std::string("1")},
                                {"max_fields", std::int64_t{2}}});
    REQUIRE(ctx.out<TextSplit>("text", "train").items == Items{"a stirring , funny film", "dull"});
    REQUIRE(labels_of(ctx, "train") == Items{"1", "0"});
}

TEST_CASE("tsv_text: malformed records name file:line, or are skipped with a count", "[stage][data][reader]") {
    ClsTempDir d;
    d.write("train.tsv", "sentence\tlabel\ngood\t1\nno label here\nempty label\t \nfine\t0\n");
    REQUIRE(reader_message<TsvText>(d, {{"train", std::string("train.tsv")}}) ==
            "train.tsv:3: 1 field, the text and label columns need 2");
    std::int64_t skipped = -1;
    auto ctx = run_reader<TsvText>(d, {{"train", std::string("train.tsv")}, {"on_error", std::string("skip")}}, &skipped);
    REQUIRE(skipped == 2);
    REQUIRE(ctx.out<TextSplit>("text", "train").items == Items{"good", "fine"});

    d.write("q.csv", "text,label\n\"open,1\nx,0\n");
    REQUIRE(reader_message<TsvText>(d, {{"train", std::string("q.csv")}, {"delimiter", std::string(",")},
                                    {"quoting", std::string("csv")}, {"text", std::string("text")}}) ==
            "q.csv:2: unterminated quoted field (no closing '\"' before the end of the file)");
    d.write("q2.csv", "text,label\n\"a\"b,1\nok,0\n");
    REQUIRE(reader_message<TsvText>(d, {{"train", std::string("q2.csv")}, {"delimiter", std::string(",")},
                                    {"quoting", std::string("csv")}, {"text", std::string("text")}}) ==
            "q2.csv:2: text after a closing quote in field 1 (a quote inside a quoted field is written \"\")");
    REQUIRE(reader_message<TsvText>(d, {{"train", std::string("train.tsv")}, {"label", std::string("lable")}}) ==
            "train.tsv:1: no column named 'lable' in the header (columns: 'sentence', 'label')");
    d.write("bad.tsv", "sentence\tlabel\nok\t\xff\n");
    REQUIRE(reader_message<TsvText>(d, {{"train", std::string("bad.tsv")}}) == "bad.tsv:2:4: invalid UTF-8 byte 0xff");
    REQUIRE(reader_message<TsvText>(d, {{"train", std::string("missing.tsv")}}) == "train file 'missing.tsv' not found");
    REQUIRE(reader_message<TsvText>(d, {}) == "no training file");
}

TEST_CASE("tsv_text: restore reads nothing; prediction runs give the lines whole", "[stage][data][reader]") {
    ClsTempDir d;
    auto ctx = run_reader<TsvText>(d, {{"train", std::string("absent.tsv")}}, nullptr, PrepareMode::restore);
    REQUIRE_FALSE(ctx.has_out("text", "train"));
    const auto s = TsvText::schema();
    TsvText stage(params_for(s, {{"train", std::string("absent.tsv")}}));
    InferPrepare ip(s, {"one\tline", ""});
    stage.prepare(ip);
    REQUIRE(ip.out<TextSplit>("text", "infer").items == Items{"one\tline", ""});
    REQUIRE_FALSE(ip.has_out("labels", "infer"));
}

// ---------------------------------------------------------------------------------------------

namespace {
const char* kConllu =
    "# newdoc id = x\n"
    "# sent_id = 1\n"
    "# text = I don't know.\n"
    "1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_\n"
    "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_\n"
    "3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_\n"
    "4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No\n"
    "5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_\n"
    "\n"
    "# sent_id = 2\n"
    "1\tGo\tgo\tVERB\tVB\t_\t0\troot\t_\t_\n"
    "1.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t0:root\tCopyOf=1\n"
    "2\tnow\tnow\tADV\tRB\t_\t1\tadvmod\t_\t_\n";  // no final empty line
}

TEST_CASE("conllu: comments, multi-word tokens and empty nodes", "[stage][data][reader]") {
    ClsTempDir d;
    d.write("train.conllu", kConllu);
    auto ctx = run_reader<Conllu>(d, {{"train", std::string("train.conllu")}});
    REQUIRE(ctx.out<TextSplit>("text", "train").items == Items{"I do n't know .", "Go now"});
    REQUIRE(ctx.out<TokenSplit>("tokens", "train").items == Toks{{"I", "do", "n't", "know", "."}, {"Go", "now"}});
    REQUIRE(ctx.out<TokenSplit>("labels", "train").items == Toks{{"PRON", "AUX", "PART", "VERB", "PUNCT"}, {"VERB", "ADV"}});
    SECTION("other columns") {
        auto x = run_reader<Conllu>(d, {{"train", std::string("train.conllu")}, {"word", std::string("LEMMA")},
                                 {"label", std::string("XPOS")}});
        REQUIRE(x.out<TokenSplit>("tokens", "train").items[0] == Items{"I", "do", "not", "know", "."});
        REQUIRE(x.out<TokenSplit>("labels", "train").items[1] == Items{"VB", "RB"});
    }
}

TEST_CASE("conllu: malformed word lines name file:line, or drop their sentence", "[stage][data][reader]") {
    ClsTempDir d;
    d.write("bad.conllu",
            "1\tA\ta\tDET\t_\t_\t0\troot\t_\t_\n"
            "2\tb\n"  // 2 fields
            "\n"
            "1\tOk\tok\tINTJ\t_\t_\t0\troot\t_\t_\n"
            "\n"
            "1\tX\tx\tX\t_\t_\t0\troot\t_\t_\n"
            "3\tY\ty\tX\t_\t_\t1\tdep\t_\t_\n"  // ID jumps
            "\n"
            "x\tZ\tz\tX\t_\t_\t0\troot\t_\t_\n"  // bad ID
            "\n"
            "1\tW\tw\t\t_\t_\t0\troot\t_\t_\n");  // empty UPOS
    REQUIRE(reader_message<Conllu>(d, {{"train", std::string("bad.conllu")}}) ==
            "bad.conllu:2: 2 tab-separated fields, a CoNLL-U word line has 10");
    std::int64_t skipped = -1;
    auto ctx = run_reader<Conllu>(d, {{"train", std::string("bad.conllu")}, {"on_error", std::string("skip")}}, &skipped);
    REQUIRE(skipped == 4);
    REQUIRE(ctx.out<TextSplit>("text", "train").items == Items{"Ok"});

    d.write("jump.conllu", "1\tX\tx\tX\t_\t_\t0\troot\t_\t_\n3\tY\ty\tX\t_\t_\t1\tdep\t_\t_\n");
    REQUIRE(reader_message<Conllu>(d, {{"train", std::string("jump.conllu")}}) == "jump.conllu:2: word ID 3 where 2 was expected");
    d.write("empty.conllu", "# only a comment\n\n");
    REQUIRE(reader_message<Conllu>(d, {{"train", std::string("empty.conllu")}}) == "train file 'empty.conllu' has no sentences");
}

TEST_CASE("conllu: prediction runs split input lines at whitespace", "[stage][data][reader]") {
    const auto s = Conllu::schema();
    Conllu stage(params_for(s, {{"train", std::string("x.conllu")}}));
    InferPrepare ip(s, {"I  know .", ""});
    stage.prepare(ip);
    REQUIRE(ip.out<TextSplit>("text", "infer").items == Items{"I  know .", ""});
    REQUIRE(ip.out<TokenSplit>("tokens", "infer").items == Toks{{"I", "know", "."}, {}});
    REQUIRE_FALSE(ip.has_out("labels", "infer"));
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("label_lines: pairs lines, checks counts and labels", "[stage][data][reader]") {
    ClsTempDir d;
    d.write("train.txt", "a fine film\n\nawful\n");
    d.write("train.lab", "pos\nneg\n neg \n");
    auto ctx = run_reader<LabelLines>(d, {{"train", std::string("train.txt")}, {"train_labels", std::string("train.lab")}});
    REQUIRE(ctx.out<TextSplit>("text", "train").items == Items{"a fine film", "", "awful"});
    REQUIRE(labels_of(ctx, "train") == Items{"pos", "neg", "neg"});

    d.write("short.lab", "pos\nneg\n");
    REQUIRE(reader_message<LabelLines>(d, {{"train", std::string("train.txt")}, {"train_labels", std::string("short.lab")}}) ==
            "'train.txt' has 3 lines but 'short.lab' has 2");
    d.write("bad.lab", "pos\n\nvery neg\n");
    REQUIRE(reader_message<LabelLines>(d, {{"train", std::string("train.txt")}, {"train_labels", std::string("bad.lab")}}) ==
            "bad.lab:2: empty label");
    std::int64_t skipped = -1;
    auto sk = run_reader<LabelLines>(d, {{"train", std::string("train.txt")}, {"train_labels", std::string("bad.lab")},
                                  {"on_error", std::string("skip")}}, &skipped);
    REQUIRE(skipped == 2);
    REQUIRE(sk.out<TextSplit>("text", "train").items == Items{"a fine film"});
    const auto s = LabelLines::schema();
    REQUIRE_THROWS_WITH(LabelLines(params_for(s, {{"train", std::string("t.txt")}})),
                        "train is set but train_labels is not");
}
