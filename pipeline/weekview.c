/* Merged rows of one week and their re-emission rules; see weekview.h. */
#include "tokentally/weekview.h"

#include <stdlib.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/mem.h"
#include "tokentally/origin_map.h"
#include "tokentally/week.h"

tt_weekview *tt_weekview_new(int32_t week, size_t nrules) {
        tt_weekview *wv = tt_calloc(1, sizeof(*wv));
        if (!wv)
                return NULL;
        wv->week = week;
        wv->start_ms = tt_week_start(week);
        tt_week_name(week, wv->name, sizeof(wv->name));
        wv->nrules = nrules;
        wv->index_mask = 63;
        wv->index = tt_calloc(64, sizeof(uint32_t));
        wv->streaks = tt_calloc(nrules ? nrules : 1, sizeof(tt_streak_result));
        if (!wv->index || !wv->streaks) {
                tt_weekview_destroy(wv);
                return NULL;
        }
        return wv;
}

void tt_weekview_destroy(tt_weekview *wv) {
        if (!wv)
                return;
        tt_free(wv->rows);
        tt_free(wv->index);
        tt_free(wv->order);
        tt_free(wv->streaks);
        tt_free(wv);
}

static uint32_t slot_of(tt_dim dim, uint32_t key, uint32_t mask) {
        uint64_t h = ((uint64_t)dim << 32 | key) * 0x9E3779B97F4A7C15ULL;
        return (uint32_t)(h >> 32) & mask;
}

static uint32_t *find_slot(const tt_weekview *wv, tt_dim dim, uint32_t key) {
        for (uint32_t i = slot_of(dim, key, wv->index_mask);;
             i = (i + 1) & wv->index_mask) {
                uint32_t r = wv->index[i];
                if (!r ||
                    (wv->rows[r - 1].dim == dim && wv->rows[r - 1].key == key))
                        return &wv->index[i];
        }
}

const tt_row *tt_weekview_find(const tt_weekview *wv, tt_dim dim,
                               uint32_t key) {
        uint32_t r = *find_slot(wv, dim, key);
        return r ? &wv->rows[r - 1] : NULL;
}

static int grow_index(tt_weekview *wv) {
        uint32_t ncap = (wv->index_mask + 1) * 2;
        uint32_t *ni = tt_calloc(ncap, sizeof(uint32_t));
        if (!ni)
                return TT_ERR_NOMEM;
        tt_free(wv->index);
        wv->index = ni;
        wv->index_mask = ncap - 1;
        for (uint32_t r = 0; r < wv->n; r++)
                *find_slot(wv, wv->rows[r].dim, wv->rows[r].key) = r + 1;
        return TT_ERR_OK;
}

tt_row *tt_weekview_row(tt_weekview *wv, tt_dim dim, uint32_t key) {
        uint32_t *sl = find_slot(wv, dim, key);
        if (*sl)
                return &wv->rows[*sl - 1];
        if (wv->n == wv->cap) {
                uint32_t ncap = wv->cap ? wv->cap * 2 : 32;
                tt_row *nr = tt_realloc(wv->rows, ncap * sizeof(*nr));
                if (!nr)
                        return NULL;
                wv->rows = nr;
                wv->cap = ncap;
        }
        tt_row *row = &wv->rows[wv->n];
        memset(row, 0, sizeof(*row));
        row->dim = dim;
        row->key = key;
        *sl = ++wv->n;
        if ((uint64_t)wv->n * 2 > (uint64_t)wv->index_mask + 1 &&
            grow_index(wv)) {
                /* The row exists but is not indexed yet; undo it. */
                wv->n--;
                *find_slot(wv, dim, key) = 0;
                return NULL;
        }
        return row;
}

void tt_weekview_clear_counts(tt_weekview *wv) {
        for (uint32_t r = 0; r < wv->n; r++)
                memset(&wv->rows[r].c, 0, sizeof(tt_cell));
}

bool tt_weekview_has_events(const tt_weekview *wv) {
        const tt_row *t = tt_weekview_find(wv, TT_DIM_TOTAL, 0);
        return t && t->c.requests > 0;
}

static tt_str row_key(const tt_row *r, const tt_keytab *keys) {
        switch (r->dim) {
        case TT_DIM_TOTAL:
                return TT_STR_LIT("*");
        case TT_DIM_ORIGIN:
                return tt_origin_str((tt_origin)r->key);
        default:
                return tt_keytab_str(keys, r->key);
        }
}

typedef struct sort_ctx {
        const tt_weekview *wv;
        const tt_keytab *keys;
} sort_ctx;

/* Emission order: dimension, then rank order (tokens desc, key asc). */
static int cmp_rows(const void *a, const void *b, void *arg) {
        const sort_ctx *ctx = arg;
        const tt_row *x = &ctx->wv->rows[*(const uint32_t *)a];
        const tt_row *y = &ctx->wv->rows[*(const uint32_t *)b];
        if (x->dim != y->dim)
                return x->dim < y->dim ? -1 : 1;
        if (x->c.tokens != y->c.tokens)
                return x->c.tokens > y->c.tokens ? -1 : 1;
        return tt_str_cmp(row_key(x, ctx->keys), row_key(y, ctx->keys));
}

