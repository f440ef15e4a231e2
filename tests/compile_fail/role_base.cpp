// Registry::add<T>() checks at compile time that a stage class derives from exactly one role
// base class (pipeline/core/role.hpp). Compiled by ctest with -fsyntax-only, one case per macro
// (tests/CMakeLists.txt): GOOD must compile; each other case must stop with its static_assert.
#include "pipeline/core/registry.hpp"

namespace {

using namespace rnnflow;

StageSchema metric_schema() { return StageSchema("probe", "a metric (compile-time checks)", Role::metric); }

#if defined(GOOD)
struct Probe final : MetricStage {
#elif defined(NO_ROLE_BASE)
struct Probe final : Stage {
#elif defined(TWO_ROLE_BASES)
struct Probe final : MetricStage, ModelStage {
#elif defined(NOT_A_STAGE)
struct Probe final {
#else
#error "define one of GOOD, NO_ROLE_BASE, TWO_ROLE_BASES, NOT_A_STAGE"
#endif
    static StageSchema schema() { return metric_schema(); }
    explicit Probe(const Params&) {}
    // MetricStage's interface (plain members in the cases without it).
    void begin(const std::string&) {}
    void accumulate(const Inputs&, const StepInfo&) {}
    std::vector<MetricValue> end() { return {}; }
};

}  // namespace

void register_probe(Registry& r) { r.add<Probe>(); }
