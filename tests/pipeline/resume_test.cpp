// Exact resume and the numerical guards (docs/resume.md): the pieces (positions, rows, stage
// state in checkpoints, checks), in-process resume equality through a data source that relies
// on the generic skip (next() k times) and keeps a generator across passes, and NaN/Inf
// guards with the faulty test plug-in. The kill tests through the program are
// tests/cli/resume_kill.sh.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "support/error_text.hpp"
#include "pipeline/core/registry.hpp"
#include "pipeline/exec/engine.hpp"
#include "pipeline/exec/guards.hpp"
#include "pipeline/exec/resume.hpp"
#include "pipeline/core/safetensors.hpp"
#include "pipeline/graph/graph.hpp"

using namespace rnnflow;
using rnnflow::test::error_text;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("rnnflow_resume_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}


// Windows of `bptt` ids cut from each split's stream, `batch` windows a batch, in an order
// shuffled per (split, epoch) from a seed drawn in prepare — the convention that gives resume for
// free through the default skip() — and shifted by an offset from a generator that lives across
// passes (the case save_run_state is for: the engine snapshots it before each training pass).
class TestWindows final : public DataSource {
public:
    static StageSchema schema() {
        return StageSchema("test_windows", "shuffled windows (resume tests)", Role::source)
            .input("in", PortType::sequences, "id sequences")
            .output("ids", PortType::ids, "i32 (T, N)")
            .output("targets", PortType::ids, "i32 (T, N)")
            .param_int("batch", 4, Range{1, 64}, "N")
            .param_int("bptt", 8, Range{1, 64}, "T");
    }
    explicit TestWindows(const Params& p) : n_(p.get_int("batch")), t_(p.get_int("bptt")) {}
    void prepare(PrepareContext& ctx) override {
        const PortInfo& in = ctx.input_info("in");
        ctx.set_output_info("ids", PortInfo{PortType::ids, -1, in.classes, in.vocab});
        ctx.set_output_info("targets", PortInfo{PortType::ids, -1, in.classes, in.vocab});
        seed_ = ctx.rng()();
        drift_.seed(seed_ + 1);
        for (const auto& split : ctx.splits()) {
            if (!ctx.has_input("in", split)) continue;
            std::vector<std::int32_t> s;
            for (const auto& item : ctx.input<SequenceSplit>("in", split).items) s.insert(s.end(), item.begin(), item.end());
            streams_[split] = std::move(s);
        }
    }
    std::int64_t begin(const std::string& split, std::int64_t epoch) override {
        auto it = streams_.find(split);
        cur_ = it == streams_.end() ? nullptr : &it->second;
        pos_ = 0;
        order_.clear();
        if (!cur_) return 0;
        const std::int64_t w = (static_cast<std::int64_t>(cur_->size()) - 2) / t_;
        order_.resize(static_cast<std::size_t>(w));
        std::iota(order_.begin(), order_.end(), 0);
        std::mt19937_64 g(seed_ ^ (static_cast<std::uint64_t>(epoch) * 0x9E3779B97F4A7C15ull) ^ split.size());
        std::shuffle(order_.begin(), order_.end(), g);
        shift_ = static_cast<std::int64_t>(drift_() % 3);
        return w / n_;
    }
    bool next(Batch& b) override {
        if (!cur_ || (pos_ + 1) * n_ > static_cast<std::int64_t>(order_.size())) return false;
        b.outputs.resize(2);
        b.outputs[0].resize(DType::i32, {t_, n_});
        b.outputs[1].resize(DType::i32, {t_, n_});
        b.outputs[0].lengths.clear();
        b.outputs[1].lengths.clear();
        const auto len = static_cast<std::int64_t>(cur_->size()) - 1;
        for (std::int64_t t = 0; t < t_; ++t)
            for (std::int64_t n = 0; n < n_; ++n) {
                const std::int64_t at = (order_[static_cast<std::size_t>(pos_ * n_ + n)] * t_ + t + shift_) % len;
                b.outputs[0].data<std::int32_t>()[t * n_ + n] = (*cur_)[static_cast<std::size_t>(at)];
                b.outputs[1].data<std::int32_t>()[t * n_ + n] = (*cur_)[static_cast<std::size_t>(at + 1)];
            }
        b.reset_state = true;
        b.items = t_ * n_;
        ++pos_;
        return true;
    }
    void save_run_state(StageState& st) const override { st.put_rng("drift", drift_); }
    void load_run_state(const StageState& st) override { st.get_rng("drift", drift_); }

private:
    std::int64_t n_, t_;
    std::uint64_t seed_ = 0;
    std::mt19937_64 drift_;
    std::map<std::string, std::vector<std::int32_t>> streams_;
    const std::vector<std::int32_t>* cur_ = nullptr;
    std::vector<std::int64_t> order_;
    std::int64_t pos_ = 0, shift_ = 0;
};

Registry& test_registry() {
    static Registry r = [] {
        Registry x = Registry::global();
        x.set_origin("resume_test.cpp");
        x.add<TestWindows>();
        load_plugin(x, RNNFLOW_TEST_PLUGIN_DIR "/libfaulty.so");
        return x;
    }();
    return r;
}

fs::path corpus(const fs::path& dir) {
    std::ofstream os(dir / "c.txt");
    for (int i = 0; i < 200; ++i) os << "the cat sat on the mat; a dog ran. ";
    return dir / "c.txt";
}

// `source` is the batch stage's YAML; `extra` goes into the train mapping.
std::string graph(const fs::path& text, const std::string& source, const std::string& extra,
                  const std::string& poison = "") {
    return "experiment: resume\n"
           "seed: 5\n"
           "stages:\n"
           "  corpus: {type: text_file, train: ['" + text.string() + "'], by: file, valid_fraction: 0.1}\n"
           "  tokens: {type: tokenize, in: corpus, mode: char}\n"
           "  vocab:  {type: vocabulary, in: tokens, specials: [<unk>]}\n"
           "  batch:  " + source + "\n"
           "  embed:  {type: embedding, in: batch.ids, dim: 8}\n"
           "  rnn:    {type: lstm, in: embed, hidden: 16, layers: 2, dropout: 0.2}\n"
           "  skip:   {type: faulty, in: rnn" + poison + "}\n"
           "  logits: {type: linear, in: skip, out_dim: vocab.size}\n"
           "  loss:   {type: cross_entropy, logits: logits, target: batch.targets}\n"
           "  optim:  {type: adam, minimize: loss, lr: 0.01, clip_norm: 5}\n"
           "  ppl:    {type: perplexity, loss: loss}\n"
           "train: {epochs: 3, keep: best(ppl.valid), threads: 1, test: false" + extra + "}\n";
}

std::unique_ptr<Engine> engine(const std::string& text, const fs::path& run, bool resume = false) {
    Registry& r = test_registry();
    RunOptions opt;
    opt.run_dir = run;
    opt.resume = resume;
    auto e = std::make_unique<Engine>(compile(load_graph_text(text, "resume.yaml", fs::current_path(), {}, r), r), opt);
    e->prepare();
    return e;
}

// Rows without wall-clock values.
std::vector<std::string> rows_text(const std::vector<MetricsRow>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) {
        std::string s = std::to_string(r.epoch) + " " + r.split;
        for (const auto& [k, v] : r.values)
            if (k != "seconds" && k != "items_per_second") s += " " + k + "=" + std::to_string(v) + "/" + [&] {
                char b[40];
                std::snprintf(b, sizeof b, "%a", v);
                return std::string(b);
            }();
        out.push_back(s);
    }
    return out;
}

