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
 * differs from its cell is restored as changed.
 *
 * Every record is read as untrusted input (another client may write to the
 * topic, a disk may corrupt it): each field is checked before it is used
 * and a record that does not check out is refused whole with a reason. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/partials.h"
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

/* A record being loaded: the reader and the first reason it is refused.
 * Every field is checked before it is applied; a record refused part-way
 * leaves what came before it applied, which is why a refused state record
 * stops the merger (merger.c) instead of running on. */
typedef struct ld {
        tt_engine *e;
        tt_rd r;
        char why[200];
        unsigned version; /* of the week record being read */
} ld;

static __attribute__((format(printf, 2, 3))) int bad(ld *x, const char *fmt,
                                                     ...) {
        if (!x->why[0]) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(x->why, sizeof(x->why), fmt, ap);
                va_end(ap);
        }
        return TT_ERR_FORMAT;
}

static bool count_ok(int64_t v) {
        return v >= 0 && v <= TT_COUNT_MAX;
}

static bool time_ok(int64_t t) {
        return t >= TT_MIN_EVENT_TIME_MS && t < TT_MAX_EVENT_TIME_MS;
}

/* A saved cell, checked (tt_cell_check). */
static int load_cell(ld *x, tt_cell *c, const char *what) {
        tt_get_cell(&x->r, c);
        char d[160];
        if (tt_rd_ok(&x->r) && tt_cell_check(c, d, sizeof(d)))
                return bad(x, "%s: %s", what, d);
        return TT_ERR_OK;
}

/* A saved model slug, checked and interned. */
static int load_model(ld *x, uint32_t *id) {
        size_t n;
        const uint8_t *p = tt_get_bytes(&x->r, &n);
        if (!p)
                return TT_ERR_OK; /* truncated: reported at the end */
        char d[160];
        if (!tt_model_valid((tt_str){(const char *)p, n}, d, sizeof(d)))
                return bad(x, "%s", d);
        *id = tt_keytab_intern(x->e->keys, (const char *)p, n, NULL);
        return *id == TT_KEY_NONE ? TT_ERR_NOMEM : TT_ERR_OK;
}

/* A saved key string as the engine keeps it: origins by code, models
 * interned (so the pointer lives as long as the engine). */
static int load_str(ld *x, tt_dim dim, tt_str *out) {
        *out = TT_STR_NULL;
        uint8_t has = tt_get_u8(&x->r);
        if (has > 1)
                return bad(x, "string flag %u", (unsigned)has);
        if (!has)
                return TT_ERR_OK;
        if (dim == TT_DIM_ORIGIN) {
                size_t n;
                const uint8_t *p = tt_get_bytes(&x->r, &n);
                if (!p)
                        return TT_ERR_OK;
                if (n != 2 || !tt_origin_valid(TT_ORIGIN(p[0], p[1])))
                        return bad(x,
                                   "streak origin of %zu bytes is not "
                                   "AA..ZZ",
                                   n);
                *out = tt_origin_str(TT_ORIGIN(p[0], p[1]));
                return TT_ERR_OK;
        }
        uint32_t id = TT_KEY_NONE;
        int err = load_model(x, &id);
        if (!err && id != TT_KEY_NONE)
                *out = tt_keytab_str(x->e->keys, id);
        return err;
}

static int load_row(ld *x, tt_weekview *wv) {
        tt_rd *r = &x->r;
        uint8_t dim = tt_get_u8(r);
        uint32_t key = TT_KEY_NONE;
        int err;
        if (dim == TT_DIM_MODEL) {
                if ((err = load_model(x, &key)))
                        return err;
        } else if (dim == TT_DIM_ORIGIN || dim == TT_DIM_TOTAL) {
                key = tt_get_u32(r);
                if (tt_rd_ok(r) &&
                    (dim == TT_DIM_TOTAL
                         ? key != 0
                         : key > 0xffff || !tt_origin_valid((tt_origin)key)))
                        return bad(x, "row key %#" PRIx32 " of dimension %u",
                                   key, (unsigned)dim);
        } else if (tt_rd_ok(r)) {
                return bad(x, "row dimension %u", (unsigned)dim);
        }
        tt_cell c, em;
        if ((err = load_cell(x, &c, "row")))
                return err;
        em = c;
        unsigned flags = tt_get_u8(r);
        uint32_t revision = tt_get_u32(r);
        if (x->version == 1) {
                /* every row's emitted cell, then prev, share and rank as
                 * emitted: derived from the cells now */
                if (flags > 1)
                        return bad(x, "row: emitted flag %u", flags);
                flags = flags ? TT_ROW_EMITTED : 0;
                if ((err = load_cell(x, &em, "row as emitted")))
                        return err;
                (void)tt_get_u8(r);
                (void)tt_get_i64(r);
                (void)tt_get_f64(r);
                (void)tt_get_u32(r);
                if (flags && (em.tokens != c.tokens ||
                              em.prompt_tokens != c.prompt_tokens ||
                              em.requests != c.requests ||
                              em.last_origin != c.last_origin))
                        flags |= TT_ROW_TOUCHED;
        } else if (flags > 3) {
                return bad(x, "row: flags %u", flags);
        } else if (flags == (TT_ROW_EMITTED | TT_ROW_TOUCHED)) {
                if ((err = load_cell(x, &em, "row as emitted")))
                        return err;
        }
        if (!tt_rd_ok(r))
                return TT_ERR_OK; /* truncated: reported at the end */
        if (revision > INT32_MAX - 1)
                return bad(x, "row: revision %" PRIu32, revision);
        return tt_weekview_restore_row(wv, (tt_dim)dim, key, &c, flags,
                                       revision, &em);
}

