#include "sweep.hpp"

#include <cstdlib>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "../exec/metrics_log.hpp"
#include "../exec/resume.hpp"
#include "../graph/graph.hpp"
#include "../report/run_plots.hpp"

namespace rnnflow {
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Messages

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) { out.push_back(cur); cur.clear(); }
        else cur += c;
    }
    out.push_back(cur);
    return out;
}

std::string exact(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

std::string encode_row(const MetricsRow& r) {
    std::string s = std::to_string(r.epoch) + "\t" + r.split;
    for (const auto& [k, v] : r.values) s += "\t" + k + "=" + exact(v);
    return s;
}

MetricsRow decode_row(const std::string& line) {
    const auto f = split(line, '\t');
    MetricsRow r;
    if (f.size() < 2) return r;
    r.epoch = std::stoll(f[0]);
    r.split = f[1];
    for (std::size_t i = 2; i < f.size(); ++i) {
        const auto eq = f[i].rfind('=');
        if (eq == std::string::npos) continue;
        r.values.emplace_back(f[i].substr(0, eq), std::strtod(f[i].c_str() + eq + 1, nullptr));
    }
    return r;
}

}  // namespace

std::string encode_task(const TrialTask& t) {
    std::string s = std::to_string(t.id) + "\t" + t.graph.string() + "\t" + t.run_dir.string() + "\t" +
                    (t.resume ? "1" : "0") + "\n";
    for (const auto& o : t.overrides) s += o + "\n";
    return s;
}

TrialTask decode_task(const std::string& s) {
    const auto lines = split(s, '\n');
    TrialTask t;
    const auto head = split(lines.at(0), '\t');
    if (head.size() != 4) throw Error("malformed trial message");
    t.id = std::stoi(head[0]);
    t.graph = head[1];
    t.run_dir = head[2];
    t.resume = head[3] == "1";
    for (std::size_t i = 1; i < lines.size(); ++i)
        if (!lines[i].empty()) t.overrides.push_back(lines[i]);
    return t;
}

std::string encode_rows(const std::vector<MetricsRow>& rows) {
    std::string s;
    for (const auto& r : rows) s += encode_row(r) + "\n";
    return s;
}

std::vector<MetricsRow> decode_rows(const std::string& s) {
    std::vector<MetricsRow> rows;
    for (const auto& line : split(s, '\n'))
        if (!line.empty()) rows.push_back(decode_row(line));
    return rows;
}

std::string encode_outcome(const TrialOutcome& o) {
    std::string s = o.status + "\t" + exact(o.seconds) + "\t" + std::to_string(o.final_rows.size()) + "\n";
    for (const auto& r : o.final_rows) s += encode_row(r) + "\n";
    return s + o.error;
}

TrialOutcome decode_outcome(const std::string& s) {
    TrialOutcome o;
    std::size_t pos = s.find('\n');
    const auto head = split(s.substr(0, pos), '\t');
    if (head.size() != 3) throw Error("malformed result message");
    o.status = head[0];
    o.seconds = std::strtod(head[1].c_str(), nullptr);
    const int n = std::stoi(head[2]);
    for (int i = 0; i < n; ++i) {
        const std::size_t end = s.find('\n', pos + 1);
        o.final_rows.push_back(decode_row(s.substr(pos + 1, end - pos - 1)));
        pos = end;
    }
    o.error = pos == std::string::npos ? "" : s.substr(pos + 1);
    return o;
}

// ---------------------------------------------------------------------------------------------
// One trial

namespace {
std::string read_text(const fs::path& f) {
    std::ifstream is(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>());
}
}  // namespace

