#include "progress.hpp"

#include <cmath>
#include <cstdio>

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
    else std::snprintf(buf, sizeof buf, "%.0f", r);
    return buf;
}
}  // namespace

Progress::Progress(std::ostream* out, bool bar, std::int64_t log_every, std::string format)
    : out_(out), bar_(bar), log_every_(log_every), format_(std::move(format)) {}

void Progress::begin_pass(const std::string& name, std::int64_t epoch, std::int64_t batches) {
    name_ = name;
    epoch_ = epoch;
    batches_ = batches;
    done_ = items_ = 0;
    loss_ = 0;
    start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::step(std::int64_t done, double loss, std::int64_t items) {
    done_ = done;
    loss_ = loss;
    items_ = items;
    if (!out_) return;
    const auto now = std::chrono::steady_clock::now();
    if (bar_) {
        if (now - last_draw_ > std::chrono::milliseconds(100) || done_ == batches_) {
            last_draw_ = now;
            draw(false);
        }
        return;
    }
    const std::int64_t every = log_every_ > 0 ? log_every_ : std::max<std::int64_t>(1, batches_ / 10);
    if (done_ % every == 0 || done_ == batches_) draw(false);
}

void Progress::draw(bool final) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double ips = secs > 0 ? static_cast<double>(items_) / secs : 0;
    const double eta = done_ > 0 ? secs * static_cast<double>(batches_ - done_) / static_cast<double>(done_) : NAN;
    if (format_ == "json") {
        *out_ << "{\"event\":\"progress\",\"phase\":\"" << name_ << "\",\"epoch\":" << (epoch_ + 1)
              << ",\"batch\":" << done_ << ",\"batches\":" << batches_ << ",\"loss\":" << format_number(loss_)
              << ",\"items_per_second\":" << format_number(std::round(ips)) << ",\"eta_seconds\":"
              << format_number(std::isfinite(eta) ? std::round(eta) : -1) << "}\n";
        out_->flush();
        return;
    }
    char line[256];
    if (bar_) {
        const int width = 24;
        const int fill = batches_ > 0 ? static_cast<int>(width * done_ / batches_) : 0;
        std::string barstr(static_cast<std::size_t>(fill), '=');
        barstr.resize(width, ' ');
        std::snprintf(line, sizeof line, "\r%-5s epoch %lld [%s] %lld/%lld loss %.4f %s tok/s ETA %s\x1b[K",
                      name_.c_str(), static_cast<long long>(epoch_ + 1), barstr.c_str(), static_cast<long long>(done_),
                      static_cast<long long>(batches_), loss_, rate(ips).c_str(), duration(eta).c_str());
        *out_ << line;
        if (final) *out_ << "\r\x1b[K";
    } else {
        std::snprintf(line, sizeof line, "%s epoch %lld batch %lld/%lld loss %.4f tok/s %s eta %s\n", name_.c_str(),
                      static_cast<long long>(epoch_ + 1), static_cast<long long>(done_),
                      static_cast<long long>(batches_), loss_, rate(ips).c_str(), duration(eta).c_str());
        *out_ << line;
    }
    out_->flush();
}

void Progress::end_pass() {
    if (out_ && bar_) draw(true);
}

void Progress::metrics(const MetricsRow& row) {
    if (!out_) return;
    if (format_ == "json") {
        *out_ << "{\"event\":\"metrics\",\"epoch\":" << row.epoch << ",\"split\":\"" << row.split << "\"";
        for (const auto& [k, v] : row.values)
            *out_ << ",\"" << k << "\":" << json_number(v);
        *out_ << "}\n";
    } else {
        *out_ << (row.epoch > 0 ? "epoch " + std::to_string(row.epoch) : std::string("final")) << " " << row.split;
        for (const auto& [k, v] : row.values) {
            char buf[64];
            if (k == "seconds") std::snprintf(buf, sizeof buf, "%.1f", v);
            else if (k == "items_per_second") std::snprintf(buf, sizeof buf, "%.0f", v);
            else std::snprintf(buf, sizeof buf, "%.5g", v);
            *out_ << " " << k << "=" << buf;
        }
        *out_ << "\n";
    }
    out_->flush();
}

}  // namespace rnnflow
