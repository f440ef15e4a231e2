#include "resume.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>


namespace rnnflow {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Interrupts

namespace {

std::atomic<int> g_signal{0};  // lock-free, so safe to touch in a signal handler
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_interrupt(int sig) {
    if (g_signal.load() != 0) _exit(128 + sig);  // the second one: stop now
    g_signal.store(sig);
    static const char msg[] =
        "\nrnnflow: interrupted: finishing the current step, then writing a checkpoint "
        "(interrupt again to stop at once)\n";
    const ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
}

}  // namespace

void install_interrupt_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

int interrupt_signal() { return g_signal.load(std::memory_order_relaxed); }

void request_interrupt(int sig) { g_signal.store(sig); }

namespace {
std::string signal_name(int sig) {
    if (sig == SIGINT) return "SIGINT";
    if (sig == SIGTERM) return "SIGTERM";
    return "signal " + std::to_string(sig);
}
}  // namespace

Interrupted::Interrupted(int sig, const std::string& where, fs::path checkpoint)
    : Error("interrupted by " + signal_name(sig) + " at " + where +
            (checkpoint.empty() ? std::string("; no checkpoint yet")
                                : "; checkpoint written: " + checkpoint.string())),
      sig_(sig), checkpoint_(std::move(checkpoint)) {}

// ---------------------------------------------------------------------------------------------
// Fault injection

namespace {

struct Fault {
    enum Kind { none, kill_batch, kill_checkpoint, interrupt_batch, interrupt_eval } kind = none;
    long long n = 0;
    std::atomic<long long> steps{0}, eval_steps{0}, checkpoints{0};
};

void parse_fault(Fault& f, const std::string& spec) {
    f.kind = Fault::none;
    f.steps = 0;
    f.eval_steps = 0;
    f.checkpoints = 0;
    if (spec.empty()) return;
    const auto colon = spec.rfind(':');
    const std::string what = spec.substr(0, colon);
    long long n = 0;
    const char* b = spec.data() + (colon == std::string::npos ? spec.size() : colon + 1);
    const auto r = std::from_chars(b, spec.data() + spec.size(), n);
    if (colon == std::string::npos || r.ec != std::errc() || r.ptr != spec.data() + spec.size() || n < 1 ||
        (what != "kill@batch" && what != "kill@checkpoint" && what != "interrupt@batch" && what != "interrupt@eval"))
        throw Error("RNNFLOW_FAULT='" + spec + "' is not a fault",
                    "kill@batch:N, kill@checkpoint:N, interrupt@batch:N or interrupt@eval:N (N >= 1); tests only");
    f.kind = what == "kill@batch" ? Fault::kill_batch
             : what == "kill@checkpoint" ? Fault::kill_checkpoint
             : what == "interrupt@batch" ? Fault::interrupt_batch : Fault::interrupt_eval;
    f.n = n;
}

Fault& fault() {
    static Fault f;
    static const bool read = [] {
        const char* env = std::getenv("RNNFLOW_FAULT");
        parse_fault(f, env ? env : "");
        return true;
    }();
    (void)read;
    return f;
}

}  // namespace

void set_fault(const std::string& spec) { parse_fault(fault(), spec); }

void fault_after_step(bool training) {
    Fault& f = fault();
    if (f.kind == Fault::none || f.kind == Fault::kill_checkpoint) return;
    if (!training) {
        if (f.kind == Fault::interrupt_eval && ++f.eval_steps == f.n) request_interrupt(SIGINT);
        return;
    }
    if (f.kind == Fault::interrupt_eval || ++f.steps != f.n) return;
    if (f.kind == Fault::kill_batch) ::raise(SIGKILL);
    request_interrupt(SIGINT);
}

void fault_in_checkpoint_write(const fs::path& file) {
    if (file.extension() != ".safetensors") return;
    Fault& f = fault();
    if (f.kind == Fault::kill_checkpoint && ++f.checkpoints == f.n) ::raise(SIGKILL);
}

// ---------------------------------------------------------------------------------------------
// RunPosition

namespace {

const std::string kPrefix = "rnnflow.resume.";

std::string exact(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

class MetaReader {
public:
    MetaReader(const std::map<std::string, std::string>& m, std::string where) : m_(m), where_(std::move(where)) {}
    const std::string& text(const std::string& key) const {
        auto it = m_.find(kPrefix + key);
        if (it == m_.end())
            throw Error(where_ + ": checkpoint has no '" + kPrefix + key + "' (no resume position)",
                        "it was written by an rnnflow before 0.2, or is not a 'last' checkpoint; "
                        "its weights can start a new run with init: {from: FILE}");
        return it->second;
    }
    double number(const std::string& key) const {
        const std::string& t = text(key);
        double v = 0;
        const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
        if (r.ec != std::errc() || r.ptr != t.data() + t.size()) bad(key, t);
        return v;
    }
    std::int64_t integer(const std::string& key, std::int64_t min) const {
        const std::string& t = text(key);
        std::int64_t v = 0;
        const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
        if (r.ec != std::errc() || r.ptr != t.data() + t.size() || v < min) bad(key, t);
        return v;
    }
    [[noreturn]] void bad(const std::string& key, const std::string& t) const {
        throw Error(where_ + ": checkpoint metadata '" + kPrefix + key + "' has a bad value '" + t + "'",
                    "the file was edited or written by another program; resume from another checkpoint");
    }

private:
    const std::map<std::string, std::string>& m_;
    std::string where_;
};

}  // namespace

void RunPosition::write(std::map<std::string, std::string>& m) const {
    m[kPrefix + "epoch"] = std::to_string(epoch);
    m[kPrefix + "batches"] = std::to_string(pass.steps);
    m[kPrefix + "loss_sum"] = exact(pass.loss_sum);
    m[kPrefix + "loss_count"] = exact(pass.loss_count);
    m[kPrefix + "grad_norm_sum"] = exact(pass.grad_norm_sum);
    m[kPrefix + "seconds"] = exact(pass.seconds);
    m[kPrefix + "items"] = std::to_string(pass.items);
    m[kPrefix + "skipped"] = std::to_string(pass.skipped);
    m[kPrefix + "train_batches"] = std::to_string(train_batches);
    m[kPrefix + "skipped_in_row"] = std::to_string(skipped_in_row);
    m[kPrefix + "best"] = exact(best);
    m[kPrefix + "train_seconds"] = exact(train_seconds);
    m[kPrefix + "train_items"] = std::to_string(train_items);
    m[kPrefix + "rows"] = encode_metric_rows(rows);
    m[kPrefix + "samples_bytes"] = std::to_string(samples_bytes);
    m[kPrefix + "threads"] = std::to_string(threads);
}

RunPosition RunPosition::read(const std::map<std::string, std::string>& m, const std::string& where) {
    const MetaReader r(m, where);
    RunPosition p;
    p.epoch = r.integer("epoch", 0);
    p.pass.steps = r.integer("batches", 0);
    p.pass.loss_sum = r.number("loss_sum");
    p.pass.loss_count = r.number("loss_count");
    p.pass.grad_norm_sum = r.number("grad_norm_sum");
    p.pass.seconds = r.number("seconds");
    p.pass.items = r.integer("items", 0);
    p.pass.skipped = r.integer("skipped", 0);
    p.train_batches = r.integer("train_batches", -1);
    p.skipped_in_row = r.integer("skipped_in_row", 0);
    p.best = r.number("best");
    p.train_seconds = r.number("train_seconds");
    p.train_items = r.integer("train_items", 0);
    p.rows = decode_metric_rows(r.text("rows"), where);
    p.samples_bytes = r.integer("samples_bytes", 0);
    p.threads = static_cast<int>(r.integer("threads", 0));
    return p;
}

std::string RunPosition::describe() const {
    if (pass.steps == 0) return "the start of epoch " + std::to_string(epoch + 1);
    return "epoch " + std::to_string(epoch + 1) + ", after batch " + std::to_string(pass.steps);
}

std::string encode_metric_rows(const std::vector<MetricsRow>& rows) {
    std::string s;
    for (const auto& r : rows) {
        s += std::to_string(r.epoch) + "\t" + r.split;
        for (const auto& [k, v] : r.values) s += "\t" + k + "=" + exact(v);
        s += "\n";
    }
    return s;
}

std::vector<MetricsRow> decode_metric_rows(const std::string& text, const std::string& where) {
    std::vector<MetricsRow> rows;
    std::istringstream is(text);
    std::string line;
    auto bad = [&](const std::string& what) {
        return Error(where + ": checkpoint metadata '" + kPrefix + "rows' is malformed: " + what,
                     "the file was edited or written by another program; resume from another checkpoint");
    };
    while (std::getline(is, line)) {
        if (line.empty()) continue;
        std::vector<std::string> f;
        std::size_t at = 0;
        for (;;) {
            const auto tab = line.find('\t', at);
            f.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
            if (tab == std::string::npos) break;
            at = tab + 1;
        }
        if (f.size() < 2) throw bad("a row without a split");
        MetricsRow r;
        const auto er = std::from_chars(f[0].data(), f[0].data() + f[0].size(), r.epoch);
        if (er.ec != std::errc() || er.ptr != f[0].data() + f[0].size()) throw bad("epoch '" + f[0] + "'");
        r.split = f[1];
        for (std::size_t i = 2; i < f.size(); ++i) {
            const auto eq = f[i].rfind('=');
            double v = 0;
            const char* b = f[i].data() + (eq == std::string::npos ? 0 : eq + 1);
            const auto vr = std::from_chars(b, f[i].data() + f[i].size(), v);
            if (eq == std::string::npos || vr.ec != std::errc() || vr.ptr != f[i].data() + f[i].size())
                throw bad("value '" + f[i] + "'");
            r.values.emplace_back(f[i].substr(0, eq), v);
        }
        rows.push_back(std::move(r));
    }
    return rows;
}

// ---------------------------------------------------------------------------------------------
// Stage run state in checkpoints

namespace {
const std::string kStatePrefix = "resume/";
}

void put_stage_state(TensorFile& tf, const std::string& stage, const StageState& state) {
    for (const auto& [name, t] : state.tensors()) tf.tensors.emplace_back(kStatePrefix + stage + "/" + name, t);
    for (const auto& [name, text] : state.texts()) tf.metadata[kStatePrefix + stage + "/" + name] = text;
}

std::map<std::string, StageState> stage_states(const TensorFile& tf) {
    std::map<std::string, StageState> out;
    auto split = [](const std::string& key) -> std::pair<std::string, std::string> {
        if (key.rfind(kStatePrefix, 0) != 0) return {};
        const auto slash = key.find('/', kStatePrefix.size());
        if (slash == std::string::npos) return {};
        return {key.substr(kStatePrefix.size(), slash - kStatePrefix.size()), key.substr(slash + 1)};
    };
    for (const auto& [key, t] : tf.tensors) {
        auto [stage, name] = split(key);
        if (!stage.empty()) out[stage].put(name, t);
    }
    for (const auto& [key, text] : tf.metadata) {
        auto [stage, name] = split(key);
        if (!stage.empty()) out[stage].put_text(name, text);
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Resume checks

std::map<std::string, std::string> read_state_files(const fs::path& run_dir) {
    std::map<std::string, std::string> files;
    const fs::path root = run_dir / "state";
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return files;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (!it->is_regular_file()) continue;
        const std::string name = it->path().filename().string();
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) continue;
        std::ifstream is(it->path(), std::ios::binary);
        files[fs::relative(it->path(), run_dir).string()] =
            std::string((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
    }
    return files;
}

void check_state_files(const fs::path& run_dir, const std::map<std::string, std::string>& before) {
    const auto after = read_state_files(run_dir);
    std::string changed;
    for (const auto& [name, bytes] : before) {
        auto it = after.find(name);
        if (it != after.end() && it->second == bytes) continue;
        write_file_atomic(run_dir / name, bytes);  // the run folder keeps the run's own state
        if (changed.empty()) changed = name;
    }
    for (const auto& [name, bytes] : after)
        if (!before.count(name) && changed.empty()) changed = name;
    if (!changed.empty())
        throw Error("the data changed since the run started: refitting it gives another " + changed +
                        " than the one in " + run_dir.string(),
                    "a resumed run must read the same data as the interrupted one; restore the data, or "
                    "start a new run (init: {from: " + (run_dir / "checkpoints" / "last.safetensors").string() +
                        "} reuses its weights)");
}

void check_same_graph(const std::string& now, const std::string& run, const fs::path& run_dir) {
    if (now == run) return;
    std::istringstream a(now), b(run);
    std::string la, lb;
    int line = 0;
    for (;;) {
        ++line;
        const bool ga = static_cast<bool>(std::getline(a, la)), gb = static_cast<bool>(std::getline(b, lb));
        if (!ga && !gb) break;
        if (!ga) la = "(end of file)";
        if (!gb) lb = "(end of file)";
        if (la != lb) break;
    }
    throw Error(run_dir.string() + " was made by another graph: line " + std::to_string(line) +
                    " of its resolved.yaml is '" + lb + "', this graph (with its --set values) gives '" + la + "'",
                "resume with the run's own graph: rnnflow run --resume " + run_dir.string() +
                    " (it reads " + (run_dir / "resolved.yaml").string() + ")");
}

}  // namespace rnnflow
