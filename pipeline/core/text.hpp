// Reading and checking text: the one text-file reader every built-in reader uses, in the SDK so
// that plug-in readers and the program's own inputs (the lines `rnnflow predict` reads) give the
// same messages as the built-in readers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace rnnflow {

// Throws Error "<where>:line:col: ..." (1-based byte column) at the first invalid UTF-8 sequence
// (overlong forms and surrogates included) or NUL byte of `s`; lines are counted at '\n' from
// `first_line`; `unit` names what `s` is in the messages ("text", "file", "input").
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
