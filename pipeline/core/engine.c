/* The engine: routing of events to shards, watermarks, week closing, late
 * revisions and streaks. See engine.h for the contract and SPEC §3 for the
 * semantics this file implements.
 *
 * Two ways in. tt_engine_offer() does everything on the calling thread
 * (replay, tests). In worker mode (the Kafka stage) each worker thread
 * checks and counts its own partitions' events into its own shard with
 * tt_engine_check/count/seen, without a lock; late events are queued; and
 * one coordinator thread calls tt_engine_tick() while the workers are
 * paused, which is the only time shards are read and weeks close. */
#include "tokentally/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/buf.h"
#include "tokentally/counters.h"
#include "tokentally/err.h"
#include "tokentally/keytab.h"
#include "tokentally/mem.h"
#include "tokentally/streak.h"
#include "tokentally/week.h"
#include "tokentally/weekview.h"

#include "engine_impl.h"

void tt_engine_conf_defaults(tt_engine_conf *c) {
        memset(c, 0, sizeof(*c));
        c->grace_ms = 10 * 60 * 1000;
        c->retain_weeks = 12;
        c->idle_timeout_ms = 30 * 1000;
        c->max_future_ms = 3600 * 1000;
        c->nshards = 1;
        c->max_models = 0; /* unbounded: every valid key is counted */
        c->max_partitions = 4096;
}

tt_engine *tt_engine_new(const tt_engine_conf *conf, const tt_sink *sink,
                         void *opaque, char *errstr, size_t errsize) {
        if (!conf->origins || conf->nshards == 0 || conf->retain_weeks < 1 ||
            conf->grace_ms < 0 || conf->max_partitions < 1) {
                snprintf(errstr, errsize,
                         "engine: origin map, shards >= 1, retain >= 1, "
                         "partitions >= 1 and grace >= 0 are required");
                return NULL;
        }
        tt_engine *e = tt_calloc(1, sizeof(*e));
        if (!e)
                goto nomem;
        e->conf = *conf;
        e->sink = sink;
        e->opaque = opaque;
        atomic_init(&e->watermark, INT64_MIN);
        atomic_init(&e->closed_through, NO_WEEK);
        e->quiet_through = e->reemit_through = NO_WEEK;
        atomic_init(&e->key_limit_events, 0);
        pthread_mutex_init(&e->late_mu, NULL);
        tt_buf_init(&e->late_arena, 64u << 20);
        e->parts = tt_calloc((size_t)conf->max_partitions, sizeof(partition));
        if (!e->parts)
                goto nomem;
        for (int32_t i = 0; i < conf->max_partitions; i++) {
                atomic_init(&e->parts[i].max_time, INT64_MIN);
                atomic_init(&e->parts[i].last_activity, 0);
                atomic_init(&e->parts[i].behind, false);
        }
        const char *const *rules = conf->rules;
        size_t nrules = conf->nrules;
        if (!rules || !nrules) {
                rules = tt_streak_default_rules;
                nrules = tt_streak_ndefault_rules;
        }
        e->rules = tt_calloc(nrules, sizeof(*e->rules));
        if (!e->rules)
                goto nomem;
        for (size_t i = 0; i < nrules; i++) {
                if (tt_streak_rule_parse(rules[i], &e->rules[i], errstr,
                                         errsize)) {
                        tt_engine_destroy(e);
                        return NULL;
                }
                e->nrules++;
        }
        e->shards = tt_calloc(conf->nshards, sizeof(*e->shards));
        if (!e->shards)
                goto nomem;
        for (uint32_t i = 0; i < conf->nshards; i++)
                if (!(e->shards[i] =
                          tt_shard_new(conf->origins, conf->max_models)))
                        goto nomem;
        e->keys = tt_keytab_new(UINT32_MAX - 1);
        e->order = tt_keyorder_new();
        if (!e->keys || !e->order)
                goto nomem;
        return e;
nomem:
        snprintf(errstr, errsize, "out of memory");
        tt_engine_destroy(e);
        return NULL;
}

void tt_engine_destroy(tt_engine *e) {
        if (!e)
                return;
        tt_engine_resume_free_(e);
        if (e->rules)
                for (size_t i = 0; i < e->nrules; i++)
                        tt_streak_rule_free(&e->rules[i]);
        tt_free(e->rules);
        if (e->shards)
                for (uint32_t i = 0; i < e->conf.nshards; i++)
                        tt_shard_destroy(e->shards[i]);
        tt_free(e->shards);
        tt_keytab_destroy(e->keys);
        tt_keyorder_destroy(e->order);
        for (size_t i = 0; i < e->nviews; i++)
                tt_weekview_destroy(e->views[i]);
        tt_free(e->views);
        tt_free(e->open);
        tt_free(e->parts);
        tt_free(e->late);
        tt_buf_free(&e->late_arena);
        pthread_mutex_destroy(&e->late_mu);
        tt_free(e);
}

/* ---- views ---------------------------------------------------------- */

tt_weekview *tt_engine_view_find_(const tt_engine *e, int32_t w) {
        for (size_t i = 0; i < e->nviews; i++)
                if (e->views[i]->week == w)
                        return e->views[i];
        return NULL;
}

tt_weekview *tt_engine_view_get_(tt_engine *e, int32_t w) {
        tt_weekview *wv = tt_engine_view_find_(e, w);
        if (wv)
                return wv;
        if (e->nviews == e->capviews) {
                size_t ncap = e->capviews ? e->capviews * 2 : 16;
                tt_weekview **nv = tt_realloc(e->views, ncap * sizeof(*nv));
                if (!nv)
                        return NULL;
                e->views = nv;
                e->capviews = ncap;
        }
        if (!(wv = tt_weekview_new(w, e->nrules)))
                return NULL;
        size_t i = e->nviews;
        while (i > 0 && e->views[i - 1]->week > w) {
                e->views[i] = e->views[i - 1];
                i--;
        }
        e->views[i] = wv;
        e->nviews++;
        return wv;
}

