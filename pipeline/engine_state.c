/* The merger engine's state as records for the changelog topic: one record
 * per week it holds (the open week's cells, a closed week's rows with what
 * was last emitted for each, and its streak results) and one meta record
 * (watermark, closed weeks, partitions). Restoring them gives an engine
 * that emits exactly what the saved one would have: same revisions, same
 * "changed since last emitted" decisions.
 *
 * Format (little-endian, wire.h), version byte first so that a later
 * layout can be told apart:
 *   meta: 'M' 1 | i64 watermark | u32 closed_through | u32 n |
 *         n x (u32 pid, i64 max_time, u8 flags: 1 idle, 2 eof)
 *   week: 'W' 2 | u32 week | u32 nm | nm x (bytes model, cell) |
 *         u32 no | no x (u32 origin, cell) | u8 has_view | view
 *   view: u8 dirty | u32 nrows | rows | u32 nrules | results
 * A week may be saved as several such records (parts, tt_engine_save's
 * max_part): each cell and row is in exactly one, the view's header in
 * each that has the view; loading them all, in any order, restores it.
 *   row:  u8 dim | bytes model or u32 key | cell | u8 flags (1 emitted,
 *         2 changed since) | u32 revision | [cell as emitted, when both]
 * Derived fields (prev, share, rank) are recomputed at every emission, and
 * what was last emitted is the current cell unless a row changed since, so
 * version 2 keeps only that. A version 1 week record (every row's emitted
 * cell, prev, share and rank) is still read: a row whose emitted cell
 * differs from its cell is restored as changed. */
#include <stdio.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/week.h"
#include "tokentally/wire.h"

#include "engine_impl.h"

#define REC_MAX (64u << 20)

static int put_str(tt_buf *b, tt_str s) {
        int err = tt_put_u8(b, s.ptr != NULL);
        return err || !s.ptr ? err : tt_put_bytes(b, s.ptr, s.len);
}

/* ---- save -------------------------------------------------------------- */

/* A week's state cut into parts of about max bytes, each a whole record
 * of the layout above (every section present, possibly empty), so that a
 * week of 10^6 models fits a topic's max.message.bytes: shard cells and
 * view rows are each in exactly one part, the view's header (dirty, streak
 * results) in every part that has rows. Sections: 0 shard model cells, 1
 * shard origin cells, 2 view rows, 3 done. */
typedef struct parts {
        tt_engine *e;
        tt_buf *b;
        int32_t week;
        const tt_weekview *wv;
        size_t max;
        tt_engine_put_fn put;
        void *opaque;
        uint32_t part;
        int section;
        size_t count_at; /* the current section's count */
        uint32_t count;
        uint32_t items; /* in this part */
        int err;
} parts;

static void part_start(parts *p) {
        tt_buf *b = p->b;
        tt_buf_reset(b);
        int err = tt_put_u8(b, 'W');
        err = err ? err : tt_put_u8(b, 2);
        err = err ? err : tt_put_u32(b, (uint32_t)p->week);
        p->count_at = b->len;
        p->count = 0;
        p->items = 0;
        p->section = 0;
        p->err = err ? err : tt_put_u32(b, 0);
}

static int put_results(tt_buf *b, const tt_weekview *wv) {
        int err = tt_put_u32(b, (uint32_t)wv->nrules);
        for (size_t i = 0; !err && i < wv->nrules; i++) {
                const tt_streak_result *s = &wv->streaks[i];
                err = tt_put_u8(b, s->valid);
                if (err || !s->valid)
                        continue;
                err = tt_put_u8(b, (uint8_t)s->kind);
                err = err ? err : put_str(b, s->holder);
                err = err ? err : tt_put_i64(b, s->holder_tokens);
                err = err ? err : tt_put_u32(b, (uint32_t)s->length_weeks);
                err = err ? err : put_str(b, s->previous_holder);
                err = err ? err : put_str(b, s->runner_up);
                err = err ? err : tt_put_i64(b, s->runner_up_tokens);
                err = err ? err : tt_put_u8(b, s->has_margin);
                err = err ? err : tt_put_f64(b, s->margin_pct);
        }
        return err;
}

