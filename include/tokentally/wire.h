/* Little-endian binary fields for tokentally's own records on internal
 * topics (partials, state changelog). Writers append to a tt_buf; the
 * reader is bounds-checked and sticky: after the first short read every
 * get returns 0 and tt_rd_ok() is false, so decoders check once at the end
 * instead of after every field. */
#ifndef TT_WIRE_H
#define TT_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tokentally/buf.h"
#include "tokentally/counters.h"

static inline int tt_put_u8(tt_buf *b, uint8_t v) {
        return tt_buf_append(b, &v, 1);
}
static inline int tt_put_u32(tt_buf *b, uint32_t v) {
        uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                        (uint8_t)(v >> 24)};
        return tt_buf_append(b, x, 4);
}
static inline int tt_put_u64(tt_buf *b, uint64_t v) {
        uint8_t x[8];
        for (int i = 0; i < 8; i++)
                x[i] = (uint8_t)(v >> (8 * i));
        return tt_buf_append(b, x, 8);
}
static inline int tt_put_i64(tt_buf *b, int64_t v) {
        return tt_put_u64(b, (uint64_t)v);
}
static inline int tt_put_f64(tt_buf *b, double v) {
        uint64_t u;
        memcpy(&u, &v, 8);
        return tt_put_u64(b, u);
}
/* Overwrites the u32 at byte at (a count written as a placeholder). */
static inline void tt_patch_u32(tt_buf *b, size_t at, uint32_t v) {
        for (int i = 0; i < 4; i++)
                b->data[at + i] = (uint8_t)(v >> (8 * i));
}
/* Length-prefixed bytes (u32 length). */
static inline int tt_put_bytes(tt_buf *b, const void *p, size_t n) {
        int err = tt_put_u32(b, (uint32_t)n);
        return err ? err : tt_buf_append(b, p, n);
}

typedef struct tt_rd {
        const uint8_t *p, *end;
        bool bad;
} tt_rd;

static inline tt_rd tt_rd_init(const void *p, size_t n) {
        tt_rd r = {(const uint8_t *)p, (const uint8_t *)p + n, false};
        return r;
}
static inline bool tt_rd_ok(const tt_rd *r) {
        return !r->bad;
}
static inline bool tt_rd_done(const tt_rd *r) {
        return !r->bad && r->p == r->end;
}
static inline const uint8_t *tt_rd_take(tt_rd *r, size_t n) {
        if (r->bad || (size_t)(r->end - r->p) < n) {
                r->bad = true;
                return NULL;
        }
        const uint8_t *p = r->p;
        r->p += n;
        return p;
}
static inline uint8_t tt_get_u8(tt_rd *r) {
        const uint8_t *p = tt_rd_take(r, 1);
        return p ? p[0] : 0;
}
static inline uint32_t tt_get_u32(tt_rd *r) {
        const uint8_t *p = tt_rd_take(r, 4);
        return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24
                 : 0;
}
static inline uint64_t tt_get_u64(tt_rd *r) {
        const uint8_t *p = tt_rd_take(r, 8);
        uint64_t v = 0;
        for (int i = 0; p && i < 8; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}
static inline int64_t tt_get_i64(tt_rd *r) {
        return (int64_t)tt_get_u64(r);
}
static inline double tt_get_f64(tt_rd *r) {
        uint64_t u = tt_get_u64(r);
        double v;
        memcpy(&v, &u, 8);
        return v;
}
/* Length-prefixed bytes, borrowed from the input. */
static inline const uint8_t *tt_get_bytes(tt_rd *r, size_t *n) {
        uint32_t len = tt_get_u32(r);
        const uint8_t *p = tt_rd_take(r, len);
        *n = p ? len : 0;
        return p;
}

/* A counter cell: five i64 and the origin as u32 (44 bytes). */
static inline int tt_put_cell(tt_buf *b, const tt_cell *c) {
        int err = tt_put_i64(b, c->tokens);
        err = err ? err : tt_put_i64(b, c->prompt_tokens);
        err = err ? err : tt_put_i64(b, c->completion_tokens);
        err = err ? err : tt_put_i64(b, c->requests);
        err = err ? err : tt_put_i64(b, c->last_time);
        return err ? err : tt_put_u32(b, c->last_origin);
}
static inline void tt_get_cell(tt_rd *r, tt_cell *c) {
        c->tokens = tt_get_i64(r);
        c->prompt_tokens = tt_get_i64(r);
        c->completion_tokens = tt_get_i64(r);
        c->requests = tt_get_i64(r);
        c->last_time = tt_get_i64(r);
        c->last_origin = (tt_origin)tt_get_u32(r);
}

#endif
