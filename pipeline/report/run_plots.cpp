#include "pipeline/report/run_plots.hpp"

#include <atomic>
#include <cmath>
#include <map>
#include <set>

#include "pipeline/core/plot.hpp"

namespace rnnflow::report {

namespace {

// One series per split, x = epoch, for the rows that have `value` (epoch 0, the final test, is
// not a point on an epoch axis).
std::vector<plot::Series> per_split(const std::vector<MetricsRow>& rows, const std::string& value,
                                    const std::set<std::string>& only = {}) {
    std::vector<plot::Series> out;
    std::map<std::string, std::size_t> index;
    for (const auto& r : rows) {
        if (r.epoch <= 0 || (!only.empty() && !only.count(r.split))) continue;
        const double v = r.get(value);
        bool present = false;
        for (const auto& kv : r.values) present = present || kv.first == value;
        if (!present) continue;
        auto it = index.find(r.split);
        if (it == index.end()) {
            it = index.emplace(r.split, out.size()).first;
            out.push_back({r.split, {}, {}});
        }
        out[it->second].x.push_back(static_cast<double>(r.epoch));
        out[it->second].y.push_back(v);
    }
    return out;
}

// A log axis for values that are positive and span more than a factor of 20 (a decaying
// learning rate, gradient norms early in training).
bool wants_log(const std::vector<plot::Series>& series) {
    double lo = INFINITY, hi = 0;
    for (const auto& s : series)
        for (double v : s.y) {
            if (!std::isfinite(v)) continue;
            if (v <= 0) return false;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    return hi > 0 && hi / lo > 20;
}

}  // namespace

std::vector<std::filesystem::path> write_run_plots(const std::filesystem::path& dir,
                                                   const std::vector<MetricsRow>& rows,
                                                   const std::string& main_metric_name) {
    std::vector<std::filesystem::path> written;
    std::filesystem::create_directories(dir);
    auto chart = [&](const std::string& file, const std::string& title, const std::string& y_label,
                     std::vector<plot::Series> series) {
        if (series.empty()) return;
        plot::LineChart c;
        c.title = title;
        c.x_label = "epoch";
        c.y_label = y_label;
        c.log_y = wants_log(series);
        c.series = std::move(series);
        plot::write_png(c, dir / file);
        written.push_back(dir / file);
    };
    chart("loss.png", "loss per epoch", "loss (mean per token)", per_split(rows, "loss"));
    const std::string main = main_metric(rows, main_metric_name);
    if (!main.empty() && main != "loss" && main != "lr" && main != "grad_norm")
        chart(main + ".png", main + " per epoch", main, per_split(rows, main));
    chart("lr.png", "learning rate", "lr", per_split(rows, "lr", {"train"}));
    chart("grad_norm.png", "gradient norm before clipping (mean over steps)", "L2 norm",
          per_split(rows, "grad_norm", {"train"}));
    return written;
}

void update_run_plots(const std::filesystem::path& run_dir, const std::vector<MetricsRow>& rows,
                      const std::string& main_metric_name, std::ostream* log) {
    static std::atomic<bool> warned{false};
    try {
        write_run_plots(run_dir / "plots", rows, main_metric_name);
    } catch (const std::exception& e) {
        if (log && !warned.exchange(true))
            *log << "warning: the run's plots were not written: " << e.what() << "\n";
    }
}

}  // namespace rnnflow::report
