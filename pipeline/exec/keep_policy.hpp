// train.keep: which checkpoint a run keeps, for its test pass and for whoever uses the run later.
//   keep: last                  the last epoch's, checkpoints/last.safetensors
//   keep: best(<metric>.<split>) the epoch with the best value of <metric> on <split> (lower or
//                               higher as the metric says), checkpoints/best.safetensors
//   early_stopping: {patience: P, min_delta: D}
//                               stop training when that value has gone P epochs in a row without
//                               beating the value of its last improvement by more than D
// The engine runs the passes and writes the files; this decides.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "../graph/graph.hpp"
#include "engine.hpp"

namespace rnnflow {

class KeepPolicy {
public:
    explicit KeepPolicy(const TrainDef& td) : td_(td) {}

    bool keeps_best() const { return !td_.keep_metric.empty(); }
    // Before training, keeping best: the number of batches the data gives the kept split; none
    // is an error, said before an epoch of training rather than after.
    void check_split(std::int64_t batches) const;
    // Keeping best, after an epoch's pass over the kept split: true when `row` holds the best
    // value so far (the caller then writes best.safetensors). `higher_is_better`: by metric name
    // (absent: lower is better). Throws when the row lacks the metric.
    bool improves(const MetricsRow& row, const std::map<std::string, bool>& higher_is_better);

    // early_stopping: the epochs since the kept metric last improved by more than min_delta,
    // counted from the rows recorded so far (so a resumed run, which restores its rows, counts
    // the same); its best value and epoch into *best / *best_epoch when given.
    std::int64_t stalled_epochs(const std::vector<MetricsRow>& rows, const std::map<std::string, bool>& higher_is_better,
                                double* best = nullptr, std::int64_t* best_epoch = nullptr) const;
    bool stops(const std::vector<MetricsRow>& rows, const std::map<std::string, bool>& higher_is_better) const {
        return td_.patience > 0 && keeps_best() && stalled_epochs(rows, higher_is_better) >= td_.patience;
    }

    // The best value so far (NaN: none yet); a resumed run restores it from its checkpoint.
    double best() const { return best_; }
    void restore(double best) { best_ = best; }

    // The checkpoint in `dir` the run keeps: best.safetensors when keeping best and it was
    // written, else last.safetensors.
    std::filesystem::path kept(const std::filesystem::path& dir) const;

private:
    const TrainDef& td_;
    double best_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace rnnflow
