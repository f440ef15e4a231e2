// `rnnflow vectors`: a trained embedding's rows as a GloVe text file (see commands.hpp).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

#include "cli/commands.hpp"
#include "pipeline/core/error.hpp"

namespace rnnflow {

namespace {

// A token the embedding stage's pretrained reader gives back as the same text: it splits a row at
// runs of spaces and tabs and drops a '\r' before the line end.
bool writable_token(const std::string& t) {
    return !t.empty() && t.find_first_of(" \t\n\r") == std::string::npos;
}

}  // namespace

std::string embedding_vectors_text(const Vocabulary& vocab, const Tensor& weight, VectorsCount* count) {
    RNNFLOW_CHECK(weight.dtype() == DType::f32 && weight.rank() == 2 && weight.shape()[0] == vocab.size(),
                  "the embedding's weight is not (V, C) f32 with V = ", vocab.size(), " (the vocabulary's size)");
    const std::int64_t V = weight.shape()[0], C = weight.shape()[1];
    const float* w = weight.data<float>();
    const auto& specials = vocab.specials();
    VectorsCount n;
    std::string rows;
    char buf[64];
    for (std::int64_t v = 0; v < V; ++v) {
        const std::string& t = vocab.token(static_cast<std::int32_t>(v));
        if (std::find(specials.begin(), specials.end(), t) != specials.end()) {
            ++n.specials;
            continue;
        }
        if (!writable_token(t)) {
            ++n.unwritable;
            continue;
        }
        rows += t;
        for (std::int64_t c = 0; c < C; ++c) {
            const float x = w[v * C + c];
            if (!std::isfinite(x))
                throw Error(detail::concat("the vector of '", t, "' (row ", v, ") has a non-finite value at column ",
                                           c + 1, ": the run diverged"),
                            "export a checkpoint from before the divergence (--checkpoint FILE)");
            // Shortest text that reads back as the same float (std::from_chars), bit for bit.
            const auto r = std::to_chars(buf, buf + sizeof buf, x);
            RNNFLOW_ASSERT(r.ec == std::errc());
            rows += ' ';
            rows.append(buf, r.ptr);
        }
        rows += '\n';
        ++n.rows;
    }
    // With C = 1 a first row "123 4" would read as word2vec's "count dim" header: write that
    // header then, so that the file reads back either way.
    std::string text = C == 1 ? detail::concat(n.rows, " 1\n") + rows : std::move(rows);
    if (count) *count = n;
    return text;
}

std::vector<std::pair<std::string, double>> nearest_neighbours(const Vocabulary& vocab, const Tensor& weight,
                                                              const std::string& word, std::int64_t k) {
    RNNFLOW_CHECK(weight.dtype() == DType::f32 && weight.rank() == 2 && weight.shape()[0] == vocab.size(),
                  "the embedding's weight is not (V, C) f32 with V = ", vocab.size(), " (the vocabulary's size)");
    const auto toks = vocab.tokenizer().tokenize(word);
    if (toks.size() != 1 || !vocab.contains(toks.front())) {
        const std::string hint = toks.size() == 1 ? did_you_mean(toks.front(), vocab.tokens()) : std::string();
        throw Error(detail::concat("'", word, "' is not ", toks.size() == 1 ? "in the vocabulary" : "one token",
                                   " (", vocab.size(), " tokens", vocab.tokenizer().lowercase ? ", lower-cased" : "", ")"),
                    hint.empty() ? "give a token the model was trained on" : hint);
    }
    const std::int64_t V = weight.shape()[0], C = weight.shape()[1];
    const float* w = weight.data<float>();
    auto norm = [&](std::int64_t v) {
        double s = 0;
        for (std::int64_t c = 0; c < C; ++c) s += static_cast<double>(w[v * C + c]) * w[v * C + c];
        return std::sqrt(s);
    };
    const std::int32_t q = vocab.id(toks.front());
    const double qn = norm(q);
    if (qn == 0) throw Error("the vector of '" + toks.front() + "' is zero: it has no direction to compare");
    const auto& specials = vocab.specials();
    std::vector<std::pair<std::string, double>> out;  // token, cosine; in id order, then sorted
    for (std::int64_t v = 0; v < V; ++v) {
        const std::string& t = vocab.token(static_cast<std::int32_t>(v));
        const double n = norm(v);
        if (v == q || n == 0 || std::find(specials.begin(), specials.end(), t) != specials.end()) continue;
        double dot = 0;
        for (std::int64_t c = 0; c < C; ++c) dot += static_cast<double>(w[q * C + c]) * w[v * C + c];
        out.emplace_back(t, dot / (qn * n));
    }
    // Most similar first; ties keep id order (stable).
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    if (static_cast<std::int64_t>(out.size()) > k) out.resize(static_cast<std::size_t>(k));
    return out;
}

}  // namespace rnnflow
