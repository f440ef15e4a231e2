// A plug-in stage in a real training run: it trains like a built-in, and when it throws in
// prepare, forward or backward the run stops with the stage's id, type and YAML place, while
// the run folder keeps complete metrics rows and the last checkpoint of the previous epoch.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "pipeline/core/registry.hpp"
#include "pipeline/exec/engine.hpp"
#include "pipeline/core/safetensors.hpp"
#include "pipeline/graph/graph.hpp"

using namespace rnnflow;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("rnnflow_plugin_run_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

// The plug-in (tests/plugins/faulty.cpp) is named in the graph, as a user would.
std::string graph(const fs::path& corpus, const std::string& faulty) {
    std::ofstream(corpus) << [] {
        std::string s;
        for (int i = 0; i < 300; ++i) s += "abcabdabce ";
        return s;
    }();
    return "experiment: faulty\n"
           "seed: 3\n"
           "plugins: [" RNNFLOW_TEST_PLUGIN_DIR "/libfaulty.so]\n"
           "stages:\n"
           "  corpus: {type: text_file, train: ['" + corpus.string() + "'], by: file, valid_fraction: 0.1}\n"
           "  tokens: {type: tokenize, in: corpus, mode: char}\n"
           "  vocab:  {type: vocabulary, in: tokens, specials: [<unk>]}\n"
           "  batch:  {type: lm_batches, in: vocab.out, batch: 4, bptt: 16}\n"
           "  embed:  {type: embedding, in: batch.ids, dim: 8}\n"
           "  rnn:    {type: lstm, in: embed, hidden: 16}\n"
           "  skip:   {type: faulty, in: rnn" + faulty + "}\n"
           "  logits: {type: linear, in: skip, out_dim: vocab.size}\n"
           "  loss:   {type: cross_entropy, logits: logits, target: batch.targets}\n"
           "  optim:  {type: adam, minimize: loss, lr: 0.01}\n"
           "  ppl:    {type: perplexity, loss: loss}\n"
           "train: {epochs: 3, keep: last, threads: 1, max_batches: 4, test: false}\n";
}

CompiledGraph compile_text(const std::string& text, const std::vector<std::string>& sets = {}) {
    Registry& r = Registry::global();
    load_plugin(r, RNNFLOW_TEST_PLUGIN_DIR "/libfaulty.so");
    return compile(load_graph_text(text, "faulty.yaml", fs::current_path(), sets, r), r);
}

std::vector<std::string> lines(const fs::path& f) {
    std::ifstream is(f);
    std::vector<std::string> out;
    for (std::string l; std::getline(is, l);) out.push_back(l);
    return out;
}

std::string file_bytes(const fs::path& f) {
    std::ifstream is(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>());
}

// A checkpoint as comparable text: every tensor's name, dtype, shape and bytes, and the metadata
// with the wall-clock values (training seconds, a row's seconds and items per second) blanked.
std::string without_timings(const TensorFile& tf) {
    std::ostringstream os;
    for (const auto& [name, t] : tf.tensors) {
        os << name << " " << static_cast<int>(t.dtype()) << " [";
        for (auto d : t.shape()) os << d << ",";
        os << "] " << std::string(static_cast<const char*>(t.raw()), t.bytes()) << "\n";
    }
    static const std::regex timing("(seconds|items_per_second)=[^\t\n]*");
    for (const auto& [key, value] : tf.metadata) {
        if (key == "rnnflow.resume.train_seconds" || key == "rnnflow.crc32") continue;
        os << key << "=" << std::regex_replace(value, timing, "$1=?") << "\n";
    }
    return os.str();
}

}  // namespace