/* Closes the current section and opens the next. */
static void part_next_section(parts *p) {
        tt_buf *b = p->b;
        if (p->err)
                return;
        tt_patch_u32(b, p->count_at, p->count);
        int err = TT_ERR_OK;
        if (p->section == 0) {
                p->count_at = b->len;
                err = tt_put_u32(b, 0);
        } else if (p->section == 1) {
                err = tt_put_u8(b, p->wv != NULL);
                if (!err && p->wv) {
                        err = tt_put_u8(b, p->wv->dirty);
                        p->count_at = b->len;
                        err = err ? err : tt_put_u32(b, 0);
                }
        } else if (p->section == 2) {
                err = put_results(b, p->wv);
        }
        p->section += p->section == 1 && !p->wv ? 2 : 1;
        p->count = 0;
        p->err = err;
}

/* Finishes the part in b (every later section empty) and hands it out. */
static void part_flush(parts *p) {
        while (!p->err && p->section < 3)
                part_next_section(p);
        if (!p->err)
                p->err = p->put(p->opaque, p->week, p->part++, p->b->data,
                                p->b->len);
}

/* Before an item of section sec: a new part when this one is full. */
static void part_item(parts *p, int sec) {
        if (p->err)
                return;
        if (p->b->len >= p->max && p->items) {
                part_flush(p);
                if (!p->err)
                        part_start(p);
        }
        while (!p->err && p->section < sec)
                part_next_section(p);
        p->count++;
        p->items++;
}

static void save_model(void *opaque, tt_str model, const tt_cell *c) {
        parts *p = opaque;
        part_item(p, 0);
        if (!p->err)
                p->err = tt_put_bytes(p->b, model.ptr, model.len);
        if (!p->err)
                p->err = tt_put_cell(p->b, c);
}

static void save_origin(void *opaque, tt_origin o, const tt_cell *c) {
        parts *p = opaque;
        part_item(p, 1);
        if (!p->err)
                p->err = tt_put_u32(p->b, o);
        if (!p->err)
                p->err = tt_put_cell(p->b, c);
}

static void save_row(parts *p, uint32_t i) {
        const tt_engine *e = p->e;
        const tt_weekview *wv = p->wv;
        tt_buf *b = p->b;
        part_item(p, 2);
        if (p->err)
                return;
        const tt_row *r = &wv->rows[i];
        int err = tt_put_u8(b, (uint8_t)tt_row_dim(r));
        if (!err && tt_row_dim(r) == TT_DIM_MODEL) {
                tt_str k = tt_keytab_str(e->keys, r->key);
                err = tt_put_bytes(b, k.ptr, k.len);
        } else if (!err) {
                err = tt_put_u32(b, r->key);
        }
        tt_cell c;
        tt_ccell_get(&r->c, wv->start_ms, &c);
        unsigned flags = r->c.spare[1] & (TT_ROW_EMITTED | TT_ROW_TOUCHED);
        err = err ? err : tt_put_cell(b, &c);
        err = err ? err : tt_put_u8(b, (uint8_t)flags);
        err = err ? err : tt_put_u32(b, r->revision);
        if (!err && flags == (TT_ROW_EMITTED | TT_ROW_TOUCHED)) {
                tt_weekview_emitted_cell(wv, i, &c);
                err = tt_put_cell(b, &c);
        }
        p->err = err;
}

static int save_week(tt_engine *e, tt_buf *b, int32_t w, size_t max,
                     tt_engine_put_fn put, void *opaque) {
        static const tt_shard_visitor v = {save_model, save_origin};
        parts p = {
            e, b, w, tt_engine_view_find_(e, w), max, put, opaque, 0, 0, 0,
            0, 0, 0};
        part_start(&p);
        tt_shard_visit(e->shards[0], w, &v, &p);
        if (p.wv)
                for (uint32_t i = 0; i < p.wv->n && !p.err; i++)
                        save_row(&p, i);
        part_flush(&p);
        return p.err;
}

static int save_meta(tt_engine *e, tt_buf *b) {
        tt_buf_reset(b);
        int err = tt_put_u8(b, 'M');
        err = err ? err : tt_put_u8(b, 1);
        err = err ? err : tt_put_i64(b, atomic_load(&e->watermark));
        err = err ? err
                  : tt_put_u32(b, (uint32_t)atomic_load(&e->closed_through));
        uint32_t n = 0;
        for (int32_t i = 0; i < e->nparts; i++)
                n += e->parts[i].live;
        err = err ? err : tt_put_u32(b, n);
        for (int32_t i = 0; !err && i < e->nparts; i++) {
                const partition *p = &e->parts[i];
                if (!p->live)
                        continue;
                err = tt_put_u32(b, (uint32_t)i);
                err = err ? err : tt_put_i64(b, atomic_load(&p->max_time));
                err = err ? err
                          : tt_put_u8(b, (uint8_t)(p->reported_idle |
                                                   p->reported_eof << 1));
        }
        return err;
}

