// Line charts and heatmaps as PNG files, drawn by PLplot through its cairo driver (pngcairo):
// a real plotting library with anti-aliased lines and Pango text (UTF-8 labels), not pixel code
// of our own.
//
// Part of the SDK (<rnnflow/plot.hpp>), so evaluators and plug-in stages draw as the report does:
// used for the run folder's curves (pipeline/report/run_plots), attention maps (source × target
// tokens) and confusion matrices (annotated counts). Files are written atomically (a temporary file in
// the same folder, then a rename), so a reader never sees half a PNG.
#pragma once
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>
namespace rnnflow::plot {
struct Series { std::string label; std::vector<double> x, y; };
struct LineChart {
    std::string title, x_label, y_label;
    std::vector<Series> series;
    bool log_y = false;
};
struct Heatmap {
    std::string title, x_label, y_label;
    std::vector<std::string> col_labels;  // x axis, one per column (may be empty: numbers)
    std::vector<std::string> row_labels;  // y axis, one per row, top to bottom
    std::int64_t rows = 0, cols = 0;
    std::vector<double> values;           // rows*cols, row-major
    bool annotate = false;                // print each cell's value (small matrices, e.g. confusion)
    bool colour_bar = true;               // the value scale on the right (false: a picture whose
                                          // few values the title explains, e.g. a piano roll)
};
// Write a PNG. Throws rnnflow::Error naming the file on failure. Thread-safe (PLplot has global
// state: serialise internally). width/height 0: a size chosen from the content.
// Non-finite values are skipped: a gap in a line, a grey cell in a heatmap; with log_y, values
// <= 0 too. The folder of `file` must exist.
void write_png(const LineChart& chart, const std::filesystem::path& file, int width = 0, int height = 0);
void write_png(const Heatmap& map, const std::filesystem::path& file, int width = 0, int height = 0);
// PLplot keeps global state: code that calls PLplot itself (a stage drawing a picture these
// charts have no form for) holds this lock while it does, the one write_png takes.
std::mutex& plplot_mutex();
}  // namespace rnnflow::plot
