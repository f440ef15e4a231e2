// entity_metrics: chunk (named-entity) precision / recall / F1 as conlleval computes them, and
// token accuracy, from per-token tag scores against gold tag ids; predictions in CoNLL columns.
//
//   logits  tensor f32 (T, N, K) + lengths: tag scores per token
//   labels  ids    i32 (T, N) + lengths; K = its vocabulary (the tag names). In a prediction run
//                  (labels of length 0) nothing is counted.
//   words   tokens the reader's words per split (conll_columns' words), for the predictions file
//                  and printed entities; item k of a split is its k-th sentence
// predicted tag = argmax_k logits[t, n, k] (the first of equal maxima). Both tag sequences of a
// sentence are first written in `file_scheme` (pipeline/core/tag_scheme.hpp: chunks by
// conlleval's rules, re-encoded; chunks do not change), as conlleval would read them from the
// predictions file. Then, over a pass (conlleval's counting):
//   gold chunks G, found (predicted) chunks F, correct C = predicted chunks whose start, end and
//   type all equal a gold chunk's (a boundary error is one false positive and one false negative)
//   ""            FB1 = 2PR / (P + R) (0 when P + R = 0), P = C / F (0 when F = 0), R = C / G
//                 (0 when G = 0); fractions in [0, 1] (conlleval prints percentages)
//   precision, recall   P and R overall
//   accuracy      tokens whose predicted tag equals the gold tag (in file_scheme) / tokens
//   precision.<T>, recall.<T>, f1.<T>   the same per chunk type T (with per_type: true)
// write_outputs (evaluation passes): SPLIT.predictions.conll (a line "word gold predicted" per
// token, space-separated, a blank line after each sentence, sentences in item order: the input
// conlleval reads) and SPLIT.conlleval.txt (conlleval's report, percentages to two decimals).
// Prediction runs: one line per sentence with its predicted chunks in brackets,
// "[PER Jim Henson] visited [LOC Paris]".
// Ref: conlleval.pl (CoNLL-2000 shared task, Tjong Kim Sang); its rules and limits are in
// tag_scheme.hpp. Not supported: conlleval's raw mode (-r), per-type accuracy, the CRF's Viterbi
// decoding (a later `crf` stage decodes by itself).
#pragma once

#include <filesystem>
#include <map>

#include "pipeline/core/metric_name.hpp"
#include "pipeline/core/stage.hpp"
#include "pipeline/core/tag_scheme.hpp"

namespace rnnflow::stages {

// conlleval's counts over sentences, overall and per chunk type.
struct ChunkCounts {
    struct Count {
        std::int64_t gold = 0, found = 0, correct = 0;
    };
    Count all;
    std::map<std::string, Count> by_type;
    std::int64_t tokens = 0, correct_tokens = 0;

    // One sentence's gold and predicted tags (equal lengths).
    void add(const std::vector<std::string>& gold, const std::vector<std::string>& predicted);
    // The metrics above; per_type adds precision.<T>, recall.<T>, f1.<T>.
    std::vector<MetricValue> scores(bool per_type) const;
    // conlleval's report, line for line.
    std::string conlleval_report() const;
};

class EntityMetrics final : public MetricStage, public MainMetricName {
public:
    std::string main_metric_name() const override { return "f1"; }
    static StageSchema schema();
    explicit EntityMetrics(const Params& p);

    void prepare(PrepareContext& ctx) override;
    void begin(const std::string& split) override;
    void accumulate(const Inputs& in, const StepInfo& step) override;
    std::vector<MetricValue> end() override;
    void write_outputs(const OutputContext& ctx) override;
    bool predicts() const override { return true; }
    std::vector<std::string> predictions() override;
    // Resume mid-pass: the counts and item numbering of the pass (docs/resume.md).
    void save_run_state(StageState& state) const override;
    void load_run_state(const StageState& state) override;

    const ChunkCounts& counts() const { return counts_; }

private:
    struct Sentence {
        std::vector<std::string> gold, predicted;  // in file_scheme; gold empty in prediction runs
    };
    const std::vector<std::string>& words_of(std::int64_t item) const;

    bool per_type_;
    std::optional<TagScheme> file_scheme_;  // nullopt: tags as the labels' vocabulary has them
    std::vector<std::string> names_;        // tag text per id
    std::map<std::string, std::shared_ptr<const TokenSplit>> words_;  // per split
    std::string split_;
    ChunkCounts counts_;
    std::int64_t next_item_ = 0;
    std::map<std::int64_t, Sentence> items_;
};

}  // namespace rnnflow::stages
