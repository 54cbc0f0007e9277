/* The engine: routing of events to shards, watermarks, week closing, late
 * revisions and streaks. See engine.h for the contract and SPEC §3 for the
 * semantics this file implements. */
#include "tokentally/engine.h"

#include <stdio.h>
#include <string.h>

#include "tokentally/counters.h"
#include "tokentally/err.h"
#include "tokentally/keytab.h"
#include "tokentally/mem.h"
#include "tokentally/streak.h"
#include "tokentally/week.h"
#include "tokentally/weekview.h"

#define NO_WEEK INT32_MIN

typedef struct partition {
        bool live;        /* registered and not removed */
        bool idle;        /* no event for idle_timeout */
        int64_t max_time; /* INT64_MIN: no event yet */
        int64_t last_activity;
} partition;

struct tt_engine {
        tt_engine_conf conf;
        const tt_sink *sink;
        void *opaque;
        int err;

        tt_streak_rule *rules;
        size_t nrules;

        tt_shard **shards;
        tt_keytab *keys; /* model slugs of merged rows, engine-wide */

        partition *parts;
        int32_t nparts;

        int64_t watermark;
        int32_t closed_through; /* every week <= this is closed */

        /* Weeks with events in the shards, ascending. */
        int32_t *open;
        size_t nopen, capopen;
        int32_t last_open; /* fast path: the week of the previous event */

        /* Merged views, ascending by week: closed ones within retention and
         * open ones that have had PROVISIONAL rows. */
        tt_weekview **views;
        size_t nviews, capviews;
        bool pending; /* a closed view is dirty */

        tt_engine_stats st;
        int64_t now;
};

void tt_engine_conf_defaults(tt_engine_conf *c) {
        memset(c, 0, sizeof(*c));
        c->grace_ms = 10 * 60 * 1000;
        c->retain_weeks = 12;
        c->idle_timeout_ms = 30 * 1000;
        c->max_future_ms = 3600 * 1000;
        c->nshards = 1;
        c->max_models = 65536;
}

tt_engine *tt_engine_new(const tt_engine_conf *conf, const tt_sink *sink,
                         void *opaque, char *errstr, size_t errsize) {
        if (!conf->origins || conf->nshards == 0 || conf->retain_weeks < 1 ||
            conf->grace_ms < 0) {
                snprintf(errstr, errsize,
                         "engine: origin map, shards >= 1, retain >= 1 and "
                         "grace >= 0 are required");
                return NULL;
        }
        tt_engine *e = tt_calloc(1, sizeof(*e));
        if (!e)
                goto nomem;
        e->conf = *conf;
        e->sink = sink;
        e->opaque = opaque;
        e->watermark = INT64_MIN;
        e->closed_through = NO_WEEK;
        e->last_open = NO_WEEK;
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
        uint64_t maxkeys = (uint64_t)conf->max_models * conf->nshards;
        e->keys = tt_keytab_new(maxkeys > UINT32_MAX - 1 ? UINT32_MAX - 1
                                                         : (uint32_t)maxkeys);
        if (!e->keys)
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
        for (size_t i = 0; i < e->nrules; i++)
                tt_streak_rule_free(&e->rules[i]);
        tt_free(e->rules);
        if (e->shards)
                for (uint32_t i = 0; i < e->conf.nshards; i++)
                        tt_shard_destroy(e->shards[i]);
        tt_free(e->shards);
        tt_keytab_destroy(e->keys);
        for (size_t i = 0; i < e->nviews; i++)
                tt_weekview_destroy(e->views[i]);
        tt_free(e->views);
        tt_free(e->open);
        tt_free(e->parts);
        tt_free(e);
}

/* ---- views ---------------------------------------------------------- */

static tt_weekview *view_find(const tt_engine *e, int32_t w) {
        for (size_t i = 0; i < e->nviews; i++)
                if (e->views[i]->week == w)
                        return e->views[i];
        return NULL;
}

