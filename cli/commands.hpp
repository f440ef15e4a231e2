// Text the CLI prints about the registry.
#pragma once

#include <string>
#include <vector>

#include "pipeline/core/registry.hpp"

namespace rnnflow {

// Reference manual of stage types (all when `types` is empty): ports, parameters, values.
std::string stages_text(const Registry& r, const std::vector<std::string>& types);
std::string stages_markdown(const Registry& r, const std::vector<std::string>& types);

}  // namespace rnnflow
