// The plug-in's entry point: one stage type, `token_noise`.
#include <rnnflow/registry.hpp>

#include "token_noise.hpp"

static void register_stages(rnnflow::Registry& r) { r.add<token_noise_plugin::TokenNoise>(); }

RNNFLOW_PLUGIN(token_noise, "token_noise: drops and swaps tokens of the training split", "0.1.0", register_stages)
