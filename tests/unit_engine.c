/* The engine with plain arrays: rollup fields, week closing on the
 * watermark, idle partitions, late events (revise, dlq, too_late), streak
 * tie rules, shard independence and the recount invariant. */
#include <check.h>
#include <math.h>
#include <stdint.h>

#include "check_main.h"
#include "recorder.h"
#include "tokentally/engine.h"
#include "tokentally/streak.h"
#include "tokentally/week.h"

#define W13 INT64_C(1774224000000)
#define W14 INT64_C(1774828800000)
#define W15 INT64_C(1775433600000)
#define WEEK TT_WEEK_MS
#define MIN INT64_C(60000)
#define HOUR (60 * MIN)

static tt_origin_map *map;

static void setup(void) {
        map = default_origins();
        ck_assert_ptr_nonnull(map);
}

static void teardown(void) {
        tt_origin_map_destroy(map);
}

/* max_models: --max-keys (0, the default, unbounded). */
static tt_engine *mk_keys(recorder *rc, uint32_t shards, bool dlq, int retain,
                          uint32_t max_models) {
        tt_engine_conf c;
        tt_engine_conf_defaults(&c);
        ck_assert_uint_eq(c.max_models, 0);
        c.origins = map;
        c.max_future_ms = -1;
        c.idle_timeout_ms = 0;
        c.nshards = shards;
        c.late_dlq = dlq;
        c.retain_weeks = retain;
        c.max_models = max_models;
        char err[256];
        tt_engine *e = tt_engine_new(&c, &recorder_sink, rc, err, sizeof(err));
        ck_assert_msg(e != NULL, "%s", err);
        return e;
}

static tt_engine *mk(recorder *rc, uint32_t shards, bool dlq, int retain) {
        return mk_keys(rc, shards, dlq, retain, 0);
}

static void offer_ok(tt_engine *e, int pid, tt_event ev) {
        char d[256];
        tt_reason r = tt_engine_offer(e, pid, &ev, 0, d, sizeof(d));
        ck_assert_msg(r == TT_REASON_NONE, "rejected: %s (%s)",
                      tt_reason_str(r), d);
}

static tt_reason offer(tt_engine *e, int pid, tt_event ev) {
        char d[256];
        return tt_engine_offer(e, pid, &ev, 0, d, sizeof(d));
}

START_TEST(test_rollup_fields) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, false, 12);
        offer_ok(e, 0, mkev("deepseek/a", NULL, W13 + HOUR, 600, 400));
        offer_ok(e, 0, mkev("openai/x", NULL, W13 + HOUR, 500, 0));
        offer_ok(e, 0, mkev("deepseek/a", NULL, W14 + HOUR, 1000, 500));
        offer_ok(e, 0, mkev("openai/x", NULL, W14 + 2 * HOUR, 250, 250));
        offer_ok(e, 0, mkev("mistralai/m", NULL, W14 + 3 * HOUR, 500, 0));
        offer_ok(e, 0, mkev("qwen/q", "CN", W14 + 4 * HOUR, 400, 100));
        ck_assert_int_eq(tt_engine_close_all(e, 42), 0);

        const rec_row *t = latest(&rc, "2026-W14", TT_DIM_TOTAL, "*");
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->r.tokens, 3000);
        ck_assert_int_eq(t->r.prompt_tokens, 2150);
        ck_assert_int_eq(t->r.completion_tokens, 850);
        ck_assert_int_eq(t->r.requests, 4);
        ck_assert(t->r.has_prev && t->r.prev_tokens == 1500);
        ck_assert(t->r.has_growth && t->r.wow_growth_pct == 100.0);
        ck_assert(t->r.share_pct == 100.0);
        ck_assert_int_eq(t->r.rank, 1);
        ck_assert_int_eq(t->r.status, TT_STATUS_FINAL);
        ck_assert_int_eq(t->r.revision, 0);
        ck_assert_int_eq(t->r.emitted_at_ms, 42);
        ck_assert_int_eq(t->r.week_start_ms, W14);
        ck_assert_str_eq(t->origin, "");

        const rec_row *cn = latest(&rc, "2026-W14", TT_DIM_ORIGIN, "CN");
        ck_assert_int_eq(cn->r.tokens, 2000);
        ck_assert(cn->r.wow_growth_pct == 100.0);
        ck_assert(fabs(cn->r.share_pct - 66.666666666666671) < 1e-12);
        ck_assert_int_eq(cn->r.rank, 1);
        /* FR and US tie at 500: the smaller key ranks first. */
        ck_assert_int_eq(latest(&rc, "2026-W14", TT_DIM_ORIGIN, "FR")->r.rank,
                         2);
        const rec_row *us = latest(&rc, "2026-W14", TT_DIM_ORIGIN, "US");
        ck_assert_int_eq(us->r.rank, 3);
        ck_assert(us->r.has_growth && us->r.wow_growth_pct == 0.0);

        const rec_row *m = latest(&rc, "2026-W14", TT_DIM_MODEL, "mistralai/m");
        ck_assert(!m->r.has_prev && !m->r.has_growth);
        ck_assert_str_eq(m->origin, "FR");
        ck_assert_int_eq(m->r.rank, 2);
        ck_assert_int_eq(
            latest(&rc, "2026-W14", TT_DIM_MODEL, "openai/x")->r.rank, 3);
        ck_assert_int_eq(
            latest(&rc, "2026-W14", TT_DIM_MODEL, "qwen/q")->r.rank, 4);
        ck_assert_str_eq(
            latest(&rc, "2026-W14", TT_DIM_MODEL, "deepseek/a")->origin, "CN");
        /* 2 weeks x (TOTAL + origins + models): W13 2+2+1, W14 1+3+4. */
        ck_assert_uint_eq(rc.nrows, 13);
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

