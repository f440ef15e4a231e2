// Reading UTF-8 text files as lines, for the readers of paired data (parallel_text).
// Not a stage: a helper with the same rules as text_file (CRLF, byte-order mark, strict UTF-8,
// NUL bytes rejected, errors naming file:line:col with a 1-based byte column).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace rnnflow::stages {

// The lines of `written` (resolved against `base` when relative): split at '\n', a '\r' before
// it dropped, no extra empty line after a final '\n', a leading byte-order mark dropped.
// Throws Error naming the file as written (`role` says which one: "train source").
std::vector<std::string> read_utf8_lines(const std::filesystem::path& base, const std::string& written,
                                         const std::string& role);

// Throws Error "<where>:line:col: ..." at the first invalid UTF-8 sequence or NUL byte of `s`;
// line counts from `first_line`; `unit` names what `s` is in the messages ("text", "file").
void check_utf8(const std::string& s, const std::string& where, std::int64_t first_line = 1,
                const std::string& unit = "text");

}  // namespace rnnflow::stages
