// `rnnflow compare RUN_A RUN_B ...`: runs side by side — a table of their final and best
// metrics, one plot of their validation curves, and where their resolved configurations differ.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/exec/engine.hpp"

namespace rnnflow::report {

struct ComparedRun {
    std::filesystem::path dir;
    std::string name;        // the folder's name (with its parent's when two runs share one)
    std::string experiment;  // from resolved.yaml
    std::vector<MetricsRow> rows;  // empty for a run that failed before its first pass
    std::string state;             // status.json's: finished, failed, interrupted, running; unknown without one
};

struct Comparison {
    std::vector<ComparedRun> runs;
    std::string metric;               // compared: the first run's main metric, if every run has it, else loss
    std::string split;                // the evaluation split of the curves: valid (else the first non-train)
    std::optional<bool> minimize;     // unknown for a metric whose name does not tell
    std::vector<std::string> header;  // the table: one row per run
    std::vector<std::vector<std::string>> table;
    // resolved.yaml paths (as --set writes them) whose values differ: path, then one value per
    // run ("" when the run has no such key).
    std::vector<std::vector<std::string>> config_diff;
};

// Reads the runs (each needs metrics.csv or status.json; resolved.yaml for the configuration);
// the table's last column is each run's state, so a failed or interrupted run stands out. Throws
// rnnflow::Error naming the folder that is not a run.
Comparison compare_runs(const std::vector<std::filesystem::path>& run_dirs);

// The comparison as aligned text: the table, then the configuration differences.
std::string comparison_text(const Comparison& c);

// One line per run: `metric` on `split` per epoch. Throws rnnflow::Error naming the file.
void write_comparison_plot(const Comparison& c, const std::filesystem::path& file);

}  // namespace rnnflow::report
