/* At-least-once commit metadata (commit_meta.h): what one run hands to the
 * next through the broker, so parsed as untrusted input. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/commit_meta.h"
#include "tokentally/week.h"

static int32_t wk(const char *name) {
        int32_t w;
        ck_assert_int_eq(tt_week_parse(name, &w), 0);
        return w;
}

static int parse(const char *s, tt_commit_meta *m) {
        return tt_commit_meta_parse(s, strlen(s), m);
}

START_TEST(test_round_trip) {
        tt_commit_meta m = {.oldest = wk("2026-W03"),
                            .end = 123456789012,
                            .closed = wk("2026-W14"),
                            .revision = 7,
                            .nstreaks = 2};
        strcpy(m.streaks[0].rule, "leader:origin:CN,US");
        memcpy(m.streaks[0].holder, "CN", 2);
        m.streaks[0].holder_len = 2;
        m.streaks[0].length = 5;
        strcpy(m.streaks[1].rule, "leader:model");
        /* a slug with the separators the format uses */
        memcpy(m.streaks[1].holder, "a;b~c=d/e", 9);
        m.streaks[1].holder_len = 9;
        m.streaks[1].length = 1;
        char buf[TT_COMMIT_META_MAX + 1];
        size_t n = tt_commit_meta_format(&m, buf, sizeof(buf));
        ck_assert_uint_eq(n, strlen(buf));
        ck_assert_str_eq(buf,
                         "tokentally:v1:oldest=2026-W03;end=123456789012;"
                         "closed=2026-W14;rev=7;"
                         "s=6c65616465723a6f726967696e3a434e2c5553~434e~5;"
                         "s=6c65616465723a6d6f64656c~613b627e633d642f65~1");
        tt_commit_meta b;
        ck_assert_int_eq(tt_commit_meta_parse(buf, n, &b), 0);
        ck_assert_int_eq(b.oldest, m.oldest);
        ck_assert_int_eq(b.end, m.end);
        ck_assert_int_eq(b.closed, m.closed);
        ck_assert_int_eq(b.revision, 7);
        ck_assert_uint_eq(b.nstreaks, 2);
        ck_assert_str_eq(b.streaks[0].rule, "leader:origin:CN,US");
        ck_assert_uint_eq(b.streaks[1].holder_len, 9);
        ck_assert_int_eq(memcmp(b.streaks[1].holder, "a;b~c=d/e", 9), 0);
        ck_assert_int_eq(b.streaks[1].length, 1);
}
END_TEST

/* What an older stage's metadata parses to (end and revision unknown)
 * writes back to text that parses to the same: before, it wrote "end=-1"
 * and "rev=-1", which the parser refuses (found by the offset_meta fuzz
 * harness's round trip). */
START_TEST(test_unknowns_round_trip) {
        tt_commit_meta m, m2;
        ck_assert_int_eq(parse("tokentally:v1:oldest=2026-W14", &m), 0);
        char text[TT_COMMIT_META_MAX + 1];
        size_t n = tt_commit_meta_format(&m, text, sizeof(text));
        ck_assert_str_eq(text, "tokentally:v1:oldest=2026-W14;closed=");
        ck_assert_int_eq(tt_commit_meta_parse(text, n, &m2), 0);
        ck_assert_int_eq(m2.oldest, m.oldest);
        ck_assert_int_eq(m2.end, -1);
        ck_assert_int_eq(m2.revision, -1);
        ck_assert_int_eq(m2.closed, INT32_MIN);
}
END_TEST

START_TEST(test_old_format) {
        /* What stages before this one committed: oldest only. */
        tt_commit_meta m;
        ck_assert_int_eq(parse("tokentally:v1:oldest=2026-W03", &m), 0);
        ck_assert_int_eq(m.oldest, wk("2026-W03"));
        ck_assert_int_eq(m.end, -1);
        ck_assert_int_eq(m.closed, INT32_MIN);
        ck_assert_int_eq(m.revision, -1);
        ck_assert_uint_eq(m.nstreaks, 0);
}
END_TEST