// Every tensor of a checkpoint but the metadata, for bit-for-bit comparison.
std::map<std::string, std::string> tensor_bytes(const fs::path& file) {
    std::map<std::string, std::string> out;
    for (const auto& [name, t] : load_safetensors(file).tensors)
        out[name] = std::string(static_cast<const char*>(t.raw()), t.bytes());
    return out;
}

}  // namespace

TEST_CASE("resume: a position round-trips exactly through checkpoint metadata", "[resume]") {
    RunPosition p;
    p.epoch = 2;
    p.pass = {1.0 / 3.0, 1234.0, 0.1 + 0.2, 5.5, 17, 4096, 2};
    p.train_batches = 40;
    p.skipped_in_row = 1;
    p.best = std::nextafter(2.5, 3.0);
    p.train_seconds = 12.25;
    p.train_items = 99;
    MetricsRow r;
    r.epoch = 1;
    r.split = "train";
    r.values = {{"loss", 1.0 / 7.0}, {"ppl.bpc", std::numeric_limits<double>::quiet_NaN()},
                {"x", std::numeric_limits<double>::infinity()}};
    p.rows = {r};
    p.samples_bytes = 310;
    p.threads = 2;
    std::map<std::string, std::string> m;
    p.write(m);
    const RunPosition q = RunPosition::read(m, "f.safetensors");
    CHECK(q.epoch == 2);
    CHECK(q.pass.loss_sum == p.pass.loss_sum);
    CHECK(q.pass.grad_norm_sum == p.pass.grad_norm_sum);
    CHECK(q.pass.steps == 17);
    CHECK(q.pass.skipped == 2);
    CHECK(q.best == p.best);
    CHECK(q.rows.size() == 1);
    CHECK(q.rows[0].values[0].second == 1.0 / 7.0);
    CHECK(std::isnan(q.rows[0].values[1].second));
    CHECK(q.rows[0].values[2].second == std::numeric_limits<double>::infinity());
    CHECK(q.samples_bytes == 310);
    CHECK(q.threads == 2);
    CHECK(q.describe() == "epoch 3, after batch 17");
    p.best = std::numeric_limits<double>::quiet_NaN();
    p.write(m);
    CHECK(std::isnan(RunPosition::read(m, "f").best));

    CHECK(error_text([] { RunPosition::read({}, "old.safetensors"); }) ==
          "old.safetensors: checkpoint has no 'rnnflow.resume.epoch' (no resume position)");
    m["rnnflow.resume.batches"] = "12x";
    CHECK(error_text([&] { RunPosition::read(m, "f"); }) ==
          "f: checkpoint metadata 'rnnflow.resume.batches' has a bad value '12x'");
    CHECK(error_text([] { decode_metric_rows("1\ttrain\tloss\n", "f"); }) ==
          "f: checkpoint metadata 'rnnflow.resume.rows' is malformed: value 'loss'");
    CHECK(error_text([] { decode_metric_rows("x\ttrain\n", "f"); }) ==
          "f: checkpoint metadata 'rnnflow.resume.rows' is malformed: epoch 'x'");
}

