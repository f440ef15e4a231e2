// pipeline/exec/run_status, pipeline/exec/per_class, pipeline/report/runs: status.json, the
// headline, the per-class table and the run table.
#include "pipeline/exec/per_class.hpp"
#include "pipeline/exec/run_status.hpp"
#include "pipeline/report/compare.hpp"
#include "pipeline/report/html.hpp"
#include "pipeline/report/runs.hpp"

#include "pipeline/core/error.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace rnnflow;

namespace {

using test::TempDir;

void write(const fs::path& f, const std::string& text) {
    fs::create_directories(f.parent_path());
    std::ofstream(f, std::ios::binary) << text;
}

std::string slurp(const fs::path& f) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

}  // namespace

TEST_CASE("run status: each state is written and read back, unknown numbers left out", "[status]") {
    TempDir tmp;
    const fs::path run = tmp.path / "run";
    fs::create_directories(run);
    CHECK_FALSE(read_run_status(run).has_value());

    RunStatusFile file;
    file.set_resume_command("rnnflow run --resume 'my run' --threads 1");
    file.start(run, "toy \"quoted\"", 5, false);
    auto s = read_run_status(run);
    REQUIRE(s);
    CHECK(s->state == "running");
    CHECK(s->experiment == "toy \"quoted\"");
    CHECK(s->epochs == 5);
    CHECK(s->epochs_done == 0);
    CHECK(s->ended.empty());
    CHECK(s->started.size() == 20);  // 2026-12-07T23:04:46Z
    CHECK(slurp(run / "status.json").find("best_valid") == std::string::npos);

    const MetricsRow v1{1, "valid", {{"loss", 1.0}, {"acc", 0.5}}};
    const MetricsRow v2{2, "valid", {{"loss", 0.8}, {"acc", 0.75}}};
    const MetricsRow v3{3, "valid", {{"loss", 0.7}, {"acc", 0.625}}};
    const MetricsRow te{0, "test", {{"loss", 0.9}, {"acc", 0.7}}};
    file.epoch_done(2, make_headline({v1, v2}, "acc", "acc.accuracy", true, "valid"));
    s = read_run_status(run);
    CHECK(s->epochs_done == 2);
    CHECK(s->headline.best_valid == 0.75);
    CHECK(s->headline.best_epoch == 2);
    CHECK(std::isnan(s->headline.test));

    SECTION("finished") {
        Headline h = make_headline({v1, v2, v3, te}, "acc", "acc.accuracy", true, "valid");
        h.seconds = 12.25;
        h.items_per_second = 1000;
        h.parameters = 4321;
        file.finished(h);
        s = read_run_status(run);
        CHECK(s->state == "finished");
        CHECK_FALSE(s->ended.empty());
        CHECK(s->error.empty());
        CHECK(s->resume_command.empty());
        CHECK(s->headline.metric == "acc");
        CHECK(s->headline.label == "acc.accuracy");
        CHECK(s->headline.higher_is_better);
        CHECK(s->headline.best_valid == 0.75);
        CHECK(s->headline.best_epoch == 2);
        CHECK(s->headline.test == 0.7);
        CHECK(s->headline.test_loss == 0.9);
        CHECK(s->headline.seconds == 12.25);
        CHECK(s->headline.parameters == 4321);
    }
    SECTION("failed after a checkpoint: the message and the resume command") {
        file.failed("stage 'rnn' (lstm): forward: out of memory\n  hint: smaller batches", true);
        s = read_run_status(run);
        CHECK(s->state == "failed");
        CHECK(s->error == "stage 'rnn' (lstm): forward: out of memory\n  hint: smaller batches");
        CHECK(s->resume_command == "rnnflow run --resume 'my run' --threads 1");
        CHECK(s->epochs_done == 2);
    }
    SECTION("failed without a checkpoint: no resume command") {
        file.failed("data.txt: cannot open", false);
        CHECK(read_run_status(run)->resume_command.empty());
    }
    SECTION("interrupted") {
        file.interrupted("interrupted by SIGINT at epoch 3, after batch 4", true);
        s = read_run_status(run);
        CHECK(s->state == "interrupted");
        CHECK(s->resume_command == "rnnflow run --resume 'my run' --threads 1");
        SECTION("a resumed run keeps its start time and becomes running again") {
            const std::string started = s->started;
            RunStatusFile again;
            again.start(run, "toy", 5, true);
            s = read_run_status(run);
            CHECK(s->state == "running");
            CHECK(s->started == started);
            CHECK(s->epochs_done == 2);
            CHECK(s->error.empty());
        }
    }
    SECTION("lower is better") {
        const Headline h = make_headline({v1, v2, v3}, "loss", "loss", false, "valid");
        CHECK(h.best_valid == 0.7);
        CHECK(h.best_epoch == 3);
    }
}

