// Graph file → GraphDef. The YAML document is first copied into a small tree of our own (Doc)
// that keeps a SourceLoc on every node: yaml-cpp's marks cannot tell a node from the file from a
// node parsed out of a --set value, and yaml-cpp drops duplicate keys silently. On that tree we
// apply --set overrides, then ${var} substitution, then read the sections against the registry's
// schemas. Every problem becomes a Diagnostic; all are thrown together at the end.
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "graph.hpp"
#include "pipeline/core/text.hpp"

namespace rnnflow {
namespace {

// A plug-in path relative to the graph's folder made absolute; bare names stay as they are.
std::string find_plugin_spec(const std::string& spec, const std::filesystem::path& base_dir) {
    if (is_plugin_name(spec)) return spec;
    return find_plugin(spec, base_dir).string();
}

using Diags = std::vector<Diagnostic>;

struct Entry;

// One YAML node with where it came from.
struct Doc {
    enum class Kind { null, scalar, seq, map };
    Kind kind = Kind::null;
    std::string text;     // scalar (and null) text
    bool quoted = false;  // scalar written in quotes: emitted quoted again
    bool bad = false;     // a ${var} in it failed (reported): read nothing more from it
    std::vector<Doc> items;
    std::vector<Entry> entries;
    SourceLoc loc;

    bool is_scalar() const { return kind == Kind::scalar; }
    bool is_map() const { return kind == Kind::map; }
    Entry* find(const std::string& key);
    const Entry* find(const std::string& key) const;
};

struct Entry {
    std::string key;
    SourceLoc key_loc;
    Doc value;
};

Entry* Doc::find(const std::string& key) {
    for (auto& e : entries)
        if (e.key == key) return &e;
    return nullptr;
}
const Entry* Doc::find(const std::string& key) const {
    for (const auto& e : entries)
        if (e.key == key) return &e;
    return nullptr;
}

const std::vector<std::string> kTopKeys = {"experiment", "description", "seed",  "vars",
                                           "plugins",    "stages",      "train", "base_dir"};
const std::vector<std::string> kTrainKeys = {"epochs", "keep",     "threads", "max_batches",
                                             "prefetch", "log_every", "test", "sample_length",
                                             "checkpoint_every", "checkpoint_seconds", "nonfinite",
                                             "max_skipped", "early_stopping"};

std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
    return out;
}

std::string kind_word(const Doc& d) {
    switch (d.kind) {
        case Doc::Kind::null: return "nothing";
        case Doc::Kind::scalar: return "'" + d.text + "'";
        case Doc::Kind::seq: return "a list";
        case Doc::Kind::map: return "a mapping";
    }
    return "?";
}

SourceLoc mark_loc(const std::string& file, const YAML::Mark& m) {
    // yaml-cpp marks are 0-based; ours are 1-based.
    if (m.line < 0) return SourceLoc{file, 0, 0};
    return SourceLoc{file, m.line + 1, m.column + 1};
}

// Copy a yaml-cpp node; `fixed` (for --set values) replaces every location.
bool is_ident(const std::string& s);

// Positions (0-based line, column) of `${name}` written outside quotes.
using Rewrites = std::set<std::pair<int, int>>;

// YAML flow collections end plain scalars at '{' and '}', so `{hidden: ${hidden}}` would not
// parse. Unquoted `${name}` becomes `$(name)` (same length: marks stay right) before parsing, and
// from_yaml turns exactly those back, so a `$(...)` the user wrote is left alone.
Rewrites protect_vars(std::string& text) {
    Rewrites at;
    int line = 0, col = 0;
    char quote = 0;    // inside '...' or "..."
    char prev = '\n';  // last non-blank character on this line outside quotes
    bool comment = false;
    for (std::size_t i = 0; i < text.size(); ++i, ++col) {
        const char c = text[i];
        if (c == '\n') {
            ++line;
            col = -1;
            comment = false;
            prev = '\n';
            continue;
        }
        if (comment) continue;
        if (quote == '"') {
            if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') { ++i; ++col; }
            else if (c == '"') { quote = 0; prev = c; }
        } else if (quote == '\'') {
            if (c == '\'' && i + 1 < text.size() && text[i + 1] == '\'') { ++i; ++col; }
            else if (c == '\'') { quote = 0; prev = c; }
        } else if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
            comment = true;
        } else if ((c == '"' || c == '\'') && std::string_view("\n:[{,-?").find(prev) != std::string_view::npos) {
            quote = c;
        } else {
            if (c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
                const auto close = text.find('}', i + 2);
                if (close != std::string::npos && is_ident(text.substr(i + 2, close - i - 2))) {
                    text[i + 1] = '(';
                    text[close] = ')';
                    at.emplace(line, col);
                }
            }
            if (c != ' ' && c != '\t') prev = c;
        }
    }
    return at;
}

void unprotect_vars(std::string& s, const YAML::Mark& m, const Rewrites& rw) {
    for (std::size_t k = 0; k + 1 < s.size(); ++k) {
        if (s[k] != '$' || s[k + 1] != '(') continue;
        if (!rw.count({m.line, m.column + static_cast<int>(k)})) continue;
        const auto close = s.find(')', k);
        if (close == std::string::npos) continue;
        s[k + 1] = '{';
        s[close] = '}';
    }
}

