#pragma once

// Kernels written once and compiled twice: for AVX-512, chosen at run time where the CPU has it
// (the project builds for baseline x86-64, so the default code path uses SSE2 only), and for the
// baseline. A kernel body is a macro taking a name suffix and an attribute:
//
//   #define MY_KERNEL(SUFFIX, ATTR) ATTR void scale_##SUFFIX(float* x, std::int64_t n) { ... }
//   #ifdef RNNFLOW_AVX512
//   MY_KERNEL(avx512, RNNFLOW_AVX512_TARGET)
//   #endif
//   MY_KERNEL(base, )
//
// and the caller takes RNNFLOW_PICK_KERNEL(scale): `scale_avx512` when cpu_has_avx512(), else
// `scale_base`. RNNFLOW_AVX512_TARGET forbids contracting a * b + c into one fused multiply-add
// (GCC would, since AVX-512 has FMA): both paths then round alike and give the same results.
// RNNFLOW_AVX512_FMA_TARGET allows it, for kernels whose results may differ in the last bits
// between the paths.

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RNNFLOW_AVX512 1
#if defined(__clang__)  // (clang contracts within an expression unless built with -ffp-contract=off)
#define RNNFLOW_AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#else
#define RNNFLOW_AVX512_TARGET \
    __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"), optimize("fp-contract=off")))
#endif
#define RNNFLOW_AVX512_FMA_TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma")))
#define RNNFLOW_PICK_KERNEL(NAME) (::rnnflow::cpu_has_avx512() ? &NAME##_avx512 : &NAME##_base)
#else
#define RNNFLOW_PICK_KERNEL(NAME) (&NAME##_base)
#endif

namespace rnnflow {

// True when the CPU has AVX-512 F, DQ, VL, BW and FMA (checked once).
bool cpu_has_avx512();

}  // namespace rnnflow
