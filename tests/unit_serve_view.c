/* The materialized view of `serve` and its JSON API: exact contents and
 * exact bodies after given records (the expected strings are written by
 * hand from the records fed, not produced by the code), a REVISED record
 * replacing a PROVISIONAL and a FINAL one, streaks per (rule, week), and
 * the 400/404 answers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/serve_api.h"
#include "tokentally/serve_view.h"

static tt_rollup row(const char *week, tt_dim dim, const char *key,
                     int64_t tokens, double share, int32_t rank, tt_status st,
                     int32_t rev) {
        tt_rollup r = {
            .week_start_ms =
                !strcmp(week, "2026-W13") ? 1774224000000 : 1774828800000,
            .dimension = dim,
            .key = {key, strlen(key)},
            .tokens = tokens,
            .prompt_tokens = tokens - tokens / 10,
            .completion_tokens = tokens / 10,
            .requests = tokens / 100,
            .share_pct = share,
            .rank = rank,
            .status = st,
            .revision = rev,
        };
        snprintf(r.week, sizeof(r.week), "%s", week);
        return r;
}

static void feed(tt_sview *v, tt_rollup r) {
        ck_assert_int_eq(tt_sview_rollup(v, &r), 0);
}

static tt_rollup with_prev(tt_rollup r, int64_t prev, double growth) {
        r.has_prev = true;
        r.prev_tokens = prev;
        r.has_growth = true;
        r.wow_growth_pct = growth;
        return r;
}

static tt_streak_change streak(const char *rule, const char *week,
                               tt_streak_kind kind, const char *holder,
                               int32_t len, const char *runner, int64_t htok,
                               int64_t rtok, double margin) {
        tt_streak_change s = {
            .rule = {rule, strlen(rule)},
            .kind = kind,
            .holder = {holder, strlen(holder)},
            .length_weeks = len,
            .holder_tokens = htok,
            .runner_up = {runner, strlen(runner)},
            .has_runner_up_tokens = true,
            .runner_up_tokens = rtok,
            .has_margin = true,
            .margin_pct = margin,
        };
        snprintf(s.week, sizeof(s.week), "%s", week);
        return s;
}

/* Two weeks: W13 FINAL; W14 first PROVISIONAL, then FINAL, then a late
 * CN event REVISED it (revision 1). */
static tt_sview *scenario(void) {
        tt_sview *v = tt_sview_new();
        ck_assert_ptr_nonnull(v);
        feed(v, row("2026-W13", TT_DIM_TOTAL, "*", 1000, 100, 1,
                    TT_STATUS_FINAL, 0));
        feed(v, row("2026-W13", TT_DIM_ORIGIN, "CN", 600, 60, 1,
                    TT_STATUS_FINAL, 0));
        feed(v, row("2026-W13", TT_DIM_ORIGIN, "US", 400, 40, 2,
                    TT_STATUS_FINAL, 0));
        feed(v, row("2026-W14", TT_DIM_TOTAL, "*", 500, 100, 1,
                    TT_STATUS_PROVISIONAL, 0));
        feed(v, row("2026-W14", TT_DIM_ORIGIN, "CN", 300, 60, 1,
                    TT_STATUS_PROVISIONAL, 0));
        /* The week closes. */
        feed(v, with_prev(row("2026-W14", TT_DIM_TOTAL, "*", 1100, 100, 1,
                              TT_STATUS_FINAL, 0),
                          1000, 10));
        feed(v, with_prev(row("2026-W14", TT_DIM_ORIGIN, "CN", 700, 63.5, 1,
                              TT_STATUS_FINAL, 0),
                          600, 16.5));
        feed(v, with_prev(row("2026-W14", TT_DIM_ORIGIN, "US", 400, 36.5, 2,
                              TT_STATUS_FINAL, 0),
                          400, 0));
        tt_rollup m = row("2026-W14", TT_DIM_MODEL, "deepseek/v3", 700, 63.5, 1,
                          TT_STATUS_FINAL, 0);
        m.origin = (tt_str){"CN", 2};
        feed(v, m);
        /* A late CN event of 100 tokens: W14 REVISED. */
        feed(v, with_prev(row("2026-W14", TT_DIM_TOTAL, "*", 1200, 100, 1,
                              TT_STATUS_REVISED, 1),
                          1000, 20));
        feed(v, with_prev(row("2026-W14", TT_DIM_ORIGIN, "CN", 800, 66.75, 1,
                              TT_STATUS_REVISED, 1),
                          600, 33.25));
        tt_streak_change s =
            streak("leader:origin", "2026-W13", TT_STREAK_STARTED, "CN", 1,
                   "US", 600, 400, 50);
        ck_assert_int_eq(tt_sview_streak(v, &s), 0);
        s = streak("leader:origin", "2026-W14", TT_STREAK_EXTENDED, "CN", 2,
                   "US", 700, 400, 75);
        ck_assert_int_eq(tt_sview_streak(v, &s), 0);
        /* Revised after the late event; then an older week re-emitted
         * after it (a revision's order): the current one stays W14. */
        s = streak("leader:origin", "2026-W14", TT_STREAK_EXTENDED, "CN", 2,
                   "US", 800, 400, 100);
        ck_assert_int_eq(tt_sview_streak(v, &s), 0);
        s = streak("leader:origin", "2026-W13", TT_STREAK_STARTED, "CN", 1,
                   "US", 600, 400, 50);
        ck_assert_int_eq(tt_sview_streak(v, &s), 0);
        return v;
}