static tt_weekview *view_get(tt_engine *e, int32_t w) {
        tt_weekview *wv = view_find(e, w);
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
static const tt_weekview *view_prev(const tt_engine *e, const tt_weekview *wv) {
        const tt_weekview *p = view_find(e, wv->week - 1);
        return p && tt_weekview_has_events(p) ? p : NULL;
}

/* ---- counting into views ---------------------------------------------- */

static int view_add_cell(tt_engine *e, tt_weekview *wv, tt_dim dim,
                         uint32_t key, const tt_cell *c) {
        tt_row *row = tt_weekview_row(wv, dim, key);
        if (!row)
                return TT_ERR_NOMEM;
        tt_cell_merge(&row->c, c);
        return TT_ERR_OK;
}

typedef struct merge_ctx {
        tt_engine *e;
        tt_weekview *wv;
        int err;
} merge_ctx;

static void merge_model(void *opaque, tt_str model, const tt_cell *c) {
        merge_ctx *m = opaque;
        if (m->err)
                return;
        uint32_t id = tt_keytab_intern(m->e->keys, model.ptr, model.len, NULL);
        if (id == TT_KEY_NONE) {
                m->err = TT_ERR_NOMEM;
                return;
        }
        m->err = view_add_cell(m->e, m->wv, TT_DIM_MODEL, id, c);
}

static void merge_origin(void *opaque, tt_origin o, const tt_cell *c) {
        merge_ctx *m = opaque;
        if (m->err)
                return;
        m->err = view_add_cell(m->e, m->wv, TT_DIM_ORIGIN, o, c);
        if (!m->err)
                m->err = view_add_cell(m->e, m->wv, TT_DIM_TOTAL, 0, c);
}

/* Rebuilds wv's counters from every shard's counters of its week. */
static int merge_shards(tt_engine *e, tt_weekview *wv) {
        static const tt_shard_visitor visitor = {merge_model, merge_origin};
        merge_ctx m = {e, wv, 0};
        tt_weekview_clear_counts(wv);
        for (uint32_t i = 0; i < e->conf.nshards; i++)
                tt_shard_visit(e->shards[i], wv->week, &visitor, &m);
        return m.err;
}

/* ---- streaks ---------------------------------------------------------- */

static tt_str key_str(const tt_engine *e, tt_dim dim, uint32_t key) {
        return dim == TT_DIM_ORIGIN ? tt_origin_str((tt_origin)key)
                                    : tt_keytab_str(e->keys, key);
}

/* Candidates of rule r in wv. Listed keys count 0 when absent. */
static size_t candidates(const tt_engine *e, const tt_streak_rule *r,
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
                        out[n].tokens = row ? row->c.tokens : 0;
                        n++;
                }
                return n;
        }
        for (uint32_t i = 0; i < wv->n && n < cap; i++) {
                const tt_row *row = &wv->rows[i];
                if (row->dim != r->dim || !row->c.requests)
                        continue;
                out[n].key = key_str(e, row->dim, row->key);
                out[n].tokens = row->c.tokens;
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
        const tt_weekview *pv = view_prev(e, wv);
        /* Rows are few per week; candidates of unlisted rules are capped by
         * the row count, so size the buffer from it. */
        size_t cap = wv->n + TT_STREAK_MAX_CANDIDATES;
        tt_streak_cand *cand = tt_malloc(cap * sizeof(*cand));
        if (!cand)
                return TT_ERR_NOMEM;
        int err = TT_ERR_OK;
        for (size_t r = 0; r < e->nrules && !err; r++) {
                size_t n = candidates(e, &e->rules[r], wv, cand, cap);
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
        int err = tt_weekview_derive(wv, view_prev(e, wv), e->keys);
        if (err)
                return err;
        uint64_t n;
        err =
            tt_weekview_emit(wv, mode, e->keys, e->sink, e->opaque, e->now, &n);
        stats_rows(e, mode, n);
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
                tt_weekview *next = view_find(e, wv->week + 1);
                if (next && next->week <= e->closed_through && !next->dirty &&
                    (err = derive_emit(e, next, TT_EMIT_REVISED)))
                        return err;
        }
        for (size_t i = 0; from != NO_WEEK && i < e->nviews; i++) {
                tt_weekview *wv = e->views[i];
                if (wv->week < from || wv->week > e->closed_through)
                        continue;
                if ((err = decide_streaks(e, wv)))
                        return err;
        }
        return TT_ERR_OK;
}

static void open_remove(tt_engine *e, int32_t w) {
        for (size_t i = 0; i < e->nopen; i++)
                if (e->open[i] == w) {
                        memmove(&e->open[i], &e->open[i + 1],
                                (e->nopen - i - 1) * sizeof(int32_t));
                        e->nopen--;
                        break;
                }
        if (e->last_open == w)
                e->last_open = NO_WEEK;
}

static int close_week(tt_engine *e, int32_t w) {
        tt_weekview *wv = view_get(e, w);
        if (!wv)
                return TT_ERR_NOMEM;
        int err = merge_shards(e, wv);
        if (!err)
                err = derive_emit(e, wv, TT_EMIT_FINAL);
        if (!err)
                err = decide_streaks(e, wv);
        for (uint32_t i = 0; i < e->conf.nshards; i++)
                tt_shard_drop(e->shards[i], w);
        open_remove(e, w);
        e->st.weeks_closed++;
        return err;
}

