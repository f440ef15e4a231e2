#include "pipeline/report/compare.hpp"

#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "pipeline/core/plot.hpp"
#include "pipeline/report/run_folder.hpp"
#include "pipeline/report/run_plots.hpp"
#include "pipeline/exec/run_status.hpp"
#include "pipeline/sweep/spec.hpp"

namespace rnnflow::report {

namespace fs = std::filesystem;

namespace {

bool has(const MetricsRow& r, const std::string& name) {
    for (const auto& kv : r.values)
        if (kv.first == name) return true;
    return false;
}

std::string num(double v) {
    if (std::isnan(v)) return "";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.5g", v);
    return buf;
}

std::string shorten(const std::string& s, std::size_t n = 48) {
    return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

// A run folder's metrics, state and experiment.
ComparedRun read_compared_run(const fs::path& d) {
    // A run that failed before its first pass has status.json and no metrics.csv: a row all the same.
    const bool has_metrics = fs::exists(d / "metrics.csv");
    if (!has_metrics && !fs::exists(d / "status.json"))
        throw Error(d.string() + ": not a run folder (no metrics.csv)", "give folders that `rnnflow run` wrote");
    ComparedRun r;
    r.dir = d;
    const fs::path abs = fs::absolute(d).lexically_normal();
    r.name = (abs.has_filename() ? abs : abs.parent_path()).filename().string();
    if (has_metrics) r.rows = read_metrics(d);
    const auto status = read_run_status(d);
    r.state = !status ? std::string("unknown") : run_process_gone(*status) ? std::string("killed") : status->state;
    if (fs::exists(d / "resolved.yaml")) {
        try {
            const YAML::Node y = YAML::LoadFile((d / "resolved.yaml").string());
            if (y["experiment"] && y["experiment"].IsScalar()) r.experiment = y["experiment"].Scalar();
        } catch (const YAML::Exception& e) {
            throw Error((d / "resolved.yaml").string() + ": " + e.what());
        }
    }
    return r;
}
}  // namespace

Comparison compare_runs(const std::vector<fs::path>& run_dirs) {
    if (run_dirs.size() < 2) throw Error("compare needs at least two run folders", "rnnflow compare RUN_A RUN_B ...");
    Comparison c;
    std::map<std::string, int> name_count;
    for (const auto& d : run_dirs) {
        if (!fs::is_directory(d)) throw Error(d.string() + ": no such folder");
        ComparedRun r = read_compared_run(d);
        ++name_count[r.name];
        c.runs.push_back(std::move(r));
    }
    // Runs from different experiments often share a time-stamped name: add the parent folder.
    for (auto& r : c.runs)
        if (name_count[r.name] > 1) {
            const fs::path abs = fs::absolute(r.dir).lexically_normal();
            const fs::path p = abs.has_filename() ? abs : abs.parent_path();
            r.name = (p.parent_path().filename() / p.filename()).string();
        }

    // The split of the curves and the metric every run has on it.
    // The first run with metrics leads.
    const ComparedRun* lead = &c.runs.front();
    for (const auto& r : c.runs)
        if (!r.rows.empty()) { lead = &r; break; }
    c.split = "valid";
    bool have_valid = false;
    for (const auto& row : lead->rows) have_valid = have_valid || (row.split == "valid" && row.epoch > 0);
    if (!have_valid)
        for (const auto& row : lead->rows)
            if (row.epoch > 0 && row.split != "train") { c.split = row.split; break; }
    auto every_run_has = [&](const std::string& m) {
        for (const auto& r : c.runs) {
            if (r.rows.empty()) continue;  // a failed run has nothing to compare
            bool found = false;
            for (const auto& row : r.rows) found = found || (row.split == c.split && row.epoch > 0 && has(row, m));
            if (!found) return false;
        }
        return true;
    };
    c.metric = main_metric(lead->rows);
    if (c.metric.empty() || !every_run_has(c.metric)) c.metric = "loss";
    c.minimize = metric_minimized(c.metric);

    const std::string m = c.metric + "." + c.split;
    c.header = {"run", "experiment", "epochs", c.minimize ? "best " + m : std::string(), "last " + m,
                "test " + c.metric, "test loss", "wall s", "train tok/s", "status"};
    for (const auto& r : c.runs) {
        std::int64_t epochs = 0;
        double best = NAN, last = NAN, test_m = NAN, test_loss = NAN;
        std::int64_t best_epoch = 0;
        for (const auto& row : r.rows) {
            if (row.epoch > 0) epochs = std::max(epochs, row.epoch);
            if (row.epoch == 0 && row.split == "test") {
                test_m = row.get(c.metric);
                test_loss = row.get("loss");
            }
            if (row.epoch <= 0 || row.split != c.split || !has(row, c.metric)) continue;
            const double v = row.get(c.metric);
            last = v;
            if (c.minimize && !std::isnan(v) && (std::isnan(best) || (*c.minimize ? v < best : v > best))) {
                best = v;
                best_epoch = row.epoch;
            }
        }
        const auto [wall, rate] = summary_figures(r.dir);
        c.table.push_back({r.name, r.experiment, std::to_string(epochs),
                           std::isnan(best) ? "" : num(best) + " (epoch " + std::to_string(best_epoch) + ")",
                           num(last), num(test_m), num(test_loss), num(wall), num(std::round(rate)), r.state});
    }
    if (!c.minimize) {  // no "best" column when the metric's direction is unknown
        c.header.erase(c.header.begin() + 3);
        for (auto& row : c.table) row.erase(row.begin() + 3);
    }

    // Configuration differences.
    std::vector<std::map<std::string, std::string>> configs;
    std::set<std::string> keys;
    for (const auto& r : c.runs) {
        configs.push_back(fs::exists(r.dir / "resolved.yaml") ? flatten_yaml(r.dir / "resolved.yaml")
                                                               : std::map<std::string, std::string>{});
        for (const auto& kv : configs.back()) keys.insert(kv.first);
    }
    for (const auto& k : keys) {
        std::vector<std::string> values;
        for (const auto& cfg : configs) {
            const auto it = cfg.find(k);
            values.push_back(it == cfg.end() ? std::string() : it->second);
        }
        bool differ = false;
        for (const auto& v : values) differ = differ || v != values.front();
        if (!differ) continue;
        std::vector<std::string> row{k};
        row.insert(row.end(), values.begin(), values.end());
        c.config_diff.push_back(std::move(row));
    }
    return c;
}

std::string comparison_text(const Comparison& c) {
    std::ostringstream os;
    os << c.metric << " on " << c.split;
    if (c.minimize) os << " (" << (*c.minimize ? "lower" : "higher") << " is better)";
    os << "\n\n";
    std::vector<std::vector<std::string>> rows{c.header};
    for (const auto& r : c.table) {
        std::vector<std::string> cells;
        for (const auto& s : r) cells.push_back(s.empty() ? "-" : s);
        rows.push_back(cells);
    }
    os << aligned_columns(rows);
    os << "\nconfiguration differences (resolved.yaml, paths as --set takes them):\n";
    if (c.config_diff.empty()) {
        os << "  none\n";
    } else {
        std::vector<std::vector<std::string>> d;
        std::vector<std::string> head{"  path"};
        for (const auto& r : c.runs) head.push_back(r.name);
        d.push_back(head);
        for (const auto& row : c.config_diff) {
            std::vector<std::string> cells{"  " + row[0]};
            for (std::size_t i = 1; i < row.size(); ++i) cells.push_back(row[i].empty() ? "(absent)" : shorten(row[i]));
            d.push_back(cells);
        }
        os << aligned_columns(d);
    }
    return os.str();
}

void write_comparison_plot(const Comparison& c, const fs::path& file) {
    plot::LineChart chart;
    chart.title = c.metric + " on " + c.split + " per epoch";
    chart.x_label = "epoch";
    chart.y_label = c.metric;
    for (const auto& r : c.runs) {
        if (r.rows.empty()) continue;  // a failed run: no curve
        plot::Series s{r.name, {}, {}};
        for (const auto& row : r.rows)
            if (row.epoch > 0 && row.split == c.split && has(row, c.metric)) {
                s.x.push_back(static_cast<double>(row.epoch));
                s.y.push_back(row.get(c.metric));
            }
        chart.series.push_back(std::move(s));
    }
    plot::write_png(chart, file);
}

}  // namespace rnnflow::report
