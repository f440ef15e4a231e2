#include "metrics_log.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "../core/safetensors.hpp"
#include "per_class.hpp"

namespace rnnflow {

std::string format_number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    char buf[64];
    for (int prec = 6; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

std::string format_metric(double v) {
    const double a = std::fabs(v);
    if (!std::isfinite(v) || a >= 1e15) return format_number(v);
    if (a == 0) return "0";  // also -0
    char buf[64];
    if (a < 1e-4) {
        std::snprintf(buf, sizeof buf, "%.4g", v);
        return buf;
    }
    // Digits before the point (<= 0 for 0.0xyz), so decimals = the rest of 4 significant digits.
    const int int_digits = static_cast<int>(std::floor(std::log10(a))) + 1;
    std::snprintf(buf, sizeof buf, "%.*f", std::max(0, 4 - int_digits), v);
    std::string out = buf;
    if (out.find('.') != std::string::npos) {
        out.erase(out.find_last_not_of('0') + 1);
        if (out.back() == '.') out.pop_back();
    }
    return out == "-0" ? "0" : out;
}

const std::string& metric_label(const std::string& key, const MetricLabels& labels) {
    const auto it = labels.find(key);
    return it == labels.end() ? key : it->second;
}

std::string metrics_text(const MetricsRow& row, const MetricLabels& labels,
                         const std::function<bool(const std::string& key)>& keep) {
    std::string out;
    for (const auto& [k, v] : row.values)
        if (!keep || keep(k)) out += " " + metric_label(k, labels) + "=" + format_metric(v);
    return out;
}

std::string json_number(double v) {
    std::string out = format_number(v);
    if (!std::isfinite(v)) {
        out.insert(out.begin(), '"');
        out.push_back('"');
    }
    return out;
}

MetricsLog::MetricsLog(std::filesystem::path run_dir) : dir_(std::move(run_dir)) {}

bool is_bookkeeping_value(const std::string& name) {
    static const std::set<std::string> names{"lr", "grad_norm", "seconds", "items_per_second"};
    return names.count(name) != 0;
}

std::string main_metric(const std::vector<MetricsRow>& rows, const std::string& preferred) {
    std::string first;
    for (const auto& r : rows)
        for (const auto& [k, v] : r.values) {
            if (!preferred.empty() && k == preferred) return k;
            if (first.empty() && k != "loss" && !is_bookkeeping_value(k)) first = k;
        }
    return first;
}

namespace {
std::string json_line(const MetricsRow& row) {
    std::ostringstream os;
    os << "{\"epoch\":" << row.epoch << ",\"split\":\"" << row.split << "\"";
    for (const auto& [k, v] : row.values) os << ",\"" << k << "\":" << json_number(v);
    os << "}\n";
    return os.str();
}
}  // namespace

void MetricsLog::restore(const std::vector<MetricsRow>& rows) {
    std::string jsonl;
    for (const auto& r : rows) jsonl += json_line(r);
    write_file_atomic(dir_ / "metrics.jsonl", jsonl);
    rows_ = rows;
    if (rows_.empty()) {
        std::error_code ec;
        std::filesystem::remove(dir_ / "metrics.csv", ec);
        return;
    }
    write_csv();
}

void MetricsLog::append(const MetricsRow& row) {
    rows_.push_back(row);
    {
        std::ofstream os(dir_ / "metrics.jsonl", std::ios::app);
        os << json_line(row);
        os.flush();
    }
    write_csv();
}

void MetricsLog::write_csv() const {
    std::vector<std::string> cols;
    std::set<std::string> seen;
    for (const auto& r : rows_)
        for (const auto& [k, v] : r.values)
            if (seen.insert(k).second) cols.push_back(k);
    std::ostringstream csv;
    csv << "epoch,split";
    for (const auto& c : cols) csv << "," << c;
    csv << "\n";
    for (const auto& r : rows_) {
        csv << r.epoch << "," << r.split;
        for (const auto& c : cols) {
            csv << ",";
            const double v = r.get(c);
            if (!std::isnan(v) || seen.count(c) == 0) {
                bool present = false;
                for (const auto& [k, x] : r.values) present = present || k == c;
                if (present) csv << format_number(v);
            }
        }
        csv << "\n";
    }
    write_file_atomic(dir_ / "metrics.csv", csv.str());
}

void MetricsLog::write_summary(const std::vector<MetricsRow>& rows, const std::string& headline,
                               const std::string& kept_checkpoint, const MetricLabels& labels) {
    std::ostringstream os;
    os << headline;
    os << "kept checkpoint: " << kept_checkpoint << "\n";
    for (const auto& [key, label] : labels)
        os << label << ": the main metric of stage '" << key << "', key '" << key
           << "' in metrics.jsonl and metrics.csv\n";
    // Per-class tables: the final test, and each other evaluation split's last pass.
    std::map<std::string, const MetricsRow*> last;
    for (const auto& r : rows)
        if (r.split != "train" && (r.epoch == 0 || !last.count(r.split) || last[r.split]->epoch != 0)) last[r.split] = &r;
    std::string tables;
    for (const auto& [split, r] : last) {
        const auto per = per_class_rows(*r, dir_);
        if (per.empty()) continue;
        write_file_atomic(dir_ / (split + ".per_class.tsv"), per_class_tsv(per));
        tables += (tables.empty() ? "" : ", ") + split + ".per_class.tsv";
    }
    if (!tables.empty()) os << "per-class values: " << tables << "\n";
    os << "\n";
    auto line = [&](const MetricsRow& r) {
        os << (r.epoch > 0 ? "epoch " + std::to_string(r.epoch) : std::string("final")) << " " << r.split << ":"
           << metrics_text(r, labels, [](const std::string& k) { return !is_per_class_key(k); }) << "\n";
    };
    for (const auto& r : rows)
        if (r.epoch == 0) line(r);
    for (const auto& r : rows)
        if (r.epoch != 0) line(r);
    write_file_atomic(dir_ / "summary.txt", os.str());
}

}  // namespace rnnflow
