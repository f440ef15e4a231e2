#include "stage.hpp"

namespace rnnflow {

std::int64_t Stage::value(const std::string& name) const {
    throw Error("has no value '" + name + "'");
}

}  // namespace rnnflow