int tt_weekview_derive(tt_weekview *wv, const tt_weekview *prev_week,
                       const tt_keytab *keys) {
        uint32_t *order =
            tt_realloc(wv->order, (wv->cap ? wv->cap : 1) * sizeof(uint32_t));
        if (!order)
                return TT_ERR_NOMEM;
        wv->order = order;
        /* Rows with no events (a key seen in a provisional merge that has
         * none now cannot happen: counts only grow) are skipped. */
        uint32_t n = 0;
        for (uint32_t r = 0; r < wv->n; r++)
                if (wv->rows[r].c.requests)
                        order[n++] = r;
        sort_ctx ctx = {wv, keys};
        qsort_r(order, n, sizeof(uint32_t), cmp_rows, &ctx);
        const tt_row *total = tt_weekview_find(wv, TT_DIM_TOTAL, 0);
        int64_t total_tokens = total ? total->c.tokens : 0;
        int32_t rank = 0;
        tt_dim dim = TT_DIM_TOTAL;
        for (uint32_t i = 0; i < n; i++) {
                tt_row *row = &wv->rows[order[i]];
                if (i == 0 || row->dim != dim) {
                        dim = row->dim;
                        rank = 0;
                }
                row->rank = ++rank;
                row->share = total_tokens ? (double)row->c.tokens * 100.0 /
                                                (double)total_tokens
                                          : 0.0;
                const tt_row *p =
                    prev_week ? tt_weekview_find(prev_week, row->dim, row->key)
                              : NULL;
                row->has_prev = p && p->c.requests > 0;
                row->prev = row->has_prev ? p->c.tokens : 0;
        }
        /* Remember how many rows are in order[]: the tail of rows with no
         * events is never emitted. */
        for (uint32_t r = n; r < wv->cap && r < wv->n; r++)
                order[r] = UINT32_MAX;
        return TT_ERR_OK;
}

static bool content_changed(const tt_row *r) {
        return !r->emitted || r->c.tokens != r->em.tokens ||
               r->c.prompt_tokens != r->em.prompt_tokens ||
               r->c.completion_tokens != r->em.completion_tokens ||
               r->c.requests != r->em.requests ||
               (r->dim == TT_DIM_MODEL &&
                r->c.last_origin != r->em.last_origin) ||
               r->has_prev != r->em_has_prev || r->prev != r->em_prev ||
               r->share != r->em_share || r->rank != r->em_rank;
}

static bool counts_changed(const tt_row *r) {
        return !r->emitted || r->c.requests != r->em.requests ||
               r->c.tokens != r->em.tokens;
}

int tt_weekview_emit(tt_weekview *wv, tt_emit_mode mode, const tt_keytab *keys,
                     const tt_sink *sink, void *opaque, int64_t now_ms,
                     uint64_t *count) {
        *count = 0;
        for (uint32_t i = 0; i < wv->n && wv->order[i] != UINT32_MAX; i++) {
                tt_row *row = &wv->rows[wv->order[i]];
                bool emit;
                int32_t revision;
                tt_status status;
                switch (mode) {
                case TT_EMIT_PROVISIONAL:
                        emit = counts_changed(row);
                        status = TT_STATUS_PROVISIONAL;
                        revision = 0;
                        break;
                case TT_EMIT_FINAL:
                        emit = true;
                        /* Emitted by an earlier run: a revision above any
                         * it gave (at-least-once restart). */
                        status = wv->reemit_revision > 0 ? TT_STATUS_REVISED
                                                         : TT_STATUS_FINAL;
                        revision = wv->reemit_revision;
                        break;
                default:
                        emit = content_changed(row);
                        status = TT_STATUS_REVISED;
                        /* A key first seen after its week closed has no
                         * FINAL record; its first record is revision 0. */
                        revision = row->emitted ? row->revision + 1 : 0;
                        break;
                }
                if (!emit)
                        continue;
                tt_rollup out;
                memset(&out, 0, sizeof(out));
                memcpy(out.week, wv->name, sizeof(out.week));
                out.week_start_ms = wv->start_ms;
                out.dimension = row->dim;
                out.key = row_key(row, keys);
                out.origin = row->dim == TT_DIM_MODEL
                                 ? tt_origin_str(row->c.last_origin)
                                 : TT_STR_NULL;
                out.tokens = row->c.tokens;
                out.prompt_tokens = row->c.prompt_tokens;
                out.completion_tokens = row->c.completion_tokens;
                out.requests = row->c.requests;
                out.has_prev = row->has_prev;
                out.prev_tokens = row->prev;
                out.has_growth = row->has_prev && row->prev != 0;
                if (out.has_growth)
                        out.wow_growth_pct =
                            /* in double: the int64 difference of two
                             * counts may overflow */
                            ((double)row->c.tokens - (double)row->prev) /
                            (double)row->prev * 100.0;
                out.share_pct = row->share;
                out.rank = row->rank;
                out.status = status;
                out.revision = revision;
                out.emitted_at_ms = now_ms;
                int err = sink->rollup(opaque, &out);
                if (err)
                        return err;
                (*count)++;
                row->emitted = true;
                row->revision = revision;
                if (revision > wv->top_revision)
                        wv->top_revision = revision;
                row->em = row->c;
                row->em_has_prev = row->has_prev;
                row->em_prev = row->prev;
                row->em_share = row->share;
                row->em_rank = row->rank;
        }
        return TT_ERR_OK;
}