START_TEST(test_growth_zero_prev) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, false, 12);
        offer_ok(e, 0, mkev("x-ai/zero", NULL, W13 + HOUR, 0, 0));
        offer_ok(e, 0, mkev("x-ai/zero", NULL, W14 + HOUR, 10, 0));
        tt_engine_close_all(e, 0);
        const rec_row *r = latest(&rc, "2026-W14", TT_DIM_MODEL, "x-ai/zero");
        ck_assert(r->r.has_prev && r->r.prev_tokens == 0);
        ck_assert(!r->r.has_growth);
        const rec_row *t13 = latest(&rc, "2026-W13", TT_DIM_TOTAL, "*");
        ck_assert(t13->r.share_pct == 0.0); /* total 0 → share 0 */
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

START_TEST(test_close_on_watermark) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, false, 12);
        offer_ok(e, 0, mkev("openai/x", NULL, W14 + HOUR, 1, 0));
        /* end(W14) + grace - 1 ms: still open. */
        offer_ok(e, 0, mkev("openai/x", NULL, W15 + 10 * MIN - 1, 1, 0));
        ck_assert_uint_eq(rc.nrows, 0);
        /* An event of W14 inside the grace is still counted normally. */
        offer_ok(e, 0, mkev("openai/x", NULL, W15 - 1, 1, 0));
        offer_ok(e, 0, mkev("openai/x", NULL, W15 + 10 * MIN, 1, 0));
        ck_assert_uint_eq(rc.nrows, 3); /* W14 TOTAL, US, model */
        ck_assert_int_eq(latest(&rc, "2026-W14", TT_DIM_TOTAL, "*")->r.tokens,
                         2);
        ck_assert_uint_eq(rc.nstreaks, 3);
        /* FINAL rows first, then the week's streak changes. */
        ck_assert_int_eq(memcmp(rc.order, "RRRSSS", 6), 0);
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