START_TEST(test_rejects) {
        static const char *const bad[] = {
            "",
            "tokentally:v1:oldest=",
            "tokentally:v2:wm=17",
            "tokentally:v1:oldest=2026-W99",
            "tokentally:v1:oldest=2026-W03;end=-1",
            "tokentally:v1:oldest=2026-W03;end=12x",
            "tokentally:v1:oldest=2026-W03;end=9999999999999999999",
            "tokentally:v1:oldest=2026-W03;end=",
            "tokentally:v1:oldest=2026-W03;rev=2147483647",
            "tokentally:v1:oldest=2026-W03;rev=1000000001",
            "tokentally:v1:oldest=2026-W03;s=6162~434e~5301",
            "tokentally:v1:oldest=2026-W03;closed=W14",
            "tokentally:v1:oldest=2026-W03;what=1",
            "tokentally:v1:oldest=2026-W03;end",
            "tokentally:v1:oldest=2026-W03;s=6162~434e",
            "tokentally:v1:oldest=2026-W03;s=6162~434e~0",
            "tokentally:v1:oldest=2026-W03;s=6162~434~3",
            "tokentally:v1:oldest=2026-W03;s=~434e~3",
            "tokentally:v1:oldest=2026-W03;s=00~434e~3",
            "tokentally:v1:oldest=2026-W03;s=6G62~434e~3",
            /* Weeks no valid event can be in: before, 9999-W01 as the
             * closed week made a restart treat every week as final. */
            "tokentally:v1:oldest=1999-W01",
            "tokentally:v1:oldest=0001-W01",
            "tokentally:v1:oldest=2026-W03;closed=9999-W01",
            "tokentally:v1:oldest=2026-W03;closed=2100-W01",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                tt_commit_meta m;
                ck_assert_msg(parse(bad[i], &m) == -1, "accepted: %s", bad[i]);
        }
        /* Longer than any we write. */
        char big[TT_COMMIT_META_MAX + 40] = "tokentally:v1:oldest=2026-W03;";
        size_t n = strlen(big);
        memset(big + n, 'x', sizeof(big) - n - 1);
        big[sizeof(big) - 1] = '\0';
        tt_commit_meta m;
        ck_assert_int_eq(parse(big, &m), -1);
}
END_TEST

START_TEST(test_streaks_that_do_not_fit) {
        /* Sixteen rules with 512-byte holders cannot all fit in 4000
         * bytes: the ones that do not are left out, never cut. */
        tt_commit_meta m = {.oldest = wk("2026-W03"),
                            .end = 1,
                            .revision = 0,
                            .closed = INT32_MIN};
        m.nstreaks = TT_COMMIT_META_STREAKS;
        for (size_t i = 0; i < m.nstreaks; i++) {
                snprintf(m.streaks[i].rule, sizeof(m.streaks[i].rule),
                         "leader:model:%zu", i);
                memset(m.streaks[i].holder, 'a' + (int)i, 512);
                m.streaks[i].holder_len = 512;
                m.streaks[i].length = (int32_t)i + 1;
        }
        /* the last one is short: it fits after those that did not */
        m.streaks[m.nstreaks - 1].holder_len = 2;
        char buf[TT_COMMIT_META_MAX + 1];
        size_t n = tt_commit_meta_format(&m, buf, sizeof(buf));
        ck_assert_uint_le(n, TT_COMMIT_META_MAX);
        tt_commit_meta b;
        ck_assert_int_eq(tt_commit_meta_parse(buf, n, &b), 0);
        ck_assert_uint_eq(b.nstreaks, 4);
        ck_assert_int_eq(b.streaks[2].length, 3);
        ck_assert_int_eq(b.streaks[3].length, TT_COMMIT_META_STREAKS);
}
END_TEST

int main(void) {
        Suite *s = suite_create("commit_meta");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_old_format);
        tcase_add_test(tc, test_unknowns_round_trip);
        tcase_add_test(tc, test_rejects);
        tcase_add_test(tc, test_streaks_that_do_not_fit);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
