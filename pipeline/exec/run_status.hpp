// Where a run stands, and what it came to, in a few numbers a person reads first.
//
// status.json, in every run folder the engine trains in (fit mode), written atomically when the
// run starts, after each epoch and when it ends:
//   {"state": "running" | "finished" | "failed" | "interrupted",
//    "experiment": ..., "started": "2026-12-07T23:04:46Z", "ended": ... (absent while running),
//    "epochs_done": 3, "epochs": 10,
//    "error": "..." (failed and interrupted: what stopped it),
//    "resume_command": "rnnflow run --resume ..." (interrupted, or failed after a checkpoint),
//    "metric": "acc", "metric_label": "acc.accuracy", "higher_is_better": true,
//    "valid_split": "valid", "best_valid": 0.93, "best_epoch": 3, "test": 0.91, "test_loss": 0.3,
//    "seconds": 12.3, "items_per_second": 3400, "parameters": 123456, "kept_checkpoint": "...",
//    "pid": 4242, "host": "node1"}
// Numbers not known yet are absent. `report`, `compare` and `runs` read it (read_run_status); a
// folder without one (a run of an older rnnflow) reads as state "unknown".
//
// The headline (Headline, headline_lines): the main metric on test with the kept checkpoint,
// the best validation value and its epoch, the test loss, wall time and throughput, the number of
// trainable parameters — the terminal's final lines, the top of summary.txt and of report.html.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "engine.hpp"

namespace rnnflow {

struct Headline {
    std::string metric;             // its key in metrics.jsonl ("acc", "ppl"); "loss" when no stage has one
    std::string label;              // for people ("acc.accuracy"); the key when it has none
    bool higher_is_better = false;
    std::string valid_split = "valid";
    double best_valid = std::numeric_limits<double>::quiet_NaN();
    std::int64_t best_epoch = 0;    // 1-based; 0: no validation yet
    double test = std::numeric_limits<double>::quiet_NaN();       // the final test pass (epoch 0)
    double test_loss = std::numeric_limits<double>::quiet_NaN();
    double seconds = std::numeric_limits<double>::quiet_NaN();    // wall time of the run
    double items_per_second = std::numeric_limits<double>::quiet_NaN();  // in training
    std::int64_t parameters = -1;   // trainable; -1 unknown
    std::string kept_checkpoint;
};

// The headline of `rows` as far as they go: `metric` on `valid_split` (best by
// `higher_is_better`) and on the final test row; the caller fills in time, parameters and the
// checkpoint.
Headline make_headline(const std::vector<MetricsRow>& rows, const std::string& metric, const std::string& label,
                       bool higher_is_better, const std::string& valid_split);

// The few lines people read first (terminal, summary.txt), e.g.
//   test acc.accuracy: 0.9123 (kept checkpoint best.safetensors)
//   best valid acc.accuracy: 0.93 at epoch 3
//   test loss: 0.3012
//   wall time: 12.3 s
//   training throughput: 3400 items/s
//   parameters: 123456
// A value not known is left out. summary.txt keeps the "wall time: " and "training throughput: "
// lines as they were (tools read them).
std::vector<std::string> headline_lines(const Headline& h);
// All of it on one line, for `rnnflow run --quiet --headline` (parts not known left out):
//   "test: acc.accuracy=0.9123 loss=0.3012 | best valid acc.accuracy=0.93 at epoch 3 | done in 12.3 s,
//    3400 items/s | 123456 parameters"
std::string headline_line(const Headline& h);

struct RunStatus {
    std::string state = "running";  // running | finished | failed | interrupted ("unknown": no status.json)
    std::string experiment;
    std::string started, ended;     // UTC, ISO 8601; `ended` empty while running
    std::int64_t epochs_done = 0, epochs = 0;
    std::string error;
    std::string resume_command;
    Headline headline;
    std::int64_t pid = -1;          // the process that writes the file, and its machine
    std::string host;
};

// A run that says "running" but whose process is gone (killed with SIGKILL, out of memory, the
// machine stopped): its state for people is "killed". Only decidable on the run's own machine;
// elsewhere, or while the process lives, false.
bool run_process_gone(const RunStatus& status);

// Now, as status.json writes times: "2026-12-07T23:04:46Z".
std::string utc_now();
// status.json as above, written atomically into `run_dir`.
void write_run_status(const std::filesystem::path& run_dir, const RunStatus& status);
// The status of a run folder: nullopt when it has no status.json; throws rnnflow::Error naming
// the file when it cannot be read or is not a status file.
std::optional<RunStatus> read_run_status(const std::filesystem::path& run_dir);

// The status.json of one engine's run; every call writes the file (none before start(), and
// none at all without a run folder).
class RunStatusFile {
public:
    // The run starts (state running). A resumed run keeps the start time its file recorded.
    void start(const std::filesystem::path& run_dir, const std::string& experiment, std::int64_t epochs, bool resume);
    // What `failed` and `interrupted` print as the way to continue (Engine::set_resume_command).
    void set_resume_command(std::string command) { resume_command_ = std::move(command); }
    void epoch_done(std::int64_t epochs_done, const Headline& headline);
    void finished(const Headline& headline);
    // `checkpoint`: the run can continue from a checkpoint, so the resume command is recorded.
    void failed(const std::string& message, bool checkpoint);
    void interrupted(const std::string& message, bool checkpoint);

private:
    void end(const std::string& state, const std::string& message, bool checkpoint);
    void write() const;
    std::filesystem::path dir_;
    RunStatus status_;
    std::string resume_command_;
};

}  // namespace rnnflow
