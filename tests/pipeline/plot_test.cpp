// pipeline/report/plot: PNG files from PLplot (line charts, heatmaps), their errors, threads.
#include "pipeline/core/plot.hpp"

#include "pipeline/core/error.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace rnnflow;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("rnnflow_plot_" + std::to_string(::getpid()) + "_" +
                                            std::to_string(rd()));
        fs::create_directories(path);
    }
    ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
};

std::uint32_t be32(const std::string& s, std::size_t at) {
    return (std::uint32_t(std::uint8_t(s[at])) << 24) | (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint32_t(std::uint8_t(s[at + 3]));
}

std::uint32_t crc32(const std::string& s, std::size_t from, std::size_t n) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = from; i < from + n; ++i) {
        c ^= std::uint8_t(s[i]);
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

struct PngInfo {
    std::uint32_t width = 0, height = 0;
    std::size_t idat_bytes = 0;
};

// Walks the chunks: signature, IHDR first (with a valid CRC), IDAT data, IEND last.
PngInfo read_png(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    REQUIRE(in);
    const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(s.size() > 33);
    REQUIRE(s.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0);
    REQUIRE(be32(s, 8) == 13);
    REQUIRE(s.compare(12, 4, "IHDR") == 0);
    REQUIRE(be32(s, 29) == crc32(s, 12, 17));
    PngInfo info{be32(s, 16), be32(s, 20), 0};
    std::size_t at = 8;
    std::string last;
    while (at + 12 <= s.size()) {
        const std::uint32_t len = be32(s, at);
        REQUIRE(at + 12 + len <= s.size());
        last = s.substr(at + 4, 4);
        if (last == "IDAT") info.idat_bytes += len;
        at += 12 + len;
    }
    CHECK(at == s.size());
    CHECK(last == "IEND");
    CHECK(info.idat_bytes > 0);
    return info;
}

plot::LineChart loss_chart() {
    plot::LineChart c;
    c.title = "char-lm: loss";
    c.x_label = "epoch";
    c.y_label = "loss (nats/token)";
    plot::Series train{"train", {}, {}}, valid{"valid", {}, {}};
    for (int e = 1; e <= 10; ++e) {
        train.x.push_back(e);
        train.y.push_back(3.0 / std::sqrt(e));
        valid.x.push_back(e);
        valid.y.push_back(3.1 / std::sqrt(e) + 0.02 * e);
    }
    c.series = {train, valid};
    return c;
}

plot::Heatmap attention(std::int64_t rows, std::int64_t cols) {
    plot::Heatmap m;
    m.title = "attention";
    m.x_label = "source";
    m.y_label = "target";
    m.rows = rows;
    m.cols = cols;
    for (std::int64_t r = 0; r < rows; ++r) {
        m.row_labels.push_back("t" + std::to_string(r) + (r % 3 == 0 ? "é" : ""));
        for (std::int64_t c = 0; c < cols; ++c)
            m.values.push_back(std::exp(-0.5 * double((r - c) * (r - c))));
    }
    for (std::int64_t c = 0; c < cols; ++c) m.col_labels.push_back(c % 2 ? "Mär#" : "日付");
    return m;
}

}  // namespace

TEST_CASE("plot: a line chart is a PNG of the requested size", "[plot]") {
    TempDir dir;
    const auto file = dir.path / "loss.png";
    plot::write_png(loss_chart(), file, 640, 400);
    const auto png = read_png(file);
    CHECK(png.width == 640);
    CHECK(png.height == 400);
    // No temporary file is left beside it.
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

    SECTION("default size, log axis, gaps, a single point, no data") {
        auto c = loss_chart();
        c.log_y = true;
        c.series[0].y[3] = std::nan("");
        c.series[1].y[5] = -1;  // not drawable on a log axis: a gap
        c.series.push_back({"one point", {4}, {1.5}});
        plot::write_png(c, dir.path / "log.png");
        const auto def = read_png(dir.path / "log.png");
        CHECK(def.width > 0);
        CHECK(def.height > 0);
        plot::write_png(plot::LineChart{"empty", "x", "y", {}, false}, dir.path / "empty.png");
        read_png(dir.path / "empty.png");
    }
    SECTION("more series than colours, long curves") {
        plot::LineChart c{"many", "step", "value", {}, false};
        for (int k = 0; k < 12; ++k) {
            plot::Series s{"series " + std::to_string(k), {}, {}};
            for (int i = 0; i < 500; ++i) {
                s.x.push_back(i);
                s.y.push_back(std::sin(i * 0.02 + k));
            }
            c.series.push_back(s);
        }
        plot::write_png(c, dir.path / "many.png");
        read_png(dir.path / "many.png");
    }
}

