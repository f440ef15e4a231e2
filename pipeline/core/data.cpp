#include "data.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "error.hpp"

namespace rnnflow {

// Length of the UTF-8 sequence starting with byte c (1 for bytes that cannot start one, so that
// invalid input still splits into single bytes instead of being dropped).
static std::size_t utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c >> 5) == 0x6) return 2;
    if ((c >> 4) == 0xE) return 3;
    if ((c >> 3) == 0x1E) return 4;
    return 1;
}

static std::string ascii_lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

std::vector<std::string> TokenizerSpec::tokenize(const std::string& raw) const {
    std::string text = lowercase ? ascii_lower(raw) : raw;
    if (fold_numbers)
        for (auto& ch : text)
            if (ch >= '0' && ch <= '9') ch = '0';
    std::vector<std::string> out;
    if (mode == "char") {
        out.reserve(text.size());
        for (std::size_t i = 0; i < text.size();) {
            const std::size_t n = std::min(utf8_len(static_cast<unsigned char>(text[i])), text.size() - i);
            out.emplace_back(text, i, n);
            i += n;
        }
        return out;
    }
    RNNFLOW_CHECK(mode == "word", "unknown tokenizer mode '", mode, "'");
    std::string cur;
    auto flush = [&] {
        if (!cur.empty()) out.push_back(std::move(cur));
        cur.clear();
    };
    // A byte that continues a word on both sides: an ASCII letter or digit, or any non-ASCII byte
    // (letters of other scripts).
    auto wordish = [](unsigned char c) { return c >= 0x80 || std::isalnum(c); };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        const auto u = static_cast<unsigned char>(ch);
        if (std::isspace(u)) {
            flush();
        } else if (split_punct && u < 0x80 && std::ispunct(u) &&
                   !(keep_inner_punct && !cur.empty() && wordish(static_cast<unsigned char>(cur.back())) &&
                     i + 1 < text.size() && wordish(static_cast<unsigned char>(text[i + 1])))) {
            flush();
            out.emplace_back(1, ch);
        } else {
            cur += ch;
        }
    }
    flush();
    return out;
}

std::string TokenizerSpec::detokenize(const std::vector<std::string>& tokens) const {
    std::string out;
    const bool spaced = mode == "word";
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (spaced && i) out += ' ';
        out += tokens[i];
    }
    return out;
}

Vocabulary::Vocabulary(std::vector<std::string> tokens, std::vector<std::int64_t> counts,
                       std::vector<std::string> specials, TokenizerSpec spec)
    : tokens_(std::move(tokens)), counts_(std::move(counts)), specials_(std::move(specials)),
      spec_(std::move(spec)) {
    RNNFLOW_ASSERT(tokens_.size() == counts_.size());
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
        const bool fresh = index_.emplace(tokens_[i], static_cast<std::int32_t>(i)).second;
        RNNFLOW_CHECK(fresh, "vocabulary lists token '", tokens_[i], "' twice");
    }
    unk_ = special("<unk>");
}

std::int32_t Vocabulary::id(const std::string& token) const {
    auto it = index_.find(token);
    return it == index_.end() ? unk_ : it->second;
}

std::int32_t Vocabulary::special(const std::string& name) const {
    if (std::find(specials_.begin(), specials_.end(), name) == specials_.end()) return -1;
    auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
}

static std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '\t': out += "\\t"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            default: out += c;
        }
    }
    return out;
}

static std::string unescape(const std::string& s, const std::string& where) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\') { out += s[i]; continue; }
        RNNFLOW_CHECK(i + 1 < s.size(), where, ": dangling backslash in token");
        const char c = s[++i];
        switch (c) {
            case '\\': out += '\\'; break;
            case 't': out += '\t'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            default: throw Error(where + ": unknown escape \\" + std::string(1, c) + " in token");
        }
    }
    return out;
}

// A whole decimal integer; a damaged file gives an Error naming the place, not std::stoll's
// std::invalid_argument.
static long long parse_int(const std::string& s, const std::string& where) {
    std::size_t used = 0;
    long long v = 0;
    try {
        v = std::stoll(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    RNNFLOW_CHECK(used == s.size() && !s.empty() && v >= 0, where, ": expected a number, got '", s, "'");
    return v;
}

void Vocabulary::save(const std::filesystem::path& file) const {
    std::ofstream os(file, std::ios::binary);
    RNNFLOW_CHECK(os.good(), "cannot write ", file.string());
    os << "#rnnflow-vocab 1\tmode=" << spec_.mode << "\tlowercase=" << (spec_.lowercase ? 1 : 0)
       << "\tsplit_punct=" << (spec_.split_punct ? 1 : 0);
    // Written only when set, so vocabularies of runs that do not use them stay byte-identical.
    if (spec_.keep_inner_punct) os << "\tkeep_inner_punct=1";
    if (spec_.fold_numbers) os << "\tfold_numbers=1";
    os << "\tspecials=" << specials_.size() << "\n";
    for (std::size_t i = 0; i < tokens_.size(); ++i)
        os << i << '\t' << escape(tokens_[i]) << '\t' << counts_[i] << '\n';
    os.flush();
    RNNFLOW_CHECK(os.good(), "failed writing ", file.string());
}

Vocabulary Vocabulary::load(const std::filesystem::path& file) {
    std::ifstream is(file, std::ios::binary);
    RNNFLOW_CHECK(is.good(), "cannot read vocabulary ", file.string());
    std::string header;
    std::getline(is, header);
    RNNFLOW_CHECK(header.rfind("#rnnflow-vocab 1\t", 0) == 0, file.string(),
                  ":1: not an rnnflow vocabulary file");
    TokenizerSpec spec;
    std::size_t n_specials = 0;
    std::istringstream hs(header.substr(header.find('\t') + 1));
    std::string field;
    while (std::getline(hs, field, '\t')) {
        const auto eq = field.find('=');
        if (eq == std::string::npos) continue;
        const std::string k = field.substr(0, eq), v = field.substr(eq + 1);
        if (k == "mode") spec.mode = v;
        else if (k == "lowercase") spec.lowercase = v == "1";
        else if (k == "split_punct") spec.split_punct = v == "1";
        else if (k == "keep_inner_punct") spec.keep_inner_punct = v == "1";
        else if (k == "fold_numbers") spec.fold_numbers = v == "1";
        else if (k == "specials") n_specials = static_cast<std::size_t>(parse_int(v, file.string() + ":1"));
    }
    std::vector<std::string> tokens;
    std::vector<std::int64_t> counts;
    std::string line;
    int lineno = 1;
    while (std::getline(is, line)) {
        ++lineno;
        const std::string where = file.string() + ":" + std::to_string(lineno);
        const auto t1 = line.find('\t');
        const auto t2 = line.rfind('\t');
        RNNFLOW_CHECK(t1 != std::string::npos && t2 != t1, where, ": expected id<TAB>token<TAB>count");
        RNNFLOW_CHECK(parse_int(line.substr(0, t1), where) == static_cast<long long>(tokens.size()), where,
                      ": ids must count up from 0");
        tokens.push_back(unescape(line.substr(t1 + 1, t2 - t1 - 1), where));
        counts.push_back(parse_int(line.substr(t2 + 1), where));
    }
    RNNFLOW_CHECK(n_specials <= tokens.size(), file.string(), ": header names more specials than tokens");
    std::vector<std::string> specials(tokens.begin(), tokens.begin() + static_cast<long>(n_specials));
    return Vocabulary(std::move(tokens), std::move(counts), std::move(specials), std::move(spec));
}

}  // namespace rnnflow
