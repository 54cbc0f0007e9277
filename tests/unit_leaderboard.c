/* The leaderboard of `demo` and `tail --format table`: the latest record of
 * every key wins (also past the index's growth), and the table shows the
 * newest week's exact figures, growth, share, status and streaks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/leaderboard.h"

static tt_rollup row(const char *week, tt_dim dim, const char *key,
                     int64_t tokens, int32_t rank) {
        tt_rollup r = {
            .dimension = dim,
            .key = {key, strlen(key)},
            .tokens = tokens,
            .share_pct = 10,
            .rank = rank,
            .status = TT_STATUS_FINAL,
        };
        snprintf(r.week, sizeof(r.week), "%s", week);
        return r;
}

START_TEST(latest_wins) {
        tt_board b;
        memset(&b, 0, sizeof(b));
        char key[32];
        for (int i = 0; i < 3000; i++) {
                snprintf(key, sizeof(key), "m/%d", i);
                tt_rollup r = row(i % 2 ? "2026-W13" : "2026-W14",
                                  TT_DIM_ORIGIN, key, i, i + 1);
                ck_assert_int_eq(tt_board_rollup(&b, &r), 0);
        }
        ck_assert_uint_eq(b.nrows, 3000);
        /* Same week and key, other dimension: another row. */
        tt_rollup o = row("2026-W14", TT_DIM_TOTAL, "m/0", 5, 1);
        ck_assert_int_eq(tt_board_rollup(&b, &o), 0);
        ck_assert_uint_eq(b.nrows, 3001);
        for (int i = 0; i < 3000; i += 7) {
                snprintf(key, sizeof(key), "m/%d", i);
                tt_rollup r = row(i % 2 ? "2026-W13" : "2026-W14",
                                  TT_DIM_ORIGIN, key, 1000000 + i, i + 1);
                r.status = TT_STATUS_REVISED;
                r.revision = 1;
                ck_assert_int_eq(tt_board_rollup(&b, &r), 0);
        }
        ck_assert_uint_eq(b.nrows, 3001);
        ck_assert_uint_eq(b.rollups, 3001 + 429);
        for (size_t i = 0; i < b.nrows; i++) {
                const tt_board_row *x = &b.rows[i];
                if (x->dim != TT_DIM_ORIGIN)
                        continue;
                int k = atoi(x->key + 2);
                ck_assert_int_eq(x->tokens, k % 7 ? k : 1000000 + k);
                ck_assert_int_eq(x->revision, k % 7 ? 0 : 1);
        }
        tt_board_free(&b);
}
END_TEST

/* Models: only those whose latest record ranks within the top are kept (a
 * week of a million models is not held by tail); a later record past the
 * top removes a model. 20,000 records over 50 models in two weeks, ranks
 * 1 to 9, checked against the latest rank of each. */
START_TEST(top_models_only) {
        tt_board b;
        memset(&b, 0, sizeof(b));
        int latest[2][50];
        for (int w = 0; w < 2; w++)
                for (int k = 0; k < 50; k++)
                        latest[w][k] = 99; /* no record: not kept */
        char key[32];
        /* Failures are counted, not asserted one by one: every Check
         * assertion is a write to the test's parent. */
        int failed = 0;
        for (int i = 0; i < 20000; i++) {
                int w = (i / 3) % 2, k = (i * 31) % 50, rank = (i * 7) % 9 + 1;
                snprintf(key, sizeof(key), "m/%d", k);
                tt_rollup r = row(w ? "2026-W13" : "2026-W14", TT_DIM_MODEL,
                                  key, 100 + i, rank);
                failed += tt_board_rollup(&b, &r) != 0;
                latest[w][k] = rank;
        }
        ck_assert_int_eq(failed, 0);
        size_t want = 0;
        for (int w = 0; w < 2; w++)
                for (int k = 0; k < 50; k++)
                        want += latest[w][k] <= TT_BOARD_TOP_MODELS;
        ck_assert_uint_eq(b.nrows, want);
        for (size_t i = 0; i < b.nrows; i++) {
                const tt_board_row *x = &b.rows[i];
                int w = !strcmp(x->week, "2026-W13");
                ck_assert_int_eq(x->rank, latest[w][atoi(x->key + 2)]);
        }
        /* 200,000 models in a week: five rows. */
        tt_board_free(&b);
        memset(&b, 0, sizeof(b));
        for (int i = 0; i < 200000; i++) {
                snprintf(key, sizeof(key), "m/%d", i);
                tt_rollup r =
                    row("2026-W14", TT_DIM_MODEL, key, 2000000 - i, i + 1);
                failed += tt_board_rollup(&b, &r) != 0;
        }
        ck_assert_int_eq(failed, 0);
        ck_assert_uint_eq(b.nrows, TT_BOARD_TOP_MODELS);
        tt_board_free(&b);
}
END_TEST

START_TEST(table) {
        tt_board b;
        memset(&b, 0, sizeof(b));
        tt_rollup r = row("2026-W14", TT_DIM_ORIGIN, "CN", 1296000000, 1);
        r.has_prev = r.has_growth = true;
        r.prev_tokens = 985701247;
        r.wow_growth_pct = 31.480000045084655;
        r.share_pct = 48;
        tt_board_rollup(&b, &r);
        tt_rollup t = row("2026-W14", TT_DIM_TOTAL, "*", 2700000000, 1);
        t.share_pct = 100;
        t.status = TT_STATUS_PROVISIONAL;
        tt_board_rollup(&b, &t);
        tt_streak_change s = {
            .rule = {"leader:origin", 13},
            .week = "2026-W14",
            .kind = TT_STREAK_EXTENDED,
            .holder = {"CN", 2},
            .length_weeks = 5,
            .runner_up = {"US", 2},
            .has_margin = true,
            .margin_pct = 327.7227722772277,
        };
        tt_board_streak(&b, &s);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        tt_board_print(f, &b, 6, TT_BOARD_DETAIL);
        fclose(f);
        static const char *const want[] = {
            "2026-W14   CN 1.296 G +31.48% 48.0%",
            "2.700 G (open week, provisional)",
            "     1 CN         1,296,000,000       985,701,247   +31.48%   "
            "48.00%  FINAL",
            "  leader:origin          CN has led for 5 consecutive weeks, "
            "327.72% ahead of US",
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                ck_assert_msg(strstr(text, want[i]), "no '%s' in\n%s", want[i],
                              text);
        free(text);
        tt_board_free(&b);
}
END_TEST

static Suite *leaderboard_suite(void) {
        Suite *s = suite_create("leaderboard");
        TCase *tc = tcase_create("board");
        tcase_add_test(tc, latest_wins);
        tcase_add_test(tc, table);
        tcase_add_test(tc, top_models_only);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(leaderboard_suite());
}
