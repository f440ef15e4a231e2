// `rnnflow runs [DIR ...]`: every run folder under the given folders as one table — experiment,
// start time, state, epochs done, the main metric's best validation value and its test value,
// wall time, folder — as aligned text, TSV, JSON or an HTML page linking each run's report.
//
// A run's row comes from its status.json (run_status.hpp); a folder of an older rnnflow without
// one reads as state "unknown", its numbers worked out from metrics.csv and summary.txt, and a
// "running" run whose process is gone (run_process_gone) as "killed".
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/exec/engine.hpp"
#include "pipeline/exec/run_status.hpp"

namespace rnnflow::report {

struct RunEntry {
    std::filesystem::path dir;
    RunStatus status;  // headline filled from the metrics when status.json is absent
};

// A run folder's entry, from status.json, else from `rows` (its metrics) and summary.txt;
// `keep_metric`: train.keep's metric, preferred as the main metric.
RunEntry read_run_entry(const std::filesystem::path& dir, const std::vector<MetricsRow>& rows,
                        const std::string& keep_metric);
// The same, reading the folder's metrics.csv and resolved.yaml.
RunEntry read_run_entry(const std::filesystem::path& dir);

// Every run folder (one holding status.json or resolved.yaml) under `roots` (a root may be a
// run folder itself), sweeps' trials included, in path order. Throws rnnflow::Error naming a
// root that is not a folder.
std::vector<RunEntry> find_runs(const std::vector<std::filesystem::path>& roots);

// The table's columns, as --sort names them.
const std::vector<std::string>& runs_columns();

struct RunsTable {
    std::vector<std::string> header;             // runs_columns()
    std::vector<std::vector<std::string>> rows;  // one per run; "" for an unknown value
    std::vector<std::filesystem::path> dirs;     // each row's folder
};

// The entries as a table, those of `experiment` only when it is given, sorted by `sort_column`
// (numbers as numbers, empty cells last; "" keeps the start-time order), reversed on request.
// Throws rnnflow::Error for a column that does not exist, with the list.
RunsTable runs_table(const std::vector<RunEntry>& runs, const std::string& experiment = {},
                     const std::string& sort_column = {}, bool reverse = false);

std::string runs_text(const RunsTable& t);  // aligned columns, "-" for unknown
std::string runs_tsv(const RunsTable& t);   // header line, then a row per run
std::string runs_json(const RunsTable& t);  // [{"experiment": ..., "test": 0.91, ...}, ...]
// A self-contained page with the table (sortable by clicking a column), each folder a link to
// its report.html, relative to `page_dir` (the folder the page is written to). In html.cpp.
std::string runs_html(const RunsTable& t, const std::filesystem::path& page_dir);

}  // namespace rnnflow::report
