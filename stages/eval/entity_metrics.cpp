#include "entity_metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

namespace rnnflow::stages {

namespace {
double ratio(std::int64_t a, std::int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }

struct Prf {
    double p, r, f;
};
Prf prf(const ChunkCounts::Count& c) {
    const double p = ratio(c.correct, c.found), r = ratio(c.correct, c.gold);
    return {p, r, p + r > 0 ? 2 * p * r / (p + r) : 0.0};
}

// printf into a std::string (conlleval's number formats).
template <class... A> std::string format(const char* fmt, A... args) {
    char buf[256];
    const int n = std::snprintf(buf, sizeof buf, fmt, args...);
    return std::string(buf, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
}
}  // namespace

void ChunkCounts::add(const std::vector<std::string>& gold, const std::vector<std::string>& predicted) {
    RNNFLOW_ASSERT(gold.size() == predicted.size());
    for (std::size_t i = 0; i < gold.size(); ++i) correct_tokens += gold[i] == predicted[i];
    tokens += static_cast<std::int64_t>(gold.size());
    const std::vector<Chunk> g = extract_chunks(gold), p = extract_chunks(predicted);
    for (const Chunk& c : g) ++by_type[c.type].gold;
    for (const Chunk& c : p) ++by_type[c.type].found;
    // Both lists are in order and chunks do not overlap, so a merge finds the equal ones.
    std::size_t i = 0, j = 0;
    while (i < g.size() && j < p.size()) {
        if (g[i] == p[j]) ++by_type[g[i].type].correct;
        if (g[i] < p[j]) ++i;
        else if (p[j] < g[i]) ++j;
        else ++i, ++j;
    }
    all = Count{};
    for (const auto& [type, c] : by_type) {
        all.gold += c.gold;
        all.found += c.found;
        all.correct += c.correct;
    }
}

std::vector<MetricValue> ChunkCounts::scores(bool per_type) const {
    const Prf o = prf(all);
    std::vector<MetricValue> out{{"", o.f, true},
                                 {"precision", o.p, true},
                                 {"recall", o.r, true},
                                 {"accuracy", ratio(correct_tokens, tokens), true}};
    if (per_type)
        for (const auto& [type, c] : by_type) {
            const Prf t = prf(c);
            out.push_back({"precision." + type, t.p, true});
            out.push_back({"recall." + type, t.r, true});
            out.push_back({"f1." + type, t.f, true});
        }
    return out;
}

std::string ChunkCounts::conlleval_report() const {
    std::string s = detail::concat("processed ", tokens, " tokens with ", all.gold, " phrases; found: ", all.found,
                                   " phrases; correct: ", all.correct, ".\n");
    const Prf o = prf(all);
    if (tokens > 0)  // conlleval.pl prints this line only when it read tokens
        s += format("accuracy: %6.2f%%; precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f\n",
                    100 * ratio(correct_tokens, tokens), 100 * o.p, 100 * o.r, 100 * o.f);
    for (const auto& [type, c] : by_type) {
        const Prf t = prf(c);
        s += format("%17s: precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f  %lld\n", type.c_str(), 100 * t.p,
                    100 * t.r, 100 * t.f, static_cast<long long>(c.found));
    }
    return s;
}

StageSchema EntityMetrics::schema() {
    return StageSchema("entity_metrics", "chunk / named-entity precision, recall and F1 as conlleval computes them",
                       Role::metric)
        .input("logits", PortType::tensor, "tag scores (T, N, K) per token")
        .input("labels", PortType::ids, "gold tag ids (T, N) + lengths; padding not counted")
        .input("words", PortType::tokens, "the reader's words per sentence, for the predictions file")
        .param_bool("per_type", true, "also report precision.<type>, recall.<type>, f1.<type>")
        .param_choice("file_scheme", "same", {"same", "iob1", "iob2", "iobes"},
                      "the data file's tag scheme: tags are scored and written in it (same: as trained)")
        .details("Main metric: conlleval's overall FB1 as a fraction: a predicted chunk is correct when its "
                 "start, end and type equal a gold chunk's. Also precision, recall, token accuracy and "
                 "per-type P/R/F1. Writes SPLIT.predictions.conll (word gold predicted; blank line between "
                 "sentences: run conlleval on it) and SPLIT.conlleval.txt into RUN_DIR/<stage>/ after "
                 "evaluation passes; predicts bracketed entities ([PER Jim Henson] visited [LOC Paris]) "
                 "for `rnnflow predict`.");
}

EntityMetrics::EntityMetrics(const Params& p)
    : per_type_(p.get_bool("per_type")), file_scheme_(tag_scheme_from_name(p.get_string("file_scheme"))) {}

void EntityMetrics::prepare(PrepareContext& ctx) {
    const PortInfo& labels = ctx.input_info("labels");
    const PortInfo& logits = ctx.input_info("logits");
    RNNFLOW_CHECK(labels.classes > 0 && labels.vocab, "entity_metrics: input 'labels' has no tag vocabulary "
                                                      "(connect it to tag ids that come from a vocabulary)");
    RNNFLOW_CHECK(logits.channels <= 0 || logits.channels == labels.classes, "entity_metrics: 'logits' has ",
                  logits.channels, " channels but 'labels' has ", labels.classes,
                  " tags; they must be equal (hint: out_dim: <tag vocabulary>.size)");
    names_.clear();
    for (std::int64_t k = 0; k < labels.classes; ++k) names_.push_back(labels.vocab->token(static_cast<std::int32_t>(k)));
    words_.clear();
    for (const auto& split : ctx.splits())
        if (ctx.has_input("words", split))
            words_[split] = std::any_cast<const std::shared_ptr<const TokenSplit>&>(ctx.input_any("words", split));
}

void EntityMetrics::begin(const std::string& split) {
    split_ = split;
    counts_ = ChunkCounts{};
    next_item_ = 0;
    items_.clear();
}

void EntityMetrics::accumulate(const Inputs& in, const StepInfo& step) {
    const Tensor& x = in.at("logits");  // (T, N, K)
    const Tensor& y = in.at("labels");  // (T, N)
    RNNFLOW_CHECK(x.rank() == 3, "entity_metrics: 'logits' must be (T, N, K), got ", shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1), K = x.dim(2);
    RNNFLOW_CHECK(K == static_cast<std::int64_t>(names_.size()), "entity_metrics: 'logits' has ", K,
                  " tags but the tag vocabulary has ", names_.size());
    RNNFLOW_CHECK(y.rank() == 2 && y.dim(1) == N, "entity_metrics: 'labels' ", shape_str(y.shape()),
                  " does not match 'logits' ", shape_str(x.shape()));
    bool any_gold = false;
    for (std::int64_t n = 0; n < N; ++n) any_gold = any_gold || y.length(n) > 0;
    RNNFLOW_CHECK(!any_gold || y.dim(0) == T, "entity_metrics: 'labels' has ", y.dim(0), " steps but 'logits' has ",
                  T, " (entity_metrics needs one tag score vector per token)");
    const float* s = x.data<float>();
    const std::int32_t* g = y.data<std::int32_t>();
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t item = step.item_ids.empty() ? next_item_++ : step.item_ids[static_cast<std::size_t>(n)];
        const std::int64_t steps = std::min(any_gold ? y.length(n) : x.length(n), T);
        Sentence out;
        for (std::int64_t t = 0; t < steps; ++t) {
            const float* row = s + (t * N + n) * K;
            out.predicted.push_back(names_[static_cast<std::size_t>(std::max_element(row, row + K) - row)]);
            if (!any_gold) continue;
            const std::int32_t gk = g[t * N + n];
            RNNFLOW_CHECK(gk >= 0 && gk < K, "entity_metrics: tag id ", gk, " at step ", t, ", column ", n,
                          " is outside [0, ", K, ")");
            out.gold.push_back(names_[static_cast<std::size_t>(gk)]);
        }
        if (file_scheme_) {
            out.predicted = convert_tags(out.predicted, *file_scheme_);
            out.gold = convert_tags(out.gold, *file_scheme_);
        }
        if (any_gold) counts_.add(out.gold, out.predicted);
        items_[item] = std::move(out);
    }
}

std::vector<MetricValue> EntityMetrics::end() {
    if (split_ == "infer") return {};
    RNNFLOW_CHECK(counts_.tokens > 0, "entity_metrics: nothing was scored in split '", split_,
                  "' (no labelled tokens); is the split empty or without labels?");
    return counts_.scores(per_type_);
}

const std::vector<std::string>& EntityMetrics::words_of(std::int64_t item) const {
    const auto it = words_.find(split_);
    RNNFLOW_CHECK(it != words_.end() && item >= 0 && item < static_cast<std::int64_t>(it->second->items.size()),
                  "entity_metrics: no words for sentence ", item, " of split '", split_,
                  "' (connect 'words' to the reader that gives the batches' sentences)");
    return it->second->items[static_cast<std::size_t>(item)];
}

void EntityMetrics::write_outputs(const OutputContext& ctx) {
    std::string conll;
    for (const auto& [item, sent] : items_) {
        const std::vector<std::string>& words = words_of(item);
        for (std::size_t t = 0; t < sent.predicted.size(); ++t) {
            const std::string gold = t < sent.gold.size() ? sent.gold[t] : "O";
            conll += (t < words.size() ? words[t] : std::string("<?>")) + ' ' + gold + ' ' + sent.predicted[t] + '\n';
        }
        conll += '\n';
    }
    write_file_atomic(ctx.dir / (ctx.split + ".predictions.conll"), conll);
    write_file_atomic(ctx.dir / (ctx.split + ".conlleval.txt"), counts_.conlleval_report());
}

std::vector<std::string> EntityMetrics::predictions() {
    std::vector<std::string> out;
    for (const auto& [item, sent] : items_) {
        const std::vector<std::string>& words = words_of(item);
        std::vector<std::string> parts;
        std::size_t next = 0;  // the next word not yet written
        auto word = [&](std::size_t t) { return t < words.size() ? words[t] : std::string("<?>"); };
        for (const Chunk& c : extract_chunks(sent.predicted)) {
            for (; next < static_cast<std::size_t>(c.begin); ++next) parts.push_back(word(next));
            std::string chunk = "[" + c.type;
            for (; next < static_cast<std::size_t>(c.end); ++next) chunk += ' ' + word(next);
            parts.push_back(chunk + "]");
        }
        for (; next < std::max(sent.predicted.size(), words.size()); ++next) parts.push_back(word(next));
        std::string line;
        for (const auto& p : parts) line += (line.empty() ? "" : " ") + p;
        out.push_back(std::move(line));
    }
    return out;
}

void EntityMetrics::save_run_state(StageState& state) const {
    std::ostringstream os;
    os << counts_.tokens << ' ' << counts_.correct_tokens << ' ' << next_item_;
    for (const auto& [type, c] : counts_.by_type) os << '\n' << type << ' ' << c.gold << ' ' << c.found << ' ' << c.correct;
    state.put_text("split", split_);
    state.put_text("counts", os.str());
}

void EntityMetrics::load_run_state(const StageState& state) {
    const std::string* text = state.text("counts");
    RNNFLOW_CHECK(text != nullptr, "entity_metrics: saved state has no 'counts'");
    if (const std::string* s = state.text("split")) split_ = *s;
    std::istringstream is(*text);
    counts_ = ChunkCounts{};
    RNNFLOW_CHECK(static_cast<bool>(is >> counts_.tokens >> counts_.correct_tokens >> next_item_),
                  "entity_metrics: saved counts do not read back: ", *text);
    std::string type;
    ChunkCounts::Count c;
    while (is >> type >> c.gold >> c.found >> c.correct) {
        counts_.by_type[type] = c;
        counts_.all.gold += c.gold;
        counts_.all.found += c.found;
        counts_.all.correct += c.correct;
    }
    RNNFLOW_CHECK(is.eof(), "entity_metrics: saved counts do not read back: ", *text);
}

}  // namespace rnnflow::stages
