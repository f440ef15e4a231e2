// rnnflow: the command-line front end over the engine.
//
//   rnnflow run FILE [--set path=value ...] [--out RUN_DIR] [--threads N] [--quiet [--headline]]
//   rnnflow run [FILE] --resume RUN_DIR [--threads N]    continue an interrupted run exactly
//   rnnflow validate FILE [--set ...]
//   rnnflow graph FILE --dot [--set ...]
//   rnnflow stages [TYPE ...] [--markdown]
//   rnnflow generate RUN_DIR [--prime TEXT] [-n N] [--temperature T] [--top-k K] [--seed S]
//   rnnflow vectors RUN_DIR [--stage ID] [--out FILE] [--checkpoint best|last|FILE]
//   rnnflow new-stage NAME [--dir DIR]
//   rnnflow sweep FILE [--parallel K] [--threads-per-trial M] [--out DIR] [--resume]   (cli/sweep.cpp)
//   rnnflow report DIR [--out FILE]; rnnflow compare RUN_A RUN_B ... [--plot FILE]      (cli/report.cpp)
//   rnnflow runs [DIR ...] [--sort COLUMN] [--experiment NAME] [--format tsv|json] [--html FILE]
//   mpirun -np N rnnflow run FILE ...   data-parallel training (cli/mpi.cpp)
//
// Exit status: 0 success, 1 the run failed, 2 bad input (command line, graph file, data),
// 128 + signal when SIGINT/SIGTERM stopped a run (after writing a checkpoint to resume from).
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>

#include <boost/program_options.hpp>

#include "cli/commands.hpp"
#include "pipeline/core/registry.hpp"
#include "pipeline/core/text.hpp"
#include "pipeline/exec/engine.hpp"
#include "pipeline/exec/metrics_log.hpp"
#include "pipeline/exec/per_class.hpp"
#include "pipeline/exec/progress.hpp"
#include "pipeline/exec/resume.hpp"
#include "pipeline/graph/graph.hpp"
#include "pipeline/report/run_plots.hpp"
#include "stages/data/features.hpp"
#include "stages/data/vocabulary.hpp"
#include "stages/model/embedding.hpp"

// LeakSanitizer (sanitizer builds): fontconfig's process-lifetime caches are not leaks of ours
// (tests/lsan.supp explains). Compiled into the program so that every process gets it, however
// it is started (ctest, a test's child process, mpirun); unused in other builds.
extern "C" const char* __lsan_default_suppressions();
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace rnnflow;

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;

struct Common {
    std::vector<std::string> sets;
    std::vector<std::string> plugins;
};

void add_graph_options(po::options_description& d, Common& c) {
    d.add_options()
        ("set,s", po::value(&c.sets)->composing(), "override a value: path=value (e.g. rnn.hidden=512, train.epochs=2, vars.lr=0.01); repeatable")
        ("plugin", po::value(&c.plugins)->composing(), "load a stage plug-in before reading the graph: a .so path, or a name (e.g. highway) looked up in RNNFLOW_PLUGIN_PATH; repeatable");
}

// Parse a subcommand's options; returns false (after printing) on --help.
bool parse(const std::vector<std::string>& args, po::options_description& d,
           po::positional_options_description* pos, const std::string& usage) {
    d.add_options()("help,h", "describe this command");
    po::variables_map vm;
    po::command_line_parser parser(args);
    parser.options(d);
    if (pos) parser.positional(*pos);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: " << usage << "\n\n" << d << "\n";
        return false;
    }
    po::notify(vm);
    return true;
}

Registry& registry_with(const std::vector<std::string>& plugins) {
    Registry& r = Registry::global();
    for (const auto& p : plugins) load_plugin(r, p);
    return r;
}

CompiledGraph load(const std::string& file, const Common& c) {
    Registry& r = registry_with(c.plugins);
    load_graph_plugins(file, r);  // the graph's own plugins: before its stages are checked
    GraphDef def = load_graph(file, c.sets, r);
    return compile(std::move(def), r);
}

fs::path default_run_dir(const std::string& experiment) {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    fs::path base = fs::path("runs") / (experiment.empty() ? "experiment" : experiment) / stamp;
    fs::path dir = base;
    for (int i = 2; fs::exists(dir); ++i) dir = base.string() + "-" + std::to_string(i);
    return dir;
}

