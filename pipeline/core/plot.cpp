#include "pipeline/core/plot.hpp"

#include "pipeline/core/error.hpp"

#include <plplot.h>  // PLplot's C API (pkg-config plplot: -I/usr/include/plplot)

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <system_error>

namespace rnnflow::plot {

// PLplot keeps its streams, colour maps and driver table in globals: one drawing at a time.
std::mutex& plplot_mutex() {
    static std::mutex m;
    return m;
}

namespace {

// plabort() (a recoverable PLplot error, e.g. a bad argument) reports here instead of stderr;
// write_png turns it into an Error. Guarded by plplot_mutex().
std::string& abort_messages() {
    static std::string s;
    return s;
}
void on_plplot_abort(const char* message) {
    auto& s = abort_messages();
    if (!s.empty()) s += "; ";
    s += message ? message : "unknown PLplot error";
}
// plexit() (an unrecoverable PLplot error) calls exit() after its handler whatever the handler
// returns, so write_png checks beforehand what could send PLplot there: the output file opens
// (we create it first) and the pngcairo device exists. The handler only says what happened.
int on_plplot_exit(const char* message) {
    std::fprintf(stderr, "rnnflow: PLplot failed: %s\n", message ? message : "");
    return 1;
}

// Text for PLplot: at most `max_chars` code points (the cairo driver refuses strings of 500 or
// more), and '#' doubled (PLplot reads '#' as the start of an escape sequence such as #fi).
std::string escape(const std::string& text, std::size_t max_chars = 200) {
    std::string out;
    out.reserve(text.size());
    std::size_t chars = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80 && ++chars > max_chars) {
            out += "...";
            break;
        }
        out += c;
        if (c == '#') out += '#';
    }
    return out;
}

// Width of UTF-8 text in character heights, roughly, for margins: Latin letters about 0.7,
// CJK and other wide scripts about 1.1.
double text_width(const std::string& text) {
    double w = 0;
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        const std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        w += len >= 3 ? 1.1 : 0.7;
        i += len;
    }
    return w;
}

bool have_pngcairo() {
    const char** menus = nullptr;
    const char** names = nullptr;
    int n = 64;  // in: room in the arrays; out: devices found
    std::vector<const char*> menu_buf(static_cast<std::size_t>(n)), name_buf(static_cast<std::size_t>(n));
    menus = menu_buf.data();
    names = name_buf.data();
    plgDevs(&menus, &names, &n);
    for (int i = 0; i < n; ++i)
        if (names[i] && std::strcmp(names[i], "pngcairo") == 0) return true;
    return false;
}

// Colours: cmap0 slot 0 is the background, 1 the axes and text, 2 the grid, 15 white text,
// 3.. the series (a palette that stays apart for colour-blind readers: Okabe & Ito, 2008).
constexpr int kBackground = 0, kInk = 1, kGrid = 2, kWhite = 15, kFirstSeries = 3;
constexpr std::array<std::array<int, 3>, 8> kSeriesColours{{{0, 114, 178}, {213, 94, 0},
    {0, 158, 115}, {204, 121, 167}, {230, 159, 0}, {86, 180, 233}, {0, 0, 0}, {240, 228, 66}}};
constexpr int kSeriesSlots = static_cast<int>(kSeriesColours.size());

void set_colours() {
    plscmap0n(16);
    plscol0(kBackground, 255, 255, 255);
    plscol0(kInk, 0, 0, 0);
    plscol0(kGrid, 215, 215, 215);
    plscol0(kWhite, 255, 255, 255);
    for (int i = 0; i < kSeriesSlots; ++i) {
        const auto& c = kSeriesColours[static_cast<std::size_t>(i)];
        plscol0(kFirstSeries + i, c[0], c[1], c[2]);
    }
    plscol0(14, 190, 190, 190);  // missing cells in heatmaps
    // cmap1: a perceptually ordered dark-blue → green → yellow ramp (viridis-like anchors).
    PLFLT pos[] = {0.0, 0.25, 0.5, 0.75, 1.0};
    PLFLT r[] = {68 / 255., 59 / 255., 33 / 255., 94 / 255., 253 / 255.};
    PLFLT g[] = {1 / 255., 82 / 255., 145 / 255., 201 / 255., 231 / 255.};
    PLFLT b[] = {84 / 255., 139 / 255., 140 / 255., 98 / 255., 37 / 255.};
    plscmap1n(256);
    plscmap1l(1, 5, pos, r, g, b, nullptr);
}

