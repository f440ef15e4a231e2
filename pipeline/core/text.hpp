// Text checks every reader applies, in the SDK so that plug-in readers and the program's own
// inputs (the lines `rnnflow predict` reads) give the same messages as the built-in readers.
#pragma once

#include <cstdint>
#include <string>

namespace rnnflow {

// Throws Error "<where>:line:col: ..." (1-based byte column) at the first invalid UTF-8 sequence
// (overlong forms and surrogates included) or NUL byte of `s`; lines are counted at '\n' from
// `first_line`; `unit` names what `s` is in the messages ("text", "file", "input").
void check_utf8(const std::string& s, const std::string& where, std::int64_t first_line = 1,
                const std::string& unit = "text");

}  // namespace rnnflow
