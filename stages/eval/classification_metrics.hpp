// classification_metrics: accuracy, per-class precision / recall / F1 / accuracy, macro-F1 and
// the confusion matrix of class scores against label ids; predictions in input order.
//
//   logits  tensor f32 (1, N, K) (one label per sentence) or (T, N, K) (one per token) + lengths
//   labels  ids    i32 (1, N) or (T, N) + lengths; K = its vocabulary (the label names). A
//                  position counts when t < labels length(n): padding is never counted. In a
//                  prediction run (labels of length 0) nothing is counted.
// predicted = argmax_k logits[t, n, k] (the first of equal maxima).
// Metrics over a pass (counts c[g][p]: gold g predicted p, over counted positions):
//   ""             accuracy = Σ_k c[k][k] / Σ c (token accuracy for tagging), higher is better
//   macro_f1       mean over classes of F1_k, classes with no gold and no predicted position
//                  left out of the mean
//   precision.<k>  c[k][k] / Σ_g c[g][k] (0 when nothing was predicted k)
//   recall.<k>     c[k][k] / Σ_p c[k][p] (0 when k never occurs)
//   f1.<k>         2PR / (P + R) (0 when P + R = 0)
//   accuracy.<k>   one-vs-rest accuracy of class k: (positions labelled k and predicted k, plus
//                  those neither labelled nor predicted k) / Σ c
//   (per-class metrics with per_class: true; <k> is the label text)
// write_outputs (evaluation passes): SPLIT.confusion.tsv (rows gold, columns predicted, label
// names in the first row and column), SPLIT.confusion.png (the same as an annotated heatmap, for
// up to kMaxPlotClasses classes: beyond that the cells are too small to read) and
// SPLIT.predictions.tsv (item, gold, predicted, in item order; tags space-separated for tagging;
// with one label per item also p.<label>: the softmax of the item's logits per class, the
// shortest text that reads back as the same float; `rnnflow ensemble` averages them).
// Prediction runs (predicts() is true): one line per item, the label, or the tags of its valid
// steps (logits lengths) joined by spaces, in item order (StepInfo::item_ids).
// Not supported: top-k accuracy, multi-label scores, micro/weighted F1 (micro-F1 = accuracy here),
// thresholds on probabilities.
#pragma once

#include <filesystem>
#include <map>
#include <memory>

#include "pipeline/core/metric_name.hpp"
#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

// The metrics above from confusion counts [gold][predicted] over `names` (K x K); throws when
// nothing was counted. Shared by the stage and `rnnflow ensemble`.
std::vector<MetricValue> classification_scores(const std::vector<std::vector<std::int64_t>>& confusion,
                                               const std::vector<std::string>& names, bool per_class);

// One item of a pass: its gold and predicted text, and class probabilities (empty for tagging).
struct ClassifiedItem {
    std::string gold, predicted;
    std::vector<float> probs;
};

// SPLIT.confusion.tsv, SPLIT.confusion.png and SPLIT.predictions.tsv (see above) into `dir`.
// The p.<label> columns are written when every item has K probabilities.
void write_classification_files(const std::filesystem::path& dir, const std::string& split,
                                const std::vector<std::string>& names,
                                const std::vector<std::vector<std::int64_t>>& confusion,
                                const std::map<std::int64_t, ClassifiedItem>& items);

class ClassificationMetrics final : public MetricStage, public MainMetricName {
public:
    std::string main_metric_name() const override { return "accuracy"; }  // what <id> is, for people
    static StageSchema schema();
    explicit ClassificationMetrics(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void begin(const std::string& split) override;
    void accumulate(const Inputs& in, const StepInfo& step) override;
    std::vector<MetricValue> end() override;
    void write_outputs(const OutputContext& ctx) override;
    bool predicts() const override { return true; }
    std::vector<std::string> predictions() override;
    // Resume mid-pass (docs/resume.md): the confusion counts and item numbering of the pass.
    // The per-item texts are not kept: only evaluation passes write them, and checkpoints fall
    // in training passes.
    void save_run_state(StageState& state) const override;
    void load_run_state(const StageState& state) override;

    // The confusion counts of the last pass: [gold][predicted].
    const std::vector<std::vector<std::int64_t>>& confusion() const { return confusion_; }

    static constexpr std::size_t kMaxPlotClasses = 60;

private:
    bool per_class_;
    std::vector<std::string> names_;  // label text per id
    std::string split_;
    std::vector<std::vector<std::int64_t>> confusion_;
    std::int64_t total_ = 0;
    std::int64_t next_item_ = 0;  // item numbers when a batch gives no item ids
    std::map<std::int64_t, ClassifiedItem> items_;
    std::string label_name(std::int64_t k) const;
};

}  // namespace rnnflow::stages
