// A sweep file: a base graph, a search space over override paths (the paths of --set), seeds,
// an objective, a trial budget and an early-stopping rule; expanded into a list of trials.
//
//   sweep: lm-size                      # name (default: the file's stem)
//   graph: ../char_lm.yaml              # relative to the sweep file
//   set: {train.epochs: 4}              # fixed overrides for every trial
//   grid:                               # cartesian product, file order, last axis fastest
//     rnn.layers: [1, 2]
//   linked:                             # each entry is one grid axis whose values change together
//     - [{rnn.hidden: 64, embed.dim: 16}, {rnn.hidden: 128, embed.dim: 32}]
//   random:                             # `samples` draws per grid point
//     optim.lr: {log_uniform: [1.0e-4, 1.0e-2]}
//     rnn.dropout: {uniform: [0, 0.5]}
//     embed.dim: {int: [16, 64]}
//     batch.bptt: {choice: [32, 64]}
//   samples: 4
//   random_seed: 1
//   seeds: [1, 2]                       # each configuration once per seed (--set seed=...)
//   objective: {metric: ppl, split: valid, goal: min}
//   max_trials: 20
//   early_stopping: {rule: median, grace_epochs: 1, min_trials: 3}   # or rule: asha, eta, min_epochs
//
// Every problem is a Diagnostic with file:line:column; all of a file's problems come together
// as one LoadError, as for graph files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"

namespace rnnflow {

// One parameter value of a trial: the override path and its value as YAML text.
struct SweepValue {
    std::string path;  // "rnn.hidden"
    std::string text;  // "128"
};

struct EarlyStoppingSpec {
    std::string rule;              // "" (none), "median", "asha"
    std::int64_t grace_epochs = 1; // median: no stopping at or before this epoch
    std::int64_t min_trials = 3;   // median: other trials needed at an epoch before comparing
    std::int64_t eta = 3;          // asha: keep the best 1/eta at each rung
    std::int64_t min_epochs = 1;   // asha: first rung; rungs at min_epochs * eta^k
};

struct ObjectiveSpec {
    std::string metric = "loss";   // a name in MetricsRow ("ppl", "loss", "acc")
    std::string split = "valid";   // valid: best over epochs; train: best over epochs; test: final
    bool minimize = true;
};

struct SweepTrialSpec {
    int config = 0;                       // index of its configuration (same values, other seed)
    std::optional<std::int64_t> seed;     // from `seeds:`
    std::vector<SweepValue> values;       // the searched values (no seed, no fixed `set:`)
    std::vector<std::string> overrides;   // everything passed to load_graph, in order
    std::string key;                      // stable identity across reruns (the overrides)
};

struct SweepSpec {
    std::string file;                     // as given (messages)
    std::string name;
    std::filesystem::path graph;          // resolved against the sweep file's folder
    std::vector<std::string> fixed;       // `set:` as path=value
    ObjectiveSpec objective;
    EarlyStoppingSpec early_stopping;
    std::int64_t max_trials = 0;          // 0: every expanded trial
    std::vector<std::string> param_paths; // searched paths, in file order (table columns)
    std::vector<SweepTrialSpec> trials;   // expanded (and cut to max_trials)
    std::string text;                     // the file's content (kept with the sweep state)
};

// Load and expand. Throws LoadError.
SweepSpec load_sweep(const std::filesystem::path& file);
SweepSpec load_sweep_text(const std::string& text, const std::string& name,
                          const std::filesystem::path& base_dir);

// min for loss-like names (loss, ppl, perplexity, err, wer, cer, bpc), max for accuracy-like
// ones (acc, bleu, f1, precision, recall, auc); nullopt when the name says nothing.
std::optional<bool> metric_minimized(const std::string& metric);

}  // namespace rnnflow
