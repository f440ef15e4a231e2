#include "role.hpp"

namespace rnnflow {

std::span<const RolePort> role_ports(Role r) {
    static constexpr RolePort optimizer[] = {role_port::optimizer_minimize};
    static constexpr RolePort sampler[] = {role_port::sampler_logits};
    switch (r) {
        case Role::optimizer: return optimizer;
        case Role::sampler: return sampler;
        case Role::data:
        case Role::source:
        case Role::model:
        case Role::metric: return {};
    }
    return {};
}

int role_port_index(const StageSchema& s, const RolePort& port) {
    return port.input ? s.input_index(port.name) : s.output_index(port.name);
}

namespace {

const char* direction(bool input) { return input ? "input" : "output"; }

// The same port of the other direction, if the schema declares one.
const PortSpec* flipped(const StageSchema& s, const RolePort& port) {
    return port.input ? s.find_output(port.name) : s.find_input(port.name);
}

// "rename input 'loss' to 'minimize'" when exactly one port of the wanted type and direction
// has another name: the likely cause of a missing port.
std::string rename_hint(const StageSchema& s, const RolePort& port) {
    const PortSpec* only = nullptr;
    int count = 0;
    for (const auto& p : port.input ? s.inputs() : s.outputs())
        if (p.type == port.type) {
            only = &p;
            ++count;
        }
    if (count != 1) return {};
    return std::string("rename ") + direction(port.input) + " '" + only->name + "' to '" + port.name + "'";
}

RoleViolation violation(const RolePort& port, const std::string& found, std::string fix) {
    const std::string required = std::string("the ") + to_string(port.role) + " role requires an " +
                                 direction(port.input) + " '" + port.name + "' (" + to_string(port.type) + ")";
    return {required + ", the schema declares " + found,
            (fix.empty() ? "" : fix + ": ") + "it is " + port.doc + " (docs/plugins.md, Roles)"};
}

}  // namespace

RoleViolation check_role_ports(const StageSchema& s) {
    for (const RolePort& port : role_ports(s.role())) {
        const int i = role_port_index(s, port);
        if (i < 0) {
            if (flipped(s, port))
                return violation(port, std::string("it as an ") + direction(!port.input),
                                 std::string("make it an ") + direction(port.input));
            return violation(port, "none", rename_hint(s, port));
        }
        const PortSpec& p = (port.input ? s.inputs() : s.outputs())[static_cast<std::size_t>(i)];
        if (p.type != port.type)
            return violation(port, std::string("it as ") + to_string(p.type),
                             std::string("declare it with PortType::") + to_string(port.type));
        if (p.optional)
            return violation(port, "it optional", "declare it with input(), not optional_input()");
    }
    return {};
}

}  // namespace rnnflow
