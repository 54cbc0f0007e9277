/* Merged rows of one week and their re-emission rules; see weekview.h. */
#include "tokentally/weekview.h"

#include <stdlib.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/keyorder.h"
#include "tokentally/mem.h"
#include "tokentally/origin_map.h"
#include "tokentally/week.h"

#define DIM(r) ((r)->c.spare[0])
#define FLAGS(r) ((r)->c.spare[1])

tt_weekview *tt_weekview_new(int32_t week, size_t nrules) {
        tt_weekview *wv = tt_calloc(1, sizeof(*wv));
        if (!wv)
                return NULL;
        wv->week = week;
        wv->start_ms = tt_week_start(week);
        tt_week_name(week, wv->name, sizeof(wv->name));
        wv->nrules = nrules;
        wv->isize = 64;
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
        tt_free(wv->snaps);
        tt_free(wv->prov_req);
        tt_free(wv->streaks);
        tt_free(wv);
}

/* ---- index -------------------------------------------------------------- */

/* Home slot by multiply-shift, so the index may have any size and closed
 * weeks need no power-of-two slack. */
static uint32_t home(tt_dim dim, uint32_t key, uint32_t size) {
        uint64_t h = ((uint64_t)dim << 32 | key) * 0x9E3779B97F4A7C15ULL;
        return (uint32_t)(((h >> 32) * size) >> 32);
}

static uint32_t *find_slot(const tt_weekview *wv, tt_dim dim, uint32_t key) {
        for (uint32_t i = home(dim, key, wv->isize);;) {
                uint32_t r = wv->index[i];
                if (!r || (DIM(&wv->rows[r - 1]) == dim &&
                           wv->rows[r - 1].key == key))
                        return &wv->index[i];
                if (++i == wv->isize)
                        i = 0;
        }
}

void tt_weekview_prefetch(const tt_weekview *wv, tt_dim dim, uint32_t key) {
        if (wv->index)
                __builtin_prefetch(&wv->index[home(dim, key, wv->isize)]);
}

/* Without an index: the rows from the end (a merge adds the ORIGIN and
 * TOTAL rows after the models). */
static const tt_row *scan(const tt_weekview *wv, tt_dim dim, uint32_t key) {
        for (uint32_t r = wv->n; r-- > 0;)
                if (DIM(&wv->rows[r]) == dim && wv->rows[r].key == key)
                        return &wv->rows[r];
        return NULL;
}

const tt_row *tt_weekview_find(const tt_weekview *wv, tt_dim dim,
                               uint32_t key) {
        if (!wv->index)
                return scan(wv, dim, key);
        uint32_t r = *find_slot(wv, dim, key);
        return r ? &wv->rows[r - 1] : NULL;
}

static void reindex(tt_weekview *wv) {
        memset(wv->index, 0, (size_t)wv->isize * sizeof(uint32_t));
        for (uint32_t r = 0; r < wv->n; r++)
                *find_slot(wv, (tt_dim)DIM(&wv->rows[r]), wv->rows[r].key) =
                    r + 1;
}

void tt_weekview_remap_keys(tt_weekview *wv, const uint32_t *map) {
        for (uint32_t r = 0; r < wv->n; r++)
                if (DIM(&wv->rows[r]) == TT_DIM_MODEL)
                        wv->rows[r].key = map[wv->rows[r].key];
        if (wv->index)
                reindex(wv);
}

static int rebuild_index(tt_weekview *wv, uint32_t size) {
        uint32_t *ni = tt_calloc_touch(size, sizeof(uint32_t));
        if (!ni)
                return TT_ERR_NOMEM;
        tt_free(wv->index);
        wv->index = ni;
        wv->isize = size;
        reindex(wv);
        return TT_ERR_OK;
}

/* A closed week's index size: about 67% load. */
static uint64_t closed_isize(uint32_t n) {
        return (uint64_t)n * 3 / 2 + 16;
}

void tt_weekview_drop_index(tt_weekview *wv) {
        tt_free(wv->index);
        wv->index = NULL;
        wv->isize = 0;
}

int tt_weekview_index(tt_weekview *wv) {
        return wv->index ? TT_ERR_OK
                         : rebuild_index(wv, (uint32_t)closed_isize(wv->n));
}

