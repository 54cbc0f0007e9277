/* Encoding and decoding of the partials topic's records; see partials.h
 * for the layout and why it is shaped so. */
#include "tokentally/partials.h"

#include <stdint.h>
#include <string.h>

#include "tokentally/err.h"
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

/* One pass over a cells record; with v NULL it only validates. */
static int walk_cells(tt_rd r, const tt_partial_visitor *v, void *opaque) {
        uint32_t nrep = tt_get_u32(&r);
        tt_rd reports = r;
        for (uint32_t i = 0; i < nrep && tt_rd_ok(&r); i++)
                tt_rd_take(&r, 4 + 8 + 1);
        uint32_t n = tt_get_u32(&r);
        for (uint32_t i = 0; i < n && tt_rd_ok(&r); i++) {
                uint8_t kind = tt_get_u8(&r);
                int32_t week = (int32_t)tt_get_u32(&r);
                tt_cell c;
                int err = 0;
                if (kind == 'm') {
                        size_t len;
                        const uint8_t *p = tt_get_bytes(&r, &len);
                        tt_get_cell(&r, &c);
                        if (v && tt_rd_ok(&r))
                                err = v->model(opaque, week,
                                               (tt_str){(const char *)p, len},
                                               &c);
                } else if (kind == 'o') {
                        tt_origin o = (tt_origin)tt_get_u32(&r);
                        tt_get_cell(&r, &c);
                        if (v && tt_rd_ok(&r))
                                err = v->origin(opaque, week, o, &c);
                } else {
                        return TT_ERR_FORMAT;
                }
                if (err)
                        return err;
        }
        if (!tt_rd_done(&r))
                return TT_ERR_FORMAT;
        for (uint32_t i = 0; v && i < nrep; i++) {
                int32_t pid = (int32_t)tt_get_u32(&reports);
                int64_t max_time = tt_get_i64(&reports);
                unsigned flags = tt_get_u8(&reports);
                v->report(opaque, pid, max_time, flags);
        }
        return TT_ERR_OK;
}

int tt_partial_decode(const void *rec, size_t len, const tt_partial_visitor *v,
                      void *opaque) {
        tt_rd r = tt_rd_init(rec, len);
        uint8_t kind = tt_get_u8(&r), version = tt_get_u8(&r);
        if (!tt_rd_ok(&r) || version != 1)
                return TT_ERR_FORMAT;
        if (kind == 'C') {
                int err = walk_cells(r, NULL, NULL);
                return err ? err : walk_cells(r, v, opaque);
        }
        if (kind != 'E')
                return TT_ERR_FORMAT;
        int32_t pid = (int32_t)tt_get_u32(&r);
        int64_t off = tt_get_i64(&r);
        const uint8_t *key = NULL, *val = NULL;
        size_t klen = 0, vlen = 0;
        if (tt_get_u8(&r))
                key = tt_get_bytes(&r, &klen);
        if (tt_get_u8(&r))
                val = tt_get_bytes(&r, &vlen);
        if (!tt_rd_done(&r))
                return TT_ERR_FORMAT;
        return v->event(opaque, pid, off, key, klen, val, vlen);
}