static int load_streak(ld *x, tt_streak_result *s, tt_dim dim) {
        tt_rd *r = &x->r;
        memset(s, 0, sizeof(*s));
        uint8_t valid = tt_get_u8(r);
        if (valid > 1)
                return bad(x, "streak flag %u", (unsigned)valid);
        if (!valid)
                return TT_ERR_OK;
        uint8_t kind = tt_get_u8(r);
        int err = load_str(x, dim, &s->holder);
        s->holder_tokens = tt_get_i64(r);
        s->length_weeks = (int32_t)tt_get_u32(r);
        err = err ? err : load_str(x, dim, &s->previous_holder);
        err = err ? err : load_str(x, dim, &s->runner_up);
        s->runner_up_tokens = tt_get_i64(r);
        uint8_t has_margin = tt_get_u8(r);
        s->margin_pct = tt_get_f64(r);
        if (err || !tt_rd_ok(r))
                return err;
        if (kind > TT_STREAK_EXTENDED || !s->holder.ptr ||
            !count_ok(s->holder_tokens) || s->length_weeks < 1 ||
            s->length_weeks > TT_MAX_WEEK - TT_MIN_WEEK + 1 ||
            !count_ok(s->runner_up_tokens) || has_margin > 1 ||
            (has_margin && !isfinite(s->margin_pct)))
                return bad(x,
                           "streak: kind %u, holder tokens %" PRId64
                           ", length %" PRId32 ", runner-up tokens %" PRId64
                           ", margin flag %u",
                           (unsigned)kind, s->holder_tokens, s->length_weeks,
                           s->runner_up_tokens, (unsigned)has_margin);
        s->valid = true;
        s->kind = (tt_streak_kind)kind;
        s->has_margin = has_margin;
        return TT_ERR_OK;
}

static int load_view(ld *x, int32_t w) {
        tt_engine *e = x->e;
        tt_rd *r = &x->r;
        tt_weekview *wv = tt_engine_view_get_(e, w);
        if (!wv)
                return TT_ERR_NOMEM;
        uint8_t dirty = tt_get_u8(r);
        if (dirty > 1)
                return bad(x, "view dirty flag %u", (unsigned)dirty);
        /* Every part of a week with rows repeats the view's header: a
         * dirty part makes the week dirty, a clean one changes nothing. */
        if (dirty) {
                wv->dirty = true;
                e->pending = true;
        }
        uint32_t n = tt_get_u32(r);
        int err = TT_ERR_OK;
        for (uint32_t i = 0; !err && i < n && tt_rd_ok(r); i++)
                err = load_row(x, wv);
        if (err)
                return err;
        uint32_t nrules = tt_get_u32(r);
        if (tt_rd_ok(r) && nrules != wv->nrules)
                return bad(x,
                           "%" PRIu32 " streak rules saved, %zu configured "
                           "(saved with other --streak rules)",
                           nrules, wv->nrules);
        for (size_t i = 0; !err && i < nrules && tt_rd_ok(r); i++)
                err = load_streak(x, &wv->streaks[i], e->rules[i].dim);
        return err;
}

