// Sweeps: expansion of sweep files, their errors, the early-stopping rules on scripted
// histories, failure isolation and resume through real (tiny) trainings, message round trips.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <set>

#include "pipeline/exec/resume.hpp"
#include "pipeline/sweep/scheduler.hpp"
#include "pipeline/sweep/spec.hpp"
#include "pipeline/sweep/state.hpp"
#include "pipeline/sweep/sweep.hpp"

using namespace rnnflow;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("rnnflow_sweep_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

// The engine test's pattern corpus and a one-layer LSTM on it; a few batches per epoch.
fs::path pattern_graph(const fs::path& dir) {
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
         "  rnn:    {type: lstm, in: embed, hidden: 16, layers: 1, carry_state: true}\n"
         "  logits: {type: linear, in: rnn, out_dim: vocab.size}\n"
         "  loss:   {type: cross_entropy, logits: logits, target: batch.targets}\n"
         "  optim:  {type: adam, minimize: loss, lr: 0.01, clip_norm: 5}\n"
         "  ppl:    {type: perplexity, loss: loss}\n"
         "train: {epochs: 2, keep: best(ppl.valid), max_batches: 3, test: false, threads: 1}\n";
    return dir / "pattern.yaml";
}

SweepSpec spec_text(const fs::path& dir, const std::string& body) {
    return load_sweep_text("graph: pattern.yaml\n" + body, (dir / "s.yaml").string(), dir);
}

std::string first_error(const std::string& text, const fs::path& dir) {
    try {
        load_sweep_text(text, "s.yaml", dir);
    } catch (const LoadError& e) {
        return e.diagnostics().front().format();
    }
    return "";
}

std::string value(const SweepTrialSpec& t, const std::string& path) {
    for (const auto& v : t.values)
        if (v.path == path) return v.text;
    return "";
}

}  // namespace

TEST_CASE("sweep spec: a grid is the product of its axes, last axis fastest, times the seeds", "[sweep][spec]") {
    const fs::path dir = scratch("grid");
    pattern_graph(dir);
    const SweepSpec s = spec_text(dir, "grid: {rnn.layers: [1, 2], rnn.hidden: [8, 16, 32]}\nseeds: [1, 2]\n"
                                       "set: {train.epochs: 3}\n");
    REQUIRE(s.trials.size() == 12);
    REQUIRE(s.param_paths == std::vector<std::string>{"rnn.layers", "rnn.hidden"});
    REQUIRE(value(s.trials[0], "rnn.layers") == "1");
    REQUIRE(value(s.trials[0], "rnn.hidden") == "8");
    REQUIRE(value(s.trials[2], "rnn.hidden") == "16");  // seeds innermost, then hidden
    REQUIRE(s.trials[1].seed == 2);
    REQUIRE(s.trials[1].config == 0);
    REQUIRE(s.trials[11].config == 5);
    REQUIRE(s.trials[0].overrides ==
            std::vector<std::string>{"train.epochs=3", "rnn.layers=1", "rnn.hidden=8", "seed=1"});
    std::set<std::string> keys;
    for (const auto& t : s.trials) keys.insert(t.key);
    REQUIRE(keys.size() == 12);
    // max_trials cuts the list in order.
    REQUIRE(spec_text(dir, "grid: {rnn.layers: [1, 2], rnn.hidden: [8, 16, 32]}\nmax_trials: 4\n").trials.size() == 4);
}

TEST_CASE("sweep spec: linked values change together", "[sweep][spec]") {
    const fs::path dir = scratch("linked");
    pattern_graph(dir);
    const SweepSpec s = spec_text(dir,
        "grid: {optim.lr: [0.01, 0.001]}\n"
        "linked:\n"
        "  - [{rnn.hidden: 8, embed.dim: 4}, {rnn.hidden: 32, embed.dim: 16}]\n");
    REQUIRE(s.trials.size() == 4);
    for (const auto& t : s.trials)
        REQUIRE((value(t, "rnn.hidden") == "8") == (value(t, "embed.dim") == "4"));
    REQUIRE(value(s.trials[1], "embed.dim") == "16");
    REQUIRE(first_error("graph: pattern.yaml\nlinked:\n  - [{rnn.hidden: 8, embed.dim: 4}, {rnn.hidden: 32}]\n", dir) ==
            "s.yaml:3:37: error: every mapping of a linked group must set the same paths\n"
            "  hint: the first sets 2 path(s), in this order");
}

