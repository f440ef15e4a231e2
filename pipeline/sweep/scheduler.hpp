// Early stopping of sweep trials on their per-epoch objective. Values are given "lower is
// better" (the caller negates a maximised metric). Epochs are 1-based. Decisions depend only on
// the reports made so far, in order, so a scripted history gives the same decisions every time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "spec.hpp"

namespace rnnflow {

class EarlyStopper {
public:
    virtual ~EarlyStopper() = default;
    // Trial `trial` reached `epoch` with `value`; false: stop it now.
    virtual bool report(int trial, std::int64_t epoch, double value) = 0;
};

// Median-stopping rule (Golovin et al., "Google Vizier", 2017): after `grace_epochs`, stop a
// trial whose best value so far is worse than the median, over the other trials that reached
// this epoch (at least `min_trials` of them), of their running means up to this epoch.
class MedianStopper final : public EarlyStopper {
public:
    MedianStopper(std::int64_t grace_epochs, std::int64_t min_trials)
        : grace_(grace_epochs), min_trials_(min_trials) {}
    bool report(int trial, std::int64_t epoch, double value) override;

private:
    std::int64_t grace_, min_trials_;
    std::map<int, std::vector<double>> history_;  // trial → value per epoch (index epoch-1)
};

// Asynchronous successive halving (Li et al., "A System for Massively Parallel Hyperparameter
// Tuning", 2020), in its stopping form: rungs at epochs min_epochs * eta^k; a trial reaching a
// rung continues only if its value is among the best max(1, floor(n / eta)) of the n values
// recorded at that rung so far (itself included). The first trial at a rung always continues.
class AshaStopper final : public EarlyStopper {
public:
    AshaStopper(std::int64_t min_epochs, std::int64_t eta) : min_epochs_(min_epochs), eta_(eta) {}
    bool report(int trial, std::int64_t epoch, double value) override;

private:
    std::int64_t min_epochs_, eta_;
    std::map<std::int64_t, std::vector<double>> rungs_;  // rung epoch → values recorded
};

// The stopper of a spec (nullptr for none).
std::unique_ptr<EarlyStopper> make_early_stopper(const EarlyStoppingSpec& spec);

}  // namespace rnnflow