TEST_CASE("plugin run: a plug-in stage trains in the engine like a built-in", "[plugin][engine][e2e]") {
    const fs::path dir = scratch("ok");
    RunOptions opt;
    opt.run_dir = dir / "run";
    Engine e(compile_text(graph(dir / "c.txt", "")), opt);
    e.prepare();
    const TrainResult r = e.train();
    REQUIRE(lines(dir / "run" / "metrics.jsonl").size() == 6);  // 3 epochs x (train, valid)
    double first = NAN, last = NAN;
    for (const auto& row : r.rows)
        if (row.split == "train") (std::isnan(first) ? first : last) = row.get("loss");
    REQUIRE(last < first);
    // The resolved graph names the plug-in by an absolute path, so the run folder is usable
    // from anywhere.
    REQUIRE_THAT(file_bytes(dir / "run" / "resolved.yaml"), Catch::Contains(RNNFLOW_TEST_PLUGIN_DIR "/libfaulty.so"));
}

TEST_CASE("plugin run: a throw in backward stops the run; the run folder stays consistent", "[plugin][engine][e2e]") {
    const fs::path dir = scratch("backward");
    // The reference: the same run stopped cleanly after one epoch.
    {
        RunOptions opt;
        opt.run_dir = dir / "one";
        Engine e(compile_text(graph(dir / "c.txt", ""), {"train.epochs=1"}), opt);
        e.prepare();
        (void)e.train();
    }
    RunOptions opt;
    opt.run_dir = dir / "run";
    const std::string text = graph(dir / "c.txt", ", fail_in: backward, fail_epoch: 2, fail_batch: 3");
    Engine e(compile_text(text), opt);
    e.prepare();
    try {
        (void)e.train();
        FAIL("train should have thrown");
    } catch (const Error& err) {
        REQUIRE(err.message() == "stage 'skip' (faulty, faulty.yaml:11:3) backward, train epoch 2 batch 3: "
                                 "failure requested in backward");
    }
    // Epoch 1's rows are there, whole; nothing of epoch 2 was written.
    const auto rows = lines(dir / "run" / "metrics.jsonl");
    REQUIRE(rows.size() == 2);
    for (const auto& l : rows) {
        REQUIRE_THAT(l, Catch::StartsWith("{\"epoch\":1,"));
        REQUIRE_THAT(l, Catch::EndsWith("}"));
    }
    // The last checkpoint is epoch 1's, byte for byte the one of the run that stopped there...
    const fs::path last = dir / "run" / "checkpoints" / "last.safetensors";
    REQUIRE(load_safetensors(last).metadata.at("epoch") == "1");
    // (Wall-clock figures aside: the checkpoint records the seconds the epoch took.)
    CHECK(without_timings(load_safetensors(last)) ==
          without_timings(load_safetensors(dir / "one" / "checkpoints" / "last.safetensors")));
    // ...and loads into a fresh engine of the same graph.
    Engine fresh(compile_text(text), RunOptions{});
    fresh.prepare();
    fresh.load_checkpoint(last);
    // No temporary file was left behind.
    for (const auto& f : fs::directory_iterator(dir / "run" / "checkpoints"))
        REQUIRE(f.path().extension() == ".safetensors");
}

TEST_CASE("plugin run: a throw in forward or prepare names the stage, its type and place", "[plugin][engine]") {
    const fs::path dir = scratch("forward");
    // message(), not what(): std::runtime_error's what() keeps the text as first thrown.
    auto message_of = [](auto&& fn) -> std::string {
        try {
            fn();
        } catch (const Error& e) {
            return e.message();
        }
        return "(nothing thrown)";
    };
    SECTION("forward, a std::exception") {
        Engine e(compile_text(graph(dir / "c.txt", ", fail_in: forward, fail_batch: 2, exception: std")), RunOptions{});
        e.prepare();
        REQUIRE(message_of([&] { (void)e.train(); }) ==
                "stage 'skip' (faulty, faulty.yaml:11:3) forward, train epoch 1 batch 2: std failure in forward");
    }
    SECTION("prepare") {
        Engine e(compile_text(graph(dir / "c.txt", ", fail_in: prepare")), RunOptions{});
        REQUIRE(message_of([&] { e.prepare(); }) ==
                "stage 'skip' (faulty, faulty.yaml:11:3) prepare: failure requested in prepare");
    }
}
