// `rnnflow ensemble`: several trained classifiers as one, by averaging their class probabilities.
//
// Input: the SPLIT.predictions.tsv files that classification_metrics writes (columns item, gold,
// predicted, p.<label>...), one per member run. Every member must have scored the same items
// with the same gold labels and the same label set (columns may come in any order: they are
// matched by name). Per item the ensemble probability is the mean of the members' (weights: all
// equal), the prediction its argmax (the first of equal maxima, in the first member's column
// order), and the metrics those of classification_metrics on the resulting confusion counts.
// Not supported: per-token (tagging) predictions, weighted members, majority voting, ensembling
// inside one model's search (translation beams).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "stages/eval/classification_metrics.hpp"

namespace rnnflow::stages {

// One member's file, read and checked.
struct PredictionTable {
    std::filesystem::path file;
    std::vector<std::string> labels;                   // the p.<label> columns, in file order
    std::map<std::int64_t, ClassifiedItem> items;      // probs in `labels` order
};

// Reads a predictions file; errors name the file and line (a missing p.<label> column says how to
// write one: `rnnflow eval`).
PredictionTable read_prediction_table(const std::filesystem::path& file);

struct EnsembleResult {
    std::vector<std::string> labels;                   // the first member's order
    std::map<std::int64_t, ClassifiedItem> items;      // averaged probabilities, predicted label
    std::vector<std::vector<std::int64_t>> confusion;  // [gold][predicted]
    std::vector<MetricValue> metrics;                  // classification_scores of `confusion`
    std::vector<double> member_accuracy;               // each member's own accuracy, for comparison
};

// The ensemble of two or more members; errors name the member whose items, gold labels or label
// set differ from the first member's.
EnsembleResult ensemble_tables(const std::vector<PredictionTable>& members, bool per_class = true);

}  // namespace rnnflow::stages