/* Forgets closed weeks that no event can revise any more, keeping one
 * extra week for the prev_tokens and streak state of the oldest kept. */
static void drop_old(tt_engine *e) {
        if (e->watermark == INT64_MIN)
                return;
        int32_t keep = tt_week_of(e->watermark) - e->conf.retain_weeks;
        size_t j = 0;
        for (size_t i = 0; i < e->nviews; i++) {
                tt_weekview *wv = e->views[i];
                if (wv->week < keep && wv->week <= e->closed_through)
                        tt_weekview_destroy(wv);
                else
                        e->views[j++] = wv;
        }
        e->nviews = j;
}

/* Closes, in week order, every open week up to and including target. */
static int close_through(tt_engine *e, int32_t target) {
        int err = flush_revisions(e);
        if (err)
                return err;
        while (e->nopen && e->open[0] <= target)
                if ((err = close_week(e, e->open[0])))
                        return err;
        if (target > e->closed_through)
                e->closed_through = target;
        drop_old(e);
        return TT_ERR_OK;
}

static int advance(tt_engine *e) {
        if (e->watermark == INT64_MIN)
                return TT_ERR_OK;
        int32_t target = tt_week_of(e->watermark - e->conf.grace_ms) - 1;
        if (target <= e->closed_through)
                return TT_ERR_OK;
        return close_through(e, target);
}

/* ---- watermarks ------------------------------------------------------- */

static void recompute_watermark(tt_engine *e) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        bool any_live = false;
        for (int32_t i = 0; i < e->nparts; i++) {
                const partition *p = &e->parts[i];
                if (!p->live)
                        continue;
                if (p->max_time > hi)
                        hi = p->max_time;
                if (p->idle)
                        continue;
                any_live = true;
                if (p->max_time < lo)
                        lo = p->max_time;
        }
        /* With every partition idle or finished, nothing holds the
         * watermark back but what was seen: it is the newest event. */
        int64_t wm = any_live ? lo : hi;
        if (!any_live && hi == INT64_MIN)
                return;
        if (wm > e->watermark)
                e->watermark = wm;
}

static partition *part_get(tt_engine *e, int32_t pid, int64_t now) {
        if (pid < 0)
                return NULL;
        if (pid >= e->nparts) {
                int32_t n = pid + 1;
                partition *np = tt_realloc(e->parts, (size_t)n * sizeof(*np));
                if (!np)
                        return NULL;
                for (int32_t i = e->nparts; i < n; i++)
                        np[i] = (partition){false, false, INT64_MIN, now};
                e->parts = np;
                e->nparts = n;
        }
        partition *p = &e->parts[pid];
        if (!p->live) {
                p->live = true;
                p->idle = false;
                p->last_activity = now;
        }
        return p;
}