static bool shard_has(const tt_shard *s, int32_t w) {
        for (size_t k = 0; k < tt_shard_weeks(s); k++)
                if (tt_shard_week_at(s, k) == w)
                        return true;
        return false;
}

int tt_engine_save(tt_engine *e, size_t max_part, tt_engine_put_fn put,
                   void *opaque) {
        if (e->conf.nshards != 1)
                return TT_ERR_INVAL; /* merger engines only */
        tt_buf b;
        tt_buf_init(&b, REC_MAX);
        int err = TT_ERR_OK;
        const tt_shard *s = e->shards[0];
        for (size_t k = 0; !err && k < tt_shard_weeks(s); k++)
                err = save_week(e, &b, tt_shard_week_at(s, k), max_part, put,
                                opaque);
        for (size_t i = 0; !err && i < e->nviews; i++) {
                int32_t w = e->views[i]->week;
                if (shard_has(s, w))
                        continue; /* saved with the shard's cells */
                err = save_week(e, &b, w, max_part, put, opaque);
        }
        err = err ? err : save_meta(e, &b);
        err = err ? err : put(opaque, NO_WEEK, 0, b.data, b.len);
        tt_buf_free(&b);
        return err;
}

/* ---- load -------------------------------------------------------------- */

/* A saved key string as the engine keeps it: origins by code, models
 * interned (so the pointer lives as long as the engine). */
static tt_str load_str(tt_engine *e, tt_rd *r, tt_dim dim) {
        if (!tt_get_u8(r))
                return TT_STR_NULL;
        size_t n;
        const uint8_t *p = tt_get_bytes(r, &n);
        if (!p)
                return TT_STR_NULL;
        if (dim == TT_DIM_ORIGIN && n == 2)
                return tt_origin_str(TT_ORIGIN(p[0], p[1]));
        uint32_t id = tt_keytab_intern(e->keys, (const char *)p, n, NULL);
        if (id == TT_KEY_NONE) {
                r->bad = true;
                return TT_STR_NULL;
        }
        return tt_keytab_str(e->keys, id);
}

static int load_view(tt_engine *e, tt_rd *r, int32_t w, unsigned version) {
        tt_weekview *wv = tt_engine_view_get_(e, w);
        if (!wv)
                return TT_ERR_NOMEM;
        /* Every part of a week with rows repeats the view's header. */
        if (tt_get_u8(r)) {
                wv->dirty = true;
                e->pending = true;
        }
        uint32_t n = tt_get_u32(r);
        for (uint32_t i = 0; i < n && tt_rd_ok(r); i++) {
                tt_dim dim = (tt_dim)tt_get_u8(r);
                uint32_t key;
                if (dim == TT_DIM_MODEL) {
                        size_t len;
                        const uint8_t *p = tt_get_bytes(r, &len);
                        key = p ? tt_keytab_intern(e->keys, (const char *)p,
                                                   len, NULL)
                                : TT_KEY_NONE;
                        if (key == TT_KEY_NONE)
                                return TT_ERR_FORMAT;
                } else if (dim == TT_DIM_ORIGIN || dim == TT_DIM_TOTAL) {
                        key = tt_get_u32(r);
                } else {
                        return TT_ERR_FORMAT;
                }
                tt_cell c, em;
                tt_get_cell(r, &c);
                em = c;
                unsigned flags = tt_get_u8(r);
                uint32_t revision = tt_get_u32(r);
                if (version == 1) {
                        flags = flags ? TT_ROW_EMITTED : 0;
                        tt_get_cell(r, &em);
                        (void)tt_get_u8(r);  /* prev, share and rank as */
                        (void)tt_get_i64(r); /* emitted: derived from */
                        (void)tt_get_f64(r); /* the cells now */
                        (void)tt_get_u32(r);
                        if (flags && (em.tokens != c.tokens ||
                                      em.prompt_tokens != c.prompt_tokens ||
                                      em.requests != c.requests ||
                                      em.last_origin != c.last_origin))
                                flags |= TT_ROW_TOUCHED;
                } else if (flags == (TT_ROW_EMITTED | TT_ROW_TOUCHED)) {
                        tt_get_cell(r, &em);
                } else if (flags > 3) {
                        return TT_ERR_FORMAT;
                }
                if (!tt_rd_ok(r))
                        return TT_ERR_FORMAT;
                int err = tt_weekview_restore_row(wv, dim, key, &c, flags,
                                                  revision, &em);
                if (err)
                        return err;
        }
        uint32_t nrules = tt_get_u32(r);
        if (nrules != wv->nrules)
                return TT_ERR_FORMAT; /* saved with other --streak rules */
        for (size_t i = 0; i < nrules && tt_rd_ok(r); i++) {
                tt_streak_result *s = &wv->streaks[i];
                memset(s, 0, sizeof(*s));
                s->valid = tt_get_u8(r);
                if (!s->valid)
                        continue;
                tt_dim dim = e->rules[i].dim;
                s->kind = (tt_streak_kind)tt_get_u8(r);
                s->holder = load_str(e, r, dim);
                s->holder_tokens = tt_get_i64(r);
                s->length_weeks = (int32_t)tt_get_u32(r);
                s->previous_holder = load_str(e, r, dim);
                s->runner_up = load_str(e, r, dim);
                s->runner_up_tokens = tt_get_i64(r);
                s->has_margin = tt_get_u8(r);
                s->margin_pct = tt_get_f64(r);
        }
        return tt_rd_ok(r) ? TT_ERR_OK : TT_ERR_FORMAT;
}

