// Running a sweep: the coordinator (trial queue, sweep state, early stopping, progress), one
// trial on the calling thread, the local driver (K trials at once, each on its own thread with
// its own Engine and OpenMP team), and the exports (results table, best configuration, plot data).
//
// The coordinator's methods are thread-safe and are all an MPI driver needs: rank 0 calls them
// for its own threads and on behalf of other ranks (cli/mpi.cpp).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <ostream>
#include <string>
#include <vector>

#include "../core/registry.hpp"
#include "../exec/engine.hpp"
#include "../exec/progress.hpp"
#include "scheduler.hpp"
#include "spec.hpp"
#include "state.hpp"

namespace rnnflow {

// What a worker needs to run one trial (also sent to other MPI ranks as text).
struct TrialTask {
    int id = 0;
    std::filesystem::path graph;
    std::vector<std::string> overrides;
    std::filesystem::path run_dir;
    // An interrupted trial: continue from its run folder's last checkpoint when it has a usable
    // one (docs/resume.md), else start again.
    bool resume = false;
};

struct TrialOutcome {
    std::string status = "failed";      // done | pruned | failed | interrupted (SIGINT/SIGTERM:
                                        // checkpointed, left running for --resume)
    std::string error;
    double seconds = 0;
    std::vector<MetricsRow> final_rows; // the test evaluation (epoch 0), if any
};

// Text forms for messages between ranks (tab- and newline-separated; values in no text contain
// either, except errors, which go last).
std::string encode_task(const TrialTask& t);
TrialTask decode_task(const std::string& s);
std::string encode_rows(const std::vector<MetricsRow>& rows);
std::vector<MetricsRow> decode_rows(const std::string& s);
std::string encode_outcome(const TrialOutcome& o);
TrialOutcome decode_outcome(const std::string& s);

// Train one trial on the calling thread: load the graph with the trial's overrides, run it in
// its own run folder with `threads` oneDNN threads and a one-thread graph arena (resumed from its
// checkpoint when task.resume and the folder has one). Never throws: any failure is the
// outcome's error.
TrialOutcome run_trial(const TrialTask& task, int threads, const Registry& registry,
                       const std::function<bool(const MetricsRow& train, const MetricsRow& valid)>& on_epoch);

struct SweepSummary {
    int done = 0, pruned = 0, failed = 0, pending = 0;
    std::optional<int> best_trial;
    std::optional<double> best_mean, best_std;
    std::vector<std::filesystem::path> files;  // what the export wrote
};

class Sweep {
public:
    // Opens (or creates) <dir>/sweep.db and registers the spec's trials. With resume = false a
    // folder that already holds trials is refused; with resume = true, finished trials are kept,
    // interrupted ones continue from their last checkpoint (or start again without one), and
    // failed ones run again from scratch when retry_failed.
    Sweep(SweepSpec spec, std::filesystem::path dir, bool resume, bool retry_failed,
          std::ostream* log = nullptr);
    ~Sweep();

    const SweepSpec& spec() const { return spec_; }
    const std::filesystem::path& dir() const { return dir_; }
    int total() const { return static_cast<int>(ids_.size()); }
    int queued() const;
    int interrupted() const;  // trials stopped by an interrupt in this process

    // Claim the next pending trial (marked running), or nothing when none is left or the
    // process was interrupted (SIGINT/SIGTERM).
    std::optional<TrialTask> next(const std::string& worker);
    // Record an epoch's metrics; false: the early-stopping rule stops the trial.
    bool report_epoch(int id, const MetricsRow& train, const MetricsRow& valid);
    void finish(int id, const TrialOutcome& outcome);

    // Progress on `log` as plain event lines (the default), as a bar redrawn in place under the
    // event lines (style.bar: a terminal), or as JSON lines (style.format "json").
    void set_progress_style(const ProgressStyle& style);
    // Clears the bar once the trials are over.
    void end_progress();

    // Run every pending trial here: `parallel` threads, each trial with `threads` oneDNN threads.
    void run_local(int parallel, int threads, const Registry& registry);

    // results.csv, results.md, trials.csv, best.yaml, curves.csv, plot.gnuplot.
    SweepSummary export_results(const Registry& registry);

private:
    SweepSpec spec_;
    std::filesystem::path dir_;
    std::ostream* log_;
    std::unique_ptr<SweepState> state_;
    std::unique_ptr<EarlyStopper> stopper_;
    std::vector<int> ids_;          // trial ids in spec order
    std::vector<int> queue_;        // pending ids, next first
    std::set<int> interrupted_;     // ids left running by an interrupted or killed sweep
    std::size_t next_ = 0;
    int running_ = 0, done_ = 0, pruned_ = 0, failed_ = 0, finished_here_ = 0, interrupted_here_ = 0;
    std::optional<double> best_;    // best objective so far (in the metric's direction)
    int best_id_ = 0;
    std::chrono::steady_clock::time_point start_;
    mutable std::mutex mutex_;
    std::string log_format_ = "text";
    std::unique_ptr<Progress> bar_;  // a terminal: the status line under the events
    int to_run_ = 0;                 // trials queued when the sweep started here

    double objective_value(const MetricsRow& train, const MetricsRow& valid) const;
    void progress_locked(const std::string& event);
};

}  // namespace rnnflow
