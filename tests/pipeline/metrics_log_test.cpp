// pipeline/exec/metrics_log: metric values and names for people (the terminal, summary.txt),
// full precision in metrics.jsonl and metrics.csv.
#include "pipeline/exec/metrics_log.hpp"
#include "pipeline/exec/run_status.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "pipeline/exec/engine.hpp"

using namespace rnnflow;
namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
}  // namespace

TEST_CASE("metrics log: format_metric gives 4 significant digits, every integer digit, no exponent from 1e-4",
          "[metrics]") {
    CHECK(format_metric(100.00000000000004) == "100");  // the BLEU of issue 20
    CHECK(format_metric(33.41234) == "33.41");
    CHECK(format_metric(0.912545) == "0.9125");
    CHECK(format_metric(119.4321) == "119.4");
    CHECK(format_metric(4.0) == "4");
    CHECK(format_metric(0.5) == "0.5");                 // trailing zeros dropped
    CHECK(format_metric(36012.7) == "36013");           // integer digits are never cut
    CHECK(format_metric(1234567.0) == "1234567");
    CHECK(format_metric(9.99996) == "10");              // rounding carries into a new digit
    CHECK(format_metric(0.00031234) == "0.0003123");
    CHECK(format_metric(0.0001) == "0.0001");
    CHECK(format_metric(0.00001234) == "1.234e-05");    // below 1e-4: %g
    CHECK(format_metric(-2.71828) == "-2.718");
    CHECK(format_metric(-0.0) == "0");
    CHECK(format_metric(-0.00000001) == "-1e-08");
    CHECK(format_metric(0) == "0");
    CHECK(format_metric(std::numeric_limits<double>::quiet_NaN()) == "NaN");
    CHECK(format_metric(std::numeric_limits<double>::infinity()) == "Infinity");
    CHECK(format_metric(1e20) == "1e+20");
}

TEST_CASE("metrics log: metrics_text names main metrics by their labels and leaves out what keep rejects",
          "[metrics]") {
    const MetricsRow row{0, "test", {{"loss", 1.23456789}, {"metrics", 100.00000000000004},
                                     {"metrics.bleu_lc", 33.33333333}, {"seconds", 12.3456}}};
    const MetricLabels labels{{"metrics", "metrics.bleu"}};
    CHECK(metric_label("metrics", labels) == "metrics.bleu");
    CHECK(metric_label("loss", labels) == "loss");
    CHECK(metrics_text(row, labels) == " loss=1.235 metrics.bleu=100 metrics.bleu_lc=33.33 seconds=12.35");
    CHECK(metrics_text(row, {}, [](const std::string& k) { return k != "seconds"; }) ==
          " loss=1.235 metrics=100 metrics.bleu_lc=33.33");
}

TEST_CASE("metrics log: summary.txt is rounded and names the main metric, metrics.jsonl keeps every digit",
          "[metrics]") {
    const fs::path dir = fs::temp_directory_path() / ("rnnflow_metrics_log_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    MetricsLog log(dir);
    const MetricsRow valid{1, "valid", {{"loss", 0.123456789}, {"metrics", 33.41234}}};
    const MetricsRow test{0, "test", {{"loss", 0.2}, {"metrics", 100.00000000000004}}};
    log.append(valid);
    log.append(test);
    Headline h = make_headline({valid, test}, "metrics", "metrics.bleu", true, "valid");
    h.seconds = 12.34;
    h.items_per_second = 3456.7;
    h.parameters = 1234;
    h.kept_checkpoint = "checkpoints/best.safetensors";
    std::string headline;
    for (const auto& l : headline_lines(h)) headline += l + "\n";
    log.write_summary({valid, test}, headline, "checkpoints/best.safetensors", {{"metrics", "metrics.bleu"}});
    CHECK(slurp(dir / "summary.txt") ==
          "test metrics.bleu: 100 (kept checkpoint best.safetensors)\n"
          "best valid metrics.bleu: 33.41 at epoch 1 (higher is better)\n"
          "test loss: 0.2\n"
          "wall time: 12.3 s\n"
          "training throughput: 3457 items/s\n"
          "parameters: 1234\n"
          "kept checkpoint: checkpoints/best.safetensors\n"
          "metrics.bleu: the main metric of stage 'metrics', key 'metrics' in metrics.jsonl and metrics.csv\n"
          "\n"
          "final test: loss=0.2 metrics.bleu=100\n"
          "epoch 1 valid: loss=0.1235 metrics.bleu=33.41\n");
    CHECK(headline_line(h) == "test: metrics.bleu=100 loss=0.2 | best valid metrics.bleu=33.41 at epoch 1 | done in 12.3 s, 3457 items/s"
                              " | 1234 parameters");
    h.test = std::numeric_limits<double>::quiet_NaN();  // train.test: false
    h.parameters = -1;
    CHECK(headline_line(h) == "best valid metrics.bleu=33.41 at epoch 1 | done in 12.3 s, 3457 items/s");
    CHECK_FALSE(fs::exists(dir / "test.per_class.tsv"));  // no per-class values, no table
    const std::string jsonl = slurp(dir / "metrics.jsonl");
    CHECK(jsonl.find("\"metrics\":100.00000000000004") != std::string::npos);
    CHECK(jsonl.find("\"loss\":0.123456789") != std::string::npos);
    CHECK(slurp(dir / "metrics.csv").find("100.00000000000004") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("metrics log: the engine labels the main metric of each metric stage that names it", "[metrics][engine]") {
    const fs::path dir = fs::temp_directory_path() / ("rnnflow_metric_labels_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    {
        std::ofstream os(dir / "c.txt");
        for (int i = 0; i < 200; ++i) os << "abcabd ";
    }
    const std::string text =
        "stages:\n"
        "  corpus: {type: text_file, train: ['" + (dir / "c.txt").string() + "'], by: file, valid_fraction: 0.1}\n"
        "  tokens: {type: tokenize, in: corpus, mode: char}\n"
        "  vocab:  {type: vocabulary, in: tokens, specials: [<unk>]}\n"
        "  batch:  {type: lm_batches, in: vocab.out, batch: 4, bptt: 8}\n"
        "  embed:  {type: embedding, in: batch.ids, dim: 4}\n"
        "  logits: {type: linear, in: embed, out_dim: vocab.size}\n"
        "  loss:   {type: cross_entropy, logits: logits, target: batch.targets}\n"
        "  optim:  {type: adam, minimize: loss}\n"
        "  ppl:    {type: perplexity, loss: loss}\n"
        "  perplexity: {type: perplexity, loss: loss}\n";
    const Registry& r = Registry::global();
    Engine e(compile(load_graph_text(text, "labels.yaml", dir, {}, r), r), RunOptions{});
    e.prepare();
    // "perplexity" already says what it is: no label.
    CHECK(e.metric_labels() == MetricLabels{{"ppl", "ppl.perplexity"}});
    fs::remove_all(dir);
}