Doc from_yaml(const YAML::Node& y, const std::string& file, const SourceLoc* fixed,
              const Rewrites& rw, Diags& diags) {
    Doc d;
    d.loc = fixed ? *fixed : mark_loc(file, y.Mark());
    switch (y.Type()) {
        case YAML::NodeType::Undefined:
        case YAML::NodeType::Null:
            d.kind = Doc::Kind::null;
            break;
        case YAML::NodeType::Scalar:
            d.kind = Doc::Kind::scalar;
            d.text = y.Scalar();
            d.quoted = y.Tag() == "!";
            if (!d.quoted && !rw.empty()) unprotect_vars(d.text, y.Mark(), rw);
            break;
        case YAML::NodeType::Sequence:
            d.kind = Doc::Kind::seq;
            for (const auto& item : y) d.items.push_back(from_yaml(item, file, fixed, rw, diags));
            break;
        case YAML::NodeType::Map: {
            d.kind = Doc::Kind::map;
            std::map<std::string, SourceLoc> seen;
            for (auto it = y.begin(); it != y.end(); ++it) {
                const SourceLoc kloc = fixed ? *fixed : mark_loc(file, it->first.Mark());
                if (!it->first.IsScalar()) {
                    diags.push_back({kloc, "a key must be a plain name, not a list or mapping", ""});
                    continue;
                }
                const std::string key = it->first.Scalar();
                if (auto s = seen.find(key); s != seen.end()) {
                    diags.push_back({kloc, "duplicate key '" + key + "'",
                                     "'" + key + "' is first given at line " +
                                         std::to_string(s->second.line) +
                                         "; remove one of them"});
                    continue;
                }
                seen.emplace(key, kloc);
                d.entries.push_back({key, kloc, from_yaml(it->second, file, fixed, rw, diags)});
            }
            break;
        }
    }
    return d;
}

// ---------------------------------------------------------------------------------------------
// --set overrides

SourceLoc override_loc(const std::string& ov) { return SourceLoc{"--set " + ov, 0, 0}; }

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) { out.push_back(cur); cur.clear(); }
        else cur += c;
    }
    out.push_back(cur);
    return out;
}

std::vector<std::string> stage_ids(const Doc& root) {
    std::vector<std::string> ids;
    if (const Entry* s = root.find("stages"); s && s->value.is_map())
        for (const auto& e : s->value.entries) ids.push_back(e.key);
    return ids;
}

void apply_override(Doc& root, const std::string& ov, Diags& diags) {
    const SourceLoc where = override_loc(ov);
    const auto eq = ov.find('=');
    std::vector<std::string> path = split(eq == std::string::npos ? ov : ov.substr(0, eq), '.');
    const bool empty_part = std::any_of(path.begin(), path.end(), [](auto& p) { return p.empty(); });
    if (eq == std::string::npos || empty_part) {
        diags.push_back({where, "malformed override: expected path=value",
                         "write e.g. --set rnn.hidden=512, --set train.epochs=2 or --set seed=3"});
        return;
    }
    Doc value;
    try {
        std::string text = ov.substr(eq + 1);
        const Rewrites rw = protect_vars(text);
        value = from_yaml(YAML::Load(text), where.file, &where, rw, diags);
    } catch (const YAML::Exception& e) {
        diags.push_back({where, "the value is not valid YAML: " + e.msg,
                         "quote it in the shell, e.g. --set 'corpus.train=[a.txt, b.txt]'"});
        return;
    }
    if (!root.is_map()) return;  // reported elsewhere

    const bool top = std::find(kTopKeys.begin(), kTopKeys.end(), path[0]) != kTopKeys.end();
    if (!top) path.insert(path.begin(), "stages");
    if (path[0] == "stages") {
        if (path.size() != 3) {
            diags.push_back({where, "an override of a stage must name one key: stage.key=value",
                             "e.g. --set rnn.hidden=512"});
            return;
        }
        const auto ids = stage_ids(root);
        if (std::find(ids.begin(), ids.end(), path[1]) == ids.end()) {
            std::vector<std::string> cands = ids;
            if (!top) cands.insert(cands.end(), kTopKeys.begin(), kTopKeys.end());
            std::string hint = did_you_mean(path[1], cands);
            if (hint.empty()) hint = "stages: " + join(ids);
            diags.push_back({where, "no stage '" + path[1] + "'", hint});
            return;
        }
    }
    Doc* node = &root;
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (!node->is_map()) {
            diags.push_back({where, "cannot set '" + path[i] + "': '" + path[i - 1] +
                                        "' is not a mapping", ""});
            return;
        }
        Entry* e = node->find(path[i]);
        if (!e) {
            Doc fresh;
            fresh.kind = Doc::Kind::map;
            fresh.loc = where;
            node->entries.push_back({path[i], where, std::move(fresh)});
            e = &node->entries.back();
        }
        if (i + 1 == path.size()) e->value = std::move(value);
        node = &e->value;
    }
}

// ---------------------------------------------------------------------------------------------
// ${var} substitution

