#include "classification_metrics.hpp"

#include <charconv>
#include <cmath>
#include <string_view>
#include <sstream>

#include "pipeline/core/plot.hpp"

namespace rnnflow::stages {

std::vector<MetricValue> classification_scores(const std::vector<std::vector<std::int64_t>>& confusion,
                                               const std::vector<std::string>& names, bool per_class) {
    const std::size_t K = names.size();
    std::int64_t total = 0;
    for (const auto& row : confusion)
        for (const auto c : row) total += c;
    RNNFLOW_CHECK(total > 0, "classification scores: nothing was counted");
    std::int64_t correct = 0;
    for (std::size_t k = 0; k < K; ++k) correct += confusion[k][k];
    std::vector<MetricValue> out;
    out.push_back({"", static_cast<double>(correct) / static_cast<double>(total), true});
    std::vector<MetricValue> per;
    double f1_sum = 0;
    std::int64_t f1_classes = 0;
    for (std::size_t k = 0; k < K; ++k) {
        std::int64_t gold = 0, pred = 0;
        for (std::size_t j = 0; j < K; ++j) {
            gold += confusion[k][j];
            pred += confusion[j][k];
        }
        const double tp = static_cast<double>(confusion[k][k]);
        const double p = pred > 0 ? tp / static_cast<double>(pred) : 0.0;
        const double r = gold > 0 ? tp / static_cast<double>(gold) : 0.0;
        const double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
        // One-vs-rest: right about k (tp) plus right about not-k (neither gold nor predicted k).
        const double tn = static_cast<double>(total - gold - pred) + tp;
        const double acc = (tp + tn) / static_cast<double>(total);
        if (gold > 0 || pred > 0) {
            f1_sum += f1;
            ++f1_classes;
        }
        if (per_class) {
            const std::string& name = names[k];
            per.push_back({"precision." + name, p, true});
            per.push_back({"recall." + name, r, true});
            per.push_back({"f1." + name, f1, true});
            per.push_back({"accuracy." + name, acc, true});
        }
    }
    out.push_back({"macro_f1", f1_classes > 0 ? f1_sum / static_cast<double>(f1_classes) : 0.0, true});
    out.insert(out.end(), per.begin(), per.end());
    return out;
}

StageSchema ClassificationMetrics::schema() {
    return StageSchema("classification_metrics",
                       "accuracy, per-class precision/recall/F1, macro-F1, confusion matrix, predictions",
                       Role::metric)
        .input("logits", PortType::tensor, "class scores (1, N, K) per sentence or (T, N, K) per token")
        .input("labels", PortType::ids, "gold label ids (1, N) or (T, N) + lengths; padding not counted")
        .param_bool("per_class", true, "also report precision.<label>, recall.<label>, f1.<label>, accuracy.<label>")
        .details("Main metric: accuracy over counted positions (token accuracy for tagging, "
                 "padding excluded). macro_f1 averages F1 over classes that occur or are predicted. "
                 "accuracy.<label> is one-vs-rest accuracy. Writes SPLIT.confusion.tsv, "
                 "SPLIT.confusion.png and SPLIT.predictions.tsv (with one label per item also p.<label>, the class "
                 "probabilities that `rnnflow ensemble` averages) into RUN_DIR/<stage>/ after evaluation passes; predicts "
                 "labels (or space-separated tags) for `rnnflow predict`.");
}

ClassificationMetrics::ClassificationMetrics(const Params& p) : per_class_(p.get_bool("per_class")) {}

void ClassificationMetrics::prepare(PrepareContext& ctx) {
    const PortInfo& labels = ctx.input_info("labels");
    const PortInfo& logits = ctx.input_info("logits");
    RNNFLOW_CHECK(labels.classes > 0, "classification_metrics: input 'labels' has no known number of classes "
                                      "(connect it to label ids that come from a vocabulary)");
    RNNFLOW_CHECK(logits.channels <= 0 || logits.channels == labels.classes, "classification_metrics: 'logits' has ",
                  logits.channels, " channels but 'labels' has ", labels.classes,
                  " classes; they must be equal (hint: out_dim: <label vocabulary>.size)");
    names_.clear();
    for (std::int64_t k = 0; k < labels.classes; ++k)
        names_.push_back(labels.vocab ? labels.vocab->token(static_cast<std::int32_t>(k)) : std::to_string(k));
}

std::string ClassificationMetrics::label_name(std::int64_t k) const {
    return k >= 0 && k < static_cast<std::int64_t>(names_.size()) ? names_[static_cast<std::size_t>(k)]
                                                                  : std::to_string(k);
}

void ClassificationMetrics::begin(const std::string& split) {
    split_ = split;
    const std::size_t K = names_.size();
    confusion_.assign(K, std::vector<std::int64_t>(K, 0));
    total_ = 0;
    next_item_ = 0;
    items_.clear();
}

void ClassificationMetrics::accumulate(const Inputs& in, const StepInfo& step) {
    const Tensor& x = in.at("logits");  // (T, N, K)
    const Tensor& y = in.at("labels");  // (T', N)
    RNNFLOW_CHECK(x.rank() == 3, "classification_metrics: 'logits' must be (T, N, K), got ", shape_str(x.shape()));
    const std::int64_t T = x.dim(0), N = x.dim(1), K = x.dim(2);
    RNNFLOW_CHECK(K == static_cast<std::int64_t>(names_.size()), "classification_metrics: 'logits' has ", K,
                  " classes but the label vocabulary has ", names_.size());
    RNNFLOW_CHECK(y.rank() == 2 && y.dim(1) == N, "classification_metrics: 'labels' ", shape_str(y.shape()),
                  " does not match 'logits' ", shape_str(x.shape()), " (expected (T, N) with N = ", N, ")");
    const bool any_gold = [&] {
        for (std::int64_t n = 0; n < N; ++n)
            if (y.length(n) > 0) return true;
        return false;
    }();
    // Sentence labels (1, N) against per-token logits would silently score step 0 only.
    RNNFLOW_CHECK(!any_gold || y.dim(0) == T, "classification_metrics: 'labels' has ", y.dim(0),
                  " steps but 'logits' has ", T, " (sentence labels need pooled logits (1, N, K))");
    const float* s = x.data<float>();
    const std::int32_t* g = y.data<std::int32_t>();
    for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t item = step.item_ids.empty() ? next_item_++ : step.item_ids[static_cast<std::size_t>(n)];
        const std::int64_t steps = any_gold ? y.length(n) : x.length(n);
        ClassifiedItem out;
        for (std::int64_t t = 0; t < steps && t < T; ++t) {
            const float* row = s + (t * N + n) * K;
            std::int64_t best = 0;
            for (std::int64_t k = 1; k < K; ++k)
                if (row[k] > row[best]) best = k;
            if (!out.predicted.empty()) out.predicted += ' ';
            out.predicted += label_name(best);
            if (any_gold) {
                const std::int32_t gk = g[t * N + n];
                RNNFLOW_CHECK(gk >= 0 && gk < K, "classification_metrics: label id ", gk, " at step ", t,
                              ", column ", n, " is outside [0, ", K, ")");
                ++confusion_[static_cast<std::size_t>(gk)][static_cast<std::size_t>(best)];
                ++total_;
                if (!out.gold.empty()) out.gold += ' ';
                out.gold += label_name(gk);
            }
            if (T == 1) {  // one label per item: its class probabilities (softmax, max subtracted)
                double sum = 0;
                std::vector<double> e(static_cast<std::size_t>(K));
                for (std::int64_t k = 0; k < K; ++k)
                    sum += e[static_cast<std::size_t>(k)] = std::exp(static_cast<double>(row[k]) - row[best]);
                out.probs.resize(static_cast<std::size_t>(K));
                for (std::size_t k = 0; k < e.size(); ++k) out.probs[k] = static_cast<float>(e[k] / sum);
            }
        }
        items_[item] = std::move(out);
    }
}

