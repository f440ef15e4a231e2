// The program under `mpirun -np 2` on this machine: a sweep runs every trial exactly once over
// both ranks with the same results as a local sweep, and data-parallel training on 2 ranks
// ends with the weights of one process training on the combined batch. Exits 77 (ctest: skipped)
// when mpirun is absent or the program was built without MPI.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>

#include "pipeline/core/safetensors.hpp"
#include "pipeline/sweep/state.hpp"
#include "pipeline/sweep/sweep.hpp"

using namespace rnnflow;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("rnnflow_sweep_mpi_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

void skip_without_mpirun() {
    if (!RNNFLOW_TEST_HAVE_MPI) {
        std::cerr << "skipped: rnnflow was built without MPI\n";
        std::exit(77);
    }
    if (std::system("command -v mpirun > /dev/null 2>&1") != 0) {
        std::cerr << "skipped: mpirun not found (Debian: openmpi-bin)\n";
        std::exit(77);
    }
}

// mpirun on this host only: no ssh (processes are started locally), and as root in CI
// containers OpenMPI wants --allow-run-as-root; --oversubscribe allows more ranks than cores.
std::string mpirun(int np) {
    // OpenMPI's own components (dlopen'd and unloaded at MPI_Finalize) leave allocations that
    // LeakSanitizer reports in sanitizer builds; the ranks' leak check is off, ours stays on.
    std::string cmd = "ASAN_OPTIONS=detect_leaks=0 mpirun -np " + std::to_string(np) + " --oversubscribe";
    if (::geteuid() == 0) cmd += " --allow-run-as-root";
    return cmd + " ";
}

int sh(const std::string& cmd) {
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

fs::path pattern_graph(const fs::path& dir, int layers) {
    {
        std::ofstream os(dir / "pattern.txt");
        for (int i = 0; i < 600; ++i) os << "abcabdabce ";
    }
    std::ofstream g(dir / "pattern.yaml");
    g << "experiment: pattern\n"
         "seed: 3\n"
         "stages:\n"
         "  corpus: {type: text_file, train: [pattern.txt], by: file, valid_fraction: 0.1}\n"
         "  tokens: {type: tokenize, in: corpus, mode: char}\n"
         "  vocab:  {type: vocabulary, in: tokens, specials: [<unk>]}\n"
         "  batch:  {type: lm_batches, in: vocab.out, batch: 8, bptt: 16}\n"
         "  embed:  {type: embedding, in: batch.ids, dim: 8}\n"
         "  rnn:    {type: lstm, in: embed, hidden: 16, layers: " << layers << ", carry_state: true}\n"
         "  logits: {type: linear, in: rnn, out_dim: vocab.size}\n"
         "  loss:   {type: cross_entropy, logits: logits, target: batch.targets}\n"
         "  optim:  {type: adam, minimize: loss, lr: 0.01, clip_norm: 5}\n"
         "  ppl:    {type: perplexity, loss: loss}\n"
         "train: {epochs: 2, keep: best(ppl.valid), max_batches: 3, test: false, threads: 1}\n";
    return dir / "pattern.yaml";
}

}  // namespace

TEST_CASE("sweep under mpirun -np 2: every trial runs once, with the results of a local sweep", "[sweep][mpi]") {
    skip_without_mpirun();
    const fs::path dir = scratch("sweep");
    pattern_graph(dir, 1);
    {
        std::ofstream s(dir / "s.yaml");
        s << "graph: pattern.yaml\ngrid: {optim.lr: [0.01, 0.02, 0.03], rnn.hidden: [8, 16]}\n"
             "objective: {metric: ppl}\n";
    }
    REQUIRE(sh(mpirun(2) + RNNFLOW_CLI " sweep " + (dir / "s.yaml").string() + " --out " + (dir / "mpi").string() +
               " --quiet > " + (dir / "mpi.log").string() + " 2>&1") == 0);
    SweepState st(dir / "mpi" / "sweep.db");
    const auto trials = st.trials();
    REQUIRE(trials.size() == 6);
    std::set<std::string> workers;
    for (const auto& t : trials) {
        INFO("trial " << t.id << " " << t.status << " " << t.error);
        REQUIRE(t.status == "done");
        REQUIRE(t.attempts == 1);
        workers.insert(t.worker.substr(0, 6));
    }
    REQUIRE(workers.count("rank 1"));  // rank 1 took trials
    REQUIRE(workers.count("rank 0"));  // and so did rank 0's own thread

    // The same sweep in this process: the same objectives (same seed, one thread per trial).
    Sweep local(load_sweep(dir / "s.yaml"), dir / "local", false, false);
    local.run_local(1, 1, Registry::global());
    SweepState ls(dir / "local" / "sweep.db");
    for (const auto& t : trials) {
        INFO("trial " << t.id);
        REQUIRE(ls.trial(t.id).key == t.key);
        REQUIRE(ls.trial(t.id).objective == t.objective);
    }
}

TEST_CASE("run under mpirun -np 2: data-parallel training matches one process on the combined batch", "[mpi][parallel]") {
    skip_without_mpirun();
    const fs::path dir = scratch("dp");
    const fs::path g = pattern_graph(dir, 2);
    const std::string sets = " --threads 1 --quiet --set train.max_batches=6 --set optim.clip_norm=0 --set train.epochs=1";
    REQUIRE(sh(std::string(RNNFLOW_CLI) + " run " + g.string() + " --out " + (dir / "one").string() + sets + " > " +
               (dir / "one.log").string() + " 2>&1") == 0);
    REQUIRE(sh(mpirun(2) + RNNFLOW_CLI " run " + g.string() + " --out " + (dir / "two").string() + sets + " > " +
               (dir / "two.log").string() + " 2>&1") == 0);
    const TensorFile one = load_safetensors(dir / "one" / "checkpoints" / "last.safetensors");
    const TensorFile two = load_safetensors(dir / "two" / "checkpoints" / "last.safetensors");
    int compared = 0;
    for (const auto& [name, x] : one.tensors) {
        // Run state for resuming (a carried recurrent state) is in one-process checkpoints only.
        if (x.dtype() != DType::f32 || name.rfind("resume/", 0) == 0) continue;
        const Tensor* y = two.find(name);
        REQUIRE(y != nullptr);
        REQUIRE(y->numel() == x.numel());
        double worst = 0;
        for (std::int64_t e = 0; e < x.numel(); ++e)
            worst = std::max(worst, std::abs(double(x.data<float>()[e]) - double(y->data<float>()[e])));
        INFO(name);
        REQUIRE(worst < 1e-4);  // float sums in another order, six Adam steps (as in engine_test)
        ++compared;
    }
    REQUIRE(compared > 6);
    // Only rank 0 wrote a run folder; its validation metrics cover the whole split.
    REQUIRE(fs::exists(dir / "two" / "metrics.csv"));
}
