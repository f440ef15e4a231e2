// pipeline/report: reading run folders, the HTML page, comparisons.
#include "pipeline/report/compare.hpp"
#include "pipeline/report/html.hpp"
#include "pipeline/report/run_folder.hpp"
#include "pipeline/report/run_plots.hpp"

#include "pipeline/core/error.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace fs = std::filesystem;
using namespace rnnflow;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("rnnflow_report_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
};

void write(const fs::path& f, const std::string& text) {
    fs::create_directories(f.parent_path());
    std::ofstream(f, std::ios::binary) << text;
}

// A run folder as `rnnflow run` leaves it, written by hand: metrics for `epochs` epochs with
// the validation perplexity `ppl0 / epoch`, a resolved graph with `cell`, and a summary.
fs::path fake_run(const fs::path& dir, int epochs, double ppl0, const std::string& cell, double lr) {
    std::string csv = "epoch,split,loss,ppl,lr,grad_norm,seconds,items_per_second\n";
    for (int e = 1; e <= epochs; ++e) {
        csv += std::to_string(e) + ",train,2.0,7.4," + std::to_string(lr) + ",0.5,1.0,1000\n";
        csv += std::to_string(e) + ",valid,1.5," + std::to_string(ppl0 / e) + ",,,0.2,5000\n";
    }
    csv += "0,test,1.4,4.1,,,0.2,5000\n";
    write(dir / "metrics.csv", csv);
    write(dir / "resolved.yaml", "experiment: toy\ndescription: a <toy> run\nseed: 7\nstages:\n  rnn: {type: " + cell +
                                     ", hidden: 64}\n  optim: {type: adam, lr: " + std::to_string(lr) +
                                     "}\ntrain: {epochs: " + std::to_string(epochs) + ", keep: best(ppl.valid)}\n");
    write(dir / "summary.txt", "wall time: 12.5 s\ntraining throughput: 1000 items/s\nkept checkpoint: x\n");
    write(dir / "graph.dot", "digraph g { rnn -> optim; }\n");
    write(dir / "command.txt", "rnnflow run toy.yaml\n");
    return dir;
}

}  // namespace

