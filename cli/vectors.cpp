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

}  // namespace rnnflow
