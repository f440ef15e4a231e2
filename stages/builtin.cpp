// The one list of built-in stages, registered exactly as a plug-in registers its own.
#define RNNFLOW_BUILTIN
#include "pipeline/core/registry.hpp"

namespace rnnflow::stages {

static void register_stages(Registry& r) {
    (void)r;
}

}  // namespace rnnflow::stages

RNNFLOW_PLUGIN(builtin, "built-in stages", RNNFLOW_VERSION, rnnflow::stages::register_stages)
