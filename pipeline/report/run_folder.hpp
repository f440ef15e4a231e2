// Reading what `rnnflow run` and `rnnflow sweep` leave on disk, for reports and comparisons:
// CSV tables, a run's metrics rows, a resolved graph flattened to `--set` paths.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "pipeline/exec/engine.hpp"

namespace rnnflow::report {

struct CsvTable {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;  // each as long as the header (padded)
    int column(const std::string& name) const;   // -1 when absent
};
// RFC 4180 CSV (quoted fields, doubled quotes, newlines inside quotes). Throws rnnflow::Error
// naming the file when it cannot be read.
CsvTable read_csv(const std::filesystem::path& file);

// A run's metrics.csv as rows (empty cells are absent values). Throws when it is missing.
std::vector<MetricsRow> read_metrics(const std::filesystem::path& run_dir);

// The scalar values of a YAML file by key path, as `--set` writes them: `stages.rnn.hidden`
// becomes `rnn.hidden`, `train.epochs` stays; list items are `path[i]`. Throws on a bad file.
std::map<std::string, std::string> flatten_yaml(const std::filesystem::path& file);

// Whole text of a file, at most `limit` bytes; `truncated` tells whether there was more.
std::string read_text(const std::filesystem::path& file, std::size_t limit = std::string::npos,
                      bool* truncated = nullptr);

// "wall time: 31.2 s" and "training throughput: 36000 items/s" from RUN_DIR/summary.txt (NaN
// when absent).
std::pair<double, double> summary_figures(const std::filesystem::path& run_dir);

// Rows of cells as text columns padded to their widest cell (UTF-8 aware), two spaces apart.
std::string aligned_columns(const std::vector<std::vector<std::string>>& rows);

bool is_sweep_dir(const std::filesystem::path& dir);  // sweep.db or results.csv + trials.csv
bool is_run_dir(const std::filesystem::path& dir);    // resolved.yaml or metrics.csv

}  // namespace rnnflow::report
