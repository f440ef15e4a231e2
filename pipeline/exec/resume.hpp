// Exact resume and interrupts: the pieces the engine uses around a training run that do not need
// its internals (docs/resume.md). The numerical guards are in guards.hpp.
//
//   - interrupts: SIGINT/SIGTERM handlers that set a flag the engine reads between steps;
//   - RunPosition: where a run stands (epoch, batches done, the pass's running totals, the rows
//     recorded so far, the best value), stored in a checkpoint's metadata;
//   - stage run state (Stage::save_run_state) stored as checkpoint tensors and metadata;
//   - checks that a resume continues the same experiment on the same data;
//   - fault injection for tests (RNNFLOW_FAULT).
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/stage.hpp"
#include "engine.hpp"
#include "../core/safetensors.hpp"

namespace rnnflow {

// ---------------------------------------------------------------------------------------------
// Interrupts. The program (not the library) installs the handlers: the first SIGINT or SIGTERM
// sets a flag that the engine checks after every step — it then finishes the step, writes a
// checkpoint and throws Interrupted; a second one ends the process at once with status
// 128 + signal. Files are written atomically, so the run folder is consistent either way.
void install_interrupt_handlers();
// The pending signal (SIGINT, SIGTERM), or 0.
int interrupt_signal();
// Act as if `sig` had arrived (sweeps, tests); 0 clears.
void request_interrupt(int sig);

// What the engine throws once it has stopped on an interrupt. checkpoint(): the file written
// (empty when the run stopped before its first step).
class Interrupted : public Error {
public:
    Interrupted(int sig, const std::string& where, std::filesystem::path checkpoint);
    int signal() const { return sig_; }
    const std::filesystem::path& checkpoint() const { return checkpoint_; }

private:
    int sig_;
    std::filesystem::path checkpoint_;
};

// ---------------------------------------------------------------------------------------------
// Fault injection for the kill-and-resume tests, from the environment variable RNNFLOW_FAULT
// (read once) or set_fault():
//   kill@batch:N        SIGKILL after the N-th training step of this process
//   kill@checkpoint:N   SIGKILL halfway through writing the N-th checkpoint file
//   interrupt@batch:N   behave as if SIGINT arrived during the N-th training step
//   interrupt@eval:N    ... during the N-th evaluation step (validation or test)
// Unset: no cost beyond a counter.
void set_fault(const std::string& spec);
void fault_after_step(bool training);
// kill@checkpoint: for *.safetensors files; the Engine installs it as write_file_atomic's
// mid-write hook (set_mid_write_hook, data.hpp).
void fault_in_checkpoint_write(const std::filesystem::path& file);

// ---------------------------------------------------------------------------------------------
// Running totals of one pass (the engine's, not the metric stages').
struct PassTotals {
    double loss_sum = 0, loss_count = 0, grad_norm_sum = 0, seconds = 0;
    std::int64_t steps = 0;    // batches done (skipped ones included)
    std::int64_t items = 0;
    std::int64_t skipped = 0;  // train.nonfinite: skip_batch
};

// Where a run stands, as a checkpoint records it.
struct RunPosition {
    std::int64_t epoch = 0;       // 0-based epoch in progress (= epochs complete)
    PassTotals pass;              // its training pass so far (pass.steps batches done; all of
                                  // them when the run stopped during validation)
    std::int64_t train_batches = -1;  // batches the training split gave per pass (data check)
    std::int64_t skipped_in_row = 0;
    double best = std::numeric_limits<double>::quiet_NaN();  // train.keep's best value so far
    double train_seconds = 0;
    std::int64_t train_items = 0;
    std::vector<MetricsRow> rows;     // every row recorded so far, in order
    std::int64_t samples_bytes = 0;   // size of samples.txt
    int threads = 0;

    void write(std::map<std::string, std::string>& metadata) const;
    // Throws Error naming `where` when the metadata has no position or a bad one.
    static RunPosition read(const std::map<std::string, std::string>& metadata, const std::string& where);
    std::string describe() const;  // "epoch 3, after batch 120"
};

// MetricsRow lists as text (one row a line, exact numbers) and back.
std::string encode_metric_rows(const std::vector<MetricsRow>& rows);
std::vector<MetricsRow> decode_metric_rows(const std::string& text, const std::string& where);

// A stage's run state in a checkpoint: tensors "resume/<stage>/<name>" and metadata
// "resume/<stage>/<name>" (stage ids have no '/', so no parameter is ever named so).
void put_stage_state(TensorFile& tf, const std::string& stage, const StageState& state);
std::map<std::string, StageState> stage_states(const TensorFile& tf);

// ---------------------------------------------------------------------------------------------
// Resume checks.
// Every file under RUN_DIR/state (fitted data state such as vocab.tsv), by relative path.
std::map<std::string, std::string> read_state_files(const std::filesystem::path& run_dir);
// After a resumed run's prepare refitted its data: every file must be as before. A changed one
// gets its old content back and the resume is refused (the data changed since the run started).
void check_state_files(const std::filesystem::path& run_dir, const std::map<std::string, std::string>& before);
// The graph being resumed must be the run's own: compare resolved texts, naming the first
// differing line.
void check_same_graph(const std::string& resolved_now, const std::string& resolved_run,
                      const std::filesystem::path& run_dir);

}  // namespace rnnflow
