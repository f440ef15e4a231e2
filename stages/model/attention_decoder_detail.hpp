// Internal to the attention_decoder stage, not part of the SDK: the small kernels and the per-batch
// work buffers that its training path (attention_decoder.cpp) and its search
// (attention_decoder_search.cpp) share.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <dnnl.h>

#include "attention_decoder.hpp"
#include "pipeline/core/decode_search.hpp"
#include "stages/fast_math.hpp"

namespace rnnflow::stages::attention_detail {

// Row-major C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C on oneDNN's sgemm.
inline void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const float* A,
                 std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        for (std::int64_t i = 0; i < M; ++i)
            for (std::int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
        return;
    }
    const dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B,
                                       ldb, beta, C, ldc);
    RNNFLOW_CHECK(s == dnnl_success, "attention_decoder: dnnl_sgemm failed (status ", int(s), ")");
}

// Grow-only buffer: allocates only when a batch is larger than any before.
template <class T>
T* grow(std::vector<T>& v, std::int64_t n) {
    if (static_cast<std::int64_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
    return v.data();
}

// dst[0, n) = src[0, n) for rows of floats.
inline void copy_row(float* dst, const float* src, std::int64_t n) {
    std::memcpy(dst, src, sizeof(float) * static_cast<std::size_t>(n));
}

// The fused cells of one row; gates in, activations out (restrict: the loops vectorise).
inline void lstm_row(std::int64_t H, float* __restrict gi, float* __restrict gf, float* __restrict gg,
                     float* __restrict go, const float* __restrict cprev, float* __restrict c,
                     float* __restrict tc, float* __restrict h) {
    for (std::int64_t j = 0; j < H; ++j) {
        const float i = fast_sigmoid(gi[j]), f = fast_sigmoid(gf[j]), g = fast_tanh(gg[j]),
                    o = fast_sigmoid(go[j]);
        const float cn = f * cprev[j] + i * g;
        const float t = fast_tanh(cn);
        gi[j] = i; gf[j] = f; gg[j] = g; go[j] = o;
        c[j] = cn;
        tc[j] = t;
        h[j] = o * t;
    }
}
// gru (linear before reset): u, r, n gates hold x W + b on entry; hu_* = h U; hn = h U_n + b_hn.
inline void gru_row(std::int64_t H, float* __restrict gu, float* __restrict gr, float* __restrict gn,
                    const float* __restrict hu_u, const float* __restrict hu_r,
                    const float* __restrict hu_n, const float* __restrict bhn,
                    const float* __restrict hprev, float* __restrict hn, float* __restrict h) {
    for (std::int64_t j = 0; j < H; ++j) {
        const float u = fast_sigmoid(gu[j] + hu_u[j]), r = fast_sigmoid(gr[j] + hu_r[j]);
        const float hv = hu_n[j] + bhn[j];
        const float n = fast_tanh(gn[j] + r * hv);
        gu[j] = u; gr[j] = r; gn[j] = n;
        hn[j] = hv;
        h[j] = u * hprev[j] + (1.f - u) * n;
    }
}

// Dot product over 16 independent partial sums (vectorises; fixed order, so deterministic).
inline float dot(const float* a, const float* b, std::int64_t n) {
    float acc[16] = {};
    std::int64_t e = 0;
    for (; e + 16 <= n; e += 16)
        for (int j = 0; j < 16; ++j) acc[j] += a[e + j] * b[e + j];
    float s = 0.f;
    for (; e < n; ++e) s += a[e] * b[e];
    for (int j = 0; j < 16; ++j) s += acc[j];
    return s;
}

// A uniform number in [0, 1) from the top 53 bits of a hash.
inline double unit(std::uint64_t h) { return double(h >> 11) * (1.0 / 9007199254740992.0); }

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace rnnflow::stages::attention_detail

namespace rnnflow::stages {

// Per-batch buffers, kept in Saved::extra between forward and backward and reused across batches.
struct AttentionDecoder::Work {
    std::int64_t T = 0, N = 0, Ts = 0, rows = 0;
    bool fast = false, dropout = false;
    std::vector<std::int32_t> tokens, src_len, tgt_len;
    // Training forward, rows r = t * N + n.
    std::vector<float> x0;                 // (rows, C_0) layer-0 input
    std::vector<float> xin;                // (rows, H) layer-1 input: dropout(h of layer 0)
    std::vector<float> mask_layer, mask_out;  // (rows, H) dropout masks (scaled), when on
    std::vector<float> gates[2];           // (rows, G*H) gate activations
    std::vector<float> hn[2];              // (rows, H) gru: h U_n + b_hn
    std::vector<float> h[2], c[2];         // ((T + 1) * N, H): block 0 initial, block t+1 step t
    std::vector<float> tc[2];              // (rows, H) lstm tanh(c_t)
    std::vector<float> hu;                 // (rows, G*H) scratch: h U
    std::vector<float> keys;               // (Ts * N, K) projected memory (general, bahdanau)
    std::vector<float> qp, tb;             // bahdanau: (rows, A) W_q h, (rows, Ts, A) tanh
    std::vector<float> alpha;              // (rows, Ts)
    std::vector<float> cat;                // (rows, E + H) [context; h]
    std::vector<float> ht, htd;            // (rows, H) h~ and dropout(h~)
    std::vector<float> bin_h, bin_c, bout_h, bout_c;  // bridge (N, Db) in, (N, L*H) out
    std::vector<float> ctx, dctx;          // attention none: C (N, Db) and its gradient
    bool have_c = false;                   // the state input has a c (lstm encoder)
    // Backward.
    std::vector<float> dlog, dht, dpre_c, dcat, dkeys, dqp, dx, dbin, dscore;
    std::vector<float> dhin[2], dgx[2], dgh[2], dhc[2], dcc[2];
    // Decoding, rows r = n * beam + k.
    std::vector<float> dec_x, dec_g, dec_hn, dec_tc, dec_hu, dec_h[2], dec_c[2], dec_nh[2],
        dec_nc[2], dec_alpha, dec_cat, dec_qp, dec_tb, dec_ht, dec_nht, dec_logits;
    DecodeSearch search;                   // greedy / beam bookkeeping and history
};

}  // namespace rnnflow::stages