/* The view of the week before wv, if that week is known and had events. */
static tt_weekview *view_prev(const tt_engine *e, const tt_weekview *wv) {
        if (wv->week == INT32_MIN)
                return NULL; /* no week before; decoders refuse such weeks */
        tt_weekview *p = tt_engine_view_find_(e, wv->week - 1);
        return p && tt_weekview_has_events(p) ? p : NULL;
}

/* ---- counting into views ---------------------------------------------- */

/* A week's models are merged in a three-step pipeline, MERGE_LAG models
 * apart: hash the slug and prefetch its key table slot; intern it and
 * prefetch its view index slot; add the cell. Both slots are random
 * places in tables of 10^5-10^6 entries, a cache miss each when taken in
 * turn (a fifth of the applying thread's time with 10^5 models a week). */
#define MERGE_LAG 4
/* Holds what is between the steps: up to 2 * MERGE_LAG + 1 models. */
#define MERGE_RING 16
_Static_assert(MERGE_RING > 2 * MERGE_LAG + 1, "merge ring too small");

typedef struct merge_item {
        tt_str model; /* in the shard's arena, alive during the visit */
        tt_cell c;
        uint64_t hash;
        uint32_t id;
} merge_item;

typedef struct merge_ctx {
        tt_engine *e;
        tt_weekview *wv;
        int err;
        merge_item ring[MERGE_RING];
        uint64_t in, interned, added; /* models through each step */
} merge_ctx;

static void merge_intern(merge_ctx *m) {
        merge_item *it = &m->ring[m->interned++ % MERGE_RING];
        it->id = tt_keytab_intern_hashed(m->e->keys, it->model.ptr,
                                         it->model.len, it->hash, NULL);
        if (it->id != TT_KEY_NONE)
                tt_weekview_prefetch(m->wv, TT_DIM_MODEL, it->id);
}

static void merge_add(merge_ctx *m) {
        merge_item *it = &m->ring[m->added++ % MERGE_RING];
        if (m->err)
                return;
        m->err = it->id == TT_KEY_NONE
                     ? TT_ERR_NOMEM
                     : tt_weekview_add_cell(m->wv, TT_DIM_MODEL, it->id, &it->c,
                                            false);
}

static void merge_model(void *opaque, tt_str model, const tt_cell *c) {
        merge_ctx *m = opaque;
        if (m->err)
                return;
        merge_item *it = &m->ring[m->in++ % MERGE_RING];
        it->model = model;
        it->c = *c;
        it->hash = tt_keytab_prefetch_str(m->e->keys, model.ptr, model.len);
        if (m->in - m->interned > MERGE_LAG)
                merge_intern(m);
        if (m->interned - m->added > MERGE_LAG)
                merge_add(m);
}

/* The models still in the pipeline, before the shard's arena goes. */
static void merge_drain(merge_ctx *m) {
        while (m->interned < m->in)
                merge_intern(m);
        while (m->added < m->in)
                merge_add(m);
}

static void merge_origin(void *opaque, tt_origin o, const tt_cell *c) {
        merge_ctx *m = opaque;
        merge_drain(m); /* the models first, as the shard visits them */
        if (m->err)
                return;
        m->err = tt_weekview_add_cell(m->wv, TT_DIM_ORIGIN, o, c, false);
        if (!m->err)
                m->err = tt_weekview_add_cell(m->wv, TT_DIM_TOTAL, 0, c, false);
}

/* Rebuilds wv's counters from every shard's counters of its week. */
static int merge_shards(tt_engine *e, tt_weekview *wv) {
        static const tt_shard_visitor visitor = {merge_model, merge_origin};
        merge_ctx m;
        memset(&m, 0, sizeof(m));
        m.e = e;
        m.wv = wv;
        m.err = tt_weekview_clear_counts(wv);
        /* Sized once for what the shards hold (a model counted by two
         * workers is reserved twice; a closed week is shrunk after). */
        uint64_t need = 64;
        for (uint32_t i = 0; i < e->conf.nshards; i++)
                need += tt_shard_week_models(e->shards[i], wv->week);
        if (!m.err)
                m.err = tt_weekview_reserve(wv, need);
        for (uint32_t i = 0; i < e->conf.nshards; i++) {
                tt_shard_visit(e->shards[i], wv->week, &visitor, &m);
                merge_drain(&m);
        }
        return m.err;
}

/* ---- streaks ---------------------------------------------------------- */

static tt_str key_str(const tt_engine *e, tt_dim dim, uint32_t key) {
        return dim == TT_DIM_ORIGIN ? tt_origin_str((tt_origin)key)
                                    : tt_keytab_str(e->keys, key);
}

