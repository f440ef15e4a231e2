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
#include "pipeline/exec/metrics_log.hpp"

namespace rnnflow::report {

// Which metric a run is judged by is the metrics log's rule (the progress lines use it too).
using rnnflow::is_bookkeeping_value;
using rnnflow::main_metric;

// Writes the plots listed above (those the rows have data for) into `dir`, which is created.
// Returns the files written. Throws rnnflow::Error (naming the file) when one cannot be written.
std::vector<std::filesystem::path> write_run_plots(const std::filesystem::path& dir,
                                                   const std::vector<MetricsRow>& rows,
                                                   const std::string& main_metric_name = {});

// What the program installs as the engine's after_epoch observer (RunOptions): write_run_plots
// into run_dir/plots after each epoch, and on failure
// one warning on `log` (a plot must never stop a training run); later failures in the same
// process stay quiet (a sweep's trials would repeat it).
void update_run_plots(const std::filesystem::path& run_dir, const std::vector<MetricsRow>& rows,
                      const std::string& main_metric_name, std::ostream* log);

}  // namespace rnnflow::report
