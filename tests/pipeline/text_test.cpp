// The SDK's one text-file reader and UTF-8 check (pipeline/core/text.hpp), which every built-in
// reader and `rnnflow predict` use; the readers' own cases are in tests/bad_inputs/manifest.tsv.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "support/error_text.hpp"
#include "pipeline/core/text.hpp"

using namespace rnnflow;
using rnnflow::test::error_text;
using rnnflow::test::ErrorPart;
namespace fs = std::filesystem;

namespace {
struct Folder {
    fs::path dir = fs::temp_directory_path() / ("rnnflow_text_test_" + std::to_string(::getpid()));
    Folder() { fs::create_directories(dir); }
    ~Folder() { fs::remove_all(dir); }
    void write(const std::string& name, const std::string& bytes) const {
        std::ofstream(dir / name, std::ios::binary) << bytes;
    }
};
}  // namespace

TEST_CASE("text: check_utf8 names line and byte column, counting lines from first_line", "[text]") {
    CHECK(error_text([] { check_utf8("ok\nab\xff", "in.txt"); }) == "in.txt:2:3: invalid UTF-8 byte 0xff");
    CHECK(error_text([] { check_utf8("ab\xff", "standard input", 7, "input"); }, ErrorPart::with_hint) ==
          "error: standard input:7:3: invalid UTF-8 byte 0xff\n"
          "  hint: the input must be UTF-8; convert it, e.g. iconv -f latin1 -t utf-8 FILE");
    CHECK(error_text([] { check_utf8("\xC0\xAF", "f"); }) == "f:1:1: invalid UTF-8 byte 0xc0");  // overlong '/'
    CHECK(error_text([] { check_utf8("\xED\xA0\x80", "f"); }) == "f:1:1: invalid UTF-8 byte 0xed");  // surrogate
    CHECK(error_text([] { check_utf8("a\xE2\x82", "f", 1, "file"); }) == "f:1:2: truncated UTF-8 sequence at end of file");
    CHECK(error_text([] { check_utf8(std::string("a\nb\0c", 5), "f"); }) ==
          "f:2:2: NUL byte: this looks like a binary file, not text");
    CHECK(error_text([] { check_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x99\x82", "f"); }) == "(no error)");
}

TEST_CASE("text: read_text_file reads, drops a byte-order mark, and names the file as written", "[text]") {
    Folder f;
    f.write("bom.txt", "\xEF\xBB\xBFone\r\ntwo\n");
    CHECK(read_text_file(f.dir, "bom.txt", "train") == "one\r\ntwo\n");
    CHECK(read_text_file("/elsewhere", (f.dir / "bom.txt").string(), "train") == "one\r\ntwo\n");  // absolute
    CHECK(error_text([&] { read_text_file(f.dir, "missing.txt", "valid"); }, ErrorPart::with_hint) ==
          "error: valid file 'missing.txt' not found\n  hint: looked for '" + (f.dir / "missing.txt").string() +
              "'; relative paths start at the graph file's folder");
    CHECK(error_text([&] { read_text_file(f.dir.parent_path(), f.dir.filename().string(), "test"); }) ==
          "test file '" + f.dir.filename().string() + "' is a directory");
    f.write("latin1.txt", "caf\xe9\n");
    CHECK(error_text([&] { read_text_file(f.dir, "latin1.txt", "train"); }) == "latin1.txt:1:4: invalid UTF-8 byte 0xe9");  // the Latin-1 é itself
}

TEST_CASE("text: read_text_file refuses a file above its cap, measured or while streaming", "[text]") {
    Folder f;
    f.write("ten.txt", "0123456789");
    CHECK(read_text_file(f.dir, "ten.txt", "train", {10, "", "split it"}) == "0123456789");
    CHECK(error_text([&] { read_text_file(f.dir, "ten.txt", "train", {9, "", "split it"}); }, ErrorPart::with_hint) ==
          "error: train file 'ten.txt' is larger than 9 bytes\n  hint: split it");
    CHECK(error_text([&] { read_text_file(f.dir, "ten.txt", "train", {9, "max_file_bytes", "raise it"}); }) ==
          "train file 'ten.txt' is larger than max_file_bytes = 9 bytes");
    // A device has no size to measure: the cap stops the read (and the default cap is 4 GiB).
    CHECK(error_text([&] { read_text_file("/", "/dev/zero", "train", {1 << 17, "", "h"}); }) ==
          "train file '/dev/zero' is larger than 131072 bytes");
    CHECK(TextFileCap{}.max_bytes == std::int64_t{4} << 30);
}

TEST_CASE("text: split_lines drops '\\r' before '\\n' and starts no line after a final '\\n'", "[text]") {
    using V = std::vector<std::string>;
    CHECK(split_lines("") == V{});
    CHECK(split_lines("a\r\nb\n") == V{"a", "b"});
    CHECK(split_lines("a\n\nb") == V{"a", "", "b"});
    CHECK(split_lines("\n") == V{""});
    CHECK(split_lines("a\r") == V{"a"});  // a lone '\r' at the end: the line ends there too
}