/* Candidates of rule r in wv. Listed keys count 0 when absent. */
size_t tt_engine_candidates_(const tt_engine *e, const tt_streak_rule *r,
                             const tt_weekview *wv, tt_streak_cand *out,
                             size_t cap) {
        size_t n = 0;
        if (r->ncand) {
                for (size_t i = 0; i < r->ncand; i++) {
                        const tt_row *row = NULL;
                        if (r->dim == TT_DIM_ORIGIN) {
                                row = tt_weekview_find(
                                    wv, TT_DIM_ORIGIN,
                                    TT_ORIGIN(r->cand[i].ptr[0],
                                              r->cand[i].ptr[1]));
                        } else {
                                uint32_t id = tt_keytab_find(
                                    e->keys, r->cand[i].ptr, r->cand[i].len);
                                if (id != TT_KEY_NONE)
                                        row = tt_weekview_find(wv, TT_DIM_MODEL,
                                                               id);
                        }
                        out[n].key = r->cand[i];
                        out[n].tokens = row ? tt_ccell_tokens(&row->c) : 0;
                        n++;
                }
                return n;
        }
        for (uint32_t i = 0; i < wv->n && n < cap; i++) {
                const tt_row *row = &wv->rows[i];
                if (tt_row_dim(row) != r->dim || !row->c.requests)
                        continue;
                out[n].key = key_str(e, r->dim, row->key);
                out[n].tokens = tt_ccell_tokens(&row->c);
                n++;
        }
        return n;
}

static int emit_streak(tt_engine *e, const tt_streak_rule *r,
                       const tt_weekview *wv, const tt_streak_result *res) {
        tt_streak_change s;
        memset(&s, 0, sizeof(s));
        s.rule = (tt_str){r->text, strlen(r->text)};
        memcpy(s.week, wv->name, sizeof(s.week));
        s.kind = res->kind;
        s.holder = res->holder;
        s.length_weeks = res->length_weeks;
        s.previous_holder = res->previous_holder;
        s.holder_tokens = res->holder_tokens;
        s.runner_up = res->runner_up;
        s.has_runner_up_tokens = res->runner_up.ptr != NULL;
        s.runner_up_tokens = res->runner_up_tokens;
        s.has_margin = res->has_margin;
        s.margin_pct = res->margin_pct;
        s.emitted_at_ms = e->now;
        int err = e->sink->streak(e->opaque, &s);
        if (!err)
                e->st.streaks++;
        return err;
}

/* Decides every rule for the closed week wv; emits the results that differ
 * from what was emitted for it before (all of them at its first close). */
static int decide_streaks(tt_engine *e, tt_weekview *wv) {
        if (!tt_weekview_has_events(wv))
                return TT_ERR_OK;
        if (wv->quiet)
                return tt_engine_decide_quiet_(e, wv);
        const tt_weekview *pv = view_prev(e, wv);
        /* Rows are few per week; candidates of unlisted rules are capped by
         * the row count, so size the buffer from it. */
        size_t cap = wv->n + TT_STREAK_MAX_CANDIDATES;
        tt_streak_cand *cand = tt_malloc(cap * sizeof(*cand));
        if (!cand)
                return TT_ERR_NOMEM;
        int err = TT_ERR_OK;
        for (size_t r = 0; r < e->nrules && !err; r++) {
                size_t n =
                    tt_engine_candidates_(e, &e->rules[r], wv, cand, cap);
                if (n == 0)
                        continue;
                tt_streak_result res;
                tt_streak_decide(cand, n, pv ? &pv->streaks[r] : NULL, &res);
                if (wv->streaks[r].valid &&
                    tt_streak_result_eq(&wv->streaks[r], &res))
                        continue;
                wv->streaks[r] = res;
                err = emit_streak(e, &e->rules[r], wv, &res);
        }
        tt_free(cand);
        return err;
}

/* ---- closing and revising --------------------------------------------- */

static void stats_rows(tt_engine *e, tt_emit_mode mode, uint64_t n) {
        e->st.rows[mode == TT_EMIT_PROVISIONAL ? TT_STATUS_PROVISIONAL
                   : mode == TT_EMIT_FINAL     ? TT_STATUS_FINAL
                                               : TT_STATUS_REVISED] += n;
}

static int derive_emit(tt_engine *e, tt_weekview *wv, tt_emit_mode mode) {
        /* engine_resume.c: a quiet week has no output; a week an earlier
         * run made FINAL shows no PROVISIONAL rows while it is counted
         * again (they would be lower counts at a lower revision). */
        if (wv->quiet ||
            (mode == TT_EMIT_PROVISIONAL && wv->reemit_revision > 0))
                return TT_ERR_OK;
        /* prev_tokens are looked up in the week before, whose index a
         * later close may have dropped (tt_weekview_drop_index). */
        tt_weekview *pv = view_prev(e, wv);
        int err = pv ? tt_weekview_index(pv) : TT_ERR_OK;
        if (err)
                return err;
        uint64_t n;
        /* Without ranks (out of memory) the sort reads the slugs: slower,
         * same order. */
        const uint32_t *rank = tt_keyorder_ranks(e->order, e->keys);
        err = tt_weekview_emit(wv, pv, mode, e->keys, rank, e->sink, e->opaque,
                               e->now, &n);
        stats_rows(e, mode, n);
        if (wv->top_revision > e->st.max_revision)
                e->st.max_revision = wv->top_revision;
        return err;
}

/* Emits what late events changed: the revised weeks' rows, the next week's
 * rows (prev_tokens and growth), and the streaks from the oldest revised
 * week to the newest closed one. */
static int flush_revisions(tt_engine *e) {
        if (!e->pending)
                return TT_ERR_OK;
        e->pending = false;
        int32_t from = NO_WEEK;
        int err;
        for (size_t i = 0; i < e->nviews; i++) {
                tt_weekview *wv = e->views[i];
                if (!wv->dirty)
                        continue;
                wv->dirty = false;
                if (from == NO_WEEK)
                        from = wv->week;
                if ((err = derive_emit(e, wv, TT_EMIT_REVISED)))
                        return err;
                tt_weekview *next = tt_engine_view_find_(e, wv->week + 1);
                if (next && next->week <= e->closed_through && !next->dirty &&
                    (err = derive_emit(e, next, TT_EMIT_REVISED)))
                        return err;
        }
        /* Only now, when the week after each revised one was re-emitted
         * against it, is what was emitted the current content. */
        for (size_t i = 0; i < e->nviews; i++)
                tt_weekview_settle(e->views[i]);
        for (size_t i = 0; from != NO_WEEK && i < e->nviews; i++) {
                tt_weekview *wv = e->views[i];
                if (wv->week < from || wv->week > e->closed_through)
                        continue;
                if ((err = decide_streaks(e, wv)))
                        return err;
        }
        return TT_ERR_OK;
}