bool is_ident(const std::string& s) {
    if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

bool from_override(const SourceLoc& l) { return l.line == 0 && l.file.rfind("--set ", 0) == 0; }

class Substituter {
public:
    explicit Substituter(Diags& diags) : diags_(diags) {}

    void define(const std::string& name, const Doc& value) { vars_[name] = value; order_.push_back(name); }

    void apply(Doc& d) {
        switch (d.kind) {
            case Doc::Kind::null: return;
            case Doc::Kind::seq: for (auto& i : d.items) apply(i); return;
            case Doc::Kind::map: for (auto& e : d.entries) apply(e.value); return;
            case Doc::Kind::scalar: break;
        }
        const std::string& t = d.text;
        if (t.find("${") == std::string::npos) return;
        if (t.size() > 3 && t.rfind("${", 0) == 0 && t.back() == '}' &&
            t.find('}') == t.size() - 1) {
            // The whole value: the var's node replaces it, type and all.
            const Doc* v = lookup(t.substr(2, t.size() - 3), d.loc);
            if (!v) { d.bad = true; return; }
            const SourceLoc use = d.loc;
            d = *v;
            if (!from_override(v->loc)) relocate(d, use);
            return;
        }
        std::string out;
        std::size_t pos = 0;
        while (true) {
            const auto open = t.find("${", pos);
            if (open == std::string::npos) { out += t.substr(pos); break; }
            const auto close = t.find('}', open);
            if (close == std::string::npos) {
                diags_.push_back({d.loc, "unterminated '${' in '" + t + "'",
                                  "write ${name} with a name defined under vars:"});
                d.bad = true;
                return;
            }
            out += t.substr(pos, open - pos);
            const std::string name = t.substr(open + 2, close - open - 2);
            const Doc* v = lookup(name, d.loc);
            if (!v) { d.bad = true; return; }
            if (v->kind == Doc::Kind::seq || v->kind == Doc::Kind::map) {
                diags_.push_back({d.loc, "variable '" + name + "' is " + kind_word(*v) +
                                             " and cannot be part of the text '" + t + "'",
                                  "write the value as exactly ${" + name + "} to use a list"});
                d.bad = true;
                return;
            }
            out += v->text;
            pos = close + 1;
        }
        d.text = out;
    }

private:
    const Doc* lookup(const std::string& name, const SourceLoc& loc) {
        auto it = vars_.find(name);
        if (it != vars_.end()) return &it->second;
        std::string hint = did_you_mean(name, order_);
        if (hint.empty())
            hint = order_.empty() ? "define it under vars:" : "vars: defines " + join(order_);
        diags_.push_back({loc, "unknown variable '" + name + "'", hint});
        return nullptr;
    }
    static void relocate(Doc& d, const SourceLoc& loc) {
        d.loc = loc;
        for (auto& i : d.items) relocate(i, loc);
        for (auto& e : d.entries) { e.key_loc = loc; relocate(e.value, loc); }
    }
    Diags& diags_;
    std::map<std::string, Doc> vars_;
    std::vector<std::string> order_;
};

// ---------------------------------------------------------------------------------------------
// Scalars → values

std::optional<std::int64_t> parse_int(const std::string& s) {
    std::int64_t v = 0;
    const char* b = s.data();
    const char* e = s.data() + s.size();
    if (b != e && *b == '+') ++b;
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec != std::errc() || p != e || b == e) return std::nullopt;
    return v;
}

std::optional<double> parse_float(const std::string& s) {
    double v = 0;
    const char* b = s.data();
    const char* e = s.data() + s.size();
    if (b != e && *b == '+') ++b;
    if (b == e || std::isalpha(static_cast<unsigned char>(*b))) return std::nullopt;  // inf, nan
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec != std::errc() || p != e) return std::nullopt;
    return v;
}

std::optional<bool> parse_bool(const std::string& s) {
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    return std::nullopt;
}

// What a scalar looks like on its own (for messages and typing).
ParamValue natural(const Doc& d) {
    if (d.kind == Doc::Kind::seq) {
        std::vector<std::string> l;
        for (const auto& i : d.items) l.push_back(i.is_scalar() ? i.text : kind_word(i));
        return l;
    }
    if (d.kind == Doc::Kind::map) return std::string("a mapping");
    if (d.kind == Doc::Kind::null) return std::string();
    if (auto b = parse_bool(d.text)) return *b;
    if (auto i = parse_int(d.text)) return *i;
    if (auto f = parse_float(d.text)) return *f;
    return d.text;
}

// Converts to the spec's kind; on failure returns the value as found (check() then explains).
ParamValue to_param(const ParamSpec& spec, const Doc& d) {
    const ParamValue n = natural(d);
    switch (spec.kind) {
        case ParamKind::boolean:
        case ParamKind::integer:
            return n;
        case ParamKind::number:
            if (auto* i = std::get_if<std::int64_t>(&n)) return static_cast<double>(*i);
            return n;
        case ParamKind::string:
            if (d.kind == Doc::Kind::scalar || d.kind == Doc::Kind::null) return d.text;
            return n;
        case ParamKind::string_list: {
            if (d.kind == Doc::Kind::null) return std::vector<std::string>{};
            if (d.kind == Doc::Kind::scalar) return std::vector<std::string>{d.text};
            if (d.kind == Doc::Kind::map) return n;
            std::vector<std::string> l;
            for (const auto& i : d.items) {
                if (!i.is_scalar()) return std::string("a list of " + kind_word(i).substr(2) + "s");
                l.push_back(i.text);
            }
            return l;
        }
    }
    return n;
}

// ---------------------------------------------------------------------------------------------
// Reading the sections

class Reader {
public:
    Reader(const Registry& registry, Diags& diags) : registry_(registry), diags_(diags) {}
    std::filesystem::path base_dir_;  // relative paths in the file start here

