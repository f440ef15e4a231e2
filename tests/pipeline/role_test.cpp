// Role contracts (pipeline/core/role.hpp): a type that lacks a port its role requires is refused
// when it registers, a stage class must derive from the base class of its schema's role, and the
// compiler locates a role input fed by a stage of the wrong role. The compile-time half of the
// base-class check is tests/compile_fail/role_base.cpp; the plug-in case is in
// plugin_loader_test.cpp and tests/cli/plugin_errors.sh.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "pipeline/core/registry.hpp"
#include "pipeline/core/role.hpp"
#include "pipeline/graph/graph.hpp"

using namespace rnnflow;

namespace {

const Role kAllRoles[] = {Role::data, Role::source, Role::model, Role::optimizer, Role::metric, Role::sampler};

// The Error `fn` throws, as "message\nhint: hint".
template <class Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.message() + "\nhint: " + e.hint();
    }
    return "(no error)";
}

// A model stage whose only job is to exist (the created object's base class is what is checked).
class Identity final : public ModelStage {
public:
    static StageSchema schema() {
        return StageSchema("identity", "out = in", Role::model)
            .input("in", PortType::tensor, "x")
            .output("out", PortType::tensor, "x");
    }
    explicit Identity(const Params&) {}
    void forward(const Inputs& in, Outputs& out, Saved&, const StepInfo&) override { out[0] = in[0]; }
};

// The same class, claiming another role in its schema.
class ClaimsMetric final : public ModelStage {
public:
    static StageSchema schema() { return StageSchema("claims_metric", "a model stage saying metric", Role::metric); }
    explicit ClaimsMetric(const Params&) {}
    void forward(const Inputs&, Outputs&, Saved&, const StepInfo&) override {}
};

// Derived from Stage itself: no role at all.
class NoRole final : public Stage {
public:
    explicit NoRole(const Params&) {}
};

StageSchema optimizer_with(const std::string& port, PortType type) {
    return StageSchema("bad_optim", "an optimiser", Role::optimizer).input(port, type, "the objective");
}

std::unique_ptr<Stage> make_identity(const Params& p) { return std::make_unique<Identity>(p); }

}  // namespace

TEST_CASE("roles: the optimizer and sampler roles name their ports, the other roles none", "[role]") {
    REQUIRE(role_ports(Role::optimizer).size() == 1);
    CHECK(std::string(role_ports(Role::optimizer)[0].name) == "minimize");
    CHECK(role_ports(Role::optimizer)[0].type == PortType::loss);
    REQUIRE(role_ports(Role::sampler).size() == 1);
    CHECK(std::string(role_ports(Role::sampler)[0].name) == "logits");
    CHECK(role_ports(Role::sampler)[0].type == PortType::tensor);
    for (Role r : {Role::data, Role::source, Role::model, Role::metric}) CHECK(role_ports(r).empty());
    for (Role r : kAllRoles)
        for (const RolePort& p : role_ports(r)) {
            CHECK(p.role == r);
            CHECK(p.input);
            CHECK(p.fed_by == Role::model);
        }
}

TEST_CASE("roles: every built-in type keeps its role's contract", "[role]") {
    const Registry& g = Registry::global();
    int with_ports = 0;
    for (const auto& [name, type] : g.types()) {
        INFO(name);
        CHECK(!check_role_ports(type.schema));
        for (const RolePort& p : role_ports(type.schema.role())) {
            CHECK(role_port_index(type.schema, p) >= 0);
            ++with_ports;
        }
    }
    CHECK(with_ports >= 3);  // adam, sgd, sampler
    CHECK(role_port_index(g.find("adam")->schema, role_port::optimizer_minimize) == 0);
    CHECK(role_port_index(g.find("sampler")->schema, role_port::sampler_logits) == 0);
}

TEST_CASE("roles: a type without a port its role requires is refused when it registers", "[role]") {
    Registry r;
    r.set_origin("libx.so");
    const std::string does = "it is the loss the engine runs backward from; the optimiser updates the parameters "
                              "upstream of it (docs/plugins.md, Roles)";
    SECTION("the loss under another name") {
        CHECK(error_of([&] { r.add(optimizer_with("loss", PortType::loss), nullptr); }) ==
              "stage type 'bad_optim' from libx.so: the optimizer role requires an input 'minimize' (loss), the "
              "schema declares none\nhint: rename input 'loss' to 'minimize': " + does);
    }
    SECTION("another type") {
        CHECK(error_of([&] { r.add(optimizer_with("minimize", PortType::tensor), nullptr); }) ==
              "stage type 'bad_optim' from libx.so: the optimizer role requires an input 'minimize' (loss), the "
              "schema declares it as tensor\nhint: declare it with PortType::loss: " + does);
    }
    SECTION("an output") {
        StageSchema s("bad_optim", "an optimiser", Role::optimizer);
        s.output("minimize", PortType::loss, "the objective");
        CHECK(error_of([&] { r.add(s, nullptr); }) ==
              "stage type 'bad_optim' from libx.so: the optimizer role requires an input 'minimize' (loss), the "
              "schema declares it as an output\nhint: make it an input: " + does);
    }
    SECTION("optional") {
        StageSchema s("bad_optim", "an optimiser", Role::optimizer);
        s.optional_input("minimize", PortType::loss, "the objective");
        CHECK(error_of([&] { r.add(s, nullptr); }) ==
              "stage type 'bad_optim' from libx.so: the optimizer role requires an input 'minimize' (loss), the "
              "schema declares it optional\nhint: declare it with input(), not optional_input(): " + does);
    }
    SECTION("no port at all, on a sampler") {
        StageSchema s("bad_sampler", "a sampler", Role::sampler);
        s.input("vocab", PortType::vocab, "ids to text");
        CHECK(error_of([&] { r.add(s, nullptr); }) ==
              "stage type 'bad_sampler' from libx.so: the sampler role requires an input 'logits' (tensor), the "
              "schema declares none\nhint: it is the scores the engine computes for each ModelRunner::run of the "
              "sampler (docs/plugins.md, Roles)");
    }
    CHECK(r.types().empty());
    // The same schemas with the ports the roles require register.
    r.add(optimizer_with("minimize", PortType::loss), nullptr);
    r.add(StageSchema("good_sampler", "a sampler", Role::sampler).input("logits", PortType::tensor, "scores"), nullptr);
    CHECK(r.names() == std::vector<std::string>{"bad_optim", "good_sampler"});
}