TrialOutcome run_trial(const TrialTask& task, int threads, const Registry& registry,
                       const std::function<bool(const MetricsRow&, const MetricsRow&)>& on_epoch) {
    TrialOutcome out;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        GraphDef def = load_graph(task.graph, task.overrides, registry);
        CompiledGraph g = compile(std::move(def), registry);
        // An interrupted attempt continues from its last checkpoint when its folder is the same
        // graph's and has one; otherwise it starts again from scratch.
        const bool resume = task.resume && fs::exists(task.run_dir / "checkpoints" / "last.safetensors") &&
                            !fs::exists(task.run_dir / "summary.txt") &&
                            read_text(task.run_dir / "resolved.yaml") == g.def.resolved_yaml;
        std::error_code ec;
        if (!resume) fs::remove_all(task.run_dir, ec);
        RunOptions o;
        o.run_dir = task.run_dir;
        o.resume = resume;
        o.threads = threads;
        o.graph_threads = 1;  // the trial's stages run on this thread: one OpenMP team per trial
        o.on_epoch = [&](std::int64_t, const MetricsRow& tr, const MetricsRow& va) { return on_epoch(tr, va); };
        o.after_epoch = [dir = task.run_dir](const std::vector<MetricsRow>& rows, const std::string& keep) {
            report::update_run_plots(dir, rows, keep, nullptr);
        };
        Engine engine(std::move(g), o);
        {
            std::ofstream cmd(task.run_dir / "command.txt", resume ? std::ios::app : std::ios::trunc);
            cmd << "rnnflow run '" << task.graph.string() << "'";
            for (const auto& ov : task.overrides) cmd << " --set '" << ov << "'";
            cmd << "\n";
        }
        engine.prepare();
        const TrainResult r = engine.train();
        for (const auto& row : r.rows)
            if (row.epoch == 0) out.final_rows.push_back(row);
        out.status = r.stopped_early ? "pruned" : "done";
    } catch (const Interrupted& e) {
        out.status = "interrupted";
        out.error = e.format();
    } catch (const Error& e) {
        out.status = "failed";
        out.error = e.format();
    } catch (const std::exception& e) {
        out.status = "failed";
        out.error = std::string("error: ") + e.what();
    } catch (...) {
        out.status = "failed";
        out.error = "error: unknown exception";
    }
    if (out.status == "failed" && fs::exists(task.run_dir)) {
        std::ofstream(task.run_dir / "error.txt") << out.error << "\n";
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

// ---------------------------------------------------------------------------------------------
// The coordinator

namespace {

std::string duration_text(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    const auto t = static_cast<long long>(std::llround(s));
    char buf[32];
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%llds", t);
    return buf;
}

std::string objective_text(const ObjectiveSpec& o) {
    return o.metric + "." + o.split + " (" + (o.minimize ? "min" : "max") + ")";
}

bool better(double a, double b, bool minimize) { return minimize ? a < b : a > b; }

std::string short_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.5g", v);
    return buf;
}

// Best value of a history in the objective's direction, and its epoch.
std::optional<std::pair<double, std::int64_t>> best_of(const std::vector<std::pair<std::int64_t, double>>& h,
                                                       bool minimize) {
    std::optional<std::pair<double, std::int64_t>> b;
    for (const auto& [epoch, v] : h)
        if (std::isfinite(v) && (!b || better(v, b->first, minimize))) b = std::make_pair(v, epoch);
    return b;
}

}  // namespace

