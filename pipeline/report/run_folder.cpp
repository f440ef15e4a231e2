#include "pipeline/report/run_folder.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace rnnflow::report {

namespace fs = std::filesystem;

int CsvTable::column(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) return static_cast<int>(i);
    return -1;
}

std::string read_text(const fs::path& file, std::size_t limit, bool* truncated) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("cannot read " + file.string(), "is it a run or sweep folder written by rnnflow?");
    std::string s;
    if (limit == std::string::npos) {
        std::ostringstream os;
        os << in.rdbuf();
        s = os.str();
        if (truncated) *truncated = false;
        return s;
    }
    s.resize(limit + 1);
    in.read(s.data(), static_cast<std::streamsize>(limit + 1));
    s.resize(static_cast<std::size_t>(in.gcount()));
    if (truncated) *truncated = s.size() > limit;
    if (s.size() > limit) {
        s.resize(limit);
        // Do not cut a UTF-8 sequence in half.
        while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
        if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();
    }
    return s;
}

CsvTable read_csv(const fs::path& file) {
    const std::string text = read_text(file);
    std::vector<std::vector<std::string>> records;
    std::vector<std::string> rec;
    std::string field;
    bool quoted = false, any = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') { field += '"'; ++i; }
            else if (c == '"') quoted = false;
            else field += c;
            continue;
        }
        if (c == '"') { quoted = true; any = true; }
        else if (c == ',') { rec.push_back(std::move(field)); field.clear(); any = true; }
        else if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
            if (any || !field.empty()) {
                rec.push_back(std::move(field));
                records.push_back(std::move(rec));
            }
            rec.clear();
            field.clear();
            any = false;
        } else { field += c; any = true; }
    }
    if (any || !field.empty()) {
        rec.push_back(std::move(field));
        records.push_back(std::move(rec));
    }
    if (quoted) throw Error(file.string() + ": a quoted CSV field is not closed");
    CsvTable t;
    if (records.empty()) return t;
    t.header = std::move(records.front());
    for (std::size_t r = 1; r < records.size(); ++r) {
        records[r].resize(std::max(records[r].size(), t.header.size()));
        t.rows.push_back(std::move(records[r]));
    }
    return t;
}

std::vector<MetricsRow> read_metrics(const fs::path& run_dir) {
    const fs::path file = run_dir / "metrics.csv";
    const CsvTable t = read_csv(file);
    const int ce = t.column("epoch"), cs = t.column("split");
    if (ce < 0 || cs < 0) throw Error(file.string() + ": no epoch and split columns", "is it rnnflow's metrics.csv?");
    std::vector<MetricsRow> rows;
    for (const auto& r : t.rows) {
        MetricsRow m;
        try {
            m.epoch = std::stoll(r[static_cast<std::size_t>(ce)]);
        } catch (const std::exception&) {
            throw Error(file.string() + ": epoch '" + r[static_cast<std::size_t>(ce)] + "' is not a number");
        }
        m.split = r[static_cast<std::size_t>(cs)];
        for (std::size_t i = 0; i < t.header.size(); ++i) {
            if (static_cast<int>(i) == ce || static_cast<int>(i) == cs || r[i].empty()) continue;
            m.values.emplace_back(t.header[i], std::strtod(r[i].c_str(), nullptr));  // also NaN, Infinity
        }
        rows.push_back(std::move(m));
    }
    return rows;
}

namespace {
void flatten(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>& out) {
    if (n.IsMap()) {
        for (const auto& kv : n) {
            const std::string key = kv.first.as<std::string>();
            // Stage parameters are addressed as `--set stage.param`, without `stages.`.
            const std::string p = path.empty() ? (key == "stages" ? std::string() : key) : path + "." + key;
            if (path.empty() && key == "stages") flatten(kv.second, "", out);
            else flatten(kv.second, p, out);
        }
    } else if (n.IsSequence()) {
        for (std::size_t i = 0; i < n.size(); ++i) flatten(n[i], path + "[" + std::to_string(i) + "]", out);
        if (n.size() == 0) out[path] = "[]";
    } else if (n.IsScalar()) {
        out[path] = n.Scalar();
    } else if (n.IsNull()) {
        out[path] = "null";
    }
}
}  // namespace

std::map<std::string, std::string> flatten_yaml(const fs::path& file) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(file.string());
    } catch (const YAML::Exception& e) {
        throw Error(file.string() + ": " + e.what());
    }
    std::map<std::string, std::string> out;
    flatten(root, "", out);
    return out;
}

bool is_sweep_dir(const fs::path& dir) {
    return fs::exists(dir / "sweep.db") || (fs::exists(dir / "results.csv") && fs::exists(dir / "trials.csv"));
}

bool is_run_dir(const fs::path& dir) {
    return fs::exists(dir / "resolved.yaml") || fs::exists(dir / "metrics.csv");
}

// "wall time: 31.2 s" and "training throughput: 36000 items/s" from summary.txt.
std::pair<double, double> summary_figures(const fs::path& run_dir) {
    double wall = NAN, rate = NAN;
    if (!fs::exists(run_dir / "summary.txt")) return {wall, rate};
    std::istringstream in(read_text(run_dir / "summary.txt", 64 * 1024));
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("wall time: ", 0) == 0) wall = std::strtod(line.c_str() + 11, nullptr);
        if (line.rfind("training throughput: ", 0) == 0) rate = std::strtod(line.c_str() + 21, nullptr);
    }
    return {wall, rate};
}

// Columns padded to their widest cell (UTF-8 aware), two spaces apart.
std::string aligned_columns(const std::vector<std::vector<std::string>>& rows) {
    auto width = [](const std::string& s) {
        std::size_t n = 0;
        for (unsigned char c : s) n += (c & 0xC0) != 0x80;
        return n;
    };
    std::vector<std::size_t> w;
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (w.size() <= i) w.resize(i + 1, 0);
            w[i] = std::max(w[i], width(r[i]));
        }
    std::ostringstream os;
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            line += r[i];
            if (i + 1 < r.size()) line += std::string(w[i] - width(r[i]) + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        os << line << "\n";
    }
    return os.str();
}

}  // namespace rnnflow::report
