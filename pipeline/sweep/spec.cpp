// Sweep file → SweepSpec. yaml-cpp's nodes are walked directly: its marks are 0-based (ours
// 1-based) and it keeps duplicate keys in iteration while dropping them from lookups, so every
// mapping is read by iterating and duplicates are reported here.
#include "spec.hpp"

#include "../graph/graph.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <system_error>

namespace rnnflow {
namespace {

using Diags = std::vector<Diagnostic>;

SourceLoc loc_of(const std::string& file, const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    if (m.line < 0) return SourceLoc{file, 0, 0};
    return SourceLoc{file, m.line + 1, m.column + 1};
}

// A mapping's entries in file order, duplicates reported and dropped.
std::vector<std::pair<std::string, YAML::Node>> entries(const YAML::Node& map, const std::string& file,
                                                        Diags& diags) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
        const SourceLoc kloc = loc_of(file, it->first);
        if (!it->first.IsScalar()) {
            diags.push_back({kloc, "a key must be a plain name, not a list or mapping", ""});
            continue;
        }
        const std::string key = it->first.Scalar();
        if (auto s = seen.find(key); s != seen.end()) {
            diags.push_back({kloc, "duplicate key '" + key + "'",
                             "'" + key + "' is first given at line " + std::to_string(s->second) +
                                 "; remove one of them"});
            continue;
        }
        seen.emplace(key, kloc.line);
        out.emplace_back(key, it->second);
    }
    return out;
}

// YAML text that reads back as the same value in a --set override.
std::string flow_text(const YAML::Node& n) {
    if (n.IsScalar() && n.Tag() != "!") return n.Scalar();
    YAML::Emitter out;
    out << YAML::Flow << n;
    return out.c_str();
}

std::string kind_word(const YAML::Node& n) {
    if (n.IsMap()) return "a mapping";
    if (n.IsSequence()) {
        if (n.size() == 0) return "an empty list";
        // A short list of plain values reads best as itself: [1, 0].
        std::string items;
        for (const auto& i : n) {
            if (!i.IsScalar() || n.size() > 4) return "a list";
            items += (items.empty() ? "" : ", ") + i.Scalar();
        }
        return "[" + items + "]";
    }
    if (n.IsNull()) return "nothing";
    return "'" + n.Scalar() + "'";
}

std::optional<double> as_number(const YAML::Node& n) {
    if (!n.IsScalar()) return std::nullopt;
    const std::string& s = n.Scalar();
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

std::optional<std::int64_t> as_int(const YAML::Node& n) {
    if (!n.IsScalar()) return std::nullopt;
    const std::string& s = n.Scalar();
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || end != s.c_str() + s.size()) return std::nullopt;
    return v;
}

bool valid_path(const std::string& p) {
    if (p.empty() || p.front() == '.' || p.back() == '.' || p.find("..") != std::string::npos) return false;
    return std::all_of(p.begin(), p.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
    });
}

// Random numbers that do not depend on the standard library's distributions (which differ
// between implementations): the same random_seed gives the same trials everywhere.
struct Rng {
    std::mt19937_64 gen;
    explicit Rng(std::uint64_t seed) : gen(seed) {}
    double unit() { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }  // [0, 1)
    std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(gen() % static_cast<std::uint64_t>(n)); }
};

std::string number_text(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    std::string s = buf;
    // Keep it a float for the loader when it reads like an integer ("1" → "1.0").
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
    return s;
}

struct Distribution {
    enum class Kind { uniform, log_uniform, integer, choice } kind;
    std::string path;
    double lo = 0, hi = 0;
    std::vector<std::string> choices;

    std::string draw(Rng& rng) const {
        switch (kind) {
            case Kind::uniform: return number_text(lo + (hi - lo) * rng.unit());
            case Kind::log_uniform: return number_text(std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * rng.unit()));
            case Kind::integer: {
                const auto a = static_cast<std::int64_t>(lo), b = static_cast<std::int64_t>(hi);
                return std::to_string(a + rng.below(b - a + 1));
            }
            case Kind::choice: return choices[static_cast<std::size_t>(rng.below(static_cast<std::int64_t>(choices.size())))];
        }
        return {};
    }
};

using Choice = std::vector<SweepValue>;  // the values one grid axis sets together
using Axis = std::vector<Choice>;

