#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include "stages/data/text_file.hpp"
#include "support/harness.hpp"

using namespace rnnflow;
using rnnflow::stages::TextFile;
using rnnflow::test::FakePrepare;
using rnnflow::test::params_for;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, removed at the end of the test.
struct TempDir {
    fs::path path;
    TempDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("rnnflow_text_file_" + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
    void write(const std::string& name, const std::string& bytes) const {
        fs::create_directories((path / name).parent_path());
        std::ofstream(path / name, std::ios::binary) << bytes;
    }
};

using Set = std::map<std::string, ParamValue>;
using List = std::vector<std::string>;

FakePrepare run(const TempDir& d, const Set& set, PrepareMode mode = PrepareMode::fit) {
    static const StageSchema s = TextFile::schema();
    TextFile stage(params_for(s, set));
    FakePrepare ctx(s, 1, mode);
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

std::string hint_of(const TempDir& d, const Set& set) {
    try {
        run(d, set);
    } catch (const Error& e) {
        return e.hint();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("text_file: schema defaults", "[stage][data]") {
    const auto s = TextFile::schema();
    REQUIRE(s.type() == "text_file");
    REQUIRE(s.role() == Role::data);
    REQUIRE(s.outputs().size() == 1);
    REQUIRE(s.outputs()[0].type == PortType::text);
    const Params p = default_params(s);
    REQUIRE(p.get_list("train").empty());
    REQUIRE(p.get_string("by") == "line");
    REQUIRE(p.get_int("max_line_bytes") == (1 << 20));
    REQUIRE(StageSchema::check(*s.find_param("by"), ParamValue(std::string("word"))) ==
            "must be one of line, file, got 'word'");
    REQUIRE(StageSchema::check(*s.find_param("valid_fraction"), ParamValue(0.6)) ==
            "must be in [0, 0.5], got 0.6");
}

TEST_CASE("text_file: lines, empty lines kept, CRLF, relative paths", "[stage][data]") {
    TempDir d;
    d.write("data/train.txt", "ab\n\nc\xC3\xA9\r\nlast");
    d.write("data/valid.txt", "v1\nv2\n");
    auto ctx = run(d, {{"train", List{"data/train.txt"}}, {"valid", std::string("data/valid.txt")}});
    const auto& train = ctx.out<TextSplit>("out", "train");
    REQUIRE(train.items == List{"ab", "", "c\xC3\xA9", "last"});
    REQUIRE(train.origin == "data/train.txt");
    const auto& valid = ctx.out<TextSplit>("out", "valid");
    REQUIRE(valid.items == List{"v1", "v2"});  // a final '\n' adds no empty item
    REQUIRE(valid.origin == "data/valid.txt");
    REQUIRE_FALSE(ctx.has_out("out", "test"));
    REQUIRE(ctx.out_info("out").type == PortType::text);
}

TEST_CASE("text_file: several train files, whole-file items", "[stage][data]") {
    TempDir d;
    d.write("a.txt", "one\ntwo\n");
    d.write("b.txt", "three");
    SECTION("by line") {
        auto ctx = run(d, {{"train", List{"a.txt", "b.txt"}}});
        REQUIRE(ctx.out<TextSplit>("out", "train").items == List{"one", "two", "three"});
        REQUIRE(ctx.out<TextSplit>("out", "train").origin == "a.txt, b.txt");
    }
    SECTION("by file") {
        auto ctx = run(d, {{"train", List{"a.txt", "b.txt"}}, {"by", std::string("file")}});
        REQUIRE(ctx.out<TextSplit>("out", "train").items == List{"one\ntwo\n", "three"});
    }
}

TEST_CASE("text_file: fractions cut train | valid | test from the end", "[stage][data]") {
    TempDir d;
    SECTION("by line: round(fraction * lines)") {
        d.write("t.txt", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n");
        auto ctx = run(d, {{"train", List{"t.txt"}}, {"valid_fraction", 0.2}, {"test_fraction", 0.1}});
        REQUIRE(ctx.out<TextSplit>("out", "train").items == List{"0", "1", "2", "3", "4", "5", "6"});
        REQUIRE(ctx.out<TextSplit>("out", "valid").items == List{"7", "8"});
        REQUIRE(ctx.out<TextSplit>("out", "test").items == List{"9"});
        REQUIRE(ctx.out<TextSplit>("out", "valid").origin == "t.txt (valid_fraction 0.2)");
    }
    SECTION("by file: characters, cut at a code-point boundary") {
        // 10 code points: a é b c d e f g h i (é is 2 bytes)
        d.write("t.txt", "a\xC3\xA9" "bcdefgh");
        d.write("u.txt", "i");
        auto ctx = run(d, {{"train", List{"t.txt", "u.txt"}}, {"by", std::string("file")},
                           {"valid_fraction", 0.5}, {"test_fraction", 0.2}});
        REQUIRE(ctx.out<TextSplit>("out", "train").items == List{"a\xC3\xA9" "b"});
        REQUIRE(ctx.out<TextSplit>("out", "valid").items == List{"cdefg"});
        REQUIRE(ctx.out<TextSplit>("out", "test").items == List{"h", "i"});
    }
    SECTION("a fraction that rounds to nothing is an error") {
        d.write("t.txt", "0\n1\n");
        REQUIRE(message_of(d, {{"train", List{"t.txt"}}, {"valid_fraction", 0.1}}) ==
                "valid_fraction 0.1 of 2 training lines is less than one");
    }
    SECTION("fractions that take everything are an error") {
        d.write("t.txt", "0\n1\n");
        REQUIRE(message_of(d, {{"train", List{"t.txt"}}, {"valid_fraction", 0.5}, {"test_fraction", 0.5}}) ==
                "valid_fraction and test_fraction leave no training text (2 lines)");
    }
    SECTION("a file and a fraction for one split conflict") {
        d.write("t.txt", "0\n1\n");
        REQUIRE(message_of(d, {{"train", List{"t.txt"}}, {"valid", std::string("t.txt")}, {"valid_fraction", 0.5}}) ==
                "both valid and valid_fraction are set");
    }
}

TEST_CASE("text_file: errors name the file and place", "[stage][data]") {
    TempDir d;
    SECTION("no training file") {
        REQUIRE(message_of(d, {}) == "no training file");
    }
    SECTION("missing file") {
        REQUIRE(message_of(d, {{"train", List{"nope.txt"}}}) == "train file 'nope.txt' not found");
        REQUIRE(hint_of(d, {{"train", List{"nope.txt"}}}) ==
                "looked for '" + (d.path / "nope.txt").string() +
                    "'; relative paths start at the graph file's folder");
        d.write("t.txt", "x");
        REQUIRE(message_of(d, {{"train", List{"t.txt"}}, {"test", std::string("gone.txt")}}) ==
                "test file 'gone.txt' not found");
    }
    SECTION("a directory") {
        fs::create_directories(d.path / "dir");
        REQUIRE(message_of(d, {{"train", List{"dir"}}}) == "train file 'dir' is a directory");
    }
    SECTION("invalid UTF-8: line and byte column of the first bad sequence's lead byte") {
        d.write("bad.txt", "fine\nab\xFF" "c\n");
        REQUIRE(message_of(d, {{"train", List{"bad.txt"}}}) == "bad.txt:2:3: invalid UTF-8 byte 0xff");
        d.write("bad2.txt", "\xC3\xA9\xC3(\n");  // é, then a lead byte followed by '(': reported at the lead byte
        REQUIRE(message_of(d, {{"train", List{"bad2.txt"}}}) == "bad2.txt:1:3: invalid UTF-8 byte 0xc3");
        d.write("bad3.txt", "\xED\xA0\x80");  // a UTF-16 surrogate encoded in UTF-8
        REQUIRE(message_of(d, {{"train", List{"bad3.txt"}}}) == "bad3.txt:1:1: invalid UTF-8 byte 0xed");
        d.write("bad4.txt", "ok\xE2\x82");
        REQUIRE(message_of(d, {{"train", List{"bad4.txt"}}}) ==
                "bad4.txt:1:3: truncated UTF-8 sequence at end of file");
    }
    SECTION("NUL byte: a binary file") {
        d.write("bin.dat", std::string("ab\ncd\0e", 7));
        REQUIRE(message_of(d, {{"train", List{"bin.dat"}}}) ==
                "bin.dat:2:3: NUL byte: this looks like a binary file, not text");
    }
    SECTION("empty corpus") {
        d.write("empty.txt", "");
        REQUIRE(message_of(d, {{"train", List{"empty.txt"}}}) ==
                "empty corpus: the training text (empty.txt) has no characters");
        d.write("blank.txt", "\n\n");
        REQUIRE(message_of(d, {{"train", List{"blank.txt"}}}) ==
                "empty corpus: the training text (blank.txt) has no characters");
    }
    SECTION("line longer than max_line_bytes") {
        d.write("long.txt", "abc\nabcdef\n");
        REQUIRE(message_of(d, {{"train", List{"long.txt"}}, {"max_line_bytes", std::int64_t{5}}}) ==
                "long.txt:2: line longer than max_line_bytes = 5 bytes");
        d.write("crlf.txt", "abcde\r\n");  // the '\r' of CRLF does not count
        REQUIRE(message_of(d, {{"train", List{"crlf.txt"}}, {"max_line_bytes", std::int64_t{5}}}) == "(no error)");
        // by: file has no line cap.
        REQUIRE(message_of(d, {{"train", List{"long.txt"}}, {"max_line_bytes", std::int64_t{5}},
                               {"by", std::string("file")}}) == "(no error)");
    }
}

TEST_CASE("text_file: restore mode reads nothing", "[stage][data]") {
    TempDir d;
    auto ctx = run(d, {{"train", List{"missing.txt"}}}, PrepareMode::restore);
    REQUIRE(ctx.out_info("out").type == PortType::text);
    REQUIRE_FALSE(ctx.has_out("out", "train"));
}
