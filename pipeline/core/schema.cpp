#include "schema.hpp"

#include <cmath>
#include <sstream>

namespace rnnflow {

const char* to_string(PortType t) {
    switch (t) {
        case PortType::text: return "text";
        case PortType::tokens: return "tokens";
        case PortType::sequences: return "sequences";
        case PortType::frames: return "frames";
        case PortType::vocab: return "vocab";
        case PortType::ids: return "ids";
        case PortType::tensor: return "tensor";
        case PortType::state: return "state";
        case PortType::loss: return "loss";
    }
    return "?";
}

std::optional<PortType> port_type_from_string(const std::string& s) {
    for (auto t : {PortType::text, PortType::tokens, PortType::sequences, PortType::frames,
                   PortType::vocab, PortType::ids, PortType::tensor, PortType::state, PortType::loss})
        if (s == to_string(t)) return t;
    return std::nullopt;
}

bool is_dataset_type(PortType t) {
    return t == PortType::text || t == PortType::tokens || t == PortType::sequences ||
           t == PortType::frames || t == PortType::vocab;
}

const char* to_string(Role r) {
    switch (r) {
        case Role::data: return "data";
        case Role::source: return "source";
        case Role::model: return "model";
        case Role::optimizer: return "optimizer";
        case Role::metric: return "metric";
        case Role::sampler: return "sampler";
    }
    return "?";
}

const char* to_string(ParamKind k) {
    switch (k) {
        case ParamKind::boolean: return "bool";
        case ParamKind::integer: return "int";
        case ParamKind::number: return "float";
        case ParamKind::string: return "string";
        case ParamKind::string_list: return "list of strings";
    }
    return "?";
}

static std::string num_str(double d) {
    std::ostringstream os;
    os.precision(10);
    os << d;
    return os.str();
}

std::string value_str(const ParamValue& v) {
    struct V {
        std::string operator()(bool b) const { return b ? "true" : "false"; }
        std::string operator()(std::int64_t i) const { return std::to_string(i); }
        std::string operator()(double d) const { return num_str(d); }
        std::string operator()(const std::string& s) const { return s.empty() ? "\"\"" : s; }
        std::string operator()(const std::vector<std::string>& l) const {
            std::string out = "[";
            for (std::size_t i = 0; i < l.size(); ++i) out += (i ? ", " : "") + l[i];
            return out + "]";
        }
    };
    return std::visit(V{}, v);
}

StageSchema::StageSchema(std::string type, std::string summary, Role role)
    : type_(std::move(type)), summary_(std::move(summary)), role_(role) {}

StageSchema& StageSchema::input(std::string name, PortType type, std::string doc) {
    inputs_.push_back({std::move(name), type, std::move(doc), false});
    return *this;
}
StageSchema& StageSchema::optional_input(std::string name, PortType type, std::string doc) {
    inputs_.push_back({std::move(name), type, std::move(doc), true});
    return *this;
}
StageSchema& StageSchema::output(std::string name, PortType type, std::string doc) {
    outputs_.push_back({std::move(name), type, std::move(doc), false});
    return *this;
}
StageSchema& StageSchema::add_param(ParamSpec p) {
    params_.push_back(std::move(p));
    return *this;
}
StageSchema& StageSchema::param_bool(std::string name, bool def, std::string doc) {
    return add_param({std::move(name), ParamKind::boolean, ParamValue(def), {}, {}, std::move(doc)});
}
StageSchema& StageSchema::param_int(std::string name, std::int64_t def, Range r, std::string doc) {
    return add_param({std::move(name), ParamKind::integer, ParamValue(def), r, {}, std::move(doc)});
}
StageSchema& StageSchema::param_float(std::string name, double def, Range r, std::string doc) {
    return add_param({std::move(name), ParamKind::number, ParamValue(def), r, {}, std::move(doc)});
}
StageSchema& StageSchema::param_string(std::string name, std::string def, std::string doc) {
    return add_param({std::move(name), ParamKind::string, ParamValue(std::move(def)), {}, {}, std::move(doc)});
}
StageSchema& StageSchema::param_choice(std::string name, std::string def, OneOf choices, std::string doc) {
    return add_param({std::move(name), ParamKind::string, ParamValue(std::move(def)), {},
                      std::move(choices), std::move(doc)});
}
StageSchema& StageSchema::param_list(std::string name, std::vector<std::string> def, std::string doc) {
    return add_param({std::move(name), ParamKind::string_list, ParamValue(std::move(def)), {}, {}, std::move(doc)});
}
StageSchema& StageSchema::param_list(std::string name, std::vector<std::string> def, OneOf choices,
                                      std::string doc) {
    return add_param({std::move(name), ParamKind::string_list, ParamValue(std::move(def)), {},
                      std::move(choices), std::move(doc)});
}
StageSchema& StageSchema::required_int(std::string name, Range r, std::string doc) {
    return add_param({std::move(name), ParamKind::integer, std::nullopt, r, {}, std::move(doc)});
}
StageSchema& StageSchema::required_string(std::string name, std::string doc) {
    return add_param({std::move(name), ParamKind::string, std::nullopt, {}, {}, std::move(doc)});
}
StageSchema& StageSchema::allow_ref() {
    RNNFLOW_ASSERT(!params_.empty() && params_.back().kind == ParamKind::integer);
    params_.back().allow_ref = true;
    return *this;
}
StageSchema& StageSchema::value(std::string name, std::string doc) {
    values_.push_back({std::move(name), std::move(doc)});
    return *this;
}
StageSchema& StageSchema::differentiable(bool d) {
    differentiable_ = d;
    return *this;
}
StageSchema& StageSchema::details(std::string text) {
    details_ = std::move(text);
    return *this;
}

template <class V>
static const V* find_named(const std::vector<V>& v, const std::string& name) {
    for (const auto& x : v)
        if (x.name == name) return &x;
    return nullptr;
}
const PortSpec* StageSchema::find_input(const std::string& n) const { return find_named(inputs_, n); }
const PortSpec* StageSchema::find_output(const std::string& n) const { return find_named(outputs_, n); }
const ParamSpec* StageSchema::find_param(const std::string& n) const { return find_named(params_, n); }
const ValueSpec* StageSchema::find_value(const std::string& n) const { return find_named(values_, n); }
int StageSchema::input_index(const std::string& n) const {
    for (std::size_t i = 0; i < inputs_.size(); ++i)
        if (inputs_[i].name == n) return static_cast<int>(i);
    return -1;
}
int StageSchema::output_index(const std::string& n) const {
    for (std::size_t i = 0; i < outputs_.size(); ++i)
        if (outputs_[i].name == n) return static_cast<int>(i);
    return -1;
}
std::vector<std::string> StageSchema::keys() const {
    std::vector<std::string> k{"type"};
    for (const auto& p : inputs_) k.push_back(p.name);
    for (const auto& p : params_) k.push_back(p.name);
    return k;
}

std::string StageSchema::check(const ParamSpec& spec, const ParamValue& v) {
    auto in_range = [&](double x) -> std::string {
        if (!spec.range) return {};
        if (std::isnan(x) || x < spec.range->lo || x > spec.range->hi)
            return "must be in [" + num_str(spec.range->lo) + ", " + num_str(spec.range->hi) +
                   "], got " + value_str(v);
        return {};
    };
    auto one_of = [&](const std::string& s) -> std::string {
        if (!spec.choices) return {};
        for (const auto& c : *spec.choices)
            if (c == s) return {};
        std::string all;
        for (std::size_t i = 0; i < spec.choices->size(); ++i)
            all += (i ? ", " : "") + (*spec.choices)[i];
        return "must be one of " + all + ", got '" + s + "'";
    };
    switch (spec.kind) {
        case ParamKind::boolean:
            if (!std::holds_alternative<bool>(v)) return "must be true or false, got " + value_str(v);
            return {};
        case ParamKind::integer:
            if (!std::holds_alternative<std::int64_t>(v)) return "must be an integer, got " + value_str(v);
            return in_range(static_cast<double>(std::get<std::int64_t>(v)));
        case ParamKind::number:
            if (std::holds_alternative<std::int64_t>(v))
                return in_range(static_cast<double>(std::get<std::int64_t>(v)));
            if (!std::holds_alternative<double>(v)) return "must be a number, got " + value_str(v);
            return in_range(std::get<double>(v));
        case ParamKind::string:
            if (!std::holds_alternative<std::string>(v)) return "must be a string, got " + value_str(v);
            return one_of(std::get<std::string>(v));
        case ParamKind::string_list:
            if (!std::holds_alternative<std::vector<std::string>>(v))
                return "must be a list of strings, got " + value_str(v);
            for (const auto& s : std::get<std::vector<std::string>>(v))
                if (auto e = one_of(s); !e.empty()) return e;
            return {};
    }
    return {};
}

void Params::set(const std::string& name, ParamValue v, SourceLoc loc) {
    values_[name] = std::move(v);
    locs_[name] = std::move(loc);
}
const ParamValue& Params::get(const std::string& name) const {
    auto it = values_.find(name);
    RNNFLOW_CHECK(it != values_.end(), "no parameter '", name, "'");
    return it->second;
}
SourceLoc Params::loc(const std::string& name) const {
    auto it = locs_.find(name);
    return it == locs_.end() ? SourceLoc{} : it->second;
}
bool Params::get_bool(const std::string& name) const { return std::get<bool>(get(name)); }
std::int64_t Params::get_int(const std::string& name) const { return std::get<std::int64_t>(get(name)); }
double Params::get_float(const std::string& name) const {
    const auto& v = get(name);
    if (std::holds_alternative<std::int64_t>(v)) return static_cast<double>(std::get<std::int64_t>(v));
    return std::get<double>(v);
}
const std::string& Params::get_string(const std::string& name) const { return std::get<std::string>(get(name)); }
const std::vector<std::string>& Params::get_list(const std::string& name) const {
    return std::get<std::vector<std::string>>(get(name));
}

Params default_params(const StageSchema& schema) {
    Params p;
    for (const auto& spec : schema.params())
        if (spec.default_value) p.set(spec.name, *spec.default_value);
    return p;
}

}  // namespace rnnflow
