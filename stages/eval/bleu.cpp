#include "bleu.hpp"

#include <cmath>
#include <algorithm>
#include <map>

#include "pipeline/core/error.hpp"

namespace rnnflow::stages {

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    std::size_t at = 0;
    while ((at = s.find(from, at)) != std::string::npos) {
        s.replace(at, from.size(), to);
        at += to.size();
    }
}

bool rule1_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= '{' && u <= '~') || (u >= '[' && u <= '`') || (u >= ' ' && u <= '&') ||
           (u >= '(' && u <= '+') || (u >= ':' && u <= '@') || u == '/';
}
bool digit(char c) { return c >= '0' && c <= '9'; }
bool dot_comma(char c) { return c == '.' || c == ','; }

// Length in bytes of a whitespace character at s[i] (Python str.isspace), or 0.
std::size_t space_at(const std::string& s, std::size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
    if (c < 0xC2) return 0;
    auto at = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
    if (c == 0xC2 && (at(1) == 0x85 || at(1) == 0xA0)) return 2;             // U+0085, U+00A0
    if (c == 0xE1 && at(1) == 0x9A && at(2) == 0x80) return 3;               // U+1680
    if (c == 0xE2 && at(1) == 0x80 && (at(2) <= 0x8A || at(2) == 0xA8 || at(2) == 0xA9 || at(2) == 0xAF))
        return 3;                                                            // U+2000-200A, 2028, 2029, 202F
    if (c == 0xE2 && at(1) == 0x81 && at(2) == 0x9F) return 3;               // U+205F
    if (c == 0xE3 && at(1) == 0x80 && at(2) == 0x80) return 3;               // U+3000
    return 0;
}

}  // namespace

std::vector<std::string> tokenize_13a(const std::string& input) {
    std::string line = input;
    replace_all(line, "<skipped>", "");
    replace_all(line, "-\n", "");
    replace_all(line, "\n", " ");
    if (line.find('&') != std::string::npos) {
        replace_all(line, "&quot;", "\"");
        replace_all(line, "&amp;", "&");
        replace_all(line, "&lt;", "<");
        replace_all(line, "&gt;", ">");
    }
    line = " " + line + " ";
    // Rule 1: space around the listed ASCII punctuation and symbols.
    std::string a;
    a.reserve(line.size() * 2);
    for (char c : line) {
        if (rule1_char(c)) {
            a += ' ';
            a += c;
            a += ' ';
        } else {
            a += c;
        }
    }
    // Rule 2: ([^0-9])([.,]) -> "\1 \2 ", non-overlapping, left to right. On UTF-8 bytes this
    // equals the code-point regex: a multi-byte character's last byte is never a digit.
    std::string b;
    b.reserve(a.size() * 2);
    for (std::size_t i = 0; i < a.size();) {
        if (i + 1 < a.size() && !digit(a[i]) && dot_comma(a[i + 1])) {
            b += a[i];
            b += ' ';
            b += a[i + 1];
            b += ' ';
            i += 2;
        } else {
            b += a[i++];
        }
    }
    // Rule 3: ([.,])([^0-9]) -> " \1 \2".
    std::string c;
    c.reserve(b.size() * 2);
    for (std::size_t i = 0; i < b.size();) {
        if (i + 1 < b.size() && dot_comma(b[i]) && !digit(b[i + 1])) {
            c += ' ';
            c += b[i];
            c += ' ';
            c += b[i + 1];
            i += 2;
        } else {
            c += b[i++];
        }
    }
    // Rule 4: ([0-9])(-) -> "\1 \2 ".
    std::string d;
    d.reserve(c.size() * 2);
    for (std::size_t i = 0; i < c.size();) {
        if (i + 1 < c.size() && digit(c[i]) && c[i + 1] == '-') {
            d += c[i];
            d += " - ";
            i += 2;
        } else {
            d += c[i++];
        }
    }
    std::vector<std::string> out;
    std::string cur;
    for (std::size_t i = 0; i < d.size();) {
        if (const std::size_t w = space_at(d, i)) {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
            i += w;
        } else {
            cur += d[i++];
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

std::string lowercase_utf8(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
            ++i;
            continue;
        }
        // Decode a 2-byte sequence (U+0080..U+07FF); longer ones are copied unchanged.
        if (c >= 0xC2 && c <= 0xDF && i + 1 < s.size()) {
            std::uint32_t cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
            if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)) cp += 0x20;  // À..Þ except ×
            else if (cp >= 0x100 && cp <= 0x17F) {
                // Latin Extended-A: mostly upper/lower pairs at even/odd code points, shifted
                // by one in U+0139..U+0148 and U+0179..U+017E; U+0130 İ, U+0138 ĸ, U+0149 ŉ
                // are left alone (İ lowers to two code points in Python).
                const bool odd_pairs = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
                if (cp == 0x178) cp = 0xFF;  // Ÿ -> ÿ
                else if (cp == 0x130 || cp == 0x138 || cp == 0x149 || cp == 0x17F) {}
                else if (odd_pairs ? (cp % 2 == 1) : (cp % 2 == 0)) cp += 1;
            }
            if (cp < 0x800) {
                out += static_cast<char>(0xC0 | (cp >> 6));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            }
            i += 2;
            continue;
        }
        out += s[i++];
    }
    return out;
}

