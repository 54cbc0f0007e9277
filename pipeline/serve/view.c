/* The materialized view of the output topics (see serve_view.h). Rows live
 * in one array indexed by an open-addressing hash of (week, dim, key); a
 * key's string is allocated once, when the key is first seen, so updating
 * a row (the common case: PROVISIONAL rows every emit interval, REVISED
 * rows) allocates nothing. */
#include "tokentally/serve_view.h"

#include <stdlib.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/mem.h"

struct tt_sview {
        tt_sview_row *rows;
        size_t nrows, caprows;
        uint32_t *slots; /* row index + 1; 0 empty */
        size_t nslots;   /* power of two, > 2 * nrows */
        char (*weeks)[16];
        size_t nweeks, capweeks;
        tt_sview_srow *streaks; /* sorted by (rule, week) */
        size_t nstreaks, capstreaks;
        uint64_t version, nrollups, nstreak_records;
};

tt_sview *tt_sview_new(void) {
        return tt_calloc(1, sizeof(tt_sview));
}

static void streak_free(tt_sview_srow *s) {
        tt_free(s->rule);
        tt_free(s->holder);
        tt_free(s->previous);
        tt_free(s->runner);
}

void tt_sview_destroy(tt_sview *v) {
        if (!v)
                return;
        for (size_t i = 0; i < v->nrows; i++)
                tt_free(v->rows[i].key);
        for (size_t i = 0; i < v->nstreaks; i++)
                streak_free(&v->streaks[i]);
        tt_free(v->rows);
        tt_free(v->slots);
        tt_free(v->weeks);
        tt_free(v->streaks);
        tt_free(v);
}