TEST_CASE("sweep spec: random draws are reproducible with random_seed and within their ranges", "[sweep][spec]") {
    const fs::path dir = scratch("random");
    pattern_graph(dir);
    const std::string body =
        "random:\n"
        "  optim.lr: {log_uniform: [1.0e-4, 1.0e-1]}\n"
        "  rnn.dropout: {uniform: [0, 0.5]}\n"
        "  embed.dim: {int: [4, 9]}\n"
        "  batch.bptt: {choice: [8, 16]}\n"
        "grid: {rnn.layers: [1, 2]}\n"
        "samples: 20\n";
    const SweepSpec a = spec_text(dir, body + "random_seed: 5\n");
    const SweepSpec b = spec_text(dir, body + "random_seed: 5\n");
    const SweepSpec c = spec_text(dir, body + "random_seed: 6\n");
    REQUIRE(a.trials.size() == 40);
    bool differs = false;
    std::set<std::string> dims, bptts;
    for (std::size_t i = 0; i < a.trials.size(); ++i) {
        REQUIRE(a.trials[i].key == b.trials[i].key);
        differs = differs || a.trials[i].key != c.trials[i].key;
        const double lr = std::stod(value(a.trials[i], "optim.lr"));
        REQUIRE(lr >= 1e-4);
        REQUIRE(lr <= 1e-1);
        const double p = std::stod(value(a.trials[i], "rnn.dropout"));
        REQUIRE((p >= 0 && p <= 0.5));
        dims.insert(value(a.trials[i], "embed.dim"));
        bptts.insert(value(a.trials[i], "batch.bptt"));
    }
    REQUIRE(differs);
    for (const auto& d : dims) REQUIRE((std::stoi(d) >= 4 && std::stoi(d) <= 9));
    REQUIRE(dims.size() > 3);
    REQUIRE(bptts == std::set<std::string>{"8", "16"});
    // Without samples, max_trials sets the number of draws.
    REQUIRE(spec_text(dir, "random: {optim.lr: {uniform: [0.1, 0.2]}}\nmax_trials: 7\n").trials.size() == 7);
}

TEST_CASE("sweep spec: objective direction comes from the metric, or from goal", "[sweep][spec]") {
    const fs::path dir = scratch("objective");
    pattern_graph(dir);
    REQUIRE(spec_text(dir, "objective: {metric: ppl}\n").objective.minimize);
    REQUIRE_FALSE(spec_text(dir, "objective: {metric: acc}\n").objective.minimize);
    REQUIRE_FALSE(spec_text(dir, "objective: {metric: ppl, goal: max}\n").objective.minimize);
    REQUIRE(first_error("graph: pattern.yaml\nobjective: {metric: score}\n", dir) ==
            "s.yaml:2:12: error: cannot tell whether 'score' is better low or high\n  hint: add goal: min or goal: max");
}

