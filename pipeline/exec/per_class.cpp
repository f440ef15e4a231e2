#include "per_class.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "metrics_log.hpp"

namespace rnnflow {

namespace fs = std::filesystem;

bool is_per_class_key(const std::string& key) { return std::count(key.begin(), key.end(), '.') >= 2; }

namespace {

double* measure_of(PerClassRow& r, const std::string& measure) {
    if (measure == "precision") return &r.precision;
    if (measure == "recall") return &r.recall;
    if (measure == "f1") return &r.f1;
    if (measure == "accuracy") return &r.accuracy;
    return nullptr;
}

// Gold counts by class from a confusion table (gold rows, predicted columns); empty when absent
// or not one.
std::map<std::string, double> gold_counts(const fs::path& file) {
    std::map<std::string, double> out;
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line) || line.rfind("gold\\predicted", 0) != 0) return {};
    while (std::getline(in, line)) {
        std::istringstream cells(line);
        std::string name, cell;
        std::getline(cells, name, '\t');
        double sum = 0;
        while (std::getline(cells, cell, '\t')) sum += std::strtod(cell.c_str(), nullptr);
        out[name] = sum;
    }
    return out;
}

}  // namespace

std::vector<PerClassRow> per_class_rows(const MetricsRow& row, const fs::path& run_dir) {
    std::vector<PerClassRow> out;
    std::map<std::pair<std::string, std::string>, std::size_t> index;
    for (const auto& [key, value] : row.values) {
        if (!is_per_class_key(key)) continue;
        const std::size_t a = key.find('.'), b = key.find('.', a + 1);
        const std::string stage = key.substr(0, a), measure = key.substr(a + 1, b - a - 1), cls = key.substr(b + 1);
        PerClassRow probe;
        if (!measure_of(probe, measure)) continue;
        auto [it, added] = index.emplace(std::make_pair(stage, cls), out.size());
        if (added) out.push_back(PerClassRow{stage, cls});
        *measure_of(out[it->second], measure) = value;
    }
    if (run_dir.empty()) return out;
    std::map<std::string, std::map<std::string, double>> support;  // by stage
    for (auto& r : out) {
        auto it = support.find(r.stage);
        if (it == support.end())
            it = support.emplace(r.stage, gold_counts(run_dir / r.stage / (row.split + ".confusion.tsv"))).first;
        const auto n = it->second.find(r.cls);
        if (n != it->second.end()) r.support = n->second;
    }
    return out;
}

std::string per_class_tsv(const std::vector<PerClassRow>& rows) {
    auto cell = [](double v) { return std::isnan(v) ? std::string() : format_number(v); };
    auto text = [](std::string t) {  // a cell holds no tab or line break
        std::replace_if(t.begin(), t.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
        return t;
    };
    std::string out = "stage\tclass\tsupport\tprecision\trecall\tf1\taccuracy\n";
    for (const auto& r : rows)
        out += text(r.stage) + "\t" + text(r.cls) + "\t" + cell(r.support) + "\t" + cell(r.precision) + "\t" + cell(r.recall) +
               "\t" + cell(r.f1) + "\t" + cell(r.accuracy) + "\n";
    return out;
}

}  // namespace rnnflow
