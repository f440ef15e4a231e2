// series: a numeric time series — chosen columns of a CSV file, or a Mackey-Glass series the
// project generates — cut into contiguous spans in time order, normalised with numbers fitted on
// the training span only, as frames for frame_batches (next-value forecasting).
//
//   out frames  (frames)  FrameSplit per split, f32 (rows, D) normalised: the training span as
//                         windows of `window` rows every `stride` rows (window 0: one item, the
//                         whole span); valid and test as one item each, the whole span, so every
//                         row is forecast once and in order. Columns: the targets first (K), then
//                         the features that are not targets (inputs only). PortInfo channels = D.
//   out columns (text)    per split (restore mode too): one line per frame column,
//                         "name\tshift\tscale", original = normalised · scale + shift; series_metrics
//                         turns forecasts back into the file's units with it
//   out times   (text)    per split: the time label of each row of the span (the `time` column's
//                         text, or the 0-based data row number; t for Mackey-Glass); with context
//                         the frames of valid and test are longer than their times: they start
//                         with `context` rows before the span (see below)
//   value targets  K, for a prediction layer's width (out_dim: series.targets)
//   value width    D = K + extra features
//
// CSV: one record per line, `delimiter` between fields (',' by default), fields optionally in
// double quotes ("" inside is a quote; no line breaks inside fields); with `header` the first
// line names the columns, and columns are chosen by name, else (and for a name the header does
// not have that is a number) by 0-based index. Only the chosen columns are parsed as numbers
// (std::from_chars, spaces around a number allowed). Blank lines at the end are ignored.
// Malformed input stops with file:line:column (1-based, columns in bytes): an empty file, a
// record with the wrong number of fields, a column name the header lacks, a cell that is not a
// number, NaN or ±inf (unless nonfinite: previous, which carries the column's last finite value
// forward and counts the cells), a span too short.
// Splits: spans in time order train | valid | test of one file, `valid_part` and `test_part`
// rows each (a value below 1 is a fraction of the rows, rounded; 1 and above a row count), the
// rest is train; or separate files (valid_file, test_file), each a whole split.
// context: C > 0 starts the valid and test items cut from the main file C rows before their span
// (rows known when the span is forecast, so the recurrent state is warmed up rather than zero at
// the span's first row); series_metrics counts only the rows of the span itself (an item longer
// than the split's times starts with context). Separate valid / test files get no context.
// Normalisation (per column, fitted on the training rows only): zscore (shift = mean, scale =
// population standard deviation), minmax (shift = min, scale = max - min), none (0, 1); a
// constant column gets scale 1. Fit mode saves it in RUN_DIR/state/<id>/normalization.tsv;
// restore and evaluate modes load it, so predictions and `rnnflow eval` use the training numbers
// and a resumed run is checked to refit the same ones.
// Mackey-Glass (generate: mackey_glass): dx/dt = 0.2 x(t-τ) / (1 + x(t-τ)^10) - 0.1 x(t),
// x = 1.2 for t <= 0, Euler steps of 0.01, 1000 time units dropped as transient, then one row
// per time unit; τ = 17 is chaotic (Mackey & Glass 1977; the forecasting benchmark of Jaeger &
// Haas 2004 among others). One column, "x".
// Not supported: missing values other than non-finite ones, time stamps parsed as dates,
// irregular sampling, line breaks inside quoted fields.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/core/stage.hpp"

namespace rnnflow::stages {

// The chosen columns of a series, in frame order (targets first), in the file's units.
struct SeriesTable {
    std::vector<std::string> names;  // D column names
    std::int64_t rows = 0;
    std::vector<double> values;      // (rows, D) row-major
    std::vector<std::string> times;  // one label per row
    std::vector<std::int64_t> lines; // the 1-based file line of each row (1 + row for generated data)
    std::int64_t filled = 0;         // non-finite cells replaced (nonfinite: previous)
};

struct SeriesCsvOptions {
    char delimiter = ',';
    bool header = true;
    std::vector<std::string> targets, features;  // names or 0-based indices
    std::string time;                            // "" = the row number
    bool fill_nonfinite = false;
};

// Parses CSV text (`file` names it in messages); throws Error with file:line:column.
SeriesTable parse_series_csv(const std::string& text, const std::string& file, const SeriesCsvOptions& opt);

// `length` rows of the Mackey-Glass series above with delay `tau`.
SeriesTable mackey_glass(std::int64_t length, double tau);

// Per column: original = normalised · scale + shift.
struct SeriesScaling {
    std::vector<std::string> names;
    std::vector<double> shift, scale;
    // One line per column, "name\tshift\tscale" (shortest exact doubles): the `columns` output and
    // normalization.tsv; parse() reads it back, naming `origin` in messages.
    std::vector<std::string> lines() const;
    static SeriesScaling parse(const std::vector<std::string>& lines, const std::string& origin);
};

// Writing CSV (the series stages' forecast files): the shortest text that reads back the same
// double; a field quoted when it holds a comma, a quote or a line break.
std::string series_number(double v);
std::string csv_field(const std::string& s);

// Fits `kind` (zscore, minmax, none) on rows [begin, end) of `t`.
SeriesScaling fit_scaling(const SeriesTable& t, std::int64_t begin, std::int64_t end, const std::string& kind);

class Series final : public DataStage {
public:
    static StageSchema schema();
    explicit Series(const Params& p);
    void prepare(PrepareContext& ctx) override;
    std::int64_t value(const std::string& name) const override;

private:
    struct Span {
        std::string split, file;  // file: what the rows came from, for messages
        const SeriesTable* table;
        std::int64_t begin, end;  // rows [begin, end) of table
    };
    SeriesTable load(const PrepareContext& ctx, const std::string& file) const;
    std::vector<Span> spans(const std::vector<SeriesTable>& tables, const std::vector<std::string>& names) const;
    void put_span(PrepareContext& ctx, const Span& s, const SeriesScaling& sc) const;

    std::string file_, valid_file_, test_file_, generate_, normalize_, time_;
    SeriesCsvOptions csv_;
    double valid_part_, test_part_, tau_;
    std::int64_t length_, window_, stride_, context_;
    const SeriesTable* main_ = nullptr;  // the main file's table, while prepare puts the spans
    std::int64_t targets_ = 0, width_ = 0;
};

}  // namespace rnnflow::stages