namespace {

// Counts of the n-grams of orders 1..4 of a token sequence; an n-gram's order is its size.
using NgramCounts = std::map<std::vector<std::string>, std::int64_t>;

NgramCounts ngram_counts(const std::vector<std::string>& toks) {
    NgramCounts c;
    for (std::size_t n = 1; n <= 4; ++n)
        for (std::size_t i = 0; i + n <= toks.size(); ++i)
            ++c[std::vector<std::string>(toks.begin() + static_cast<std::ptrdiff_t>(i),
                                         toks.begin() + static_cast<std::ptrdiff_t>(i + n))];
    return c;
}

// sacreBLEU's closest reference length: the smallest |hyp - ref|, a tie to the shorter reference.
std::int64_t closest_ref_len(std::int64_t hyp, std::span<const std::vector<std::string>> refs) {
    std::int64_t best = -1, best_diff = -1;
    for (const auto& r : refs) {
        const auto len = static_cast<std::int64_t>(r.size());
        const std::int64_t diff = len > hyp ? len - hyp : hyp - len;
        if (best_diff < 0 || diff < best_diff || (diff == best_diff && len < best)) {
            best_diff = diff;
            best = len;
        }
    }
    return best;
}

}  // namespace

void BleuStats::add(const std::vector<std::string>& hyp, const std::vector<std::string>& ref) {
    add_multi(hyp, std::span<const std::vector<std::string>>(&ref, 1));
}

void BleuStats::add_multi(const std::vector<std::string>& hyp, std::span<const std::vector<std::string>> refs) {
    RNNFLOW_CHECK(!refs.empty(), "BLEU: a segment without a reference");
    // An n-gram's reference count is its largest count in any one reference (clipping as sacreBLEU).
    NgramCounts rc = ngram_counts(refs[0]);
    for (std::size_t k = 1; k < refs.size(); ++k)
        for (const auto& [g, count] : ngram_counts(refs[k])) {
            std::int64_t& c = rc[g];
            c = std::max(c, count);
        }
    const auto hyp_n = static_cast<std::int64_t>(hyp.size());
    hyp_len += hyp_n;
    ref_len += closest_ref_len(hyp_n, refs);
    for (const auto& [g, k] : ngram_counts(hyp)) {
        const std::size_t n = g.size() - 1;
        auto it = rc.find(g);
        correct[n] += std::min(k, it == rc.end() ? std::int64_t{0} : it->second);
        total[n] += k;
    }
}

void BleuStats::add_text(const std::string& hyp, const std::string& ref, bool lowercase) {
    add_text_multi(hyp, std::span<const std::string>(&ref, 1), lowercase);
}

void BleuStats::add_text_multi(const std::string& hyp, std::span<const std::string> refs, bool lowercase) {
    auto tok = [lowercase](const std::string& s) { return tokenize_13a(lowercase ? lowercase_utf8(s) : s); };
    std::vector<std::vector<std::string>> r;
    r.reserve(refs.size());
    for (const auto& s : refs) r.push_back(tok(s));
    add_multi(tok(hyp), r);
}

double BleuStats::brevity_penalty() const {
    if (hyp_len >= ref_len) return 1.0;
    if (hyp_len == 0) return 0.0;
    return std::exp(1.0 - static_cast<double>(ref_len) / static_cast<double>(hyp_len));
}

std::array<double, 4> BleuStats::precisions() const {
    std::array<double, 4> p{};
    if (correct == std::array<std::int64_t, 4>{}) return p;  // no match at all: all 0 (sacreBLEU #141)
    double smooth = 1.0;
    for (std::size_t n = 0; n < 4; ++n) {
        if (total[n] == 0) break;  // this order and the higher ones stay 0
        if (correct[n] == 0) {
            smooth *= 2.0;
            p[n] = 100.0 / (smooth * static_cast<double>(total[n]));
        } else {
            p[n] = 100.0 * static_cast<double>(correct[n]) / static_cast<double>(total[n]);
        }
    }
    return p;
}

double BleuStats::score() const {
    if (correct == std::array<std::int64_t, 4>{}) return 0.0;  // sacreBLEU 2's early stop (its #141)
    const auto p = precisions();
    double log_sum = 0;
    for (double v : p) {
        if (v <= 0) return 0.0;  // sacreBLEU's log(0) = -9999999999 makes the score 0
        log_sum += std::log(v);
    }
    return brevity_penalty() * std::exp(log_sum / 4.0);
}

double corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs, bool lowercase) {
    RNNFLOW_CHECK(hyps.size() == refs.size(), "corpus_bleu: ", hyps.size(), " hypotheses but ", refs.size(),
                  " references");
    BleuStats s;
    for (std::size_t i = 0; i < hyps.size(); ++i) s.add_text(hyps[i], refs[i], lowercase);
    return s.score();
}

double corpus_bleu_multi(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                         bool lowercase) {
    RNNFLOW_CHECK(hyps.size() == refs.size(), "corpus_bleu_multi: ", hyps.size(), " hypotheses but ", refs.size(),
                  " reference lists");
    BleuStats s;
    for (std::size_t i = 0; i < hyps.size(); ++i) s.add_text_multi(hyps[i], refs[i], lowercase);
    return s.score();
}

}  // namespace rnnflow::stages
