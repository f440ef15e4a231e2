// What a stage type declares about itself, readable without creating it: ports, parameters,
// resolved values, role. `rnnflow stages`, validation, schema output and docs all come from here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "error.hpp"

namespace rnnflow {

// What an edge carries. Dataset types flow once per split in the prepare phase; batch types
// flow once per step.
enum class PortType {
    text,       // dataset: per split, a list of strings (lines or whole files)      TextSplit
    tokens,     // dataset: per split, token sequences                               TokenSplit
    sequences,  // dataset: per split, id sequences of one vocabulary                SequenceSplit
    frames,     // dataset: per split, one f32 matrix (rows, D) per item             FrameSplit
    vocab,      // dataset: a fitted vocabulary (PortInfo::vocab)
    ids,        // batch: i32 (T, N) + lengths; PortInfo::classes = number of ids
    tensor,     // batch: f32 (T, N, C) + lengths; PortInfo::channels = C
    state,      // batch: f32 (S, L*D, N, C) recurrent state (S = 2 for LSTM h and c)
    loss,       // batch: f32 (2) = (sum of per-item losses, number of items); objective = sum/count
};
const char* to_string(PortType t);
std::optional<PortType> port_type_from_string(const std::string& s);
bool is_dataset_type(PortType t);

enum class Role {
    data,       // transforms datasets in the prepare phase (readers, tokenisers, vocabularies)
    source,     // turns datasets into a stream of batches (DataSource)
    model,      // per-batch forward (and backward when differentiable) (ModelStage)
    optimizer,  // updates the parameters upstream of a loss (OptimizerStage)
    metric,     // aggregates per split (MetricStage)
    sampler,    // drives the model in the infer phase (SamplerStage)
};
const char* to_string(Role r);

struct PortSpec {
    std::string name;
    PortType type;
    std::string doc;
    bool optional = false;  // inputs only: may stay unconnected
};

enum class ParamKind { boolean, integer, number, string, string_list };
const char* to_string(ParamKind k);

using ParamValue = std::variant<bool, std::int64_t, double, std::string, std::vector<std::string>>;
std::string value_str(const ParamValue& v);  // as a user would write it in YAML

struct Range {
    double lo;
    double hi;
};
using OneOf = std::vector<std::string>;

struct ParamSpec {
    std::string name;
    ParamKind kind;
    std::optional<ParamValue> default_value;  // none: the parameter is required
    std::optional<Range> range;               // integer and number
    std::optional<OneOf> choices;             // string (and each element of string_list)
    std::string doc;
    bool allow_ref = false;  // integer that may be written "stage.value" (e.g. vocab.size)
};

struct ValueSpec {
    std::string name;
    std::string doc;
};

class StageSchema {
public:
    StageSchema() = default;
    StageSchema(std::string type, std::string summary, Role role);

    StageSchema& input(std::string name, PortType type, std::string doc);
    StageSchema& optional_input(std::string name, PortType type, std::string doc);
    StageSchema& output(std::string name, PortType type, std::string doc);

    StageSchema& param_bool(std::string name, bool def, std::string doc);
    StageSchema& param_int(std::string name, std::int64_t def, Range r, std::string doc);
    StageSchema& param_float(std::string name, double def, Range r, std::string doc);
    StageSchema& param_string(std::string name, std::string def, std::string doc);
    StageSchema& param_choice(std::string name, std::string def, OneOf choices, std::string doc);
    StageSchema& param_list(std::string name, std::vector<std::string> def, std::string doc);
    // A list whose every element must be one of `choices`.
    StageSchema& param_list(std::string name, std::vector<std::string> def, OneOf choices, std::string doc);
    // Required (no default) variants.
    StageSchema& required_int(std::string name, Range r, std::string doc);
    StageSchema& required_string(std::string name, std::string doc);
    // The last added integer parameter may also be written as "stage.value".
    StageSchema& allow_ref();
    // A number known after prepare that other stages may refer to ("vocab.size").
    StageSchema& value(std::string name, std::string doc);
    StageSchema& differentiable(bool d = true);
    // Free text for the manual: formula, reference, what is not supported.
    StageSchema& details(std::string text);

    const std::string& type() const { return type_; }
    const std::string& summary() const { return summary_; }
    const std::string& details() const { return details_; }
    Role role() const { return role_; }
    bool is_differentiable() const { return differentiable_; }
    const std::vector<PortSpec>& inputs() const { return inputs_; }
    const std::vector<PortSpec>& outputs() const { return outputs_; }
    const std::vector<ParamSpec>& params() const { return params_; }
    const std::vector<ValueSpec>& values() const { return values_; }

    const PortSpec* find_input(const std::string& name) const;
    const PortSpec* find_output(const std::string& name) const;
    const ParamSpec* find_param(const std::string& name) const;
    const ValueSpec* find_value(const std::string& name) const;
    int input_index(const std::string& name) const;   // -1 if absent
    int output_index(const std::string& name) const;  // -1 if absent
    // Every key a stage mapping may hold: "type", inputs, params.
    std::vector<std::string> keys() const;

    // Checks a value against a spec: "" if fine, else what is wrong ("must be in [1, 16], got 0").
    static std::string check(const ParamSpec& spec, const ParamValue& v);

private:
    StageSchema& add_param(ParamSpec p);
    std::string type_, summary_, details_;
    Role role_ = Role::model;
    bool differentiable_ = false;
    std::vector<PortSpec> inputs_, outputs_;
    std::vector<ParamSpec> params_;
    std::vector<ValueSpec> values_;
};

// Validated parameter values of one stage instance: every parameter of the schema is present
// (given or defaulted). Where each came from is kept for error messages.
class Params {
public:
    void set(const std::string& name, ParamValue v, SourceLoc loc = {});
    bool has(const std::string& name) const { return values_.count(name) != 0; }
    const ParamValue& get(const std::string& name) const;
    SourceLoc loc(const std::string& name) const;

    bool get_bool(const std::string& name) const;
    std::int64_t get_int(const std::string& name) const;
    double get_float(const std::string& name) const;  // integers convert
    const std::string& get_string(const std::string& name) const;
    const std::vector<std::string>& get_list(const std::string& name) const;
    const std::map<std::string, ParamValue>& all() const { return values_; }

private:
    std::map<std::string, ParamValue> values_;
    std::map<std::string, SourceLoc> locs_;
};

// Defaults of a schema as Params (tests and programmatic construction).
Params default_params(const StageSchema& schema);

}  // namespace rnnflow