TEST_CASE("sweep spec: errors point at file:line:column", "[sweep][spec]") {
    const fs::path dir = scratch("errors");
    pattern_graph(dir);
    REQUIRE(first_error("graph: pattern.yaml\ngird: {rnn.hidden: [1]}\n", dir) ==
            "s.yaml:2:1: error: unknown key 'gird' in the sweep file\n  hint: did you mean 'grid'?");
    REQUIRE(first_error("graph: pattern.yaml\ngrid:\n  rnn.hidden: [1]\n  rnn.hidden: [2]\n", dir) ==
            "s.yaml:4:3: error: duplicate key 'rnn.hidden'\n  hint: 'rnn.hidden' is first given at line 3; remove one of them");
    REQUIRE(first_error("graph: pattern.yaml\nrandom:\n  optim.lr: {log_uniform: [0, 1]}\nsamples: 2\n", dir) ==
            "s.yaml:3:27: error: log_uniform needs lo > 0, got 0\n  hint: use uniform for ranges that include 0");
    REQUIRE(first_error("graph: pattern.yaml\nrandom:\n  optim.lr: {normal: [0, 1]}\nsamples: 2\n", dir).rfind(
                "s.yaml:3:22: error: unknown distribution 'normal' for 'optim.lr'", 0) == 0);
    REQUIRE(first_error("graph: missing.yaml\n", dir).rfind("s.yaml:1:8: error: graph file '", 0) == 0);
    REQUIRE(first_error("graph: pattern.yaml\ngrid: {rnn.hidden: 8}\n", dir) ==
            "s.yaml:2:20: error: grid values of 'rnn.hidden' must be a non-empty list, got '8'\n  hint: e.g. rnn.hidden: [1, 2]");
    REQUIRE(first_error("graph: pattern.yaml\nearly_stopping: {rule: hyperband}\n", dir).rfind(
                "s.yaml:2:24: error: unknown early-stopping rule 'hyperband'", 0) == 0);
    REQUIRE(first_error("graph: pattern.yaml\ngrid: {rnn.hidden: [1}\n", dir).rfind("s.yaml:2:", 0) == 0);
}

TEST_CASE("sweep early stopping: the median rule stops trials worse than the median of the others", "[sweep][schedule]") {
    MedianStopper m(/*grace_epochs=*/1, /*min_trials=*/2);
    // Three trials run to the end: running means at epoch 2 are 2.5, 3.5, 4.5.
    REQUIRE(m.report(1, 1, 3.0));
    REQUIRE(m.report(1, 2, 2.0));
    REQUIRE(m.report(2, 1, 4.0));
    REQUIRE(m.report(2, 2, 3.0));  // only one other trial at epoch 2: no decision yet
    REQUIRE(m.report(3, 1, 5.0));
    REQUIRE_FALSE(m.report(3, 2, 4.0));  // best 4.0 > median(2.5, 3.5) = 3.0: stopped
    REQUIRE(m.report(4, 1, 9.0));        // epoch 1 is within the grace period
    REQUIRE(m.report(4, 2, 2.9));        // best 2.9 <= median(2.5, 3.5, 4.5) = 3.5
    REQUIRE(m.report(5, 2, 3.6));        // 3.6 <= median(2.5, 3.5, 4.5, 5.95) = 4.0
    REQUIRE_FALSE(m.report(6, 2, 4.1));  // 4.1 > median(2.5, 3.5, 3.6, 4.5, 5.95) = 3.6
}

TEST_CASE("sweep early stopping: ASHA keeps the best 1/eta at each rung", "[sweep][schedule]") {
    AshaStopper a(/*min_epochs=*/1, /*eta=*/2);  // rungs at epochs 1, 2, 4, 8
    REQUIRE(a.report(1, 1, 5.0));       // first at rung 1: continues
    REQUIRE_FALSE(a.report(2, 1, 6.0)); // best 1 of 2 is 5.0: stopped
    REQUIRE(a.report(3, 1, 4.0));       // best 1 of 3 is 4.0: itself
    REQUIRE(a.report(4, 1, 4.5));       // best 2 of 4 are 4.0, 4.5
    REQUIRE_FALSE(a.report(5, 1, 4.8)); // best 2 of 5 are 4.0, 4.5
    REQUIRE(a.report(1, 3, 1.0));       // epoch 3 is no rung
    REQUIRE(a.report(1, 2, 3.0));       // rung 2: first
    REQUIRE_FALSE(a.report(3, 2, 3.5));
    REQUIRE(a.report(4, 4, 9.0));       // rung 4: first
}

