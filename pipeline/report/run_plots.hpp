// The run folder's curves, drawn from its metrics rows into RUN_DIR/plots/ after every epoch:
//   loss.png        loss per epoch, one line per split (train, valid)
//   <metric>.png    the main metric per epoch and split (train.keep's metric, else the first
//                   metric a stage reports, e.g. ppl.png)
//   lr.png          the learning rate (training rows)
//   grad_norm.png   the mean gradient norm before clipping (training rows)
// Each file is replaced atomically, so a report or an image viewer never reads half a PNG.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "pipeline/exec/engine.hpp"

namespace rnnflow::report {

// Values every pass row carries that are not a stage's metric.
bool is_bookkeeping_value(const std::string& name);

// The metric a run is judged by: `preferred` if rows have it (train.keep's metric), else the
// first metric name in the rows that is not loss or bookkeeping; "" when there is none.
std::string main_metric(const std::vector<MetricsRow>& rows, const std::string& preferred = {});

// Writes the plots listed above (those the rows have data for) into `dir`, which is created.
// Returns the files written. Throws rnnflow::Error (naming the file) when one cannot be written.
std::vector<std::filesystem::path> write_run_plots(const std::filesystem::path& dir,
                                                   const std::vector<MetricsRow>& rows,
                                                   const std::string& main_metric_name = {});

// What the engine calls after each epoch: write_run_plots into run_dir/plots, and on failure
// one warning on `log` (a plot must never stop a training run); later failures in the same
// process stay quiet (a sweep's trials would repeat it).
void update_run_plots(const std::filesystem::path& run_dir, const std::vector<MetricsRow>& rows,
                      const std::string& main_metric_name, std::ostream* log);

}  // namespace rnnflow::report
