// train.early_stopping: the count of epochs without an improvement larger than min_delta (from
// the recorded rows only), a run that stops there and a resumed run that stops at the same
// epoch, and the loader's refusals.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline/exec/engine.hpp"
#include "pipeline/exec/keep_policy.hpp"
#include "pipeline/graph/graph.hpp"

using namespace rnnflow;
namespace fs = std::filesystem;

namespace {

MetricsRow row(std::int64_t epoch, const std::string& split, double v) {
    MetricsRow r;
    r.epoch = epoch;
    r.split = split;
    r.values = {{"loss", 1.0}, {"ppl", v}};
    return r;
}

fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("rnnflow_early_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

std::string graph_text(const fs::path& corpus, const std::string& train) {
    std::ofstream os(corpus);
    for (int i = 0; i < 300; ++i) os << "abcabdabce ";
    os.close();
    return "experiment: early\n"
           "seed: 3\n"
           "stages:\n"
           "  corpus: {type: text_file, train: ['" + corpus.string() + "'], by: file, valid_fraction: 0.1}\n"
           "  tokens: {type: tokenize, in: corpus, mode: char}\n"
           "  vocab:  {type: vocabulary, in: tokens, specials: [<unk>]}\n"
           "  batch:  {type: lm_batches, in: vocab.out, batch: 8, bptt: 16}\n"
           "  embed:  {type: embedding, in: batch.ids, dim: 8}\n"
           "  rnn:    {type: lstm, in: embed, hidden: 16}\n"
           "  logits: {type: linear, in: rnn, out_dim: vocab.size}\n"
           "  loss:   {type: cross_entropy, logits: logits, target: batch.targets}\n"
           "  optim:  {type: adam, minimize: loss, lr: 0.01}\n"
           "  ppl:    {type: perplexity, loss: loss}\n"
           "train: " + train + "\n";
}

CompiledGraph compile_text(const std::string& text) {
    return compile(load_graph_text(text, "early.yaml", fs::current_path(), {}, Registry::global()), Registry::global());
}

std::string load_error(const std::string& train) {
    const fs::path dir = scratch("load");
    try {
        load_graph_text(graph_text(dir / "c.txt", train), "early.yaml", fs::current_path(), {}, Registry::global());
    } catch (const LoadError& e) {
        return e.format();
    }
    return "";
}

std::int64_t train_rows(const TrainResult& r) {
    std::int64_t n = 0;
    for (const auto& x : r.rows) n += x.split == "train";
    return n;
}

}  // namespace

TEST_CASE("early stopping: epochs since the last improvement larger than min_delta", "[engine][early_stopping]") {
    TrainDef td;
    td.keep_metric = "ppl";
    td.patience = 3;
    td.min_delta = 0.01;
    KeepPolicy keep(td);
    const std::map<std::string, bool> lower{{"ppl", false}}, higher{{"ppl", true}};
    std::vector<MetricsRow> rows;
    double best = 0;
    std::int64_t best_epoch = 0;
    REQUIRE(keep.stalled_epochs(rows, lower) == 0);
    // 5 (ref) → 4 (better by 1: ref) → 3.995, 3.99 (not by more than 0.01) → 4.1 (worse)
    const std::vector<double> values{5, 4, 3.995, 3.99, 4.1};
    for (std::size_t i = 0; i < values.size(); ++i) {
        rows.push_back(row(std::int64_t(i) + 1, "train", 0.5));  // other splits do not count
        rows.push_back(row(std::int64_t(i) + 1, "valid", values[i]));
    }
    rows.push_back(row(0, "valid", 1.0));  // the final evaluation (epoch 0) does not count
    REQUIRE(keep.stalled_epochs(rows, lower, &best, &best_epoch) == 3);
    REQUIRE(best == 4);
    REQUIRE(best_epoch == 2);
    REQUIRE(keep.stops(rows, lower));
    rows.push_back(row(6, "valid", 3.5));
    REQUIRE(keep.stalled_epochs(rows, lower) == 0);
    REQUIRE_FALSE(keep.stops(rows, lower));
    SECTION("higher is better: 4.1 improves on 5? no; the values rising count") {
        std::vector<MetricsRow> up;
        for (double v : {1.0, 1.5, 1.505, 2.0, 1.9}) up.push_back(row(std::int64_t(up.size()) + 1, "valid", v));
        REQUIRE(keep.stalled_epochs(up, higher, &best, &best_epoch) == 1);
        REQUIRE(best == 2.0);
        REQUIRE(best_epoch == 4);
    }
    SECTION("min_delta 0: any strict improvement resets the count") {
        td.min_delta = 0;
        REQUIRE(keep.stalled_epochs(rows, lower) == 0);
        rows.pop_back();
        REQUIRE(keep.stalled_epochs(rows, lower, &best) == 1);  // 3.99 improved on 3.995
        REQUIRE(best == 3.99);
    }
    SECTION("patience 0 never stops") {
        td.patience = 0;
        rows.pop_back();
        REQUIRE_FALSE(keep.stops(rows, lower));
    }
}

TEST_CASE("early stopping: a run stops after patience epochs without improvement, and a resumed run stops there too",
          "[engine][early_stopping][e2e]") {
    const fs::path dir = scratch("run");
    // min_delta larger than any change: epoch 1 sets the reference, epochs 2 and 3 stall.
    const std::string text =
        graph_text(dir / "c.txt", "{epochs: 8, keep: best(ppl.valid), early_stopping: {patience: 2, min_delta: 1.0e9}}");
    RunOptions opt;
    opt.run_dir = dir / "run";
    std::ostringstream log;
    opt.log = &log;
    TrainResult full;
    {
        Engine e(compile_text(text), opt);
        e.prepare();
        full = e.train();
    }
    REQUIRE(train_rows(full) == 3);
    REQUIRE(full.early_stop_epoch == 3);
    REQUIRE_FALSE(full.stopped_early);  // that flag is on_epoch's (sweeps' pruning)
    INFO(log.str());
    REQUIRE(log.str().find("early stopping after epoch 3 of 8: ppl.perplexity on valid has not improved by more "
                           "than 1e+09 for 2 epochs (best ") != std::string::npos);
    // Resumed from the checkpoint of its last epoch, the run stops before training again.
    opt.resume = true;
    Engine again(compile_text(text), opt);
    again.prepare();
    const TrainResult resumed = again.train();
    REQUIRE(train_rows(resumed) == 3);
    REQUIRE(resumed.early_stop_epoch == 3);
    SECTION("without early_stopping the same run trains every epoch") {
        const fs::path d2 = scratch("run_all");
        Engine e(compile_text(graph_text(d2 / "c.txt", "{epochs: 4, keep: best(ppl.valid)}")), RunOptions{});
        e.prepare();
        const TrainResult r = e.train();
        REQUIRE(train_rows(r) == 4);
        REQUIRE(r.early_stop_epoch == 0);
    }
}

TEST_CASE("early stopping: the loader refuses what cannot work", "[graph][early_stopping]") {
    CHECK(load_error("{epochs: 3, keep: best(ppl.valid), early_stopping: 2}").empty());
    CHECK(load_error("{epochs: 3, keep: best(ppl.valid), early_stopping: {patience: 2, min_delta: 0.5}}").empty());
    const std::string last = load_error("{epochs: 3, keep: last, early_stopping: 2}");
    CHECK(last.find("early.yaml:14:") != std::string::npos);
    CHECK(last.find("'early_stopping' watches the metric of keep: best(...), and keep is last") != std::string::npos);
    CHECK(last.find("hint: set keep: best(<stage>.<split>)") != std::string::npos);
    CHECK(load_error("{epochs: 3, keep: best(ppl.valid), early_stopping: 0}").find("must be >= 1, got 0") !=
          std::string::npos);
    CHECK(load_error("{epochs: 3, keep: best(ppl.valid), early_stopping: {min_delta: 0.1}}").find("needs a patience") !=
          std::string::npos);
    CHECK(load_error("{epochs: 3, keep: best(ppl.valid), early_stopping: {patience: 2, min_delta: -1}}")
              .find("'min_delta' must be a number >= 0, got '-1'") != std::string::npos);
    CHECK(load_error("{epochs: 3, keep: best(ppl.valid), early_stopping: {patience: 2, patiense: 3}}")
              .find("unknown key 'patiense' in train.early_stopping") != std::string::npos);
    CHECK(load_error("{epochs: 3, keep: best(ppl.valid), early_stopping: [2]}")
              .find("must be a patience or a mapping") != std::string::npos);
}
