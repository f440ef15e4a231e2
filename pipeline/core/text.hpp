// Reading and checking text: the one text-file reader every built-in reader uses, in the SDK so
// that plug-in readers and the program's own inputs (the lines `rnnflow predict` reads) give the
// same messages as the built-in readers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rnnflow {

// The first thing in `s` (from byte `start`) that keeps it from being UTF-8 text: a NUL byte (a
// binary file; one in the first 8 KiB is reported before any other problem), an invalid byte
// (overlong forms, surrogates and code points above U+10FFFF included; a sequence whose
// continuation is wrong is reported at its lead byte, the one a Latin-1 file has there), or a
// sequence cut off by the end. Lines count at '\n' from `first_line`; `col` is the 1-based byte
// column. The one UTF-8 walk: check_utf8 and the graph loader word its result each their way.
struct Utf8Problem {
    enum class Kind { nul, invalid, truncated };
    Kind kind;
    std::int64_t line, col;
    unsigned char byte;  // the NUL or invalid byte, or the truncated sequence's lead byte
    std::string byte_hex() const;  // "0xe9"
};
std::optional<Utf8Problem> find_utf8_problem(const std::string& s, std::size_t start = 0,
                                             std::int64_t first_line = 1);

// Throws Error "<where>:line:col: ..." at find_utf8_problem's problem of `s`: "invalid UTF-8 byte
// 0xe9", "truncated UTF-8 sequence at end of <unit>", "NUL byte: this looks like a binary file";
// `unit` names what `s` is in the messages ("text", "file", "input").
void check_utf8(const std::string& s, const std::string& where, std::int64_t first_line = 1,
                const std::string& unit = "text");

// What read_text_file reads at most, and how its message tells the user to go past it.
struct TextFileCap {
    std::int64_t max_bytes = std::int64_t{4} << 30;  // 4 GiB
    std::string param;  // the stage parameter that sets max_bytes, named in the message ("" = none)
    std::string hint = "a text file above 4 GiB is not read whole: split it into several files";
};

// A whole UTF-8 text file: `written` is the path as the graph gives it (resolved against `base`
// when relative), `role` says which file it is in messages ("train", "valid labels"). Drops a
// leading byte-order mark. Throws Error naming the file as written when it is missing, a folder,
// unreadable, larger than cap.max_bytes (regular files are measured before reading, pipes while
// reading), or not UTF-8 (check_utf8: file:line:col).
std::string read_text_file(const std::filesystem::path& base, const std::string& written, const std::string& role,
                           const TextFileCap& cap = {});

// The lines of `bytes`: split at '\n', a '\r' before it dropped; a final '\n' does not start an
// empty line.
std::vector<std::string> split_lines(const std::string& bytes);

}  // namespace rnnflow