    void read(const Doc& root, GraphDef& g) {
        if (!root.is_map()) {
            diags_.push_back({root.loc, "a graph file must be a mapping with 'stages:', got " +
                                            kind_word(root),
                              "start from an example in graphs/"});
            return;
        }
        const Entry* stages = nullptr;
        const Entry* train = nullptr;
        // base_dir first: the plug-in paths below resolve against it.
        if (const Entry* b = root.find("base_dir"); b && !b->value.bad) {
            if (b->value.is_scalar() && !b->value.text.empty()) {
                std::filesystem::path p(b->value.text);
                g.base_dir = p.is_relative() ? (g.base_dir / p).lexically_normal() : p;
            } else {
                error(b->value.loc, "'base_dir' must be a folder path, got " + kind_word(b->value));
            }
        }
        base_dir_ = g.base_dir;
        for (const auto& e : root.entries) {
            if (e.value.bad) continue;  // an unknown ${var}: reported already
            if (e.key == "base_dir") {
                // read above
            } else if (e.key == "experiment") {
                if (e.value.is_scalar()) g.experiment = e.value.text;
                else error(e.value.loc, "'experiment' must be a name, got " + kind_word(e.value));
            } else if (e.key == "description" || e.key == "vars") {
                // description: for people; vars: already substituted
            } else if (e.key == "seed") {
                read_int(e.value, "'seed'", std::nullopt, g.seed);
            } else if (e.key == "plugins") {
                read_plugins(e.value, g);
            } else if (e.key == "stages") {
                stages = &e;
            } else if (e.key == "train") {
                train = &e;
            } else {
                unknown_key(e, "unknown top-level key '" + e.key + "'", kTopKeys);
            }
        }
        if (!stages) {
            error(root.loc, "the graph has no 'stages:'",
                  "add stages: with one mapping per stage, e.g. stages: {corpus: {type: ...}}");
        } else {
            read_stages(*stages, g);
        }
        if (train) read_train(*train, g);
    }

private:
    void error(const SourceLoc& loc, std::string msg, std::string hint = {}) {
        diags_.push_back({loc, std::move(msg), std::move(hint)});
    }
    void unknown_key(const Entry& e, std::string msg, const std::vector<std::string>& keys) {
        std::string hint = did_you_mean(e.key, keys);
        if (hint.empty()) hint = "expected one of: " + join(keys);
        error(e.key_loc, std::move(msg), std::move(hint));
    }

    bool read_int(const Doc& d, const std::string& what, std::optional<std::int64_t> min,
                  std::int64_t& out) {
        const auto v = d.is_scalar() ? parse_int(d.text) : std::nullopt;
        if (!v) {
            error(d.loc, what + " must be an integer, got " + kind_word(d));
            return false;
        }
        if (min && *v < *min) {
            error(d.loc, what + " must be >= " + std::to_string(*min) + ", got " + d.text);
            return false;
        }
        out = *v;
        return true;
    }

    void read_plugins(const Doc& d, GraphDef& g) {
        std::vector<const Doc*> items;
        if (d.is_scalar()) items.push_back(&d);
        else if (d.kind == Doc::Kind::seq) for (const auto& i : d.items) items.push_back(&i);
        else if (d.kind != Doc::Kind::null)
            error(d.loc, "'plugins' must be a list of files, got " + kind_word(d));
        for (const Doc* i : items) {
            if (!i->is_scalar()) {
                error(i->loc, "a plug-in must be a file path, got " + kind_word(*i));
                continue;
            }
            // A bare name is looked up on the plug-in search path when loaded.
            g.plugins.push_back(find_plugin_spec(i->text, g.base_dir));
        }
    }

    void read_train(const Entry& e, GraphDef& g) {
        TrainDef& t = g.train;
        t.loc = e.key_loc;
        if (e.value.kind == Doc::Kind::null) return;
        if (!e.value.is_map()) {
            error(e.value.loc, "'train' must be a mapping, got " + kind_word(e.value),
                  "e.g. train: {epochs: 10, keep: best(ppl.valid)}");
            return;
        }
        for (const auto& k : e.value.entries) {
            const Doc& v = k.value;
            if (has_bad(v)) continue;
            const std::string what = "train: '" + k.key + "'";
            if (k.key == "epochs") read_int(v, what, 1, t.epochs);
            else if (k.key == "threads") read_int(v, what, 0, t.threads);
            else if (k.key == "max_batches") read_int(v, what, 0, t.max_batches);
            else if (k.key == "prefetch") read_int(v, what, 1, t.prefetch);
            else if (k.key == "log_every") read_int(v, what, 0, t.log_every);
            else if (k.key == "sample_length") read_int(v, what, 0, t.sample_length);
            else if (k.key == "checkpoint_every") read_int(v, what, 0, t.checkpoint_every);
            else if (k.key == "checkpoint_seconds") read_int(v, what, 0, t.checkpoint_seconds);
            else if (k.key == "max_skipped") read_int(v, what, 1, t.max_skipped);
            else if (k.key == "nonfinite") {
                if (v.is_scalar() && (v.text == "stop" || v.text == "skip_batch")) t.nonfinite = v.text;
                else error(v.loc, what + " must be stop or skip_batch, got " + kind_word(v),
                           "stop ends the run at the first NaN/Inf; skip_batch drops that batch's update");
            }
            else if (k.key == "test") {
                const auto b = v.is_scalar() ? parse_bool(v.text) : std::nullopt;
                if (b) t.test = *b;
                else error(v.loc, what + " must be true or false, got " + kind_word(v));
            } else if (k.key == "keep") read_keep(v, g);
            else if (k.key == "early_stopping") read_early_stopping(k, t);
            else unknown_key(k, "unknown key '" + k.key + "' in train", kTrainKeys);
        }
        if (const Entry* es = e.value.find("early_stopping"); es && t.patience > 0 && t.keep_metric.empty())
            error(es->key_loc, "train: 'early_stopping' watches the metric of keep: best(...), and keep is last",
                  "set keep: best(<stage>.<split>), e.g. keep: best(ppl.valid)");
    }

