#include "error.hpp"

#include <algorithm>
#include <limits>

namespace rnnflow {

std::string SourceLoc::str() const {
    if (file.empty()) return {};
    if (line <= 0) return file;
    return detail::concat(file, ":", line, ":", col);
}

Error& Error::in_stage(const std::string& id, const std::string& type, const SourceLoc& where,
                       const std::string& context) {
    if (!stage_.empty()) return *this;  // the innermost catch has said where already
    stage_ = id;
    std::string prefix = "stage '" + id + "' (" + type;
    if (where.known()) prefix += ", " + where.str();
    prefix += ")";
    if (!context.empty()) prefix += " " + context;
    message_ = prefix + ": " + message_;
    return *this;
}

std::string Error::format() const {
    std::string out;
    if (loc_.known()) out += loc_.str() + ": ";
    out += "error: " + message_;
    if (!hint_.empty()) out += "\n  hint: " + hint_;
    return out;
}

std::string Diagnostic::format() const {
    std::string out;
    if (loc.known()) out += loc.str() + ": ";
    out += "error: " + message;
    if (!hint.empty()) out += "\n  hint: " + hint;
    return out;
}

std::string LoadError::format() const {
    std::string out;
    for (const auto& d : diags_) {
        if (!out.empty()) out += "\n";
        out += d.format();
    }
    return out;
}

LoadError::LoadError(std::vector<Diagnostic> diags)
    : Error(diags.empty() ? std::string("invalid graph") : diags.front().message,
            diags.empty() ? std::string() : diags.front().hint,
            diags.empty() ? SourceLoc{} : diags.front().loc),
      diags_(std::move(diags)) {}

static std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
            // adjacent transposition ("hiddne" → "hidden") counts as one edit
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                cur[j] = std::min(cur[j], prev[j - 1]);  // approximation of Damerau distance
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
    std::string best;
    std::size_t best_d = std::numeric_limits<std::size_t>::max();
    for (const auto& c : candidates) {
        const std::size_t d = edit_distance(word, c);
        if (d < best_d) { best_d = d; best = c; }
    }
    // Close enough: at most a third of the longer word, and at least one character shared.
    const std::size_t limit = std::max<std::size_t>(1, std::max(word.size(), best.size()) / 3);
    if (best.empty() || best_d > limit) return {};
    return best;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
    const std::string m = closest_match(word, candidates);
    return m.empty() ? std::string() : "did you mean '" + m + "'?";
}

}  // namespace rnnflow