class Reader {
public:
    Reader(std::string file, std::filesystem::path base_dir, Diags& diags)
        : file_(std::move(file)), base_(std::move(base_dir)), diags_(diags) {}

    void read(const YAML::Node& root, SweepSpec& s) {
        if (!root.IsMap()) {
            diags_.push_back({SourceLoc{file_, 1, 1}, "a sweep file must be a mapping, got " + kind_word(root),
                              "start with `graph: ../char_lm.yaml` and a `grid:` or `random:` section"});
            return;
        }
        static const std::vector<std::string> kKeys = {
            "sweep", "description", "graph", "set", "grid", "linked", "random", "samples",
            "random_seed", "seeds", "objective", "max_trials", "early_stopping"};
        std::optional<YAML::Node> samples_node;
        std::int64_t random_seed = 0;
        bool have_graph = false;
        for (const auto& [key, v] : entries(root, file_, diags_)) {
            const SourceLoc vl = loc_of(file_, v);
            if (key == "sweep") s.name = scalar(v, key);
            else if (key == "description") {}
            else if (key == "graph") {
                const std::string g = scalar(v, key);
                if (!g.empty()) {
                    s.graph = std::filesystem::path(g).is_absolute() ? std::filesystem::path(g) : base_ / g;
                    have_graph = true;
                    std::error_code ec;  // a name too long for the file system is an error, not a throw
                    const bool exists = std::filesystem::exists(s.graph, ec);
                    if (ec)
                        diags_.push_back({vl, "graph file '" + s.graph.string() + "' cannot be looked up: " + ec.message(),
                                          "give the path of a graph file, relative to the sweep file's folder"});
                    else if (!exists)
                        diags_.push_back({vl, "graph file '" + s.graph.string() + "' does not exist",
                                          "the path is relative to the sweep file's folder"});
                }
            } else if (key == "set") read_set(v, s);
            else if (key == "grid") read_grid(v);
            else if (key == "linked") read_linked(v);
            else if (key == "random") read_random(v);
            else if (key == "samples") samples_node = v;
            else if (key == "random_seed") random_seed = integer(v, key, 0).value_or(0);
            else if (key == "seeds") read_seeds(v);
            else if (key == "objective") read_objective(v, s.objective);
            else if (key == "max_trials") s.max_trials = integer(v, key, 1).value_or(0);
            else if (key == "early_stopping") read_early_stopping(v, s.early_stopping);
            else {
                const std::string hint = did_you_mean(key, kKeys);
                diags_.push_back({loc_of(file_, root), "unknown key '" + key + "' in the sweep file",
                                  hint.empty() ? "keys: graph, set, grid, linked, random, samples, random_seed, seeds, objective, max_trials, early_stopping" : hint});
                // Point at the key itself when yaml-cpp can tell us where it is.
                for (auto it = root.begin(); it != root.end(); ++it)
                    if (it->first.IsScalar() && it->first.Scalar() == key) diags_.back().loc = loc_of(file_, it->first);
            }
        }
        if (!have_graph)
            diags_.push_back({SourceLoc{file_, 1, 1}, "the sweep file names no graph",
                              "add `graph: FILE` (relative to the sweep file)"});

        std::int64_t samples = random_section_ ? 0 : 1;
        if (samples_node) {
            samples = integer(*samples_node, "samples", 1).value_or(1);
            if (!random_section_)
                diags_.push_back({loc_of(file_, *samples_node), "'samples' without a `random:` section",
                                  "samples draws the random parameters; remove it or add `random:`"});
        }
        // Sizes multiply: saturate instead of overflowing, and refuse an expansion that would not
        // fit in memory before building it.
        constexpr std::int64_t kBig = std::int64_t{1} << 50;
        auto times = [](std::int64_t a, std::int64_t b) { return b != 0 && a > kBig / b ? kBig : a * b; };
        std::int64_t grid_points = 1;
        for (const auto& a : axes_) grid_points = times(grid_points, static_cast<std::int64_t>(a.size()));
        const auto nseeds = static_cast<std::int64_t>(std::max<std::size_t>(1, seeds_.size()));
        if (samples == 0) {
            if (s.max_trials > 0) samples = (s.max_trials + times(grid_points, nseeds) - 1) / times(grid_points, nseeds);
            else {
                diags_.push_back({SourceLoc{file_, 1, 1}, "`random:` needs `samples` or `max_trials`",
                                  "e.g. samples: 8 (draws per grid point)"});
                samples = 1;
            }
        }
        const std::int64_t total = times(times(grid_points, samples), nseeds);
        constexpr std::int64_t kMaxTrials = 100000;
        if (s.max_trials == 0 && total > kMaxTrials)
            diags_.push_back({SourceLoc{file_, 1, 1},
                              "the sweep expands to " + (total >= kBig ? std::string("more than 2^50") : std::to_string(total)) +
                                  " trials (grid points x samples x seeds), more than " + std::to_string(kMaxTrials),
                              "set max_trials, or search fewer values"});
        if (!diags_.empty()) return;
        expand(s, samples, static_cast<std::uint64_t>(random_seed));
        if (s.name.empty()) s.name = std::filesystem::path(file_).stem().string();
    }

private:
    std::string file_;
    std::filesystem::path base_;
    Diags& diags_;
    std::vector<Axis> axes_;
    std::vector<Distribution> random_;
    std::vector<std::int64_t> seeds_;
    std::vector<std::string> paths_;
    bool random_section_ = false;