// The PNG is drawn into a temporary file next to `file` and renamed over it when complete.
class PngTarget {
public:
    explicit PngTarget(const std::filesystem::path& file) : file_(file) {
        static std::atomic<unsigned> counter{0};
        const auto dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
        // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "." + std::string.
        std::string name(".");
        name += file.filename().string();
        name += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
        tmp_ = dir / name;
        std::ofstream probe(tmp_, std::ios::binary | std::ios::trunc);
        if (!probe)
            throw Error("cannot write plot '" + file.string() + "': " + std::strerror(errno),
                        "check that the folder exists and is writable");
    }
    ~PngTarget() {
        std::error_code ec;
        if (!done_) std::filesystem::remove(tmp_, ec);
    }
    PngTarget(const PngTarget&) = delete;
    PngTarget& operator=(const PngTarget&) = delete;
    const std::filesystem::path& tmp() const { return tmp_; }

    void commit() {
        std::ifstream in(tmp_, std::ios::binary);
        char magic[8] = {};
        in.read(magic, sizeof magic);
        static const char kPng[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};
        if (!in || std::memcmp(magic, kPng, sizeof magic) != 0)
            throw Error("cannot write plot '" + file_.string() + "': PLplot wrote no PNG",
                        "is the disk full?");
        in.close();
        std::error_code ec;
        std::filesystem::rename(tmp_, file_, ec);
        if (ec) throw Error("cannot write plot '" + file_.string() + "': " + ec.message());
        done_ = true;
    }

private:
    std::filesystem::path file_, tmp_;
    bool done_ = false;
};

// One PLplot stream for one picture, ended (and its memory freed) on every path out.
class Stream {
public:
    // Nothing here throws once the stream exists, so the destructor always ends it.
    Stream(const std::filesystem::path& file, const PngTarget& target, int width, int height)
        : file_(file) {
        abort_messages().clear();
        static bool handlers = false;
        if (!handlers) {
            plsabort(on_plplot_abort);
            plsexit(on_plplot_exit);
            handlers = true;
        }
        static const bool pngcairo = have_pngcairo();
        if (!pngcairo)
            throw Error("cannot write plot '" + file.string() +
                            "': PLplot has no pngcairo device",
                        "install the Debian package plplot-driver-cairo");
        PLINT id = -1;
        plmkstrm(&id);
        if (id < 0) throw Error("cannot write plot '" + file.string() + "': no free PLplot stream");
        open_ = true;
        plsdev("pngcairo");
        plsfnam(target.tmp().c_str());
        plspage(0, 0, width, height, 0, 0);
        set_colours();
        plinit();
        pladv(0);
    }
    ~Stream() {
        if (open_) plend1();
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    // Ends the page (the driver writes the PNG now) and reports any PLplot error.
    void finish() {
        plend1();
        open_ = false;
        check("writing the page");
    }
    void check(const char* when) const {
        if (!abort_messages().empty())
            throw Error("cannot write plot '" + file_.string() + "': PLplot error " + when + ": " +
                        abort_messages());
    }

private:
    std::filesystem::path file_;
    bool open_ = false;
};

// Page geometry after plinit: millimetres per pixel and the character height in millimetres,
// so margins can be set from text lengths.
struct Geometry {
    double mm_w = 0, mm_h = 0;  // page size
    double char_mm = 0;         // current character height
};
Geometry geometry() {
    Geometry g;
    PLFLT x0, x1, y0, y1;
    plgspa(&x0, &x1, &y0, &y1);
    g.mm_w = x1 - x0;
    g.mm_h = y1 - y0;
    PLFLT def, ht;
    plgchr(&def, &ht);
    g.char_mm = ht;
    return g;
}

std::string format_value(double v) {
    if (!std::isfinite(v)) return "";
    char buf[32];
    if (std::abs(v) < 1e15 && v == std::round(v))
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else if (std::abs(v) >= 0.01 && std::abs(v) < 1000)
        std::snprintf(buf, sizeof buf, "%.2f", v);
    else
        std::snprintf(buf, sizeof buf, "%.1e", v);
    return buf;
}

void check_size(const std::filesystem::path& file, int width, int height) {
    if (width < 0 || height < 0 || width > 20000 || height > 20000)
        throw Error("cannot write plot '" + file.string() + "': size " + std::to_string(width) +
                    "x" + std::to_string(height) + " is outside 0..20000 pixels");
}

// Tick values for a log axis spanning log10 values [lo, hi]: 1-2-5 steps when few enough,
// else every decade (or every k-th decade).
std::vector<double> log_ticks(double lo, double hi) {
    std::vector<double> out;
    const int k0 = static_cast<int>(std::floor(lo)), k1 = static_cast<int>(std::ceil(hi));
    for (double m : {1.0, 2.0, 5.0}) {
        for (int k = k0; k <= k1; ++k) {
            const double v = m * std::pow(10.0, k);
            if (std::log10(v) >= lo && std::log10(v) <= hi) out.push_back(v);
        }
    }
    if (out.size() < 3) {  // a narrow range: every digit
        out.clear();
        for (int k = k0; k <= k1; ++k)
            for (int m = 1; m <= 9; ++m) {
                const double v = m * std::pow(10.0, k);
                if (std::log10(v) >= lo && std::log10(v) <= hi) out.push_back(v);
            }
    }
    if (out.size() > 12) {
        out.clear();
        const int step = std::max(1, (k1 - k0 + 9) / 10);
        for (int k = k0; k <= k1; k += step)
            if (k >= lo && k <= hi) out.push_back(std::pow(10.0, k));
    }
    std::sort(out.begin(), out.end());
    // A label on the frame's edge collides with its neighbour or the x axis: drop it when
    // enough are left.
    std::vector<double> inner;
    for (double v : out) {
        const double at = (std::log10(v) - lo) / (hi - lo);
        if (at > 0.04 && at < 0.96) inner.push_back(v);
    }
    return inner.size() >= 2 ? inner : out;
}

// A point a line chart draws: finite, and positive on a log axis.
bool usable(const LineChart& chart, double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!chart.log_y || y > 0);
}

