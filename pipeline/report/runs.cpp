#include "pipeline/report/runs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "pipeline/core/error.hpp"
#include "pipeline/exec/metrics_log.hpp"
#include "pipeline/exec/progress.hpp"
#include "pipeline/report/run_folder.hpp"
#include "pipeline/sweep/spec.hpp"

namespace rnnflow::report {

namespace fs = std::filesystem;

namespace {

// experiment: and train.keep's metric from resolved.yaml ("" when absent or unreadable).
std::pair<std::string, std::string> experiment_and_keep(const fs::path& dir) {
    std::string experiment, keep;
    try {
        const YAML::Node y = YAML::LoadFile((dir / "resolved.yaml").string());
        if (y["experiment"] && y["experiment"].IsScalar()) experiment = y["experiment"].Scalar();
        if (y["train"] && y["train"]["keep"] && y["train"]["keep"].IsScalar()) {
            const std::string k = y["train"]["keep"].Scalar();  // best(ppl.valid)
            if (k.rfind("best(", 0) == 0) keep = k.substr(5, k.find('.') - 5);
        }
    } catch (const YAML::Exception&) {
        // a run without a readable graph still has a row
    }
    return {experiment, keep};
}

std::string cell(double v) { return std::isnan(v) ? std::string() : format_metric(v); }

}  // namespace

RunEntry read_run_entry(const fs::path& dir, const std::vector<MetricsRow>& rows, const std::string& keep_metric) {
    RunEntry e;
    e.dir = dir;
    if (auto s = read_run_status(dir)) {
        e.status = std::move(*s);
        if (run_process_gone(e.status)) e.status.state = "killed";
        return e;
    }
    e.status.state = "unknown";
    e.status.experiment = experiment_and_keep(dir).first;
    std::string m = main_metric(rows, keep_metric);
    if (m.empty()) m = "loss";
    // A name that does not tell (a stage id such as "ner"): higher is better, as for most metrics.
    e.status.headline = make_headline(rows, m, m, !metric_minimized(m).value_or(m == "loss"), "valid");
    const auto [wall, rate] = summary_figures(dir);
    e.status.headline.seconds = wall;
    e.status.headline.items_per_second = rate;
    for (const auto& r : rows) e.status.epochs_done = std::max(e.status.epochs_done, r.epoch);
    return e;
}

RunEntry read_run_entry(const fs::path& dir) {
    if (fs::exists(dir / "status.json")) return read_run_entry(dir, {}, {});
    const std::vector<MetricsRow> rows = fs::exists(dir / "metrics.csv") ? read_metrics(dir) : std::vector<MetricsRow>{};
    return read_run_entry(dir, rows, experiment_and_keep(dir).second);
}

std::vector<RunEntry> find_runs(const std::vector<fs::path>& roots) {
    std::vector<fs::path> dirs;
    for (const auto& root : roots) {
        if (!fs::is_directory(root)) throw Error(root.string() + ": no such folder", "give folders that hold run folders (default runs/)");
        auto is_run = [](const fs::path& d) { return fs::exists(d / "status.json") || fs::exists(d / "resolved.yaml"); };
        if (is_run(root)) {
            dirs.push_back(root);
            continue;
        }
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
             it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (ec) break;
            if (!it->is_directory(ec)) continue;
            if (is_run(it->path())) {
                dirs.push_back(it->path());
                it.disable_recursion_pending();  // a run's own folders (checkpoints, stages) hold no run
            } else if (it.depth() >= 5) {
                it.disable_recursion_pending();
            }
        }
    }
    std::sort(dirs.begin(), dirs.end());
    dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
    std::vector<RunEntry> out;
    for (const auto& d : dirs) out.push_back(read_run_entry(d));
    return out;
}

const std::vector<std::string>& runs_columns() {
    static const std::vector<std::string> cols{"experiment", "started", "status", "epochs", "metric",
                                               "best_valid", "best_epoch", "test", "wall_s", "folder"};
    return cols;
}