    std::string scalar(const YAML::Node& v, const std::string& what) {
        if (!v.IsScalar()) {
            diags_.push_back({loc_of(file_, v), "'" + what + "' must be a single value, got " + kind_word(v), ""});
            return {};
        }
        return v.Scalar();
    }

    std::optional<std::int64_t> integer(const YAML::Node& v, const std::string& what, std::int64_t min) {
        const auto i = as_int(v);
        if (!i || *i < min) {
            diags_.push_back({loc_of(file_, v), "'" + what + "' must be an integer >= " + std::to_string(min) +
                                                    ", got " + kind_word(v), ""});
            return std::nullopt;
        }
        return i;
    }

    bool check_path(const std::string& path, const YAML::Node& at) {
        if (!valid_path(path)) {
            diags_.push_back({loc_of(file_, at), "'" + path + "' is not an override path",
                              "write it as for --set: stage.key (rnn.hidden), train.epochs, vars.name or seed"});
            return false;
        }
        if (path == "seed" && !seeds_.empty()) {
            diags_.push_back({loc_of(file_, at), "'seed' is searched and also given by `seeds:`", "keep one"});
            return false;
        }
        if (std::find(paths_.begin(), paths_.end(), path) != paths_.end()) {
            diags_.push_back({loc_of(file_, at), "'" + path + "' is searched twice",
                              "a path may appear once across grid, linked and random"});
            return false;
        }
        paths_.push_back(path);
        return true;
    }

    void read_set(const YAML::Node& v, SweepSpec& s) {
        if (!v.IsMap()) {
            diags_.push_back({loc_of(file_, v), "'set' must be a mapping of override paths to values, got " + kind_word(v),
                              "e.g. set: {train.epochs: 2}"});
            return;
        }
        for (const auto& [path, val] : entries(v, file_, diags_)) {
            if (!valid_path(path)) {
                diags_.push_back({loc_of(file_, val), "'" + path + "' is not an override path",
                                  "write it as for --set: stage.key, train.epochs, vars.name or seed"});
                continue;
            }
            s.fixed.push_back(path + "=" + flow_text(val));
        }
    }

    void read_grid(const YAML::Node& v) {
        if (!v.IsMap()) {
            diags_.push_back({loc_of(file_, v), "'grid' must be a mapping of paths to lists, got " + kind_word(v),
                              "e.g. grid: {rnn.hidden: [128, 256]}"});
            return;
        }
        for (const auto& [path, list] : entries(v, file_, diags_)) {
            if (!check_path(path, list)) continue;
            if (!list.IsSequence() || list.size() == 0) {
                diags_.push_back({loc_of(file_, list), "grid values of '" + path + "' must be a non-empty list, got " + kind_word(list),
                                  "e.g. " + path + ": [1, 2]"});
                continue;
            }
            Axis axis;
            for (const auto& item : list) axis.push_back({SweepValue{path, flow_text(item)}});
            axes_.push_back(std::move(axis));
        }
    }

