#include "cpu.hpp"

namespace rnnflow {

bool cpu_has_avx512() {
#ifdef RNNFLOW_AVX512
    static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("fma");
    return has;
#else
    return false;
#endif
}

}  // namespace rnnflow