TEST_CASE("run status: a damaged status file is an error naming it", "[status]") {
    TempDir tmp;
    write(tmp.path / "status.json", "{\"state\": \"running\", \"epochs_done\": \"three\"}\n");
    CHECK_THROWS_WITH(read_run_status(tmp.path), Catch::Contains("status.json") && Catch::Contains("wrong kind"));
    write(tmp.path / "status.json", "[1, 2]\n");
    CHECK_THROWS_WITH(read_run_status(tmp.path), Catch::Contains("not a status file"));
}

TEST_CASE("per-class table: values by stage and class, support from the confusion table", "[status][per_class]") {
    TempDir tmp;
    write(tmp.path / "acc" / "test.confusion.tsv", "gold\\predicted\tNOUN\tVERB\nNOUN\t3\t1\nVERB\t0\t2\n");
    const MetricsRow row{0, "test", {{"loss", 0.5}, {"acc", 0.8333}, {"acc.macro_f1", 0.8},
                                     {"acc.precision.NOUN", 1.0}, {"acc.recall.NOUN", 0.75}, {"acc.f1.NOUN", 0.857},
                                     {"acc.accuracy.NOUN", 0.8333}, {"acc.precision.VERB", 0.6667},
                                     {"acc.recall.VERB", 1.0}, {"acc.f1.VERB", 0.8}, {"acc.accuracy.VERB", 0.8333},
                                     {"ner.f1.B.PER", 0.5}, {"ner.other.X", 1.0}}};
    CHECK(is_per_class_key("acc.f1.NOUN"));
    CHECK_FALSE(is_per_class_key("acc.macro_f1"));
    const auto rows = per_class_rows(row, tmp.path);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].stage == "acc");
    CHECK(rows[0].cls == "NOUN");
    CHECK(rows[0].support == 4);
    CHECK(rows[0].recall == 0.75);
    CHECK(rows[1].cls == "VERB");
    CHECK(rows[1].support == 2);
    CHECK(rows[2].stage == "ner");
    CHECK(rows[2].cls == "B.PER");  // a class name may hold dots
    CHECK(std::isnan(rows[2].support));
    CHECK(per_class_tsv(rows) ==
          "stage\tclass\tsupport\tprecision\trecall\tf1\taccuracy\n"
          "acc\tNOUN\t4\t1\t0.75\t0.857\t0.8333\n"
          "acc\tVERB\t2\t0.6667\t1\t0.8\t0.8333\n"
          "ner\tB.PER\t\t\t\t0.5\t\n");
}

namespace {

void status_file(const fs::path& dir, const std::string& body) {
    write(dir / "resolved.yaml", "experiment: x\n");
    write(dir / "status.json", "{" + body + "}\n");
}

}  // namespace