    void read_linked(const YAML::Node& v) {
        if (!v.IsSequence()) {
            diags_.push_back({loc_of(file_, v), "'linked' must be a list of groups, got " + kind_word(v),
                              "e.g. linked: [[{rnn.hidden: 64, embed.dim: 16}, {rnn.hidden: 128, embed.dim: 32}]]"});
            return;
        }
        for (const auto& group : v) {
            if (!group.IsSequence() || group.size() == 0) {
                diags_.push_back({loc_of(file_, group), "a linked group must be a non-empty list of mappings, got " + kind_word(group),
                                  "each mapping holds values that change together"});
                continue;
            }
            Axis axis;
            std::vector<std::string> keys;
            bool ok = true;
            for (const auto& m : group) {
                if (!m.IsMap()) {
                    diags_.push_back({loc_of(file_, m), "a linked value must be a mapping of paths to values, got " + kind_word(m), ""});
                    ok = false;
                    continue;
                }
                Choice c;
                std::vector<std::string> ks;
                for (const auto& [path, val] : entries(m, file_, diags_)) {
                    ks.push_back(path);
                    c.push_back(SweepValue{path, flow_text(val)});
                }
                if (axis.empty()) {
                    keys = ks;
                    for (const auto& k : keys) ok = check_path(k, m) && ok;
                } else if (ks != keys) {
                    diags_.push_back({loc_of(file_, m), "every mapping of a linked group must set the same paths",
                                      "the first sets " + std::to_string(keys.size()) + " path(s), in this order"});
                    ok = false;
                }
                axis.push_back(std::move(c));
            }
            if (ok) axes_.push_back(std::move(axis));
        }
    }

    void read_random(const YAML::Node& v) {
        random_section_ = true;
        if (!v.IsMap()) {
            diags_.push_back({loc_of(file_, v), "'random' must be a mapping of paths to distributions, got " + kind_word(v),
                              "e.g. random: {optim.lr: {log_uniform: [1.0e-4, 1.0e-2]}}"});
            return;
        }
        for (const auto& [path, d] : entries(v, file_, diags_)) {
            const std::string hint = "one of {uniform: [lo, hi]}, {log_uniform: [lo, hi]}, {int: [lo, hi]}, {choice: [a, b, ...]}";
            auto es = d.IsMap() ? entries(d, file_, diags_) : decltype(entries(d, file_, diags_)){};
            if (es.size() != 1) {
                diags_.push_back({loc_of(file_, d), "the distribution of '" + path + "' must be a mapping with one key", hint});
                continue;
            }
            if (!check_path(path, d)) continue;
            const auto& [kind, args] = es.front();
            Distribution dist;
            dist.path = path;
            const SourceLoc al = loc_of(file_, args);
            if (kind == "choice") {
                dist.kind = Distribution::Kind::choice;
                if (!args.IsSequence() || args.size() == 0) {
                    diags_.push_back({al, "choice needs a non-empty list, got " + kind_word(args), hint});
                    continue;
                }
                for (const auto& c : args) dist.choices.push_back(flow_text(c));
            } else if (kind == "uniform" || kind == "log_uniform" || kind == "int") {
                dist.kind = kind == "uniform" ? Distribution::Kind::uniform
                          : kind == "log_uniform" ? Distribution::Kind::log_uniform : Distribution::Kind::integer;
                std::optional<double> lo, hi;
                if (args.IsSequence() && args.size() == 2) {
                    if (kind == "int") {
                        auto a = as_int(args[0]), b = as_int(args[1]);
                        if (a && b) { lo = static_cast<double>(*a); hi = static_cast<double>(*b); }
                    } else {
                        lo = as_number(args[0]);
                        hi = as_number(args[1]);
                    }
                }
                if (!lo || !hi || *lo > *hi) {
                    diags_.push_back({al, kind + " needs [lo, hi] with lo <= hi" + std::string(kind == "int" ? " (integers)" : "") +
                                              ", got " + kind_word(args), hint});
                    continue;
                }
                if (kind == "log_uniform" && *lo <= 0) {
                    diags_.push_back({al, "log_uniform needs lo > 0, got " + args[0].Scalar(), "use uniform for ranges that include 0"});
                    continue;
                }
                dist.lo = *lo;
                dist.hi = *hi;
            } else {
                const std::string dm = did_you_mean(kind, {"uniform", "log_uniform", "int", "choice"});
                diags_.push_back({al, "unknown distribution '" + kind + "' for '" + path + "'", dm.empty() ? hint : dm});
                continue;
            }
            random_.push_back(std::move(dist));
        }
    }