int tt_weekview_reserve(tt_weekview *wv, uint64_t more) {
        uint64_t want = wv->n + more;
        if (want >= UINT32_MAX / 2)
                return TT_ERR_NOMEM;
        if (want > wv->cap) {
                tt_row *nr = tt_realloc(wv->rows, want * sizeof(*nr));
                if (!nr)
                        return TT_ERR_NOMEM;
                wv->rows = nr;
                wv->cap = (uint32_t)want;
        }
        if (want * 10 > (uint64_t)wv->isize * 7)
                return rebuild_index(wv, (uint32_t)(want * 2 + 64));
        return TT_ERR_OK;
}

tt_row *tt_weekview_row(tt_weekview *wv, tt_dim dim, uint32_t key) {
        if (tt_weekview_index(wv))
                return NULL;
        uint32_t *sl = find_slot(wv, dim, key);
        if (*sl)
                return &wv->rows[*sl - 1];
        if (wv->n == UINT32_MAX - 1)
                return NULL;
        if (wv->n == wv->cap) {
                uint32_t ncap = wv->cap < 32               ? 32
                                : wv->cap > UINT32_MAX / 2 ? UINT32_MAX - 1
                                                           : wv->cap * 2;
                tt_row *nr = tt_realloc(wv->rows, (size_t)ncap * sizeof(*nr));
                if (!nr)
                        return NULL;
                wv->rows = nr;
                wv->cap = ncap;
        }
        /* Linear probing stays short up to 70% load; past it, grow to
         * 50% so that the next growth is a doubling away. */
        if ((uint64_t)(wv->n + 1) * 10 > (uint64_t)wv->isize * 7) {
                uint64_t size = (uint64_t)(wv->n + 1) * 2 + 64;
                if (size > UINT32_MAX || rebuild_index(wv, (uint32_t)size))
                        return NULL;
                sl = find_slot(wv, dim, key);
        }
        tt_row *row = &wv->rows[wv->n];
        memset(row, 0, sizeof(*row));
        DIM(row) = (uint8_t)dim;
        row->key = key;
        *sl = ++wv->n;
        return row;
}

/* ---- changes ------------------------------------------------------------ */

/* Before the first change of a closed week's row since its last emission:
 * keep the cell as emitted. */
static int touch(tt_weekview *wv, uint32_t i) {
        tt_row *row = &wv->rows[i];
        if (FLAGS(row) & TT_ROW_TOUCHED)
                return TT_ERR_OK;
        if (FLAGS(row) & TT_ROW_EMITTED) {
                if (wv->nsnaps == wv->capsnaps) {
                        uint32_t ncap = wv->capsnaps ? wv->capsnaps * 2 : 16;
                        tt_row_snap *ns =
                            tt_realloc(wv->snaps, ncap * sizeof(*ns));
                        if (!ns)
                                return TT_ERR_NOMEM;
                        wv->snaps = ns;
                        wv->capsnaps = ncap;
                }
                wv->snaps[wv->nsnaps++] = (tt_row_snap){i, row->c};
                wv->snaps_sorted = false;
        }
        FLAGS(row) |= TT_ROW_TOUCHED;
        wv->ntouched++;
        return TT_ERR_OK;
}

static tt_row *row_for_change(tt_weekview *wv, tt_dim dim, uint32_t key,
                              bool closed, int *err) {
        tt_row *row = tt_weekview_row(wv, dim, key);
        *err = row ? TT_ERR_OK : TT_ERR_NOMEM;
        if (row && closed && (*err = touch(wv, (uint32_t)(row - wv->rows))))
                return NULL;
        return row;
}

int tt_weekview_add_cell(tt_weekview *wv, tt_dim dim, uint32_t key,
                         const tt_cell *c, bool closed) {
        int err;
        tt_row *row = row_for_change(wv, dim, key, closed, &err);
        if (row) {
                tt_cell cur;
                tt_ccell_get(&row->c, wv->start_ms, &cur);
                if (!tt_cell_merge_ok(&cur, c))
                        return TT_ERR_RANGE; /* would pass TT_COUNT_MAX */
                tt_ccell_merge(&row->c, wv->start_ms, c);
        }
        return err;
}