static int load_week(tt_engine *e, tt_rd *r, unsigned version) {
        int32_t w = (int32_t)tt_get_u32(r);
        int err = TT_ERR_OK;
        uint32_t nm = tt_get_u32(r);
        for (uint32_t i = 0; !err && i < nm && tt_rd_ok(r); i++) {
                size_t len;
                const uint8_t *p = tt_get_bytes(r, &len);
                tt_cell c;
                tt_get_cell(r, &c);
                if (tt_rd_ok(r))
                        err = tt_shard_merge_model(
                            e->shards[0], w, (tt_str){(const char *)p, len},
                            &c);
        }
        uint32_t no = tt_get_u32(r);
        for (uint32_t i = 0; !err && i < no && tt_rd_ok(r); i++) {
                tt_origin o = (tt_origin)tt_get_u32(r);
                tt_cell c;
                tt_get_cell(r, &c);
                if (tt_rd_ok(r))
                        err = tt_shard_merge_origin(e->shards[0], w, o, &c);
        }
        if (!err && tt_get_u8(r))
                err = load_view(e, r, w, version);
        return err;
}

static int load_meta(tt_engine *e, tt_rd *r) {
        atomic_store(&e->watermark, tt_get_i64(r));
        atomic_store(&e->closed_through, (int32_t)tt_get_u32(r));
        uint32_t n = tt_get_u32(r);
        for (uint32_t i = 0; i < n && tt_rd_ok(r); i++) {
                int32_t pid = (int32_t)tt_get_u32(r);
                int64_t max_time = tt_get_i64(r);
                uint8_t flags = tt_get_u8(r);
                if (pid < 0 || pid >= e->conf.max_partitions)
                        return TT_ERR_FORMAT;
                partition *p = &e->parts[pid];
                p->live = true;
                if (pid >= e->nparts)
                        e->nparts = pid + 1;
                atomic_store(&p->max_time, max_time);
                p->reported_idle = flags & 1;
                p->reported_eof = flags & 2;
        }
        return TT_ERR_OK;
}

int tt_engine_load(tt_engine *e, const void *rec, size_t len, char *errstr,
                   size_t errsize) {
        tt_rd r = tt_rd_init(rec, len);
        uint8_t kind = tt_get_u8(&r), version = tt_get_u8(&r);
        int err;
        if (kind == 'W' && (version == 1 || version == 2))
                err = load_week(e, &r, version);
        else if (version != 1)
                err = TT_ERR_FORMAT;
        else if (kind == 'M')
                err = load_meta(e, &r);
        else
                err = TT_ERR_FORMAT;
        if (!err && !tt_rd_done(&r))
                err = TT_ERR_FORMAT;
        if (err)
                snprintf(errstr, errsize,
                         "state record (%zu bytes, kind %c version %u): %s",
                         len, kind >= 32 && kind < 127 ? kind : '?',
                         (unsigned)version, tt_err2str(err));
        return err;
}
