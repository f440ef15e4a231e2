#include <catch2/catch.hpp>

#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <iostream>

#include "stages/data/vocabulary.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;
using VocabStage = rnnflow::stages::Vocabulary;
using List = std::vector<std::string>;
using Set = std::map<std::string, ParamValue>;
using Ids = std::vector<std::vector<std::int32_t>>;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("rnnflow_vocabulary_" + std::to_string(rd()));
    }
    ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
};

TokenSplit split_of(std::vector<List> items, std::string origin) {
    TokenSplit t;
    t.items = std::move(items);
    t.origin = std::move(origin);
    return t;
}

// train: "b a c a b a d" (a:3 b:2 c:1 d:1), valid: "a e".
FakePrepare& feed(FakePrepare& ctx, TokenizerSpec spec = {}) {
    ctx.info("in", PortInfo{PortType::tokens, -1, -1, nullptr});
    auto train = split_of({{"b", "a", "c"}, {"a", "b", "a", "d"}}, "train.txt");
    train.spec = spec;
    ctx.data("in", "train", train);
    ctx.data("in", "valid", split_of({{"a", "e"}}, "valid.txt"));
    return ctx;
}

std::string message_of(const Set& set) {
    static const StageSchema s = VocabStage::schema();
    try {
        VocabStage stage(params_for(s, set));
        FakePrepare ctx(s);
        feed(ctx);
        stage.prepare(ctx);
    } catch (const Error& e) {
        return e.message() + " | " + e.hint();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("vocabulary: schema defaults and bad values", "[stage][data]") {
    const auto s = VocabStage::schema();
    REQUIRE(s.type() == "vocabulary");
    REQUIRE(s.find_value("size") != nullptr);
    REQUIRE(s.outputs()[0].type == PortType::sequences);
    REQUIRE(s.outputs()[1].type == PortType::vocab);
    const Params p = default_params(s);
    REQUIRE(p.get_int("min_count") == 1);
    REQUIRE(p.get_int("max_size") == 0);
    REQUIRE(p.get_list("specials") == List{"<unk>"});
    REQUIRE(StageSchema::check(*s.find_param("specials"), ParamValue(List{"<unk>", "<bos>"})) ==
            "must be one of <pad>, <unk>, <sos>, <eos>, got '<bos>'");
    REQUIRE(StageSchema::check(*s.find_param("min_count"), ParamValue(std::int64_t{0})) ==
            "must be in [1, 1000000000], got 0");
    REQUIRE(message_of({{"append_eos", true}}) == "append_eos needs <eos> in specials | add <eos> to specials");
    REQUIRE(message_of({{"specials", List{"<unk>", "<unk>"}}}) ==
            "specials lists '<unk>' twice | list each special once");
    REQUIRE(message_of({{"max_size", std::int64_t{1}}}) ==
            "max_size 1 leaves no room for tokens after 1 specials | raise max_size, or set 0 for no limit");
}

TEST_CASE("vocabulary: specials first, then count desc, ties by text; encodes all splits", "[stage][data]") {
    static const StageSchema s = VocabStage::schema();
    VocabStage stage(params_for(s, {{"specials", List{"<pad>", "<unk>"}}}));
    FakePrepare ctx(s);
    feed(ctx);
    stage.prepare(ctx);
    const auto& v = *ctx.out_info("vocab").vocab;
    REQUIRE(v.tokens() == List{"<pad>", "<unk>", "a", "b", "c", "d"});
    REQUIRE(v.count(2) == 3);
    REQUIRE(stage.value("size") == 6);
    REQUIRE(ctx.out_info("out").classes == 6);
    REQUIRE(ctx.out_info("vocab").classes == 6);
    REQUIRE(ctx.out_info("out").vocab.get() == &v);
    REQUIRE(ctx.out<SequenceSplit>("out", "train").items == Ids{{3, 2, 4}, {2, 3, 2, 5}});
    REQUIRE(ctx.out<SequenceSplit>("out", "valid").items == Ids{{2, 1}});  // e → <unk>
    REQUIRE(ctx.out<SequenceSplit>("out", "valid").origin == "valid.txt");
    REQUIRE_FALSE(ctx.has_out("out", "test"));
    REQUIRE_THROWS_WITH(stage.value("width"), "has no value 'width'");

    // Same data, another stage instance: identical ids (no hash-order dependence).
    VocabStage again(params_for(s, {{"specials", List{"<pad>", "<unk>"}}}));
    FakePrepare ctx2(s);
    feed(ctx2);
    again.prepare(ctx2);
    REQUIRE(ctx2.out_info("vocab").vocab->tokens() == v.tokens());
}

TEST_CASE("vocabulary: min_count, max_size, append_eos", "[stage][data]") {
    static const StageSchema s = VocabStage::schema();
    SECTION("min_count 2 drops c and d, which become <unk>") {
        VocabStage stage(params_for(s, {{"min_count", std::int64_t{2}}}));
        FakePrepare ctx(s);
        feed(ctx);
        stage.prepare(ctx);
        REQUIRE(ctx.out_info("vocab").vocab->tokens() == List{"<unk>", "a", "b"});
        REQUIRE(ctx.out<SequenceSplit>("out", "train").items == Ids{{2, 1, 0}, {1, 2, 1, 0}});
    }
    SECTION("max_size counts the specials; ties cut by text") {
        VocabStage stage(params_for(s, {{"max_size", std::int64_t{4}}}));
        FakePrepare ctx(s);
        feed(ctx);
        stage.prepare(ctx);
        REQUIRE(ctx.out_info("vocab").vocab->tokens() == List{"<unk>", "a", "b", "c"});
    }
    SECTION("append_eos") {
        VocabStage stage(params_for(s, {{"specials", List{"<unk>", "<eos>"}}, {"append_eos", true}}));
        FakePrepare ctx(s);
        feed(ctx);
        stage.prepare(ctx);
        REQUIRE(ctx.out<SequenceSplit>("out", "valid").items == Ids{{2, 0, 1}});
    }
}

TEST_CASE("vocabulary: extend_from adds a vectors file's tokens after the training ones", "[stage][data]") {
    static const StageSchema s = VocabStage::schema();
    TempDir dir;
    fs::create_directories(dir.path);
    auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream(dir.path / name, std::ios::binary) << text;
        return name;
    };
    auto fit = [&](const Set& set) {
        VocabStage stage(params_for(s, set));
        auto ctx = std::make_unique<FakePrepare>(s);
        feed(*ctx).base(dir.path);
        stage.prepare(*ctx);
        return ctx;
    };
    // GloVe rows (dim 2): c is in training below min_count 2, e only in valid, a already an id,
    // <unk> a special, f nowhere; e twice (the first row counts).
    const std::string glove = write("v.txt", "c 0.1 0.2\ne 1 2\na 3 4\n<unk> 5 6\n\nf 7 8\r\ne 9 9\n");
    SECTION("order, counts, encoding") {
        auto ctx = fit({{"min_count", std::int64_t{2}}, {"extend_from", glove}});
        const auto& v = *ctx->out_info("vocab").vocab;
        REQUIRE(v.tokens() == List{"<unk>", "a", "b", "c", "e", "f"});
        REQUIRE(v.count(3) == 1);  // c: its training count
        REQUIRE(v.count(4) == 0);
        REQUIRE(ctx->out_info("out").classes == 6);
        REQUIRE(ctx->out<SequenceSplit>("out", "train").items == Ids{{2, 1, 3}, {1, 2, 1, 0}});  // d: <unk>
        REQUIRE(ctx->out<SequenceSplit>("out", "valid").items == Ids{{1, 4}});                   // e: its own id
    }
    SECTION("max_size cuts the added tokens first; the log counts what is left") {
        std::ostringstream log;
        struct Capture {  // std::cerr into `log` while it lives
            std::streambuf* old;
            explicit Capture(std::ostream& to) : old(std::cerr.rdbuf(to.rdbuf())) {}
            ~Capture() { std::cerr.rdbuf(old); }
        };
        std::unique_ptr<FakePrepare> ctx;
        {
            Capture capture(log);
            ctx = fit({{"min_count", std::int64_t{2}}, {"max_size", std::int64_t{4}}, {"extend_from", glove}});
        }
        REQUIRE(ctx->out_info("vocab").vocab->tokens() == List{"<unk>", "a", "b", "c"});
        REQUIRE(log.str() == "stage 'stage': 1 tokens added from v.txt (1 of them seen in training, below min_count) for 4 ids\n");
    }
    SECTION("a word2vec header; tokens with spaces") {
        const std::string w2v = write("w.txt", "2 3\nnew york 1 2 3\ne 4 5 6\n");
        auto ctx = fit({{"extend_from", w2v}});
        REQUIRE(ctx->out_info("vocab").vocab->tokens() == List{"<unk>", "a", "b", "c", "d", "new york", "e"});
    }
    SECTION("errors name the file") {
        REQUIRE(message_of({{"extend_from", std::string("/nonexistent/v.txt")}}) ==
                "extend_from file '/nonexistent/v.txt' not found or unreadable | looked for '/nonexistent/v.txt'; "
                "relative paths start at the graph file's folder");
        const std::string bad = (dir.path / write("bad.txt", "a 1 2\nb 3\n")).string();
        REQUIRE(message_of({{"extend_from", bad}}) ==
                bad + ":2: 2 fields, a token and 2 numbers expected | give a GloVe/word2vec text file: token v1 v2 ... per line");
    }
}

TEST_CASE("vocabulary: errors", "[stage][data]") {
    static const StageSchema s = VocabStage::schema();
    SECTION("unknown token without <unk>") {
        REQUIRE(message_of({{"specials", List{"<eos>"}}}) ==
                "token 'e' in split 'valid' (item 1 of valid.txt) is not in the vocabulary | add <unk> to specials");
    }
    SECTION("no training tokens") {
        VocabStage stage(default_params(s));
        FakePrepare ctx(s);
        ctx.info("in", PortInfo{PortType::tokens, -1, -1, nullptr});
        ctx.data("in", "train", split_of({{}, {}}, "empty.txt"));
        REQUIRE_THROWS_WITH(stage.prepare(ctx), "no tokens in the training split (empty.txt)");
    }
    SECTION("no training split") {
        VocabStage stage(default_params(s));
        FakePrepare ctx(s);
        ctx.info("in", PortInfo{PortType::tokens, -1, -1, nullptr});
        REQUIRE_THROWS_WITH(stage.prepare(ctx), "no training split to fit the vocabulary on");
    }
    SECTION("min_count above every count") {
        REQUIRE(message_of({{"min_count", std::int64_t{4}}}) ==
                "no training token is seen min_count = 4 times or more | lower min_count");
    }
}

TEST_CASE("vocabulary: save in fit mode, load in restore mode", "[stage][data]") {
    static const StageSchema s = VocabStage::schema();
    TempDir dir;
    TokenizerSpec spec;
    spec.mode = "word";
    spec.lowercase = true;
    const Set set{{"specials", List{"<unk>", "<eos>"}}};
    VocabStage fit(params_for(s, set));
    FakePrepare ctx(s);
    feed(ctx, spec).dir(dir.path);
    fit.prepare(ctx);
    REQUIRE(fs::exists(dir.path / "vocab.tsv"));

    VocabStage restored(params_for(s, set));
    FakePrepare ctx2(s, 1, PrepareMode::restore);
    ctx2.info("in", PortInfo{PortType::tokens, -1, -1, nullptr}).dir(dir.path);
    restored.prepare(ctx2);
    const auto& a = *ctx.out_info("vocab").vocab;
    const auto& b = *ctx2.out_info("vocab").vocab;
    REQUIRE(b.tokens() == a.tokens());
    REQUIRE(b.specials() == a.specials());
    REQUIRE(b.count(2) == a.count(2));
    REQUIRE(b.tokenizer().mode == "word");
    REQUIRE(b.tokenizer().lowercase);
    REQUIRE(restored.value("size") == a.size());
    REQUIRE(ctx2.out_info("out").classes == a.size());
    REQUIRE_FALSE(ctx2.has_out("out", "train"));

    SECTION("missing file names the path") {
        TempDir empty;
        VocabStage r(params_for(s, set));
        FakePrepare c(s, 1, PrepareMode::restore);
        c.info("in", PortInfo{PortType::tokens, -1, -1, nullptr}).dir(empty.path);
        REQUIRE_THROWS_WITH(r.prepare(c), "no saved vocabulary at '" + (empty.path / "vocab.tsv").string() + "'");
    }
}

TEST_CASE("vocabulary: a damaged vocab.tsv is an error naming file:line", "[stage][data]") {
    static const StageSchema s = VocabStage::schema();
    TempDir dir;
    fs::create_directories(dir.path);
    std::ofstream(dir.path / "vocab.tsv", std::ios::binary)
        << "#rnnflow-vocab 1\tmode=char\tlowercase=0\tsplit_punct=0\tspecials=1\n0\t<unk>\t0\n1\ta\tmany\n";
    VocabStage r(default_params(s));
    FakePrepare c(s, 1, PrepareMode::restore);
    c.info("in", PortInfo{PortType::tokens, -1, -1, nullptr}).dir(dir.path);
    REQUIRE_THROWS_WITH(r.prepare(c), (dir.path / "vocab.tsv").string() + ":3: expected a number, got 'many'");
}