RunsTable runs_table(const std::vector<RunEntry>& runs, const std::string& experiment, const std::string& sort_column,
                     bool reverse) {
    const auto& cols = runs_columns();
    const auto sort_it = std::find(cols.begin(), cols.end(), sort_column);
    if (!sort_column.empty() && sort_it == cols.end()) {
        std::string list;
        for (const auto& c : cols) list += (list.empty() ? "" : ", ") + c;
        throw Error("--sort " + sort_column + ": no such column", "the columns: " + list);
    }
    RunsTable t;
    t.header = cols;
    std::vector<const RunEntry*> kept;
    for (const auto& r : runs)
        if (experiment.empty() || r.status.experiment == experiment) kept.push_back(&r);
    std::stable_sort(kept.begin(), kept.end(), [](const RunEntry* a, const RunEntry* b) {
        return a->status.started < b->status.started;
    });
    for (const RunEntry* r : kept) {
        const RunStatus& s = r->status;
        const Headline& h = s.headline;
        std::string epochs = std::to_string(s.epochs_done);
        if (s.epochs > 0) epochs += "/" + std::to_string(s.epochs);
        t.rows.push_back({s.experiment, s.started, s.state, epochs, h.label.empty() ? h.metric : h.label,
                          cell(h.best_valid), h.best_epoch > 0 ? std::to_string(h.best_epoch) : std::string(),
                          cell(h.test), std::isnan(h.seconds) ? std::string() : format_number(std::round(h.seconds * 10) / 10),
                          r->dir.string()});
        t.dirs.push_back(r->dir);
    }
    if (sort_it != cols.end()) {
        const auto c = static_cast<std::size_t>(sort_it - cols.begin());
        std::vector<std::size_t> order(t.rows.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        // Numbers as numbers ("3/10" by its epochs done), text as text; empty cells last either way.
        auto less = [&](std::size_t a, std::size_t b) {
            const std::string &x = t.rows[a][c], &y = t.rows[b][c];
            if (x.empty() || y.empty()) return !x.empty() && y.empty();
            char *ex = nullptr, *ey = nullptr;
            const double nx = std::strtod(x.c_str(), &ex), ny = std::strtod(y.c_str(), &ey);
            const bool numeric = ex != x.c_str() && ey != y.c_str() && c != 1;  // start times are text
            const bool lt = numeric ? nx < ny : x < y;
            const bool gt = numeric ? nx > ny : x > y;
            return reverse ? gt : lt;
        };
        std::stable_sort(order.begin(), order.end(), less);
        RunsTable sorted{t.header, {}, {}};
        for (std::size_t i : order) {
            sorted.rows.push_back(t.rows[i]);
            sorted.dirs.push_back(t.dirs[i]);
        }
        return sorted;
    }
    if (reverse) {
        std::reverse(t.rows.begin(), t.rows.end());
        std::reverse(t.dirs.begin(), t.dirs.end());
    }
    return t;
}

std::string runs_text(const RunsTable& t) {
    std::vector<std::vector<std::string>> rows{t.header};
    for (const auto& r : t.rows) {
        std::vector<std::string> cells;
        for (const auto& s : r) cells.push_back(s.empty() ? "-" : s);
        rows.push_back(std::move(cells));
    }
    return aligned_columns(rows);
}

std::string runs_tsv(const RunsTable& t) {
    auto line = [](const std::vector<std::string>& cells) {
        std::string out;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            std::string c = cells[i];
            std::replace_if(c.begin(), c.end(), [](char ch) { return ch == '\t' || ch == '\n'; }, ' ');
            out += (i ? "\t" : "") + c;
        }
        return out + "\n";
    };
    std::string out = line(t.header);
    for (const auto& r : t.rows) out += line(r);
    return out;
}

std::string runs_json(const RunsTable& t) {
    static const std::vector<std::string> numbers{"best_valid", "best_epoch", "test", "wall_s"};
    std::ostringstream os;
    os << "[";
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        os << (i ? ",\n " : "\n ") << "{";
        for (std::size_t c = 0; c < t.header.size(); ++c) {
            const std::string& v = t.rows[i][c];
            os << (c ? ", " : "") << json_quote(t.header[c]) << ": ";
            const bool number = std::find(numbers.begin(), numbers.end(), t.header[c]) != numbers.end();
            if (v.empty() && (number || t.header[c] == "epochs")) os << "null";
            else if (number) os << v;
            else os << json_quote(v);
        }
        os << "}";
    }
    os << (t.rows.empty() ? "]\n" : "\n]\n");
    return os.str();
}

}  // namespace rnnflow::report
