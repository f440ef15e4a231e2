#include "run_status.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <ctime>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "../core/data.hpp"
#include "../core/error.hpp"
#include "metrics_log.hpp"
#include "progress.hpp"

namespace rnnflow {

namespace fs = std::filesystem;

Headline make_headline(const std::vector<MetricsRow>& rows, const std::string& metric, const std::string& label,
                       bool higher_is_better, const std::string& valid_split) {
    Headline h;
    h.metric = metric;
    h.label = label.empty() ? metric : label;
    h.higher_is_better = higher_is_better;
    h.valid_split = valid_split;
    for (const auto& r : rows) {
        if (r.epoch == 0 && r.split == "test") {
            h.test = r.get(metric);
            h.test_loss = r.get("loss");
        }
        if (r.epoch <= 0 || r.split != valid_split) continue;
        const double v = r.get(metric);
        if (std::isnan(v)) continue;
        if (std::isnan(h.best_valid) || (higher_is_better ? v > h.best_valid : v < h.best_valid)) {
            h.best_valid = v;
            h.best_epoch = r.epoch;
        }
    }
    return h;
}

std::vector<std::string> headline_lines(const Headline& h) {
    std::vector<std::string> out;
    if (!std::isnan(h.test))
        out.push_back("test " + h.label + ": " + format_metric(h.test) +
                      (h.kept_checkpoint.empty() ? std::string()
                                                 : " (kept checkpoint " + fs::path(h.kept_checkpoint).filename().string() + ")"));
    if (!std::isnan(h.best_valid))
        out.push_back("best " + h.valid_split + " " + h.label + ": " + format_metric(h.best_valid) + " at epoch " +
                      std::to_string(h.best_epoch) + " (" + (h.higher_is_better ? "higher" : "lower") + " is better)");
    if (!std::isnan(h.test_loss) && h.metric != "loss") out.push_back("test loss: " + format_metric(h.test_loss));
    if (!std::isnan(h.seconds)) out.push_back("wall time: " + format_number(std::round(h.seconds * 10) / 10) + " s");
    if (!std::isnan(h.items_per_second))
        out.push_back("training throughput: " + format_number(std::round(h.items_per_second)) + " items/s");
    if (h.parameters >= 0) out.push_back("parameters: " + std::to_string(h.parameters));
    return out;
}

std::string headline_line(const Headline& h) {
    std::vector<std::string> parts;
    if (!std::isnan(h.test))
        parts.push_back("test: " + h.label + "=" + format_metric(h.test) +
                        (!std::isnan(h.test_loss) && h.metric != "loss" ? " loss=" + format_metric(h.test_loss) : ""));
    if (!std::isnan(h.best_valid))
        parts.push_back("best " + h.valid_split + " " + h.label + "=" + format_metric(h.best_valid) + " at epoch " +
                        std::to_string(h.best_epoch));
    if (!std::isnan(h.seconds))
        parts.push_back("done in " + format_number(std::round(h.seconds * 10) / 10) + " s" +
                        (std::isnan(h.items_per_second)
                             ? std::string()
                             : ", " + format_number(std::round(h.items_per_second)) + " items/s"));
    if (h.parameters >= 0) parts.push_back(std::to_string(h.parameters) + " parameters");
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : " | ") + p;
    return out;
}

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

namespace {

// ,"key":value for the values that are known.
void put(std::ostream& os, const char* key, const std::string& v) {
    if (!v.empty()) os << ",\n  \"" << key << "\": " << json_quote(v);
}
void put(std::ostream& os, const char* key, double v) {
    if (!std::isnan(v)) os << ",\n  \"" << key << "\": " << json_number(v);
}
void put(std::ostream& os, const char* key, std::int64_t v) {
    if (v >= 0) os << ",\n  \"" << key << "\": " << v;
}

}  // namespace

void write_run_status(const fs::path& run_dir, const RunStatus& s) {
    const Headline& h = s.headline;
    std::ostringstream os;
    os << "{\n  \"state\": " << json_quote(s.state);
    put(os, "experiment", s.experiment);
    put(os, "started", s.started);
    put(os, "ended", s.ended);
    put(os, "epochs_done", s.epochs_done);
    put(os, "epochs", s.epochs);
    put(os, "error", s.error);
    put(os, "resume_command", s.resume_command);
    put(os, "metric", h.metric);
    put(os, "metric_label", h.label);
    if (!h.metric.empty()) os << ",\n  \"higher_is_better\": " << (h.higher_is_better ? "true" : "false");
    if (!h.metric.empty()) put(os, "valid_split", h.valid_split);
    put(os, "best_valid", h.best_valid);
    if (h.best_epoch > 0) put(os, "best_epoch", h.best_epoch);
    put(os, "test", h.test);
    put(os, "test_loss", h.test_loss);
    put(os, "seconds", h.seconds);
    put(os, "items_per_second", h.items_per_second);
    put(os, "parameters", h.parameters);
    put(os, "kept_checkpoint", h.kept_checkpoint);
    put(os, "pid", s.pid);
    put(os, "host", s.host);
    os << "\n}\n";
    write_file_atomic(run_dir / "status.json", os.str());
}