static uint64_t row_hash(const char *week, tt_dim dim, const char *key,
                         size_t klen) {
        uint64_t h = 1469598103934665603u ^ (uint64_t)dim;
        for (const char *p = week; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211u;
        h = (h ^ '/') * 1099511628211u;
        for (size_t i = 0; i < klen; i++)
                h = (h ^ (unsigned char)key[i]) * 1099511628211u;
        return h;
}

static uint32_t *slot_of(const tt_sview *v, const char *week, tt_dim dim,
                         const char *key, size_t klen) {
        size_t mask = v->nslots - 1;
        for (size_t i = (size_t)row_hash(week, dim, key, klen) & mask;;
             i = (i + 1) & mask) {
                uint32_t *s = &v->slots[i];
                if (!*s)
                        return s;
                const tt_sview_row *x = &v->rows[*s - 1];
                if (x->dim == dim && !strcmp(x->week, week) &&
                    !strncmp(x->key, key, klen) && !x->key[klen])
                        return s;
        }
}

static int grow_slots(tt_sview *v) {
        size_t n = v->nslots ? v->nslots * 2 : 256;
        uint32_t *s = tt_calloc(n, sizeof(*s));
        if (!s)
                return TT_ERR_NOMEM;
        tt_free(v->slots);
        v->slots = s;
        v->nslots = n;
        for (size_t i = 0; i < v->nrows; i++) {
                const tt_sview_row *x = &v->rows[i];
                *slot_of(v, x->week, x->dim, x->key, strlen(x->key)) =
                    (uint32_t)i + 1;
        }
        return 0;
}

/* Adds week to the sorted list when new. */
static int add_week(tt_sview *v, const char *week) {
        size_t lo = 0, hi = v->nweeks;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(v->weeks[mid], week);
                if (!c)
                        return 0;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (v->nweeks == v->capweeks) {
                size_t n = v->capweeks ? v->capweeks * 2 : 32;
                char(*w)[16] = tt_realloc(v->weeks, n * sizeof(*w));
                if (!w)
                        return TT_ERR_NOMEM;
                v->weeks = w;
                v->capweeks = n;
        }
        memmove(v->weeks + lo + 1, v->weeks + lo,
                (v->nweeks - lo) * sizeof(*v->weeks));
        memcpy(v->weeks[lo], week, 16);
        v->nweeks++;
        return 0;
}

int tt_sview_rollup(void *opaque, const tt_rollup *r) {
        tt_sview *v = opaque;
        const char *key = r->key.ptr ? r->key.ptr : "";
        size_t klen = r->key.ptr ? r->key.len : 0;
        char week[16];
        memcpy(week, r->week, sizeof(week));
        week[15] = '\0';
        if ((v->nrows + 1) * 2 > v->nslots && grow_slots(v))
                return TT_ERR_NOMEM;
        uint32_t *slot = slot_of(v, week, r->dimension, key, klen);
        if (!*slot) {
                if (v->nrows == v->caprows) {
                        size_t n = v->caprows ? v->caprows * 2 : 256;
                        tt_sview_row *nr = tt_realloc(v->rows, n * sizeof(*nr));
                        if (!nr)
                                return TT_ERR_NOMEM;
                        v->rows = nr;
                        v->caprows = n;
                }
                char *k = tt_strndup(key, klen);
                if (!k || add_week(v, week)) {
                        tt_free(k);
                        return TT_ERR_NOMEM;
                }
                tt_sview_row *x = &v->rows[v->nrows];
                memset(x, 0, sizeof(*x));
                memcpy(x->week, week, sizeof(week));
                x->dim = r->dimension;
                x->key = k;
                *slot = (uint32_t)++v->nrows;
        }
        tt_sview_row *x = &v->rows[*slot - 1];
        x->week_start_ms = r->week_start_ms;
        x->has_origin = r->origin.ptr && r->origin.len < sizeof(x->origin);
        memset(x->origin, 0, sizeof(x->origin));
        if (x->has_origin)
                memcpy(x->origin, r->origin.ptr, r->origin.len);
        x->tokens = r->tokens;
        x->prompt_tokens = r->prompt_tokens;
        x->completion_tokens = r->completion_tokens;
        x->requests = r->requests;
        x->has_prev = r->has_prev;
        x->prev_tokens = r->has_prev ? r->prev_tokens : 0;
        x->has_growth = r->has_growth;
        x->growth_pct = r->has_growth ? r->wow_growth_pct : 0;
        x->share_pct = r->share_pct;
        x->rank = r->rank;
        x->status = r->status;
        x->revision = r->revision;
        x->emitted_at_ms = r->emitted_at_ms;
        v->version++;
        v->nrollups++;
        return 0;
}

static char *dup_str(tt_str s) {
        return s.ptr ? tt_strndup(s.ptr, s.len) : NULL;
}

int tt_sview_streak(void *opaque, const tt_streak_change *s) {
        tt_sview *v = opaque;
        tt_sview_srow n;
        memset(&n, 0, sizeof(n));
        n.rule = tt_strndup(s->rule.ptr ? s->rule.ptr : "",
                            s->rule.ptr ? s->rule.len : 0);
        n.holder = tt_strndup(s->holder.ptr ? s->holder.ptr : "",
                              s->holder.ptr ? s->holder.len : 0);
        n.previous = dup_str(s->previous_holder);
        n.runner = dup_str(s->runner_up);
        if (!n.rule || !n.holder || (s->previous_holder.ptr && !n.previous) ||
            (s->runner_up.ptr && !n.runner)) {
                streak_free(&n);
                return TT_ERR_NOMEM;
        }
        memcpy(n.week, s->week, sizeof(n.week));
        n.week[15] = '\0';
        n.kind = s->kind;
        n.length = s->length_weeks;
        n.holder_tokens = s->holder_tokens;
        n.has_runner_tokens = s->has_runner_up_tokens;
        n.runner_tokens = s->has_runner_up_tokens ? s->runner_up_tokens : 0;
        n.has_margin = s->has_margin;
        n.margin_pct = s->has_margin ? s->margin_pct : 0;
        n.emitted_at_ms = s->emitted_at_ms;
        /* Its place by (rule, week): streak records are few (rules times
         * weeks), so a linear search and an insertion are enough. */
        size_t i = 0;
        int c = 1;
        for (; i < v->nstreaks; i++) {
                c = strcmp(v->streaks[i].rule, n.rule);
                if (!c)
                        c = strcmp(v->streaks[i].week, n.week);
                if (c >= 0)
                        break;
        }
        if (i < v->nstreaks && c == 0) {
                streak_free(&v->streaks[i]);
                v->streaks[i] = n;
        } else {
                if (v->nstreaks == v->capstreaks) {
                        size_t cap = v->capstreaks ? v->capstreaks * 2 : 32;
                        tt_sview_srow *ns =
                            tt_realloc(v->streaks, cap * sizeof(*ns));
                        if (!ns) {
                                streak_free(&n);
                                return TT_ERR_NOMEM;
                        }
                        v->streaks = ns;
                        v->capstreaks = cap;
                }
                memmove(v->streaks + i + 1, v->streaks + i,
                        (v->nstreaks - i) * sizeof(*v->streaks));
                v->streaks[i] = n;
                v->nstreaks++;
        }
        v->version++;
        v->nstreak_records++;
        return 0;
}

uint64_t tt_sview_version(const tt_sview *v) {
        return v->version;
}

void tt_sview_counts(const tt_sview *v, uint64_t *rollups, uint64_t *streaks) {
        *rollups = v->nrollups;
        *streaks = v->nstreak_records;
}

size_t tt_sview_nweeks(const tt_sview *v) {
        return v->nweeks;
}

const char *tt_sview_week(const tt_sview *v, size_t i) {
        return i < v->nweeks ? v->weeks[i] : NULL;
}

long tt_sview_week_index(const tt_sview *v, const char *week) {
        for (size_t i = 0; i < v->nweeks; i++)
                if (!strcmp(v->weeks[i], week))
                        return (long)i;
        return -1;
}

const tt_sview_row *tt_sview_find(const tt_sview *v, const char *week,
                                  tt_dim dim, const char *key) {
        if (!v->nslots || strlen(week) >= 16)
                return NULL;
        uint32_t *s = slot_of(v, week, dim, key, strlen(key));
        return *s ? &v->rows[*s - 1] : NULL;
}

static int cmp_rank(const void *a, const void *b) {
        const tt_sview_row *x = *(const tt_sview_row *const *)a;
        const tt_sview_row *y = *(const tt_sview_row *const *)b;
        if (x->rank != y->rank)
                return x->rank < y->rank ? -1 : 1;
        return strcmp(x->key, y->key);
}

size_t tt_sview_rows(const tt_sview *v, const char *week, tt_dim dim,
                     const tt_sview_row ***out) {
        *out = NULL;
        size_t n = 0;
        for (size_t i = 0; i < v->nrows; i++)
                n += v->rows[i].dim == dim && !strcmp(v->rows[i].week, week);
        if (!n)
                return 0;
        const tt_sview_row **a = tt_malloc(n * sizeof(*a));
        if (!a)
                return (size_t)-1;
        size_t k = 0;
        for (size_t i = 0; i < v->nrows; i++)
                if (v->rows[i].dim == dim && !strcmp(v->rows[i].week, week))
                        a[k++] = &v->rows[i];
        qsort(a, n, sizeof(*a), cmp_rank);
        *out = a;
        return n;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t tt_sview_keys(const tt_sview *v, tt_dim dim, const char ***out) {
        *out = NULL;
        size_t n = 0;
        for (size_t i = 0; i < v->nrows; i++)
                n += v->rows[i].dim == dim;
        if (!n)
                return 0;
        const char **a = tt_malloc(n * sizeof(*a));
        if (!a)
                return (size_t)-1;
        size_t k = 0;
        for (size_t i = 0; i < v->nrows; i++)
                if (v->rows[i].dim == dim)
                        a[k++] = v->rows[i].key;
        qsort(a, k, sizeof(*a), cmp_str);
        size_t u = 0;
        for (size_t i = 0; i < k; i++)
                if (!u || strcmp(a[u - 1], a[i]))
                        a[u++] = a[i];
        *out = a;
        return u;
}

size_t tt_sview_nstreaks(const tt_sview *v) {
        return v->nstreaks;
}

const tt_sview_srow *tt_sview_streak_at(const tt_sview *v, size_t i) {
        return i < v->nstreaks ? &v->streaks[i] : NULL;
}