/* Rebuilds the ascending list of weeks that some shard holds. */
static int collect_open(tt_engine *e) {
        size_t need = 0;
        for (uint32_t i = 0; i < e->conf.nshards; i++)
                need += tt_shard_weeks(e->shards[i]);
        if (need > e->capopen) {
                int32_t *no = tt_realloc(e->open, need * sizeof(*no));
                if (!no)
                        return TT_ERR_NOMEM;
                e->open = no;
                e->capopen = need;
        }
        e->nopen = 0;
        for (uint32_t i = 0; i < e->conf.nshards; i++) {
                size_t n = tt_shard_weeks(e->shards[i]);
                for (size_t k = 0; k < n; k++) {
                        int32_t w = tt_shard_week_at(e->shards[i], k);
                        size_t j = 0;
                        while (j < e->nopen && e->open[j] < w)
                                j++;
                        if (j < e->nopen && e->open[j] == w)
                                continue;
                        memmove(&e->open[j + 1], &e->open[j],
                                (e->nopen - j) * sizeof(int32_t));
                        e->open[j] = w;
                        e->nopen++;
                }
        }
        return TT_ERR_OK;
}

static int close_week(tt_engine *e, int32_t w) {
        tt_weekview *wv = tt_engine_view_get_(e, w);
        if (!wv)
                return TT_ERR_NOMEM;
        tt_engine_resume_mark_(e, wv);
        int err = merge_shards(e, wv);
        /* Merged: the shards' cells of the week are freed before the
         * emission's working arrays are made (a lower peak). */
        for (uint32_t i = 0; i < e->conf.nshards; i++)
                tt_shard_drop(e->shards[i], w);
        tt_weekview_shrink(wv);
        if (!err)
                err = derive_emit(e, wv, TT_EMIT_FINAL);
        if (!err)
                err = decide_streaks(e, wv);
        /* The week before is now only looked up if a late event revises
         * it (its index comes back then): 6 bytes a row less. */
        tt_weekview *before =
            w == INT32_MIN ? NULL : tt_engine_view_find_(e, w - 1);
        if (before)
                tt_weekview_drop_index(before);
        e->st.weeks_closed++;
        return err;
}

/* The oldest week an event may still revise: the --retain-weeks newest
 * weeks, counting back from the week that holds the watermark. */
static int32_t oldest_retained(int64_t wm, int32_t retain) {
        return wm == INT64_MIN ? NO_WEEK : tt_week_of(wm) - retain + 1;
}

/* Interns s (a streak result's string) into nk. */
static int intern_str(tt_keytab *nk, tt_str s) {
        return !s.ptr || tt_keytab_intern(nk, s.ptr, s.len, NULL) != TT_KEY_NONE
                   ? TT_ERR_OK
                   : TT_ERR_NOMEM;
}

/* s, interned in nk before, as nk's copy. */
static void rekey_str(const tt_keytab *nk, tt_str *s) {
        if (s->ptr)
                *s = tt_keytab_str(nk, tt_keytab_find(nk, s->ptr, s->len));
}

/* The engine's key table only grows; once most of its slugs belong to no
 * retained week any more (every fine-tune and typo of dropped weeks), it
 * is rebuilt from the rows held, so that memory follows the retained cells.
 * O(rows held), at most once per halving of the live share. Everything
 * that can fail (allocation) happens before anything is changed: out of
 * memory keeps the old table, which is correct, only larger. */
static void compact_keys(tt_engine *e) {
        uint32_t n = tt_keytab_count(e->keys);
        uint64_t live = 0;
        for (size_t i = 0; i < e->nviews; i++)
                live += e->views[i]->n;
        if (n < 4096 || (uint64_t)n <= 2 * live)
                return;
        tt_keytab *nk = tt_keytab_new(UINT32_MAX - 1);
        uint32_t *map = tt_malloc((size_t)n * sizeof(uint32_t));
        int err = nk && map ? TT_ERR_OK : TT_ERR_NOMEM;
        if (map)
                memset(map, 0xff, (size_t)n * sizeof(uint32_t));
        for (size_t i = 0; !err && i < e->nviews; i++) {
                const tt_weekview *wv = e->views[i];
                for (uint32_t r = 0; !err && r < wv->n; r++) {
                        const tt_row *row = &wv->rows[r];
                        if (tt_row_dim(row) != TT_DIM_MODEL ||
                            map[row->key] != TT_KEY_NONE)
                                continue;
                        tt_str k = tt_keytab_str(e->keys, row->key);
                        map[row->key] =
                            tt_keytab_intern(nk, k.ptr, k.len, NULL);
                        if (map[row->key] == TT_KEY_NONE)
                                err = TT_ERR_NOMEM;
                }
                /* Streak results of model rules point into the table. */
                for (size_t r = 0; !err && r < e->nrules; r++) {
                        const tt_streak_result *s = &wv->streaks[r];
                        if (e->rules[r].dim != TT_DIM_MODEL)
                                continue;
                        err = intern_str(nk, s->holder);
                        err = err ? err : intern_str(nk, s->previous_holder);
                        err = err ? err : intern_str(nk, s->runner_up);
                }
        }
        if (err) {
                tt_keytab_destroy(nk);
                tt_free(map);
                return;
        }
        for (size_t i = 0; i < e->nviews; i++) {
                tt_weekview *wv = e->views[i];
                for (size_t r = 0; r < e->nrules; r++) {
                        tt_streak_result *s = &wv->streaks[r];
                        if (e->rules[r].dim != TT_DIM_MODEL)
                                continue;
                        rekey_str(nk, &s->holder);
                        rekey_str(nk, &s->previous_holder);
                        rekey_str(nk, &s->runner_up);
                }
                tt_weekview_remap_keys(wv, map);
        }
        tt_keytab_destroy(e->keys);
        e->keys = nk;
        tt_keyorder_reset(e->order);
        tt_free(map);
}

