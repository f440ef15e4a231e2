// The engine end to end: real stages from the registry, a graph from text, training on a
// pattern, determinism, checkpoints, sampling and errors that name the stage.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <array>
#include <barrier>
#include <thread>
#include <filesystem>
#include <fstream>

#include "pipeline/exec/engine.hpp"
#include "pipeline/core/safetensors.hpp"
#include "pipeline/graph/graph.hpp"

using namespace rnnflow;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("rnnflow_engine_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

// A repeating pattern a small LSTM can learn exactly: every next character is determined by
// the previous ones within a period of 11.
fs::path pattern_corpus(const fs::path& dir) {
    std::ofstream os(dir / "pattern.txt");
    for (int i = 0; i < 600; ++i) os << "abcabdabce ";
    return dir / "pattern.txt";
}

std::string pattern_graph(const fs::path& corpus, const std::string& cell_extra = "") {
    return "experiment: pattern\n"
           "seed: 3\n"
           "stages:\n"
           "  corpus: {type: text_file, train: ['" + corpus.string() + "'], by: file, valid_fraction: 0.1}\n"
           "  tokens: {type: tokenize, in: corpus, mode: char}\n"
           "  vocab:  {type: vocabulary, in: tokens, specials: [<unk>]}\n"
           "  batch:  {type: lm_batches, in: vocab.out, batch: 8, bptt: 16}\n"
           "  embed:  {type: embedding, in: batch.ids, dim: 16}\n"
           "  rnn:    {type: lstm, in: embed, hidden: 32, layers: 2, carry_state: true" + cell_extra + "}\n"
           "  logits: {type: linear, in: rnn, out_dim: vocab.size}\n"
           "  loss:   {type: cross_entropy, logits: logits, target: batch.targets}\n"
           "  optim:  {type: adam, minimize: loss, lr: 0.01, clip_norm: 5}\n"
           "  ppl:    {type: perplexity, loss: loss}\n"
           "  sample: {type: sampler, logits: logits, vocab: vocab.vocab, prime: 'abcab', temperature: 0.01}\n"
           "train: {epochs: 6, keep: best(ppl.valid), threads: 2}\n";
}

CompiledGraph compile_text(const std::string& text, const std::vector<std::string>& sets = {}) {
    return compile(load_graph_text(text, "pattern.yaml", fs::current_path(), sets, Registry::global()),
                   Registry::global());
}

TrainResult train_once(const fs::path& corpus, const fs::path& run_dir) {
    RunOptions opt;
    opt.run_dir = run_dir;
    Engine e(compile_text(pattern_graph(corpus)), opt);
    e.prepare();
    return e.train();
}

}  // namespace