std::vector<MetricValue> ClassificationMetrics::end() {
    if (split_ == "infer") return {};
    RNNFLOW_CHECK(total_ > 0, "classification_metrics: nothing was scored in split '", split_,
                  "' (no labelled positions); is the split empty or without labels?");
    return classification_scores(confusion_, names_, per_class_);
}

namespace {
// Tabs and line breaks would break the TSV columns.
std::string tsv_field(const std::string& s) {
    std::string out;
    for (char c : s) out += (c == '\t' || c == '\n' || c == '\r') ? ' ' : c;
    return out;
}
}  // namespace

void write_classification_files(const std::filesystem::path& dir, const std::string& split,
                                const std::vector<std::string>& names,
                                const std::vector<std::vector<std::int64_t>>& confusion,
                                const std::map<std::int64_t, ClassifiedItem>& items) {
    std::ostringstream cm;
    cm << "gold\\predicted";
    for (const auto& name : names) cm << '\t' << tsv_field(name);
    cm << '\n';
    for (std::size_t g = 0; g < names.size(); ++g) {
        cm << tsv_field(names[g]);
        for (std::size_t p = 0; p < names.size(); ++p) cm << '\t' << confusion[g][p];
        cm << '\n';
    }
    write_file_atomic(dir / (split + ".confusion.tsv"), cm.str());
    // The image after the table, so a plotting failure leaves the numbers written.
    if (names.size() <= ClassificationMetrics::kMaxPlotClasses) {
        plot::Heatmap map;
        map.title = split + " confusion (rows gold, columns predicted)";
        map.x_label = "predicted";
        map.y_label = "gold";
        map.col_labels = map.row_labels = names;
        map.rows = map.cols = static_cast<std::int64_t>(names.size());
        for (const auto& row : confusion)
            for (std::int64_t c : row) map.values.push_back(static_cast<double>(c));
        map.annotate = true;
        plot::write_png(map, dir / (split + ".confusion.png"));
    }

    bool probs = !items.empty() && !names.empty();
    for (const auto& [item, it] : items) probs = probs && it.probs.size() == names.size();
    std::ostringstream pr;
    pr << "item\tgold\tpredicted";
    if (probs)
        for (const auto& name : names) pr << "\tp." << tsv_field(name);
    pr << '\n';
    char buf[32];
    for (const auto& [item, it] : items) {
        pr << item << '\t' << tsv_field(it.gold) << '\t' << tsv_field(it.predicted);
        if (probs)
            for (const float p : it.probs) {
                const auto r = std::to_chars(buf, buf + sizeof buf, p);
                pr << '\t' << std::string_view(buf, static_cast<std::size_t>(r.ptr - buf));
            }
        pr << '\n';
    }
    write_file_atomic(dir / (split + ".predictions.tsv"), pr.str());
}