TEST_CASE("resume: stage run state goes into a checkpoint and comes back", "[resume]") {
    StageState st;
    Tensor t = Tensor::f32({2, 3});
    t.data<float>()[4] = 1.5f;
    st.put("carried.train", t);
    st.put_number("sum", 0.1 + 0.2);
    std::mt19937_64 g(42);
    g.discard(7);
    st.put_rng("rng", g);
    TensorFile tf;
    put_stage_state(tf, "rnn", st);
    tf.tensors.emplace_back("rnn.layer0.l2r.bias", Tensor::f32({4}));  // a parameter: not state
    const fs::path f = scratch("state") / "s.safetensors";
    save_safetensors(f, tf);
    const auto states = stage_states(load_safetensors(f));
    REQUIRE(states.size() == 1);
    const StageState& back = states.at("rnn");
    REQUIRE(back.tensor("carried.train") != nullptr);
    CHECK(back.tensor("carried.train")->data<float>()[4] == 1.5f);
    CHECK(back.number("sum", 0) == 0.1 + 0.2);
    std::mt19937_64 h;
    REQUIRE(back.get_rng("rng", h));
    CHECK(h() == g());
    CHECK(back.number("absent", -1) == -1);
    StageState bad;
    bad.put_text("rng", "not a generator");
    CHECK(error_text([&] { bad.get_rng("rng", h); }) == "saved random generator 'rng' does not read back");
}