/* Forgets closed weeks that no event can revise any more, keeping one
 * extra week for the prev_tokens and streak state of the oldest kept. */
static void drop_old(tt_engine *e) {
        int64_t wm = atomic_load(&e->watermark);
        if (wm == INT64_MIN)
                return;
        int32_t keep = oldest_retained(wm, e->conf.retain_weeks) - 1;
        int32_t ct = atomic_load(&e->closed_through);
        size_t j = 0;
        for (size_t i = 0; i < e->nviews; i++) {
                tt_weekview *wv = e->views[i];
                if (wv->week < keep && wv->week <= ct)
                        tt_weekview_destroy(wv);
                else
                        e->views[j++] = wv;
        }
        e->nviews = j;
        compact_keys(e);
}

/* Closes, in week order, every open week up to and including target. */
static int close_through(tt_engine *e, int32_t target) {
        int err = flush_revisions(e);
        if (!err)
                err = collect_open(e);
        for (size_t i = 0; !err && i < e->nopen && e->open[i] <= target; i++)
                err = close_week(e, e->open[i]);
        if (err)
                return err;
        if (target > atomic_load(&e->closed_through))
                atomic_store(&e->closed_through, target);
        drop_old(e);
        return TT_ERR_OK;
}

/* The week the watermark closes through, or NO_WEEK. */
static int32_t close_target(const tt_engine *e, int64_t wm) {
        if (wm == INT64_MIN)
                return NO_WEEK;
        return tt_week_of(wm - e->conf.grace_ms) - 1;
}

static int advance(tt_engine *e) {
        int32_t target = close_target(e, atomic_load(&e->watermark));
        if (target <= atomic_load(&e->closed_through))
                return TT_ERR_OK;
        return close_through(e, target);
}

/* ---- watermarks ------------------------------------------------------- */

static bool is_idle(const tt_engine *e, const partition *p, int64_t now) {
        if (p->reported_idle)
                return true;
        return e->conf.idle_timeout_ms > 0 &&
               !atomic_load_explicit(&p->behind, RELAXED) &&
               now - atomic_load_explicit(&p->last_activity, RELAXED) >=
                   e->conf.idle_timeout_ms;
}

/* The watermark the partitions allow now (not yet applied). */
static int64_t compute_watermark(const tt_engine *e, int64_t now) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        bool any_active = false;
        for (int32_t i = 0; i < e->nparts; i++) {
                const partition *p = &e->parts[i];
                if (!p->live)
                        continue;
                int64_t m = atomic_load_explicit(&p->max_time, RELAXED);
                if (m > hi)
                        hi = m;
                if (is_idle(e, p, now))
                        continue;
                any_active = true;
                if (m < lo)
                        lo = m;
        }
        /* With every partition idle or finished, nothing holds the
         * watermark back but what was seen: it is the newest event. */
        int64_t wm = any_active ? lo : hi;
        int64_t cur = atomic_load(&e->watermark);
        return wm > cur ? wm : cur;
}

static void recompute_watermark(tt_engine *e) {
        atomic_store(&e->watermark, compute_watermark(e, e->now));
}

static partition *part_get(tt_engine *e, int32_t pid, int64_t now) {
        if (pid < 0 || pid >= e->conf.max_partitions)
                return NULL;
        partition *p = &e->parts[pid];
        if (!p->live) {
                p->live = true;
                atomic_store_explicit(&p->last_activity, now, RELAXED);
                if (pid >= e->nparts)
                        e->nparts = pid + 1;
        }
        return p;
}

int tt_engine_partition_add(tt_engine *e, int32_t pid, int64_t now_ms) {
        return part_get(e, pid, now_ms) ? TT_ERR_OK : TT_ERR_INVAL;
}

void tt_engine_partition_behind(tt_engine *e, int32_t pid, bool behind) {
        if (pid >= 0 && pid < e->conf.max_partitions)
                atomic_store_explicit(&e->parts[pid].behind, behind, RELAXED);
}

int tt_engine_partition_remove(tt_engine *e, int32_t pid, int64_t now_ms) {
        if (pid < 0 || pid >= e->nparts || !e->parts[pid].live)
                return TT_ERR_OK;
        e->now = now_ms;
        e->parts[pid].live = false;
        recompute_watermark(e);
        int err = advance(e);
        if (err && !e->err)
                e->err = err;
        return err;
}

/* ---- events ----------------------------------------------------------- */