void ClassificationMetrics::write_outputs(const OutputContext& ctx) {
    write_classification_files(ctx.dir, ctx.split, names_, confusion_, items_);
}

std::vector<std::string> ClassificationMetrics::predictions() {
    std::vector<std::string> out;
    out.reserve(items_.size());
    for (const auto& [item, it] : items_) out.push_back(it.predicted);
    return out;
}

void ClassificationMetrics::save_run_state(StageState& state) const {
    state.put_text("split", split_);
    state.put_text("total", std::to_string(total_));
    state.put_text("next_item", std::to_string(next_item_));
    std::string counts;
    for (const auto& row : confusion_)
        for (const auto c : row) {
            if (!counts.empty()) counts += ' ';
            counts += std::to_string(c);
        }
    state.put_text("confusion", counts);
}

void ClassificationMetrics::load_run_state(const StageState& state) {
    auto integer = [&](const char* name) -> std::int64_t {
        const std::string* t = state.text(name);
        RNNFLOW_CHECK(t != nullptr, "classification_metrics: saved state has no '", name, "'");
        std::int64_t v = -1;
        const auto r = std::from_chars(t->data(), t->data() + t->size(), v);
        RNNFLOW_CHECK(r.ec == std::errc() && r.ptr == t->data() + t->size() && v >= 0,
                      "classification_metrics: saved '", name, "' is not a count: ", *t);
        return v;
    };
    if (const std::string* s = state.text("split")) split_ = *s;
    total_ = integer("total");
    next_item_ = integer("next_item");
    const std::string* counts = state.text("confusion");
    RNNFLOW_CHECK(counts != nullptr, "classification_metrics: saved state has no 'confusion'");
    std::istringstream is(*counts);
    for (auto& row : confusion_)
        for (auto& c : row)
            RNNFLOW_CHECK(static_cast<bool>(is >> c), "classification_metrics: saved confusion counts do not fit ",
                          names_.size(), " classes");
    std::string rest;
    RNNFLOW_CHECK(!(is >> rest), "classification_metrics: saved confusion counts do not fit ", names_.size(), " classes");
}
}  // namespace rnnflow::stages