TEST_CASE("resume: the graph and the fitted data must be the run's", "[resume]") {
    CHECK(error_text([] { check_same_graph("a: 1\nb: 2\n", "a: 1\nb: 3\n", "runs/x"); }) ==
          "runs/x was made by another graph: line 2 of its resolved.yaml is 'b: 3', this graph (with its "
          "--set values) gives 'b: 2'");
    CHECK(error_text([] { check_same_graph("a: 1\n", "a: 1\n", "runs/x"); }) == "(no error)");
    const fs::path run = scratch("state_files");
    fs::create_directories(run / "state" / "vocab");
    std::ofstream(run / "state" / "vocab" / "vocab.tsv") << "old";
    const auto before = read_state_files(run);
    CHECK(error_text([&] { check_state_files(run, before); }) == "(no error)");
    std::ofstream(run / "state" / "vocab" / "vocab.tsv") << "new";
    CHECK_THAT(error_text([&] { check_state_files(run, before); }),
               Catch::StartsWith("the data changed since the run started: refitting it gives another "
                                 "state/vocab/vocab.tsv than the one in "));
    std::ifstream is(run / "state" / "vocab" / "vocab.tsv");
    std::string kept;
    is >> kept;
    CHECK(kept == "old");  // the run folder keeps the run's own state
}

TEST_CASE("resume: non-finite scan finds the first NaN or Inf", "[resume]") {
    Tensor t = Tensor::f32({1000});
    CHECK(first_nonfinite(t) == -1);
    t.data<float>()[700] = std::numeric_limits<float>::infinity();
    t.data<float>()[900] = std::numeric_limits<float>::quiet_NaN();
    CHECK(first_nonfinite(t) == 700);
    CHECK(nonfinite_word(t.data<float>()[700]) == "Inf");
    CHECK(nonfinite_word(-t.data<float>()[700]) == "-Inf");
    CHECK(nonfinite_word(t.data<float>()[900]) == "NaN");
    CHECK(first_nonfinite(Tensor::i32({3})) == -1);
}

TEST_CASE("resume: interrupted anywhere, a resumed run equals the uninterrupted one bit for bit", "[resume][e2e]") {
    const fs::path dir = scratch("equal");
    const fs::path text = corpus(dir);
    // Both sources: lm_batches (jumps with skip; carried state) and test_windows (the generic
    // skip; a generator kept across passes).
    const std::string source = GENERATE(std::string("{type: lm_batches, in: vocab.out, batch: 4, bptt: 16}"),
                                         std::string("{type: test_windows, in: vocab.out, batch: 4, bptt: 8}"));
    std::string g = graph(text, source, ", checkpoint_every: 3, max_batches: 10");
    if (source.find("lm_batches") != std::string::npos) g.replace(g.find("dropout: 0.2"), 12, "dropout: 0.2, carry_state: true");
    INFO(source);
    const TrainResult ref = engine(g, dir / "ref")->train();
    const auto ref_rows = rows_text(ref.rows);
    for (const int at : {2, 3, 10, 14, 25}) {
        INFO("interrupted after training step " << at);
        const fs::path run = dir / ("at" + std::to_string(at));
        set_fault("interrupt@batch:" + std::to_string(at));
        CHECK_THROWS_AS(engine(g, run)->train(), Interrupted);
        set_fault("");
        request_interrupt(0);
        const TrainResult res = engine(g, run, true)->train();
        CHECK(rows_text(res.rows) == ref_rows);
        CHECK(tensor_bytes(run / "checkpoints" / "last.safetensors") == tensor_bytes(dir / "ref" / "checkpoints" / "last.safetensors"));
        CHECK(tensor_bytes(run / "checkpoints" / "best.safetensors") == tensor_bytes(dir / "ref" / "checkpoints" / "best.safetensors"));
    }
    // Interrupted during validation: the checkpoint is the end of the training pass.
    const fs::path run = dir / "valid";
    set_fault("interrupt@eval:2");
    CHECK_THROWS_AS(engine(g, run)->train(), Interrupted);
    set_fault("");
    request_interrupt(0);
    CHECK(rows_text(engine(g, run, true)->train().rows) == ref_rows);
}

