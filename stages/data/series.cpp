#include "series.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "pipeline/core/text.hpp"

namespace rnnflow::stages {

StageSchema Series::schema() {
    return StageSchema("series", "reads a numeric time series (CSV columns, or generated Mackey-Glass) into "
                                 "normalised frames, split into spans in time order", Role::data)
        .output("frames", PortType::frames, "f32 (rows, D) normalised: targets first, then other features")
        .output("columns", PortType::text, "one line per frame column: name, shift, scale (original = x * scale + shift)")
        .output("times", PortType::text, "the time label of each row of the split's span")
        .param_string("file", "", "the CSV file (the training split, or all splits cut in time order), "
                                  "relative to the graph file's folder; empty with generate")
        .param_string("valid_file", "", "a CSV file holding the whole valid split (then valid_part is not cut from file)")
        .param_string("test_file", "", "a CSV file holding the whole test split (then test_part is not cut from file)")
        .param_choice("generate", "none", {"none", "mackey_glass"},
                      "mackey_glass: generate the series instead of reading a file (one column, 'x')")
        .param_int("length", 3000, Range{10.0, 1e8}, "generate: rows of the generated series")
        .param_float("tau", 17.0, Range{1.0, 1000.0}, "generate: the Mackey-Glass delay τ (17 is chaotic)")
        .param_list("targets", {}, "the columns to forecast: names in the header, or 0-based indices")
        .param_list("features", {}, "further input columns (names or indices); the targets are inputs too")
        .param_string("time", "", "a column whose text labels the rows in forecasts; empty: the row number")
        .param_bool("header", true, "the first line names the columns")
        .param_string("delimiter", ",", "the one character between fields ('\\t' for tab)")
        .param_choice("nonfinite", "error", {"error", "previous"},
                      "NaN or ±inf in a chosen column: error (file:line:column), or previous: the column's last finite value")
        .param_float("valid_part", 0.15, Range{0.0, 1e12},
                     "rows of the valid span after the training span: below 1 a fraction of the rows, else a count")
        .param_float("test_part", 0.15, Range{0.0, 1e12}, "rows of the test span at the end: as valid_part")
        .param_choice("normalize", "zscore", {"zscore", "minmax", "none"},
                      "per column, fitted on the training span: (x - mean) / std, (x - min) / (max - min), or none")
        .param_int("window", 0, Range{0.0, 1e9},
                   "training items: windows of this many rows (0: the whole training span as one item)")
        .param_int("stride", 0, Range{0.0, 1e9}, "rows between training windows' starts; 0 = window (no overlap)")
        .param_int("context", 0, Range{0.0, 1e9},
                   "valid and test spans cut from one file start this many rows earlier (the rows before "
                   "them, known when they are forecast), so the model is warmed up; series_metrics does "
                   "not count those rows")
        .value("targets", "K, the number of target columns (out_dim: series.targets)")
        .value("width", "D, the frame width: targets and further features")
        .details("Spans in time order (no shuffling across time): train, valid, test; the normalisation "
                 "is fitted on the training rows only and saved in the run folder (state/<id>/"
                 "normalization.tsv) for eval, predictions and resume. Malformed CSV stops with "
                 "file:line:column. Valid and test are one item each (the whole span).");
}

namespace {

char delimiter_char(const std::string& s) {
    if (s == "\\t" || s == "\t") return '\t';
    if (s.size() != 1 || s == "\"" || s == "\n" || s == "\r")
        throw Error("delimiter must be one character other than a quote or line break, got '" + s + "'",
                    "use ',', ';', '\\t' or ' '");
    return s[0];
}

}  // namespace

Series::Series(const Params& p)
    : file_(p.get_string("file")), valid_file_(p.get_string("valid_file")), test_file_(p.get_string("test_file")),
      generate_(p.get_string("generate")), normalize_(p.get_string("normalize")), time_(p.get_string("time")),
      valid_part_(p.get_float("valid_part")), test_part_(p.get_float("test_part")), tau_(p.get_float("tau")),
      length_(p.get_int("length")), window_(p.get_int("window")), stride_(p.get_int("stride")),
      context_(p.get_int("context")) {
    csv_.delimiter = delimiter_char(p.get_string("delimiter"));
    csv_.header = p.get_bool("header");
    csv_.targets = p.get_list("targets");
    csv_.features = p.get_list("features");
    csv_.time = time_;
    csv_.fill_nonfinite = p.get_string("nonfinite") == "previous";
    if (generate_ == "none") {
        if (file_.empty()) throw Error("no file to read", "set file: to a CSV file, or generate: mackey_glass");
        if (csv_.targets.empty()) throw Error("targets is empty", "name the columns to forecast, e.g. targets: [value]");
    } else {
        if (!file_.empty() || !valid_file_.empty() || !test_file_.empty())
            throw Error("generate: " + generate_ + " reads no file, but a file is given",
                        "remove file / valid_file / test_file, or set generate: none");
        if (!(csv_.targets.empty() || csv_.targets == std::vector<std::string>{"x"}) || !csv_.features.empty())
            throw Error("the generated series has one column, 'x'", "leave targets and features out");
        csv_.targets = {"x"};
    }
    targets_ = static_cast<std::int64_t>(csv_.targets.size());
    width_ = targets_;
    for (const auto& f : csv_.features)
        if (std::find(csv_.targets.begin(), csv_.targets.end(), f) == csv_.targets.end()) ++width_;
    if (stride_ > 0 && window_ == 0) throw Error("stride without window", "set window: rows per training item");
}

std::int64_t Series::value(const std::string& name) const {
    if (name == "targets") return targets_;
    if (name == "width") return width_;
    return Stage::value(name);
}

// ---------------------------------------------------------------------------------------------
// CSV

namespace {

struct Field {
    std::string text;
    std::int64_t col;  // 1-based byte column of its first character
};

// The fields of one line; `where` is "file:line" for messages.
std::vector<Field> split_fields(const std::string& line, char delim, const std::string& where) {
    std::vector<Field> out;
    std::size_t i = 0;
    while (true) {
        Field f{{}, static_cast<std::int64_t>(i) + 1};
        if (i < line.size() && line[i] == '"') {
            std::size_t j = i + 1;
            while (true) {
                if (j >= line.size())
                    throw Error(detail::concat(where, ":", f.col, ": a quoted field is not closed"),
                                "end the field with '\"'; a quote inside is written \"\"");
                if (line[j] == '"' && j + 1 < line.size() && line[j + 1] == '"') f.text += '"', j += 2;
                else if (line[j] == '"') break;
                else f.text += line[j++];
            }
            i = j + 1;
            if (i < line.size() && line[i] != delim)
                throw Error(detail::concat(where, ":", i + 1, ": text after a quoted field"),
                            "put the delimiter right after the closing quote");
        } else {
            const std::size_t j = std::min(line.find(delim, i), line.size());
            f.text = line.substr(i, j - i);
            i = j;
        }
        out.push_back(std::move(f));
        if (i >= line.size()) return out;
        ++i;  // the delimiter
    }
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The 0-based index of column `spec`: a header name, else a 0-based index.
std::int64_t column_index(const std::string& spec, const std::vector<std::string>& header, std::int64_t fields,
                          const std::string& file) {
    const auto it = std::find(header.begin(), header.end(), spec);
    if (it != header.end()) return it - header.begin();
    std::int64_t k = -1;
    const auto r = std::from_chars(spec.data(), spec.data() + spec.size(), k);
    if (r.ec == std::errc() && r.ptr == spec.data() + spec.size() && k >= 0) {
        if (k < fields) return k;
        throw Error(detail::concat(file, ":1:1: column index ", k, " is past the last column (", fields, " columns)"),
                    "indices are 0-based");
    }
    std::string names;
    for (const auto& h : header) names += (names.empty() ? "'" : ", '") + h + "'";
    throw Error(detail::concat(file, ":1:1: no column '", spec, "' in the header"),
                header.empty() ? "the file has no header (header: false): give 0-based indices"
                               : "its columns: " + names);
}

// A number cell; nonfinite values give NaN back when `fill` (the caller carries the last value).
double number_cell(const Field& f, const std::string& column, const std::string& where, bool fill) {
    std::string s = trim(f.text);
    if (!s.empty() && s[0] == '+') s.erase(0, 1);
    double v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec == std::errc::invalid_argument || r.ptr != s.data() + s.size())
        throw Error(detail::concat(where, ":", f.col, ": column '", column, "': '", f.text, "' is not a number"),
                    s.empty() ? "fill the empty cell" : "write plain decimal numbers, e.g. 12.5 or -3e-2");
    if (r.ec == std::errc::result_out_of_range)
        throw Error(detail::concat(where, ":", f.col, ": column '", column, "': '", f.text, "' is out of range"), "");
    if (!std::isfinite(v) && !fill)
        throw Error(detail::concat(where, ":", f.col, ": column '", column, "': ", f.text, " is not finite"),
                    "set nonfinite: previous to carry the last finite value forward");
    return v;
}

}  // namespace

SeriesTable parse_series_csv(const std::string& text, const std::string& file, const SeriesCsvOptions& opt) {
    std::vector<std::string> lines = split_lines(text);
    while (!lines.empty() && trim(lines.back()).empty()) lines.pop_back();
    if (lines.empty()) throw Error(file + ": empty file", "a CSV file with a header line and one row per time step");
    std::vector<std::string> header;
    const auto first = split_fields(lines[0], opt.delimiter, file + ":1");
    const auto fields = static_cast<std::int64_t>(first.size());
    if (opt.header)
        for (const auto& f : first) header.push_back(trim(f.text));
    SeriesTable t;
    std::vector<std::int64_t> cols;
    for (const auto* list : {&opt.targets, &opt.features})
        for (const auto& spec : *list) {
            const std::int64_t c = column_index(spec, header, fields, file);
            if (std::find(cols.begin(), cols.end(), c) != cols.end()) continue;  // a target named as a feature too
            cols.push_back(c);
            t.names.push_back(opt.header ? header[static_cast<std::size_t>(c)] : spec);
        }
    const std::int64_t time_col = opt.time.empty() ? -1 : column_index(opt.time, header, fields, file);
    const auto D = static_cast<std::int64_t>(cols.size());
    std::vector<double> last(static_cast<std::size_t>(D), std::nan(""));
    for (std::size_t l = opt.header ? 1 : 0; l < lines.size(); ++l) {
        const std::string where = detail::concat(file, ":", l + 1);
        if (trim(lines[l]).empty())
            throw Error(where + ":1: an empty line inside the table", "remove it; only trailing blank lines are ignored");
        const auto f = split_fields(lines[l], opt.delimiter, where);
        if (std::ssize(f) != fields)
            throw Error(detail::concat(where, ":", std::ssize(f) > fields ? f[static_cast<std::size_t>(fields)].col
                                                                          : static_cast<std::int64_t>(lines[l].size()) + 1,
                                       ": ", f.size(), " fields, the ", opt.header ? "header has " : "first line has ", fields),
                        "every line needs the same number of fields");
        for (std::int64_t d = 0; d < D; ++d) {
            const auto k = static_cast<std::size_t>(d);
            double v = number_cell(f[static_cast<std::size_t>(cols[k])], t.names[k], where, opt.fill_nonfinite);
            if (!std::isfinite(v)) {
                if (std::isnan(last[k]))
                    throw Error(detail::concat(where, ":", f[static_cast<std::size_t>(cols[k])].col, ": column '", t.names[k],
                                               "': ", f[static_cast<std::size_t>(cols[k])].text,
                                               " before any finite value"), "nonfinite: previous needs a finite value first");
                v = last[k];
                ++t.filled;
            }
            last[k] = v;
            t.values.push_back(v);
        }
        t.times.push_back(time_col >= 0 ? trim(f[static_cast<std::size_t>(time_col)].text) : std::to_string(t.rows));
        t.lines.push_back(static_cast<std::int64_t>(l) + 1);
        ++t.rows;
    }
    if (t.rows == 0) throw Error(file + ": no data rows", "the file has only a header line");
    return t;
}

SeriesTable mackey_glass(std::int64_t length, double tau) {
    constexpr double dt = 0.01, beta = 0.2, gamma = 0.1, power = 10, x0 = 1.2;
    constexpr std::int64_t transient = 1000, per_row = 100;  // time units dropped; Euler steps per row
    const auto lag = static_cast<std::int64_t>(std::llround(tau / dt));
    std::vector<double> hist(static_cast<std::size_t>(lag) + 1, x0);  // x over the last τ, a ring
    SeriesTable t;
    t.names = {"x"};
    double x = x0;
    std::int64_t step = 0;
    for (std::int64_t row = -transient; row < length; ++row) {
        if (row >= 0) {
            t.values.push_back(x);
            t.times.push_back(std::to_string(row));
            t.lines.push_back(row + 1);
            ++t.rows;
        }
        for (std::int64_t s = 0; s < per_row; ++s, ++step) {
            const double delayed = hist[static_cast<std::size_t>(step % (lag + 1))];  // x(t - τ)
            hist[static_cast<std::size_t>(step % (lag + 1))] = x;
            x += dt * (beta * delayed / (1 + std::pow(delayed, power)) - gamma * x);
        }
    }
    return t;
}

// ---------------------------------------------------------------------------------------------
// Normalisation

std::string series_number(double v) {
    char b[32];
    *std::to_chars(b, b + sizeof b - 1, v).ptr = 0;
    return b;
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out(1, '"');
    for (char c : s) {
        out += c;
        if (c == '"') out += c;
    }
    out += '"';
    return out;
}

std::vector<std::string> SeriesScaling::lines() const {
    std::vector<std::string> out;
    for (std::size_t d = 0; d < names.size(); ++d) {
        std::string line = names[d];
        line += '\t';
        line += series_number(shift[d]);
        line += '\t';
        line += series_number(scale[d]);
        out.push_back(std::move(line));
    }
    return out;
}

SeriesScaling SeriesScaling::parse(const std::vector<std::string>& lines, const std::string& origin) {
    SeriesScaling s;
    for (std::size_t l = 0; l < lines.size(); ++l) {
        const auto a = lines[l].find('\t'), b = lines[l].rfind('\t');
        double v[2] = {0, 0};
        bool ok = a != std::string::npos && b > a;
        for (int i = 0; ok && i < 2; ++i) {
            const char* from = lines[l].data() + (i == 0 ? a + 1 : b + 1);
            const char* to = lines[l].data() + (i == 0 ? b : lines[l].size());
            const auto r = std::from_chars(from, to, v[i]);
            ok = r.ec == std::errc() && r.ptr == to && std::isfinite(v[i]);
        }
        if (!ok || v[1] == 0)
            throw Error(detail::concat(origin, ":", l + 1, ": expected 'name<TAB>shift<TAB>scale', got '", lines[l], "'"),
                        "the normalisation is written by the series stage when a run starts");
        s.names.push_back(lines[l].substr(0, a));
        s.shift.push_back(v[0]);
        s.scale.push_back(v[1]);
    }
    return s;
}

SeriesScaling fit_scaling(const SeriesTable& t, std::int64_t begin, std::int64_t end, const std::string& kind) {
    const auto D = static_cast<std::int64_t>(t.names.size());
    SeriesScaling s{t.names, std::vector<double>(static_cast<std::size_t>(D), 0.0),
                    std::vector<double>(static_cast<std::size_t>(D), 1.0)};
    if (kind == "none") return s;
    for (std::int64_t d = 0; d < D; ++d) {
        double sum = 0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
        for (std::int64_t r = begin; r < end; ++r) {
            const double v = t.values[static_cast<std::size_t>(r * D + d)];
            sum += v;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        const double mean = sum / static_cast<double>(end - begin);
        double sq = 0;
        for (std::int64_t r = begin; r < end; ++r) sq += std::pow(t.values[static_cast<std::size_t>(r * D + d)] - mean, 2);
        const double scale = kind == "zscore" ? std::sqrt(sq / static_cast<double>(end - begin)) : hi - lo;
        s.shift[static_cast<std::size_t>(d)] = kind == "zscore" ? mean : lo;
        s.scale[static_cast<std::size_t>(d)] = scale > 0 ? scale : 1.0;  // a constant column
    }
    return s;
}

// ---------------------------------------------------------------------------------------------
// The stage

SeriesTable Series::load(const PrepareContext& ctx, const std::string& file) const {
    if (generate_ == "mackey_glass") return mackey_glass(length_, tau_);
    SeriesTable t = parse_series_csv(read_text_file(ctx.base_dir(), file, "series"), file, csv_);
    if (t.filled > 0)
        std::cerr << "warning: stage '" << ctx.stage_id() << "': " << file << ": " << t.filled
                  << " non-finite cell(s) replaced by the column's previous value\n";
    return t;
}

namespace {

// Rows of a span given as a fraction (< 1) or a count (>= 1) of `rows`.
std::int64_t part_rows(double part, std::int64_t rows, const std::string& name) {
    if (part < 1) return static_cast<std::int64_t>(std::llround(part * static_cast<double>(rows)));
    if (part != std::floor(part))
        throw Error(detail::concat(name, " ", part, " is neither a fraction below 1 nor a whole row count"),
                    "e.g. 0.15 (15% of the rows) or 500 (rows)");
    return static_cast<std::int64_t>(part);
}

}  // namespace

// tables: the main file's, then valid_file's and test_file's when given.
std::vector<Series::Span> Series::spans(const std::vector<SeriesTable>& tables, const std::vector<std::string>& names) const {
    const SeriesTable& main = tables[0];
    const std::int64_t R = main.rows;
    const std::int64_t nv = valid_file_.empty() ? part_rows(valid_part_, R, "valid_part") : 0;
    const std::int64_t nt = test_file_.empty() ? part_rows(test_part_, R, "test_part") : 0;
    const std::string& origin = names[0];
    if (R - nv - nt < 2)
        throw Error(detail::concat(origin, ": ", R, " rows leave ", R - nv - nt, " for training after ", nv,
                                   " valid and ", nt, " test rows"),
                    "lower valid_part / test_part, or give a longer series");
    std::vector<Span> out{{"train", origin, &main, 0, R - nv - nt}};
    std::size_t next = 1;
    if (!valid_file_.empty()) out.push_back({"valid", valid_file_, &tables[next++], 0, tables[1].rows});
    else if (nv > 0) out.push_back({"valid", origin, &main, R - nv - nt, R - nt});
    if (!test_file_.empty()) out.push_back({"test", test_file_, &tables[next], 0, tables[next].rows});
    else if (nt > 0) out.push_back({"test", origin, &main, R - nt, R});
    for (const auto& s : out)
        if (s.end - s.begin < 2)
            throw Error(detail::concat(origin, ": the ", s.split, " span has ", s.end - s.begin, " row(s)"),
                        "a span needs at least 2 rows to forecast one; set its part to 0 to leave it out");
    return out;
}

void Series::put_span(PrepareContext& ctx, const Span& s, const SeriesScaling& sc) const {
    const SeriesTable& t = *s.table;
    const std::int64_t D = width_;
    FrameSplit fs;
    fs.dim = D;
    fs.origin = detail::concat(s.file, " (", s.split, ": lines ",
                               t.lines[static_cast<std::size_t>(s.begin)], "-", t.lines[static_cast<std::size_t>(s.end - 1)], ")");
    // Rows [from, s.end) go into the frames: the span, and for valid / test cut from the main file
    // the `context` rows before it.
    const std::int64_t from = s.split != "train" && s.table == main_ ? std::max<std::int64_t>(0, s.begin - context_) : s.begin;
    const std::int64_t W = s.split == "train" && window_ > 0 ? std::min(window_, s.end - from) : s.end - from;
    const std::int64_t stride = stride_ > 0 ? stride_ : W;
    std::vector<std::int64_t> starts;
    for (std::int64_t b = from; b + W <= s.end; b += stride) starts.push_back(b);
    if (starts.back() + W < s.end) starts.push_back(s.end - W);  // the last rows, too
    for (std::int64_t b : starts) {
        FrameSplit::Item item;
        item.rows = W;
        item.values.resize(static_cast<std::size_t>(W * D));
        for (std::int64_t r = 0; r < W; ++r)
            for (std::int64_t d = 0; d < D; ++d) {
                const auto k = static_cast<std::size_t>(d);
                item.values[static_cast<std::size_t>(r * D + d)] =
                    static_cast<float>((t.values[static_cast<std::size_t>((b + r) * D + d)] - sc.shift[k]) / sc.scale[k]);
            }
        fs.items.push_back(std::move(item));
    }
    TextSplit times;
    times.origin = fs.origin;
    ctx.put_output("frames", s.split, std::move(fs));
    times.items.assign(t.times.begin() + s.begin, t.times.begin() + s.end);
    ctx.put_output("times", s.split, std::move(times));
}

void Series::prepare(PrepareContext& ctx) {
    ctx.set_output_info("frames", PortInfo{PortType::frames, width_, -1, nullptr});
    ctx.set_output_info("columns", PortInfo{PortType::text, -1, -1, nullptr});
    ctx.set_output_info("times", PortInfo{PortType::text, -1, -1, nullptr});
    const std::filesystem::path dir = ctx.state_dir();
    const std::filesystem::path saved = dir.empty() ? dir : dir / "normalization.tsv";
    SeriesScaling sc;
    if (ctx.mode() != PrepareMode::fit) {
        RNNFLOW_CHECK(!saved.empty() && std::filesystem::exists(saved), "series: no saved normalisation ", saved.string());
        sc = SeriesScaling::parse(split_lines(read_text_file({}, saved.string(), "normalisation")), saved.string());
        RNNFLOW_CHECK(std::ssize(sc.names) == width_, "series: ", saved.string(), " has ", sc.names.size(),
                      " columns, the graph chooses ", width_);
    }
    std::vector<SeriesTable> tables;
    if (ctx.mode() != PrepareMode::restore) {
        const std::vector<std::string> names{generate_ == "none" ? file_ : generate_, valid_file_, test_file_};
        for (const auto& f : names)
            if (&f == &names[0] || !f.empty()) tables.push_back(load(ctx, f));
        for (std::size_t i = 1; i < tables.size(); ++i)
            RNNFLOW_CHECK(tables[i].names == tables[0].names, "series: the columns of the valid / test file differ from ",
                          file_, "'s");
        main_ = &tables[0];
        const std::vector<Span> ss = spans(tables, names);
        if (ctx.mode() == PrepareMode::fit) {
            sc = fit_scaling(tables[0], ss[0].begin, ss[0].end, normalize_);
            if (!saved.empty()) {
                std::string text;
                for (const auto& l : sc.lines()) text += l + "\n";
                write_file_atomic(saved, text);
            }
        }
        for (const auto& s : ss) put_span(ctx, s, sc);
        main_ = nullptr;
    }
    for (const auto& split : ctx.splits()) {
        TextSplit cols;
        cols.items = sc.lines();
        cols.origin = "normalisation of stage '" + ctx.stage_id() + "'";
        ctx.put_output("columns", split, std::move(cols));
    }
}

}  // namespace rnnflow::stages