TEST_CASE("sweep messages: tasks, metrics and outcomes survive their text form", "[sweep]") {
    TrialTask t{7, "/a/g.yaml", {"rnn.hidden=8", "corpus.train=[a.txt, b.txt]", "seed=2"}, "/s/trials/0007", true};
    const TrialTask u = decode_task(encode_task(t));
    REQUIRE(u.id == 7);
    REQUIRE(u.resume);
    t.resume = false;
    REQUIRE_FALSE(decode_task(encode_task(t)).resume);
    REQUIRE(u.graph == t.graph);
    REQUIRE(u.run_dir == t.run_dir);
    REQUIRE(u.overrides == t.overrides);
    MetricsRow r;
    r.epoch = 3;
    r.split = "valid";
    r.values = {{"loss", 0.1234567890123}, {"ppl", std::nan("")}};
    TrialOutcome o;
    o.status = "failed";
    o.seconds = 1.5;
    o.error = "x.yaml:1:2: error: bad\n  hint: fix it";
    o.final_rows = {r};
    const TrialOutcome p = decode_outcome(encode_outcome(o));
    REQUIRE(p.status == "failed");
    REQUIRE(p.error == o.error);
    REQUIRE(p.seconds == 1.5);
    REQUIRE(p.final_rows.size() == 1);
    REQUIRE(p.final_rows[0].epoch == 3);
    REQUIRE(p.final_rows[0].get("loss") == 0.1234567890123);
    REQUIRE(std::isnan(p.final_rows[0].get("ppl")));
    REQUIRE(decode_rows(encode_rows({r, MetricsRow{}})).size() == 2);
}

TEST_CASE("sweep: a trial with a bad value fails with its error and the others finish", "[sweep][e2e]") {
    const fs::path dir = scratch("isolation");
    pattern_graph(dir);
    SweepSpec spec = spec_text(dir, "grid: {rnn.hidden: [8, -1, 16]}\nobjective: {metric: ppl}\n");
    Sweep sweep(std::move(spec), dir / "out", false, false);
    sweep.run_local(2, 1, Registry::global());
    const SweepSummary s = sweep.export_results(Registry::global());
    REQUIRE(s.done == 2);
    REQUIRE(s.failed == 1);
    SweepState st(dir / "out" / "sweep.db");
    const TrialRecord bad = st.trial(2);
    REQUIRE(bad.status == "failed");
    REQUIRE(bad.error.find("'hidden' must be in [1, 65536], got -1") != std::string::npos);
    REQUIRE(st.trial(1).status == "done");
    REQUIRE(st.trial(3).objective.has_value());
    REQUIRE(st.history(1, "valid", "ppl").size() == 2);  // per-epoch metrics
    for (const char* f : {"results.csv", "results.md", "trials.csv", "best.yaml", "curves.csv", "plot.gnuplot"})
        REQUIRE(fs::exists(dir / "out" / f));
    // The best configuration loads as a graph.
    REQUIRE_NOTHROW(load_graph(dir / "out" / "best.yaml", {}, Registry::global()));
}

TEST_CASE("sweep: resuming skips finished trials and reruns interrupted ones", "[sweep][e2e]") {
    const fs::path dir = scratch("resume");
    pattern_graph(dir);
    const std::string body = "grid: {optim.lr: [0.01, 0.02, 0.03]}\nobjective: {metric: ppl}\n";
    std::optional<double> first_objective;
    {
        Sweep sweep(spec_text(dir, body), dir / "out", false, false);
        sweep.run_local(1, 1, Registry::global());
        first_objective = SweepState(dir / "out" / "sweep.db").trial(2).objective;
    }
    REQUIRE_THROWS_WITH(Sweep(spec_text(dir, body), dir / "out", false, false),
                        Catch::Contains("already holds a sweep"));
    {
        SweepState st(dir / "out" / "sweep.db");  // trial 2 as a killed sweep leaves it
        st.mark_running(2, (dir / "out" / "trials" / "0002").string(), "killed");
    }
    Sweep again(spec_text(dir, body), dir / "out", true, false);
    REQUIRE(again.queued() == 1);
    again.run_local(2, 1, Registry::global());
    SweepState st(dir / "out" / "sweep.db");
    REQUIRE(st.trial(1).attempts == 1);
    REQUIRE(st.trial(2).attempts == 3);  // its run, the start marked as interrupted, the rerun
    REQUIRE(st.trial(3).attempts == 1);
    REQUIRE(st.trial(2).status == "done");
    REQUIRE(st.trial(2).objective == first_objective);  // same seed and threads: same numbers
    // Nothing is left to run.
    REQUIRE(Sweep(spec_text(dir, body), dir / "out", true, false).queued() == 0);
}

