// Per-class values of an evaluation pass, as one table instead of dozens of key=value pairs.
//
// A metric stage reports a class's values under keys "<stage>.<measure>.<class>" (measure
// precision, recall, f1 or accuracy: classification_metrics, entity_metrics). The run folder gets
// them as SPLIT.per_class.tsv (MetricsLog::write_summary), one row per stage and class:
//   stage  class  support  precision  recall  f1  accuracy
// with every digit (format_number); a value the stage does not report is an empty cell. support
// (the gold count) comes from the stage's RUN_DIR/<stage>/SPLIT.confusion.tsv when it wrote one
// (classification_metrics: the row sums), else it is empty.
#pragma once

#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "engine.hpp"

namespace rnnflow {

struct PerClassRow {
    std::string stage, cls;
    double support = std::numeric_limits<double>::quiet_NaN();
    double precision = std::numeric_limits<double>::quiet_NaN();
    double recall = std::numeric_limits<double>::quiet_NaN();
    double f1 = std::numeric_limits<double>::quiet_NaN();
    double accuracy = std::numeric_limits<double>::quiet_NaN();
};

// "acc.f1.NOUN": a stage, a measure and a class — too many to print on a line.
bool is_per_class_key(const std::string& key);

// The per-class rows of `row`, in the order the row first names each stage and class; support
// from `run_dir` (empty: none).
std::vector<PerClassRow> per_class_rows(const MetricsRow& row, const std::filesystem::path& run_dir = {});

// The table as SPLIT.per_class.tsv holds it (header included).
std::string per_class_tsv(const std::vector<PerClassRow>& rows);

}  // namespace rnnflow
