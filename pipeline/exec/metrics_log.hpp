// The run folder's metrics: metrics.jsonl (one JSON object per pass, appended and flushed),
// metrics.csv (rewritten atomically after every row, columns = union of names seen), and
// summary.txt at the end.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine.hpp"

namespace rnnflow {

class MetricsLog {
public:
    explicit MetricsLog(std::filesystem::path run_dir);
    void append(const MetricsRow& row);
    // A resumed run: the rows its checkpoint recorded replace both files (rows written after
    // that checkpoint, by the interrupted process, are dropped).
    void restore(const std::vector<MetricsRow>& rows);
    // summary.txt, for people: the headline (run_status.hpp: headline_lines, one per line), the
    // kept checkpoint, a line per label saying which key it is in metrics.jsonl and metrics.csv,
    // then a line per pass (final test first) without the per-class values; those go to
    // SPLIT.per_class.tsv (per_class.hpp) for the final test and the last pass over each other
    // evaluation split. Values by format_metric, main metrics by their labels.
    void write_summary(const std::vector<MetricsRow>& rows, const std::string& headline,
                       const std::string& kept_checkpoint, const MetricLabels& labels = {});

private:
    void write_csv() const;
    std::filesystem::path dir_;
    std::vector<MetricsRow> rows_;
};

std::string format_number(double v);  // shortest text that reads back the same double

// A metric value for people (the terminal, summary.txt), one rule for every value: 4 significant
// digits, but every digit of the integer part (36012, not 3.601e+04), trailing zeros dropped,
// and no exponent from 0.0001 up: 33.41, 0.9125, 119.4, 100, 0.0003, 1e-05. metrics.jsonl and
// metrics.csv keep every digit (format_number).
std::string format_metric(double v);
// The name people read for a row's key: its label if it has one (Engine::metric_labels), else
// the key.
const std::string& metric_label(const std::string& key, const MetricLabels& labels);
// " name=value" for each value of the row that `keep` accepts (every one when `keep` is empty),
// names by metric_label, values by format_metric.
std::string metrics_text(const MetricsRow& row, const MetricLabels& labels,
                         const std::function<bool(const std::string& key)>& keep = {});
// A JSON value for a double: the number, or a quoted "NaN"/"Infinity" (JSON has neither).
std::string json_number(double v);

// Values every pass row carries that are not a stage's metric (lr, grad_norm, seconds, ...).
bool is_bookkeeping_value(const std::string& name);

// The metric a run is judged by: `preferred` if rows have it (train.keep's metric), else the
// first metric name in the rows that is not loss or bookkeeping; "" when there is none.
std::string main_metric(const std::vector<MetricsRow>& rows, const std::string& preferred = {});

}  // namespace rnnflow
