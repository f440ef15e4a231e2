#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "engine.hpp"
#include "metrics_log.hpp"

namespace rnnflow {

namespace {
std::string duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    const long t = static_cast<long>(s + 0.5);
    char buf[32];
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
}
std::string rate(double r) {
    char buf[32];
    if (r >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", r / 1e6);
    else if (r >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", r / 1e3);
    else if (r >= 10) std::snprintf(buf, sizeof buf, "%.0f", r);
    else std::snprintf(buf, sizeof buf, "%.2f", r);
    return buf;
}
}  // namespace

std::string json_quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') { out += '\\'; out += static_cast<char>(c); }
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else out += static_cast<char>(c);
    }
    return out + "\"";
}

namespace {
// Display width of UTF-8 text (code points; the bar is ASCII apart from names and status).
std::size_t display_width(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}
std::string cut_to_width(const std::string& s, std::size_t width) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && ++n > width) return s.substr(0, i);
    }
    return s;
}
}  // namespace

ProgressStyle progress_style(bool quiet, const std::string& log_format) {
    if (log_format != "text" && log_format != "json")
        throw Error("--log-format must be text or json, got '" + log_format + "'");
    ProgressStyle s;
    s.format = log_format;
    if (quiet) return s;
    s.out = &std::cerr;
    if (::isatty(STDERR_FILENO) && log_format == "text") {
        s.bar = true;
        s.tty_fd = STDERR_FILENO;
    }
    return s;
}

void apply_progress_style(const ProgressStyle& style, RunOptions& options) {
    options.log = style.out;
    options.progress_bar = style.bar;
    options.log_format = style.format;
}

Progress::Progress(ProgressStyle style) : style_(std::move(style)) {}

Progress::Progress(std::ostream* out, bool bar, std::int64_t log_every, std::string format) {
    style_.out = out;
    style_.bar = bar;
    style_.log_every = log_every;
    style_.format = std::move(format);
    if (bar && out == &std::cerr && ::isatty(STDERR_FILENO)) style_.tty_fd = STDERR_FILENO;
}

