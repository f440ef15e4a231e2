#include "reader_common.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

namespace rnnflow::stages::reader {

namespace fs = std::filesystem;

void BadLines::bad(std::int64_t line, const std::string& what, const std::string& hint) {
    bad(detail::concat(line, ": ", what), hint, ":");
}

void BadLines::bad(const std::string& what, const std::string& hint) { bad(what, hint, ": "); }

void BadLines::bad(const std::string& what, const std::string& hint, const char* sep) {
    const std::string msg = file_ + sep + what;
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