// The axes' ranges of a line chart: its finite points (positive ones on a log axis, in log10),
// padded; integer x (epochs, steps) gets integer ticks and a margin so edge markers show whole.
struct ChartRange {
    double xmin, xmax, ymin, ymax;
    double xtick;  // 0: PLplot's choice
    bool empty;
};
ChartRange chart_range(const LineChart& chart, const std::filesystem::path& file) {
    double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
    for (const auto& s : chart.series) {
        if (s.x.size() != s.y.size())
            throw Error("cannot write plot '" + file.string() + "': series '" + s.label + "' has " +
                        std::to_string(s.x.size()) + " x values and " + std::to_string(s.y.size()) +
                        " y values");
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!usable(chart, s.x[i], s.y[i])) continue;
            const double y = chart.log_y ? std::log10(s.y[i]) : s.y[i];
            xmin = std::min(xmin, s.x[i]);
            xmax = std::max(xmax, s.x[i]);
            ymin = std::min(ymin, y);
            ymax = std::max(ymax, y);
        }
    }
    bool integral_x = true;
    for (const auto& s : chart.series)
        for (double x : s.x)
            if (std::isfinite(x) && x != std::round(x)) integral_x = false;
    const bool empty = !(xmin <= xmax);
    if (empty) { xmin = 0; xmax = 1; ymin = 0; ymax = 1; }
    if (xmax - xmin <= 0) { xmin -= 0.5; xmax += 0.5; }
    double xtick = 0;  // 0: PLplot's choice
    if (integral_x && !empty) {
        const double span = xmax - xmin;
        xtick = std::max(1.0, std::ceil(span / 10));
        xmin -= span * 0.02;
        xmax += span * 0.02;
    }
    if (ymax - ymin <= 0) {
        const double pad = ymin == 0 ? 1 : std::abs(ymin) * 0.05;
        ymin -= pad;
        ymax += pad;
    }
    const double ypad = (ymax - ymin) * 0.05;
    ymin -= ypad;
    ymax += ypad;
    if (!chart.log_y && ymin < 0 && ymin + ypad >= 0) ymin = 0;  // a non-negative quantity starts at 0 when padded below it

    return ChartRange{xmin, xmax, ymin, ymax, xtick, empty};
}

