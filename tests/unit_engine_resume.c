/* An at-least-once engine resumed after a restart (engine_resume.c): the
 * week before the oldest recounted one is quiet, weeks the earlier run
 * closed come out as REVISED above its revisions, and streaks continue
 * from the lengths it handed over. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "check_main.h"
#include "recorder.h"
#include "tokentally/engine.h"
#include "tokentally/week.h"

#define W13 INT64_C(1774224000000)
#define WEEK TT_WEEK_MS
#define HOUR INT64_C(3600000)

static tt_origin_map *map;

static tt_engine *mk(recorder *rc) {
        tt_engine_conf c;
        tt_engine_conf_defaults(&c);
        c.origins = map;
        c.max_future_ms = -1;
        c.idle_timeout_ms = 0;
        c.nshards = 2;
        char err[256];
        tt_engine *e = tt_engine_new(&c, &recorder_sink, rc, err, sizeof(err));
        ck_assert_msg(e != NULL, "%s", err);
        return e;
}

static void offer_ok(tt_engine *e, tt_event ev) {
        char d[256];
        tt_reason r = tt_engine_offer(e, 0, &ev, 0, d, sizeof(d));
        ck_assert_msg(r == TT_REASON_NONE, "rejected: %s (%s)",
                      tt_reason_str(r), d);
}

static int32_t wk(int64_t t) {
        return tt_week_of(t);
}

START_TEST(test_resume) {
        map = default_origins();
        recorder rc = {0};
        tt_engine *e = mk(&rc);
        /* The earlier run: closed through W14, highest revision 2, and CN
         * had led leader:origin for 7 weeks by W12. */
        tt_engine_resume(e, wk(W13 - WEEK), wk(W13 + WEEK), 3);
        ck_assert_int_eq(
            tt_engine_resume_streak(e, "leader:origin", "CN", 2, 7), 0);
        ck_assert_int_eq(tt_engine_resume_streak(e, "no:such", "x", 1, 2), 0);
        /* Weeks arrive in order, so each closes as the next begins; all
         * are open at first. While they are counted again, PROVISIONAL
         * rows come only for a week the earlier run had not closed. */
        offer_ok(e, mkev("deepseek/v3", NULL, W13 - WEEK + HOUR, 99, 0));
        offer_ok(e, mkev("openai/gpt", NULL, W13 - WEEK + HOUR, 50, 0));
        offer_ok(e, mkev("deepseek/v3", NULL, W13 + HOUR, 100, 0));
        offer_ok(e, mkev("openai/gpt", NULL, W13 + 2 * HOUR, 50, 0));
        ck_assert_int_eq(tt_engine_emit_provisional(e, 0), 0);
        ck_assert_uint_eq(rc.nrows, 0); /* W12 quiet and closed, W13 */
        for (int i = 1; i <= 2; i++) {
                int64_t t = W13 + i * WEEK + HOUR;
                offer_ok(e, mkev("deepseek/v3", NULL, t, 100 + i, 0));
                offer_ok(e, mkev("openai/gpt", NULL, t, 50, 0));
        }
        size_t before = rc.nrows;
        ck_assert_int_eq(tt_engine_emit_provisional(e, 0), 0);
        ck_assert_uint_eq(rc.nrows, before + 5); /* W15: TOTAL, 2+2 */
        for (size_t i = before; i < rc.nrows; i++)
                ck_assert_str_eq(rc.rows[i].r.week, "2026-W15");
        ck_assert_int_eq(tt_engine_close_all(e, 0), 0);
        /* W12 (quiet): nothing, neither rows nor streaks. */
        ck_assert_ptr_null(latest(&rc, "2026-W12", TT_DIM_TOTAL, "*"));
        ck_assert_ptr_null(latest_streak(&rc, "leader:origin", "2026-W12"));
        /* W13, W14: closed by the earlier run, REVISED at 3; W13's
         * prev_tokens from the quiet W12. */
        const rec_row *r = latest(&rc, "2026-W13", TT_DIM_ORIGIN, "CN");
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->r.status, TT_STATUS_REVISED);
        ck_assert_int_eq(r->r.revision, 3);
        ck_assert(r->r.has_prev);
        ck_assert_int_eq(r->r.prev_tokens, 99);
        r = latest(&rc, "2026-W14", TT_DIM_TOTAL, "*");
        ck_assert_int_eq(r->r.status, TT_STATUS_REVISED);
        ck_assert_int_eq(r->r.revision, 3);
        /* W15: new, FINAL 0. */
        r = latest(&rc, "2026-W15", TT_DIM_TOTAL, "*");
        ck_assert_int_eq(r->r.status, TT_STATUS_FINAL);
        ck_assert_int_eq(r->r.revision, 0);
        /* Streaks count on from the handed-over length. */
        const rec_streak *s = latest_streak(&rc, "leader:origin", "2026-W13");
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(s->s.kind, TT_STREAK_EXTENDED);
        ck_assert_int_eq(s->s.length_weeks, 8);
        s = latest_streak(&rc, "leader:origin", "2026-W15");
        ck_assert_int_eq(s->s.length_weeks, 10);
        /* A rule with no handed-over length starts at the quiet week. */
        s = latest_streak(&rc, "leader:model", "2026-W13");
        ck_assert_int_eq(s->s.length_weeks, 2);
        /* A late event of W13 revises it above the re-emission. */
        offer_ok(e, mkev("deepseek/v3", NULL, W13 + 2 * HOUR, 5, 0));
        ck_assert_int_eq(tt_engine_close_all(e, 0), 0);
        r = latest(&rc, "2026-W13", TT_DIM_ORIGIN, "CN");
        ck_assert_int_eq(r->r.revision, 4);
        ck_assert_int_eq(r->r.tokens, 105);
        tt_engine_stats st;
        tt_engine_get_stats(e, &st);
        ck_assert_int_eq(st.max_revision, 4);
        tt_engine_destroy(e);
        recorder_free(&rc);
        tt_origin_map_destroy(map);
}
END_TEST

int main(void) {
        Suite *s = suite_create("engine_resume");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_resume);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