Sweep::Sweep(SweepSpec spec, fs::path dir, bool resume, bool retry_failed, std::ostream* log)
    : spec_(std::move(spec)), dir_(std::move(dir)), log_(log), start_(std::chrono::steady_clock::now()) {
    const fs::path db = dir_ / "sweep.db";
    const bool existed = fs::exists(db);
    if (existed && !resume)
        throw Error(dir_.string() + " already holds a sweep",
                    "--resume continues it (finished trials are kept); --out DIR starts a new one");
    if (!existed && resume)
        throw Error(dir_.string() + " holds no sweep to resume (no sweep.db)", "run without --resume to start it");
    fs::create_directories(dir_ / "trials");
    state_ = std::make_unique<SweepState>(db);
    if (existed) {
        const auto graph = state_->meta("graph");
        if (graph && *graph != spec_.graph.string())
            throw Error(dir_.string() + " holds a sweep of another graph (" + *graph + ")",
                        "resume it with its own sweep file, or choose another --out");
        if (log_ && state_->meta("sweep_file_text").value_or("") != spec_.text)
            *log_ << "warning: the sweep file changed since this sweep started; trials are matched by their values\n";
    }
    state_->set_meta("name", spec_.name);
    state_->set_meta("graph", spec_.graph.string());
    state_->set_meta("objective", objective_text(spec_.objective));
    state_->set_meta("sweep_file", spec_.file);
    state_->set_meta("sweep_file_text", spec_.text);
    state_->set_meta("params", [&] {
        std::string s;
        for (const auto& p : spec_.param_paths) s += (s.empty() ? "" : "\n") + p;
        return s;
    }());

    const auto interrupted = state_->reset_interrupted();
    interrupted_.insert(interrupted.begin(), interrupted.end());
    if (log_ && !interrupted.empty())
        *log_ << "sweep: " << interrupted.size() << " interrupted trial(s) continue from their last checkpoint\n";
    if (retry_failed) {
        const auto failed = state_->reset_failed();
        if (log_ && !failed.empty()) *log_ << "sweep: " << failed.size() << " failed trial(s) run again\n";
    }
    for (const auto& t : spec_.trials) ids_.push_back(state_->add_trial(t));

    stopper_ = make_early_stopper(spec_.early_stopping);
    const std::set<int> mine(ids_.begin(), ids_.end());
    int skipped = 0;
    for (const auto& r : state_->trials()) {
        if (!mine.count(r.id)) continue;
        if (r.status == "pending") {
            queue_.push_back(r.id);
            continue;
        }
        ++skipped;
        if (r.status == "done") ++done_;
        else if (r.status == "pruned") ++pruned_;
        else if (r.status == "failed") ++failed_;
        if (r.objective && (!best_ || better(*r.objective, *best_, spec_.objective.minimize)) && r.status != "failed") {
            best_ = r.objective;
            best_id_ = r.id;
        }
        // Early stopping compares with finished trials too: replay their histories.
        if (stopper_ && r.status != "failed")
            for (const auto& [epoch, v] : state_->history(r.id, spec_.objective.split, spec_.objective.metric))
                stopper_->report(r.id, epoch, spec_.objective.minimize ? v : -v);
    }
    // Run in spec order.
    std::sort(queue_.begin(), queue_.end(), [&](int a, int b) {
        return std::find(ids_.begin(), ids_.end(), a) < std::find(ids_.begin(), ids_.end(), b);
    });
    if (log_ && skipped > 0) *log_ << "sweep: " << skipped << " finished trial(s) kept, " << queue_.size() << " to run\n";
}

Sweep::~Sweep() = default;

int Sweep::queued() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(queue_.size() - next_);
}

int Sweep::interrupted() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return interrupted_here_;
}

std::optional<TrialTask> Sweep::next(const std::string& worker) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (next_ >= queue_.size() || interrupt_signal() != 0) return std::nullopt;
    const int id = queue_[next_++];
    const TrialRecord r = state_->trial(id);
    TrialTask t;
    t.id = id;
    t.graph = spec_.graph;
    t.overrides = r.overrides;
    char name[16];
    std::snprintf(name, sizeof name, "%04d", id);
    t.run_dir = dir_ / "trials" / name;
    t.resume = interrupted_.count(id) != 0;
    state_->mark_running(id, t.run_dir.string(), worker);
    ++running_;
    progress_locked("trial " + std::to_string(id) + " started on " + worker);
    return t;
}

double Sweep::objective_value(const MetricsRow& train, const MetricsRow& valid) const {
    const MetricsRow& row = spec_.objective.split == "train" ? train : valid;
    return row.get(spec_.objective.metric);
}

bool Sweep::report_epoch(int id, const MetricsRow& train, const MetricsRow& valid) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!train.values.empty()) state_->add_metrics(id, train);
    if (!valid.values.empty()) state_->add_metrics(id, valid);
    if (!stopper_ || spec_.objective.split == "test") return true;
    const double v = objective_value(train, valid);
    const std::int64_t epoch = spec_.objective.split == "train" ? train.epoch : valid.epoch;
    return stopper_->report(id, epoch, spec_.objective.minimize ? v : -v);
}