START_TEST(test_late_revise) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, false, 12);
        offer_ok(e, 0, mkev("deepseek/a", NULL, W14 + HOUR, 100, 0));
        offer_ok(e, 0, mkev("openai/x", NULL, W14 + HOUR, 100, 0));
        offer_ok(e, 0, mkev("openai/x", NULL, W15 + HOUR, 50, 0));
        /* Watermark past end(W15)+grace: W14 and W15 closed. */
        offer_ok(e, 0, mkev("openai/x", NULL, W15 + WEEK + HOUR, 1, 0));
        size_t before = rc.nrows;
        ck_assert_uint_eq(before, 8);
        offer_ok(e, 0, mkev("deepseek/a", NULL, W14 + 2 * HOUR, 100, 0));
        ck_assert_uint_eq(rc.nrows, before); /* batched until a flush */
        tt_engine_flush(e, 0);
        /* W14: TOTAL, CN, US (share), deepseek/a, openai/x (share); W15:
         * TOTAL's prev changed; US/openai rows of W15 did not change. */
        ck_assert_uint_eq(rc.nrows - before, 6);
        const rec_row *t = latest(&rc, "2026-W14", TT_DIM_TOTAL, "*");
        ck_assert_int_eq(t->r.status, TT_STATUS_REVISED);
        ck_assert_int_eq(t->r.revision, 1);
        ck_assert_int_eq(t->r.tokens, 300);
        const rec_row *cn = latest(&rc, "2026-W14", TT_DIM_ORIGIN, "CN");
        ck_assert_int_eq(cn->r.tokens, 200);
        ck_assert_int_eq(cn->r.rank, 1);
        const rec_row *us = latest(&rc, "2026-W14", TT_DIM_ORIGIN, "US");
        ck_assert_int_eq(us->r.revision, 1);
        ck_assert(fabs(us->r.share_pct - 100.0 / 3) < 1e-12);
        ck_assert_int_eq(us->r.rank, 2);
        const rec_row *t15 = latest(&rc, "2026-W15", TT_DIM_TOTAL, "*");
        ck_assert_int_eq(t15->r.status, TT_STATUS_REVISED);
        ck_assert_int_eq(t15->r.prev_tokens, 300);
        ck_assert_int_eq(latest(&rc, "2026-W15", TT_DIM_ORIGIN, "US")->r.status,
                         TT_STATUS_FINAL);
        /* The leader of W14 changed from CN (tie, smaller key) to CN with a
         * margin: leader:origin re-emitted for W14 with the new figures. */
        const rec_streak *s = latest_streak(&rc, "leader:origin", "2026-W14");
        ck_assert_str_eq(s->holder, "CN");
        ck_assert_int_eq(s->s.holder_tokens, 200);
        ck_assert(s->s.has_margin && s->s.margin_pct == 100.0);
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

START_TEST(test_late_dlq_and_too_late) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, true, 2);
        offer_ok(e, 0, mkev("openai/x", NULL, W13 + HOUR, 1, 0));
        offer_ok(e, 0, mkev("openai/x", NULL, W15 + HOUR, 1, 0));
        /* The watermark is in W15: W14 and W15 are retained, W13 not. */
        ck_assert_int_eq(offer(e, 0, mkev("openai/x", NULL, W14 + 1, 1, 0)),
                         TT_REASON_LATE);
        ck_assert_int_eq(offer(e, 0, mkev("openai/x", NULL, W13 + 1, 1, 0)),
                         TT_REASON_TOO_LATE);
        tt_engine_destroy(e);
        recorder_free(&rc);

        memset(&rc, 0, sizeof(rc));
        e = mk(&rc, 1, false, 2);
        offer_ok(e, 0, mkev("openai/x", NULL, W13 + HOUR, 1, 0));
        offer_ok(e, 0, mkev("openai/x", NULL, W15 + HOUR, 1, 0));
        ck_assert_int_eq(offer(e, 0, mkev("openai/x", NULL, W13 + 1, 1, 0)),
                         TT_REASON_TOO_LATE);
        /* W14 had no events: a late one makes its first rows REVISED 0. */
        offer_ok(e, 0, mkev("openai/x", NULL, W14 + 1, 5, 0));
        tt_engine_flush(e, 0);
        const rec_row *t = latest(&rc, "2026-W14", TT_DIM_TOTAL, "*");
        ck_assert_int_eq(t->r.status, TT_STATUS_REVISED);
        ck_assert_int_eq(t->r.revision, 0);
        ck_assert_int_eq(t->r.tokens, 5);
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

