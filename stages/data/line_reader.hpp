// Reading UTF-8 text files as lines, for the readers of paired data (parallel_text).
// Not a stage: a helper with the same rules as text_file (CRLF, byte-order mark, strict UTF-8,
// NUL bytes rejected, errors naming file:line:col with a 1-based byte column).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/core/text.hpp"  // check_utf8, which these readers apply

namespace rnnflow::stages {

// The lines of `written` (resolved against `base` when relative): split at '\n', a '\r' before
// it dropped, no extra empty line after a final '\n', a leading byte-order mark dropped.
// Throws Error naming the file as written (`role` says which one: "train source").
std::vector<std::string> read_utf8_lines(const std::filesystem::path& base, const std::string& written,
                                         const std::string& role);

}  // namespace rnnflow::stages