int tt_weekview_add_event(tt_weekview *wv, tt_dim dim, uint32_t key,
                          const tt_event *ev, tt_origin o, bool closed) {
        int err;
        tt_row *row = row_for_change(wv, dim, key, closed, &err);
        if (row)
                tt_ccell_add(&row->c, wv->start_ms, ev, o);
        return err;
}

int tt_weekview_restore_row(tt_weekview *wv, tt_dim dim, uint32_t key,
                            const tt_cell *c, unsigned flags, uint32_t revision,
                            const tt_cell *emitted) {
        tt_row *row = tt_weekview_row(wv, dim, key);
        if (!row)
                return TT_ERR_NOMEM;
        tt_ccell_put(&row->c, wv->start_ms, c);
        row->revision = revision;
        FLAGS(row) = (uint8_t)(flags & TT_ROW_EMITTED);
        if (flags & TT_ROW_TOUCHED) {
                tt_ccell now = row->c;
                if (emitted)
                        tt_ccell_put(&row->c, wv->start_ms, emitted);
                int err = touch(wv, (uint32_t)(row - wv->rows));
                row->c = now;
                FLAGS(row) = (uint8_t)(flags & 3u);
                if (err)
                        return err;
        }
        return TT_ERR_OK;
}

static int cmp_snap(const void *a, const void *b) {
        uint32_t x = ((const tt_row_snap *)a)->row;
        uint32_t y = ((const tt_row_snap *)b)->row;
        return x < y ? -1 : x > y;
}

static void sort_snaps(tt_weekview *wv) {
        if (!wv->snaps_sorted && wv->nsnaps > 1)
                qsort(wv->snaps, wv->nsnaps, sizeof(*wv->snaps), cmp_snap);
        wv->snaps_sorted = true;
}

/* The cell of row i as last emitted; NULL when it has not been emitted
 * (no record yet, so nothing to compare with). */