    // early_stopping: N (patience), or {patience: N, min_delta: X}; null: off.
    void read_early_stopping(const Entry& k, TrainDef& t) {
        const Doc& v = k.value;
        const std::string hint = "e.g. early_stopping: {patience: 5, min_delta: 0.01}, or early_stopping: 5";
        if (v.kind == Doc::Kind::null) return;
        if (v.is_scalar()) {
            read_int(v, "train: 'early_stopping' (patience)", 1, t.patience);
            return;
        }
        if (!v.is_map()) {
            error(v.loc, "train: 'early_stopping' must be a patience or a mapping, got " + kind_word(v), hint);
            return;
        }
        bool saw_patience = false;
        for (const auto& f : v.entries) {
            if (has_bad(f.value)) continue;
            if (f.key == "patience") {
                saw_patience = true;
                read_int(f.value, "train.early_stopping: 'patience'", 1, t.patience);
            }
            else if (f.key == "min_delta") {
                const auto d = f.value.is_scalar() ? parse_float(f.value.text) : std::nullopt;
                if (d && *d >= 0) t.min_delta = *d;
                else error(f.value.loc, "train.early_stopping: 'min_delta' must be a number >= 0, got " + kind_word(f.value));
            } else unknown_key(f, "unknown key '" + f.key + "' in train.early_stopping", {"patience", "min_delta"});
        }
        if (!saw_patience) error(k.key_loc, "train: 'early_stopping' needs a patience", hint);
    }

    void read_keep(const Doc& v, GraphDef& g) {
        const std::string hint = "write keep: last or keep: best(<stage>.<split>), e.g. best(ppl.valid)";
        const std::string text = v.is_scalar() ? v.text : std::string();
        if (text == "last") {
            g.train.keep_metric.clear();
            return;
        }
        const bool shaped = text.size() > 6 && text.rfind("best(", 0) == 0 && text.back() == ')';
        const auto parts = shaped ? split(text.substr(5, text.size() - 6), '.')
                                  : std::vector<std::string>{};
        const bool ok = (parts.size() == 2 || parts.size() == 3) &&
                        std::all_of(parts.begin(), parts.end(), [](auto& p) { return is_ident(p); });
        if (!ok) {
            error(v.loc, "train: 'keep' must be 'last' or 'best(<stage>.<split>)', got " +
                             kind_word(v), hint);
            return;
        }
        const std::vector<std::string> splits = {"train", "valid", "test"};
        if (std::find(splits.begin(), splits.end(), parts.back()) == splits.end()) {
            std::string h = did_you_mean(parts.back(), splits);
            error(v.loc, "train: 'keep' names split '" + parts.back() +
                             "'; splits are train, valid, test", h.empty() ? hint : h);
            return;
        }
        if (!ids_.empty() && std::find(ids_.begin(), ids_.end(), parts[0]) == ids_.end()) {
            std::string h = did_you_mean(parts[0], ids_);
            error(v.loc, "train: 'keep' names unknown stage '" + parts[0] + "'",
                  h.empty() ? "stages: " + join(ids_) : h);
            return;
        }
        g.train.keep_metric = parts.size() == 3 ? parts[0] + "." + parts[1] : parts[0];
        g.train.keep_split = parts.back();
    }

    void read_stages(const Entry& se, GraphDef& g) {
        const Doc& m = se.value;
        if (!m.is_map() || m.entries.empty()) {
            error(m.is_map() ? se.key_loc : m.loc,
                  "'stages' must be a mapping of stage id to stage, got " + kind_word(m),
                  "e.g. stages: {corpus: {type: text_file, train: [a.txt]}}");
            return;
        }
        // Pass 1: ids and types, so inputs may name stages further down.
        for (const auto& e : m.entries) {
            ids_.push_back(e.key);
            schemas_.push_back(nullptr);
            StageDef s;
            s.id = e.key;
            s.loc = e.key_loc;
            if (!is_ident(e.key) || e.key.find('-') != std::string::npos) {
                error(e.key_loc, "stage id '" + e.key + "' must be a name of letters, digits and _",
                      "stage ids are used as stage or stage.port, so they cannot hold '.'");
            }
            if (!e.value.is_map()) {
                error(e.value.loc, "stage '" + e.key + "' must be a mapping with 'type:', got " +
                                       kind_word(e.value),
                      "e.g. " + e.key + ": {type: lstm, in: embed}");
            } else if (const Entry* t = e.value.find("type"); !t) {
                error(e.key_loc, "stage '" + e.key + "' has no 'type'",
                      "add type: <stage type>; `rnnflow stages` lists them");
            } else if (!t->value.is_scalar()) {
                error(t->value.loc, "stage '" + e.key + "': 'type' must be a name, got " +
                                        kind_word(t->value));
            } else {
                s.type = t->value.text;
                if (const StageType* st = registry_.find(s.type)) {
                    schemas_.back() = &st->schema;
                } else {
                    std::string hint = did_you_mean(s.type, registry_.names());
                    if (hint.empty()) hint = "`rnnflow stages` lists every stage type";
                    error(t->value.loc, "stage '" + e.key + "': unknown stage type '" + s.type + "'",
                          hint);
                }
            }
            g.stages.push_back(std::move(s));
        }
        // Pass 2: ports and parameters.
        for (std::size_t i = 0; i < m.entries.size(); ++i)
            if (schemas_[i]) read_stage(m.entries[i], *schemas_[i], g.stages[i]);
    }

