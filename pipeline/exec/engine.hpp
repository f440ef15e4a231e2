// Runs a compiled graph: builds the stages, prepares them, and executes the phases on oneTBB
// flow graphs.
//
// Per phase a flow graph is built once:
//   input_node (the data source, runs ahead) → limiter_node (prefetch bound) → queue_node →
//   limiter_node (one step at a time) → begin → forward nodes (continue_nodes wired like the
//   stage graph, so independent branches run at once) → loss → backward nodes (wired in
//   reverse) → optimiser → end → decrements both limiters.
// Metric nodes accumulate after the forward nodes they read. Everything a step computes lives in
// buffers owned by the nodes and reused from step to step.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "../graph/graph.hpp"
#include "../core/stage.hpp"
#include "../core/safetensors.hpp"

namespace rnnflow {

struct RunPosition;  // resume.hpp

// One row of metrics: a pass over a split, or a summary.
struct MetricsRow {
    std::int64_t epoch = 0;  // 1-based; 0 for the final test evaluation
    std::string split;
    std::vector<std::pair<std::string, double>> values;  // in a stable order
    double get(const std::string& name) const;           // NaN if absent
};

// Names for people of a row's keys, where they differ from the key: the main metric of a metric
// stage that names it (MainMetricName), keyed by the stage id alone in metrics.jsonl
// ("metrics"), reads as "<stage id>.<name>" ("metrics.bleu", next to its other values
// "metrics.bleu_lc", ...), or as the name when the stage id is the name. Only the terminal and
// summary.txt use them (metrics_log.hpp).
using MetricLabels = std::map<std::string, std::string>;  // key -> label

struct RunOptions {
    std::filesystem::path run_dir;     // empty: no run folder (tests)
    int threads = 0;                   // oneDNN's OpenMP threads; 0: train.threads, or every core
    // Threads of the oneTBB arena that runs the flow graph. 1 (the default) runs every model
    // stage on the calling thread, so oneDNN keeps one warm OpenMP team: on 2 cores that trained
    // the char LM at 36k tokens/s against 22k with 2 arena threads, where two OpenMP teams (one
    // per calling thread) spin against each other. More pays off only for graphs with parallel
    // branches heavier than their oneDNN calls.
    int graph_threads = 1;
    PrepareMode mode = PrepareMode::fit;
    // Continue the run in run_dir from checkpoints/last.safetensors: weights, optimiser, stage
    // run state, epoch and data position, metrics so far (docs/resume.md). prepare() refits the
    // data and refuses a resume whose fitted state (state/) came out different.
    bool resume = false;
    std::filesystem::path restore_dir; // restore mode: the run folder to take fitted state from
    // Restore mode, prediction runs: the lines to label. Readers put out the ones that are not
    // blank (empty, or only whitespace) as split "infer" (see PrepareContext::infer_lines);
    // Engine::predict labels them and gives blank lines an empty line.
    std::optional<std::vector<std::string>> infer_lines;
    std::ostream* log = nullptr;       // progress and log lines; nullptr: silent
    bool progress_bar = false;         // redraw one line in place (a terminal); else log lines
    std::string log_format = "text";   // "text" or "json"