void Sweep::finish(int id, const TrialOutcome& outcome) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (outcome.status == "interrupted") {
        // Left `running`: the next --resume makes it pending and continues it from its checkpoint.
        --running_;
        ++interrupted_here_;
        progress_locked("trial " + std::to_string(id) + " interrupted (checkpoint kept)");
        return;
    }
    for (const auto& row : outcome.final_rows) state_->add_metrics(id, row);
    std::string status = outcome.status, error = outcome.error;
    std::optional<double> objective;
    std::int64_t best_epoch = 0;
    const auto hist = state_->history(id, spec_.objective.split, spec_.objective.metric);
    const auto epochs = static_cast<std::int64_t>(state_->history(id, "train", "loss").size());
    if (status != "failed") {
        if (auto b = best_of(hist, spec_.objective.minimize)) {
            objective = b->first;
            best_epoch = b->second;
        } else {
            status = "failed";
            error = "error: the objective " + spec_.objective.metric + " on split " + spec_.objective.split +
                    " was not computed\n  hint: see the trial's metrics.csv for the metric names it has";
        }
    }
    state_->finish(id, status, error, objective, best_epoch, epochs, outcome.seconds);
    --running_;
    ++finished_here_;
    if (status == "done") ++done_;
    else if (status == "pruned") ++pruned_;
    else ++failed_;
    if (objective && (!best_ || better(*objective, *best_, spec_.objective.minimize))) {
        best_ = objective;
        best_id_ = id;
    }
    std::string event = "trial " + std::to_string(id) + " " + status;
    if (objective) event += " " + spec_.objective.metric + "=" + short_number(*objective);
    if (status == "failed") event += ": " + error.substr(0, error.find('\n'));
    progress_locked(event);
}

void Sweep::set_progress_style(const ProgressStyle& style) {
    std::lock_guard<std::mutex> lock(mutex_);
    log_format_ = style.format;
    to_run_ = static_cast<int>(queue_.size() - next_);
    if (style.bar && style.out) {
        bar_ = std::make_unique<Progress>(style);
        bar_->begin_pass("sweep " + spec_.name, -1, to_run_, "");
    }
}

void Sweep::end_progress() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (bar_) bar_->end_pass();
}

void Sweep::progress_locked(const std::string& event) {
    if (!log_) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int finished = done_ + pruned_ + failed_;
    const int remaining = total() - finished;
    const double eta = finished_here_ > 0 && remaining > 0 ? elapsed / finished_here_ * remaining : -1;
    if (log_format_ == "json") {
        std::ostringstream os;
        os << "{\"event\":\"trial\",\"sweep\":" << json_quote(spec_.name) << ",\"text\":" << json_quote(event)
           << ",\"finished\":" << finished << ",\"total\":" << total() << ",\"done\":" << done_
           << ",\"pruned\":" << pruned_ << ",\"failed\":" << failed_ << ",\"running\":" << running_;
        if (best_)
            os << ",\"objective\":" << json_quote(spec_.objective.metric) << ",\"best\":" << json_number(*best_)
               << ",\"best_trial\":" << best_id_;
        os << ",\"elapsed_seconds\":" << std::llround(elapsed) << ",\"eta_seconds\":" << std::llround(eta) << "}\n";
        *log_ << os.str() << std::flush;
        return;
    }
    if (bar_) {
        // The event above, the state in the bar: "sweep x [====>     ] 3/12 | 2 running | best ..."
        std::string status = std::to_string(running_) + " running";
        if (failed_ > 0) status += ", " + std::to_string(failed_) + " failed";
        if (pruned_ > 0) status += ", " + std::to_string(pruned_) + " pruned";
        if (best_) status += " | best " + spec_.objective.metric + " " + short_number(*best_) + " (trial " + std::to_string(best_id_) + ")";
        bar_->set_status(status);
        bar_->step(finished_here_, NAN, 0);
        bar_->note("sweep " + spec_.name + ": " + event);
        return;
    }
    std::ostringstream os;
    os << "sweep " << spec_.name << ": " << event << " | " << finished << "/" << total() << " finished ("
       << done_ << " done, " << pruned_ << " pruned, " << failed_ << " failed), " << running_ << " running";
    if (best_) os << " | best " << spec_.objective.metric << " " << short_number(*best_) << " (trial " << best_id_ << ")";
    os << " | " << duration_text(elapsed);
    if (eta >= 0) os << ", ETA " << duration_text(eta);
    os << "\n";
    *log_ << os.str() << std::flush;
}

