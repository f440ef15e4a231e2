// rnnflow sweep FILE [--parallel K] [--threads-per-trial M] [--out DIR] [--resume] [--retry-failed]
//               [--set path=value ...] [--quiet] [--log-format text|json]
//
// Runs the trials of a sweep file, K at a time, each on its own thread with its own Engine
// (oneDNN limited to M OpenMP threads, a one-thread graph arena), each in its own run folder under
// the sweep folder; the sweep's state lives in <DIR>/sweep.db. Under mpirun/srun the trials are
// spread over the ranks (cli/mpi.cpp). Exit status: 0 the sweep finished (some trials may have
// failed; they are listed), 1 every trial failed, 2 bad input.
#include <iostream>

#include <boost/program_options.hpp>

#include "cli/commands.hpp"
#include "pipeline/exec/metrics_log.hpp"
#include "pipeline/exec/progress.hpp"
#include "pipeline/exec/resume.hpp"
#include "pipeline/graph/graph.hpp"
#include "pipeline/sweep/sweep.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace rnnflow {

namespace {

// --set values: after the file's fixed `set:`, before the searched values (which win on the same path).
void add_fixed_sets(SweepSpec& spec, const std::vector<std::string>& sets) {
    if (sets.empty()) return;
    for (auto& t : spec.trials) {
        t.overrides.insert(t.overrides.begin() + static_cast<std::ptrdiff_t>(spec.fixed.size()), sets.begin(), sets.end());
        t.key.clear();
        for (const auto& o : t.overrides) t.key += o + "\n";
    }
    spec.fixed.insert(spec.fixed.end(), sets.begin(), sets.end());
}

// --dry-run: list the trials and load each one's graph; exit 2 if any fails to load.
int dry_run_trials(const SweepSpec& spec, Registry& registry) {
    int bad = 0;
    for (std::size_t i = 0; i < spec.trials.size(); ++i) {
        const auto& t = spec.trials[i];
        std::cout << "trial " << i + 1 << " (config " << t.config << "):";
        for (std::size_t k = spec.fixed.size(); k < t.overrides.size(); ++k) std::cout << " " << t.overrides[k];
        try {
            compile(load_graph(spec.graph, t.overrides, registry), registry);
            std::cout << "\n";
        } catch (const Error& e) {
            ++bad;
            std::cout << "\n  " << e.format() << "\n";
        }
    }
    std::cout << spec.trials.size() << " trials, " << bad << " with errors\n";
    return bad ? 2 : 0;
}

struct SweepLayout {
    fs::path dir;
    int parallel = 0, threads = 1, cores = 1;
};

void print_sweep_start(std::ostream& log, const ProgressStyle& style, const SweepSpec& spec, const Sweep& sweep,
                       const SweepLayout& at, int ranks) {
    if (style.format == "json") {
        log << "{\"event\":\"start\",\"sweep\":" << json_quote(spec.name) << ",\"trials\":" << sweep.total()
            << ",\"to_run\":" << sweep.queued() << ",\"ranks\":" << ranks << ",\"parallel\":" << at.parallel
            << ",\"threads_per_trial\":" << at.threads << ",\"dir\":" << json_quote(at.dir.string()) << "}\n";
        return;
    }
    log << "sweep " << spec.name << ": " << sweep.total() << " trials (" << sweep.queued() << " to run), "
        << (ranks > 1 ? std::to_string(ranks) + " MPI ranks, " : std::string())
        << at.parallel << " at once" << (ranks > 1 ? " on rank 0" : "") << " with " << at.threads
        << " thread(s) each; folder " << at.dir.string() << "\n";
    if (at.parallel * at.threads > at.cores)
        log << "warning: " << at.parallel << " trials x " << at.threads << " threads = " << at.parallel * at.threads
            << " threads on " << at.cores << " cores: trials will slow each other down\n";
}

// The summary on stdout; an interrupted sweep also says how to resume it. Returns the exit status.
int report_sweep(const SweepSummary& s, const SweepSpec& spec, const Sweep& sweep, const std::string& file,
                 const SweepLayout& at) {
    std::cout << "sweep " << spec.name << ": " << s.done << " done, " << s.pruned << " pruned, " << s.failed
              << " failed";
    if (s.best_trial)
        std::cout << "; best " << spec.objective.metric << "." << spec.objective.split << " "
                  << format_metric(*s.best_mean) << " ± " << format_metric(*s.best_std) << " (trial " << *s.best_trial << ")";
    std::cout << "\n";
    for (const auto& f : s.files) std::cout << "  " << f.string() << "\n";
    if (const int sig = interrupt_signal()) {
        std::cerr << "sweep " << spec.name << " interrupted: " << sweep.interrupted()
                  << " running trial(s) checkpointed, " << sweep.queued() << " not started\n"
                  << "resume with: rnnflow sweep " << file << " --out " << at.dir.string() << " --resume"
                  << " --threads-per-trial " << at.threads << "\n";
        return 128 + sig;
    }
    return s.done + s.pruned == 0 && s.failed > 0 ? 1 : 0;
}

}  // namespace