TEST_CASE("resume: interrupted before the first step (while preparing), a run resumes from its start", "[resume]") {
    const fs::path dir = scratch("start");
    const fs::path text = corpus(dir);
    const std::string g = graph(text, "{type: lm_batches, in: vocab.out, batch: 4, bptt: 16}", ", max_batches: 4");
    const TrainResult ref = engine(g, dir / "ref")->train();
    auto e = engine(g, dir / "run");
    request_interrupt(SIGTERM);  // arrived during prepare
    try {
        e->train();
        FAIL("expected Interrupted");
    } catch (const Interrupted& i) {
        CHECK(i.signal() == SIGTERM);
        CHECK(i.checkpoint() == dir / "run" / "checkpoints" / "last.safetensors");
        CHECK(i.message() == "interrupted by SIGTERM at the start of epoch 1; checkpoint written: " + i.checkpoint().string());
    }
    request_interrupt(0);
    CHECK(rows_text(engine(g, dir / "run", true)->train().rows) == rows_text(ref.rows));
    CHECK(tensor_bytes(dir / "run" / "checkpoints" / "last.safetensors") == tensor_bytes(dir / "ref" / "checkpoints" / "last.safetensors"));
}

TEST_CASE("resume: a resume refuses changed data, and a run without a checkpoint", "[resume]") {
    const fs::path dir = scratch("refuse");
    const fs::path text = corpus(dir);
    const std::string g = graph(text, "{type: lm_batches, in: vocab.out, batch: 4, bptt: 16}", ", max_batches: 4");
    // An interrupt always leaves a checkpoint; a kill before the first one leaves none.
    set_fault("interrupt@batch:2");
    CHECK_THROWS_AS(engine(g, dir / "early")->train(), Interrupted);
    set_fault("");
    request_interrupt(0);
    REQUIRE(fs::remove(dir / "early" / "checkpoints" / "last.safetensors"));
    CHECK_THAT(error_text([&] { engine(g, dir / "early", true)->train(); }),
               Catch::StartsWith((dir / "early").string() + " has no checkpoint to resume from"));

    set_fault("interrupt@batch:6");
    CHECK_THROWS_AS(engine(g, dir / "run")->train(), Interrupted);
    set_fault("");
    request_interrupt(0);
    const std::string before = [&] {
        std::ifstream is(text);
        return std::string(std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>());
    }();
    std::ofstream(text) << "new letters: XYZ " << before;
    CHECK_THAT(error_text([&] { engine(g, dir / "run", true); }),
               Catch::StartsWith("the data changed since the run started: refitting it gives another state/vocab/vocab.tsv"));
}