void Sweep::run_local(int parallel, int threads, const Registry& registry) {
    std::vector<std::thread> workers;
    for (int w = 0; w < std::max(1, parallel); ++w) {
        workers.emplace_back([this, w, threads, &registry] {
            const std::string name = "thread " + std::to_string(w);
            while (auto task = next(name)) {
                const int id = task->id;
                TrialOutcome o = run_trial(*task, threads, registry, [this, id](const MetricsRow& tr, const MetricsRow& va) {
                    return report_epoch(id, tr, va);
                });
                finish(id, o);
            }
        });
    }
    for (auto& t : workers) t.join();
}

// ---------------------------------------------------------------------------------------------
// Exports

namespace {

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

std::string md_field(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
    return out;
}

void write_text(const fs::path& file, const std::string& text) {
    const fs::path tmp = file.string() + ".tmp";
    {
        std::ofstream os(tmp, std::ios::binary);
        os << text;
        if (!os) throw Error("cannot write " + tmp.string());
    }
    fs::rename(tmp, file);
}

std::string value_of(const TrialRecord& t, const std::string& path) {
    for (const auto& p : t.params)
        if (p.path == path) return p.text;
    return "";
}

struct ConfigRow {
    int config = 0;
    std::vector<const TrialRecord*> trials;
    std::vector<double> values;  // objectives of done/pruned trials
    double mean = NAN, std = NAN;
};

// trials.csv: one line per trial; counts the statuses into sum.
void write_trials_csv(const fs::path& dir, const SweepSpec& spec, const std::vector<TrialRecord>& trials,
                      SweepSummary& sum) {
    std::ostringstream tc;
    tc << "trial,config,seed,status,objective,best_epoch,epochs,seconds,attempts,worker";
    for (const auto& p : spec.param_paths) tc << "," << csv_field(p);
    tc << ",error\n";
    for (const auto& t : trials) {
        if (t.status == "done") ++sum.done;
        else if (t.status == "pruned") ++sum.pruned;
        else if (t.status == "failed") ++sum.failed;
        else ++sum.pending;
        tc << t.id << "," << t.config << "," << (t.seed ? std::to_string(*t.seed) : "") << "," << t.status << ","
           << (t.objective ? format_number(*t.objective) : "") << "," << t.best_epoch << "," << t.epochs << ","
           << format_number(std::round(t.seconds * 100) / 100) << "," << t.attempts << "," << csv_field(t.worker);
        for (const auto& p : spec.param_paths) tc << "," << csv_field(value_of(t, p));
        tc << "," << csv_field(t.error.substr(0, t.error.find('\n'))) << "\n";
    }
    write_text(dir / "trials.csv", tc.str());
    sum.files.push_back(dir / "trials.csv");
}

// Per configuration: mean ± std over seeds, best first (configurations without a value last).
std::vector<ConfigRow> rank_configs(const std::vector<TrialRecord>& trials, bool minimize) {
    std::map<int, ConfigRow> configs;
    for (const auto& t : trials) {
        auto& c = configs[t.config];
        c.config = t.config;
        c.trials.push_back(&t);
        if (t.objective && (t.status == "done" || t.status == "pruned")) c.values.push_back(*t.objective);
    }
    std::vector<ConfigRow> rows;
    for (auto& [k, c] : configs) {
        if (!c.values.empty()) {
            double s = 0;
            for (double v : c.values) s += v;
            c.mean = s / static_cast<double>(c.values.size());
            double ss = 0;
            for (double v : c.values) ss += (v - c.mean) * (v - c.mean);
            c.std = c.values.size() > 1 ? std::sqrt(ss / static_cast<double>(c.values.size() - 1)) : 0.0;
        }
        rows.push_back(c);
    }
    std::stable_sort(rows.begin(), rows.end(), [&](const ConfigRow& a, const ConfigRow& b) {
        if (std::isnan(a.mean) != std::isnan(b.mean)) return !std::isnan(a.mean);
        if (std::isnan(a.mean)) return false;
        return better(a.mean, b.mean, minimize);
    });
    return rows;
}

// The header lines of results.csv (rc) and results.md (md).
void results_header(std::ostream& rc, std::ostream& md, const SweepSpec& spec, const std::string& obj) {
    const bool minimize = spec.objective.minimize;
    rc << "rank,config";
    md << "# Sweep " << md_field(spec.name) << "\n\nObjective: `" << obj << "`, " << (minimize ? "lower" : "higher")
       << " is better (best epoch of each trial; mean ± std over seeds). Graph: `" << spec.graph.string() << "`.\n\n| rank | config |";
    for (const auto& p : spec.param_paths) {
        rc << "," << csv_field(p);
        md << " " << md_field(p) << " |";
    }
    rc << "," << obj << "_mean," << obj << "_std,seeds,trials,status\n";
    md << " " << obj << " | seeds | trials | status |\n|---|---|";
    for (std::size_t i = 0; i < spec.param_paths.size(); ++i) md << "---|";
    md << "---|---|---|---|\n";
}

// One configuration's line in results.csv and results.md.
void results_row(std::ostream& rc, std::ostream& md, const SweepSpec& spec, int rank, const ConfigRow& c) {
    std::string ids, statuses;
    std::map<std::string, int> st;
    for (const auto* t : c.trials) {
        ids += (ids.empty() ? "" : " ") + std::to_string(t->id);
        ++st[t->status];
    }
    for (const auto& [s, n] : st) statuses += (statuses.empty() ? "" : " ") + std::to_string(n) + " " + s;
    const bool has = !std::isnan(c.mean);
    rc << rank << "," << c.config;
    md << "| " << rank << " | " << c.config << " |";
    for (const auto& p : spec.param_paths) {
        const std::string v = value_of(*c.trials.front(), p);
        rc << "," << csv_field(v);
        md << " " << md_field(v) << " |";
    }
    rc << "," << (has ? format_number(c.mean) : "") << "," << (has ? format_number(c.std) : "") << ","
       << c.values.size() << "," << ids << "," << statuses << "\n";
    char buf[64] = "—";
    if (has) std::snprintf(buf, sizeof buf, "%.4g ± %.2g", c.mean, c.std);
    md << " " << buf << " | " << c.values.size() << " | " << ids << " | " << statuses << " |\n";
}

// results.csv and results.md: the configurations ranked; the failed trials' first error lines.
void write_results(const fs::path& dir, const SweepSpec& spec, const std::vector<ConfigRow>& rows,
                   const std::vector<TrialRecord>& trials, SweepSummary& sum) {
    const std::string obj = spec.objective.metric + "." + spec.objective.split;
    std::ostringstream rc, md;
    results_header(rc, md, spec, obj);
    int rank = 0;
    for (const auto& c : rows) results_row(rc, md, spec, ++rank, c);
    std::vector<const TrialRecord*> failed;
    for (const auto& t : trials)
        if (t.status == "failed") failed.push_back(&t);
    if (!failed.empty()) {
        md << "\n## Failed trials\n\n";
        for (const auto* t : failed)
            md << "- trial " << t->id << ": `" << md_field(t->error.substr(0, t->error.find('\n'))) << "`\n";
    }
    write_text(dir / "results.csv", rc.str());
    write_text(dir / "results.md", md.str());
    sum.files.push_back(dir / "results.csv");
    sum.files.push_back(dir / "results.md");
}

// The best configuration's best trial, as a graph `rnnflow run` loads (best.yaml); a failure to
// load it is a warning.
void write_best_graph(const fs::path& dir, const SweepSpec& spec, const std::vector<ConfigRow>& rows,
                      const Registry& registry, std::ostream* log, SweepSummary& sum) {
    if (rows.empty() || std::isnan(rows.front().mean)) return;
    const bool minimize = spec.objective.minimize;
    const ConfigRow& b = rows.front();
    const TrialRecord* bt = nullptr;
    for (const auto* t : b.trials)
        if (t->objective && (t->status == "done" || t->status == "pruned") &&
            (!bt || better(*t->objective, *bt->objective, minimize)))
            bt = t;
    if (!bt) return;
    sum.best_trial = bt->id;
    sum.best_mean = b.mean;
    sum.best_std = b.std;
    const std::string obj = spec.objective.metric + "." + spec.objective.split;
    try {
        const GraphDef g = load_graph(spec.graph, bt->overrides, registry);
        std::ostringstream y;
        y << "# Best configuration of sweep '" << spec.name << "': config " << b.config << ", " << obj << " "
          << format_number(b.mean) << " ± " << format_number(b.std) << " over " << b.values.size()
          << " seed(s); this is trial " << bt->id << " (" << format_number(*bt->objective) << ").\n";
        for (const auto& o : bt->overrides) y << "#   --set " << o << "\n";
        y << g.resolved_yaml;
        write_text(dir / "best.yaml", y.str());
        sum.files.push_back(dir / "best.yaml");
    } catch (const Error& e) {
        if (log) *log << "warning: cannot write best.yaml: " << e.format() << "\n";
    }
}

// Plot data: the objective per epoch of every trial (curves.csv).
void write_curves(const fs::path& dir, const SweepSpec& spec, const std::vector<TrialRecord>& trials,
                  const SweepState& state, SweepSummary& sum) {
    const std::string obj = spec.objective.metric + "." + spec.objective.split;
    std::ostringstream cv;
    cv << "trial,config,status,epoch," << obj << "\n";
    for (const auto& t : trials)
        for (const auto& [epoch, v] : state.history(t.id, spec.objective.split, spec.objective.metric))
            cv << t.id << "," << t.config << "," << t.status << "," << epoch << "," << format_number(v) << "\n";
    write_text(dir / "curves.csv", cv.str());
    sum.files.push_back(dir / "curves.csv");
}

// A gnuplot script drawing curves.csv and trials.csv, run when gnuplot is present (Debian
// gnuplot-nox, installed by scripts/install-deps.sh).
void write_plot(const fs::path& dir, const SweepSpec& spec, std::ostream* log, SweepSummary& sum) {
    const std::string obj = spec.objective.metric + "." + spec.objective.split;
    std::ostringstream gp;
    gp << "# gnuplot plot.gnuplot  (run in the sweep folder) -> plot.png\n"
          "# Left: the objective per epoch of every trial; right: each trial's objective.\n"
          "set terminal pngcairo size 1200,500\nset output 'plot.png'\nset datafile separator ','\n"
          "set key off\nset multiplot layout 1,2 title '" << spec.name << ": " << obj << "'\n"
          "set xlabel 'epoch'\nset ylabel '" << obj << "'\n"
          "stats 'curves.csv' using 1 nooutput\n"
          "plot for [t=int(STATS_min):int(STATS_max)] 'curves.csv' using ($1==t ? $4 : 1/0):5 with linespoints pt 7 ps 0.5\n"
          "set xlabel 'trial'\nset style fill solid 0.6\n"
          "plot 'trials.csv' using 1:5 with boxes\n"
          "unset multiplot\n";
    write_text(dir / "plot.gnuplot", gp.str());
    sum.files.push_back(dir / "plot.gnuplot");
    if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) return;
    const std::string cmd = "cd '" + dir.string() + "' && gnuplot plot.gnuplot > plot.log 2>&1";
    if (std::system(cmd.c_str()) == 0 && std::filesystem::exists(dir / "plot.png")) {
        sum.files.push_back(dir / "plot.png");
        std::filesystem::remove(dir / "plot.log");
    } else if (log) {
        *log << "warning: gnuplot could not draw " << (dir / "plot.png").string() << "; see "
             << (dir / "plot.log").string() << "\n";
    }
}

}  // namespace

SweepSummary Sweep::export_results(const Registry& registry) {
    std::lock_guard<std::mutex> lock(mutex_);
    SweepSummary sum;
    const std::set<int> mine(ids_.begin(), ids_.end());
    std::vector<TrialRecord> trials;
    for (auto& t : state_->trials())
        if (mine.count(t.id)) trials.push_back(std::move(t));
    write_trials_csv(dir_, spec_, trials, sum);
    const std::vector<ConfigRow> rows = rank_configs(trials, spec_.objective.minimize);
    write_results(dir_, spec_, rows, trials, sum);
    write_best_graph(dir_, spec_, rows, registry, log_, sum);
    write_curves(dir_, spec_, trials, *state_, sum);
    write_plot(dir_, spec_, log_, sum);
    return sum;
}

}  // namespace rnnflow