std::optional<RunStatus> read_run_status(const fs::path& run_dir) {
    const fs::path file = run_dir / "status.json";
    if (!fs::exists(file)) return std::nullopt;
    YAML::Node y;
    try {
        y = YAML::LoadFile(file.string());  // JSON is YAML
    } catch (const YAML::Exception& e) {
        throw Error(file.string() + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                        ": not a status file: " + e.msg,
                    "`rnnflow run` writes it; remove it if something else did");
    }
    if (!y.IsMap() || !y["state"] || !y["state"].IsScalar())
        throw Error(file.string() + ": not a status file (no \"state\")", "`rnnflow run` writes it");
    RunStatus s;
    Headline& h = s.headline;
    try {
        auto text = [&](const char* key, std::string& to) { if (y[key]) to = y[key].as<std::string>(); };
        auto number = [&](const char* key, double& to) { if (y[key]) to = y[key].as<double>(); };
        auto count = [&](const char* key, std::int64_t& to) { if (y[key]) to = y[key].as<std::int64_t>(); };
        text("state", s.state);
        text("experiment", s.experiment);
        text("started", s.started);
        text("ended", s.ended);
        count("epochs_done", s.epochs_done);
        count("epochs", s.epochs);
        text("error", s.error);
        text("resume_command", s.resume_command);
        text("metric", h.metric);
        text("metric_label", h.label);
        if (y["higher_is_better"]) h.higher_is_better = y["higher_is_better"].as<bool>();
        text("valid_split", h.valid_split);
        number("best_valid", h.best_valid);
        count("best_epoch", h.best_epoch);
        number("test", h.test);
        number("test_loss", h.test_loss);
        number("seconds", h.seconds);
        number("items_per_second", h.items_per_second);
        count("parameters", h.parameters);
        text("kept_checkpoint", h.kept_checkpoint);
        count("pid", s.pid);
        text("host", s.host);
    } catch (const YAML::Exception& e) {
        throw Error(file.string() + ":" + std::to_string(e.mark.line + 1) + ": a value of the wrong kind: " + e.msg);
    }
    return s;
}

namespace {
std::string host_name() {
    char buf[256] = {};
    return ::gethostname(buf, sizeof buf - 1) == 0 ? std::string(buf) : std::string();
}
}  // namespace

bool run_process_gone(const RunStatus& status) {
    if (status.state != "running" || status.pid <= 0 || status.host.empty() || status.host != host_name()) return false;
    return ::kill(static_cast<pid_t>(status.pid), 0) != 0 && errno == ESRCH;
}

void RunStatusFile::start(const fs::path& run_dir, const std::string& experiment, std::int64_t epochs, bool resume) {
    dir_ = run_dir;
    if (dir_.empty()) return;
    std::optional<RunStatus> before;
    if (resume) {
        try {
            before = read_run_status(dir_);
        } catch (const Error&) {
            // a damaged status file is replaced
        }
    }
    status_ = RunStatus();
    status_.experiment = experiment;
    status_.started = before && !before->started.empty() ? before->started : utc_now();
    status_.epochs = epochs;
    status_.pid = static_cast<std::int64_t>(::getpid());
    status_.host = host_name();
    if (before) {
        status_.epochs_done = before->epochs_done;
        status_.headline = before->headline;
    }
    write();
}

void RunStatusFile::epoch_done(std::int64_t epochs_done, const Headline& headline) {
    status_.epochs_done = epochs_done;
    status_.headline = headline;
    write();
}

void RunStatusFile::finished(const Headline& headline) {
    status_.headline = headline;
    end("finished", "", false);
}

void RunStatusFile::failed(const std::string& message, bool checkpoint) { end("failed", message, checkpoint); }

void RunStatusFile::interrupted(const std::string& message, bool checkpoint) {
    end("interrupted", message, checkpoint);
}

void RunStatusFile::end(const std::string& state, const std::string& message, bool checkpoint) {
    status_.state = state;
    status_.ended = utc_now();
    status_.error = message;
    status_.resume_command = checkpoint ? resume_command_ : std::string();
    write();
}

void RunStatusFile::write() const {
    if (!dir_.empty()) write_run_status(dir_, status_);
}

}  // namespace rnnflow
