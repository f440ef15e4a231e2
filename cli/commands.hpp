// Text the CLI prints about the registry.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "pipeline/core/registry.hpp"

namespace rnnflow {

// Reference manual of stage types (all when `types` is empty): ports, parameters, values.
std::string stages_text(const Registry& r, const std::vector<std::string>& types);
std::string stages_markdown(const Registry& r, const std::vector<std::string>& types);

// `new-stage`: "" when `name` can name a new stage type and plug-in, else why not.
std::string check_stage_name(const std::string& name, const Registry& r);
// The files of a new plug-in project (path relative to its folder, content). `prefix`: the
// rnnflow install prefix named in its README.
std::vector<std::pair<std::string, std::string>> scaffold_files(const std::string& name,
                                                                const std::string& prefix);

}  // namespace rnnflow