    static bool has_bad(const Doc& d) {
        if (d.bad) return true;
        for (const auto& i : d.items)
            if (has_bad(i)) return true;
        for (const auto& e : d.entries)
            if (has_bad(e.value)) return true;
        return false;
    }

    int find_id(const std::string& id) const {
        for (std::size_t i = 0; i < ids_.size(); ++i)
            if (ids_[i] == id) return static_cast<int>(i);
        return -1;
    }

    void read_stage(const Entry& e, const StageSchema& schema, StageDef& s) {
        const std::string who = "stage '" + s.id + "' (" + s.type + "): ";
        for (const auto& k : e.value.entries) {
            if (k.key == "type" || has_bad(k.value)) continue;
            if (k.key == "init" && !schema.find_input("init") && !schema.find_param("init")) {
                read_init(who, schema, k, s);
            } else if (const PortSpec* in = schema.find_input(k.key)) {
                read_input(who, *in, k.value, s);
            } else if (const ParamSpec* p = schema.find_param(k.key)) {
                read_param(who, *p, k.value, s);
            } else {
                unknown_key(k, who + "unknown key '" + k.key + "'", schema.keys());
            }
        }
        for (const auto& spec : schema.params()) {
            if (s.params.has(spec.name)) continue;
            if (s.refs.count(spec.name)) continue;
            if (e.value.find(spec.name)) continue;  // written but wrong: reported where written
            if (spec.default_value) {
                s.params.set(spec.name, *spec.default_value);
            } else {
                std::string hint = "'" + spec.name + "' (" + to_string(spec.kind) + ")";
                hint += spec.doc.empty() ? " has no default" : " is " + spec.doc;
                error(s.loc, who + "missing parameter '" + spec.name + "'", hint);
            }
        }
    }

    void read_init(const std::string& who, const StageSchema& schema, const Entry& k, StageDef& s) {
        const Doc& v = k.value;
        if (schema.role() != Role::model) {
            error(k.key_loc, who + "'init' sets weights, and a " + to_string(schema.role()) +
                                 " stage has none",
                  "init: {from: FILE} goes on model stages such as lstm, embedding or linear");
            return;
        }
        if (!v.is_map()) {
            error(v.loc, who + "'init' must be a mapping, got " + kind_word(v),
                  "e.g. init: {from: weights.safetensors, prefix: rnn.}");
            return;
        }
        InitDef init;
        init.loc = k.key_loc;
        for (const auto& f : v.entries) {
            if (!f.value.is_scalar()) {
                error(f.value.loc, who + "init '" + f.key + "' must be text, got " + kind_word(f.value));
            } else if (f.key == "from") {
                std::filesystem::path p(f.value.text);
                init.from = (p.is_relative() ? base_dir_ / p : p).lexically_normal().string();
            } else if (f.key == "prefix") {
                init.prefix = f.value.text;
                init.has_prefix = true;
            } else if (f.key == "freeze") {
                if (const auto b = parse_bool(f.value.text)) init.freeze = *b;
                else error(f.value.loc, who + "init 'freeze' must be true or false, got '" + f.value.text + "'");
            } else {
                unknown_key(f, who + "init: unknown key '" + f.key + "'", {"from", "prefix", "freeze"});
            }
        }
        if (init.from.empty()) {
            error(v.loc, who + "init needs 'from:', the safetensors file to read",
                  "e.g. init: {from: runs/lm/<time>/checkpoints/best.safetensors}");
            return;
        }
        s.init = std::move(init);
    }

    void read_input(const std::string& who, const PortSpec& in, const Doc& v, StageDef& s) {
        if (!v.is_scalar()) {
            error(v.loc, who + "input '" + in.name + "' must name a stage or stage.port, got " +
                             kind_word(v));
            return;
        }
        const auto dot = v.text.find('.');
        const std::string pid = v.text.substr(0, dot);
        const int p = find_id(pid);
        if (p < 0) {
            std::string hint = did_you_mean(pid, ids_);
            if (hint.empty()) hint = "stages: " + join(ids_);
            error(v.loc, who + "input '" + in.name + "' names unknown stage '" + pid + "'", hint);
            return;
        }
        InputRef ref{pid, "", v.loc};
        const StageSchema* ps = schemas_[static_cast<std::size_t>(p)];
        if (!ps) return;  // its type is unknown: reported already
        std::vector<std::string> outs;
        for (const auto& o : ps->outputs()) outs.push_back(o.name);
        const std::string producer = "stage '" + pid + "' (" + ps->type() + ")";
        if (dot != std::string::npos) {
            ref.port = v.text.substr(dot + 1);
            if (!ps->find_output(ref.port)) {
                std::string hint = did_you_mean(ref.port, outs);
                if (hint.empty())
                    hint = outs.empty() ? producer + " has no outputs" : "its outputs: " + join(outs);
                error(v.loc, who + "input '" + in.name + "': " + producer + " has no output '" +
                                 ref.port + "'",
                      hint);
                return;
            }
        } else if (outs.size() == 1) {
            ref.port = outs[0];
        } else if (ps->find_output("out")) {
            ref.port = "out";
        } else {
            std::vector<std::string> full;
            for (const auto& o : outs) full.push_back("'" + pid + "." + o + "'");
            error(v.loc,
                  who + "input '" + in.name + "': " + producer +
                      (outs.empty() ? " has no outputs" : " has several outputs (" + join(outs) + ")"),
                  outs.empty() ? "" : "name one: " + join(full, " or "));
            return;
        }
        s.inputs[in.name] = std::move(ref);
    }