// A word for a shell command line, quoted when it needs it.
std::string shell_word(const std::string& w) {
    if (!w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") == std::string::npos)
        return w;
    std::string q = "'";
    for (char ch : w) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return q + "'";
}

// --resume RUN_DIR: the folder must hold an unfinished run; its graph is the default FILE.
void check_resume_folder(const std::string& resume, const std::string& out, std::string& file) {
    if (!out.empty())
        throw Error("--resume continues RUN_DIR in place; --out does not go with it", "drop --out");
    if (!fs::exists(fs::path(resume) / "resolved.yaml"))
        throw Error(resume + ": not a run folder (no resolved.yaml)", "give the folder that `rnnflow run` printed");
    if (fs::exists(fs::path(resume) / "summary.txt"))
        throw Error(resume + ": the run finished (summary.txt is written); nothing to resume",
                    "to train longer, start a new run with init: {from: " +
                        (fs::path(resume) / "checkpoints" / "last.safetensors").string() + "} on the model stages");
    if (file.empty()) file = (fs::path(resume) / "resolved.yaml").string();
}

// The graph to train; with --resume, checked to be the run's own (its resolved text).
CompiledGraph load_run_graph(const std::string& file, const Common& c, const std::string& resume) {
    CompiledGraph g = load(file, c);
    if (!resume.empty()) {
        Common own;
        own.plugins = c.plugins;
        const CompiledGraph run_graph = load((fs::path(resume) / "resolved.yaml").string(), own);
        check_same_graph(g.def.resolved_yaml, run_graph.def.resolved_yaml, resume);
    }
    return g;
}

// The run folder: RUN_DIR on resume, else --out or a new one; refused if it holds a run.
fs::path choose_run_dir(const std::string& resume, const std::string& out, const std::string& experiment,
                        bool writer, const MpiSession& mpi) {
    fs::path run_dir = !resume.empty() ? fs::path(resume) : out.empty() ? default_run_dir(experiment) : fs::path(out);
    if (writer && resume.empty() && fs::exists(run_dir / "resolved.yaml")) {
        const Error e("run folder " + run_dir.string() + " already holds a run",
                      "choose another --out, or remove the folder");
        if (mpi.size() > 1) { std::cerr << e.format() << "\n"; mpi.abort(kExitBadInput); }
        throw e;
    }
    return run_dir;
}

void write_run_command(const fs::path& run_dir, const std::vector<std::string>& args, bool append) {
    std::ofstream cmd(run_dir / "command.txt", append ? std::ios::app : std::ios::trunc);
    cmd << "rnnflow run";
    for (const auto& a : args) cmd << " '" << a << "'";
    cmd << "\n";
}

void print_run_start(const fs::path& run_dir, const std::string& log_format, int threads, int ranks) {
    if (log_format == "json")
        std::cerr << "{\"event\":\"start\",\"run_dir\":" << json_quote(run_dir.string())
                  << ",\"threads\":" << threads << ",\"ranks\":" << ranks << "}\n";
    else
        std::cerr << "run folder: " << run_dir.string() << " (" << threads << " threads"
                  << (ranks > 1 ? " on each of " + std::to_string(ranks) + " MPI ranks" : std::string()) << ")\n";
}

// The command that continues the run in `run_dir` (status.json records it; an interrupted run
// prints it).
std::string resume_command(const fs::path& run_dir, int threads, const Common& c) {
    std::string cmd = "rnnflow run --resume " + shell_word(run_dir.string()) + " --threads " + std::to_string(threads);
    for (const auto& p : c.plugins) cmd += " --plugin " + shell_word(p);
    return cmd;
}

// Train; a stop by signal or a failed run is reported here and gives the exit status.
std::optional<int> train_or_report(Engine& engine, TrainResult& res, const fs::path& run_dir,
                                   const Common& c, const MpiSession& mpi) {
    try {
        res = engine.train();
    } catch (const Interrupted& e) {
        std::cerr << "\n" << e.format() << "\n";
        if (!e.checkpoint().empty())
            std::cerr << "resume with: " << resume_command(run_dir, engine.threads(), c) << "\n";
        else
            std::cerr << "no checkpoint was written; start the run again in a new folder\n";
        return 128 + e.signal();
    } catch (Error& e) {
        std::cerr << e.format() << "\n";
        if (fs::exists(run_dir / "checkpoints" / "last.safetensors"))
            std::cerr << "  last good checkpoint: " << (run_dir / "checkpoints" / "last.safetensors").string() << "\n";
        if (mpi.size() > 1) mpi.abort(kExitFailed);  // the other ranks may wait in a reduction
        return kExitFailed;
    }
    return std::nullopt;
}

// The run's last lines: where it is, the headline, the test pass without its per-class values
// (those are in SPLIT.per_class.tsv). --quiet: nothing, or the headline on one line.
void print_run_done(const TrainResult& res, const Engine& engine, const fs::path& run_dir, bool quiet,
                    bool headline) {
    if (quiet) {
        if (headline) std::cout << res.headline_line << std::endl;
        return;
    }
    std::ostringstream os;
    os << "done in " << format_number(std::round(res.seconds * 10) / 10) << " s, "
       << format_number(std::round(res.items_per_second)) << " tokens/s in training; run folder " << run_dir.string()
       << "\n" << res.headline;
    for (const auto& row : res.rows)
        if (row.epoch == 0)
            os << "test:" << metrics_text(row, engine.metric_labels(), [](const std::string& k) {
                return k != "seconds" && k != "items_per_second" && !is_per_class_key(k);
            }) << "\n";
    std::error_code ec;
    for (const char* split : {"test", "valid"})
        if (const fs::path t = run_dir / (std::string(split) + ".per_class.tsv"); fs::exists(t, ec)) {
            os << "per-class values: " << t.string() << "\n";
            break;
        }
    std::cout << os.str() << std::flush;
}

int cmd_run(const std::vector<std::string>& args) {
    Common c;
    std::string file, out, log_format = "text", resume;
    int threads = 0;
    bool quiet = false, headline = false, want_mpi = false;
    po::options_description d("run options");
    d.add_options()
        ("file", po::value(&file), "graph file (YAML); with --resume, default RUN_DIR/resolved.yaml")
        ("out,o", po::value(&out), "run folder (default runs/<experiment>/<time>)")
        ("resume", po::value(&resume), "continue the run in RUN_DIR from its last checkpoint, exactly as if it had not "
                                       "stopped (same graph and --set values; the same --threads for bit-identical numbers)")
        ("threads,t", po::value(&threads), "threads for oneTBB and oneDNN (default: train.threads, else every core)")
        ("quiet,q", po::bool_switch(&quiet), "print only errors (with --headline, also the result on one line)")
        ("headline", po::bool_switch(&headline), "with --quiet: print the result on one line (test metric, best "
                                                 "validation value and epoch, time, parameters)")
        ("log-format", po::value(&log_format), "text or json")
        ("mpi", po::bool_switch(&want_mpi), "data-parallel over MPI even if no launcher (mpirun, srun) is detected");
    add_graph_options(d, c);
    po::positional_options_description pos;
    pos.add("file", 1);
    if (!parse(args, d, &pos, "rnnflow run FILE [--set path=value ...] [--out RUN_DIR] [--threads N]\n"
                              "       rnnflow run [FILE] --resume RUN_DIR [--threads N]")) return 0;
    progress_style(true, log_format);  // checks the value before any work
    if (file.empty() && resume.empty())
        throw Error("run needs a graph file", "rnnflow run FILE, or rnnflow run --resume RUN_DIR");
    if (!resume.empty()) check_resume_folder(resume, out, file);

    // Under mpirun/srun: data-parallel training, each rank on its share of every batch; only
    // rank 0 writes the run folder and prints.
    MpiSession mpi(want_mpi);
    const bool writer = mpi.rank() == 0;
    if (mpi.size() > 1) quiet = quiet || !writer;
    if (!resume.empty() && mpi.size() > 1) {
        std::cerr << Error("--resume of a data-parallel (MPI) run is not supported yet",
                           "resume it in one process, or start it again").format() << "\n";
        mpi.abort(kExitBadInput);
    }
    CompiledGraph g = load_run_graph(file, c, resume);
    fs::path run_dir = choose_run_dir(resume, out, g.def.experiment, writer, mpi);
    if (!writer) run_dir.clear();
    RunOptions opt;
    opt.run_dir = run_dir;
    opt.threads = threads;
    opt.resume = !resume.empty();
    apply_progress_style(progress_style(quiet, log_format), opt);
    if (!run_dir.empty())
        opt.after_epoch = [run_dir, log = opt.log](const std::vector<MetricsRow>& rows, const std::string& keep) {
            report::update_run_plots(run_dir, rows, keep, log);
        };
    if (mpi.size() > 1) mpi_data_parallel(opt, mpi);
    // Ctrl-C and SIGTERM: checkpoint and stop (one process; under MPI the ranks would stop at
    // different steps, so the default action stays).
    if (mpi.size() == 1) install_interrupt_handlers();
    Engine engine(std::move(g), opt);
    if (writer) {
        engine.set_resume_command(resume_command(run_dir, engine.threads(), c));
        write_run_command(run_dir, args, opt.resume);
    }
    if (!quiet) print_run_start(run_dir, log_format, engine.threads(), mpi.size());
    try {
        engine.prepare();
    } catch (Error& e) {
        std::cerr << e.format() << "\n";
        if (mpi.size() > 1) mpi.abort(kExitBadInput);
        return kExitBadInput;
    }
    TrainResult res;
    if (const auto failed = train_or_report(engine, res, run_dir, c, mpi)) return *failed;
    if (!writer) return 0;
    print_run_done(res, engine, run_dir, quiet, headline);
    return 0;
}

int cmd_validate(const std::vector<std::string>& args) {
    Common c;
    std::string file;
    po::options_description d("validate options");
    d.add_options()("file", po::value(&file)->required(), "graph file (YAML)");
    add_graph_options(d, c);
    po::positional_options_description pos;
    pos.add("file", 1);
    if (!parse(args, d, &pos, "rnnflow validate FILE [--set path=value ...]")) return 0;
    CompiledGraph g = load(file, c);
    std::cout << file << ": ok, " << g.def.stages.size() << " stages, " << g.connections.size() << " connections\n";
    return 0;
}

int cmd_graph(const std::vector<std::string>& args) {
    Common c;
    std::string file;
    bool dot = false;
    po::options_description d("graph options");
    d.add_options()
        ("file", po::value(&file)->required(), "graph file (YAML)")
        ("dot", po::bool_switch(&dot), "Graphviz text (the default, and so far the only format)");
    add_graph_options(d, c);
    po::positional_options_description pos;
    pos.add("file", 1);
    if (!parse(args, d, &pos, "rnnflow graph FILE --dot [--set path=value ...]")) return 0;
    CompiledGraph g = load(file, c);
    std::cout << to_dot(g);
    return 0;
}

int cmd_stages(const std::vector<std::string>& args) {
    Common c;
    std::vector<std::string> types;
    bool markdown = false, list = false;
    po::options_description d("stages options");
    d.add_options()
        ("type", po::value(&types)->composing(), "stage types to describe (default: all)")
        ("markdown", po::bool_switch(&markdown), "Markdown, as in docs/stages.md")
        ("list", po::bool_switch(&list), "only the type names, one per line (shell completion uses it)");
    add_graph_options(d, c);
    po::positional_options_description pos;
    pos.add("type", -1);
    if (!parse(args, d, &pos, "rnnflow stages [TYPE ...] [--markdown]")) return 0;
    const Registry& r = registry_with(c.plugins);
    for (const auto& t : types)
        if (!r.find(t)) {
            const std::string hint = did_you_mean(t, r.names());
            throw Error("unknown stage type '" + t + "'", hint.empty() ? "`rnnflow stages` lists every type" : hint);
        }
    if (list) {
        for (const auto& name : r.names()) std::cout << name << "\n";
        return 0;
    }
    std::cout << (markdown ? stages_markdown(r, types) : stages_text(r, types));
    return 0;
}

int cmd_schema(const std::vector<std::string>& args) {
    Common c;
    po::options_description d("schema options");
    d.add_options()("plugin", po::value(&c.plugins)->composing(), "include a plug-in's stage types; repeatable");
    if (!parse(args, d, nullptr, "rnnflow schema [--plugin FILE|NAME ...] > rnnflow-graph.schema.json")) return 0;
    std::cout << graph_json_schema(registry_with(c.plugins));
    return 0;
}

// The options every command on a trained run folder takes (generate, eval, predict, vectors):
// RUN_DIR first, --checkpoint and --threads after the command's own, --plugin last.
struct RunFolderArgs {
    std::string dir, checkpoint = "best";
    int threads = 0;
    Common c;
};
void add_run_dir(po::options_description& d, RunFolderArgs& r) {
    d.add_options()("run", po::value(&r.dir)->required(), "a run folder written by `rnnflow run`");
}
void add_checkpoint_threads(po::options_description& d, RunFolderArgs& r) {
    d.add_options()
        ("checkpoint", po::value(&r.checkpoint), "best, last, or a checkpoint file")
        ("threads,t", po::value(&r.threads), "threads (default: the run's)");
}
void add_run_plugins(po::options_description& d, RunFolderArgs& r) {
    d.add_options()("plugin", po::value(&r.c.plugins)->composing(),
                    "load a stage plug-in: a .so path or a name on RNNFLOW_PLUGIN_PATH; repeatable");
}

// A trained run folder's graph (its resolved.yaml) and checkpoint (best, last, or a file).
CompiledGraph load_run_graph(const fs::path& run_dir, const Common& c) {
    const fs::path resolved = run_dir / "resolved.yaml";
    if (!fs::exists(resolved))
        throw Error(run_dir.string() + ": not a run folder (no resolved.yaml)", "give the folder that `rnnflow run` printed");
    return load(resolved.string(), c);
}
fs::path run_checkpoint(const fs::path& run_dir, const std::string& checkpoint) {
    fs::path ckpt = checkpoint == "best" || checkpoint == "last" ? run_dir / "checkpoints" / (checkpoint + ".safetensors")
                                                                 : fs::path(checkpoint);
    if (checkpoint == "best" && !fs::exists(ckpt)) ckpt = run_dir / "checkpoints" / "last.safetensors";
    if (!fs::exists(ckpt)) throw Error(ckpt.string() + ": checkpoint not found", "has the run finished an epoch?");
    return ckpt;
}

// A trained run opened the one way every command on a run folder opens it: the checkpoint found
// (best, last or a file), the engine prepared from the run's fitted state (opt.mode: restore or
// evaluate; the caller's other options kept) and the checkpoint's weights loaded.
struct OpenedRun {
    std::unique_ptr<Engine> engine;
    fs::path checkpoint;
};
OpenedRun open_run(const RunFolderArgs& r, CompiledGraph g, RunOptions opt) {
    const fs::path run_dir(r.dir);
    const fs::path base_dir = g.def.base_dir;
    OpenedRun run;
    run.checkpoint = run_checkpoint(run_dir, r.checkpoint);
    opt.restore_dir = run_dir;
    opt.threads = r.threads;
    run.engine = std::make_unique<Engine>(std::move(g), std::move(opt));
    try {
        run.engine->prepare();
    } catch (Error& e) {
        // A run folder from another machine or checkout: its data paths are relative to a
        // folder that is not here.
        std::error_code ec;
        if (!fs::is_directory(base_dir, ec))
            e.with_hint(e.hint() + (e.hint().empty() ? "" : "; ") + "the run's graph resolves relative paths from " +
                        base_dir.string() + " (base_dir in resolved.yaml), which does not exist here: add --set "
                        "base_dir=DIR, the folder of the graph file the run was made from");
        throw;
    }
    run.engine->load_checkpoint(run.checkpoint);
    return run;
}

// rnnflow generate RUN_DIR: text from a text sampler (printed), or a piece from a frame sampler
// (OUT.mid, OUT.png, OUT.json written, a summary printed). --prime-from SPLIT:INDEX reads the
// run's data again (evaluate mode) to prime from that piece.
int cmd_generate(const std::vector<std::string>& args) {
    RunFolderArgs r;
    auto& [dir, checkpoint, threads, c] = r;
    std::string prime, prime_from, out = "generated";
    std::int64_t n = -1, top_k = -1, seed = -1, prime_frames = -1;
    double temperature = -1, top_p = -1;
    po::options_description d("generate options");
    add_run_dir(d, r);
    d.add_options()
        ("prime,p", po::value(&prime), "text to start from")
        ("length,n", po::value(&n), "tokens (frames) to generate (default: the sampler's length)")
        ("temperature", po::value(&temperature), "softmax (frame: sigmoid) temperature (default: the sampler's)")
        ("top-k", po::value(&top_k), "sample among the k most likely tokens (0: all)")
        ("top-p", po::value(&top_p), "nucleus: sample among the fewest most likely tokens whose "
                                     "probabilities sum to at least P, in [0, 1] (1: all)")
        ("seed", po::value(&seed), "random seed (default: the sampler's)")
        ("prime-from", po::value(&prime_from), "frames: start from piece SPLIT:INDEX of the run's data (test:3), a "
                                               "note-set JSON file (FILE or FILE:SPLIT:INDEX), or none")
        ("prime-frames", po::value(&prime_frames), "frames: how many frames of that piece (default: the sampler's)")
        ("out,o", po::value(&out), "frames: write OUT.mid, OUT.png and OUT.json (default: generated)")
        ("set", po::value(&c.sets)->composing(), "override a value of the run's graph, e.g. base_dir=DIR (a run "
                                                 "folder from elsewhere, primed from its data)");
    add_checkpoint_threads(d, r);
    add_run_plugins(d, r);
    po::positional_options_description pos;
    pos.add("run", 1);
    if (!parse(args, d, &pos, "rnnflow generate RUN_DIR [--prime TEXT | --prime-from SPLIT:INDEX|FILE "
                              "[--prime-frames K]] [-n N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--out OUT]"))
        return 0;
    if (top_p != -1 && !(top_p >= 0 && top_p <= 1))
        throw Error(detail::concat("--top-p must be in [0, 1], got ", top_p), "give the nucleus' probability mass, e.g. 0.9");
    if (prime_frames == 0 || prime_frames < -1) throw Error("--prime-frames must be at least 1", "give the frames to start from");
    RunOptions opt;
    // A piece of the run's data to prime from: the readers read the data files again.
    static const std::regex split_piece("(train|valid|test):[0-9]+");
    opt.mode = std::regex_match(prime_from, split_piece) ? PrepareMode::evaluate : PrepareMode::restore;
    OpenedRun run = open_run(r, load_run_graph(dir, c), std::move(opt));
    SampleRequest req;
    req.prime = prime;
    req.prime_from = prime_from;
    req.prime_frames = prime_frames;
    req.output = out;
    req.length = n;
    req.temperature = temperature;
    req.top_k = top_k;
    req.top_p = top_p;
    req.seed = seed;
    if (req.length < 0) req.length = -1;
    std::cout << run.engine->generate(req) << "\n";
    return 0;
}

// rnnflow eval RUN_DIR [--split S]: the trained model's metrics on a split of the graph's data
// (read again from its files; the fitted vocabulary is loaded from the run folder). Stage outputs
// (translations, confusion matrices, predictions) go into RUN_DIR/<stage>/.
int cmd_eval(const std::vector<std::string>& args) {
    RunFolderArgs r;
    auto& [dir, checkpoint, threads, c] = r;
    std::string split = "test", log_format = "text";
    bool quiet = false;
    po::options_description d("eval options");
    add_run_dir(d, r);
    d.add_options()("split,s", po::value(&split), "the split to evaluate: train, valid or test (default test)");
    add_checkpoint_threads(d, r);
    d.add_options()
        ("set", po::value(&c.sets)->composing(), "override a value of the run's graph, e.g. data.test=FILE (to evaluate "
                                                 "other files) or base_dir=DIR (a run folder from elsewhere)")
        ("log-format", po::value(&log_format), "text (default), or json (one object; progress as JSON lines on stderr)")
        ("quiet,q", po::bool_switch(&quiet), "no progress on stderr");
    add_run_plugins(d, r);
    po::positional_options_description pos;
    pos.add("run", 1);
    if (!parse(args, d, &pos, "rnnflow eval RUN_DIR [--split test|valid|train] [--checkpoint best|last|FILE]")) return 0;
    const ProgressStyle style = progress_style(quiet, log_format);
    if (split != "train" && split != "valid" && split != "test")
        throw Error("--split " + split + ": not a split", "give train, valid or test");
    RunOptions opt;
    opt.mode = PrepareMode::evaluate;
    apply_progress_style(style, opt);
    OpenedRun run = open_run(r, load_run_graph(dir, c), std::move(opt));
    Engine& engine = *run.engine;
    const fs::path& ckpt = run.checkpoint;
    const MetricsRow row = engine.evaluate(split);
    if (row.values.empty())
        throw Error("the run's data has no " + split + " split", "evaluate another --split, or point the reader at a file with --set");
    const bool json = log_format == "json";
    if (json) {
        std::cout << "{\"split\": \"" << split << "\", \"checkpoint\": \"" << ckpt.string() << "\"";
        for (const auto& [k, v] : row.values) std::cout << ", \"" << k << "\": " << std::setprecision(10) << v;
        std::cout << "}\n";
    } else {
        const MetricLabels labels = engine.metric_labels();
        std::cout << split << " (" << ckpt.filename().string() << "):";
        for (const auto& [k, v] : row.values) std::cout << "  " << metric_label(k, labels) << " " << format_metric(v);
        std::cout << "\n";
    }
    return 0;
}

// The options of the commands that print one line per input (predict, translate, caption),
// after the command's inputs: where the lines go, which evaluator, checkpoint and threads,
// progress, plug-ins.
struct PredictArgs {
    std::string stage, output, log_format = "text";
    bool quiet = false;
};
void add_predict_options(po::options_description& d, RunFolderArgs& r, PredictArgs& a, const std::string& what) {
    d.add_options()
        ("output,o", po::value(&a.output), "write the lines to this file (atomically) instead of standard output")
        ("stage", po::value(&a.stage), ("the evaluator stage to take " + what + " from, when several predict").c_str());
    add_checkpoint_threads(d, r);
    d.add_options()
        ("quiet,q", po::bool_switch(&a.quiet), "no progress on stderr")
        ("log-format", po::value(&a.log_format), "progress on stderr as text (a bar on a terminal) or json lines");
    add_run_plugins(d, r);
}
void write_lines(const std::string& text, const std::string& output) {
    if (output.empty()) std::cout << text << std::flush;
    else write_file_atomic(output, text);
}

// The lines of FILE, or of standard input when `input` is empty: '\r' before '\n' and a UTF-8
// byte-order mark dropped, each checked to be UTF-8 (file:line:column).
std::vector<std::string> read_input_lines(const std::string& input) {
    std::vector<std::string> lines;
    std::ifstream file;
    if (!input.empty()) {
        file.open(input, std::ios::binary);
        if (!file) throw Error(input + ": cannot open", "check the path");
    }
    std::istream& is = input.empty() ? std::cin : file;
    std::string line;
    while (std::getline(is, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
    }
    const std::string where = input.empty() ? std::string("standard input") : input;
    if (is.bad()) throw Error(where + ": read error");
    // Checked here, where the line numbers are the user's: the engine leaves blank lines out
    // of what the readers see, so their own check would count only the others.
    if (!lines.empty() && lines[0].rfind("\xEF\xBB\xBF", 0) == 0) lines[0].erase(0, 3);
    for (std::size_t i = 0; i < lines.size(); ++i)
        check_utf8(lines[i], where, static_cast<std::int64_t>(i) + 1, "input");
    return lines;
}

// A restored run's predictions for input lines (Engine::predict), one per line.
std::vector<std::string> predict_lines(const RunFolderArgs& r, CompiledGraph g, std::vector<std::string> lines,
                                       const std::string& stage, const ProgressStyle& style) {
    RunOptions opt;
    opt.mode = PrepareMode::restore;
    opt.infer_lines = std::move(lines);
    apply_progress_style(style, opt);
    OpenedRun run = open_run(r, std::move(g), std::move(opt));
    return run.engine->predict(stage);
}

// rnnflow predict|translate RUN_DIR [FILE]: one output line per input line (stdin or FILE),
// from the graph's predicting evaluator (a translation, a label, a tag sequence).
int cmd_predict(const std::vector<std::string>& args, const char* name) {
    RunFolderArgs r;
    auto& [dir, checkpoint, threads, c] = r;
    PredictArgs a;
    std::string input;
    po::options_description d(std::string(name) + " options");
    add_run_dir(d, r);
    d.add_options()("input", po::value(&input), "a file with one input per line (default: standard input)");
    add_predict_options(d, r, a, "predictions");
    po::positional_options_description pos;
    pos.add("run", 1).add("input", 1);
    if (!parse(args, d, &pos, std::string("rnnflow ") + name + " RUN_DIR [FILE] [-o OUT]")) return 0;
    const ProgressStyle style = progress_style(a.quiet, a.log_format);
    CompiledGraph g = load_run_graph(dir, c);
    std::vector<std::string> lines = read_input_lines(input);
    if (lines.empty()) return 0;
    const std::vector<std::string> out = predict_lines(r, std::move(g), std::move(lines), a.stage, style);
    std::string text;
    for (const auto& l : out) text += l + "\n";
    write_lines(text, a.output);
    return 0;
}

// rnnflow caption RUN_DIR FILE...: a caption per item of feature files (a `features` reader:
// .npy/.safetensors, every item of each file, or FILE#k for item k) or per input the graph's
// reader takes (e.g. an image), printed as INPUT<TAB>caption.
int cmd_caption(const std::vector<std::string>& args) {
    RunFolderArgs r;
    auto& [dir, checkpoint, threads, c] = r;
    PredictArgs a;
    std::vector<std::string> files;
    po::options_description d("caption options");
    add_run_dir(d, r);
    d.add_options()("input", po::value(&files)->composing(), "feature files (.npy, .safetensors), FILE#k for item k");
    add_predict_options(d, r, a, "captions");
    po::positional_options_description pos;
    pos.add("run", 1).add("input", -1);
    if (!parse(args, d, &pos, "rnnflow caption RUN_DIR FILE... [-o OUT]")) return 0;
    if (files.empty()) throw Error("caption: no input file", "give feature files: rnnflow caption RUN_DIR a.npy ...");
    const ProgressStyle style = progress_style(a.quiet, a.log_format);
    CompiledGraph g = load_run_graph(dir, c);
    std::vector<std::string> lines;  // the items, with paths made absolute: the run resolves from its own folder
    std::vector<std::string> shown;  // the same as the user wrote them
    const StageDef* reader = nullptr;
    for (const StageDef& s : g.def.stages)
        if (s.type == "features") reader = &s;
    for (const std::string& f : files) {
        std::vector<std::string> items{f};
        if (reader)
            items = stages::Features::expand_input(f, fs::path(dir) / "state" / reader->id,
                                                   reader->params.get_string("tensor"));
        for (const std::string& item : items) {
            shown.push_back(item);
            const std::size_t hash = item.rfind('#');
            const bool indexed = reader && hash != std::string::npos && item.substr(0, hash) == f;
            lines.push_back(fs::absolute(indexed ? item.substr(0, hash) : item).string() +
                            (indexed ? item.substr(hash) : std::string()));
        }
    }
    const std::vector<std::string> out = predict_lines(r, std::move(g), std::move(lines), a.stage, style);
    std::string text;
    for (std::size_t i = 0; i < out.size(); ++i) text += shown[i] + "\t" + out[i] + "\n";
    write_lines(text, a.output);
    return 0;
}

// rnnflow vectors RUN_DIR [--stage ID] [--out FILE]: the rows of a trained embedding stage as a
// GloVe text file, one "token v1 ... vC" line per vocabulary token (specials left out), values
// written so that `embedding` with `pretrained: FILE` reads back the same floats bit for bit.
int cmd_vectors(const std::vector<std::string>& args) {
    RunFolderArgs r;
    auto& [dir, checkpoint, threads, c] = r;
    std::string stage, output, neighbours;
    std::int64_t k = 10;
    po::options_description d("vectors options");
    add_run_dir(d, r);
    d.add_options()
        ("stage", po::value(&stage), "the embedding stage to export (default: the graph's only one)")
        ("out,o", po::value(&output), "write the vectors to this file (atomically) instead of standard output")
        ("neighbours", po::value(&neighbours), "instead: the tokens nearest to this one by cosine similarity")
        (",k", po::value(&k), "with --neighbours: how many (default 10)");
    add_checkpoint_threads(d, r);
    add_run_plugins(d, r);
    po::positional_options_description pos;
    pos.add("run", 1);
    if (!parse(args, d, &pos, "rnnflow vectors RUN_DIR [--stage ID] [--out FILE] [--neighbours WORD [-k N]] "
                              "[--checkpoint best|last|FILE]\n\n"
                              "Writes the trained vectors of an embedding stage in the GloVe text format, one line\n"
                              "\"token v1 ... vC\" per vocabulary token in id order; the vocabulary's specials (<pad>,\n"
                              "<unk>, ...) and tokens holding spaces are left out. Another graph's embedding reads the\n"
                              "file with pretrained: FILE (the same floats, bit for bit). --neighbours WORD prints\n"
                              "instead the k tokens nearest to WORD, \"rank token cosine\" per line."))
        return 0;
    if (k < 1) throw Error("-k must be at least 1", "give how many neighbours to list");
    const fs::path run_dir(dir);
    CompiledGraph g = load_run_graph(run_dir, c);
    std::vector<std::string> ids, embeddings;
    for (const auto& sd : g.def.stages) {
        ids.push_back(sd.id);
        if (sd.type == "embedding") embeddings.push_back(sd.id);
    }
    auto joined = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
        return s;
    };
    if (stage.empty()) {
        if (embeddings.empty())
            throw Error(dir + ": the run's graph has no embedding stage", "vectors exports a stage of type embedding");
        if (embeddings.size() > 1)
            throw Error(dir + ": the run's graph has " + std::to_string(embeddings.size()) + " embedding stages (" +
                            joined(embeddings) + ")",
                        "choose one with --stage");
        stage = embeddings.front();
    } else if (std::find(ids.begin(), ids.end(), stage) == ids.end()) {
        const std::string hint = did_you_mean(stage, ids);
        throw Error(dir + ": the run's graph has no stage '" + stage + "'",
                    !hint.empty() ? hint
                    : embeddings.empty() ? std::string("it has no embedding stage either")
                                         : "its embedding stages: " + joined(embeddings));
    } else if (const auto& sd = g.def.stages[static_cast<std::size_t>(g.def.index(stage))]; sd.type != "embedding") {
        throw Error(dir + ": stage '" + stage + "' is " + sd.type + ", not an embedding",
                    embeddings.empty() ? std::string("the run's graph has no embedding stage")
                                       : "its embedding stages: " + joined(embeddings));
    }
    if (!output.empty()) {  // refuse an unwritable place before the work
        const fs::path out(output);
        const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
        if (fs::is_directory(out)) throw Error("--out " + output + ": is a folder", "give a file name");
        if (!fs::is_directory(parent))
            throw Error("--out " + output + ": folder '" + parent.string() + "' does not exist", "create it first");
    }
    RunOptions opt;
    opt.mode = PrepareMode::restore;
    OpenedRun run = open_run(r, std::move(g), std::move(opt));
    const fs::path& ckpt = run.checkpoint;
    const auto* emb = dynamic_cast<const stages::Embedding*>(run.engine->stage(stage));
    RNNFLOW_ASSERT(emb != nullptr);
    if (emb->vocabulary() == nullptr)
        throw Error("stage '" + stage + "': its ids come from no vocabulary, so its rows have no tokens to name them",
                    "export an embedding whose input is fed by a vocabulary stage");
    if (!neighbours.empty()) {
        std::string table = "rank\ttoken\tcosine\n";
        std::int64_t rank = 0;
        for (const auto& [t, cos] : nearest_neighbours(*emb->vocabulary(), emb->weight(), neighbours, k))
            table += detail::concat(++rank, "\t", t, "\t", std::to_string(cos), "\n");
        write_lines(table, output);
        return 0;
    }
    VectorsCount n;
    const std::string text = embedding_vectors_text(*emb->vocabulary(), emb->weight(), &n);
    if (output.empty()) std::cout << text << std::flush;
    else write_file_atomic(output, text);
    std::cerr << "stage '" << stage << "' (" << ckpt.filename().string() << "): " << n.rows << " vectors of dim "
              << emb->weight().shape()[1] << (output.empty() ? std::string() : " written to " + output) << "; "
              << n.specials << " specials left out";
    if (n.unwritable > 0) std::cerr << ", " << n.unwritable << " tokens with spaces or line breaks left out";
    std::cerr << "\n";
    return 0;
}

// rnnflow score RUN_DIR [FILE]: each line's log-probability, token count and perplexity under a
// language-model run (cli/score.cpp), and a total; --next K: the most probable next tokens.
int cmd_score(const std::vector<std::string>& args) {
    RunFolderArgs r;
    auto& [dir, checkpoint, threads, c] = r;
    std::string input;
    ScoreOptions so;
    po::options_description d("score options");
    add_run_dir(d, r);
    d.add_options()
        ("input", po::value(&input), "a file with one sentence per line (default: standard input)")
        ("next", po::value(&so.next), "also list the K most probable next tokens after each line")
        ("carry", po::bool_switch(&so.carry), "carry the model's state from line to line (the lines as one text, "
                                              "as an evaluation pass reads them), instead of a zero state per line");
    add_checkpoint_threads(d, r);
    add_run_plugins(d, r);
    po::positional_options_description pos;
    pos.add("run", 1).add("input", 1);
    if (!parse(args, d, &pos, "rnnflow score RUN_DIR [FILE] [--next K] [--carry] [--checkpoint best|last|FILE]\n\n"
                              "Prints per line: tokens scored (<eos> included when the vocabulary has it), tokens\n"
                              "scored as <unk>, log-probability (natural log), the same in bits (log2), perplexity\n"
                              "exp(-logprob / tokens), the line; then a total row."))
        return 0;
    if (so.next < 0) throw Error("--next must be at least 0", "give how many next tokens to list");
    CompiledGraph g = load_run_graph(dir, c);
    std::vector<std::string> vocabs;
    bool lm = false;
    for (const auto& sd : g.def.stages) {
        if (sd.type == "vocabulary") vocabs.push_back(sd.id);
        lm = lm || sd.type == "lm_batches" || sd.type == "sampler";
    }
    if (!lm || vocabs.size() != 1)
        throw Error(dir + ": not a language-model run (score needs a graph with lm_batches or a sampler, and one "
                          "vocabulary stage)",
                    "give the folder of a language model's run, e.g. one of graphs/ptb_small.yaml");
    const std::vector<std::string> lines = read_input_lines(input);
    if (lines.empty())
        throw Error((input.empty() ? std::string("standard input") : input) + ": no lines to score",
                    "give one sentence per line");
    RunOptions opt;
    opt.mode = PrepareMode::restore;
    OpenedRun run = open_run(r, std::move(g), std::move(opt));
    const auto* vs = dynamic_cast<const stages::Vocabulary*>(run.engine->stage(vocabs.front()));
    RNNFLOW_ASSERT(vs != nullptr && vs->vocab() != nullptr);
    std::vector<LineScore> scores;
    run.engine->run_model([&](ModelRunner& m) {
        scores = score_lines(m, *vs->vocab(), lines, so, input.empty() ? std::string("standard input") : input);
    });
    std::cout << score_text(scores, lines, *vs->vocab()) << std::flush;
    std::int64_t unk = 0;
    for (const auto& s : scores) unk += static_cast<std::int64_t>(s.unknown.size());
    if (unk > 0) {
        std::cerr << unk << " token" << (unk == 1 ? "" : "s") << " not in the vocabulary scored as <unk>:";
        for (const auto& s : scores)
            for (const auto& t : s.unknown) std::cerr << " " << t;
        std::cerr << "\n";
    }
    return 0;
}

int cmd_new_stage(const std::vector<std::string>& args) {
    std::string name, dir;
    po::options_description d("new-stage options");
    d.add_options()
        ("name", po::value(&name)->required(), "the stage type, snake_case (also the plug-in's name)")
        ("dir,d", po::value(&dir), "the project folder to create (default: ./NAME); must not exist");
    po::positional_options_description pos;
    pos.add("name", 1);
    if (!parse(args, d, &pos, "rnnflow new-stage NAME [--dir DIR]")) return 0;
    const std::string why = check_stage_name(name, Registry::global());
    if (!why.empty()) throw Error(why, "choose another name, e.g. " + std::string("channel_scale"));
    const fs::path folder = dir.empty() ? fs::path(name) : fs::path(dir);
    if (fs::exists(folder))
        throw Error(folder.string() + " already exists; new-stage writes only into a new folder",
                    "give another --dir, or remove the folder");
    // The prefix this program is installed in (bin/rnnflow -> prefix), for the README.
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    const std::string prefix = ec ? "<rnnflow install prefix>" : exe.parent_path().parent_path().string();
    fs::create_directories(folder);
    std::string listed;
    for (const auto& [file, text] : scaffold_files(name, prefix)) {
        std::ofstream os(folder / file, std::ios::binary);
        os << text;
        if (!os) throw Error((folder / file).string() + ": cannot write", "check the folder's permissions");
        listed += (listed.empty() ? "" : ", ") + file;
    }
    const std::string f = folder.string();
    std::cout << "wrote " << f << "/: " << listed << "\n"
              << "next:\n"
              << "  cmake -S " << f << " -B " << f << "/build -DCMAKE_PREFIX_PATH=" << prefix << "\n"
              << "  cmake --build " << f << "/build && ctest --test-dir " << f << "/build\n"
              << "  rnnflow run " << f << "/" << name << ".yaml --set train.epochs=1 --set train.max_batches=20\n";
    return 0;
}

// The commands, once: `rnnflow --help` prints this table, main dispatches through it, and an
// unknown command's "did you mean" picks from its names.
struct Command {
    const char* name;
    const char* synopsis;  // as the help shows it: "run FILE"
    const char* summary;
    int (*run)(const std::vector<std::string>& args);
};

int cmd_translate(const std::vector<std::string>& args) { return cmd_predict(args, "translate"); }
int cmd_predict_labels(const std::vector<std::string>& args) { return cmd_predict(args, "predict"); }
int cmd_version(const std::vector<std::string>&) {
    std::cout << "rnnflow " << RNNFLOW_VERSION << " (plug-in ABI " << RNNFLOW_ABI_VERSION << ")\n";
    return 0;
}

const Command kCommands[] = {
    {"run", "run FILE", "train and evaluate the experiment in a graph file, writing a run folder", cmd_run},
    {"validate", "validate FILE", "check a graph file; every problem with file:line:column", cmd_validate},
    {"graph", "graph FILE", "print the graph (--dot: Graphviz)", cmd_graph},
    {"stages", "stages [TYPE]", "list stage types with their ports and parameters (--markdown for docs)", cmd_stages},
    {"generate", "generate DIR", "sample text from a trained run folder", cmd_generate},
    {"eval", "eval DIR", "metrics of a trained run on a split (--split test), outputs into DIR/<stage>/", cmd_eval},
    {"predict", "predict DIR", "label lines from stdin or a file with a trained run (one output line each)",
     cmd_predict_labels},
    {"translate", "translate DIR", "the same, for translation graphs", cmd_translate},
    {"caption", "caption DIR FILE...", "caption feature files (every item, or FILE#k) with a trained run",
     cmd_caption},
    {"score", "score DIR", "log-probability and perplexity of each line under a trained language model",
     cmd_score},
    {"vectors", "vectors DIR", "write a trained run's word embedding as a GloVe text file (for pretrained:)",
     cmd_vectors},
    {"schema", "schema", "JSON Schema of graph files, for editors (--plugin adds plug-in types)", cmd_schema},
    {"new-stage", "new-stage NAME", "write a plug-in project for a new stage type (builds against the SDK)",
     cmd_new_stage},
    {"sweep", "sweep FILE", "run a hyper-parameter sweep (grid, random, early stopping; MPI under mpirun)", cmd_sweep},
    {"report", "report DIR", "one self-contained HTML page about a run or sweep folder", cmd_report},
    {"compare", "compare RUN...", "runs side by side: metrics table, validation curves, configuration differences",
     cmd_compare},
    {"runs", "runs [DIR...]", "one table of the runs under folders (default runs/): state, epochs, metric, time",
     cmd_runs},
    {"ensemble", "ensemble RUN...", "average the class probabilities of trained classifiers and score the result",
     cmd_ensemble},
    {"version", "version", "print the version", cmd_version},
};

std::string usage() {
    std::ostringstream os;
    os << "usage: rnnflow <command> [options]\n\ncommands:\n";
    for (const Command& c : kCommands) os << "  " << std::left << std::setw(16) << c.synopsis << c.summary << "\n";
    os << "\n`rnnflow <command> --help` describes a command's options.\n";
    return os.str();
}

int dispatch(const std::string& cmd, const std::vector<std::string>& args) {
    for (const Command& c : kCommands)
        if (cmd == c.name) return c.run(args);
    if (cmd == "--version") return cmd_version(args);
    std::vector<std::string> names;
    for (const Command& c : kCommands) names.emplace_back(c.name);
    const std::string hint = did_you_mean(cmd, names);
    std::cerr << "error: unknown command '" << cmd << "'\n  hint: "
              << (hint.empty() ? "`rnnflow --help` lists the commands" : hint) << "\n";
    return kExitBadInput;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::cout << usage();
        return args.empty() ? kExitBadInput : 0;
    }
    const std::string cmd = args[0];
    args.erase(args.begin());
    try {
        return dispatch(cmd, args);
    } catch (const LoadError& e) {
        std::cerr << e.format() << "\n";
        return kExitBadInput;
    } catch (const Error& e) {
        std::cerr << e.format() << "\n";
        return kExitBadInput;
    } catch (const po::error& e) {
        std::cerr << "error: " << e.what() << "\n  hint: `rnnflow " << cmd << " --help` lists the options\n";
        return kExitBadInput;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return kExitFailed;
    }
}