START_TEST(test_future_time) {
        recorder rc = {0};
        tt_engine_conf c;
        tt_engine_conf_defaults(&c);
        c.origins = map;
        char err[128], d[256];
        tt_engine *e = tt_engine_new(&c, &recorder_sink, &rc, err, sizeof(err));
        tt_event ev = mkev("openai/x", NULL, W14 + HOUR + 1, 1, 0);
        ck_assert_int_eq(tt_engine_offer(e, 0, &ev, W14, d, sizeof(d)),
                         TT_REASON_FUTURE_TIME);
        ev.event_time_ms = W14 + HOUR;
        ck_assert_int_eq(tt_engine_offer(e, 0, &ev, W14, d, sizeof(d)),
                         TT_REASON_NONE);
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

START_TEST(test_idle_partition) {
        recorder rc = {0};
        tt_engine_conf c;
        tt_engine_conf_defaults(&c);
        c.origins = map;
        c.max_future_ms = -1;
        char err[128], d[256];
        tt_engine *e = tt_engine_new(&c, &recorder_sink, &rc, err, sizeof(err));
        tt_event a = mkev("openai/x", NULL, W14 + HOUR, 1, 0);
        tt_event b = mkev("openai/x", NULL, W15 + HOUR, 1, 0);
        tt_engine_offer(e, 1, &a, 0, d, sizeof(d));
        tt_engine_offer(e, 0, &b, 0, d, sizeof(d));
        /* Partition 1 holds the watermark in W14. */
        ck_assert_int_eq(tt_engine_watermark(e), W14 + HOUR);
        tt_engine_tick(e, 29999);
        ck_assert_uint_eq(rc.nrows, 0);
        tt_engine_offer(e, 0, &b, 29999, d, sizeof(d)); /* 0 stays busy */
        tt_engine_tick(e, 30000);
        ck_assert_int_eq(tt_engine_watermark(e), W15 + HOUR);
        ck_assert_uint_eq(rc.nrows, 3); /* W14 closed */
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

/* tt_streak_decide: the tie rules of SPEC §5. */
static const struct {
        const char *keys[3];
        int64_t tokens[3];
        const char *prev; /* NULL: last week empty */
        int prev_len;
        const char *holder;
        tt_streak_kind kind;
        int len;
        const char *runner;
        const char *prev_holder;
} decide_cases[] = {
    {{"CN", "US", "FR"},
     {10, 5, 1},
     NULL,
     0,
     "CN",
     TT_STREAK_STARTED,
     1,
     "US",
     NULL},
    {{"CN", "US", "FR"},
     {10, 5, 1},
     "CN",
     4,
     "CN",
     TT_STREAK_EXTENDED,
     5,
     "US",
     NULL},
    {{"CN", "US", "FR"},
     {10, 50, 1},
     "CN",
     4,
     "US",
     TT_STREAK_STARTED,
     1,
     "CN",
     "CN"},
    /* tie at the top: the incumbent keeps it */
    {{"CN", "US", "FR"},
     {10, 10, 1},
     "US",
     2,
     "US",
     TT_STREAK_EXTENDED,
     3,
     "CN",
     NULL},
    /* tie without the incumbent among the tied: smallest key */
    {{"US", "CN", "FR"},
     {10, 10, 11},
     "FR",
     1,
     "FR",
     TT_STREAK_EXTENDED,
     2,
     "CN",
     NULL},
    {{"US", "CN", "DE"},
     {10, 10, 1},
     "DE",
     1,
     "CN",
     TT_STREAK_STARTED,
     1,
     "US",
     "DE"},
    /* all zero (listed keys without events) */
    {{"US", "CN", NULL},
     {0, 0, 0},
     NULL,
     0,
     "CN",
     TT_STREAK_STARTED,
     1,
     "US",
     NULL},
};

START_TEST(test_streak_decide) {
        tt_streak_cand cand[3];
        size_t n = 0;
        for (int i = 0; i < 3 && decide_cases[_i].keys[i]; i++, n++) {
                cand[i].key = (tt_str){decide_cases[_i].keys[i],
                                       strlen(decide_cases[_i].keys[i])};
                cand[i].tokens = decide_cases[_i].tokens[i];
        }
        tt_streak_result prev = {0}, out;
        if (decide_cases[_i].prev) {
                prev.valid = true;
                prev.holder = (tt_str){decide_cases[_i].prev,
                                       strlen(decide_cases[_i].prev)};
                prev.length_weeks = decide_cases[_i].prev_len;
        }
        tt_streak_decide(cand, n, decide_cases[_i].prev ? &prev : NULL, &out);
        ck_assert_int_eq((int)out.holder.len, 2);
        ck_assert_int_eq(memcmp(out.holder.ptr, decide_cases[_i].holder, 2), 0);
        ck_assert_int_eq(out.kind, decide_cases[_i].kind);
        ck_assert_int_eq(out.length_weeks, decide_cases[_i].len);
        ck_assert_int_eq(memcmp(out.runner_up.ptr, decide_cases[_i].runner, 2),
                         0);
        if (decide_cases[_i].prev_holder)
                ck_assert_int_eq(memcmp(out.previous_holder.ptr,
                                        decide_cases[_i].prev_holder, 2),
                                 0);
        else
                ck_assert_ptr_null(out.previous_holder.ptr);
}
END_TEST

START_TEST(test_streak_gap_and_listed) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, false, 12);
        /* W13 US leads; W14 empty; W15 US again → STARTED, no previous. */
        offer_ok(e, 0, mkev("openai/x", NULL, W13 + HOUR, 10, 0));
        offer_ok(e, 0, mkev("openai/x", NULL, W15 + HOUR, 10, 0));
        offer_ok(e, 0, mkev("mistralai/m", NULL, W15 + 2 * HOUR, 3, 0));
        tt_engine_close_all(e, 0);
        const rec_streak *s = latest_streak(&rc, "leader:origin", "2026-W15");
        ck_assert_int_eq(s->s.kind, TT_STREAK_STARTED);
        ck_assert_int_eq(s->s.length_weeks, 1);
        ck_assert_str_eq(s->prev, "-");
        ck_assert_str_eq(s->runner, "FR");
        /* leader:origin:CN,US: CN is listed with 0 tokens. */
        s = latest_streak(&rc, "leader:origin:CN,US", "2026-W15");
        ck_assert_str_eq(s->holder, "US");
        ck_assert_str_eq(s->runner, "CN");
        ck_assert(s->s.has_runner_up_tokens && s->s.runner_up_tokens == 0);
        ck_assert(!s->s.has_margin);
        ck_assert_ptr_null(latest_streak(&rc, "leader:origin", "2026-W14"));
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

/* Deterministic pseudo-random events with heavy disorder, so that many are
 * late; the latest row of every key must equal a recount. */
static uint64_t rng = 12345;
static uint64_t next_rand(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static const char *models[] = {"deepseek/a",  "qwen/b",      "openai/c",
                               "anthropic/d", "mistralai/e", "unknown/f"};

typedef struct truth {
        int64_t tokens[8][3 + 6]; /* week x (TOTAL, CN, US, FR, ZZ / models) */
} truth;

static void run_random(uint32_t shards, recorder *rc, int64_t (*sum)[16],
                       int64_t *reqs) {
        rng = 12345;
        tt_engine *e = mk(rc, shards, false, 12);
        for (int i = 0; i < 20000; i++) {
                int m = (int)(next_rand() % 6);
                /* Time advances ~ 6 weeks over the run, jitter up to 2 days
                 * backwards, so that events regularly land in closed weeks. */
                int64_t t = W13 + (int64_t)i * (6 * WEEK / 20000) -
                            (int64_t)(next_rand() % (2 * 86400000));
                int64_t p = (int64_t)(next_rand() % 1000);
                tt_event ev = mkev(models[m], NULL, t, p, 7);
                offer_ok(e, (int)(next_rand() % 4), ev);
                int w = (int)((t - (W13 - WEEK)) / WEEK);
                sum[w][m] += p + 7;
                reqs[w]++;
                if (i % 1000 == 999)
                        tt_engine_flush(e, 0);
        }
        tt_engine_close_all(e, 0);
        tt_engine_destroy(e);
}

START_TEST(test_recount_invariant) {
        recorder rc = {0};
        int64_t sum[16][16] = {{0}}, reqs[16] = {0};
        run_random(3, &rc, sum, reqs);
        size_t revised = 0;
        for (size_t i = 0; i < rc.nrows; i++)
                revised += rc.rows[i].r.status == TT_STATUS_REVISED;
        ck_assert_uint_gt(revised, 100); /* the test does exercise lateness */
        for (int w = 0; w < 16; w++) {
                if (!reqs[w])
                        continue;
                char name[16];
                tt_week_name(tt_week_of(W13 - WEEK + w * WEEK), name,
                             sizeof(name));
                int64_t total = 0;
                for (int m = 0; m < 6; m++) {
                        total += sum[w][m];
                        if (!sum[w][m])
                                continue;
                        const rec_row *r =
                            latest(&rc, name, TT_DIM_MODEL, models[m]);
                        ck_assert_msg(r != NULL, "%s %s", name, models[m]);
                        ck_assert_int_eq(r->r.tokens, sum[w][m]);
                        if (w > 0 && sum[w - 1][m]) {
                                ck_assert(r->r.has_prev);
                                ck_assert_int_eq(r->r.prev_tokens,
                                                 sum[w - 1][m]);
                        } else {
                                ck_assert(!r->r.has_prev);
                        }
                }
                const rec_row *t = latest(&rc, name, TT_DIM_TOTAL, "*");
                ck_assert_int_eq(t->r.tokens, total);
                ck_assert_int_eq(t->r.requests, reqs[w]);
                const rec_row *cn = latest(&rc, name, TT_DIM_ORIGIN, "CN");
                ck_assert_int_eq(cn->r.tokens, sum[w][0] + sum[w][1]);
                ck_assert(cn->r.share_pct == (double)(sum[w][0] + sum[w][1]) *
                                                 100.0 / (double)total);
        }
        /* No (week, dimension, key, revision) twice among FINAL/REVISED. */
        for (size_t i = 0; i < rc.nrows; i++)
                for (size_t j = i + 1; j < rc.nrows; j++) {
                        const tt_rollup *a = &rc.rows[i].r, *b = &rc.rows[j].r;
                        ck_assert(!(a->revision == b->revision &&
                                    a->dimension == b->dimension &&
                                    !strcmp(a->week, b->week) &&
                                    !strcmp(rc.rows[i].key, rc.rows[j].key)));
                }
        recorder_free(&rc);
}
END_TEST

START_TEST(test_shards_same_rows) {
        recorder a = {0}, b = {0};
        int64_t sum[16][16] = {{0}}, reqs[16] = {0};
        run_random(1, &a, sum, reqs);
        memset(sum, 0, sizeof(sum));
        memset(reqs, 0, sizeof(reqs));
        run_random(4, &b, sum, reqs);
        ck_assert_uint_eq(a.nrows, b.nrows);
        ck_assert_uint_eq(a.nstreaks, b.nstreaks);
        for (size_t i = 0; i < a.nrows; i++) {
                ck_assert_str_eq(a.rows[i].key, b.rows[i].key);
                ck_assert_int_eq(
                    memcmp(&a.rows[i].r, &b.rows[i].r, sizeof(tt_rollup)), 0);
        }
        recorder_free(&a);
        recorder_free(&b);
}
END_TEST

/* --max-keys bounds the distinct models of one week in one shard: the
 * model past it is a dead letter key_limit, known models still count, and
 * the next week starts afresh. Unbounded by default (the other tests). */
START_TEST(test_max_keys) {
        recorder rc = {0};
        tt_engine *e = mk_keys(&rc, 1, false, 12, 2);
        offer_ok(e, 0, mkev("deepseek/a", NULL, W14 + HOUR, 100, 0));
        offer_ok(e, 0, mkev("openai/x", NULL, W14 + HOUR, 100, 0));
        ck_assert_int_eq(offer(e, 0, mkev("qwen/q", NULL, W14 + HOUR, 1, 0)),
                         TT_REASON_KEY_LIMIT);
        offer_ok(e, 0, mkev("deepseek/a", NULL, W14 + HOUR, 100, 0));
        offer_ok(e, 0, mkev("qwen/q", NULL, W15 + HOUR, 7, 0));
        tt_engine_stats st;
        tt_engine_get_stats(e, &st);
        ck_assert_uint_eq(st.max_keys, 2);
        ck_assert_uint_eq(st.key_limit_events, 1);
        ck_assert_uint_eq(st.dead[TT_REASON_KEY_LIMIT], 1);
        ck_assert_uint_eq(st.nweek_models, 1); /* W14 closed */
        ck_assert_uint_eq(st.week_models[0].models, 1);
        ck_assert_int_eq(tt_engine_close_all(e, 0), 0);
        ck_assert_int_eq(latest(&rc, "2026-W14", TT_DIM_TOTAL, "*")->r.tokens,
                         300);
        ck_assert_ptr_null(latest(&rc, "2026-W14", TT_DIM_MODEL, "qwen/q"));
        ck_assert_int_eq(
            latest(&rc, "2026-W15", TT_DIM_MODEL, "qwen/q")->r.rank, 1);
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

/* Weeks of 5000 models each, new slugs every week, 2 weeks retained: the
 * engine's key table is rebuilt as weeks are dropped, so that memory
 * follows the retained cells, and rows, streak holders and revisions of
 * the weeks still held keep their right slugs through it. */
START_TEST(test_key_table_compaction) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, false, 2);
        char m[32];
        uint64_t most = 0;
        for (int w = 0; w < 8; w++) {
                for (int i = 0; i < 5000; i++) {
                        snprintf(m, sizeof(m), "deepseek/w%d-m%d", w, i);
                        offer_ok(
                            e, 0,
                            mkev(m, NULL, W13 + w * WEEK + i * MIN, 1 + i, 0));
                }
                tt_engine_stats st;
                tt_engine_get_stats(e, &st);
                /* Held: 2 closed weeks and the open one from w = 2 on;
                 * the key table's growth steps repeat every 3 weeks. */
                if (w <= 4 && st.state_bytes > most)
                        most = st.state_bytes;
                if (w > 4) /* 8 weeks of slugs seen, 3 held */
                        ck_assert_uint_le(st.state_bytes, most);
        }
        /* Late events for the newest closed week (W13 + 6). */
        offer_ok(e, 0,
                 mkev("deepseek/w6-m0", NULL, W13 + 6 * WEEK + 5, 9999, 0));
        offer_ok(e, 0, mkev("deepseek/w6-new", NULL, W13 + 6 * WEEK + 6, 1, 0));
        ck_assert_int_eq(tt_engine_close_all(e, 0), 0);
        char wk[16];
        tt_week_name(tt_week_of(W13 + 6 * WEEK), wk, sizeof(wk));
        const rec_row *r = latest(&rc, wk, TT_DIM_MODEL, "deepseek/w6-m0");
        ck_assert_int_eq(r->r.status, TT_STATUS_REVISED);
        ck_assert_int_eq(r->r.tokens, 1 + 9999);
        ck_assert_int_eq(r->r.rank, 1);
        r = latest(&rc, wk, TT_DIM_MODEL, "deepseek/w6-new");
        ck_assert_int_eq(r->r.status, TT_STATUS_REVISED);
        ck_assert_int_eq(r->r.revision, 0);
        r = latest(&rc, wk, TT_DIM_MODEL, "deepseek/w6-m4999");
        ck_assert_int_eq(r->r.rank, 2);
        const rec_streak *s = latest_streak(&rc, "leader:model", wk);
        ck_assert_str_eq(s->holder, "deepseek/w6-m0");
        ck_assert_str_eq(s->runner, "deepseek/w6-m4999");
        ck_assert_str_eq(s->prev, "deepseek/w5-m4999");
        tt_week_name(tt_week_of(W13 + 7 * WEEK), wk, sizeof(wk));
        s = latest_streak(&rc, "leader:model", wk);
        ck_assert_str_eq(s->holder, "deepseek/w7-m4999");
        ck_assert_str_eq(s->prev, "deepseek/w6-m0");
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

int main(void) {
        Suite *s = suite_create("engine");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_rollup_fields);
        tcase_add_test(tc, test_growth_zero_prev);
        tcase_add_test(tc, test_close_on_watermark);
        tcase_add_test(tc, test_late_revise);
        tcase_add_test(tc, test_late_dlq_and_too_late);
        tcase_add_test(tc, test_future_time);
        tcase_add_test(tc, test_idle_partition);
        tcase_add_loop_test(tc, test_streak_decide, 0,
                            sizeof(decide_cases) / sizeof(decide_cases[0]));
        tcase_add_test(tc, test_streak_gap_and_listed);
        tcase_add_test(tc, test_recount_invariant);
        tcase_add_test(tc, test_shards_same_rows);
        tcase_add_test(tc, test_max_keys);
        tcase_add_test(tc, test_key_table_compaction);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