    void read_param(const std::string& who, const ParamSpec& spec, const Doc& v, StageDef& s) {
        if (spec.allow_ref && v.is_scalar() && !parse_int(v.text) && v.text.find('.') != std::string::npos) {
            read_ref(who, spec, v, s);
            return;
        }
        const ParamValue pv = to_param(spec, v);
        const std::string problem = StageSchema::check(spec, pv);
        if (!problem.empty()) {
            std::string hint = spec.doc.empty() ? "" : "'" + spec.name + "' is " + spec.doc;
            if (spec.allow_ref && !std::holds_alternative<std::int64_t>(pv))
                hint += std::string(hint.empty() ? "" : "; ") + "it may also be written stage.value, e.g. vocab.size";
            error(v.loc, who + "'" + spec.name + "' " + problem, hint);
            return;
        }
        s.params.set(spec.name, pv, v.loc);
    }

    void read_ref(const std::string& who, const ParamSpec& spec, const Doc& v, StageDef& s) {
        const auto dot = v.text.find('.');
        const std::string sid = v.text.substr(0, dot);
        const std::string val = v.text.substr(dot + 1);
        const int p = find_id(sid);
        if (p < 0) {
            std::string hint = did_you_mean(sid, ids_);
            if (hint.empty()) hint = "stages: " + join(ids_);
            error(v.loc, who + "'" + spec.name + "' refers to unknown stage '" + sid + "'", hint);
            return;
        }
        const StageSchema* ps = schemas_[static_cast<std::size_t>(p)];
        if (!ps) return;
        if (!ps->find_value(val)) {
            std::vector<std::string> vals;
            for (const auto& x : ps->values()) vals.push_back(x.name);
            std::string hint = did_you_mean(val, vals);
            if (hint.empty())
                hint = vals.empty() ? "stage '" + sid + "' (" + ps->type() + ") gives no values"
                                    : "its values: " + join(vals);
            error(v.loc, who + "'" + spec.name + "': stage '" + sid + "' (" + ps->type() +
                             ") has no value '" + val + "'",
                  hint);
            return;
        }
        s.refs[spec.name] = ValueRef{sid, val, v.loc};
        // Resolved after prepare; until then the parameter holds 0 where it was written.
        s.params.set(spec.name, std::int64_t{0}, v.loc);
    }

    const Registry& registry_;
    Diags& diags_;
    std::vector<std::string> ids_;
    std::vector<const StageSchema*> schemas_;
};

// ---------------------------------------------------------------------------------------------
// Emitting the resolved file

void emit(YAML::Emitter& out, const Doc& d, bool flow) {
    switch (d.kind) {
        case Doc::Kind::null:
            out << YAML::Null;
            break;
        case Doc::Kind::scalar:
            if (d.quoted) out << YAML::DoubleQuoted << d.text;
            else out << d.text;
            break;
        case Doc::Kind::seq:
            out << YAML::Flow << YAML::BeginSeq;
            for (const auto& i : d.items) emit(out, i, true);
            out << YAML::EndSeq;
            break;
        case Doc::Kind::map:
            if (flow) out << YAML::Flow;
            out << YAML::BeginMap;
            for (const auto& e : d.entries) {
                out << YAML::Key << e.key << YAML::Value;
                emit(out, e.value, flow);
            }
            out << YAML::EndMap;
            break;
    }
}

std::string emit_resolved(const Doc& root, const std::filesystem::path& base_dir) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    // The resolved file lives in a run folder: relative paths must still start where the
    // original file's did.
    std::error_code ec;
    const std::filesystem::path abs = std::filesystem::absolute(base_dir, ec).lexically_normal();
    out << YAML::Key << "base_dir" << YAML::Value << YAML::DoubleQuoted << (ec ? base_dir : abs).string();
    for (const auto& e : root.entries) {
        if (e.key == "base_dir") continue;
        out << YAML::Key << e.key << YAML::Value;
        if (e.key == "stages" && e.value.is_map()) {
            // One line per stage, as people write them.
            out << YAML::BeginMap;
            for (const auto& s : e.value.entries) {
                out << YAML::Key << s.key << YAML::Value;
                emit(out, s.value, true);
            }
            out << YAML::EndMap;
        } else {
            emit(out, e.value, e.key == "train" || e.key == "vars");
        }
    }
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

void throw_if(Diags& diags) {
    if (diags.empty()) return;
    // File order: --set problems (no line) first, then by line and column.
    std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::pair(a.loc.line, a.loc.col) < std::pair(b.loc.line, b.loc.col);
    });
    throw LoadError(std::move(diags));
}

}  // namespace

const StageDef* GraphDef::find(const std::string& id) const {
    const int i = index(id);
    return i < 0 ? nullptr : &stages[static_cast<std::size_t>(i)];
}

int GraphDef::index(const std::string& id) const {
    for (std::size_t i = 0; i < stages.size(); ++i)
        if (stages[i].id == id) return static_cast<int>(i);
    return -1;
}