    void read_seeds(const YAML::Node& v) {
        if (!v.IsSequence() || v.size() == 0) {
            diags_.push_back({loc_of(file_, v), "'seeds' must be a non-empty list of integers, got " + kind_word(v), "e.g. seeds: [1, 2, 3]"});
            return;
        }
        for (const auto& s : v)
            if (auto i = integer(s, "seeds", 0)) seeds_.push_back(*i);
        if (std::find(paths_.begin(), paths_.end(), "seed") != paths_.end())
            diags_.push_back({loc_of(file_, v), "'seed' is searched and also given by `seeds:`", "keep one"});
    }

    void read_objective(const YAML::Node& v, ObjectiveSpec& o) {
        if (!v.IsMap()) {
            diags_.push_back({loc_of(file_, v), "'objective' must be a mapping, got " + kind_word(v),
                              "e.g. objective: {metric: ppl, split: valid, goal: min}"});
            return;
        }
        std::optional<bool> goal;
        bool have_metric = false;
        for (const auto& [key, val] : entries(v, file_, diags_)) {
            if (key == "metric") { o.metric = scalar(val, "metric"); have_metric = true; }
            else if (key == "split") {
                o.split = scalar(val, "split");
                if (o.split != "valid" && o.split != "train" && o.split != "test")
                    diags_.push_back({loc_of(file_, val), "objective split must be valid, train or test, got '" + o.split + "'",
                                      "valid and train take the best epoch; test the final evaluation"});
            } else if (key == "goal") {
                const std::string g = scalar(val, "goal");
                if (g == "min" || g == "max") goal = g == "min";
                else diags_.push_back({loc_of(file_, val), "goal must be min or max, got '" + g + "'", ""});
            } else {
                const std::string dm = did_you_mean(key, {"metric", "split", "goal"});
                diags_.push_back({loc_of(file_, val), "unknown key '" + key + "' in objective", dm.empty() ? "keys: metric, split, goal" : dm});
            }
        }
        if (!have_metric)
            diags_.push_back({loc_of(file_, v), "objective names no metric", "e.g. metric: ppl"});
        if (goal) o.minimize = *goal;
        else if (auto m = metric_minimized(o.metric)) o.minimize = *m;
        else if (have_metric)
            diags_.push_back({loc_of(file_, v), "cannot tell whether '" + o.metric + "' is better low or high",
                              "add goal: min or goal: max"});
    }

    void read_early_stopping(const YAML::Node& v, EarlyStoppingSpec& e) {
        if (!v.IsMap()) {
            diags_.push_back({loc_of(file_, v), "'early_stopping' must be a mapping, got " + kind_word(v),
                              "e.g. early_stopping: {rule: median, grace_epochs: 1} or {rule: asha, eta: 3}"});
            return;
        }
        bool have_rule = false;
        for (const auto& [key, val] : entries(v, file_, diags_)) {
            if (key == "rule") {
                have_rule = true;
                e.rule = scalar(val, "rule");
                if (e.rule == "successive_halving") e.rule = "asha";
                if (e.rule != "median" && e.rule != "asha" && e.rule != "none")
                    diags_.push_back({loc_of(file_, val), "unknown early-stopping rule '" + e.rule + "'",
                                      "median, asha (= successive_halving) or none"});
                if (e.rule == "none") e.rule.clear();
            } else if (key == "grace_epochs") e.grace_epochs = integer(val, key, 0).value_or(1);
            else if (key == "min_trials") e.min_trials = integer(val, key, 1).value_or(3);
            else if (key == "eta") e.eta = integer(val, key, 2).value_or(3);
            else if (key == "min_epochs") e.min_epochs = integer(val, key, 1).value_or(1);
            else {
                const std::string dm = did_you_mean(key, {"rule", "grace_epochs", "min_trials", "eta", "min_epochs"});
                diags_.push_back({loc_of(file_, val), "unknown key '" + key + "' in early_stopping",
                                  dm.empty() ? "keys: rule, grace_epochs, min_trials (median), eta, min_epochs (asha)" : dm});
            }
        }
        if (!have_rule)
            diags_.push_back({loc_of(file_, v), "early_stopping names no rule", "rule: median or rule: asha"});
    }