// The frame, grid, tick labels and titles of a line chart, leaving room right of the frame for
// the legend (never over the curves).
void draw_chart_axes(const LineChart& chart, const ChartRange& r) {
    const double xmin = r.xmin, xmax = r.xmax, ymin = r.ymin, ymax = r.ymax, xtick = r.xtick;
    plschr(0, 1.1);
    plvsta();
    // The frame gives up the width of the longest label plus the line sample.
    double legend_chars = 0;
    for (const auto& s : chart.series)
        if (!s.label.empty()) legend_chars = std::max(legend_chars, text_width(escape(s.label, 60)));
    if (legend_chars > 0) {
        PLFLT vx0, vx1, vy0, vy1;
        plgvpd(&vx0, &vx1, &vy0, &vy1);
        const Geometry g = geometry();
        // Pango sets text 4/3 larger than PLplot's character height (see the heatmap); 0.9 is
        // the legend's text scale; 7 character heights: line sample, gaps and frame.
        const double legend_w = (legend_chars * 4.0 / 3.0 * 0.9 + 7) * g.char_mm / g.mm_w;
        plvpor(vx0, std::max(vx0 + 0.3, vx1 - legend_w), vy0, vy1);
    }
    plwind(xmin, xmax, ymin, ymax);
    plcol0(kGrid);
    plwidth(1);
    plbox("g", xtick, 0, chart.log_y ? "" : "g", 0, 0);
    if (chart.log_y) {
        // PLplot labels a log axis at whole decades only, so a curve within one decade (a loss
        // from 3 to 1.2) would get one label or none: label 1-2-5 steps (or decades) ourselves.
        const auto ticks = log_ticks(ymin, ymax);
        for (double t : ticks) pljoin(xmin, std::log10(t), xmax, std::log10(t));
        plcol0(kInk);
        for (double t : ticks) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", t);
            plmtex("lv", 0.6, (std::log10(t) - ymin) / (ymax - ymin), 1.0, buf);
        }
    }
    plcol0(kInk);
    plbox("bcnst", xtick, xtick > 0 ? 1 : 0, chart.log_y ? "bc" : "bcnstv", 0, 0);
    pllab(escape(chart.x_label).c_str(), escape(chart.y_label).c_str(), escape(chart.title).c_str());
    if (r.empty) plptex(0.5 * (xmin + xmax), 0.5 * (ymin + ymax), 1, 0, 0.5, "no data");
}

// One polyline per series (colours, then dashes after 8 colours), a marker on each point when
// there are few; returns the legend's entries.
struct LegendEntries {
    std::vector<PLINT> opts, colours, styles;
    std::vector<PLFLT> widths;
    std::vector<std::string> labels;
};
LegendEntries draw_chart_series(const LineChart& chart) {
    LegendEntries e;
    for (std::size_t k = 0; k < chart.series.size(); ++k) {
        const auto& s = chart.series[k];
        const PLINT colour = kFirstSeries + static_cast<PLINT>(k % kSeriesSlots);
        const PLINT style = 1 + static_cast<PLINT>((k / kSeriesSlots) % 8);  // dashes after 8 colours
        plcol0(colour);
        pllsty(style);
        plwidth(2.0);
        // One polyline per run of usable points; a lone point gets a marker so it shows.
        std::vector<PLFLT> xs, ys;
        auto flush = [&] {
            if (xs.size() == 1) plpoin(1, xs.data(), ys.data(), 17);
            else if (xs.size() > 1) plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
            xs.clear();
            ys.clear();
        };
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!usable(chart, s.x[i], s.y[i])) { flush(); continue; }
            xs.push_back(s.x[i]);
            ys.push_back(chart.log_y ? std::log10(s.y[i]) : s.y[i]);
        }
        if (s.x.size() <= 30) {  // few points (epochs): mark each one
            std::vector<PLFLT> px, py;
            for (std::size_t i = 0; i < s.x.size(); ++i)
                if (usable(chart, s.x[i], s.y[i])) {
                    px.push_back(s.x[i]);
                    py.push_back(chart.log_y ? std::log10(s.y[i]) : s.y[i]);
                }
            if (!px.empty()) plpoin(static_cast<PLINT>(px.size()), px.data(), py.data(), 17);
        }
        flush();
        pllsty(1);
        if (!s.label.empty()) {
            e.opts.push_back(PL_LEGEND_LINE);
            e.colours.push_back(colour);
            e.styles.push_back(style);
            e.widths.push_back(2.0);
            e.labels.push_back(escape(s.label));
        }
    }
    return e;
}

