#include "metric_name.hpp"

namespace rnnflow {

// Out of line: the class's type information lives in librnnflow, so that the engine's
// dynamic_cast finds the class in stages of plug-ins too.
MainMetricName::~MainMetricName() = default;

}  // namespace rnnflow