static const tt_ccell *emitted_ccell(const tt_weekview *wv, uint32_t i) {
        const tt_row *row = &wv->rows[i];
        if (!(FLAGS(row) & TT_ROW_EMITTED))
                return NULL;
        if (!(FLAGS(row) & TT_ROW_TOUCHED))
                return &row->c;
        if (wv->snaps_sorted) {
                uint32_t lo = 0, hi = wv->nsnaps;
                while (lo < hi) {
                        uint32_t mid = lo + (hi - lo) / 2;
                        if (wv->snaps[mid].row < i)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                if (lo < wv->nsnaps && wv->snaps[lo].row == i)
                        return &wv->snaps[lo].old;
        } else {
                for (uint32_t k = 0; k < wv->nsnaps; k++)
                        if (wv->snaps[k].row == i)
                                return &wv->snaps[k].old;
        }
        return &row->c; /* unreachable: an emitted touched row has one */
}

void tt_weekview_emitted_cell(const tt_weekview *wv, uint32_t i, tt_cell *out) {
        const tt_ccell *c = emitted_ccell(wv, i);
        if (c)
                tt_ccell_get(c, wv->start_ms, out);
        else
                memset(out, 0, sizeof(*out));
}

void tt_weekview_settle(tt_weekview *wv) {
        if (!wv->ntouched)
                return;
        for (uint32_t r = 0; r < wv->n; r++)
                FLAGS(&wv->rows[r]) &= (uint8_t)~TT_ROW_TOUCHED;
        wv->ntouched = 0;
        wv->nsnaps = 0;
        wv->snaps_sorted = true;
}

int tt_weekview_clear_counts(tt_weekview *wv) {
        if (wv->n) {
                int64_t *p = tt_realloc(wv->prov_req, wv->n * sizeof(*p));
                if (!p)
                        return TT_ERR_NOMEM;
                wv->prov_req = p;
        }
        wv->nprov = wv->n;
        for (uint32_t r = 0; r < wv->n; r++) {
                tt_ccell *c = &wv->rows[r].c;
                wv->prov_req[r] = c->requests;
                c->prompt_tokens = c->completion_tokens = c->requests = 0;
                c->last_off = 0;
                c->last_origin = 0;
        }
        return TT_ERR_OK;
}

bool tt_weekview_has_events(const tt_weekview *wv) {
        const tt_row *t = tt_weekview_find(wv, TT_DIM_TOTAL, 0);
        return t && t->c.requests > 0;
}

void tt_weekview_shrink(tt_weekview *wv) {
        if (wv->cap > wv->n) {
                size_t n = wv->n ? wv->n : 1;
                tt_row *nr = tt_realloc(wv->rows, n * sizeof(*nr));
                if (nr) {
                        wv->rows = nr;
                        wv->cap = (uint32_t)n;
                }
        }
        uint64_t size = closed_isize(wv->n);
        if (size < wv->isize)
                (void)rebuild_index(wv, (uint32_t)size); /* else as it was */
        tt_free(wv->prov_req);
        wv->prov_req = NULL;
        wv->nprov = 0;
}

size_t tt_weekview_bytes(const tt_weekview *wv) {
        return sizeof(*wv) + (size_t)wv->cap * sizeof(tt_row) +
               (size_t)wv->isize * sizeof(uint32_t) +
               (size_t)wv->capsnaps * sizeof(tt_row_snap) +
               (size_t)wv->nprov * sizeof(int64_t) +
               wv->nrules * sizeof(tt_streak_result);
}

/* ---- emission ----------------------------------------------------------- */

static tt_str key_of(tt_dim dim, uint32_t key, const tt_keytab *keys) {
        switch (dim) {
        case TT_DIM_TOTAL:
                return TT_STR_LIT("*");
        case TT_DIM_ORIGIN:
                return tt_origin_str((tt_origin)key);
        default:
                return tt_keytab_str(keys, key);
        }
}

/* What a sort compares, gathered so that comparisons touch only this
 * array: dimension, tokens, then lex: a model's rank among all slugs
 * (key_rank) or, without ranks and for the other dimensions, the first 8
 * bytes of the key (big-endian, zero padded, so integer order is byte
 * order; origin codes and "*" fit whole). */
typedef struct sort_item {
        int64_t tokens;
        uint64_t lex;
        uint32_t row;
        uint32_t dim;
} sort_item;
/* 32 bytes at most: glibc's qsort sorts larger elements indirectly
 * (through pointers, then moved), which cost 5% of the 12 x 100k replay
 * when prev_tokens rode along in the item. */
_Static_assert(sizeof(sort_item) <= 32, "sort_item over 32 bytes");

/* With key_rank, lex alone orders the keys of a dimension and the radix
 * sort's order is final; without, ties on lex compare the keys. */
typedef struct sort_ctx {
        const tt_weekview *wv;
        const tt_keytab *keys;
        const uint32_t *key_rank;
} sort_ctx;

/* Rank order: dimension, tokens desc, key asc (SPEC §4). */
static int cmp_items(const void *a, const void *b, void *arg) {
        const sort_item *x = a, *y = b;
        if (x->dim != y->dim)
                return x->dim < y->dim ? -1 : 1;
        if (x->tokens != y->tokens)
                return x->tokens > y->tokens ? -1 : 1;
        if (x->lex != y->lex)
                return x->lex < y->lex ? -1 : 1;
        const sort_ctx *c = arg;
        return tt_str_cmp(
            key_of((tt_dim)x->dim, c->wv->rows[x->row].key, c->keys),
            key_of((tt_dim)y->dim, c->wv->rows[y->row].key, c->keys));
}

/* Byte digits of a stable LSD radix sort, least significant first: lex
 * (8), tokens descending (8), the dimension. */
#define RADIX_DIGITS 17
static uint32_t digit_of(const sort_item *it, int d) {
        if (d < 8)
                return (uint32_t)((it->lex >> (8 * d)) & 255);
        /* Descending signed order as ascending unsigned: flip the sign
         * bit, then all bits. */
        uint64_t desc = ~((uint64_t)it->tokens ^ (UINT64_C(1) << 63));
        return d < 16 ? (uint32_t)((desc >> (8 * (d - 8))) & 255) : it->dim;
}

/* Rank order (cmp_items) by a radix sort on (dimension asc, tokens desc,
 * lex asc), the digits that are the same in every item skipped (a week's
 * counts use three or four of tokens', 10^5 ranks three of lex'). With
 * key_rank that is the order: keys are unique within a dimension, and so
 * are their ranks. Without, runs of equal lex (keys sharing 8 bytes) are
 * sorted by cmp_items, which reads the keys. glibc's qsort over 10^5
 * items was a fifth of the applying thread's time with 10^5 models a week,
 * and slug ties on 16-byte prefixes read from the key table a quarter. */
static void sort_items(const tt_weekview *wv, const tt_keytab *keys,
                       const uint32_t *key_rank, sort_item *items, uint32_t n) {
        sort_ctx ctx = {wv, keys, key_rank};
        sort_item *tmp = n > 256 ? tt_malloc((size_t)n * sizeof(*tmp)) : NULL;
        if (!tmp) { /* small, or no memory: the plain sort */
                qsort_r(items, n, sizeof(*items), cmp_items, &ctx);
                return;
        }
        uint32_t count[RADIX_DIGITS][256]; /* 17 KiB of stack */
        memset(count, 0, sizeof(count));
        for (uint32_t i = 0; i < n; i++)
                for (int d = 0; d < RADIX_DIGITS; d++)
                        count[d][digit_of(&items[i], d)]++;
        sort_item first = items[0];
        sort_item *src = items, *dst = tmp;
        for (int d = 0; d < RADIX_DIGITS; d++) {
                if (count[d][digit_of(&first, d)] == n)
                        continue; /* every item has the same digit */
                uint32_t at = 0;
                for (int v = 0; v < 256; v++) {
                        uint32_t c = count[d][v];
                        count[d][v] = at;
                        at += c;
                }
                for (uint32_t i = 0; i < n; i++)
                        dst[count[d][digit_of(&src[i], d)]++] = src[i];
                sort_item *t = src;
                src = dst;
                dst = t;
        }
        if (src != items)
                memcpy(items, src, (size_t)n * sizeof(*items));
        tt_free(tmp);
        if (key_rank)
                return;
        for (uint32_t i = 0, j; i < n; i = j) {
                for (j = i + 1; j < n && items[j].dim == items[i].dim &&
                                items[j].tokens == items[i].tokens &&
                                items[j].lex == items[i].lex;
                     j++)
                        ;
                if (j - i > 1)
                        qsort_r(items + i, j - i, sizeof(*items), cmp_items,
                                &ctx);
        }
}

/* Ranks of the rows given in items (sorted here): rank[row] = 1-based
 * position within its dimension. */
static void rank_items(const tt_weekview *wv, const tt_keytab *keys,
                       const uint32_t *key_rank, sort_item *items, uint32_t n,
                       uint32_t *rank) {
        sort_items(wv, keys, key_rank, items, n);
        uint32_t k = 0;
        for (uint32_t i = 0; i < n; i++) {
                if (i == 0 || items[i].dim != items[i - 1].dim)
                        k = 0;
                rank[items[i].row] = ++k;
        }
}

static sort_item item_of(const tt_weekview *wv, uint32_t r, int64_t tokens,
                         const tt_keytab *keys, const uint32_t *key_rank) {
        const tt_row *row = &wv->rows[r];
        tt_dim dim = (tt_dim)DIM(row);
        uint64_t lex = key_rank && dim == TT_DIM_MODEL
                           ? key_rank[row->key]
                           : tt_str_word(key_of(dim, row->key, keys), 0);
        return (sort_item){tokens, lex, r, dim};
}

typedef struct derived {
        bool has_prev;
        int64_t prev;
        double share;
        uint32_t rank;
} derived;

static double share_of(int64_t tokens, int64_t total) {
        return total ? (double)tokens * 100.0 / (double)total : 0.0;
}

/* prev_tokens of row (dim, key) from the week before, as it is now (old
 * false) or as it was when this week was last emitted (old true). */
static void prev_of(const tt_weekview *pw, tt_dim dim, uint32_t key, bool old,
                    bool *has, int64_t *prev) {
        *has = false;
        *prev = 0;
        if (!pw)
                return;
        const tt_row *row = tt_weekview_find(pw, dim, key);
        if (!row)
                return;
        uint32_t r = (uint32_t)(row - pw->rows);
        const tt_ccell *c = old ? emitted_ccell(pw, r) : &pw->rows[r].c;
        if (c && c->requests > 0) {
                *has = true;
                *prev = tt_ccell_tokens(c);
        }
}

static bool cell_differs(const tt_ccell *a, const tt_ccell *b, tt_dim dim) {
        return a->prompt_tokens != b->prompt_tokens ||
               a->completion_tokens != b->completion_tokens ||
               a->requests != b->requests ||
               (dim == TT_DIM_MODEL && a->last_origin != b->last_origin);
}

static int emit_row(tt_weekview *wv, tt_row *row, const derived *d,
                    tt_status status, int32_t revision, const tt_keytab *keys,
                    const tt_sink *sink, void *opaque, int64_t now_ms) {
        tt_dim dim = (tt_dim)DIM(row);
        int64_t tokens = tt_ccell_tokens(&row->c);
        tt_rollup out;
        memset(&out, 0, sizeof(out));
        memcpy(out.week, wv->name, sizeof(out.week));
        out.week_start_ms = wv->start_ms;
        out.dimension = dim;
        out.key = key_of(dim, row->key, keys);
        out.origin = dim == TT_DIM_MODEL ? tt_origin_str(row->c.last_origin)
                                         : TT_STR_NULL;
        out.tokens = tokens;
        out.prompt_tokens = row->c.prompt_tokens;
        out.completion_tokens = row->c.completion_tokens;
        out.requests = row->c.requests;
        out.has_prev = d->has_prev;
        out.prev_tokens = d->prev;
        out.has_growth = d->has_prev && d->prev != 0;
        if (out.has_growth)
                /* in double: the int64 difference of two counts may
                 * overflow */
                out.wow_growth_pct = ((double)tokens - (double)d->prev) /
                                     (double)d->prev * 100.0;
        out.share_pct = d->share;
        out.rank = (int32_t)d->rank;
        out.status = status;
        out.revision = revision;
        out.emitted_at_ms = now_ms;
        int err = sink->rollup(opaque, &out);
        if (!err) {
                FLAGS(row) |= TT_ROW_EMITTED;
                row->revision = (uint32_t)revision;
        }
        return err;
}

int tt_weekview_emit(tt_weekview *wv, const tt_weekview *prev_week,
                     tt_emit_mode mode, const tt_keytab *keys,
                     const uint32_t *key_rank, const tt_sink *sink,
                     void *opaque, int64_t now_ms, uint64_t *count) {
        *count = 0;
        if (tt_weekview_index(wv))
                return TT_ERR_NOMEM;
        sort_snaps(wv);
        bool revised = mode == TT_EMIT_REVISED;
        /* Old ranks matter only when some row changed since it was
         * emitted; otherwise they are the new ones. */
        bool old_ranks = revised && wv->ntouched;
        size_t n = wv->n ? wv->n : 1;
        sort_item *items = tt_malloc(n * sizeof(*items));
        int64_t *prev = tt_malloc(n * sizeof(*prev));
        uint32_t *old_rank = old_ranks ? tt_calloc(n, sizeof(*old_rank)) : NULL;
        int err = TT_ERR_OK;
        if (!items || !prev || (old_ranks && !old_rank)) {
                err = TT_ERR_NOMEM;
                goto out;
        }
        uint32_t m = 0;
        if (old_ranks) {
                for (uint32_t r = 0; r < wv->n; r++) {
                        const tt_ccell *c = emitted_ccell(wv, r);
                        if (c && c->requests)
                                items[m++] = item_of(wv, r, tt_ccell_tokens(c),
                                                     keys, key_rank);
                }
                rank_items(wv, keys, key_rank, items, m, old_rank);
        }
        /* prev_tokens in row order, before the rank order scatters the
         * rows: a model's rows sit in about the same place in each week's
         * array (first seen first), so the previous week is read mostly
         * in order. -1: none. */
        m = 0;
        for (uint32_t r = 0; r < wv->n; r++) {
                const tt_row *row = &wv->rows[r];
                if (!row->c.requests)
                        continue;
                items[m++] =
                    item_of(wv, r, tt_ccell_tokens(&row->c), keys, key_rank);
                bool has;
                prev_of(prev_week, (tt_dim)DIM(row), row->key, false, &has,
                        &prev[r]);
                if (!has)
                        prev[r] = -1;
        }
        /* Sorted, items are in rank order: a row's rank is its place
         * within its dimension (k below). */
        sort_items(wv, keys, key_rank, items, m);

        uint32_t t = *find_slot(wv, TT_DIM_TOTAL, 0);
        int64_t total = t ? tt_ccell_tokens(&wv->rows[t - 1].c) : 0;
        int64_t old_total = total;
        if (revised && t) {
                const tt_ccell *c = emitted_ccell(wv, t - 1);
                old_total = c ? tt_ccell_tokens(c) : 0;
        }
        uint32_t k = 0;
        for (uint32_t i = 0; i < m && !err; i++) {
                /* Rank order is random order in rows and keys: fetch a
                 * row 16 ahead, its key's table entry 8 ahead, the key 4
                 * ahead (a third of the emission's time was these misses
                 * with 10^5 models a week). */
                if (i + 16 < m) {
                        __builtin_prefetch(&wv->rows[items[i + 16].row]);
                        __builtin_prefetch(&prev[items[i + 16].row]);
                }
                if (i + 8 < m) {
                        const tt_row *pr = &wv->rows[items[i + 8].row];
                        if (DIM(pr) == TT_DIM_MODEL)
                                tt_keytab_prefetch(keys, pr->key, 0);
                }
                if (i + 4 < m) {
                        const tt_row *pr = &wv->rows[items[i + 4].row];
                        if (DIM(pr) == TT_DIM_MODEL)
                                tt_keytab_prefetch(keys, pr->key, 1);
                }
                uint32_t r = items[i].row;
                tt_row *row = &wv->rows[r];
                tt_dim dim = (tt_dim)DIM(row);
                if (i == 0 || items[i].dim != items[i - 1].dim)
                        k = 0;
                derived d;
                d.rank = ++k;
                d.share = share_of(tt_ccell_tokens(&row->c), total);
                d.has_prev = prev[r] >= 0;
                d.prev = d.has_prev ? prev[r] : 0;
                bool emit;
                int32_t revision = 0;
                tt_status status;
                switch (mode) {
                case TT_EMIT_PROVISIONAL:
                        /* Counts only grow, and every event adds a
                         * request: the requests tell what changed. */
                        emit = !(FLAGS(row) & TT_ROW_EMITTED) ||
                               r >= wv->nprov ||
                               row->c.requests != wv->prov_req[r];
                        status = TT_STATUS_PROVISIONAL;
                        break;
                case TT_EMIT_FINAL:
                        emit = true;
                        /* Emitted by an earlier run: a revision above any
                         * it gave (at-least-once restart). */
                        status = wv->reemit_revision > 0 ? TT_STATUS_REVISED
                                                         : TT_STATUS_FINAL;
                        revision = wv->reemit_revision;
                        break;
                default: {
                        status = TT_STATUS_REVISED;
                        const tt_ccell *oc = emitted_ccell(wv, r);
                        if (!oc) {
                                /* A key first seen after its week closed
                                 * has no FINAL record: revision 0. */
                                emit = true;
                                break;
                        }
                        revision = (int32_t)row->revision + 1;
                        derived o;
                        prev_of(prev_week, dim, row->key, true, &o.has_prev,
                                &o.prev);
                        o.share = share_of(tt_ccell_tokens(oc), old_total);
                        o.rank = old_ranks ? old_rank[r] : d.rank;
                        emit = cell_differs(oc, &row->c, dim) ||
                               o.has_prev != d.has_prev || o.prev != d.prev ||
                               o.share != d.share || o.rank != d.rank;
                        break;
                }
                }
                if (!emit)
                        continue;
                err = emit_row(wv, row, &d, status, revision, keys, sink,
                               opaque, now_ms);
                if (!err) {
                        (*count)++;
                        if (revision > wv->top_revision)
                                wv->top_revision = revision;
                }
        }
        if (mode == TT_EMIT_PROVISIONAL) {
                tt_free(wv->prov_req);
                wv->prov_req = NULL;
                wv->nprov = 0;
        }
out:
        tt_free(items);
        tt_free(prev);
        tt_free(old_rank);
        return err;
}