/* Counts a late event straight into its closed week's view. */
static tt_reason count_late(tt_engine *e, int32_t w, const tt_event *ev,
                            char *detail, size_t size) {
        tt_weekview *wv = tt_engine_view_get_(e, w);
        uint32_t id =
            wv ? tt_keytab_intern(e->keys, ev->model.ptr, ev->model.len, NULL)
               : TT_KEY_NONE;
        if (id == TT_KEY_NONE) {
                snprintf(detail, size, "no room for model '%.*s'",
                         (int)(ev->model.len > 64 ? 64 : ev->model.len),
                         ev->model.ptr);
                return TT_REASON_KEY_LIMIT;
        }
        tt_origin o = tt_event_origin(e->conf.origins, ev);
        /* The three rows are looked up before any is changed, so that an
         * out-of-memory leaves the week as it was. */
        if (!tt_weekview_row(wv, TT_DIM_MODEL, id) ||
            !tt_weekview_row(wv, TT_DIM_ORIGIN, o) ||
            !tt_weekview_row(wv, TT_DIM_TOTAL, 0) ||
            tt_weekview_add_event(wv, TT_DIM_MODEL, id, ev, o, true) ||
            tt_weekview_add_event(wv, TT_DIM_ORIGIN, o, ev, o, true) ||
            tt_weekview_add_event(wv, TT_DIM_TOTAL, 0, ev, o, true)) {
                snprintf(detail, size, "out of memory");
                return TT_REASON_KEY_LIMIT;
        }
        wv->dirty = true;
        e->pending = true;
        e->st.late_revised++;
        return TT_REASON_NONE;
}

tt_reason tt_engine_check(const tt_engine *e, const tt_event *ev,
                          int64_t now_ms, int32_t *week, bool *late,
                          char *detail, size_t size) {
        *late = false;
        tt_reason r = tt_event_validate(ev, detail, size);
        if (r != TT_REASON_NONE)
                return r;
        if (e->conf.max_future_ms >= 0 &&
            ev->event_time_ms > now_ms + e->conf.max_future_ms) {
                snprintf(detail, size,
                         "event_time is %lld ms ahead of the clock (limit "
                         "%lld)",
                         (long long)(ev->event_time_ms - now_ms),
                         (long long)e->conf.max_future_ms);
                return TT_REASON_FUTURE_TIME;
        }
        int32_t w = tt_week_of(ev->event_time_ms);
        *week = w;
        if (w > atomic_load_explicit(&e->closed_through, RELAXED))
                return TT_REASON_NONE;
        char name[16];
        tt_week_name(w, name, sizeof(name));
        int64_t wm = atomic_load_explicit(&e->watermark, RELAXED);
        if (w < oldest_retained(wm, e->conf.retain_weeks)) {
                snprintf(detail, size,
                         "week %s is older than the %d retained weeks", name,
                         (int)e->conf.retain_weeks);
                return TT_REASON_TOO_LATE;
        }
        if (e->conf.late_dlq) {
                snprintf(detail, size, "week %s is already closed", name);
                return TT_REASON_LATE;
        }
        *late = true;
        return TT_REASON_NONE;
}

int tt_engine_count(tt_engine *e, uint32_t shard, int32_t week,
                    const tt_event *ev) {
        int err = tt_shard_add(e->shards[shard % e->conf.nshards], week, ev);
        if (err == TT_ERR_LIMIT)
                atomic_fetch_add_explicit(&e->key_limit_events, 1, RELAXED);
        return err;
}

void tt_engine_seen(tt_engine *e, int32_t pid, int64_t event_time,
                    int64_t now_ms) {
        if (pid < 0 || pid >= e->conf.max_partitions)
                return;
        partition *p = &e->parts[pid];
        if (event_time > atomic_load_explicit(&p->max_time, RELAXED))
                atomic_store_explicit(&p->max_time, event_time, RELAXED);
        atomic_store_explicit(&p->last_activity, now_ms, RELAXED);
}

int tt_engine_queue_late(tt_engine *e, const tt_event *ev) {
        pthread_mutex_lock(&e->late_mu);
        int err = TT_ERR_OK;
        if (e->nlate == e->caplate) {
                size_t ncap = e->caplate ? e->caplate * 2 : 64;
                late_ev *nl = tt_realloc(e->late, ncap * sizeof(*nl));
                if (!nl) {
                        err = TT_ERR_NOMEM;
                        goto out;
                }
                e->late = nl;
                e->caplate = ncap;
        }
        late_ev *l = &e->late[e->nlate];
        l->ev = *ev;
        l->model_off = e->late_arena.len;
        if ((err = tt_buf_append(&e->late_arena, ev->model.ptr, ev->model.len)))
                goto out;
        l->ev.request_id = l->ev.provider = TT_STR_NULL;
        if (ev->origin.ptr)
                memcpy(l->origin, ev->origin.ptr, 2);
        e->nlate++;
out:
        pthread_mutex_unlock(&e->late_mu);
        return err;
}

/* Counts the queued late events (coordinator, workers paused). */
static int apply_late(tt_engine *e) {
        char detail[128];
        if (!e->nlate)
                return TT_ERR_OK;
        /* Late events exist only once a week closed, so the watermark is
         * set; the guard keeps the arithmetic defined regardless. */
        int32_t oldest =
            oldest_retained(atomic_load(&e->watermark), e->conf.retain_weeks);
        int32_t keep = oldest == NO_WEEK ? NO_WEEK : oldest - 1;
        for (size_t i = 0; i < e->nlate; i++) {
                late_ev *l = &e->late[i];
                l->ev.model.ptr =
                    (const char *)e->late_arena.data + l->model_off;
                if (l->ev.origin.ptr)
                        l->ev.origin.ptr = l->origin;
                int32_t w = tt_week_of(l->ev.event_time_ms);
                /* Checked against retention when queued; if the watermark
                 * has since moved so far that the week's view is gone, it
                 * can no longer be revised correctly. */
                if (w < keep) {
                        e->st.late_lost++;
                        continue;
                }
                if (count_late(e, w, &l->ev, detail, sizeof(detail)))
                        e->st.late_lost++;
        }
        e->nlate = 0;
        tt_buf_reset(&e->late_arena);
        return TT_ERR_OK;
}