// The legend right of the frame, centred, in one column.
void draw_chart_legend(const LegendEntries& e) {
    if (e.labels.empty()) return;
    std::vector<const char*> text;
    for (const auto& l : e.labels) text.push_back(l.c_str());
    std::vector<PLINT> text_colours(e.labels.size(), kInk);
    PLFLT legend_w = 0, legend_h = 0;
    plcol0(kInk);
    pllegend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_RIGHT | PL_POSITION_OUTSIDE,  // right of the frame, centred
             0.015, 0.0, 0.06,                     // offset from the frame, line sample width
             kBackground, kInk, 1,                 // background, frame colour and style
             0, 0,                                 // rows, columns: one column
             static_cast<PLINT>(e.labels.size()), e.opts.data(),
             1.0, 0.9, 2.0, 0.0,                   // text offset, scale, spacing, justification
             text_colours.data(), text.data(),
             nullptr, nullptr, nullptr, nullptr,   // no colour boxes
             e.colours.data(), e.styles.data(), e.widths.data(),
             nullptr, nullptr, nullptr, nullptr);  // no symbols
}

}  // namespace

void write_png(const LineChart& chart, const std::filesystem::path& file, int width, int height) {
    check_size(file, width, height);
    if (width == 0) width = 900;
    if (height == 0) height = 540;

    const ChartRange range = chart_range(chart, file);

    std::lock_guard lock(plplot_mutex());
    PngTarget target(file);
    Stream stream(file, target, width, height);
    stream.check("starting the page");
    draw_chart_axes(chart, range);
    const LegendEntries legend = draw_chart_series(chart);
    plwidth(1);
    draw_chart_legend(legend);
    stream.check("drawing");
    stream.finish();
    target.commit();
}

