#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include "stages/data/parallel_text.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::ParallelText;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("rnnflow_parallel_text_" + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
    void write(const std::string& name, const std::string& bytes) const {
        std::ofstream(path / name, std::ios::binary) << bytes;
    }
};

using Set = std::map<std::string, ParamValue>;
using List = std::vector<std::string>;

struct Infer : FakePrepare {
    using FakePrepare::FakePrepare;
    std::vector<std::string> lines;
    const std::vector<std::string>* infer_lines() const override { return &lines; }
};

FakePrepare run(const TempDir& d, const Set& set) {
    static const StageSchema s = ParallelText::schema();
    ParallelText stage(params_for(s, set));
    FakePrepare ctx(s);
    ctx.base(d.path);
    stage.prepare(ctx);
    return ctx;
}

std::string message_of(const TempDir& d, const Set& set) {
    try {
        run(d, set);
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("parallel_text: two aligned files per split, CRLF and byte-order mark", "[stage][data]") {
    TempDir d;
    d.write("train.de", "\xEF\xBB\xBF" "ein Hund\r\nzwei Katzen\r\n");
    d.write("train.en", "a dog\ntwo cats");
    d.write("valid.de", "hallo\n");
    d.write("valid.en", "hello\n");
    auto ctx = run(d, {{"train", List{"train.de", "train.en"}}, {"valid", List{"valid.de", "valid.en"}}});
    const auto& src = ctx.out<TextSplit>("source", "train");
    const auto& tgt = ctx.out<TextSplit>("target", "train");
    CHECK(src.items == List{"ein Hund", "zwei Katzen"});
    CHECK(tgt.items == List{"a dog", "two cats"});
    CHECK(src.origin == "train.de");
    CHECK(ctx.out<TextSplit>("target", "valid").items == List{"hello"});
    CHECK_FALSE(ctx.has_out("source", "test"));
    CHECK(ctx.out_info("source").type == PortType::text);
}

TEST_CASE("parallel_text: misaligned files name both files and both counts", "[stage][data]") {
    TempDir d;
    d.write("a.de", "eins\nzwei\ndrei\n");
    d.write("a.en", "one\ntwo\n");
    CHECK(message_of(d, {{"train", List{"a.de", "a.en"}}}) ==
          "train files are not aligned: 'a.de' has 3 lines, 'a.en' has 2");
}

TEST_CASE("parallel_text: empty pairs are dropped, kept, or an error with file:line", "[stage][data]") {
    TempDir d;
    d.write("s.txt", "a\n\nc\n  \n");
    d.write("t.txt", "A\nB\n\nD\n");
    auto dropped = run(d, {{"train", List{"s.txt", "t.txt"}}});
    CHECK(dropped.out<TextSplit>("source", "train").items == List{"a"});
    CHECK(dropped.out<TextSplit>("target", "train").items == List{"A"});
    auto kept = run(d, {{"train", List{"s.txt", "t.txt"}}, {"empty", std::string("keep")}});
    CHECK(kept.out<TextSplit>("source", "train").items == List{"a", "", "c", "  "});
    CHECK(kept.out<TextSplit>("target", "train").items == List{"A", "B", "", "D"});
    CHECK(message_of(d, {{"train", List{"s.txt", "t.txt"}}, {"empty", std::string("error")}}) ==
          "s.txt:2: empty source sentence");
    d.write("s2.txt", "a\nb\n");
    d.write("t2.txt", "A\n\n");
    CHECK(message_of(d, {{"train", List{"s2.txt", "t2.txt"}}, {"empty", std::string("error")}}) ==
          "t2.txt:2: empty target sentence");
}

TEST_CASE("parallel_text: TSV with chosen columns; short lines name file:line", "[stage][data]") {
    TempDir d;
    d.write("p.tsv", "x\tein\tone\ny\tzwei\ttwo\r\n");
    auto ctx = run(d, {{"train", List{"p.tsv"}}, {"source_column", std::int64_t{3}}, {"target_column", std::int64_t{2}}});
    CHECK(ctx.out<TextSplit>("source", "train").items == List{"one", "two"});
    CHECK(ctx.out<TextSplit>("target", "train").items == List{"ein", "zwei"});
    d.write("bad.tsv", "a\tb\nc d\n");
    CHECK(message_of(d, {{"train", List{"bad.tsv"}}}) ==
          "bad.tsv:2: 1 tab-separated field(s), need at least 2 (source_column 1, target_column 2)");
}

TEST_CASE("parallel_text: bad UTF-8 and NUL bytes name file:line:col", "[stage][data]") {
    TempDir d;
    d.write("s.txt", "ok\nab\xC3\x28\n");
    d.write("t.txt", "ok\nok\n");
    CHECK(message_of(d, {{"train", List{"s.txt", "t.txt"}}}) == "s.txt:2:3: invalid UTF-8 byte 0xc3");
    d.write("n.txt", "ok\nx");
    d.write("n.txt", std::string("ok\nx\0y\n", 7));
    CHECK(message_of(d, {{"train", List{"t.txt", "n.txt"}}}) ==
          "n.txt:2:2: NUL byte: this looks like a binary file, not text");
    CHECK(message_of(d, {{"train", List{"missing.txt", "t.txt"}}}) == "train source file 'missing.txt' not found");
}

TEST_CASE("parallel_text: parameter errors", "[stage][data]") {
    const StageSchema s = ParallelText::schema();
    auto msg = [&](const Set& set) {
        try {
            ParallelText p(params_for(s, set));
        } catch (const Error& e) {
            return e.message();
        }
        return std::string("(no error)");
    };
    CHECK(msg({{"train", List{"a", "b", "c"}}}) == "'train' lists 3 files");
    CHECK(msg({{"source_column", std::int64_t{2}}}) == "source_column and target_column are both 2");
    TempDir d;
    CHECK(message_of(d, {}) == "no training files");
}

TEST_CASE("parallel_text: prediction runs put the input lines out as split infer, source only", "[stage][data]") {
    const StageSchema s = ParallelText::schema();
    ParallelText stage(params_for(s, {{"train", List{"does-not-exist.de", "x.en"}}}));
    Infer ctx(s, 1, PrepareMode::restore);
    ctx.lines = {"ein Hund", "", "zwei"};
    ctx.splits_ = {"infer"};
    stage.prepare(ctx);
    CHECK(ctx.out<TextSplit>("source", "infer").items == List{"ein Hund", "", "zwei"});
    CHECK_FALSE(ctx.has_out("target", "infer"));
    CHECK_FALSE(ctx.has_out("source", "train"));
    ctx.lines = {"ok", "bad \xFF"};
    CHECK_THROWS_WITH(stage.prepare(ctx), "input line:2:5: invalid UTF-8 byte 0xff");
}