START_TEST(latest_record_per_key) {
        tt_sview *v = scenario();
        ck_assert_uint_eq(tt_sview_nweeks(v), 2);
        ck_assert_str_eq(tt_sview_week(v, 0), "2026-W13");
        ck_assert_str_eq(tt_sview_week(v, 1), "2026-W14");
        const tt_sview_row *cn =
            tt_sview_find(v, "2026-W14", TT_DIM_ORIGIN, "CN");
        ck_assert_ptr_nonnull(cn);
        ck_assert_int_eq(cn->tokens, 800);
        ck_assert_int_eq(cn->status, TT_STATUS_REVISED);
        ck_assert_int_eq(cn->revision, 1);
        const tt_sview_row **rows;
        ck_assert_uint_eq(tt_sview_rows(v, "2026-W14", TT_DIM_ORIGIN, &rows),
                          2);
        ck_assert_str_eq(rows[0]->key, "CN");
        ck_assert_str_eq(rows[1]->key, "US");
        free(rows);
        uint64_t nr, ns;
        tt_sview_counts(v, &nr, &ns);
        ck_assert_uint_eq(nr, 11);
        ck_assert_uint_eq(ns, 4);
        ck_assert_uint_eq(tt_sview_version(v), 15);
        /* 2 streak rows: (rule, week) pairs. */
        ck_assert_uint_eq(tt_sview_nstreaks(v), 2);
        ck_assert_int_eq(tt_sview_streak_at(v, 1)->holder_tokens, 800);
        tt_sview_destroy(v);
}
END_TEST

static void expect(const tt_sview *v, const char *path, const char *query,
                   unsigned status, const char *body) {
        tt_buf b;
        tt_buf_init(&b, 1 << 20);
        unsigned st = tt_serve_api(v, path, query, &b);
        char *got = strndup((const char *)b.data, b.len);
        ck_assert_msg(st == status, "%s?%s: status %u, body %s", path,
                      query ? query : "", st, got);
        ck_assert_str_eq(got, body);
        free(got);
        tt_buf_free(&b);
}