TEST_CASE("roles: a stage class must derive from the base class of its schema's role", "[role]") {
    Registry r;
    // add<T>(): when the type registers.
    CHECK(error_of([&] { r.add<ClaimsMetric>(); }) ==
          "stage type 'claims_metric' from built-in: the schema says role metric, the class derives from "
          "ModelStage (role model)\nhint: derive the class from MetricStage or give its schema the role model");
    r.add<Identity>();
    CHECK(r.find("identity")->create(Params{}) != nullptr);
    // Other factories: when they create a stage.
    r.set_origin("liby.so");
    r.add(optimizer_with("minimize", PortType::loss), make_identity);
    CHECK(error_of([&] { r.find("bad_optim")->create(Params{}); }) ==
          "stage type 'bad_optim' from liby.so: the schema says role optimizer, the class derives from "
          "ModelStage (role model)\nhint: derive the class from OptimizerStage or give its schema the role model");
    r.add(StageSchema("no_role", "", Role::data), [](const Params& p) -> std::unique_ptr<Stage> {
        return std::make_unique<NoRole>(p);
    });
    CHECK(error_of([&] { r.find("no_role")->create(Params{}); }) ==
          "stage type 'no_role' from liby.so: the class derives from none of the role base classes\n"
          "hint: derive it from DataStage");
    r.add(StageSchema("identity2", "", Role::model), make_identity);
    CHECK(r.find("identity2")->create(Params{}) != nullptr);
}

namespace {

// A source whose batches carry scores and a loss of their own: connecting either to a role input
// compiles by type but breaks the contract (only model stages' outputs are computed per step).
Registry registry_with_scored_batches() {
    Registry r;
    r.add(StageSchema("scored_batches", "batches with scores", Role::source)
              .output("scores", PortType::tensor, "scores")
              .output("cost", PortType::loss, "a loss"),
          nullptr);
    r.add(StageSchema("scorer", "a model", Role::model)
              .input("in", PortType::tensor, "x")
              .output("out", PortType::tensor, "scores")
              .output("loss", PortType::loss, "a loss"),
          nullptr);
    r.add(StageSchema("step", "an optimiser", Role::optimizer).input("minimize", PortType::loss, "loss"), nullptr);
    r.add(StageSchema("draw", "a sampler", Role::sampler).input("logits", PortType::tensor, "scores"), nullptr);
    return r;
}

std::vector<std::string> compile_errors(const Registry& r, const std::string& text) {
    try {
        compile(load_graph_text(text, "g.yaml", ".", {}, r), r);
    } catch (const LoadError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics()) out.push_back(d.format());
        return out;
    }
    return {};
}

}  // namespace

TEST_CASE("roles: the compiler locates a role input fed by a stage of another role", "[role][graph]") {
    const Registry r = registry_with_scored_batches();
    CHECK(compile_errors(r, "stages:\n"
                            "  batch: {type: scored_batches}\n"
                            "  model: {type: scorer, in: batch.scores}\n"
                            "  optim: {type: step, minimize: model.loss}\n"
                            "  sample: {type: draw, logits: model.out}\n")
              .empty());
    const auto errors = compile_errors(r, "stages:\n"
                                          "  batch: {type: scored_batches}\n"
                                          "  model: {type: scorer, in: batch.scores}\n"
                                          "  optim: {type: step, minimize: batch.cost}\n"
                                          "  sample: {type: draw, logits: batch.scores}\n");
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] ==
          "g.yaml:4:33: error: stage 'optim' (step): input 'minimize' must be fed by a stage of role model, "
          "'batch' (scored_batches) has role source\n"
          "  hint: the optimizer role's 'minimize' is the loss the engine runs backward from; the optimiser "
          "updates the parameters upstream of it");
    CHECK(errors[1] ==
          "g.yaml:5:32: error: stage 'sample' (draw): input 'logits' must be fed by a stage of role model, "
          "'batch' (scored_batches) has role source\n"
          "  hint: the sampler role's 'logits' is the scores the engine computes for each ModelRunner::run of "
          "the sampler");
}

TEST_CASE("roles: docs/plugins.md has a row per role with its base class and required ports", "[role][docs]") {
    std::ifstream in(std::string(RNNFLOW_SOURCE_DIR) + "/docs/plugins.md");
    REQUIRE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string doc = ss.str();
    for (Role r : kAllRoles) {
        std::string ports;
        for (const RolePort& p : role_ports(r))
            ports += std::string(ports.empty() ? "" : ", ") + (p.input ? "input `" : "output `") + p.name + "` (" +
                     to_string(p.type) + ") from a `" + to_string(p.fed_by) + "` stage";
        const std::string row = std::string("| `") + to_string(r) + "` | `" + role_base_class(r) + "` | " +
                                (ports.empty() ? "none" : ports) + " |";
        INFO(row);
        CHECK(doc.find("\n" + row) != std::string::npos);
    }
}
