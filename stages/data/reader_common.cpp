#include "reader_common.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>

namespace rnnflow::stages::reader {

namespace fs = std::filesystem;

namespace {

std::string hex_byte(unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(c));
    return buf;
}

// Throws at the first NUL byte or invalid UTF-8 byte (strict: no overlong forms, surrogates or
// code points above U+10FFFF), naming file:line:col (col counts bytes).
void check_utf8(const std::string& s, const std::string& written) {
    std::int64_t line = 1, col = 1;
    auto bad = [&](std::size_t at, const std::string& what) {
        return Error(detail::concat(written, ":", line, ":", col + static_cast<std::int64_t>(at), ": ", what),
                     "the file must be UTF-8; convert it, e.g. iconv -f latin1 -t utf-8 FILE");
    };
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\n') {
            ++line;
            col = 1;
            ++i;
            continue;
        }
        if (c == 0)
            throw Error(detail::concat(written, ":", line, ":", col, ": NUL byte: this looks like a binary file, not text"),
                        "give a UTF-8 text file");
        std::size_t n = 1;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) n = 1;
        else if (c >= 0xC2 && c <= 0xDF) n = 2;
        else if (c == 0xE0) { n = 3; lo = 0xA0; }
        else if (c == 0xED) { n = 3; hi = 0x9F; }
        else if (c >= 0xE1 && c <= 0xEF) n = 3;
        else if (c == 0xF0) { n = 4; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) n = 4;
        else if (c == 0xF4) { n = 4; hi = 0x8F; }
        else throw bad(0, "invalid UTF-8 byte " + hex_byte(c));
        for (std::size_t k = 1; k < n; ++k) {
            if (i + k >= s.size()) throw bad(0, "truncated UTF-8 sequence at end of file");
            const auto b = static_cast<unsigned char>(s[i + k]);
            const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
            if (!ok) throw bad(k, "invalid UTF-8 byte " + hex_byte(b));
        }
        i += n;
        col += static_cast<std::int64_t>(n);
    }
}

}  // namespace

std::string read_text(const fs::path& base, const std::string& written, const std::string& role) {
    const fs::path full = fs::path(written).is_absolute() ? fs::path(written) : base / written;
    std::error_code ec;
    const auto st = fs::status(full, ec);
    if (!fs::exists(st))
        throw Error(detail::concat(role, " file '", written, "' not found"),
                    detail::concat("looked for '", full.string(),
                                   "'; relative paths start at the graph file's folder"));
    if (fs::is_directory(st))
        throw Error(detail::concat(role, " file '", written, "' is a directory"), "name a text file");
    std::ifstream is(full, std::ios::binary);
    if (!is.is_open())
        throw Error(detail::concat("cannot read ", role, " file '", written, "'"),
                    "check that the file is readable (permissions)");
    std::string bytes((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
    if (is.bad())
        throw Error(detail::concat("error while reading ", role, " file '", written, "'"),
                    "check the file and the disk");
    if (bytes.rfind("\xEF\xBB\xBF", 0) == 0) bytes.erase(0, 3);  // byte-order mark
    check_utf8(bytes, written);
    return bytes;
}

std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < s.size()) {
        std::size_t end = s.find('\n', start);
        if (end == std::string::npos) end = s.size();
        std::size_t stop = end;
        if (stop > start && s[stop - 1] == '\r') --stop;
        out.emplace_back(s, start, stop - start);
        start = end + 1;
    }
    return out;
}

void BadLines::bad(std::int64_t line, const std::string& what, const std::string& hint) {
    const std::string msg = detail::concat(file_, ":", line, ": ", what);
    if (!skip_) throw Error(msg, hint.empty() ? "fix the line, or set on_error: skip to drop such records" : hint + "; or set on_error: skip to drop such records");
    if (count_ == 0) first_ = msg;
    ++count_;
}

void BadLines::report(const std::string& stage_id, const std::string& unit) const {
    if (count_ == 0) return;
    std::cerr << "warning: stage '" << stage_id << "': skipped " << count_ << " malformed " << unit
              << " of " << file_ << "; first: " << first_ << "\n";
}

StageSchema& add_split_params(StageSchema& s, const std::string& what) {
    return s.param_string("train", "", "training " + what + ", relative to the graph file's folder")
        .param_string("valid", "", "validation " + what + "; \"\" = none")
        .param_string("test", "", "test " + what + "; \"\" = none")
        .param_choice("on_error", "error", {"error", "skip"},
                      "a malformed record: error stops with file:line; skip drops it and warns with a count");
}

SplitFiles::SplitFiles(const Params& p) : skip(p.get_string("on_error") == "skip") {
    for (const char* split : {"train", "valid", "test"})
        if (!p.get_string(split).empty()) files.emplace_back(split, p.get_string(split));
}

}  // namespace rnnflow::stages::reader