START_TEST(api_bodies) {
        tt_sview *v = scenario();
        expect(v, "/api/v1/weeks", NULL, 200,
               "{\"api\":\"v1\",\"newest\":\"2026-W14\",\"weeks\":["
               "{\"week\":\"2026-W13\",\"week_start\":1774224000000,"
               "\"status\":\"FINAL\",\"revision\":0,\"tokens\":1000,"
               "\"requests\":10,\"prev_tokens\":null,"
               "\"wow_growth_pct\":null},"
               "{\"week\":\"2026-W14\",\"week_start\":1774828800000,"
               "\"status\":\"REVISED\",\"revision\":1,\"tokens\":1200,"
               "\"requests\":12,\"prev_tokens\":1000,"
               "\"wow_growth_pct\":20.0}]}\n");
        expect(v, "/api/v1/weeks/2026-W14", "dimension=origin&top=1", 200,
               "{\"api\":\"v1\",\"week\":\"2026-W14\","
               "\"week_start\":1774828800000,\"status\":\"REVISED\","
               "\"revision\":1,\"tokens\":1200,\"requests\":12,"
               "\"prev_tokens\":1000,\"wow_growth_pct\":20.0,"
               "\"dimension\":\"origin\",\"top\":1,\"count\":2,\"rows\":["
               "{\"rank\":1,\"key\":\"CN\",\"origin\":null,\"tokens\":800,"
               "\"prompt_tokens\":720,\"completion_tokens\":80,"
               "\"requests\":8,\"prev_tokens\":600,"
               "\"wow_growth_pct\":33.25,\"share_pct\":66.75,"
               "\"status\":\"REVISED\",\"revision\":1}]}\n");
        expect(v, "/api/v1/weeks/2026-W14", "dimension=model", 200,
               "{\"api\":\"v1\",\"week\":\"2026-W14\","
               "\"week_start\":1774828800000,\"status\":\"REVISED\","
               "\"revision\":1,\"tokens\":1200,\"requests\":12,"
               "\"prev_tokens\":1000,\"wow_growth_pct\":20.0,"
               "\"dimension\":\"model\",\"top\":10,\"count\":1,\"rows\":["
               "{\"rank\":1,\"key\":\"deepseek/v3\",\"origin\":\"CN\","
               "\"tokens\":700,\"prompt_tokens\":630,"
               "\"completion_tokens\":70,\"requests\":7,"
               "\"prev_tokens\":null,\"wow_growth_pct\":null,"
               "\"share_pct\":63.5,\"status\":\"FINAL\",\"revision\":0}]}\n");
        expect(v, "/api/v1/series", "dimension=origin&key=US&from=2026-W14",
               200,
               "{\"api\":\"v1\",\"dimension\":\"origin\",\"key\":\"US\","
               "\"from\":\"2026-W14\",\"to\":null,\"points\":["
               "{\"week\":\"2026-W14\",\"row\":{\"rank\":2,\"key\":\"US\","
               "\"origin\":null,\"tokens\":400,\"prompt_tokens\":360,"
               "\"completion_tokens\":40,\"requests\":4,"
               "\"prev_tokens\":400,\"wow_growth_pct\":0.0,"
               "\"share_pct\":36.5,\"status\":\"FINAL\",\"revision\":0}}]}"
               "\n");
        expect(v, "/api/v1/series", "dimension=model&key=deepseek%2Fv3", 200,
               "{\"api\":\"v1\",\"dimension\":\"model\","
               "\"key\":\"deepseek/v3\",\"from\":null,\"to\":null,"
               "\"points\":[{\"week\":\"2026-W13\",\"row\":null},"
               "{\"week\":\"2026-W14\",\"row\":{\"rank\":1,"
               "\"key\":\"deepseek/v3\",\"origin\":\"CN\",\"tokens\":700,"
               "\"prompt_tokens\":630,\"completion_tokens\":70,"
               "\"requests\":7,\"prev_tokens\":null,"
               "\"wow_growth_pct\":null,\"share_pct\":63.5,"
               "\"status\":\"FINAL\",\"revision\":0}}]}\n");
        expect(v, "/api/v1/streaks", "", 200,
               "{\"api\":\"v1\",\"week\":null,\"streaks\":["
               "{\"rule\":\"leader:origin\",\"week\":\"2026-W14\","
               "\"kind\":\"EXTENDED\",\"holder\":\"CN\",\"length_weeks\":2,"
               "\"previous_holder\":null,\"holder_tokens\":800,"
               "\"runner_up\":\"US\",\"runner_up_tokens\":400,"
               "\"margin_pct\":100.0}]}\n");
        expect(v, "/api/v1/streaks", "week=2026-W13", 200,
               "{\"api\":\"v1\",\"week\":\"2026-W13\",\"streaks\":["
               "{\"rule\":\"leader:origin\",\"week\":\"2026-W13\","
               "\"kind\":\"STARTED\",\"holder\":\"CN\",\"length_weeks\":1,"
               "\"previous_holder\":null,\"holder_tokens\":600,"
               "\"runner_up\":\"US\",\"runner_up_tokens\":400,"
               "\"margin_pct\":50.0}]}\n");
        tt_sview_destroy(v);
}
END_TEST