bool tt_engine_sync_due(tt_engine *e, int64_t now_ms) {
        if (e->nlate)
                return true;
        int64_t wm = compute_watermark(e, now_ms);
        return close_target(e, wm) > atomic_load(&e->closed_through);
}

/* Checks ev and counts it (into shard, or as a revision of its closed
 * week), keeping the stats; the dead-letter reason otherwise. */
static tt_reason check_count(tt_engine *e, uint32_t shard, const tt_event *ev,
                             int64_t now_ms, char *detail, size_t detail_size) {
        int32_t w = 0;
        bool late;
        tt_reason r =
            tt_engine_check(e, ev, now_ms, &w, &late, detail, detail_size);
        if (r == TT_REASON_NONE) {
                if (late)
                        r = count_late(e, w, ev, detail, detail_size);
                else if (tt_engine_count(e, shard, w, ev)) {
                        snprintf(detail, detail_size,
                                 "more than %u distinct models in one week "
                                 "(--max-keys)",
                                 (unsigned)e->conf.max_models);
                        r = TT_REASON_KEY_LIMIT;
                }
        }
        if (r != TT_REASON_NONE) {
                e->st.dead[r]++;
                e->st.dead_total++;
                return r;
        }
        e->st.accepted++;
        return TT_REASON_NONE;
}

void tt_engine_prefetch(const tt_engine *e, int32_t pid, const tt_event *ev) {
        if (pid >= 0 && ev->model_hash)
                tt_shard_prefetch(e->shards[(uint32_t)pid % e->conf.nshards],
                                  tt_week_of(ev->event_time_ms),
                                  ev->model_hash);
}

tt_reason tt_engine_offer(tt_engine *e, int32_t pid, const tt_event *ev,
                          int64_t now_ms, char *detail, size_t detail_size) {
        e->now = now_ms;
        partition *p = part_get(e, pid, now_ms);
        if (!p) {
                snprintf(detail, detail_size, "bad partition %d", (int)pid);
                e->st.dead[TT_REASON_KEY_LIMIT]++;
                e->st.dead_total++;
                return TT_REASON_KEY_LIMIT;
        }
        tt_reason r =
            check_count(e, (uint32_t)pid, ev, now_ms, detail, detail_size);
        if (r != TT_REASON_NONE)
                return r;
        int64_t old = atomic_load_explicit(&p->max_time, RELAXED);
        tt_engine_seen(e, pid, ev->event_time_ms, now_ms);
        /* Only a partition at (or below) the watermark can move it. */
        if (ev->event_time_ms > old &&
            old <= atomic_load_explicit(&e->watermark, RELAXED)) {
                recompute_watermark(e);
                int err = advance(e);
                if (err && !e->err)
                        e->err = err;
        }
        return TT_REASON_NONE;
}

int tt_engine_tick(tt_engine *e, int64_t now_ms) {
        e->now = now_ms;
        int err = apply_late(e);
        recompute_watermark(e);
        if (!err)
                err = advance(e);
        if (!err)
                err = flush_revisions(e);
        if (err && !e->err)
                e->err = err;
        return err;
}

int tt_engine_flush(tt_engine *e, int64_t now_ms) {
        e->now = now_ms;
        int err = flush_revisions(e);
        if (err && !e->err)
                e->err = err;
        return err;
}

int tt_engine_emit_provisional(tt_engine *e, int64_t now_ms) {
        e->now = now_ms;
        int err = collect_open(e);
        for (size_t i = 0; i < e->nopen && !err; i++) {
                tt_weekview *wv = tt_engine_view_get_(e, e->open[i]);
                if (!wv) {
                        err = TT_ERR_NOMEM;
                        break;
                }
                tt_engine_resume_mark_(e, wv);
                err = merge_shards(e, wv);
                if (!err)
                        err = derive_emit(e, wv, TT_EMIT_PROVISIONAL);
        }
        if (err && !e->err)
                e->err = err;
        return err;
}

int tt_engine_close_all(tt_engine *e, int64_t now_ms) {
        e->now = now_ms;
        int err = apply_late(e);
        if (!err)
                err = collect_open(e);
        if (!err)
                err = e->nopen ? close_through(e, e->open[e->nopen - 1])
                               : flush_revisions(e);
        if (err && !e->err)
                e->err = err;
        return err;
}

int tt_engine_error(const tt_engine *e) {
        return e->err;
}

int64_t tt_engine_watermark(const tt_engine *e) {
        return atomic_load(&((tt_engine *)e)->watermark);
}

int32_t tt_engine_closed_through(const tt_engine *e) {
        return atomic_load(&((tt_engine *)e)->closed_through);
}

