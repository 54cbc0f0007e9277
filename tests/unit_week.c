/* ISO week edges: Monday 00:00, Sunday 23:59:59.999, the week-year at the
 * turn of the year (2027-01-01 is in 2026-W53). */
#include <check.h>
#include <stdlib.h>

#include "check_main.h"
#include "tokentally/event.h"
#include "tokentally/week.h"

static const struct {
        int64_t ms;
        const char *name;
} cases[] = {
    {1774828800000, "2026-W14"}, /* Mon 2026-03-30 00:00:00.000 */
    {1775433599999, "2026-W14"}, /* Sun 2026-04-05 23:59:59.999 */
    {1775433600000, "2026-W15"}, /* next Monday */
    {1774828799999, "2026-W13"}, /* a millisecond before W14 */
    {1798761600000, "2026-W53"}, /* 2027-01-01 */
    {1799020800000, "2027-W01"}, /* 2027-01-04 */
    {1609675200000, "2020-W53"}, /* 2021-01-03 */
    {1230508800000, "2009-W01"}, /* 2008-12-29 */
    {0, "1970-W01"},             /* Thursday 1970-01-01 */
    {946684800000, "1999-W52"},  /* 2000-01-01, a Saturday */
    {4102444799999, "2099-W53"}, /* last valid ms */
    {-1, "1970-W01"},            /* 1969-12-31 23:59:59.999 */
};

START_TEST(test_week_name) {
        char name[16];
        int32_t w = tt_week_of(cases[_i].ms);
        tt_week_name(w, name, sizeof(name));
        ck_assert_str_eq(name, cases[_i].name);
        ck_assert_int_le(tt_week_start(w), cases[_i].ms);
        ck_assert_int_gt(tt_week_start(w + 1), cases[_i].ms);
        ck_assert_int_eq(
            tt_week_start(w) % 86400000 == 0 || tt_week_start(w) < 0, 1);
        int32_t back;
        ck_assert_int_eq(tt_week_parse(cases[_i].name, &back), 0);
        ck_assert_int_eq(back, w);
}
END_TEST

START_TEST(test_week_start_monday) {
        /* W14 of 2026 starts on Monday 2026-03-30. */
        int32_t w;
        ck_assert_int_eq(tt_week_parse("2026-W14", &w), 0);
        ck_assert_int_eq(tt_week_start(w), 1774828800000);
        ck_assert_int_eq(tt_week_start(w + 1) - tt_week_start(w), TT_WEEK_MS);
}
END_TEST

START_TEST(test_week_parse_bad) {
        int32_t w;
        ck_assert_int_eq(tt_week_parse("2026-W54", &w), -1);
        ck_assert_int_eq(tt_week_parse("2025-W53", &w), -1); /* short year */
        ck_assert_int_eq(tt_week_parse("2026-W00", &w), -1);
        ck_assert_int_eq(tt_week_parse("2026W14", &w), -1);
        ck_assert_int_eq(tt_week_parse("2026-W1", &w), -1);
}
END_TEST

/* The bounds of valid weeks are the weeks of the bounds of valid event
 * times: internal records are checked against them. */
START_TEST(test_week_bounds) {
        ck_assert_int_eq(TT_MIN_WEEK, tt_week_of(TT_MIN_EVENT_TIME_MS));
        ck_assert_int_eq(TT_MAX_WEEK, tt_week_of(TT_MAX_EVENT_TIME_MS - 1));
        ck_assert(tt_week_valid(TT_MIN_WEEK) && tt_week_valid(TT_MAX_WEEK));
        ck_assert(!tt_week_valid(TT_MIN_WEEK - 1) &&
                  !tt_week_valid(TT_MAX_WEEK + 1) && !tt_week_valid(INT32_MIN));
}
END_TEST

int main(void) {
        Suite *s = suite_create("week");
        TCase *tc = tcase_create("core");
        tcase_add_loop_test(tc, test_week_name, 0,
                            sizeof(cases) / sizeof(cases[0]));
        tcase_add_test(tc, test_week_start_monday);
        tcase_add_test(tc, test_week_parse_bad);
        tcase_add_test(tc, test_week_bounds);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
