#include "scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace rnnflow {

bool MedianStopper::report(int trial, std::int64_t epoch, double value) {
    auto& h = history_[trial];
    const auto e = static_cast<std::size_t>(epoch);
    if (h.size() < e) h.resize(e, std::numeric_limits<double>::quiet_NaN());
    h[e - 1] = value;
    if (epoch <= grace_ || std::isnan(value)) return true;
    std::vector<double> means;
    for (const auto& [other, vals] : history_) {
        if (other == trial || vals.size() < e) continue;
        double sum = 0;
        std::size_t n = 0;
        for (std::size_t i = 0; i < e; ++i)
            if (!std::isnan(vals[i])) { sum += vals[i]; ++n; }
        if (n > 0) means.push_back(sum / static_cast<double>(n));
    }
    if (static_cast<std::int64_t>(means.size()) < min_trials_) return true;
    std::sort(means.begin(), means.end());
    const std::size_t m = means.size();
    const double median = m % 2 ? means[m / 2] : 0.5 * (means[m / 2 - 1] + means[m / 2]);
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < e; ++i)
        if (!std::isnan(h[i])) best = std::min(best, h[i]);
    return !(best > median);
}

bool AshaStopper::report(int /*trial*/, std::int64_t epoch, double value) {
    std::int64_t rung = min_epochs_;
    while (rung < epoch) rung *= eta_;
    if (rung != epoch || std::isnan(value)) return true;
    auto& vals = rungs_[rung];
    vals.push_back(value);
    std::vector<double> sorted = vals;
    std::sort(sorted.begin(), sorted.end());
    const auto keep = static_cast<std::size_t>(std::max<std::int64_t>(1, static_cast<std::int64_t>(sorted.size()) / eta_));
    return value <= sorted[keep - 1];
}

std::unique_ptr<EarlyStopper> make_early_stopper(const EarlyStoppingSpec& spec) {
    if (spec.rule == "median") return std::make_unique<MedianStopper>(spec.grace_epochs, spec.min_trials);
    if (spec.rule == "asha") return std::make_unique<AshaStopper>(spec.min_epochs, spec.eta);
    return nullptr;
}

}  // namespace rnnflow
