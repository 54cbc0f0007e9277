/* Encoding and decoding of the partials topic's records; see partials.h
 * for the layout and why it is shaped so. */
#include "tokentally/partials.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/week.h"
#include "tokentally/wire.h"

void tt_partial_cells_begin(tt_partial_writer *w, tt_buf *b) {
        w->b = b;
        w->nrep = w->ncell = 0;
        w->ncell_at = 0;
        w->max_len = 0;
        w->flush = NULL;
        w->flush_opaque = NULL;
        w->nchunks = 0;
        tt_buf_init(&w->reports, SIZE_MAX);
        tt_buf_reset(b);
        w->err = tt_put_u8(b, 'C');
        w->err = w->err ? w->err : tt_put_u8(b, 1);
        w->nrep_at = b->len;
        w->err = w->err ? w->err : tt_put_u32(b, 0);
}

void tt_partial_report(tt_partial_writer *w, int32_t partition,
                       int64_t max_time, unsigned flags) {
        tt_buf *b = w->b;
        int err = w->err ? w->err : tt_put_u32(b, (uint32_t)partition);
        err = err ? err : tt_put_i64(b, max_time);
        err = err ? err : tt_put_u8(b, (uint8_t)flags);
        w->err = err;
        w->nrep++;
}

void tt_partial_cells_chunked(tt_partial_writer *w, size_t max_len,
                              tt_partial_flush_fn flush, void *opaque) {
        w->max_len = max_len;
        w->flush = flush;
        w->flush_opaque = opaque;
}

void tt_partial_cells_mid(tt_partial_writer *w) {
        tt_buf *b = w->b;
        if (w->max_len && !w->err) {
                /* The reports wait for the last record. */
                size_t at = w->nrep_at + 4;
                w->err = tt_buf_append(&w->reports, b->data + at, b->len - at);
                b->len = at;
        }
        w->ncell_at = b->len;
        w->err = w->err ? w->err : tt_put_u32(b, 0);
}

/* After a cell was appended at from: when chunking and the record has
 * grown past max_len, the cells before it go out as a record of their own
 * and the cell starts the next one. */
static void maybe_flush(tt_partial_writer *w, size_t from) {
        tt_buf *b = w->b;
        if (w->err || !w->max_len || b->len <= w->max_len || w->ncell < 2)
                return;
        uint8_t cell[512]; /* a slug is at most 256 bytes (SPEC §2) */
        size_t n = b->len - from;
        if (n > sizeof(cell)) {
                w->err = TT_ERR_LIMIT;
                return;
        }
        memcpy(cell, b->data + from, n);
        b->len = from;
        tt_patch_u32(b, w->ncell_at, w->ncell - 1);
        int err = w->flush(w->flush_opaque, b->data, b->len);
        if (err) {
                w->err = err;
                return;
        }
        w->nchunks++;
        b->len = w->ncell_at + 4;
        w->err = tt_buf_append(b, cell, n);
        w->ncell = 1;
}

void tt_partial_model(tt_partial_writer *w, int32_t week, tt_str model,
                      const tt_cell *c) {
        tt_buf *b = w->b;
        size_t from = b->len;
        int err = w->err ? w->err : tt_put_u8(b, 'm');
        err = err ? err : tt_put_u32(b, (uint32_t)week);
        err = err ? err : tt_put_bytes(b, model.ptr, model.len);
        err = err ? err : tt_put_cell(b, c);
        w->err = err;
        w->ncell++;
        maybe_flush(w, from);
}

void tt_partial_origin(tt_partial_writer *w, int32_t week, tt_origin o,
                       const tt_cell *c) {
        tt_buf *b = w->b;
        size_t from = b->len;
        int err = w->err ? w->err : tt_put_u8(b, 'o');
        err = err ? err : tt_put_u32(b, (uint32_t)week);
        err = err ? err : tt_put_u32(b, o);
        err = err ? err : tt_put_cell(b, c);
        w->err = err;
        w->ncell++;
        maybe_flush(w, from);
}

int tt_partial_cells_end(tt_partial_writer *w) {
        tt_buf *b = w->b;
        if (!w->err && w->max_len && w->reports.len) {
                /* The held-back reports, in their place before the cells
                 * (the last record may pass max_len by their size). */
                size_t at = w->nrep_at + 4, rl = w->reports.len;
                w->err = tt_buf_reserve(b, rl);
                if (!w->err) {
                        memmove(b->data + at + rl, b->data + at, b->len - at);
                        memcpy(b->data + at, w->reports.data, rl);
                        b->len += rl;
                        w->ncell_at += rl;
                }
        }
        tt_buf_free(&w->reports);
        if (w->err)
                return w->err;
        tt_patch_u32(w->b, w->nrep_at, w->nrep);
        tt_patch_u32(w->b, w->ncell_at, w->ncell);
        return TT_ERR_OK;
}