TEST_CASE("report: escaping and base64", "[report]") {
    CHECK(report::html_escape("<a href=\"x\">Tom & 'Jerry'</a>") ==
          "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
    CHECK(report::base64("") == "");
    CHECK(report::base64("f") == "Zg==");
    CHECK(report::base64("fo") == "Zm8=");
    CHECK(report::base64("foo") == "Zm9v");
    CHECK(report::base64("foobar") == "Zm9vYmFy");
    CHECK(report::base64(std::string("\x89PNG\0\xff", 6)) == "iVBORwD/");
}

TEST_CASE("report: CSV, metrics and YAML paths", "[report]") {
    TempDir t;
    write(t.path / "a.csv", "x,y,z\n1,\"a, b\",\"say \"\"hi\"\"\"\n2,\"two\nlines\"\n");
    const auto csv = report::read_csv(t.path / "a.csv");
    REQUIRE(csv.header == std::vector<std::string>{"x", "y", "z"});
    REQUIRE(csv.rows.size() == 2);
    CHECK(csv.rows[0] == std::vector<std::string>{"1", "a, b", "say \"hi\""});
    CHECK(csv.rows[1] == std::vector<std::string>{"2", "two\nlines", ""});  // padded to the header
    CHECK(csv.column("z") == 2);
    CHECK(csv.column("w") == -1);
    CHECK_THROWS_WITH(report::read_csv(t.path / "missing.csv"), Catch::Contains("missing.csv"));

    fake_run(t.path / "run", 2, 10.0, "lstm", 0.01);
    const auto rows = report::read_metrics(t.path / "run");
    REQUIRE(rows.size() == 5);
    CHECK(rows[1].split == "valid");
    CHECK(rows[1].get("ppl") == Approx(10.0));
    CHECK(std::isnan(rows[1].get("lr")));  // an empty cell is an absent value
    CHECK(rows[4].epoch == 0);

    const auto flat = report::flatten_yaml(t.path / "run" / "resolved.yaml");
    CHECK(flat.at("rnn.type") == "lstm");  // stage parameters as --set names them
    CHECK(flat.at("rnn.hidden") == "64");
    CHECK(flat.at("train.keep") == "best(ppl.valid)");
    CHECK(flat.at("seed") == "7");
    CHECK(flat.count("stages.rnn.type") == 0);
}

TEST_CASE("report: the page of a run", "[report]") {
    TempDir t;
    const fs::path run = fake_run(t.path / "run", 3, 12.0, "lstm", 0.01);
    write(run / "samples.txt", "=== epoch 1 ===\nThis License <b>\n");
    write(run / "decoder" / "translations.txt", "2019-03-01 → 1 März 2019\n");
    write(run / "checkpoints" / "notes.txt", "not an output\n");
    report::write_run_plots(run / "attention", report::read_metrics(run));  // stands for a stage's PNGs

    report::HtmlOptions opt;
    opt.dot = "/nonexistent/dot";  // Graphviz missing: the DOT text instead
    const std::string html = report::run_report_html(run, opt);
    CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK_THAT(html, Catch::Contains("<title>toy — rnnflow run</title>"));
    CHECK_THAT(html, Catch::Contains("a &lt;toy&gt; run"));
    // No plots/ folder (an older run): the curves are drawn from metrics.csv.
    CHECK_THAT(html, Catch::Contains("<figure class=\"curve\"><img alt=\"loss\" src=\"data:image/png;base64,iVBORw0KGgo"));
    CHECK_THAT(html, Catch::Contains("alt=\"ppl\""));
    CHECK_THAT(html, Catch::Contains("id=\"metrics-table\""));
    CHECK_THAT(html, Catch::Contains("<td>12</td>"));
    CHECK_THAT(html, Catch::Contains("digraph g { rnn -&gt; optim; }"));
    CHECK_THAT(html, Catch::Contains("Graphviz <code>dot</code> is not installed"));
    CHECK_THAT(html, Catch::Contains("stages:\n  rnn: {type: lstm"));
    CHECK_THAT(html, Catch::Contains("<h3>samples.txt</h3>\n<pre>=== epoch 1 ===\nThis License &lt;b&gt;"));
    CHECK_THAT(html, Catch::Contains("<h3>decoder/translations.txt</h3>"));
    CHECK_THAT(html, Catch::Contains("1 März 2019"));
    CHECK_THAT(html, !Catch::Contains("not an output"));          // checkpoints/ is skipped
    CHECK_THAT(html, Catch::Contains("alt=\"attention/loss.png\""));  // PNGs in stage folders
    CHECK_THAT(html, !Catch::Contains("http://"));
    CHECK_THAT(html, !Catch::Contains("https://"));
    CHECK_FALSE(fs::exists(run / "plots"));  // the report does not write into the run folder

    SECTION("text outputs are cut at the limit, at a character boundary") {
        write(run / "long.txt", std::string(10, 'a') + "ü" + std::string(100, 'b'));
        report::HtmlOptions small = opt;
        small.max_text_bytes = 11;  // "ü" is 2 bytes: byte 11 is its first half
        const std::string h = report::run_report_html(run, small);
        CHECK_THAT(h, Catch::Contains("<h3>long.txt</h3>\n<pre>aaaaaaaaaa</pre>\n<p class=\"muted\">(the first 11 bytes of 112)"));
    }
    SECTION("write_report: DIR/report.html, or the given file; not a run folder is an error") {
        const fs::path f = report::write_report(run, {}, opt);
        CHECK(f == run / "report.html");
        CHECK(fs::file_size(f) > 1000);
        CHECK(report::write_report(run, t.path / "x.html", opt) == t.path / "x.html");
        CHECK_THROWS_WITH(report::write_report(t.path / "nothing"), Catch::Contains("no such folder"));
        fs::create_directories(t.path / "empty");
        CHECK_THROWS_WITH(report::write_report(t.path / "empty"), Catch::Contains("not a run folder"));
    }
}

TEST_CASE("report: the page of a sweep", "[report]") {
    TempDir t;
    const fs::path sw = t.path / "sw";
    write(sw / "results.csv", "rank,config,optim.lr,ppl.valid_mean,ppl.valid_std,seeds,trials,status\n"
                              "1,1,0.02,5.5,0,1,2,1 done\n2,0,0.01,7.25,0,1,1,1 done\n");
    write(sw / "trials.csv", "trial,config,seed,status,objective,best_epoch,epochs,seconds,attempts,worker,optim.lr,error\n"
                             "1,0,,done,7.25,2,2,3.2,1,thread 0,0.01,\n2,1,,done,5.5,2,2,3.1,1,thread 1,0.02,\n");
    write(sw / "curves.csv", "trial,config,status,epoch,ppl.valid\n1,0,done,1,9\n1,0,done,2,7.25\n2,1,done,1,8\n2,1,done,2,5.5\n");
    write(sw / "results.md", "# Sweep lr-test\n\nObjective: `ppl.valid`, lower is better (best epoch of each trial).\n");
    write(sw / "best.yaml", "# best\nexperiment: toy\n");
    REQUIRE(report::is_sweep_dir(sw));
    const std::string html = report::sweep_report_html(sw);
    CHECK_THAT(html, Catch::Contains("<title>sweep lr-test — rnnflow</title>"));
    CHECK_THAT(html, Catch::Contains("Objective: ppl.valid, lower is better"));
    CHECK_THAT(html, Catch::Contains("<table class=\"sortable\" id=\"results-table\">"));
    CHECK_THAT(html, Catch::Contains("<table class=\"sortable\" id=\"trials-table\">"));
    CHECK_THAT(html, Catch::Contains("alt=\"ppl.valid per epoch, every trial\" src=\"data:image/png;base64,"));
    CHECK_THAT(html, Catch::Contains("<script>"));
    CHECK_THAT(html, Catch::Contains("experiment: toy"));
}

TEST_CASE("compare: metrics side by side, configuration differences, one plot", "[report]") {
    TempDir t;
    const fs::path a = fake_run(t.path / "a" / "20240101-1200", 3, 12.0, "lstm", 0.01);
    const fs::path b = fake_run(t.path / "b" / "20240101-1200", 2, 9.0, "gru", 0.02);
    const auto c = report::compare_runs({a, b});
    CHECK(c.metric == "ppl");
    CHECK(c.split == "valid");
    REQUIRE(c.minimize.has_value());
    CHECK(*c.minimize);
    // Runs with one folder name are told apart by their parent folder.
    CHECK(c.runs[0].name == "a/20240101-1200");
    CHECK(c.runs[1].name == "b/20240101-1200");
    REQUIRE(c.table.size() == 2);
    CHECK(c.header[3] == "best ppl.valid");
    CHECK(c.table[0][2] == "3");
    CHECK(c.table[0][3] == "4 (epoch 3)");   // 12 / 3
    CHECK(c.table[1][3] == "4.5 (epoch 2)");  // 9 / 2
    CHECK(c.table[0][5] == "4.1");            // test ppl
    CHECK(c.table[0][7] == "12.5");           // wall time from summary.txt
    std::vector<std::string> paths;
    for (const auto& d : c.config_diff) paths.push_back(d[0]);
    CHECK(paths == std::vector<std::string>{"optim.lr", "rnn.type", "train.epochs"});
    CHECK(c.config_diff[1] == std::vector<std::string>{"rnn.type", "lstm", "gru"});
    const std::string text = report::comparison_text(c);
    CHECK_THAT(text, Catch::Contains("ppl on valid (lower is better)"));
    CHECK_THAT(text, Catch::Contains("rnn.type"));
    report::write_comparison_plot(c, t.path / "compare.png");
    CHECK(fs::file_size(t.path / "compare.png") > 1000);

    CHECK_THROWS_WITH(report::compare_runs({a}), Catch::Contains("at least two"));
    fs::create_directories(t.path / "empty");
    CHECK_THROWS_WITH(report::compare_runs({a, t.path / "empty"}), Catch::Contains("empty: not a run folder"));
}
