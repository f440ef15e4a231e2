#include "classification_metrics.hpp"

#include <sstream>

#include "pipeline/report/plot.hpp"

namespace rnnflow::stages {

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
                 "SPLIT.confusion.png and SPLIT.predictions.tsv into RUN_DIR/<stage>/ after evaluation passes; predicts "
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
        std::string gold_text, pred_text;
        for (std::int64_t t = 0; t < steps && t < T; ++t) {
            const float* row = s + (t * N + n) * K;
            std::int64_t best = 0;
            for (std::int64_t k = 1; k < K; ++k)
                if (row[k] > row[best]) best = k;
            if (!pred_text.empty()) pred_text += ' ';
            pred_text += label_name(best);
            if (any_gold) {
                const std::int32_t gk = g[t * N + n];
                RNNFLOW_CHECK(gk >= 0 && gk < K, "classification_metrics: label id ", gk, " at step ", t,
                              ", column ", n, " is outside [0, ", K, ")");
                ++confusion_[static_cast<std::size_t>(gk)][static_cast<std::size_t>(best)];
                ++total_;
                if (!gold_text.empty()) gold_text += ' ';
                gold_text += label_name(gk);
            }
        }
        items_[item] = {std::move(gold_text), std::move(pred_text)};
    }
}

std::vector<MetricValue> ClassificationMetrics::end() {
    if (split_ == "infer") return {};
    RNNFLOW_CHECK(total_ > 0, "classification_metrics: nothing was scored in split '", split_,
                  "' (no labelled positions); is the split empty or without labels?");
    const std::size_t K = names_.size();
    std::int64_t correct = 0;
    for (std::size_t k = 0; k < K; ++k) correct += confusion_[k][k];
    std::vector<MetricValue> out;
    out.push_back({"", static_cast<double>(correct) / static_cast<double>(total_), true});
    std::vector<MetricValue> per;
    double f1_sum = 0;
    std::int64_t f1_classes = 0;
    for (std::size_t k = 0; k < K; ++k) {
        std::int64_t gold = 0, pred = 0;
        for (std::size_t j = 0; j < K; ++j) {
            gold += confusion_[k][j];
            pred += confusion_[j][k];
        }
        const double tp = static_cast<double>(confusion_[k][k]);
        const double p = pred > 0 ? tp / static_cast<double>(pred) : 0.0;
        const double r = gold > 0 ? tp / static_cast<double>(gold) : 0.0;
        const double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
        // One-vs-rest: right about k (tp) plus right about not-k (neither gold nor predicted k).
        const double tn = static_cast<double>(total_ - gold - pred) + tp;
        const double acc = (tp + tn) / static_cast<double>(total_);
        if (gold > 0 || pred > 0) {
            f1_sum += f1;
            ++f1_classes;
        }
        if (per_class_) {
            const std::string& name = names_[k];
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

namespace {
// Tabs and line breaks would break the TSV columns.
std::string tsv_field(const std::string& s) {
    std::string out;
    for (char c : s) out += (c == '\t' || c == '\n' || c == '\r') ? ' ' : c;
    return out;
}
}  // namespace

void ClassificationMetrics::write_outputs(const OutputContext& ctx) {
    std::ostringstream cm;
    cm << "gold\\predicted";
    for (const auto& name : names_) cm << '\t' << tsv_field(name);
    cm << '\n';
    for (std::size_t g = 0; g < names_.size(); ++g) {
        cm << tsv_field(names_[g]);
        for (std::size_t p = 0; p < names_.size(); ++p) cm << '\t' << confusion_[g][p];
        cm << '\n';
    }
    write_file_atomic(ctx.dir / (ctx.split + ".confusion.tsv"), cm.str());
    // The image after the table, so a plotting failure leaves the numbers written.
    if (names_.size() <= kMaxPlotClasses) {
        plot::Heatmap map;
        map.title = ctx.split + " confusion (rows gold, columns predicted)";
        map.x_label = "predicted";
        map.y_label = "gold";
        map.col_labels = map.row_labels = names_;
        map.rows = map.cols = static_cast<std::int64_t>(names_.size());
        for (const auto& row : confusion_)
            for (std::int64_t c : row) map.values.push_back(static_cast<double>(c));
        map.annotate = true;
        plot::write_png(map, ctx.dir / (ctx.split + ".confusion.png"));
    }

    std::ostringstream pr;
    pr << "item\tgold\tpredicted\n";
    for (const auto& [item, gp] : items_) pr << item << '\t' << tsv_field(gp.first) << '\t' << tsv_field(gp.second) << '\n';
    write_file_atomic(ctx.dir / (ctx.split + ".predictions.tsv"), pr.str());
}

std::vector<std::string> ClassificationMetrics::predictions() {
    std::vector<std::string> out;
    out.reserve(items_.size());
    for (const auto& [item, gp] : items_) out.push_back(gp.second);
    return out;
}

}  // namespace rnnflow::stages
