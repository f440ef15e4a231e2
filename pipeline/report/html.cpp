#include "pipeline/report/html.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "pipeline/core/error.hpp"
#include "pipeline/core/registry.hpp"  // RNNFLOW_VERSION
#include "pipeline/core/safetensors.hpp"
#include "pipeline/core/plot.hpp"
#include "pipeline/report/run_folder.hpp"
#include "pipeline/report/run_plots.hpp"
#include "pipeline/report/runs.hpp"
#include "pipeline/exec/per_class.hpp"
#include "pipeline/exec/run_status.hpp"

extern char** environ;

namespace rnnflow::report {

namespace fs = std::filesystem;

std::string html_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string base64(const std::string& bytes) {
    static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                           (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (i < bytes.size()) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

namespace {

// Standard output of a program (looked up on PATH), or nothing when it cannot be started or
// fails. Its standard input and error are /dev/null. posix_spawnp, not fork: safe in a process
// with threads.
std::optional<std::string> run_program(const std::vector<std::string>& argv) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return std::nullopt;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(pipefd[1]);
    if (rc != 0) {
        ::close(pipefd[0]);
        return std::nullopt;
    }
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n > 0) out.append(buf, static_cast<std::size_t>(n));
        else if (n < 0 && errno == EINTR) continue;
        else break;
    }
    ::close(pipefd[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
    return out;
}

const char* kStyle = R"(
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 0 1.5em 3em; color: #1d1d1f; }
h1 { margin: 1em 0 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.muted { color: #666; } nav a { margin-right: 1em; }
pre { background: #f6f6f4; border: 1px solid #e2e2e0; padding: 0.8em; overflow: auto; max-height: 40em;
      font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f0f0ee; } td.text, th.text { text-align: left; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \25BC"; }
.scroll { overflow-x: auto; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #e2e2e0; }
figure.curve img { width: 540px; }  /* two curves side by side on a wide screen */
figcaption { font-size: 13px; color: #555; }
.graph img { max-width: 100%; }
#headline { border: 1px solid #ccd; background: #f7f8fc; padding: 0.6em 1em; margin: 0.8em 0; }
#headline ul { margin: 0.3em 0; padding-left: 1.2em; } #headline li { margin: 0.1em 0; }
#headline .state { font-weight: 600; } .failed, .killed { color: #a00; } .interrupted, .running { color: #a60; }
details summary { cursor: pointer; color: #335; margin: 0.4em 0; }
)";

// Sorts a table.sortable by the clicked column: numbers as numbers (a leading number counts, as
// in "5.2 ± 0.1"), then text; a second click reverses.
const char* kSortScript = R"(
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
    var ascending = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    function key(row) {
      var text = row.cells[col] ? row.cells[col].textContent.trim() : '';
      var number = parseFloat(text);
      return isNaN(number) ? text : number;
    }
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b), order;
      if (typeof x === 'number' && typeof y === 'number') order = x - y;
      else if (typeof x === 'number') return -1;
      else if (typeof y === 'number') return 1;
      else order = x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
)";

bool looks_numeric(const std::string& s) {
    if (s.empty()) return false;
    char* end = nullptr;
    std::strtod(s.c_str(), &end);
    return end && *end == '\0';
}

// A number as a person reads it in a table: 5 significant digits.
std::string cell_text(const std::string& s) {
    if (!looks_numeric(s)) return s;
    const double v = std::strtod(s.c_str(), nullptr);
    char buf[32];
    if (v == std::round(v) && std::abs(v) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
    else std::snprintf(buf, sizeof buf, "%.5g", v);
    return buf;
}

std::string table_html(const CsvTable& t, bool sortable, const std::string& id = {}) {
    std::ostringstream os;
    os << "<div class=\"scroll\"><table" << (sortable ? " class=\"sortable\"" : "");
    if (!id.empty()) os << " id=\"" << html_escape(id) << "\"";
    os << "><thead><tr>";
    // A column is text (left-aligned) when any of its cells is not a number.
    std::vector<bool> text(t.header.size(), false);
    for (const auto& r : t.rows)
        for (std::size_t i = 0; i < t.header.size(); ++i)
            if (!r[i].empty() && !looks_numeric(r[i])) text[i] = true;
    for (std::size_t i = 0; i < t.header.size(); ++i)
        os << "<th" << (text[i] ? " class=\"text\"" : "") << ">" << html_escape(t.header[i]) << "</th>";
    os << "</tr></thead><tbody>\n";
    for (const auto& r : t.rows) {
        os << "<tr>";
        for (std::size_t i = 0; i < t.header.size(); ++i)
            os << "<td" << (text[i] ? " class=\"text\"" : "") << ">" << html_escape(cell_text(r[i])) << "</td>";
        os << "</tr>\n";
    }
    os << "</tbody></table></div>\n";
    return os.str();
}

// <figure> with a PNG inlined, or a note when it is not one or too large.
std::string figure_html(const fs::path& file, const std::string& caption, const HtmlOptions& opt,
                        const std::string& css_class = {}) {
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (ec || size > opt.max_image_bytes)
        return "<p class=\"muted\">" + html_escape(caption) + ": " +
               (ec ? std::string("unreadable") : std::to_string(size) + " bytes, too large to inline") + "</p>\n";
    const std::string bytes = read_text(file);
    if (bytes.size() < 8 || bytes.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) != 0)
        return "<p class=\"muted\">" + html_escape(caption) + ": not a PNG file</p>\n";
    return "<figure" + (css_class.empty() ? std::string() : " class=\"" + css_class + "\"") + "><img alt=\"" +
           html_escape(caption) + "\" src=\"data:image/png;base64," + base64(bytes) +
           "\"><figcaption>" + html_escape(caption) + "</figcaption></figure>\n";
}

std::string pre_file(const fs::path& file, const HtmlOptions& opt) {
    bool cut = false;
    const std::string text = read_text(file, opt.max_text_bytes, &cut);
    std::string out = "<pre>" + html_escape(text) + "</pre>\n";
    if (cut) {
        std::error_code ec;
        out += "<p class=\"muted\">(the first " + std::to_string(opt.max_text_bytes) + " bytes of " +
               std::to_string(fs::file_size(file, ec)) + ")</p>\n";
    }
    return out;
}

std::string page_start(const std::string& title, const std::vector<std::pair<std::string, std::string>>& nav) {
    std::ostringstream os;
    os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
          "<meta name=\"generator\" content=\"rnnflow " RNNFLOW_VERSION "\">"
       << "<title>" << html_escape(title) << "</title><style>" << kStyle << "</style></head>\n<body>\n";
    os << "<h1>" << html_escape(title) << "</h1>\n<nav>";
    for (const auto& [id, name] : nav) os << "<a href=\"#" << id << "\">" << html_escape(name) << "</a>";
    os << "</nav>\n";
    return os.str();
}

std::string page_end() {
    return std::string("<script>") + kSortScript + "</script>\n</body></html>\n";
}

// Files under `dir` with extension `ext`, sorted, skipping folders in `skip` (relative names).
std::vector<fs::path> files_with(const fs::path& dir, const std::string& ext, const std::set<std::string>& skip,
                                 std::size_t limit = 200) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        const fs::path rel = fs::relative(it->path(), dir, ec);
        if (it->is_directory(ec)) {
            if (skip.count(rel.string())) it.disable_recursion_pending();
            continue;
        }
        if (it->path().extension() == ext && it->is_regular_file(ec)) out.push_back(it->path());
        if (out.size() >= limit) break;
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Generated music (frame_sampler's generated.mid): each MIDI file as a download link, inlined as
// a data URI so that the page stays self-contained, above its piano roll (the PNG of the same
// name, added to `shown` so that the figures leave it out).
std::string music_html(const std::vector<fs::path>& mids, const fs::path& run_dir, const HtmlOptions& opt,
                       std::set<fs::path>& shown) {
    std::ostringstream os;
    for (const auto& m : mids) {
        const std::string name = m.filename().string();
        os << "<h3>" << html_escape(fs::relative(m, run_dir).string()) << "</h3>\n";
        std::error_code ec;
        const auto size = fs::file_size(m, ec);
        if (ec || size > opt.max_image_bytes)
            os << "<p class=\"muted\">" << (ec ? "unreadable" : std::to_string(size) + " bytes, too large to inline")
               << "</p>\n";
        else
            os << "<p><a download=\"" << html_escape(name) << "\" href=\"data:audio/midi;base64,"
               << base64(read_text(m)) << "\">" << html_escape(name) << "</a> (" << size
               << " bytes; play it with <code>timidity " << html_escape(name) << "</code> or <code>fluidsynth</code>)</p>\n";
        fs::path png = m;
        png.replace_extension(".png");
        if (fs::exists(png, ec)) {
            os << figure_html(png, fs::relative(png, run_dir).string(), opt);
            shown.insert(png);
        }
    }
    return os.str();
}

std::string graph_html(const fs::path& dot_file, const HtmlOptions& opt) {
    if (!fs::exists(dot_file)) return "<p class=\"muted\">no graph.dot in the run folder</p>\n";
    if (!opt.dot.empty()) {
        if (auto svg = run_program({opt.dot, "-Tsvg", dot_file.string()}); svg && svg->find("<svg") != std::string::npos)
            return "<div class=\"graph\"><img alt=\"the graph\" src=\"data:image/svg+xml;base64," + base64(*svg) +
                   "\"></div>\n";
    }
    return "<p class=\"muted\">Graphviz <code>dot</code> is not installed: the graph in DOT "
           "(<code>dot -Tsvg graph.dot</code> draws it).</p>\n" + pre_file(dot_file, opt);
}

// The page's first block: the run's state (and why it failed or stopped), then its headline —
// from status.json, or (a run of an older rnnflow) worked out from the metrics rows.
std::string headline_html(const fs::path& run_dir, const std::vector<MetricsRow>& rows, const std::string& keep_metric) {
    const RunEntry e = read_run_entry(run_dir, rows, keep_metric);
    std::ostringstream os;
    os << "<section id=\"headline\"><div class=\"state " << html_escape(e.status.state) << "\">";
    if (e.status.state == "failed") os << "failed: " << html_escape(e.status.error);
    else if (e.status.state == "interrupted") os << "interrupted: " << html_escape(e.status.error);
    else if (e.status.state == "running") os << "running";
    else if (e.status.state == "killed") os << "killed: the run's process is gone without a word (SIGKILL, out of memory?)";
    else if (e.status.state == "finished") os << "finished";
    else os << "state unknown (no status.json)";
    if (e.status.epochs > 0)
        os << " <span class=\"muted\">· " << e.status.epochs_done << " of " << e.status.epochs << " epochs</span>";
    os << "</div>\n";
    if (!e.status.resume_command.empty())
        os << "<p>resume with: <code>" << html_escape(e.status.resume_command) << "</code></p>\n";
    const auto lines = headline_lines(e.status.headline);
    if (!lines.empty()) {
        os << "<ul>";
        for (const auto& l : lines) os << "<li>" << html_escape(l) << "</li>";
        os << "</ul>\n";
    }
    os << "</section>\n";
    return os.str();
}

// metrics.csv as two tables: the headline columns (no per-class value), sortable, and the
// per-class columns in a collapsed section.
std::string metrics_tables_html(const CsvTable& t) {
    std::vector<std::size_t> main_cols, per_cols;
    for (std::size_t i = 0; i < t.header.size(); ++i)
        (i >= 2 && is_per_class_key(t.header[i]) ? per_cols : main_cols).push_back(i);
    auto project = [&](std::vector<std::size_t> cols, bool with_key) {
        CsvTable to;
        if (with_key) cols.insert(cols.begin(), {0, 1});
        for (std::size_t i : cols) to.header.push_back(t.header[i]);
        for (const auto& r : t.rows) {
            std::vector<std::string> row;
            for (std::size_t i : cols) row.push_back(r[i]);
            to.rows.push_back(std::move(row));
        }
        return to;
    };
    std::string out = table_html(project(main_cols, false), true, "metrics-table");
    if (!per_cols.empty())
        out += "<details id=\"metrics-per-class\"><summary>per-class columns (" + std::to_string(per_cols.size()) +
               ")</summary>\n" + table_html(project(per_cols, true), true, "metrics-per-class-table") + "</details>\n";
    return out;
}

// The run folder's SPLIT.per_class.tsv files as sortable tables.
std::string per_class_html(const fs::path& run_dir) {
    static const std::string suffix = ".per_class.tsv";
    std::ostringstream os;
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& it : fs::directory_iterator(run_dir, ec)) {
        const std::string name = it.path().filename().string();
        if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
            files.push_back(it.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        const std::string name = f.filename().string(), split = name.substr(0, name.size() - suffix.size());
        CsvTable t;
        std::istringstream in(read_text(f, 4u << 20));
        std::string line;
        while (std::getline(in, line)) {
            std::vector<std::string> cells;
            std::size_t from = 0;
            for (std::size_t tab; (tab = line.find('\t', from)) != std::string::npos; from = tab + 1)
                cells.push_back(line.substr(from, tab - from));
            cells.push_back(line.substr(from));
            if (t.header.empty()) {
                t.header = std::move(cells);
                continue;
            }
            cells.resize(t.header.size());
            t.rows.push_back(std::move(cells));
        }
        os << "<h3>" << html_escape(split) << " <span class=\"muted\">(" << html_escape(name) << ", " << t.rows.size()
           << " rows; click a column to sort)</span></h3>\n"
           << table_html(t, true, "per-class-" + split);
    }
    return os.str();
}

struct TempDir {
    fs::path path;
    TempDir() {
        std::string templ = (fs::temp_directory_path() / "rnnflow-report-XXXXXX").string();
        if (!::mkdtemp(templ.data())) throw Error("cannot create a temporary folder: " + std::string(std::strerror(errno)));
        path = templ;
    }
    ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

}  // namespace

std::string run_report_html(const fs::path& run_dir, const HtmlOptions& opt) {
    std::string experiment = run_dir.filename().string(), description, keep_metric;
    if (experiment.empty()) experiment = fs::absolute(run_dir).lexically_normal().parent_path().filename().string();
    if (fs::exists(run_dir / "resolved.yaml")) {
        try {
            const YAML::Node y = YAML::LoadFile((run_dir / "resolved.yaml").string());
            if (y["experiment"] && y["experiment"].IsScalar()) experiment = y["experiment"].Scalar();
            if (y["description"] && y["description"].IsScalar()) description = y["description"].Scalar();
            if (y["train"] && y["train"]["keep"] && y["train"]["keep"].IsScalar()) {
                const std::string k = y["train"]["keep"].Scalar();  // best(ppl.valid)
                if (k.rfind("best(", 0) == 0) keep_metric = k.substr(5, k.find('.') - 5);
            }
        } catch (const YAML::Exception&) {
            // shown as text below all the same
        }
    }
    std::vector<std::pair<std::string, std::string>> nav{
        {"curves", "curves"}, {"metrics", "metrics"}, {"graph", "graph"}, {"config", "configuration"},
        {"outputs", "outputs"}, {"figures", "figures"}};
    const auto mids = files_with(run_dir, ".mid", {"checkpoints", "plots"}, 50);
    if (!mids.empty()) nav.insert(nav.end() - 1, {"music", "music"});
    std::ostringstream os;
    os << page_start(experiment + " — rnnflow run", nav);
    os << "<p class=\"muted\">" << (description.empty() ? "" : html_escape(description) + " · ") << "run folder <code>"
       << html_escape(fs::absolute(run_dir).lexically_normal().string()) << "</code></p>\n";
    std::vector<MetricsRow> rows;
    if (fs::exists(run_dir / "metrics.csv")) rows = read_metrics(run_dir);
    os << headline_html(run_dir, rows, keep_metric);
    if (fs::exists(run_dir / "command.txt"))
        os << "<pre>" << html_escape(read_text(run_dir / "command.txt", 4096)) << "</pre>\n";
    if (fs::exists(run_dir / "summary.txt")) os << "<h2 id=\"summary\">Summary</h2>\n" << pre_file(run_dir / "summary.txt", opt);

    // Curves: the engine's PNGs, or drawn now from metrics.csv (a run that stopped early, or
    // written by an older rnnflow).
    os << "<h2 id=\"curves\">Curves</h2>\n";
    std::optional<TempDir> tmp;
    fs::path plots = run_dir / "plots";
    if (!fs::exists(plots / "loss.png") && !rows.empty()) {
        tmp.emplace();
        plots = tmp->path;
        write_run_plots(plots, rows, keep_metric);
    }
    const auto pngs = fs::exists(plots) ? files_with(plots, ".png", {}) : std::vector<fs::path>{};
    if (pngs.empty()) os << "<p class=\"muted\">no metrics yet</p>\n";
    // The loss first, then the main metric, then the rest.
    std::vector<fs::path> ordered = pngs;
    const std::string main = main_metric(rows, keep_metric);
    auto rank = [&](const fs::path& p) {
        const std::string s = p.stem().string();
        return s == "loss" ? 0 : s == main ? 1 : s == "lr" ? 2 : s == "grad_norm" ? 3 : 4;
    };
    std::stable_sort(ordered.begin(), ordered.end(), [&](const fs::path& a, const fs::path& b) { return rank(a) < rank(b); });
    for (const auto& p : ordered) os << figure_html(p, p.stem().string(), opt, "curve");

    os << "<h2 id=\"metrics\">Metrics</h2>\n";
    if (fs::exists(run_dir / "metrics.csv")) {
        os << "<p class=\"muted\">One row per pass; epoch 0 is the final test with the kept checkpoint.</p>\n"
           << metrics_tables_html(read_csv(run_dir / "metrics.csv"));
    } else {
        os << "<p class=\"muted\">no metrics.csv</p>\n";
    }
    if (const std::string per_class = per_class_html(run_dir); !per_class.empty())
        os << "<h2 id=\"per-class\">Per class</h2>\n" << per_class;

    os << "<h2 id=\"graph\">Graph</h2>\n" << graph_html(run_dir / "graph.dot", opt);
    os << "<h2 id=\"config\">Resolved configuration</h2>\n";
    if (fs::exists(run_dir / "resolved.yaml"))
        os << "<p class=\"muted\"><code>rnnflow run resolved.yaml</code> repeats the run.</p>\n"
           << pre_file(run_dir / "resolved.yaml", opt);

    // Text outputs: samples, translations, predictions (any *.txt a stage wrote).
    os << "<h2 id=\"outputs\">Outputs</h2>\n";
    const std::set<std::string> skip{"checkpoints", "plots"};
    int n_text = 0;
    for (const auto& f : files_with(run_dir, ".txt", skip, 50)) {
        const fs::path rel = fs::relative(f, run_dir);
        if (rel == "command.txt" || rel == "summary.txt") continue;
        os << "<h3>" << html_escape(rel.string()) << "</h3>\n" << pre_file(f, opt);
        ++n_text;
    }
    if (n_text == 0) os << "<p class=\"muted\">no text outputs</p>\n";

    std::set<fs::path> shown;  // PNGs drawn with the music
    if (!mids.empty()) os << "<h2 id=\"music\">Music</h2>\n" << music_html(mids, run_dir, opt, shown);

    // Other figures: attention maps, confusion matrices, anything a stage drew.
    os << "<h2 id=\"figures\">Figures</h2>\n";
    int n_fig = 0;
    for (const auto& f : files_with(run_dir, ".png", skip, 200)) {
        if (shown.count(f)) continue;
        os << figure_html(f, fs::relative(f, run_dir).string(), opt);
        ++n_fig;
    }
    if (n_fig == 0) os << "<p class=\"muted\">no other figures</p>\n";
    os << page_end();
    return os.str();
}

std::string sweep_report_html(const fs::path& sweep_dir, const HtmlOptions& opt) {
    std::string name = fs::absolute(sweep_dir).lexically_normal().filename().string(), intro;
    if (fs::exists(sweep_dir / "results.md")) {
        std::istringstream md(read_text(sweep_dir / "results.md", 64 * 1024));
        std::string line;
        while (std::getline(md, line)) {
            if (line.rfind("# Sweep ", 0) == 0) name = line.substr(8);
            else if (line.rfind("Objective:", 0) == 0) {
                intro = line;
                intro.erase(std::remove(intro.begin(), intro.end(), '`'), intro.end());
                break;
            }
        }
    }
    const std::vector<std::pair<std::string, std::string>> nav{
        {"results", "results"}, {"objective", "objective"}, {"trials", "trials"}, {"best", "best configuration"}};
    std::ostringstream os;
    os << page_start("sweep " + name + " — rnnflow", nav);
    os << "<p class=\"muted\">" << html_escape(intro) << (intro.empty() ? "" : " · ") << "sweep folder <code>"
       << html_escape(fs::absolute(sweep_dir).lexically_normal().string()) << "</code></p>\n";

    os << "<h2 id=\"results\">Results</h2>\n<p class=\"muted\">One row per configuration, best first; click a "
          "column to sort by it.</p>\n";
    if (fs::exists(sweep_dir / "results.csv")) os << table_html(read_csv(sweep_dir / "results.csv"), true, "results-table");
    else os << "<p class=\"muted\">no results.csv yet (the sweep exports it when it ends)</p>\n";

    os << "<h2 id=\"objective\">Objective per epoch</h2>\n";
    if (fs::exists(sweep_dir / "curves.csv")) {
        const CsvTable c = read_csv(sweep_dir / "curves.csv");
        const int ct = c.column("trial"), ce = c.column("epoch"), cs = c.column("status");
        const int cv = static_cast<int>(c.header.size()) - 1;  // the objective is the last column
        if (ct < 0 || ce < 0 || cv < 4) throw Error((sweep_dir / "curves.csv").string() + ": unexpected columns");
        plot::LineChart chart;
        chart.title = c.header[static_cast<std::size_t>(cv)] + " per epoch, every trial";
        chart.x_label = "epoch";
        chart.y_label = c.header[static_cast<std::size_t>(cv)];
        std::map<int, std::size_t> index;
        for (const auto& r : c.rows) {
            const int trial = std::atoi(r[static_cast<std::size_t>(ct)].c_str());
            auto it = index.find(trial);
            if (it == index.end()) {
                it = index.emplace(trial, chart.series.size()).first;
                chart.series.push_back({"trial " + std::to_string(trial) +
                                            (cs >= 0 && r[static_cast<std::size_t>(cs)] != "done"
                                                 ? " (" + r[static_cast<std::size_t>(cs)] + ")" : std::string()),
                                        {}, {}});
            }
            chart.series[it->second].x.push_back(std::strtod(r[static_cast<std::size_t>(ce)].c_str(), nullptr));
            chart.series[it->second].y.push_back(std::strtod(r[static_cast<std::size_t>(cv)].c_str(), nullptr));
        }
        if (chart.series.size() > 12)  // a legend of dozens of trials hides the curves
            for (auto& s : chart.series) s.label.clear();
        TempDir tmp;
        plot::write_png(chart, tmp.path / "objective.png", 960, 560);
        os << figure_html(tmp.path / "objective.png", chart.title, opt);
    } else {
        os << "<p class=\"muted\">no curves.csv yet</p>\n";
    }

    os << "<h2 id=\"trials\">Trials</h2>\n";
    if (fs::exists(sweep_dir / "trials.csv")) os << table_html(read_csv(sweep_dir / "trials.csv"), true, "trials-table");
    os << "<p class=\"muted\">Each trial is a run folder, <code>trials/NNNN/</code>: "
          "<code>rnnflow report trials/NNNN</code> gives its page.</p>\n";
    os << "<h2 id=\"best\">Best configuration</h2>\n";
    if (fs::exists(sweep_dir / "best.yaml"))
        os << "<p class=\"muted\"><code>rnnflow run best.yaml</code> trains it again.</p>\n" << pre_file(sweep_dir / "best.yaml", opt);
    else os << "<p class=\"muted\">no finished trial</p>\n";
    os << page_end();
    return os.str();
}

std::string runs_html(const RunsTable& t, const fs::path& page_dir) {
    std::ostringstream os;
    os << page_start("runs — rnnflow", {});
    os << "<p class=\"muted\">" << t.rows.size() << " runs; click a column to sort, a folder to open its report.</p>\n"
       << "<div class=\"scroll\"><table class=\"sortable\" id=\"runs-table\"><thead><tr>";
    for (const auto& h : t.header) os << "<th class=\"text\">" << html_escape(h) << "</th>";
    os << "</tr></thead><tbody>\n";
    const std::size_t folder = t.header.size() - 1;  // the last column
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        os << "<tr>";
        for (std::size_t c = 0; c < t.header.size(); ++c) {
            const std::string& v = t.rows[i][c];
            const bool number = looks_numeric(v);
            os << "<td" << (number ? "" : " class=\"text\"") << ">";
            if (c == folder) {
                const fs::path link = fs::absolute(t.dirs[i] / "report.html").lexically_relative(fs::absolute(page_dir));
                os << "<a href=\"" << html_escape(link.generic_string()) << "\">" << html_escape(v) << "</a>";
            } else {
                os << html_escape(v);
            }
            os << "</td>";
        }
        os << "</tr>\n";
    }
    os << "</tbody></table></div>\n" << page_end();
    return os.str();
}

fs::path write_report(const fs::path& dir, const fs::path& out, const HtmlOptions& opt) {
    if (!fs::is_directory(dir))
        throw Error(dir.string() + ": no such folder", "give a run folder (rnnflow run prints it) or a sweep folder");
    std::string html;
    if (is_sweep_dir(dir)) html = sweep_report_html(dir, opt);
    else if (is_run_dir(dir)) html = run_report_html(dir, opt);
    else
        throw Error(dir.string() + ": not a run folder (no resolved.yaml or metrics.csv) nor a sweep folder (no sweep.db)",
                    "give the folder `rnnflow run` or `rnnflow sweep` printed");
    const fs::path file = out.empty() ? dir / "report.html" : out;
    write_file_atomic(file, html);
    return file;
}

}  // namespace rnnflow::report