static int load_week(ld *x) {
        tt_rd *r = &x->r;
        int32_t w = (int32_t)tt_get_u32(r);
        if (tt_rd_ok(r) && !tt_week_valid(w))
                return bad(x, "week %" PRId32 " outside 2000-2099", w);
        int err = TT_ERR_OK;
        uint32_t nm = tt_get_u32(r);
        for (uint32_t i = 0; !err && i < nm && tt_rd_ok(r); i++) {
                size_t len;
                const uint8_t *p = tt_get_bytes(r, &len);
                tt_cell c;
                tt_str model = {(const char *)p, len};
                char d[160];
                if (p && !tt_model_valid(model, d, sizeof(d)))
                        return bad(x, "model cell %" PRIu32 ": %s", i, d);
                if ((err = load_cell(x, &c, "model cell")))
                        return err;
                if (tt_rd_ok(r))
                        err =
                            tt_shard_merge_model(x->e->shards[0], w, model, &c);
        }
        uint32_t no = tt_get_u32(r);
        for (uint32_t i = 0; !err && i < no && tt_rd_ok(r); i++) {
                uint32_t code = tt_get_u32(r);
                tt_cell c;
                if (tt_rd_ok(r) &&
                    (code > 0xffff || !tt_origin_valid((tt_origin)code)))
                        return bad(x,
                                   "origin cell %" PRIu32 ": code %#" PRIx32
                                   " is not AA..ZZ",
                                   i, code);
                if ((err = load_cell(x, &c, "origin cell")))
                        return err;
                if (tt_rd_ok(r))
                        err = tt_shard_merge_origin(x->e->shards[0], w,
                                                    (tt_origin)code, &c);
        }
        if (err)
                return err;
        uint8_t has_view = tt_get_u8(r);
        if (has_view > 1)
                return bad(x, "view flag %u", (unsigned)has_view);
        return has_view ? load_view(x, w) : TT_ERR_OK;
}

/* The meta record is checked whole first (two passes over the reader),
 * so a bad partition entry leaves the watermark untouched. */
static int load_meta(ld *x) {
        tt_engine *e = x->e;
        for (int apply = 0; apply < 2; apply++) {
                tt_rd r = x->r;
                int64_t wm = tt_get_i64(&r);
                int32_t closed = (int32_t)tt_get_u32(&r);
                if (!tt_rd_ok(&r))
                        return bad(x, "truncated");
                if ((wm != INT64_MIN && !time_ok(wm)) ||
                    (closed != INT32_MIN && !tt_week_valid(closed)))
                        return bad(x,
                                   "meta: watermark %" PRId64
                                   " or closed week %" PRId32 " out of range",
                                   wm, closed);
                if (apply) {
                        atomic_store(&e->watermark, wm);
                        atomic_store(&e->closed_through, closed);
                }
                uint32_t n = tt_get_u32(&r);
                for (uint32_t i = 0; i < n && tt_rd_ok(&r); i++) {
                        int32_t pid = (int32_t)tt_get_u32(&r);
                        int64_t max_time = tt_get_i64(&r);
                        uint8_t flags = tt_get_u8(&r);
                        if (!tt_rd_ok(&r))
                                break;
                        if (pid < 0 || pid >= e->conf.max_partitions ||
                            flags > 3 ||
                            (max_time != INT64_MIN && !time_ok(max_time)))
                                return bad(
                                    x,
                                    "meta: partition %" PRId32 " (max %" PRId32
                                    "), max time %" PRId64 ", flags %u invalid",
                                    pid, e->conf.max_partitions, max_time,
                                    (unsigned)flags);
                        if (!apply)
                                continue;
                        partition *p = &e->parts[pid];
                        p->live = true;
                        if (pid >= e->nparts)
                                e->nparts = pid + 1;
                        atomic_store(&p->max_time, max_time);
                        p->reported_idle = flags & 1;
                        /* Not restored: "at its end" is a fact of the run
                         * that reported it. A restored end let a
                         * --close-at-eof merger close everything before
                         * this run's counts arrived and leave with them
                         * unmerged (issue 9, defect 2). */
                        p->reported_eof = false;
                }
                if (!tt_rd_done(&r))
                        return bad(x, "%s",
                                   tt_rd_ok(&r) ? "bytes after its end"
                                                : "truncated");
                if (apply)
                        x->r = r;
        }
        return TT_ERR_OK;
}

int tt_engine_load(tt_engine *e, const void *rec, size_t len, char *errstr,
                   size_t errsize) {
        ld x = {e, tt_rd_init(rec, len), "", 0};
        uint8_t kind = tt_get_u8(&x.r), version = tt_get_u8(&x.r);
        int err;
        x.version = version;
        if (version != 1 && !(version == 2 && kind == 'W'))
                err = bad(&x, "unknown version");
        else if (kind == 'W')
                err = load_week(&x);
        else if (kind == 'M')
                err = load_meta(&x);
        else
                err = bad(&x, "unknown kind");
        if (!err && !tt_rd_done(&x.r))
                err = bad(&x, "%s",
                          tt_rd_ok(&x.r) ? "bytes after its end" : "truncated");
        if (err)
                snprintf(errstr, errsize,
                         "state record (%zu bytes, kind %c version %u): %s%s%s",
                         len, kind >= 32 && kind < 127 ? kind : '?',
                         (unsigned)version, tt_err2str(err),
                         x.why[0] ? ": " : "", x.why);
        return err;
}