    void expand(SweepSpec& s, std::int64_t samples, std::uint64_t random_seed) {
        Rng rng(random_seed);
        s.param_paths.clear();
        for (const auto& a : axes_)
            for (const auto& v : a.front()) s.param_paths.push_back(v.path);
        for (const auto& d : random_) s.param_paths.push_back(d.path);
        // With max_trials the expansion stops there (the same first trials as a full one).
        const auto full = [&] { return s.max_trials > 0 && static_cast<std::int64_t>(s.trials.size()) >= s.max_trials; };

        // Grid points: odometer over the axes, last axis fastest.
        int config = 0;
        std::vector<std::size_t> idx(axes_.size(), 0);
        for (bool more = true; more && !full();) {
            Choice p;
            for (std::size_t a = 0; a < axes_.size(); ++a)
                for (const auto& v : axes_[a][idx[a]]) p.push_back(v);
            int a = static_cast<int>(axes_.size()) - 1;
            for (; a >= 0; --a) {
                const auto ua = static_cast<std::size_t>(a);
                if (++idx[ua] < axes_[ua].size()) break;
                idx[ua] = 0;
            }
            more = a >= 0;
            for (std::int64_t k = 0; k < samples && !full(); ++k, ++config) {
                Choice values = p;
                for (const auto& d : random_) values.push_back(SweepValue{d.path, d.draw(rng)});
                const std::size_t nseeds = std::max<std::size_t>(1, seeds_.size());
                for (std::size_t si = 0; si < nseeds; ++si) {
                    SweepTrialSpec t;
                    t.config = config;
                    t.values = values;
                    t.overrides = s.fixed;
                    for (const auto& v : values) t.overrides.push_back(v.path + "=" + v.text);
                    if (!seeds_.empty()) {
                        t.seed = seeds_[si];
                        t.overrides.push_back("seed=" + std::to_string(seeds_[si]));
                    }
                    for (const auto& o : t.overrides) t.key += o + "\n";
                    s.trials.push_back(std::move(t));
                }
            }
        }
        if (s.max_trials > 0 && static_cast<std::int64_t>(s.trials.size()) > s.max_trials)
            s.trials.resize(static_cast<std::size_t>(s.max_trials));
    }
};

}  // namespace

std::optional<bool> metric_minimized(const std::string& metric) {
    std::string m = metric;
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* w : {"loss", "ppl", "perplexity", "err", "wer", "cer", "bpc", "nll"})
        if (m.find(w) != std::string::npos) return true;
    for (const char* w : {"acc", "bleu", "f1", "precision", "recall", "auc", "chrf"})
        if (m.find(w) != std::string::npos) return false;
    return std::nullopt;
}

SweepSpec load_sweep_text(const std::string& text, const std::string& name,
                          const std::filesystem::path& base_dir) {
    if (auto bad = text_problem(text, name)) throw LoadError({*bad});
    Diags diags;
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::DeepRecursion& e) {
        throw LoadError({Diagnostic{e.mark.line < 0 ? SourceLoc{name, 0, 0} : SourceLoc{name, e.mark.line + 1, e.mark.column + 1},
                                    "YAML nested too deeply (the parser gives up at recursion depth " + std::to_string(e.depth()) + ")",
                                    "sweep files nest a few levels; is this the right file?"}});
    } catch (const YAML::ParserException& e) {
        const SourceLoc l = e.mark.line < 0 ? SourceLoc{name, 0, 0} : SourceLoc{name, e.mark.line + 1, e.mark.column + 1};
        throw LoadError({Diagnostic{l, e.msg, "check indentation, colons and closing brackets here or just above"}});
    }
    SweepSpec s;
    s.file = name;
    s.text = text;
    Reader(name, base_dir, diags).read(root, s);
    if (!diags.empty()) throw LoadError(std::move(diags));
    return s;
}

SweepSpec load_sweep(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw LoadError({Diagnostic{SourceLoc{file.string(), 0, 0}, "cannot read the sweep file", "check the path"}});
    std::ostringstream ss;
    ss << in.rdbuf();
    std::filesystem::path dir = file.parent_path();
    if (dir.empty()) dir = ".";
    return load_sweep_text(ss.str(), file.string(), dir);
}

}  // namespace rnnflow