void tt_engine_get_stats(const tt_engine *e, tt_engine_stats *st) {
        *st = e->st;
        int32_t open = 0;
        for (uint32_t i = 0; i < e->conf.nshards; i++)
                open += (int32_t)tt_shard_weeks(e->shards[i]);
        st->open_weeks = open;
        uint64_t keys = 0,
                 bytes = tt_keytab_bytes(e->keys) + tt_keyorder_bytes(e->order);
        for (uint32_t i = 0; i < e->conf.nshards; i++) {
                keys += tt_shard_keys(e->shards[i]);
                bytes += tt_shard_bytes(e->shards[i]);
        }
        for (size_t i = 0; i < e->nviews; i++) {
                keys += e->views[i]->n;
                bytes += tt_weekview_bytes(e->views[i]);
        }
        st->state_keys = keys;
        st->state_bytes = bytes;
        st->max_keys = e->conf.max_models;
        st->key_limit_events =
            atomic_load_explicit(&((tt_engine *)e)->key_limit_events, RELAXED);
        /* Distinct models of each open week, summed over the shards (a
         * model counted by two workers counts twice: this is what is held,
         * and what --max-keys bounds per shard). */
        st->nweek_models = 0;
        for (uint32_t i = 0; i < e->conf.nshards; i++) {
                const tt_shard *sh = e->shards[i];
                for (size_t k = 0; k < tt_shard_weeks(sh); k++) {
                        int32_t w = tt_shard_week_at(sh, k);
                        size_t j = 0;
                        while (j < st->nweek_models &&
                               st->week_models[j].week != w)
                                j++;
                        if (j == st->nweek_models) {
                                if (j == TT_STATS_WEEKS)
                                        continue;
                                st->week_models[j].week = w;
                                st->week_models[j].models = 0;
                                st->nweek_models++;
                        }
                        st->week_models[j].models +=
                            tt_shard_week_models(sh, w);
                }
        }
        int32_t closed = 0, ct = atomic_load(&((tt_engine *)e)->closed_through);
        for (size_t i = 0; i < e->nviews; i++)
                if (e->views[i]->week <= ct)
                        closed++;
        st->closed_weeks_held = closed;
}

/* ---- front and merger modes (exactly-once stage) ----------------------- */

typedef struct drain_ctx {
        const tt_engine_cells_visitor *v;
        void *opaque;
        int32_t week;
} drain_ctx;

static void drain_model(void *opaque, tt_str model, const tt_cell *c) {
        drain_ctx *d = opaque;
        d->v->model(d->opaque, d->week, model, c);
}

static void drain_origin(void *opaque, tt_origin o, const tt_cell *c) {
        drain_ctx *d = opaque;
        d->v->origin(d->opaque, d->week, o, c);
}

void tt_engine_drain(tt_engine *e, const tt_engine_cells_visitor *v,
                     void *opaque) {
        static const tt_shard_visitor sv = {drain_model, drain_origin};
        drain_ctx d = {v, opaque, 0};
        for (uint32_t i = 0; i < e->conf.nshards; i++) {
                tt_shard *s = e->shards[i];
                for (size_t k = 0; k < tt_shard_weeks(s); k++) {
                        d.week = tt_shard_week_at(s, k);
                        tt_shard_visit(s, d.week, &sv, &d);
                }
                tt_shard_clear(s);
        }
}

void tt_engine_partition_state(const tt_engine *e, int32_t pid, int64_t now_ms,
                               int64_t *max_time, bool *idle) {
        *max_time = INT64_MIN;
        *idle = false;
        if (pid < 0 || pid >= e->conf.max_partitions)
                return;
        const partition *p = &e->parts[pid];
        *max_time = atomic_load_explicit(&p->max_time, RELAXED);
        *idle = is_idle(e, p, now_ms);
}

void tt_engine_partition_report(tt_engine *e, int32_t pid, int64_t max_time,
                                bool idle, bool eof) {
        partition *p = part_get(e, pid, e->now);
        if (!p)
                return;
        if (max_time > atomic_load_explicit(&p->max_time, RELAXED))
                atomic_store_explicit(&p->max_time, max_time, RELAXED);
        p->reported_idle = idle || eof;
        p->reported_eof = eof;
}

bool tt_engine_all_eof(const tt_engine *e) {
        bool any = false;
        for (int32_t i = 0; i < e->nparts; i++) {
                if (!e->parts[i].live)
                        continue;
                if (!e->parts[i].reported_eof)
                        return false;
                any = true;
        }
        return any;
}

/* A cell of a closed week: into its view as a revision while the week is
 * retained; NULL when it is too old to revise. */
static tt_weekview *closed_view(tt_engine *e, int32_t w, int64_t requests) {
        int32_t oldest =
            oldest_retained(atomic_load(&e->watermark), e->conf.retain_weeks);
        if (oldest != NO_WEEK && w < oldest) {
                e->st.late_lost += (uint64_t)requests;
                return NULL;
        }
        return tt_engine_view_get_(e, w);
}

int tt_engine_merge_model(tt_engine *e, int32_t w, tt_str model,
                          const tt_cell *c) {
        if (w > atomic_load(&e->closed_through))
                return tt_shard_merge_model(e->shards[0], w, model, c);
        tt_weekview *wv = closed_view(e, w, 0);
        if (!wv)
                return TT_ERR_OK;
        uint32_t id = tt_keytab_intern(e->keys, model.ptr, model.len, NULL);
        if (id == TT_KEY_NONE)
                return TT_ERR_NOMEM;
        int err = tt_weekview_add_cell(wv, TT_DIM_MODEL, id, c, true);
        if (!err) {
                wv->dirty = true;
                e->pending = true;
        }
        return err;
}

int tt_engine_merge_origin(tt_engine *e, int32_t w, tt_origin o,
                           const tt_cell *c) {
        if (w > atomic_load(&e->closed_through))
                return tt_shard_merge_origin(e->shards[0], w, o, c);
        tt_weekview *wv = closed_view(e, w, c->requests);
        if (!wv)
                return TT_ERR_OK;
        int err = tt_weekview_add_cell(wv, TT_DIM_ORIGIN, o, c, true);
        if (!err)
                err = tt_weekview_add_cell(wv, TT_DIM_TOTAL, 0, c, true);
        if (!err) {
                wv->dirty = true;
                e->pending = true;
                e->st.late_revised += (uint64_t)c->requests;
        }
        return err;
}

tt_reason tt_engine_offer_forwarded(tt_engine *e, const tt_event *ev,
                                    int64_t now_ms, char *detail,
                                    size_t detail_size) {
        e->now = now_ms;
        return check_count(e, 0, ev, now_ms, detail, detail_size);
}