namespace {

// A glyph's em in pixels (≈ 10pt), the unit of the heatmap's layout.
constexpr double kCharPx = 13;
// The cairo driver hands Pango a font size in points, and Pango sets text at 96 dpi: a glyph's em
// is 4/3 of PLplot's character height, the unit of plmtex displacements.
constexpr double kEm = 4.0 / 3.0;

// The checks of a heatmap before drawing: its size, and value and label counts.
void check_heatmap(const Heatmap& map, const std::filesystem::path& file) {
    const auto where = "cannot write plot '" + file.string() + "': ";
    if (map.rows <= 0 || map.cols <= 0)
        throw Error(where + "heatmap of " + std::to_string(map.rows) + "x" +
                    std::to_string(map.cols) + " cells (rows and cols must be positive)");
    if (map.rows > 2000 || map.cols > 2000)
        throw Error(where + "heatmap of " + std::to_string(map.rows) + "x" +
                    std::to_string(map.cols) + " cells is too large to draw (at most 2000x2000)");
    if (static_cast<std::int64_t>(map.values.size()) != map.rows * map.cols)
        throw Error(where + "heatmap has " + std::to_string(map.values.size()) + " values for " +
                    std::to_string(map.rows) + "x" + std::to_string(map.cols) + " cells");
    if (!map.col_labels.empty() && static_cast<std::int64_t>(map.col_labels.size()) != map.cols)
        throw Error(where + std::to_string(map.col_labels.size()) + " column labels for " +
                    std::to_string(map.cols) + " columns");
    if (!map.row_labels.empty() && static_cast<std::int64_t>(map.row_labels.size()) != map.rows)
        throw Error(where + std::to_string(map.row_labels.size()) + " row labels for " +
                    std::to_string(map.rows) + " rows");
}

// A heatmap's labels (the given ones, else indices) and pixel layout, from its content: a cell
// wide enough for a label's height (or its annotation), room for the longest labels on the left
// and below, a colour bar on the right. width/height 0: chosen here.
struct HeatmapLayout {
    std::vector<std::string> col_labels, row_labels;
    double col_chars = 1, row_chars = 1;  // widths of the longest labels, in character heights
    double vmin = 0, span = 1;            // the colour ramp's range
    double cell_px = 0, left_px = 0, bottom_px = 0;
    double top_px = 3.0 * kCharPx, right_px = 8.0 * kCharPx;
    int width = 0, height = 0;
};
HeatmapLayout heatmap_layout(const Heatmap& map, int width, int height) {
    // Every k-th index when there are many.
    auto labels_of = [](const std::vector<std::string>& given, std::int64_t n) {
        std::vector<std::string> out(static_cast<std::size_t>(n));
        const std::int64_t step = n <= 40 ? 1 : (n + 39) / 40;
        for (std::int64_t i = 0; i < n; ++i) {
            if (!given.empty()) out[static_cast<std::size_t>(i)] = escape(given[static_cast<std::size_t>(i)], 24);
            else if (i % step == 0) out[static_cast<std::size_t>(i)] = std::to_string(i);
        }
        return out;
    };
    HeatmapLayout l;
    l.col_labels = labels_of(map.col_labels, map.cols);
    l.row_labels = labels_of(map.row_labels, map.rows);
    std::size_t cell_chars = 1;
    for (const auto& t : l.col_labels) l.col_chars = std::max(l.col_chars, text_width(t));
    for (const auto& t : l.row_labels) l.row_chars = std::max(l.row_chars, text_width(t));

    double vmin = std::numeric_limits<double>::infinity(), vmax = -vmin;
    for (double v : map.values)
        if (std::isfinite(v)) {
            vmin = std::min(vmin, v);
            vmax = std::max(vmax, v);
            if (map.annotate) cell_chars = std::max(cell_chars, format_value(v).size());
        }
    if (!(vmin <= vmax)) { vmin = 0; vmax = 1; }
    l.vmin = vmin;
    l.span = vmax > vmin ? vmax - vmin : 1.0;

    l.cell_px = map.annotate ? std::max(34.0, 0.62 * kCharPx * static_cast<double>(cell_chars) + 12)
                             : (std::max(map.rows, map.cols) <= 20 ? 26.0 : 17.0);
    l.left_px = kCharPx * (l.row_chars + 3.5);
    l.bottom_px = kCharPx * (l.col_chars + 3.5);
    if (!map.colour_bar) l.right_px = 2.0 * kCharPx;
    l.width = width != 0 ? width
                         : static_cast<int>(std::max(420.0, l.left_px + l.cell_px * static_cast<double>(map.cols) + l.right_px));
    l.height = height != 0 ? height
                           : static_cast<int>(std::max(320.0, l.top_px + l.cell_px * static_cast<double>(map.rows) + l.bottom_px));
    return l;
}

// The cells, coloured by value on the ramp (non-finite ones grey), and their values when asked.
void draw_heatmap_cells(const Heatmap& map, double vmin, double span) {
    for (std::int64_t r = 0; r < map.rows; ++r)
        for (std::int64_t c = 0; c < map.cols; ++c) {
            const double v = map.values[static_cast<std::size_t>(r * map.cols + c)];
            const PLFLT x0 = static_cast<PLFLT>(c), y0 = static_cast<PLFLT>(map.rows - 1 - r);
            PLFLT xs[] = {x0, x0 + 1, x0 + 1, x0};
            PLFLT ys[] = {y0, y0, y0 + 1, y0 + 1};
            if (std::isfinite(v)) plcol1((v - vmin) / span);
            else plcol0(14);
            plfill(4, xs, ys);
        }
    if (map.annotate) {
        for (std::int64_t r = 0; r < map.rows; ++r)
            for (std::int64_t c = 0; c < map.cols; ++c) {
                const double v = map.values[static_cast<std::size_t>(r * map.cols + c)];
                if (!std::isfinite(v)) continue;
                // Light text on the dark end of the ramp, dark text on the light end.
                plcol0((v - vmin) / span < 0.6 ? kWhite : kInk);
                plptex(static_cast<PLFLT>(c) + 0.5, static_cast<PLFLT>(map.rows - 1 - r) + 0.5, 1, 0,
                       0.5, format_value(v).c_str());
            }
    }
}

// Tick labels at cell centres (columns written vertically under the axis, rows to the left),
// axis titles beyond the longest label (displacements in character heights), the title.
void draw_heatmap_labels(const Heatmap& map, const HeatmapLayout& l) {
    plcol0(kInk);
    plbox("bc", 0, 0, "bc", 0, 0);
    for (std::int64_t c = 0; c < map.cols; ++c) {
        const auto& t = l.col_labels[static_cast<std::size_t>(c)];
        if (!t.empty()) plmtex("bv", 0.8, (static_cast<double>(c) + 0.5) / map.cols, 1.0, t.c_str());
    }
    for (std::int64_t r = 0; r < map.rows; ++r) {
        const auto& t = l.row_labels[static_cast<std::size_t>(r)];
        if (!t.empty())
            plmtex("lv", 0.8, (static_cast<double>(map.rows - 1 - r) + 0.5) / map.rows, 1.0, t.c_str());
    }
    const double col_disp = 0.8 + kEm * (l.col_chars + 1.2);
    const double row_disp = 0.8 + kEm * (l.row_chars + 0.8);
    if (!map.x_label.empty()) plmtex("b", col_disp, 0.5, 0.5, escape(map.x_label).c_str());
    if (!map.y_label.empty()) plmtex("l", row_disp, 0.5, 0.5, escape(map.y_label).c_str());
    if (!map.title.empty()) plmtex("t", 1.0 * kEm, 0.5, 0.5, escape(map.title).c_str());
}

// The colour bar: a column of strips from vmin to vmin + span in the viewport [vx0, vx1] x
// [vy0, vy1] (right of the map), with its own axis.
void draw_colour_bar(double vmin, double span, double vx0, double vx1, double vy0, double vy1) {
    plvpor(vx0, vx1, vy0, vy1);
    plwind(0, 1, vmin, vmin + span);
    constexpr int kStrips = 128;
    for (int i = 0; i < kStrips; ++i) {
        const PLFLT y0 = vmin + span * i / kStrips, y1 = vmin + span * (i + 1) / kStrips;
        PLFLT xs[] = {0, 1, 1, 0};
        PLFLT ys[] = {y0, y0, y1, y1};
        plcol1((i + 0.5) / kStrips);
        plfill(4, xs, ys);
    }
    plcol0(kInk);
    // Plain numbers on the bar: PLplot would otherwise scale small ones ("1.25" with a
    // "(x10^-1)" note above the bar, which the page edge cuts off).
    plsyax(12, 0);
    plbox("bc", 0, 0, "bcmstv", 0, 0);
}

}  // namespace