TEST_CASE("runs: finished, failed, interrupted and unknown runs in one table, sorted and filtered", "[status][runs]") {
    TempDir tmp;
    const fs::path root = tmp.path / "runs";
    status_file(root / "lm" / "a", R"("state": "finished", "experiment": "lm", "started": "2026-12-07T10:00:00Z",
        "epochs_done": 3, "epochs": 3, "metric": "ppl", "metric_label": "ppl.perplexity", "higher_is_better": false,
        "best_valid": 7.5, "best_epoch": 2, "test": 7.75, "seconds": 12.34)");
    status_file(root / "lm" / "b", R"("state": "failed", "experiment": "lm", "started": "2026-12-07T09:00:00Z",
        "epochs_done": 0, "epochs": 3, "error": "corpus: data.txt: cannot open")");
    status_file(root / "tagger" / "c", R"("state": "interrupted", "experiment": "tagger",
        "started": "2026-12-07T11:00:00Z", "epochs_done": 1, "epochs": 4, "metric": "acc",
        "metric_label": "acc.accuracy", "higher_is_better": true, "best_valid": 0.9, "best_epoch": 1,
        "resume_command": "rnnflow run --resume runs/tagger/c --threads 1")");
    // An older run: no status.json; its numbers from metrics.csv and summary.txt.
    write(root / "old" / "d" / "resolved.yaml", "experiment: old\ntrain: {keep: best(ppl.valid)}\n");
    write(root / "old" / "d" / "metrics.csv",
          "epoch,split,loss,ppl\n1,valid,2,9\n2,valid,1.5,8\n0,test,1.4,8.5\n");
    write(root / "old" / "d" / "summary.txt", "wall time: 3.5 s\n");
    write(root / "lm" / "a" / "checkpoints" / "status.json", "not looked at: inside a run");

    const auto runs = report::find_runs({root});
    REQUIRE(runs.size() == 4);
    const auto t = report::runs_table(runs);
    REQUIRE(t.rows.size() == 4);
    // By start time: the older run (no start time) first, then b, a, c.
    CHECK(t.rows[0] == std::vector<std::string>{"old", "", "unknown", "2", "ppl", "8", "2", "8.5", "3.5",
                                                (root / "old" / "d").string()});
    CHECK(t.rows[1] == std::vector<std::string>{"lm", "2026-12-07T09:00:00Z", "failed", "0/3", "", "", "", "", "",
                                                (root / "lm" / "b").string()});
    CHECK(t.rows[2] == std::vector<std::string>{"lm", "2026-12-07T10:00:00Z", "finished", "3/3", "ppl.perplexity",
                                                "7.5", "2", "7.75", "12.3", (root / "lm" / "a").string()});
    CHECK(t.rows[3] == std::vector<std::string>{"tagger", "2026-12-07T11:00:00Z", "interrupted", "1/4",
                                                "acc.accuracy", "0.9", "1", "", "", (root / "tagger" / "c").string()});

    const auto lm = report::runs_table(runs, "lm", "status");
    REQUIRE(lm.rows.size() == 2);
    CHECK(lm.rows[0][2] == "failed");
    CHECK(lm.rows[1][2] == "finished");
    const auto by_test = report::runs_table(runs, "", "test", true);
    CHECK(by_test.rows[0][7] == "8.5");
    CHECK(by_test.rows[1][7] == "7.75");
    CHECK(by_test.rows[2][7].empty());  // unknown values last
    CHECK_THROWS_WITH(report::runs_table(runs, "", "accuracy"), Catch::Contains("no such column"));

    const std::string tsv = report::runs_tsv(lm);
    CHECK(tsv.substr(0, tsv.find('\n')) == "experiment\tstarted\tstatus\tepochs\tmetric\tbest_valid\tbest_epoch\ttest\twall_s\tfolder");
    const std::string json = report::runs_json(lm);
    CHECK(json.find("\"status\": \"failed\", \"epochs\": \"0/3\", \"metric\": \"\", \"best_valid\": null") !=
          std::string::npos);
    CHECK(json.find("\"best_valid\": 7.5, \"best_epoch\": 2, \"test\": 7.75, \"wall_s\": 12.3") != std::string::npos);
    const std::string page = report::runs_html(t, tmp.path);
    CHECK(page.find("<a href=\"runs/lm/a/report.html\">") != std::string::npos);
    CHECK(report::runs_text(t).find("unknown") != std::string::npos);
}