int Progress::columns() const {
    if (style_.tty_fd < 0) return 0;
    winsize ws{};
    if (::ioctl(style_.tty_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 0;
}

void Progress::begin_pass(const std::string& name, std::int64_t epoch, std::int64_t total,
                          const std::string& unit) {
    name_ = name;
    epoch_ = epochs_ < 0 ? -1 : epoch;
    total_ = std::max<std::int64_t>(0, total);
    unit_ = unit;
    done_ = items_ = 0;
    loss_ = NAN;
    in_pass_ = true;
    start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::step(std::int64_t done, double loss, std::int64_t items) {
    done_ = done;
    loss_ = loss;
    items_ = items;
    if (!style_.out) return;
    const auto now = std::chrono::steady_clock::now();
    if (style_.bar) {
        if (now - last_draw_ > std::chrono::milliseconds(100) || (total_ > 0 && done_ == total_)) {
            last_draw_ = now;
            draw();
        }
        return;
    }
    bool due;
    if (style_.log_every > 0) due = done_ % style_.log_every == 0;
    else if (total_ > 0) due = done_ % std::max<std::int64_t>(1, total_ / 10) == 0;
    else due = now - last_draw_ > std::chrono::seconds(10);  // unknown length: every 10 s
    if (due || (total_ > 0 && done_ == total_)) {
        last_draw_ = now;
        draw();
    }
}

void Progress::draw() {
    std::ostream& os = *style_.out;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double ips = secs > 0 ? static_cast<double>(items_) / secs : 0;
    const double eta = done_ > 0 && total_ > 0
                           ? secs * static_cast<double>(total_ - done_) / static_cast<double>(done_)
                           : NAN;
    if (style_.format == "json") {
        os << "{\"event\":\"progress\",\"phase\":" << json_quote(name_);
        if (epoch_ >= 0) os << ",\"epoch\":" << (epoch_ + 1);
        if (epochs_ > 0) os << ",\"epochs\":" << epochs_;
        os << ",\"batch\":" << done_ << ",\"batches\":" << total_;
        if (std::isfinite(loss_)) os << ",\"loss\":" << format_number(loss_);
        if (!unit_.empty())
            os << ",\"unit\":" << json_quote(unit_) << ",\"items_per_second\":" << format_number(std::round(ips));
        os << ",\"eta_seconds\":" << format_number(std::isfinite(eta) ? std::round(eta) : -1);
        if (!status_.empty()) os << ",\"status\":" << json_quote(status_);
        os << "}\n";
        os.flush();
        return;
    }
    // Built with += throughout: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
    std::string head = name_;
    if (epoch_ >= 0) {
        head += " epoch ";
        head += std::to_string(epoch_ + 1);
        if (epochs_ > 0) {
            head += '/';
            head += std::to_string(epochs_);
        }
    }
    std::string count = std::to_string(done_);
    if (total_ > 0) {
        count += '/';
        count += std::to_string(total_);
    }
    std::string tail;
    if (std::isfinite(loss_)) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " loss %.4f", loss_);
        tail += buf;
    }
    if (style_.bar && !last_metric_.empty()) tail += " | " + last_metric_;
    if (!status_.empty()) tail += " | " + status_;
    if (!unit_.empty()) tail += " | " + rate(ips) + " " + unit_ + "/s";
    if (total_ > 0) tail += (style_.bar ? " ETA " : " eta ") + duration(eta);
    if (style_.bar) {
        // The bar shrinks (down to 8 cells, then goes) before a narrow terminal cuts the text.
        const std::string right = " " + count + tail;
        const int cols = columns();
        int width = 20;
        if (cols > 1) {
            const int room = cols - 1 - static_cast<int>(display_width(head) + display_width(right)) - 3;
            width = room >= 20 ? 20 : room >= 8 ? room : 0;
        }
        std::string line = head;
        if (total_ > 0 && width > 0) {
            const int fill = static_cast<int>(width * std::min(done_, total_) / total_);
            std::string bar(static_cast<std::size_t>(fill), '=');
            if (fill < width && fill > 0) bar.back() = '>';
            bar.resize(static_cast<std::size_t>(width), ' ');
            line += " [" + bar + "]";
        }
        line += right;
        // A line longer than the terminal would wrap, and \r would then redraw only its end.
        if (cols > 1 && display_width(line) >= static_cast<std::size_t>(cols))
            line = cut_to_width(line, static_cast<std::size_t>(cols - 1));
        os << "\r" << line << "\x1b[K";
        bar_drawn_ = true;
    } else {
        os << head << (epoch_ >= 0 || !name_.empty() ? " " : "") << (total_ > 0 ? "batch " : "")
           << count << tail << "\n";
    }
    os.flush();
}

void Progress::clear_bar() {
    if (style_.out && style_.bar && bar_drawn_) {
        *style_.out << "\r\x1b[K";
        style_.out->flush();
        bar_drawn_ = false;
    }
}

void Progress::end_pass() {
    in_pass_ = false;
    clear_bar();
}

void Progress::note(const std::string& text) {
    if (!style_.out) return;
    if (style_.format == "json") {
        *style_.out << "{\"event\":\"note\",\"text\":" << json_quote(text) << "}\n";
        style_.out->flush();
        return;
    }
    clear_bar();
    *style_.out << text << "\n";
    style_.out->flush();
    if (style_.bar && in_pass_) draw();
}

void Progress::metrics(const MetricsRow& row) {
    if (row.split != "train") {
        const std::string main = main_metric({row});
        if (!main.empty()) last_metric_ = main + "." + row.split + " " + format_metric(row.get(main));  // short: the key
    }
    if (!style_.out) return;
    clear_bar();
    std::ostream& os = *style_.out;
    if (style_.format == "json") {
        os << "{\"event\":\"metrics\",\"epoch\":" << row.epoch << ",\"split\":" << json_quote(row.split);
        for (const auto& [k, v] : row.values) os << "," << json_quote(k) << ":" << json_number(v);
        os << "}\n";
    } else {
        os << (row.epoch > 0 ? "epoch " + std::to_string(row.epoch) : std::string("final")) << " " << row.split;
        // Per-class values (`acc.f1.NOUN`: a stage, a measure and a class) would make the line
        // hundreds of columns wide; they are counted here and written in full to metrics.jsonl.
        std::size_t per_class = 0;
        for (const auto& [k, v] : row.values) {
            if (std::count(k.begin(), k.end(), '.') >= 2) {
                ++per_class;
                continue;
            }
            os << " " << metric_label(k, labels_) << "=" << format_metric(v);
        }
        if (per_class > 0) os << " (+" << per_class << " per-class values in metrics.jsonl)";
        os << "\n";
    }
    os.flush();
}

}  // namespace rnnflow