std::optional<Diagnostic> text_problem(const std::string& text, const std::string& name) {
    constexpr std::size_t kMaxBytes = std::size_t{16} << 20;
    if (text.size() > kMaxBytes)
        return Diagnostic{SourceLoc{name, 0, 0},
                          "the file is " + std::to_string(text.size()) + " bytes; graph and sweep files are at most " +
                              std::to_string(kMaxBytes) + " (16 MiB)",
                          "is this the right file? data goes in files the graph names, not in the graph"};
    int line = 1, col = 1;
    auto at = [&](const std::string& what, const std::string& hint) {
        return Diagnostic{SourceLoc{name, line, col}, what, hint};
    };
    const std::size_t start = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;  // a UTF-8 byte-order mark
    if (text.rfind("\xFF\xFE", 0) == 0 || text.rfind("\xFE\xFF", 0) == 0)
        return at("the file is UTF-16 text (it starts with a UTF-16 byte-order mark)",
                  "graph and sweep files are UTF-8; convert it, e.g. iconv -f utf-16 -t utf-8");
    const std::optional<Utf8Problem> p = find_utf8_problem(text, start);
    if (!p) return std::nullopt;
    line = static_cast<int>(p->line);
    col = static_cast<int>(p->col);
    switch (p->kind) {
    case Utf8Problem::Kind::nul: return at("NUL byte: this is a binary file, not YAML text", "give the graph's .yaml file");
    case Utf8Problem::Kind::truncated:
        return at("truncated UTF-8 sequence at end of file", "graph and sweep files are UTF-8; is the file complete?");
    case Utf8Problem::Kind::invalid: break;
    }
    return at("invalid UTF-8 byte " + p->byte_hex(), "graph and sweep files are UTF-8; convert it, e.g. iconv -f latin1 -t utf-8");
}

GraphDef load_graph_text(const std::string& text, const std::string& name,
                         const std::filesystem::path& base_dir,
                         const std::vector<std::string>& overrides, const Registry& registry) {
    if (auto bad = text_problem(text, name)) throw LoadError({*bad});
    Diags diags;
    Doc root;
    try {
        std::string protected_text = text;
        const Rewrites rw = protect_vars(protected_text);
        root = from_yaml(YAML::Load(protected_text), name, nullptr, rw, diags);
    } catch (const YAML::DeepRecursion& e) {
        throw LoadError({Diagnostic{mark_loc(name, e.mark), "YAML nested too deeply (the parser gives up at recursion depth " + std::to_string(e.depth()) + ")",
                                    "graph files nest a few levels; is this the right file?"}});
    } catch (const YAML::ParserException& e) {
        throw LoadError({Diagnostic{mark_loc(name, e.mark), e.msg,
                                    "check indentation, colons and closing brackets here or just above"}});
    }
    if (root.kind == Doc::Kind::null) root.loc = SourceLoc{name, 1, 1};

    for (const auto& ov : overrides) apply_override(root, ov, diags);

    if (root.is_map()) {
        Substituter sub(diags);
        if (Entry* vars = root.find("vars")) {
            if (vars->value.is_map()) {
                for (auto& e : vars->value.entries) {
                    sub.apply(e.value);
                    sub.define(e.key, e.value);
                }
            } else if (vars->value.kind != Doc::Kind::null) {
                diags.push_back({vars->value.loc, "'vars' must be a mapping of names to values, got " +
                                                      kind_word(vars->value),
                                 "e.g. vars: {hidden: 256}"});
            }
        }
        for (auto& e : root.entries)
            if (e.key != "vars" && e.key != "description") sub.apply(e.value);
    }

    GraphDef g;
    g.file = name;
    g.base_dir = base_dir;
    g.experiment = std::filesystem::path(name).stem().string();
    Reader(registry, diags).read(root, g);
    throw_if(diags);
    // resolved.yaml lives in the run folder: plug-in paths must not depend on the graph's folder.
    if (Entry* pl = root.find("plugins")) {
        auto fix = [&](Doc& d) {
            if (d.is_scalar()) d.text = find_plugin_spec(d.text, std::filesystem::absolute(g.base_dir));
        };
        if (pl->value.kind == Doc::Kind::seq) for (auto& i : pl->value.items) fix(i);
        else fix(pl->value);
    }
    g.resolved_yaml = emit_resolved(root, g.base_dir);
    return g;
}

namespace {
// The folder relative paths in a graph file start at.
std::filesystem::path graph_dir(const std::filesystem::path& file) {
    const std::filesystem::path dir = file.parent_path();
    return dir.empty() ? std::filesystem::path(".") : dir;
}
}  // namespace

GraphDef load_graph(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                    const Registry& registry) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw LoadError({Diagnostic{SourceLoc{file.string(), 0, 0}, "cannot read the graph file",
                                    "check the path"}});
    std::ostringstream ss;
    ss << in.rdbuf();
    return load_graph_text(ss.str(), file.string(), graph_dir(file), overrides, registry);
}

void load_graph_plugins(const std::filesystem::path& file, Registry& registry) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return;
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    if (text_problem(text, file.string())) return;
    // As load_graph reads them (read_plugins): one scalar or a list; anything else is its error.
    std::vector<std::string> specs;
    try {
        const YAML::Node root = YAML::Load(text);
        const YAML::Node list = root.IsMap() && root["plugins"] ? root["plugins"] : YAML::Node();
        if (list.IsScalar()) specs.push_back(list.Scalar());
        else if (list.IsSequence())
            for (const auto& p : list)
                if (p.IsScalar()) specs.push_back(p.Scalar());
    } catch (const YAML::Exception&) {
        return;
    }
    for (const auto& spec : specs) load_plugin(registry, spec, graph_dir(file));
}

}  // namespace rnnflow
