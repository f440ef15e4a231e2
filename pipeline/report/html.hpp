// `rnnflow report RUN_DIR|SWEEP_DIR`: one self-contained HTML page (images inlined as data URIs,
// styles and the small table-sorting script inline: it opens offline, from a mail attachment or
// a CI artifact).
//
// A run: summary, the curves (RUN_DIR/plots, drawn again from metrics.csv when absent), the
// metrics table, the graph drawing (Graphviz `dot` as SVG when it is on PATH, else the DOT
// text), the resolved YAML, samples.txt and every other *.txt a stage wrote (translations, ...),
// generated music (each *.mid as a download link, inlined, with the PNG of its name: the piano
// roll), and every other PNG in the folder (attention maps, confusion matrices in
// RUN_DIR/<stage>/).
// A sweep: the results table and the trials table (sortable by clicking a column), the
// objective per epoch of every trial (PLplot), the best configuration.
#pragma once

#include <filesystem>
#include <string>

namespace rnnflow::report {

struct HtmlOptions {
    std::string dot = "dot";             // the Graphviz program; "" draws no graph (DOT text only)
    std::size_t max_text_bytes = 256 * 1024;   // per text file; the rest is cut with a note
    std::size_t max_image_bytes = 8u << 20;    // larger PNGs are listed, not inlined
};

std::string run_report_html(const std::filesystem::path& run_dir, const HtmlOptions& options = {});
std::string sweep_report_html(const std::filesystem::path& sweep_dir, const HtmlOptions& options = {});

// Writes the page for a run or sweep folder to `out` (default DIR/report.html), atomically, and
// returns its path. Throws rnnflow::Error when DIR is neither kind of folder.
std::filesystem::path write_report(const std::filesystem::path& dir, const std::filesystem::path& out = {},
                                   const HtmlOptions& options = {});

// Pieces, for tests and other pages.
std::string html_escape(const std::string& text);
std::string base64(const std::string& bytes);

}  // namespace rnnflow::report