TEST_CASE("engine: a 2-layer LSTM learns a repeating pattern to near-zero loss", "[engine][e2e]") {
    const fs::path dir = scratch("learn");
    const fs::path corpus = pattern_corpus(dir);
    const TrainResult r = train_once(corpus, dir / "run");
    double last_train = NAN, last_valid = NAN;
    for (const auto& row : r.rows) {
        if (row.split == "train") last_train = row.get("loss");
        if (row.split == "valid" && row.epoch > 0) last_valid = row.get("loss");
    }
    INFO("train loss " << last_train << ", valid loss " << last_valid);
    // A period-11 pattern: after a few characters of context the next one is certain.
    REQUIRE(last_train < 0.05);
    REQUIRE(last_valid < 0.05);

    // The run folder holds what the README promises.
    for (const char* f : {"resolved.yaml", "graph.dot", "metrics.jsonl", "metrics.csv", "summary.txt",
                          "checkpoints/last.safetensors", "checkpoints/best.safetensors", "state/vocab/vocab.tsv"})
        REQUIRE(fs::exists(dir / "run" / f));

    // The resolved graph loads as is, restores the vocabulary and weights, and samples the pattern.
    RunOptions opt;
    opt.mode = PrepareMode::restore;
    opt.restore_dir = dir / "run";
    std::ifstream is(dir / "run" / "resolved.yaml");
    const std::string resolved((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
    Engine g(compile_text(resolved), opt);
    g.prepare();
    g.load_checkpoint(dir / "run" / "checkpoints" / "best.safetensors");
    SampleRequest req;
    req.length = 20;
    const std::string text = g.generate(req);
    REQUIRE(text.rfind("abcab", 0) == 0);
    REQUIRE(text.substr(0, 25) == std::string("abcabdabce abcabdabce abc").substr(0, 25));
}

TEST_CASE("engine: the same seed and thread count give identical metrics", "[engine][e2e]") {
    const fs::path dir = scratch("determinism");
    const fs::path corpus = pattern_corpus(dir);
    const TrainResult a = train_once(corpus, dir / "a");
    const TrainResult b = train_once(corpus, dir / "b");
    REQUIRE(a.rows.size() == b.rows.size());
    for (std::size_t i = 0; i < a.rows.size(); ++i)
        for (const auto& [k, v] : a.rows[i].values) {
            if (k == "seconds" || k == "items_per_second") continue;
            INFO(a.rows[i].split << " epoch " << a.rows[i].epoch << " " << k);
            REQUIRE(b.rows[i].get(k) == v);  // bit for bit
        }
    const TensorFile ca = load_safetensors(dir / "a" / "checkpoints" / "last.safetensors");
    const TensorFile cb = load_safetensors(dir / "b" / "checkpoints" / "last.safetensors");
    REQUIRE(ca.tensors.size() == cb.tensors.size());
    for (std::size_t i = 0; i < ca.tensors.size(); ++i) {
        const Tensor& x = ca.tensors[i].second;
        const Tensor& y = cb.tensors[i].second;
        REQUIRE(std::memcmp(x.raw(), y.raw(), x.bytes()) == 0);
    }
}

TEST_CASE("engine: a checkpoint from other sizes is refused with both shapes", "[engine]") {
    const fs::path dir = scratch("ckpt");
    const fs::path corpus = pattern_corpus(dir);
    RunOptions opt;
    opt.run_dir = dir / "run";
    Engine e(compile_text(pattern_graph(corpus), {"train.epochs=1"}), opt);
    e.prepare();
    e.train();
    Engine other(compile_text(pattern_graph(corpus), {"rnn.hidden=16"}), RunOptions{});
    other.prepare();
    REQUIRE_THROWS_WITH(other.load_checkpoint(dir / "run" / "checkpoints" / "last.safetensors"),
                        Catch::Contains("is (16, 4, 32)") || Catch::Contains("the graph's is"));
}

TEST_CASE("engine: a data error names the stage and its place in the file", "[engine]") {
    const fs::path dir = scratch("missing");
    Engine e(compile_text(pattern_graph(dir / "no-such-file.txt")), RunOptions{});
    try {
        e.prepare();
        FAIL("prepare should have thrown");
    } catch (const Error& err) {
        REQUIRE_THAT(err.message(), Catch::StartsWith("stage 'corpus' (text_file, pattern.yaml:4:3) prepare: "));
        REQUIRE_THAT(err.message(), Catch::Contains("no-such-file.txt"));
    }
}

TEST_CASE("engine: init: {from: FILE} sets a stage's weights from a checkpoint", "[engine][init]") {
    const fs::path dir = scratch("init");
    const fs::path corpus = pattern_corpus(dir);
    RunOptions opt;
    opt.run_dir = dir / "run";
    Engine trained(compile_text(pattern_graph(corpus), {"train.epochs=1"}), opt);
    trained.prepare();
    trained.train();
    const fs::path ckpt = dir / "run" / "checkpoints" / "last.safetensors";
    const TensorFile tf = load_safetensors(ckpt);

    SECTION("by stage id, as in a checkpoint") {
        Engine e(compile_text(pattern_graph(corpus), {"rnn.init={from: '" + ckpt.string() + "'}"}), RunOptions{});
        e.prepare();
        auto* rnn = dynamic_cast<ModelStage*>(e.stage("rnn"));
        REQUIRE(rnn != nullptr);
        for (auto& p : rnn->params()) {
            const Tensor* t = tf.find("rnn." + p.name);
            REQUIRE(t != nullptr);
            REQUIRE(std::memcmp(t->raw(), p.value.raw(), t->bytes()) == 0);
        }
        // Stages without init keep their own initialisation.
        auto* embed = dynamic_cast<ModelStage*>(e.stage("embed"));
        REQUIRE(std::memcmp(tf.find("embed.weight")->raw(), embed->params()[0].value.raw(),
                            tf.find("embed.weight")->bytes()) != 0);
    }
    SECTION("freeze: true keeps the loaded weights through training; the stages before still train") {
        RunOptions o;
        o.run_dir = dir / "frozen";
        Engine e(compile_text(pattern_graph(corpus), {"train.epochs=1", "rnn.init={from: '" + ckpt.string() + "', freeze: true}"}), o);
        e.prepare();
        auto* embed = dynamic_cast<ModelStage*>(e.stage("embed"));
        const Tensor before = embed->params()[0].value;
        e.train();
        for (auto& p : dynamic_cast<ModelStage*>(e.stage("rnn"))->params()) {
            REQUIRE_FALSE(p.trainable);
            const Tensor* t = tf.find("rnn." + p.name);
            REQUIRE(std::memcmp(t->raw(), p.value.raw(), t->bytes()) == 0);
        }
        // The embedding below the frozen layer learned through it.
        REQUIRE(std::memcmp(before.raw(), embed->params()[0].value.raw(), before.bytes()) != 0);
    }
    SECTION("freeze takes true or false") {
        REQUIRE_THROWS_WITH(compile_text(pattern_graph(corpus), {"rnn.init={from: '" + ckpt.string() + "', freeze: maybe}"}),
                            Catch::Contains("init 'freeze' must be true or false, got 'maybe'"));
    }
    SECTION("a prefix that names no tensor lists what the file holds") {
        Engine e(compile_text(pattern_graph(corpus), {"rnn.init={from: '" + ckpt.string() + "', prefix: encoder.}"}),
                 RunOptions{});
        try {
            e.prepare();
            FAIL("expected an init error");
        } catch (const Error& err) {
            REQUIRE_THAT(err.message(), Catch::Contains("init: " + ckpt.string() + " has no tensor 'encoder.layer0"));
            REQUIRE_THAT(err.hint(), Catch::Contains("embed.weight"));
        }
    }
    SECTION("a tensor of another shape is refused with both shapes") {
        Engine e(compile_text(pattern_graph(corpus), {"rnn.hidden=16", "rnn.init={from: '" + ckpt.string() + "'}"}),
                 RunOptions{});
        REQUIRE_THROWS_WITH(e.prepare(), Catch::Contains("in " + ckpt.string() + " is f32 (16, 4, 32)") &&
                                             Catch::Contains("is f32 (16, 4, 16)"));
    }
}

TEST_CASE("engine: init on a stage without weights is a load-time error", "[engine][init]") {
    const std::string text = "stages:\n"
                             "  corpus: {type: text_file, train: [a.txt], init: {from: w.safetensors}}\n";
    try {
        load_graph_text(text, "g.yaml", ".", {}, Registry::global());
        FAIL("expected a load error");
    } catch (const LoadError& e) {
        REQUIRE(e.diagnostics().front().format().rfind(
                    "g.yaml:2:45: error: stage 'corpus' (text_file): 'init' sets weights, and a data stage has none", 0) == 0);
    }
}

TEST_CASE("engine: the resolved graph keeps relative paths pointing where they did", "[engine]") {
    const fs::path dir = scratch("resolved");
    { std::ofstream(dir / "t.txt") << "hello world\n"; }
    const std::string text = "stages:\n  corpus: {type: text_file, train: [t.txt]}\n";
    const GraphDef g = load_graph_text(text, (dir / "g.yaml").string(), dir, {}, Registry::global());
    REQUIRE_THAT(g.resolved_yaml, Catch::Contains("base_dir: \"" + dir.string() + "\""));
    // Loaded from another folder, it still resolves t.txt in `dir`.
    const GraphDef again = load_graph_text(g.resolved_yaml, "elsewhere/resolved.yaml", "elsewhere", {}, Registry::global());
    REQUIRE(again.base_dir == dir);
}

TEST_CASE("engine: two data-parallel shards with averaged gradients train like one combined batch", "[engine][parallel]") {
    const fs::path dir = scratch("shards");
    const fs::path corpus = pattern_corpus(dir);
    const std::vector<std::string> sets{"train.epochs=1", "train.max_batches=6", "train.test=false",
                                        "optim.clip_norm=0"};
    // One process, the whole batch of 8 columns.
    RunOptions whole_opt;
    whole_opt.threads = 1;
    Engine whole(compile_text(pattern_graph(corpus), sets), whole_opt);
    whole.prepare();
    whole.train();

    // Two "processes" (threads), 4 columns each, meeting to combine their gradients.
    std::vector<std::unique_ptr<Engine>> ranks;
    std::barrier sync(2);
    std::array<std::vector<std::pair<std::string, Param*>>, 2> shared;
    std::array<double, 2> counts{};
    for (int r = 0; r < 2; ++r) {
        RunOptions o;
        o.threads = 1;
        o.shard_rank = r;
        o.shard_count = 2;
        o.reduce_gradients = [&, r](const std::vector<std::pair<std::string, Param*>>& params, double, double count) {
            shared[static_cast<std::size_t>(r)] = params;
            counts[static_cast<std::size_t>(r)] = count;
            sync.arrive_and_wait();
            if (r == 0) {  // combined mean = sum over ranks of (count_r / total) * mean-gradient_r
                const double total = counts[0] + counts[1];
                for (std::size_t i = 0; i < params.size(); ++i) {
                    float* a = shared[0][i].second->grad.data<float>();
                    float* b = shared[1][i].second->grad.data<float>();
                    for (std::int64_t e = 0; e < shared[0][i].second->grad.numel(); ++e) {
                        const float g = static_cast<float>((counts[0] * a[e] + counts[1] * b[e]) / total);
                        a[e] = g;
                        b[e] = g;
                    }
                }
            }
            sync.arrive_and_wait();
        };
        ranks.push_back(std::make_unique<Engine>(compile_text(pattern_graph(corpus), sets), o));
        ranks.back()->prepare();
    }
    std::thread t1([&] { ranks[1]->train(); });
    ranks[0]->train();
    t1.join();

    for (const char* id : {"embed", "rnn", "logits"}) {
        auto* w = dynamic_cast<ModelStage*>(whole.stage(id));
        auto* a = dynamic_cast<ModelStage*>(ranks[0]->stage(id));
        auto* b = dynamic_cast<ModelStage*>(ranks[1]->stage(id));
        for (std::size_t i = 0; i < w->params().size(); ++i) {
            const Tensor& x = w->params()[i].value;
            const Tensor& y = a->params()[i].value;
            REQUIRE(std::memcmp(y.raw(), b->params()[i].value.raw(), y.bytes()) == 0);  // ranks agree exactly
            double worst = 0;
            for (std::int64_t e = 0; e < x.numel(); ++e)
                worst = std::max(worst, std::abs(double(x.data<float>()[e]) - double(y.data<float>()[e])));
            INFO(id << "." << w->params()[i].name);
            REQUIRE(worst < 1e-4);  // float sums in another order, six Adam steps
        }
    }
}

TEST_CASE("engine: on_epoch can stop training early", "[engine]") {
    const fs::path dir = scratch("stop");
    const fs::path corpus = pattern_corpus(dir);
    RunOptions o;
    int calls = 0;
    o.on_epoch = [&](std::int64_t epoch, const MetricsRow&, const MetricsRow& valid) {
        ++calls;
        REQUIRE(valid.split == "valid");
        return epoch < 1;  // stop after the second epoch
    };
    Engine e(compile_text(pattern_graph(corpus), {"train.test=false"}), o);
    e.prepare();
    const TrainResult r = e.train();
    REQUIRE(calls == 2);
    REQUIRE(r.stopped_early);
}

TEST_CASE("engine: keep: best(...) on a split without data is refused before training", "[engine]") {
    const fs::path dir = scratch("nosplit");
    const fs::path corpus = pattern_corpus(dir);
    Engine e(compile_text(pattern_graph(corpus), {"corpus.valid_fraction=0"}), RunOptions{});
    e.prepare();
    try {
        e.train();
        FAIL("expected an error");
    } catch (const Error& err) {
        REQUIRE(err.message() == "train.keep is best(ppl.valid), but the data has no valid split");
        REQUIRE(err.loc().str() == "pattern.yaml:15:1");
    }
}
