// Role contracts: the ports a stage of each role must declare, because the engine reads them.
//
// A role (schema.hpp) says what the engine does with a stage; a few roles also need a port of a
// known name, type and direction, fed by a stage of a known role:
//
//   role       port               type    fed by   what the engine does with it
//   optimizer  input `minimize`   loss    model    runs backward from it; updates the parameters
//                                                  upstream of it
//   sampler    input `logits`     tensor  model    runs the model stages up to it for each
//                                                  ModelRunner::run and returns its tensor
//
// Data, source, model and metric stages have no required port: the engine reads a source's
// batches and a model stage's outputs in schema order, and feeds metrics whatever they declare.
//
// The contract is checked three times, so that a stage that breaks it never reaches the engine:
//   - at compile time, Registry::add<T>() asserts that T derives from exactly one role base class
//     (DataStage, DataSource, ModelStage, OptimizerStage, MetricStage, SamplerStage);
//   - when a type registers (built-in or plug-in), its schema must declare its role's ports
//     (check_role_ports) and its role must be that of its base class;
//   - when a graph compiles, each role input must be connected (a required input) and fed by a
//     stage of the contract's role, with the usual file:line:column.
// The engine finds a role port by its RolePort (role_port_index), never by a name of its own.
#pragma once

#include <span>
#include <string>

#include "schema.hpp"

namespace rnnflow {

struct RolePort {
    Role role;          // the role that requires the port
    const char* name;   // the port's name in the stage's schema
    PortType type;
    bool input;         // an input (else an output)
    Role fed_by;        // inputs: the role of the stage that must produce it
    const char* doc;    // what the engine does with it (for messages and the manual)
};

namespace role_port {
inline constexpr RolePort optimizer_minimize{
    Role::optimizer, "minimize", PortType::loss, true, Role::model,
    "the loss the engine runs backward from; the optimiser updates the parameters upstream of it"};
inline constexpr RolePort sampler_logits{
    Role::sampler, "logits", PortType::tensor, true, Role::model,
    "the scores the engine computes for each ModelRunner::run of the sampler"};
}  // namespace role_port

// The ports a role requires, in the order above (empty for data, source, model and metric).
std::span<const RolePort> role_ports(Role r);

// The index of `port` among the schema's inputs (or outputs); -1 when the schema has no such port
// of that direction.
int role_port_index(const StageSchema& s, const RolePort& port);

// What breaks the contract of the schema's role, as an Error's message and hint (both empty when
// the schema keeps it): a missing port, or one with another type or direction, or an optional
// input. The message starts with the port ("has no input 'minimize' ...") so that the caller can
// put the type and its origin in front.
struct RoleViolation {
    std::string what;
    std::string hint;
    explicit operator bool() const { return !what.empty(); }
};
RoleViolation check_role_ports(const StageSchema& s);

// The C++ base class of a role's stages: "ModelStage" for Role::model, and so on. Inline, like
// role_mismatch, because Registry::add<T>() (compiled into each plug-in) uses them.
constexpr const char* role_base_class(Role r) {
    switch (r) {
        case Role::data: return "DataStage";
        case Role::source: return "DataSource";
        case Role::model: return "ModelStage";
        case Role::optimizer: return "OptimizerStage";
        case Role::metric: return "MetricStage";
        case Role::sampler: return "SamplerStage";
    }
    return "?";
}

// A stage class whose base class is not that of its schema's role, as an Error naming the type
// and where it comes from ("built-in" or the plug-in file).
inline Error role_mismatch(const std::string& type, Role schema_role, Role class_role, const std::string& origin) {
    return Error("stage type '" + type + "' from " + origin + ": the schema says role " + to_string(schema_role) +
                     ", the class derives from " + role_base_class(class_role) + " (role " +
                     to_string(class_role) + ")",
                 std::string("derive the class from ") + role_base_class(schema_role) +
                     " or give its schema the role " + to_string(class_role));
}

}  // namespace rnnflow