int cmd_sweep(const std::vector<std::string>& args) {
    std::string file, out, log_format = "text";
    int parallel = 0, threads = 1;
    bool resume = false, retry_failed = false, quiet = false, want_mpi = false, dry_run = false;
    std::vector<std::string> plugins, sets;
    po::options_description d("sweep options");
    d.add_options()
        ("file", po::value(&file)->required(), "sweep file (YAML)")
        ("parallel,j", po::value(&parallel), "trials at once (default: cores / threads-per-trial); under MPI: per rank 0")
        ("threads-per-trial,t", po::value(&threads), "oneDNN threads of each trial (default 1)")
        ("out,o", po::value(&out), "sweep folder (default sweeps/<sweep name>)")
        ("resume", po::bool_switch(&resume), "continue the sweep in the folder: finished trials are kept, interrupted ones continue from their last checkpoint")
        ("retry-failed", po::bool_switch(&retry_failed), "with --resume: run failed trials again too")
        ("quiet,q", po::bool_switch(&quiet), "no progress lines")
        ("log-format", po::value(&log_format), "progress as text (a bar on a terminal) or json lines")
        ("mpi", po::bool_switch(&want_mpi), "use MPI even if no launcher is detected")
        ("dry-run,n", po::bool_switch(&dry_run), "list the trials and check that each one's graph loads; run nothing")
        ("set,s", po::value(&sets)->composing(), "a fixed override of every trial, as in the sweep file's set: (path=value; the searched values win); repeatable")
        ("plugin", po::value(&plugins)->composing(), "load a stage plug-in: a .so path, or a name (e.g. highway) looked up in RNNFLOW_PLUGIN_PATH; repeatable")
        ("help,h", "describe this command");
    po::positional_options_description pos;
    pos.add("file", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: rnnflow sweep FILE [--parallel K] [--threads-per-trial M] [--out DIR] [--resume]\n\n" << d << "\n";
        return 0;
    }
    po::notify(vm);
    if (threads < 1) throw Error("--threads-per-trial must be >= 1, got " + std::to_string(threads));
    if (vm.count("parallel") && parallel < 0) throw Error("--parallel must be >= 0, got " + std::to_string(parallel));
    if (retry_failed && !resume) throw Error("--retry-failed needs --resume");
    const ProgressStyle style = progress_style(quiet, log_format);

    SweepSpec spec = load_sweep(file);  // LoadError: exit 2 with file:line:column
    add_fixed_sets(spec, sets);

    // Plug-ins first (named on the command line or in the base graph), once, before any thread.
    Registry& registry = Registry::global();
    for (const auto& p : plugins) load_plugin(registry, p);
    load_graph_plugins(spec.graph, registry);
    // The base graph with the fixed overrides must load: otherwise every trial would fail alike.
    compile(load_graph(spec.graph, spec.fixed, registry), registry);
    if (dry_run) return dry_run_trials(spec, registry);

    MpiSession mpi(want_mpi);
    std::ostream* log = style.out;
    SweepLayout at;
    at.dir = out.empty() ? fs::path("sweeps") / spec.name : fs::path(out);
    at.cores = available_cores();
    at.threads = threads;
    at.parallel = parallel;
    if (!vm.count("parallel")) at.parallel = std::max(1, at.cores / threads);
    if (mpi.size() > 1 && !vm.count("parallel")) at.parallel = 1;  // one trial per rank by default

    std::unique_ptr<Sweep> sweep;
    if (mpi.rank() == 0) {
        try {
            sweep = std::make_unique<Sweep>(spec, at.dir, resume, retry_failed, log);
        } catch (const Error& e) {
            std::cerr << e.format() << "\n";
            mpi.abort(2);
        }
        if (log) print_sweep_start(*log, style, spec, *sweep, at, mpi.size());
    }
    if (sweep) sweep->set_progress_style(style);
    if (mpi.size() > 1) mpi_sweep(sweep.get(), mpi, at.parallel, threads, registry, log);
    else {
        // Ctrl-C / SIGTERM: running trials checkpoint and stop, no new one starts (one process;
        // under MPI the default action stays).
        install_interrupt_handlers();
        sweep->run_local(at.parallel, threads, registry);
    }
    if (mpi.rank() != 0) return 0;
    sweep->end_progress();
    return report_sweep(sweep->export_results(registry), spec, *sweep, file, at);
}

}  // namespace rnnflow
