// The plug-in's entry point: one stage type, `highway`.
#include <rnnflow/registry.hpp>

#include "highway.hpp"

static void register_stages(rnnflow::Registry& r) { r.add<highway_plugin::Highway>(); }

RNNFLOW_PLUGIN(highway, "highway layer: a gated skip connection over channels", "0.1.0", register_stages)