void write_png(const Heatmap& map, const std::filesystem::path& file, int width, int height) {
    check_size(file, width, height);
    check_heatmap(map, file);
    const HeatmapLayout l = heatmap_layout(map, width, height);
    width = l.width;
    height = l.height;

    std::lock_guard lock(plplot_mutex());
    PngTarget target(file);
    Stream stream(file, target, width, height);
    stream.check("starting the page");
    const Geometry g = geometry();
    const double px_h = g.mm_h / height;  // millimetres per pixel
    // Character height: ≈ kCharPx pixels, smaller when a fixed size leaves too little room.
    double char_px = kCharPx;
    const double fit = std::min((static_cast<double>(width) - l.right_px) / (l.left_px + l.cell_px * map.cols),
                                (static_cast<double>(height) - l.top_px) / (l.bottom_px + l.cell_px * map.rows));
    if (fit < 1) char_px = std::max(6.0, kCharPx * fit);
    plschr(0, char_px / kEm * px_h / g.char_mm);
    const double k = char_px / kCharPx;
    const double vx0 = l.left_px * k / width, vx1 = 1 - l.right_px * k / width;
    const double vy0 = l.bottom_px * k / height, vy1 = 1 - l.top_px * k / height;
    plvpor(vx0, std::max(vx0 + 0.05, vx1), vy0, std::max(vy0 + 0.05, vy1));
    plwind(0, static_cast<PLFLT>(map.cols), 0, static_cast<PLFLT>(map.rows));
    draw_heatmap_cells(map, l.vmin, l.span);
    draw_heatmap_labels(map, l);
    const double bar_x0 = std::max(vx0 + 0.05, vx1) + 1.2 * char_px / width;
    if (map.colour_bar)
        draw_colour_bar(l.vmin, l.span, bar_x0, bar_x0 + 1.2 * char_px / width, vy0, std::max(vy0 + 0.05, vy1));

    stream.check("drawing");
    stream.finish();
    target.commit();
}

}  // namespace rnnflow::plot
