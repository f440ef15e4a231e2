#include "reader_common.hpp"

#include "line_reader.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

namespace rnnflow::stages::reader {

namespace fs = std::filesystem;

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
    check_utf8(bytes, written, 1, "file");  // pipeline/core/text.hpp: the one UTF-8 check of the readers
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

std::string join_words(const std::vector<std::string>& words) {
    std::string joined;
    for (const auto& w : words) {
        if (!joined.empty()) joined += ' ';
        joined += w;
    }
    return joined;
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