    // Hooks for drivers above one run (sweeps, data-parallel training).
    // After each epoch's validation: return false to stop training there (a pruned trial).
    std::function<bool(std::int64_t epoch, const MetricsRow& train, const MetricsRow& valid)> on_epoch;
    // After each epoch's rows are recorded, with every row so far and train.keep's metric: what
    // the program draws from them (the run folder's plots, report::update_run_plots). The engine
    // itself knows nothing of plotting.
    std::function<void(const std::vector<MetricsRow>& rows, const std::string& keep_metric)> after_epoch;
    // Data parallelism: this process trains on columns [n*rank/count, n*(rank+1)/count) of
    // every batch of N columns (time-major (T, N, ...) source outputs), and `reduce_gradients`
    // runs after backward, before the optimiser step, with the trainable parameters (stable
    // order) and this process's (loss sum, loss count) — e.g. an MPI_Allreduce that makes every
    // process's gradients the gradient of the combined batch.
    int shard_rank = 0;
    int shard_count = 1;
    // false: only training passes are sharded; evaluation passes (valid, test) run the whole batch
    // on every process, so each reports the metrics of the whole split (MPI data parallelism).
    bool shard_evaluation = true;
    std::function<void(const std::vector<std::pair<std::string, Param*>>& params, double loss_sum,
                       double loss_count)> reduce_gradients;
};

struct TrainResult {
    std::vector<MetricsRow> rows;
    bool stopped_early = false;    // on_epoch returned false
    std::int64_t early_stop_epoch = 0;  // train.early_stopping stopped after this epoch; 0: it did not
    double seconds = 0;
    std::int64_t train_items = 0;  // tokens seen in training
    double items_per_second = 0;
    std::string best_checkpoint;   // path, if a run folder exists
    std::int64_t parameters = 0;   // trainable parameters (numbers, not tensors)
    std::string headline;          // the few lines of summary.txt's top (run_status.hpp), one per line
    std::string headline_line;     // the same on one line
};

class Engine {
public:
    Engine(CompiledGraph graph, RunOptions options);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Construct and prepare every stage in topological order. Errors name the stage. In a run
    // folder, a failure is recorded in status.json (run_status.hpp) before it is thrown on.
    void prepare();
    // Epochs of training with validation after each; keeps last/best checkpoints; then the test
    // split (with the kept checkpoint) if the graph has one. status.json follows it: after each
    // epoch, and finished, failed or interrupted at the end.
    TrainResult train();
    // The command status.json gives for continuing this run when it is interrupted or fails after
    // a checkpoint (the program knows its own options).
    void set_resume_command(std::string command);
    // One forward pass over a split; metric values by name.
    MetricsRow evaluate(const std::string& split, std::int64_t epoch = 0);
    // Prediction run (restore mode with RunOptions::infer_lines): one pass over split "infer"
    // through the metric stages that predict (MetricStage::predicts); returns the first such
    // stage's line per input line, in input order, and an empty line for a blank input line (as
    // Marian and OpenNMT do: the output stays aligned with the input). `stage_id` picks one
    // stage when several predict.
    std::vector<std::string> predict(const std::string& stage_id = "");
    // Text from the graph's sampler stage.
    std::string generate(const SampleRequest& req);
    // `fn` with the model fed ids (T, N) of the caller's in place of the batch source's outputs,
    // as a sampler is fed: the runner returns the sampler's logits, or without a sampler the
    // tensor the minimised loss reads from a model stage (a language model's logits, (T, N, V)).
    // For `rnnflow score`.
    void run_model(const std::function<void(ModelRunner&)>& fn);

    void save_checkpoint(const std::filesystem::path& file, std::int64_t epoch) const;
    void load_checkpoint(const std::filesystem::path& file);

    const CompiledGraph& graph() const { return graph_; }
    // After prepare: the labels of the metric stages' main metrics (MetricLabels).
    MetricLabels metric_labels() const;
    int threads() const { return threads_; }
    // The stage instance of a stage id (after prepare), for tests and tools.
    Stage* stage(const std::string& id) const;

    struct Impl;  // opaque: the flow graphs and per-stage buffers

private:
    TensorFile checkpoint_file(std::int64_t epoch) const;  // weights and optimiser state
    // A resumable checkpoint: also every stage's run state and the position. metric_sums:
    // metric run states to write instead of the metrics' current ones.
    void save_checkpoint(const std::filesystem::path& file, const RunPosition& at,
                         const std::map<int, StageState>* metric_sums = nullptr) const;
    RunPosition load_resume(const std::filesystem::path& file);
    void prepare_stages();
    void load_weights(const TensorFile& tf, const std::string& where);
    struct TrainRun;  // one call of train(): its state and steps (engine.cpp)

    CompiledGraph graph_;
    RunOptions opt_;
    int threads_ = 1;
    std::unique_ptr<Impl> impl_;
};

// Number of cores this process may use.
int available_cores();

}  // namespace rnnflow
