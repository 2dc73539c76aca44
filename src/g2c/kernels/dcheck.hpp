#pragma once
// Debug checks of the kernel contract (kernels.hpp) at the entry points of every table: G2C_DCHECK is on
// in Debug and sanitizer builds and compiles to nothing in Release, so a release kernel pays nothing.
// Entry points only (what a KernelTable holds), never the loops inside. One macro per kind of entry, so
// ref, avx2 and avx512 check the same preconditions; the row operations check theirs inline.
#include <cstdint>

#include "g2c/core/error.hpp"
#include "g2c/gguf/types.hpp"

// A product over rows of n elements of weight type `type`: n is a whole number of its blocks (1 for
// the float types), both operands exist.
#define G2C_DCHECK_DOT(type, n, w, x)                                       \
  do {                                                                      \
    G2C_DCHECK((n) >= 0 && (n) % ::g2c::type_traits(type).block_size == 0); \
    G2C_DCHECK((w) != nullptr && (x) != nullptr);                           \
  } while (0)

// matvec: rows [r0, r1) into y[r0, r1).
#define G2C_DCHECK_MATVEC(type, n, w, x, y, r0, r1)          \
  do {                                                       \
    G2C_DCHECK_DOT(type, n, w, x);                           \
    G2C_DCHECK((y) != nullptr && 0 <= (r0) && (r0) <= (r1)); \
  } while (0)

// matmul: rows [r0, r1) x n_tok activation rows into y [n_tok][ldy], so an output row holds r1 entries.
#define G2C_DCHECK_MATMUL(type, n, w, x, n_tok, y, ldy, r0, r1) \
  do {                                                          \
    G2C_DCHECK_MATVEC(type, n, w, x, y, r0, r1);                \
    G2C_DCHECK((n_tok) >= 0 && (ldy) >= (r1));                  \
  } while (0)

// from_float: n f32 values into whole blocks of the activation type `act`.
#define G2C_DCHECK_FROM_FLOAT(act, n, x, y) G2C_DCHECK_DOT(act, n, x, y)

// attend: one query of head_dim over n_kv >= 1 cached rows of `elem`-byte values (4: F32, 2: F16).
#define G2C_DCHECK_ATTEND(q, k, v, row_stride, n_kv, head_dim, elem, scratch, out) \
  do {                                                                             \
    G2C_DCHECK((q) != nullptr && (k) != nullptr && (v) != nullptr);                \
    G2C_DCHECK((scratch) != nullptr && (out) != nullptr);                          \
    G2C_DCHECK((n_kv) >= 1 && (head_dim) >= 1);                                    \
    G2C_DCHECK((row_stride) >= static_cast<std::size_t>(head_dim) * (elem));       \
  } while (0)

// attend_multi: n_tok x n_rep queries, each over n_kv[t] >= 1 rows; the query and output rows hold the
// n_rep heads side by side.
#define G2C_DCHECK_ATTEND_MULTI(q, q_stride, k, v, row_stride, n_kv, n_tok, n_rep, head_dim, elem, scratch, out, \
                                out_stride)                                                                      \
  do {                                                                                                           \
    G2C_DCHECK_ATTEND(q, k, v, row_stride, 1, head_dim, elem, scratch, out);                                     \
    G2C_DCHECK((n_kv) != nullptr && (n_tok) >= 0 && (n_rep) >= 1);                                               \
    G2C_DCHECK((q_stride) >= (n_rep) * (head_dim) && (out_stride) >= (n_rep) * (head_dim));                      \
    for (std::int64_t t_ = 0; t_ < (n_tok); ++t_) G2C_DCHECK((n_kv)[t_] >= 1);                                   \
  } while (0)