START_TEST(api_errors) {
        tt_sview *v = scenario();
        expect(v, "/api/v1/weeks/2026-W20", NULL, 404,
               "{\"error\":{\"status\":404,\"code\":\"unknown_week\","
               "\"message\":\"no records of week 2026-W20\"}}\n");
        expect(v, "/api/v1/weeks/2026-W54", NULL, 400,
               "{\"error\":{\"status\":400,\"code\":\"bad_week\","
               "\"message\":\"the path's week: expected an ISO week such "
               "as 2026-W14\"}}\n");
        expect(v, "/api/v1/weeks/2026-W14", "dimension=planet", 400,
               "{\"error\":{\"status\":400,\"code\":\"bad_parameter\","
               "\"message\":\"dimension: expected origin or model, got "
               "'planet'\"}}\n");
        expect(v, "/api/v1/weeks/2026-W14", "top=0", 400,
               "{\"error\":{\"status\":400,\"code\":\"bad_parameter\","
               "\"message\":\"top: expected a whole number from 1 to "
               "100000, got '0'\"}}\n");
        expect(v, "/api/v1/weeks/2026-W14", "top=5&top=6", 400,
               "{\"error\":{\"status\":400,\"code\":\"bad_parameter\","
               "\"message\":\"parameter 'top' given twice\"}}\n");
        expect(v, "/api/v1/weeks", "x=1", 400,
               "{\"error\":{\"status\":400,\"code\":\"unknown_parameter\","
               "\"message\":\"unknown parameter 'x'\"}}\n");
        expect(v, "/api/v1/series", "dimension=origin&key=%zz", 400,
               "{\"error\":{\"status\":400,\"code\":\"bad_parameter\","
               "\"message\":\"parameter 'key': malformed or longer than "
               "255 bytes\"}}\n");
        expect(v, "/api/v1/series", "dimension=origin&key=JP", 404,
               "{\"error\":{\"status\":404,\"code\":\"unknown_key\","
               "\"message\":\"no records of key 'JP'\"}}\n");
        expect(v, "/api/v1/series", "dimension=origin", 400,
               "{\"error\":{\"status\":400,\"code\":\"bad_parameter\","
               "\"message\":\"key: required for dimension origin or "
               "model\"}}\n");
        expect(v, "/api/v1/series",
               "dimension=origin&key=CN&from=2026-W14&to=2026-W13", 400,
               "{\"error\":{\"status\":400,\"code\":\"bad_parameter\","
               "\"message\":\"from is after to\"}}\n");
        expect(v, "/api/v1/streaks", "week=2026-W01", 404,
               "{\"error\":{\"status\":404,\"code\":\"unknown_week\","
               "\"message\":\"no streaks of week 2026-W01\"}}\n");
        expect(v, "/api/v2/weeks", NULL, 404,
               "{\"error\":{\"status\":404,\"code\":\"not_found\","
               "\"message\":\"no such API path: /api/v2/weeks\"}}\n");
        /* A long value is refused, not truncated. */
        char q[2048] = "dimension=model&key=";
        memset(q + strlen(q), 'a', 1000);
        expect(v, "/api/v1/series", q, 400,
               "{\"error\":{\"status\":400,\"code\":\"bad_parameter\","
               "\"message\":\"parameter 'key': malformed or longer than "
               "255 bytes\"}}\n");
        tt_sview_destroy(v);
}
END_TEST

START_TEST(page_json) {
        tt_sview *v = scenario();
        tt_buf b;
        tt_buf_init(&b, 1 << 20);
        ck_assert_int_eq(tt_serve_page_json(v, &b), 0);
        char *got = strndup((const char *)b.data, b.len);
        /* The chart's series: every origin in every week, 0 where absent. */
        ck_assert_ptr_nonnull(
            strstr(got, "\"series\":[{\"key\":\"CN\",\"tokens\":[600,800],"
                        "\"share_pct\":[60.0,66.75]},{\"key\":\"US\","
                        "\"tokens\":[400,400],\"share_pct\":[40.0,36.5]}]"));
        ck_assert_ptr_nonnull(strstr(got, "\"model_count\":1,\"streaks\":[{"
                                          "\"rule\":\"leader:origin\","
                                          "\"week\":\"2026-W14\""));
        free(got);
        tt_buf_free(&b);
        tt_sview_destroy(v);
}
END_TEST

START_TEST(empty_view) {
        tt_sview *v = tt_sview_new();
        expect(v, "/api/v1/weeks", NULL, 200,
               "{\"api\":\"v1\",\"newest\":null,\"weeks\":[]}\n");
        expect(v, "/api/v1/streaks", NULL, 200,
               "{\"api\":\"v1\",\"week\":null,\"streaks\":[]}\n");
        expect(v, "/api/v1/page", NULL, 200,
               "{\"api\":\"v1\",\"newest\":null,\"weeks\":[],\"series\":[],"
               "\"detail\":{}}\n");
        tt_sview_destroy(v);
}
END_TEST

int main(void) {
        Suite *s = suite_create("serve_view");
        TCase *tc = tcase_create("view");
        tcase_add_test(tc, latest_record_per_key);
        tcase_add_test(tc, api_bodies);
        tcase_add_test(tc, api_errors);
        tcase_add_test(tc, page_json);
        tcase_add_test(tc, empty_view);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