TEST_CASE("plot: heatmaps with UTF-8 labels, annotation and sizes from the content", "[plot]") {
    TempDir dir;
    plot::write_png(attention(60, 60), dir.path / "big.png");
    plot::write_png(attention(5, 7), dir.path / "small.png");
    const auto big = read_png(dir.path / "big.png"), small = read_png(dir.path / "small.png");
    CHECK(big.width > small.width);
    CHECK(big.height > small.height);
    CHECK(big.width >= 60 * 10);  // room for 60 columns

    plot::Heatmap confusion{"confusion", "predicted", "true", {"cat", "dog", "bird"},
                            {"cat", "dog", "bird"}, 3, 3, {50, 2, 1, 3, 40, 0, 7, 1, 33}, true};
    plot::write_png(confusion, dir.path / "confusion.png", 500, 450);
    const auto conf = read_png(dir.path / "confusion.png");
    CHECK(conf.width == 500);
    CHECK(conf.height == 450);

    plot::Heatmap numbered;  // no labels: indices; a missing value; a constant matrix
    numbered.rows = 4;
    numbered.cols = 3;
    numbered.values = std::vector<double>(12, 2.0);
    numbered.values[5] = std::nan("");
    numbered.annotate = true;
    plot::write_png(numbered, dir.path / "numbered.png");
    read_png(dir.path / "numbered.png");

    // Without its colour bar (a piano roll: the title names its few values) the picture loses
    // the bar's margin: narrower by default, and the same height.
    plot::Heatmap roll = attention(20, 30);
    plot::write_png(roll, dir.path / "with_bar.png");
    roll.colour_bar = false;
    plot::write_png(roll, dir.path / "without_bar.png");
    const auto with_bar = read_png(dir.path / "with_bar.png"), without_bar = read_png(dir.path / "without_bar.png");
    CHECK(without_bar.width < with_bar.width);
    CHECK(without_bar.height == with_bar.height);
}

TEST_CASE("plot: errors name the file", "[plot]") {
    TempDir dir;
    const auto missing_dir = dir.path / "no_such_folder" / "loss.png";
    try {
        plot::write_png(loss_chart(), missing_dir);
        FAIL("expected an error");
    } catch (const Error& e) {
        CHECK_THAT(e.message(), Catch::Contains(missing_dir.string()));
    }
    // A regular file where a folder should be (fails for root too, unlike permissions).
    std::ofstream(dir.path / "file.txt") << "x";
    const auto under_file = dir.path / "file.txt" / "map.png";
    try {
        plot::write_png(attention(3, 3), under_file);
        FAIL("expected an error");
    } catch (const Error& e) {
        CHECK_THAT(e.message(), Catch::Contains(under_file.string()));
    }
    auto bad = attention(3, 3);
    bad.values.pop_back();
    CHECK_THROWS_WITH(plot::write_png(bad, dir.path / "bad.png"),
                      Catch::Contains("bad.png") && Catch::Contains("8 values for 3x3 cells"));
    bad = attention(3, 3);
    bad.col_labels.pop_back();
    CHECK_THROWS_WITH(plot::write_png(bad, dir.path / "bad.png"), Catch::Contains("2 column labels for 3 columns"));
    auto chart = loss_chart();
    chart.series[0].y.pop_back();
    CHECK_THROWS_WITH(plot::write_png(chart, dir.path / "bad.png"),
                      Catch::Contains("series 'train' has 10 x values and 9 y values"));
    CHECK_THROWS_WITH(plot::write_png(loss_chart(), dir.path / "bad.png", -5, 10), Catch::Contains("bad.png"));
    CHECK_FALSE(fs::exists(dir.path / "bad.png"));
    // A failed write leaves an existing file as it was, and no temporary files.
    plot::write_png(loss_chart(), dir.path / "keep.png", 300, 200);
    CHECK_THROWS(plot::write_png(bad, dir.path / "keep.png"));
    CHECK(read_png(dir.path / "keep.png").width == 300);
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);
}

TEST_CASE("plot: threads draw at the same time", "[plot]") {
    TempDir dir;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 3; ++i) {
                if (t % 2) plot::write_png(attention(8, 8), dir.path / ("h" + std::to_string(t * 10 + i) + ".png"));
                else plot::write_png(loss_chart(), dir.path / ("l" + std::to_string(t * 10 + i) + ".png"));
            }
        });
    for (auto& th : threads) th.join();
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir.path)) {
        read_png(e.path());
        ++n;
    }
    CHECK(n == 12);
}