int tt_partial_event(tt_buf *b, int32_t partition, int64_t offset,
                     const void *key, size_t key_len, const void *value,
                     size_t value_len) {
        tt_buf_reset(b);
        int err = tt_put_u8(b, 'E');
        err = err ? err : tt_put_u8(b, 1);
        err = err ? err : tt_put_u32(b, (uint32_t)partition);
        err = err ? err : tt_put_i64(b, offset);
        err = err ? err : tt_put_u8(b, key != NULL);
        if (!err && key)
                err = tt_put_bytes(b, key, key_len);
        err = err ? err : tt_put_u8(b, value != NULL);
        if (!err && value)
                err = tt_put_bytes(b, value, value_len);
        return err;
}

/* A reason for a malformed record, or nothing when the caller gave no
 * room for one. */
#define WHY(...)                                                               \
        do {                                                                   \
                if (why)                                                       \
                        snprintf(why, whysize, __VA_ARGS__);                   \
        } while (0)

int tt_cell_check(const tt_cell *c, char *why, size_t whysize) {
        if (c->tokens < 0 || c->prompt_tokens < 0 || c->completion_tokens < 0 ||
            c->requests < 0 || c->tokens > TT_COUNT_MAX ||
            c->requests > TT_COUNT_MAX) {
                WHY("cell counts out of [0, 2^62]: tokens %" PRId64
                    ", prompt %" PRId64 ", completion %" PRId64
                    ", requests %" PRId64,
                    c->tokens, c->prompt_tokens, c->completion_tokens,
                    c->requests);
                return TT_ERR_FORMAT;
        }
        /* tokens <= 2^62 and both terms >= 0: the sum cannot overflow. */
        if (c->prompt_tokens > c->tokens ||
            c->completion_tokens != c->tokens - c->prompt_tokens) {
                WHY("cell tokens %" PRId64 " != prompt %" PRId64
                    " + completion %" PRId64,
                    c->tokens, c->prompt_tokens, c->completion_tokens);
                return TT_ERR_FORMAT;
        }
        /* Rounded up: tokens <= 2^62, so the sum cannot overflow. */
        if ((c->tokens + TT_MAX_TOKENS_PER_REQUEST - 1) /
                TT_MAX_TOKENS_PER_REQUEST >
            c->requests) {
                WHY("cell has %" PRId64 " tokens in %" PRId64
                    " requests (at most %" PRId64 " each)",
                    c->tokens, c->requests, TT_MAX_TOKENS_PER_REQUEST);
                return TT_ERR_FORMAT;
        }
        if (c->requests && (c->last_time < TT_MIN_EVENT_TIME_MS ||
                            c->last_time >= TT_MAX_EVENT_TIME_MS ||
                            !tt_origin_valid(c->last_origin))) {
                WHY("cell latest event time %" PRId64 " or origin %#x invalid",
                    c->last_time, (unsigned)c->last_origin);
                return TT_ERR_FORMAT;
        }
        /* An empty cell is saved as zeros (tt_ccell_get gives time 0); a
         * stray time there overflowed tt_ccell_put's offset from the week
         * start (found by the state harness on the compact cells). */
        if (!c->requests && c->last_time != 0) {
                WHY("empty cell with latest event time %" PRId64, c->last_time);
                return TT_ERR_FORMAT;
        }
        return TT_ERR_OK;
}

/* One pass over a cells record; with v NULL it only validates, every
 * field, so that the pass with v applies nothing from a bad record. */
