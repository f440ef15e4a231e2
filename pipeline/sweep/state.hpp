// A sweep's state in SQLite (<sweep folder>/sweep.db): trials, their parameters, per-epoch
// metrics, status and errors. WAL journal, one transaction per change, so a killed sweep leaves
// a consistent database; users may query it while a sweep runs (sqlite3 sweep.db).
//
//   meta(key PRIMARY KEY, value)                      sweep name, graph, objective, file text
//   trials(id PRIMARY KEY, config, seed, key UNIQUE, overrides, status, error, objective,
//          best_epoch, epochs, seconds, run_dir, worker, attempts, started, finished)
//       status: pending | running | done | pruned | failed
//   params(trial, path, value)                        the searched values of each trial
//   metrics(trial, epoch, split, name, value)         every metric of every pass (epoch 0: test)
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "../exec/engine.hpp"
#include "spec.hpp"

struct sqlite3;

namespace rnnflow {

struct TrialRecord {
    int id = 0;
    int config = 0;
    std::optional<std::int64_t> seed;
    std::string key;
    std::vector<std::string> overrides;
    std::string status;
    std::string error;
    std::optional<double> objective;
    std::int64_t best_epoch = 0;
    std::int64_t epochs = 0;
    double seconds = 0;
    std::string run_dir;
    std::string worker;
    int attempts = 0;
    std::vector<SweepValue> params;
};

class SweepState {
public:
    explicit SweepState(const std::filesystem::path& db_file);
    ~SweepState();
    SweepState(const SweepState&) = delete;
    SweepState& operator=(const SweepState&) = delete;

    std::optional<std::string> meta(const std::string& key) const;
    void set_meta(const std::string& key, const std::string& value);

    // Insert the trial if its key is new; its id either way.
    int add_trial(const SweepTrialSpec& t);
    // Trials left `running` by a killed sweep become `pending` again, their metrics dropped.
    // Returns their ids.
    std::vector<int> reset_interrupted();
    // `failed` trials become `pending` again (--retry-failed).
    std::vector<int> reset_failed();

    void mark_running(int id, const std::string& run_dir, const std::string& worker);
    void add_metrics(int id, const MetricsRow& row);
    void finish(int id, const std::string& status, const std::string& error, std::optional<double> objective,
                std::int64_t best_epoch, std::int64_t epochs, double seconds);

    std::vector<TrialRecord> trials() const;
    TrialRecord trial(int id) const;
    // (epoch, value) of one metric on one split, by epoch.
    std::vector<std::pair<std::int64_t, double>> history(int id, const std::string& split,
                                                         const std::string& metric) const;

private:
    sqlite3* db_ = nullptr;
    std::filesystem::path file_;
    void exec(const std::string& sql);
};

}  // namespace rnnflow
