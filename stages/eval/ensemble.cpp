#include "ensemble.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "pipeline/core/error.hpp"

namespace rnnflow::stages {

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t tab = line.find('\t', start);
        out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
        if (tab == std::string::npos) return out;
        start = tab + 1;
    }
}

template <class T>
bool parse_number(const std::string& s, T& v) {
    const char* end = s.data() + s.size();
    const auto r = std::from_chars(s.data(), end, v);
    return r.ec == std::errc() && r.ptr == end && !s.empty();
}

std::string where(const std::filesystem::path& file, std::size_t line) {
    return file.string() + ":" + std::to_string(line) + ": ";
}

}  // namespace

PredictionTable read_prediction_table(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("cannot read " + file.string(), "evaluate the run first: rnnflow eval RUN_DIR --split SPLIT");
    PredictionTable t;
    t.file = file;
    std::string line;
    if (!std::getline(in, line)) throw Error(file.string() + ": empty file (expected the header item, gold, predicted, p.<label>...)");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::vector<std::string> head = split_tabs(line);
    if (head.size() < 3 || head[0] != "item" || head[1] != "gold" || head[2] != "predicted")
        throw Error(where(file, 1) + "not a predictions file: the header must start with item, gold, predicted",
                    "give the SPLIT.predictions.tsv that classification_metrics writes into RUN_DIR/<stage>/");
    for (std::size_t c = 3; c < head.size(); ++c) {
        if (head[c].rfind("p.", 0) != 0 || head[c].size() == 2)
            throw Error(where(file, 1) + "column " + std::to_string(c + 1) + " '" + head[c] +
                        "' is not a class probability column p.<label>");
        t.labels.push_back(head[c].substr(2));
        for (std::size_t d = 0; d + 1 < t.labels.size(); ++d)
            if (t.labels[d] == t.labels.back())
                throw Error(where(file, 1) + "the column p." + t.labels.back() + " appears twice");
    }
    if (t.labels.empty())
        throw Error(file.string() + " has no class probabilities (columns p.<label>)",
                    "write them again with `rnnflow eval RUN_DIR --split SPLIT` (older versions of rnnflow did not "
                    "write them); tagging runs (a label per token) cannot be ensembled");
    std::size_t lineno = 1;
    while (std::getline(in, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        const std::vector<std::string> f = split_tabs(line);
        if (f.size() != head.size())
            throw Error(where(file, lineno) + std::to_string(f.size()) + " columns, the header has " +
                        std::to_string(head.size()));
        std::int64_t item = 0;
        if (!parse_number(f[0], item) || item < 0)
            throw Error(where(file, lineno) + "item '" + f[0] + "' is not a non-negative integer");
        if (f[1].empty())
            throw Error(where(file, lineno) + "item " + f[0] + " has no gold label",
                        "an ensemble is scored against gold labels: evaluate a labelled split");
        if (f[1].find(' ') != std::string::npos || f[2].find(' ') != std::string::npos)
            throw Error(where(file, lineno) + "item " + f[0] + " has several labels (a tagging run?)",
                        "only runs with one label per item can be ensembled");
        ClassifiedItem it{f[1], f[2], {}};
        double sum = 0;
        for (std::size_t c = 3; c < f.size(); ++c) {
            float p = 0;
            if (!parse_number(f[c], p) || !std::isfinite(p) || p < 0.f || p > 1.f)
                throw Error(where(file, lineno) + "column " + head[c] + ": '" + f[c] + "' is not a probability in [0, 1]");
            it.probs.push_back(p);
            sum += static_cast<double>(p);
        }
        if (std::abs(sum - 1.0) > 1e-3)
            throw Error(where(file, lineno) + "the probabilities of item " + f[0] + " sum to " + std::to_string(sum) +
                        ", not 1");
        if (!t.items.emplace(item, std::move(it)).second)
            throw Error(where(file, lineno) + "item " + f[0] + " appears twice");
    }
    if (t.items.empty()) throw Error(file.string() + ": no items (only the header)");
    return t;
}

EnsembleResult ensemble_tables(const std::vector<PredictionTable>& members, bool per_class) {
    if (members.size() < 2) throw Error("an ensemble needs two or more members, got " + std::to_string(members.size()));
    const PredictionTable& first = members.front();
    EnsembleResult r;
    r.labels = first.labels;
    const std::size_t K = r.labels.size();
    std::map<std::string, std::size_t> index;
    for (std::size_t k = 0; k < K; ++k) index[r.labels[k]] = k;
    for (const auto& [item, it] : first.items) {
        ClassifiedItem out{it.gold, {}, std::vector<float>(K, 0.f)};
        if (!index.count(it.gold))
            throw Error(first.file.string() + ": the gold label '" + it.gold + "' of item " + std::to_string(item) +
                        " has no p." + it.gold + " column");
        r.items.emplace(item, std::move(out));
    }
    std::vector<std::vector<double>> sums(r.items.size(), std::vector<double>(K, 0.0));
    for (const PredictionTable& m : members) {
        const std::string name = m.file.string();
        // The member's columns in the first member's order.
        std::vector<std::size_t> col(K);
        if (m.labels.size() != K)
            throw Error(name + " has " + std::to_string(m.labels.size()) + " classes, " + first.file.string() +
                        " has " + std::to_string(K), "ensemble members must be trained on the same labels");
        for (std::size_t c = 0; c < K; ++c) {
            const auto f = index.find(m.labels[c]);
            if (f == index.end())
                throw Error(name + ": class '" + m.labels[c] + "' is not a class of " + first.file.string(),
                            "ensemble members must be trained on the same labels");
            col[f->second] = c;
        }
        if (m.items.size() != first.items.size())
            throw Error(name + " has " + std::to_string(m.items.size()) + " items, " + first.file.string() + " has " +
                            std::to_string(first.items.size()),
                        "ensemble members must be evaluated on the same split of the same data");
        std::int64_t right = 0;
        std::size_t i = 0;
        for (const auto& [item, out] : r.items) {
            const auto it = m.items.find(item);
            if (it == m.items.end())
                throw Error(name + " has no item " + std::to_string(item) + " (" + first.file.string() + " has)",
                            "ensemble members must be evaluated on the same split of the same data");
            if (it->second.gold != out.gold)
                throw Error(name + ": item " + std::to_string(item) + " has gold label '" + it->second.gold + "', " +
                                first.file.string() + " says '" + out.gold + "'",
                            "ensemble members must be evaluated on the same split of the same data");
            for (std::size_t k = 0; k < K; ++k) sums[i][k] += static_cast<double>(it->second.probs[col[k]]);
            right += it->second.predicted == it->second.gold;
            ++i;
        }
        r.member_accuracy.push_back(static_cast<double>(right) / static_cast<double>(r.items.size()));
    }
    r.confusion.assign(K, std::vector<std::int64_t>(K, 0));
    std::size_t i = 0;
    const double n = static_cast<double>(members.size());
    for (auto& [item, out] : r.items) {
        std::size_t best = 0;
        for (std::size_t k = 0; k < K; ++k) {
            out.probs[k] = static_cast<float>(sums[i][k] / n);
            if (sums[i][k] > sums[i][best]) best = k;
        }
        out.predicted = r.labels[best];
        ++r.confusion[index.at(out.gold)][best];
        ++i;
    }
    r.metrics = classification_scores(r.confusion, r.labels, per_class);
    return r;
}

}  // namespace rnnflow::stages