TEST_CASE("sweep: an interrupted sweep continues its running trial from its checkpoint, exactly", "[sweep][e2e][resume]") {
    const fs::path dir = scratch("interrupt");
    pattern_graph(dir);
    const std::string body = "grid: {optim.lr: [0.01, 0.02]}\nset: {train.epochs: 3, train.checkpoint_every: 2}\n"
                             "objective: {metric: ppl}\n";
    {
        Sweep ref(spec_text(dir, body), dir / "ref", false, false);
        ref.run_local(1, 1, Registry::global());
    }
    {
        // SIGINT during trial 1's 5th step (epoch 2): it checkpoints and stops; trial 2 never starts.
        set_fault("interrupt@batch:5");
        Sweep sweep(spec_text(dir, body), dir / "out", false, false);
        sweep.run_local(1, 1, Registry::global());
        set_fault("");
        REQUIRE(sweep.interrupted() == 1);
        REQUIRE(sweep.queued() == 1);
        request_interrupt(0);
    }
    SweepState before(dir / "out" / "sweep.db");
    REQUIRE(before.trial(1).status == "running");
    REQUIRE(before.trial(2).status == "pending");
    Sweep again(spec_text(dir, body), dir / "out", true, false);
    REQUIRE(again.queued() == 2);
    again.run_local(1, 1, Registry::global());
    SweepState ref(dir / "ref" / "sweep.db"), st(dir / "out" / "sweep.db");
    for (int id : {1, 2}) {
        INFO("trial " << id);
        REQUIRE(st.trial(id).status == "done");
        REQUIRE(st.trial(id).objective == ref.trial(id).objective);  // bit for bit
        REQUIRE(st.history(id, "valid", "ppl") == ref.history(id, "valid", "ppl"));  // restored epochs too
        REQUIRE(st.history(id, "train", "loss") == ref.history(id, "train", "loss"));
    }
    // Trial 1 continued (its folder's command.txt holds both starts); it did not start over.
    std::ifstream cmd(dir / "out" / "trials" / "0001" / "command.txt");
    int starts = 0;
    for (std::string l; std::getline(cmd, l);) starts += l.rfind("rnnflow run", 0) == 0;
    REQUIRE(starts == 2);
}

TEST_CASE("sweep: early stopping prunes trials through the engine's on_epoch hook", "[sweep][e2e]") {
    const fs::path dir = scratch("prune");
    pattern_graph(dir);
    // lr 0.05 learns fast; 1e-5 barely moves: with ASHA (eta 2) at epoch 1 the slow ones stop.
    Sweep sweep(spec_text(dir, "grid: {optim.lr: [0.05, 1.0e-5, 2.0e-5]}\nset: {train.epochs: 3}\n"
                               "objective: {metric: ppl}\nearly_stopping: {rule: asha, eta: 2, min_epochs: 1}\n"),
                dir / "out", false, false);
    sweep.run_local(1, 1, Registry::global());
    SweepState st(dir / "out" / "sweep.db");
    REQUIRE(st.trial(1).status == "done");
    REQUIRE(st.trial(1).epochs == 3);
    REQUIRE(st.trial(2).status == "pruned");
    REQUIRE(st.trial(2).epochs == 1);
    REQUIRE(st.trial(3).status == "pruned");
}
