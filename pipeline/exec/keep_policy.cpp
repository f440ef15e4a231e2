// train.keep: which checkpoint a run keeps (keep_policy.hpp).
#include "keep_policy.hpp"

#include <cmath>

#include "../core/error.hpp"

namespace rnnflow {

void KeepPolicy::check_split(std::int64_t batches) const {
    if (batches == 0)
        throw Error("train.keep is best(" + td_.keep_metric + "." + td_.keep_split + "), but the data has no " +
                        td_.keep_split + " split",
                    "give the reader a " + td_.keep_split + " file or fraction, or use keep: last", td_.loc);
}

bool KeepPolicy::improves(const MetricsRow& row, const std::map<std::string, bool>& higher_is_better) {
    const double v = row.get(td_.keep_metric);
    if (std::isnan(v))
        throw Error("train.keep names '" + td_.keep_metric + "." + td_.keep_split +
                        "', but no such metric was computed on " + td_.keep_split,
                    "metrics computed: see metrics.jsonl; keep: last keeps the last epoch", td_.loc);
    const auto it = higher_is_better.find(td_.keep_metric);
    const bool higher = it != higher_is_better.end() && it->second;
    if (!std::isnan(best_) && !(higher ? v > best_ : v < best_)) return false;
    best_ = v;
    return true;
}

std::int64_t KeepPolicy::stalled_epochs(const std::vector<MetricsRow>& rows,
                                        const std::map<std::string, bool>& higher_is_better, double* best,
                                        std::int64_t* best_epoch) const {
    const auto it = higher_is_better.find(td_.keep_metric);
    const bool higher = it != higher_is_better.end() && it->second;
    double ref = std::numeric_limits<double>::quiet_NaN();
    std::int64_t stalled = 0, ref_epoch = 0;
    for (const auto& r : rows) {
        if (r.epoch <= 0 || r.split != td_.keep_split) continue;
        const double v = r.get(td_.keep_metric);
        if (std::isnan(v)) continue;
        if (std::isnan(ref) || (higher ? v > ref + td_.min_delta : v < ref - td_.min_delta)) {
            ref = v;
            ref_epoch = r.epoch;
            stalled = 0;
        } else {
            ++stalled;
        }
    }
    if (best) *best = ref;
    if (best_epoch) *best_epoch = ref_epoch;
    return stalled;
}

std::filesystem::path KeepPolicy::kept(const std::filesystem::path& dir) const {
    return dir / (keeps_best() && std::filesystem::exists(dir / "best.safetensors") ? "best.safetensors"
                                                                                     : "last.safetensors");
}

}  // namespace rnnflow
