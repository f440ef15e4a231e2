// Live progress of long commands (run, eval, sweep, translate, ...), on standard error.
//
// On a terminal, one line per phase redrawn in place (at most ten times a second, cut to the
// terminal's width):
//   train epoch 2/8 [=========>         ] 120/400 loss 1.8342 | ppl.valid 6.21 | 35.2k tok/s ETA 0:12
// Otherwise (a file, a pipe, CI) plain lines every `log_every` steps (0: about ten per phase):
//   train epoch 2/8 batch 120/400 loss 1.8342 35.2k tok/s eta 0:12
// With format "json", one JSON object per line: {"event":"progress",...}, {"event":"metrics",...},
// {"event":"note","text":...}. A metrics row (after each pass) is always one line of its own.
//
// Using it in a command — parse --quiet and --log-format, then:
//   Progress progress(progress_style(quiet, log_format));       // stderr; a bar on a terminal
//   progress.begin_pass("translate", -1, sentences, "sent");      // epoch -1: none; total 0: unknown
//   for (...) progress.step(done, NAN, items_done);                 // NaN loss: not shown
//   progress.end_pass();                                             // clears the bar
//   progress.note("wrote " + file);                                  // a line; the bar survives it
// An Engine draws its own passes (train, evaluate) from RunOptions: set log, progress_bar and
// log_format from the same ProgressStyle (see apply_progress_style).
// One Progress is used from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>

namespace rnnflow {

struct MetricsRow;
struct RunOptions;

// How a command shows progress; chosen once from its options and the terminal.
struct ProgressStyle {
    std::ostream* out = nullptr;  // nullptr: silent (--quiet)
    bool bar = false;             // redraw one line in place: `out` is a terminal
    std::string format = "text";  // "text" or "json"
    std::int64_t log_every = 0;   // plain lines: every N steps; 0: about ten per phase
    int tty_fd = -1;              // the terminal behind `out` (for its width), or -1
};

// A JSON string literal for `text` (quotes, backslashes and control characters escaped).
std::string json_quote(const std::string& text);

// Standard error: a bar when it is a terminal and the format is text; silent when quiet.
// Throws rnnflow::Error when log_format is neither "text" nor "json".
ProgressStyle progress_style(bool quiet, const std::string& log_format);
// Give an Engine the same style (RunOptions::log, progress_bar, log_format).
void apply_progress_style(const ProgressStyle& style, RunOptions& options);

class Progress {
public:
    explicit Progress(ProgressStyle style);
    // out: nullptr for silence. log_every: 0 = about ten lines per pass. format: "text"|"json".
    Progress(std::ostream* out, bool bar, std::int64_t log_every, std::string format);

    // Epochs of the whole run, for "epoch 2/8" (0: unknown, "epoch 2"; -1: show no epoch, e.g.
    // evaluating a kept checkpoint).
    void set_epochs(std::int64_t epochs) { epochs_ = epochs; }
    // A phase: `epoch` 0-based (< 0: the phase has no epoch), `total` steps (0: unknown), and the
    // unit of the items counted in step() for the rate ("tok" → "35.2k tok/s"; "": no rate).
    void begin_pass(const std::string& name, std::int64_t epoch, std::int64_t total,
                    const std::string& unit = "tok");
    // `done` steps of the phase so far, the running mean loss (NaN: none), items so far.
    void step(std::int64_t done, double loss, std::int64_t items);
    void end_pass();
    // Extra text in the bar and the plain lines, e.g. "best ppl 5.4 (trial 3)"; "" clears it.
    void set_status(std::string status) { status_ = std::move(status); }
    // The metrics of a finished pass, on a line of their own; the main metric of an evaluation
    // split then shows in the bar of the following passes ("ppl.valid 6.21"). Text lines name
    // values by these labels (Engine::metric_labels) and write them with format_metric.
    void set_metric_labels(std::map<std::string, std::string> labels) { labels_ = std::move(labels); }
    void metrics(const MetricsRow& row);
    // A line of text (a warning, a file written): clears the bar, prints, draws the bar (again)
    // while a phase is on.
    void note(const std::string& text);

    const ProgressStyle& style() const { return style_; }

private:
    ProgressStyle style_;
    std::string name_, unit_, status_, last_metric_;
    std::map<std::string, std::string> labels_;  // MetricLabels
    std::int64_t epoch_ = -1, epochs_ = 0, total_ = 0, done_ = 0, items_ = 0;
    double loss_ = 0;
    bool in_pass_ = false, bar_drawn_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
    void draw();
    void clear_bar();
    int columns() const;
};

}  // namespace rnnflow