TEST_CASE("report and compare: a run that failed before its first pass says so", "[status][report]") {
    TempDir tmp;
    const fs::path failed = tmp.path / "failed";
    status_file(failed, R"("state": "failed", "experiment": "x", "started": "2026-12-07T09:00:00Z",
        "epochs_done": 0, "epochs": 3, "error": "stage 'corpus' (text_file): prepare: data.txt: cannot open")");
    const std::string html = report::run_report_html(failed, report::HtmlOptions{""});
    const auto at = html.find("failed: stage &#39;corpus&#39; (text_file): prepare: data.txt: cannot open");
    CHECK(at != std::string::npos);
    CHECK(at < html.find("id=\"curves\""));  // above everything else

    const fs::path ok = tmp.path / "ok";
    write(ok / "metrics.csv", "epoch,split,loss,ppl\n1,valid,2,9\n0,test,1.4,8.5\n");
    status_file(ok, R"("state": "finished", "experiment": "x")");
    const auto c = report::compare_runs({ok, failed});
    REQUIRE(c.table.size() == 2);
    CHECK(c.metric == "ppl");
    CHECK(c.table[0].back() == "finished");
    CHECK(c.table[1].back() == "failed");
    CHECK(c.table[1][2] == "0");  // no epochs
}

TEST_CASE("report: headline columns first, per-class columns collapsed, the per-class table sortable",
          "[status][report]") {
    TempDir tmp;
    const fs::path run = tmp.path / "tagger";
    write(run / "metrics.csv", "epoch,split,loss,acc,acc.macro_f1,acc.f1.NOUN,acc.f1.VERB\n"
                               "1,valid,0.5,0.9,0.85,0.95,0.75\n0,test,0.6,0.8,0.7,0.9,0.5\n");
    write(run / "test.per_class.tsv", "stage\tclass\tsupport\tprecision\trecall\tf1\taccuracy\n"
                                      "acc\tNOUN\t4\t1\t0.75\t0.9\t0.8\nacc\tVERB\t2\t0.5\t1\t0.5\t0.8\n");
    status_file(run, R"("state": "finished", "experiment": "x", "metric": "acc", "metric_label": "acc.accuracy",
        "higher_is_better": true, "best_valid": 0.9, "best_epoch": 1, "test": 0.8)");
    const std::string html = report::run_report_html(run, report::HtmlOptions{""});
    const auto main_table = html.find("<table class=\"sortable\" id=\"metrics-table\">");
    const auto details = html.find("<details id=\"metrics-per-class\"><summary>per-class columns (2)</summary>");
    REQUIRE(main_table != std::string::npos);
    REQUIRE(details != std::string::npos);
    CHECK(html.find("acc.macro_f1", main_table) < details);  // a headline column
    CHECK(html.find("acc.f1.NOUN", main_table) > details);   // only in the collapsed table
    const auto per_class = html.find("<table class=\"sortable\" id=\"per-class-test\">");
    REQUIRE(per_class != std::string::npos);
    CHECK(html.find("<td class=\"text\">VERB</td><td>2</td><td>0.5</td><td>1</td><td>0.5</td><td>0.8</td>", per_class) !=
          std::string::npos);
    const auto headline = html.find("<section id=\"headline\">");
    REQUIRE(headline != std::string::npos);
    CHECK(html.find("<li>test acc.accuracy: 0.8</li><li>best valid acc.accuracy: 0.9 at epoch 1 (higher is better)</li>",
                    headline) != std::string::npos);
    CHECK(headline < main_table);
}

TEST_CASE("runs: a running run whose process is gone reads as killed", "[status][runs]") {
    TempDir tmp;
    RunStatusFile file;
    file.start(tmp.path, "x", 3, false);  // this process, this machine
    CHECK(report::read_run_entry(tmp.path).status.state == "running");
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(child > 0);
    int st = 0;
    REQUIRE(::waitpid(child, &st, 0) == child);  // reaped: its pid names no process now
    RunStatus s = *read_run_status(tmp.path);
    s.pid = child;
    write_run_status(tmp.path, s);
    CHECK(report::read_run_entry(tmp.path).status.state == "killed");
    s.host = "another-machine";  // there, nothing can be said
    write_run_status(tmp.path, s);
    CHECK(report::read_run_entry(tmp.path).status.state == "running");
}