TEST_CASE("guards: a NaN or Inf stops the run naming the stage and batch where it appeared", "[resume][guard]") {
    const fs::path dir = scratch("nan");
    const fs::path text = corpus(dir);
    const std::string src = "{type: lm_batches, in: vocab.out, batch: 4, bptt: 16}";
    // resume.yaml line 10 is the 'skip' stage.
    CHECK(error_text([&] { engine(graph(text, src, ", max_batches: 4", ", fail_in: nan_forward, fail_epoch: 2, fail_batch: 3"), dir / "f")->train(); }) ==
          "stage 'skip' (faulty, resume.yaml:10:3): NaN in output 'out' at train epoch 2 batch 3 (the loss is NaN)");
    CHECK(error_text([&] { engine(graph(text, src, ", max_batches: 4", ", fail_in: inf_forward, fail_epoch: 1, fail_batch: 2"), dir / "i")->train(); }) ==
          "stage 'skip' (faulty, resume.yaml:10:3): Inf in output 'out' at train epoch 1 batch 2 (the loss is NaN)");
    CHECK(error_text([&] { engine(graph(text, src, ", max_batches: 4", ", fail_in: nan_backward, fail_epoch: 2, fail_batch: 2"), dir / "b")->train(); }) ==
          "stage 'skip' (faulty, resume.yaml:10:3): NaN in the gradient of its input 'in' at train epoch 2 batch 2");
    // The last good checkpoint (epoch 1) is kept, and finite.
    const TensorFile last = load_safetensors(dir / "b" / "checkpoints" / "last.safetensors");
    CHECK(last.metadata.at("epoch") == "1");
    for (const auto& [name, t] : last.tensors) CHECK(first_nonfinite(t) == -1);
}

TEST_CASE("guards: nonfinite: skip_batch drops the update, counts it, and stops after max_skipped in a row", "[resume][guard]") {
    const fs::path dir = scratch("skip");
    const fs::path text = corpus(dir);
    const std::string src = "{type: lm_batches, in: vocab.out, batch: 4, bptt: 16}";
    for (const std::string kind : {"nan_forward", "nan_backward"}) {
        INFO(kind);
        const fs::path run = dir / kind;
        const TrainResult r = engine(graph(text, src, ", max_batches: 6, nonfinite: skip_batch",
                                           ", fail_in: " + kind + ", fail_epoch: 2, fail_batch: 2, fail_count: 2"), run)->train();
        for (const auto& row : r.rows) {
            if (row.split != "train") continue;
            CHECK(row.get("skipped_batches") == (row.epoch == 2 ? 2 : 0));
            CHECK(std::isfinite(row.get("loss")));
            CHECK(std::isfinite(row.get("ppl")));
        }
        // Adam stepped only on the batches kept: 3 epochs x 6 - 2.
        const TensorFile last = load_safetensors(run / "checkpoints" / "last.safetensors");
        CHECK(last.find("optim.step")->data<std::int32_t>()[0] == 16);
    }
    CHECK(error_text([&] { engine(graph(text, src, ", max_batches: 6, nonfinite: skip_batch, max_skipped: 3",
                                        ", fail_in: nan_forward, fail_epoch: 1, fail_batch: 2, fail_count: 5"), dir / "many")->train(); }) ==
          "3 training batches in a row had a non-finite loss or gradient (the last: train epoch 1 batch 4)");
}

TEST_CASE("resume: rmsprop's and adagrad's state is saved, and an interrupted run resumes bit for bit", "[resume][e2e][rmsprop][adagrad]") {
    const std::string type = GENERATE(std::string("rmsprop"), std::string("adagrad"));
    INFO(type);
    const fs::path dir = scratch("optim_" + type);
    const fs::path text = corpus(dir);
    std::string g = graph(text, "{type: test_windows, in: vocab.out, batch: 4, bptt: 8}", ", checkpoint_every: 3, max_batches: 10");
    g.replace(g.find("type: adam"), 10, "type: " + type);
    const TrainResult ref = engine(g, dir / "ref")->train();
    const auto last = tensor_bytes(dir / "ref" / "checkpoints" / "last.safetensors");
    const std::string suffix = type == "rmsprop" ? ".square_avg" : ".sum";
    CHECK(last.count("optim.embed.weight" + suffix) == 1);
    const fs::path run = dir / "at14";
    set_fault("interrupt@batch:14");
    CHECK_THROWS_AS(engine(g, run)->train(), Interrupted);
    set_fault("");
    request_interrupt(0);
    const TrainResult res = engine(g, run, true)->train();
    CHECK(rows_text(res.rows) == rows_text(ref.rows));
    CHECK(tensor_bytes(run / "checkpoints" / "last.safetensors") == last);
}