static int walk_cells(tt_rd r, const tt_partial_visitor *v, void *opaque,
                      char *why, size_t whysize) {
        uint32_t nrep = tt_get_u32(&r);
        tt_rd reports = r;
        for (uint32_t i = 0; i < nrep && tt_rd_ok(&r); i++) {
                int32_t pid = (int32_t)tt_get_u32(&r);
                int64_t max_time = tt_get_i64(&r);
                unsigned flags = tt_get_u8(&r);
                if (!v && tt_rd_ok(&r) &&
                    (pid < 0 || flags > 3 ||
                     (max_time != INT64_MIN &&
                      (max_time < TT_MIN_EVENT_TIME_MS ||
                       max_time >= TT_MAX_EVENT_TIME_MS)))) {
                        WHY("report %" PRIu32 ": partition %" PRId32
                            ", max time %" PRId64 ", flags %u invalid",
                            i, pid, max_time, flags);
                        return TT_ERR_FORMAT;
                }
        }
        uint32_t n = tt_get_u32(&r);
        for (uint32_t i = 0; i < n && tt_rd_ok(&r); i++) {
                uint8_t kind = tt_get_u8(&r);
                int32_t week = (int32_t)tt_get_u32(&r);
                tt_cell c;
                tt_str model = TT_STR_NULL;
                tt_origin o = 0;
                if (kind == 'm') {
                        size_t len;
                        const uint8_t *p = tt_get_bytes(&r, &len);
                        model = (tt_str){(const char *)p, len};
                } else if (kind == 'o') {
                        uint32_t code = tt_get_u32(&r);
                        o = (tt_origin)code;
                        if (tt_rd_ok(&r) &&
                            (code > 0xffff || !tt_origin_valid(o))) {
                                WHY("cell %" PRIu32 ": origin code %#" PRIx32
                                    " is not AA..ZZ",
                                    i, code);
                                return TT_ERR_FORMAT;
                        }
                } else if (tt_rd_ok(&r)) {
                        WHY("cell %" PRIu32 ": kind %u is not 'm' or 'o'", i,
                            (unsigned)kind);
                        return TT_ERR_FORMAT;
                }
                tt_get_cell(&r, &c);
                if (!tt_rd_ok(&r))
                        break;
                int err = TT_ERR_OK;
                if (!v) {
                        char d[160];
                        if (!tt_week_valid(week)) {
                                WHY("cell %" PRIu32 ": week %" PRId32
                                    " outside 2000-2099",
                                    i, week);
                                return TT_ERR_FORMAT;
                        }
                        if (kind == 'm' &&
                            !tt_model_valid(model, d, sizeof(d))) {
                                WHY("cell %" PRIu32 ": %s", i, d);
                                return TT_ERR_FORMAT;
                        }
                        if (!c.requests) {
                                WHY("cell %" PRIu32 ": no requests", i);
                                return TT_ERR_FORMAT;
                        }
                        if (tt_cell_check(&c, d, sizeof(d))) {
                                WHY("cell %" PRIu32 ": %s", i, d);
                                return TT_ERR_FORMAT;
                        }
                } else if (kind == 'm') {
                        err = v->model(opaque, week, model, &c);
                } else {
                        err = v->origin(opaque, week, o, &c);
                }
                if (err)
                        return err;
        }
        if (!tt_rd_done(&r)) {
                WHY("%s",
                    tt_rd_ok(&r) ? "bytes after the last cell" : "truncated");
                return TT_ERR_FORMAT;
        }
        for (uint32_t i = 0; v && i < nrep; i++) {
                int32_t pid = (int32_t)tt_get_u32(&reports);
                int64_t max_time = tt_get_i64(&reports);
                unsigned flags = tt_get_u8(&reports);
                v->report(opaque, pid, max_time, flags);
        }
        return TT_ERR_OK;
}

/* Checks an event record; its position on success. */
static int check_event(tt_rd r, int32_t *pid, int64_t *off, const uint8_t **key,
                       size_t *klen, const uint8_t **val, size_t *vlen,
                       char *why, size_t whysize) {
        *pid = (int32_t)tt_get_u32(&r);
        *off = tt_get_i64(&r);
        *key = *val = NULL;
        *klen = *vlen = 0;
        uint8_t has_key = tt_get_u8(&r);
        if (has_key == 1)
                *key = tt_get_bytes(&r, klen);
        uint8_t has_val = tt_get_u8(&r);
        if (has_val == 1)
                *val = tt_get_bytes(&r, vlen);
        if (!tt_rd_done(&r)) {
                WHY("event record %s",
                    tt_rd_ok(&r) ? "has bytes after its value" : "truncated");
                return TT_ERR_FORMAT;
        }
        if (*pid < 0 || *off < 0 || has_key > 1 || has_val > 1) {
                WHY("event record: partition %" PRId32 ", offset %" PRId64
                    ", key flag %u, value flag %u invalid",
                    *pid, *off, (unsigned)has_key, (unsigned)has_val);
                return TT_ERR_FORMAT;
        }
        return TT_ERR_OK;
}

int tt_partial_check(const void *rec, size_t len, char *why, size_t whysize) {
        tt_rd r = tt_rd_init(rec, len);
        uint8_t kind = tt_get_u8(&r), version = tt_get_u8(&r);
        if (!tt_rd_ok(&r) || version != 1 || (kind != 'C' && kind != 'E')) {
                WHY("record of %zu bytes: not a version 1 cells or event "
                    "record",
                    len);
                return TT_ERR_FORMAT;
        }
        if (kind == 'C')
                return walk_cells(r, NULL, NULL, why, whysize);
        int32_t pid;
        int64_t off;
        const uint8_t *key, *val;
        size_t klen, vlen;
        return check_event(r, &pid, &off, &key, &klen, &val, &vlen, why,
                           whysize);
}

int tt_partial_decode(const void *rec, size_t len, const tt_partial_visitor *v,
                      void *opaque) {
        int err = tt_partial_check(rec, len, NULL, 0);
        if (err)
                return err;
        tt_rd r = tt_rd_init(rec, len);
        uint8_t kind = tt_get_u8(&r);
        (void)tt_get_u8(&r);
        if (kind == 'C')
                return walk_cells(r, v, opaque, NULL, 0);
        int32_t pid;
        int64_t off;
        const uint8_t *key, *val;
        size_t klen, vlen;
        check_event(r, &pid, &off, &key, &klen, &val, &vlen, NULL, 0);
        return v->event(opaque, pid, off, key, klen, val, vlen);
}
