// `rnnflow score`: a language model's log-probability of lines of text (see commands.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "cli/commands.hpp"
#include "pipeline/core/error.hpp"

namespace rnnflow {

namespace {

// log softmax of one row of V scores at `id`, in double.
double log_prob(const float* row, std::int64_t V, std::int32_t id) {
    const double mx = *std::max_element(row, row + V);
    double sum = 0;
    for (std::int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
    return static_cast<double>(row[id]) - mx - std::log(sum);
}

// The k most probable ids of a row (ties: lower id first) with their probabilities.
std::vector<std::pair<std::int32_t, double>> most_probable(const float* row, std::int64_t V, std::int64_t k) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(V));
    std::iota(ids.begin(), ids.end(), 0);
    const auto n = static_cast<std::ptrdiff_t>(std::min<std::int64_t>(k, V));
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](std::int32_t a, std::int32_t b) {
        return row[a] != row[b] ? row[a] > row[b] : a < b;
    });
    std::vector<std::pair<std::int32_t, double>> out;
    for (std::ptrdiff_t i = 0; i < n; ++i) out.emplace_back(ids[static_cast<std::size_t>(i)], std::exp(log_prob(row, V, ids[static_cast<std::size_t>(i)])));
    return out;
}

std::string fixed(double x, int digits) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", digits, x);
    return b;
}

}  // namespace

std::vector<LineScore> score_lines(ModelRunner& model, const Vocabulary& vocab, const std::vector<std::string>& lines,
                                   const ScoreOptions& opt, const std::string& where) {
    const std::int32_t eos = vocab.special("<eos>");
    RNNFLOW_CHECK(!opt.carry || eos >= 0, "--carry needs a vocabulary with <eos> (the token between lines)");
    const std::int64_t V = vocab.size();
    std::vector<LineScore> out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string at = detail::concat(where, ":", i + 1);
        LineScore s;
        std::vector<std::int32_t> ids;  // fed: <eos> first when the vocabulary has it
        if (eos >= 0) ids.push_back(eos);
        for (const auto& t : vocab.tokenizer().tokenize(lines[i])) {
            std::int32_t id = vocab.contains(t) ? vocab.id(t) : vocab.unk();
            if (id < 0)
                throw Error(detail::concat(at, ": '", t, "' is not in the vocabulary, which has no <unk>"),
                            "score text made of the tokens the model was trained on");
            if (!vocab.contains(t)) s.unknown.push_back(t);
            ids.push_back(id);
        }
        const std::size_t n = ids.size() - (eos >= 0 ? 1 : 0);  // the line's tokens
        if (n == 0) throw Error(at + ": empty line: nothing to score", "remove blank lines");
        if (ids.size() < 2)
            throw Error(at + ": one token and no <eos> in the vocabulary: nothing to predict",
                        "without <eos> a line's first token is given, not scored; give two tokens or more");
        // Scored: every fed id after the first, then <eos> (predicted after the line's last token).
        std::vector<std::int32_t> targets(ids.begin() + 1, ids.end());
        if (eos >= 0) targets.push_back(eos);
        Tensor in = Tensor::i32({static_cast<std::int64_t>(ids.size()), 1});  // (T, 1)
        std::copy(ids.begin(), ids.end(), in.data<std::int32_t>());
        const Tensor& logits = model.run(in, !opt.carry || i == 0);
        const auto T = static_cast<std::int64_t>(ids.size());
        if (logits.rank() != 3 || logits.dim(0) != T || logits.dim(1) != 1 || logits.dim(2) != V)
            throw Error(detail::concat("the model gave scores ", shape_str(logits.shape()), " for ids (", T,
                                       ", 1), not (", T, ", 1, ", V, ") over its vocabulary of ", V),
                        "score needs a language model: next-token scores over the vocabulary at every step");
        const float* l = logits.data<float>();  // (T, 1, V)
        for (std::size_t t = 0; t < targets.size(); ++t)
            s.logprob += log_prob(l + static_cast<std::int64_t>(t) * V, V, targets[t]);
        s.tokens = static_cast<std::int64_t>(targets.size());
        // The last row follows the line's last token: it scored <eos>, or nothing without <eos>.
        if (opt.next > 0) s.next = most_probable(l + (T - 1) * V, V, opt.next);
        out.push_back(std::move(s));
    }
    return out;
}

std::string score_text(const std::vector<LineScore>& scores, const std::vector<std::string>& lines,
                       const Vocabulary& vocab) {
    const double ln2 = std::log(2.0);
    std::string text = "line\ttokens\tunk\tlogprob\tbits\tppl\ttext\n";
    auto row = [&](const std::string& name, std::int64_t tokens, std::int64_t unk, double lp, const std::string& what) {
        text += detail::concat(name, "\t", tokens, "\t", unk, "\t", fixed(lp, 4), "\t", fixed(lp / ln2, 4), "\t",
                               fixed(std::exp(-lp / static_cast<double>(tokens)), 4), "\t", what, "\n");
    };
    std::int64_t tokens = 0, unk = 0;
    double lp = 0;
    for (std::size_t i = 0; i < scores.size(); ++i) {
        const LineScore& s = scores[i];
        row(std::to_string(i + 1), s.tokens, static_cast<std::int64_t>(s.unknown.size()), s.logprob, lines[i]);
        for (std::size_t k = 0; k < s.next.size(); ++k)
            text += detail::concat("next\t", k + 1, "\t", vocab.token(s.next[k].first), "\t", fixed(s.next[k].second, 6), "\n");
        tokens += s.tokens;
        unk += static_cast<std::int64_t>(s.unknown.size());
        lp += s.logprob;
    }
    if (!scores.empty()) row("total", tokens, unk, lp, "-");
    return text;
}

}  // namespace rnnflow
