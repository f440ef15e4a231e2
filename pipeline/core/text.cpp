#include "text.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "error.hpp"

namespace rnnflow {

std::string Utf8Problem::byte_hex() const {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(byte));
    return buf;
}

std::optional<Utf8Problem> find_utf8_problem(const std::string& s, std::size_t start, std::int64_t first_line) {
    std::int64_t line = first_line, col = 1;
    auto problem = [&](Utf8Problem::Kind kind, unsigned char byte) {
        return Utf8Problem{kind, line, col, byte};
    };
    // A binary file usually shows a NUL byte early: say "binary" rather than "invalid UTF-8" at
    // whatever byte comes first.
    const std::size_t head = std::min<std::size_t>(s.size(), start + 8192);
    if (const void* nul = start < head ? std::memchr(s.data() + start, 0, head - start) : nullptr) {
        const auto at = static_cast<std::size_t>(static_cast<const char*>(nul) - s.data());
        for (std::size_t i = start; i < at; ++i) {
            if (s[i] == '\n') { ++line; col = 1; } else ++col;
        }
        return problem(Utf8Problem::Kind::nul, 0);
    }
    for (std::size_t i = start; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\n') {
            ++line;
            col = 1;
            ++i;
            continue;
        }
        if (c == 0) return problem(Utf8Problem::Kind::nul, 0);
        std::size_t n = 1;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (no overlongs/surrogates)
        if (c < 0x80) n = 1;
        else if (c >= 0xC2 && c <= 0xDF) n = 2;
        else if (c == 0xE0) { n = 3; lo = 0xA0; }
        else if (c == 0xED) { n = 3; hi = 0x9F; }
        else if (c >= 0xE1 && c <= 0xEF) n = 3;
        else if (c == 0xF0) { n = 4; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) n = 4;
        else if (c == 0xF4) { n = 4; hi = 0x8F; }
        else return problem(Utf8Problem::Kind::invalid, c);
        for (std::size_t k = 1; k < n; ++k) {
            if (i + k >= s.size()) return problem(Utf8Problem::Kind::truncated, c);
            const auto b = static_cast<unsigned char>(s[i + k]);
            if (!(k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF)))
                return problem(Utf8Problem::Kind::invalid, c);
        }
        i += n;
        col += static_cast<std::int64_t>(n);
    }
    return std::nullopt;
}

void check_utf8(const std::string& s, const std::string& where, std::int64_t first_line, const std::string& unit) {
    const std::optional<Utf8Problem> p = find_utf8_problem(s, 0, first_line);
    if (!p) return;
    const std::string at = detail::concat(where, ":", p->line, ":", p->col, ": ");
    if (p->kind == Utf8Problem::Kind::nul)
        throw Error(at + "NUL byte: this looks like a binary file, not text", "give a UTF-8 text file");
    throw Error(at + (p->kind == Utf8Problem::Kind::truncated ? "truncated UTF-8 sequence at end of " + unit
                                                             : "invalid UTF-8 byte " + p->byte_hex()),
                "the " + unit + " must be UTF-8; convert it, e.g. iconv -f latin1 -t utf-8 FILE");
}

std::string read_text_file(const std::filesystem::path& base, const std::string& written, const std::string& role,
                           const TextFileCap& cap) {
    namespace fs = std::filesystem;
    const fs::path full = fs::path(written).is_absolute() ? fs::path(written) : base / written;
    std::error_code ec;
    const auto st = fs::status(full, ec);
    if (!fs::exists(st))
        throw Error(detail::concat(role, " file '", written, "' not found"),
                    detail::concat("looked for '", full.string(), "'; relative paths start at the graph file's folder"));
    if (fs::is_directory(st)) throw Error(detail::concat(role, " file '", written, "' is a directory"), "name a text file");
    auto too_big = [&] {
        return Error(detail::concat(role, " file '", written, "' is larger than ", cap.param,
                                    cap.param.empty() ? "" : " = ", cap.max_bytes, " bytes"),
                     cap.hint);
    };
    if (fs::is_regular_file(st) && fs::file_size(full, ec) > static_cast<std::uintmax_t>(cap.max_bytes) && !ec)
        throw too_big();
    std::ifstream is(full, std::ios::binary);
    if (!is.is_open())
        throw Error(detail::concat("cannot read ", role, " file '", written, "'"),
                    "check that the file is readable (permissions)");
    std::string bytes;
    std::string chunk(std::size_t{1} << 16, '\0');
    while (is.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || is.gcount() > 0) {
        if (static_cast<std::int64_t>(bytes.size()) + is.gcount() > cap.max_bytes) throw too_big();
        bytes.append(chunk.data(), static_cast<std::size_t>(is.gcount()));
    }
    if (is.bad())
        throw Error(detail::concat("error while reading ", role, " file '", written, "'"), "check the file and the disk");
    if (bytes.rfind("\xEF\xBB\xBF", 0) == 0) bytes.erase(0, 3);  // byte-order mark
    check_utf8(bytes, written, 1, "file");
    return bytes;
}

std::vector<std::string> split_lines(const std::string& bytes) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < bytes.size()) {
        std::size_t end = bytes.find('\n', start);
        if (end == std::string::npos) end = bytes.size();
        std::size_t stop = end;
        if (stop > start && bytes[stop - 1] == '\r') --stop;
        out.emplace_back(bytes, start, stop - start);
        start = end + 1;
    }
    return out;
}

}  // namespace rnnflow
