// Shared oneDNN objects. One CPU engine for the process; each stage makes its own stream and
// its own user-managed scratchpads (the library-managed default crashes when two primitives run
// at once: ../shared/notes/onednn-on-debian12.md).
#pragma once

#include <dnnl.hpp>

namespace rnnflow {

dnnl::engine& cpu_engine();

// Attributes with scratchpad_mode::user; pass the scratchpad as DNNL_ARG_SCRATCHPAD.
dnnl::primitive_attr user_scratchpad_attr();

}  // namespace rnnflow
