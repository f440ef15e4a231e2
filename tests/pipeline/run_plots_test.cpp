// pipeline/report/run_plots: the run folder's curves from metrics rows.
#include "pipeline/report/run_plots.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace rnnflow;

namespace {

std::vector<MetricsRow> rows_for(int epochs) {
    std::vector<MetricsRow> rows;
    for (int e = 1; e <= epochs; ++e) {
        const double loss = 3.0 / e;
        rows.push_back({e, "train", {{"loss", loss}, {"ppl", std::exp(loss)}, {"lr", 0.01 / e},
                                     {"grad_norm", 2.0 / e}, {"seconds", 1.0}, {"items_per_second", 100}}});
        rows.push_back({e, "valid", {{"loss", loss + 0.1}, {"ppl", std::exp(loss + 0.1)}, {"seconds", 0.2},
                                     {"items_per_second", 500}}});
    }
    rows.push_back({0, "test", {{"loss", 1.5}, {"ppl", std::exp(1.5)}}});
    return rows;
}

bool is_png(const fs::path& f) {
    std::ifstream in(f, std::ios::binary);
    char magic[8] = {};
    in.read(magic, 8);
    return in && std::string(magic, 8) == std::string("\x89PNG\r\n\x1a\n", 8);
}

}  // namespace

TEST_CASE("run plots: the main metric is train.keep's, else the first stage metric", "[plot]") {
    const auto rows = rows_for(2);
    CHECK(report::main_metric(rows) == "ppl");
    CHECK(report::main_metric(rows, "ppl") == "ppl");
    CHECK(report::main_metric(rows, "acc") == "ppl");  // not in the rows: the first one
    CHECK(report::main_metric({{1, "train", {{"loss", 1.0}, {"lr", 0.1}}}}).empty());
    CHECK(report::is_bookkeeping_value("items_per_second"));
    CHECK_FALSE(report::is_bookkeeping_value("ppl"));
}

TEST_CASE("run plots: loss, main metric, learning rate and gradient norm as PNG files", "[plot]") {
    const fs::path dir = fs::temp_directory_path() / ("rnnflow_run_plots_" + std::to_string(::getpid())) / "plots";
    const auto written = report::write_run_plots(dir, rows_for(3), "ppl");
    REQUIRE(written.size() == 4);
    for (const char* name : {"loss.png", "ppl.png", "lr.png", "grad_norm.png"}) {
        INFO(name);
        CHECK(is_png(dir / name));
    }
    // A first epoch (one point per curve) draws too; rows without a metric give no file for it.
    fs::remove_all(dir);
    const auto one = report::write_run_plots(dir, {{1, "train", {{"loss", 2.0}, {"lr", 0.1}}}});
    CHECK(one.size() == 2);
    CHECK(is_png(dir / "loss.png"));
    CHECK(is_png(dir / "lr.png"));
    CHECK_FALSE(fs::exists(dir / "grad_norm.png"));

    // update_run_plots never throws: a failure is one warning in the log.
    std::ofstream(dir.parent_path() / "not_a_dir") << "x";
    std::ostringstream log;
    report::update_run_plots(dir.parent_path() / "not_a_dir", rows_for(1), "ppl", &log);
    CHECK_THAT(log.str(), Catch::Contains("warning: the run's plots were not written"));
    fs::remove_all(dir.parent_path());
}