int tt_engine_partition_add(tt_engine *e, int32_t pid, int64_t now_ms) {
        return part_get(e, pid, now_ms) ? TT_ERR_OK : TT_ERR_NOMEM;
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

static int open_add(tt_engine *e, int32_t w) {
        for (size_t i = 0; i < e->nopen; i++)
                if (e->open[i] == w)
                        return TT_ERR_OK;
        if (e->nopen == e->capopen) {
                size_t ncap = e->capopen ? e->capopen * 2 : 8;
                int32_t *no = tt_realloc(e->open, ncap * sizeof(*no));
                if (!no)
                        return TT_ERR_NOMEM;
                e->open = no;
                e->capopen = ncap;
        }
        size_t i = e->nopen;
        while (i > 0 && e->open[i - 1] > w) {
                e->open[i] = e->open[i - 1];
                i--;
        }
        e->open[i] = w;
        e->nopen++;
        return TT_ERR_OK;
}

/* Counts a late event straight into its closed week's view. */
static tt_reason count_late(tt_engine *e, int32_t w, const tt_event *ev,
                            char *detail, size_t size) {
        tt_weekview *wv = view_get(e, w);
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
        tt_row *rows[3] = {tt_weekview_row(wv, TT_DIM_MODEL, id),
                           tt_weekview_row(wv, TT_DIM_ORIGIN, o),
                           tt_weekview_row(wv, TT_DIM_TOTAL, 0)};
        if (!rows[0] || !rows[1] || !rows[2]) {
                snprintf(detail, size, "out of memory");
                return TT_REASON_KEY_LIMIT;
        }
        for (int i = 0; i < 3; i++)
                tt_cell_add(&rows[i]->c, ev, o);
        wv->dirty = true;
        e->pending = true;
        e->st.late_revised++;
        return TT_REASON_NONE;
}

static tt_reason classify(tt_engine *e, int32_t pid, const tt_event *ev,
                          int64_t now, char *detail, size_t size) {
        tt_reason r = tt_event_validate(ev, detail, size);
        if (r != TT_REASON_NONE)
                return r;
        if (e->conf.max_future_ms >= 0 &&
            ev->event_time_ms > now + e->conf.max_future_ms) {
                snprintf(detail, size,
                         "event_time is %lld ms ahead of the clock (limit "
                         "%lld)",
                         (long long)(ev->event_time_ms - now),
                         (long long)e->conf.max_future_ms);
                return TT_REASON_FUTURE_TIME;
        }
        int32_t w = tt_week_of(ev->event_time_ms);
        if (w <= e->closed_through) {
                char name[16];
                tt_week_name(w, name, sizeof(name));
                int32_t oldest =
                    e->watermark == INT64_MIN
                        ? NO_WEEK
                        : tt_week_of(e->watermark) - e->conf.retain_weeks + 1;
                if (w < oldest) {
                        snprintf(detail, size,
                                 "week %s is older than the %d retained "
                                 "weeks",
                                 name, (int)e->conf.retain_weeks);
                        return TT_REASON_TOO_LATE;
                }
                if (e->conf.late_dlq) {
                        snprintf(detail, size, "week %s is already closed",
                                 name);
                        return TT_REASON_LATE;
                }
                return count_late(e, w, ev, detail, size);
        }
        if (w != e->last_open) {
                if (open_add(e, w)) {
                        snprintf(detail, size, "out of memory");
                        return TT_REASON_KEY_LIMIT;
                }
                e->last_open = w;
        }
        tt_shard *s = e->shards[(uint32_t)pid % e->conf.nshards];
        if (tt_shard_add(s, w, ev)) {
                snprintf(detail, size,
                         "more than %u distinct models in one shard",
                         (unsigned)e->conf.max_models);
                return TT_REASON_KEY_LIMIT;
        }
        return TT_REASON_NONE;
}

tt_reason tt_engine_offer(tt_engine *e, int32_t pid, const tt_event *ev,
                          int64_t now_ms, char *detail, size_t detail_size) {
        e->now = now_ms;
        partition *p = part_get(e, pid, now_ms);
        if (!p) {
                snprintf(detail, detail_size, "bad partition %d", (int)pid);
                e->err = e->err ? e->err : TT_ERR_NOMEM;
                return TT_REASON_KEY_LIMIT;
        }
        tt_reason r = classify(e, pid, ev, now_ms, detail, detail_size);
        if (r != TT_REASON_NONE) {
                e->st.dead[r]++;
                e->st.dead_total++;
                return r;
        }
        e->st.accepted++;
        p->last_activity = now_ms;
        bool was_idle = p->idle;
        p->idle = false;
        if (ev->event_time_ms > p->max_time) {
                /* Only a partition at the watermark can move it. */
                bool at_wm = p->max_time <= e->watermark || was_idle;
                p->max_time = ev->event_time_ms;
                if (at_wm || e->watermark == INT64_MIN) {
                        recompute_watermark(e);
                        int err = advance(e);
                        if (err && !e->err)
                                e->err = err;
                }
        }
        return TT_REASON_NONE;
}

int tt_engine_tick(tt_engine *e, int64_t now_ms) {
        e->now = now_ms;
        if (e->conf.idle_timeout_ms > 0)
                for (int32_t i = 0; i < e->nparts; i++) {
                        partition *p = &e->parts[i];
                        if (p->live && !p->idle &&
                            now_ms - p->last_activity >=
                                e->conf.idle_timeout_ms)
                                p->idle = true;
                }
        recompute_watermark(e);
        int err = advance(e);
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
        int err = TT_ERR_OK;
        for (size_t i = 0; i < e->nopen && !err; i++) {
                tt_weekview *wv = view_get(e, e->open[i]);
                if (!wv) {
                        err = TT_ERR_NOMEM;
                        break;
                }
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
        int err = TT_ERR_OK;
        if (e->nopen)
                err = close_through(e, e->open[e->nopen - 1]);
        else
                err = flush_revisions(e);
        if (err && !e->err)
                e->err = err;
        return err;
}

int tt_engine_error(const tt_engine *e) {
        return e->err;
}

int64_t tt_engine_watermark(const tt_engine *e) {
        return e->watermark;
}

void tt_engine_get_stats(const tt_engine *e, tt_engine_stats *st) {
        *st = e->st;
        st->open_weeks = (int32_t)e->nopen;
        int32_t closed = 0;
        for (size_t i = 0; i < e->nviews; i++)
                if (e->views[i]->week <= e->closed_through)
                        closed++;
        st->closed_weeks_held = closed;
}
