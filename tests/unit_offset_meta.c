/* Committed offset metadata and Schema Registry answers: bytes another
 * process wrote that steer the stage, checked before use. */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/buf.h"
#include "tokentally/err.h"
#include "tokentally/commit_meta.h"
#include "tokentally/offset_meta.h"
#include "tokentally/schema_registry.h"

static const struct {
        const char *meta;
        int err;
        int64_t wm;
} wm_cases[] = {
    {"tokentally:v2:wm=1775433600000", TT_ERR_OK, INT64_C(1775433600000)},
    {"tokentally:v2:wm=946684800000", TT_ERR_OK, INT64_C(946684800000)},
    {"", TT_ERR_EOF, 0},
    {"someone-else", TT_ERR_EOF, 0},
    {"tokentally:v1:oldest=2026-W14", TT_ERR_EOF, 0},
    /* Before: strtoll took all of these, and a watermark of INT64_MAX
     * would have closed every open week at once. */
    {"tokentally:v2:wm=", TT_ERR_FORMAT, 0},
    {"tokentally:v2:wm=9223372036854775807", TT_ERR_FORMAT, 0},
    {"tokentally:v2:wm=99999999999999999999", TT_ERR_FORMAT, 0},
    {"tokentally:v2:wm=-1", TT_ERR_FORMAT, 0},
    {"tokentally:v2:wm=1775433600000x", TT_ERR_FORMAT, 0},
    {"tokentally:v2:wm= 1775433600000", TT_ERR_FORMAT, 0},
    {"tokentally:v2:wm=4102444800000", TT_ERR_FORMAT, 0},
    {"tokentally:v2:wm=946684799999", TT_ERR_FORMAT, 0},
};

START_TEST(test_wm) {
        int64_t wm = 0;
        char why[256] = "";
        const char *m = wm_cases[_i].meta;
        ck_assert_int_eq(tt_offset_meta_wm(m, strlen(m), &wm, why, sizeof(why)),
                         wm_cases[_i].err);
        if (wm_cases[_i].err == TT_ERR_OK)
                ck_assert_int_eq(wm, wm_cases[_i].wm);
        if (wm_cases[_i].err == TT_ERR_FORMAT)
                ck_assert_ptr_nonnull(strstr(why, "watermark"));
}
END_TEST

static const struct {
        const char *meta;
        size_t len; /* 0: strlen */
        int err;
        int32_t week;
} week_cases[] = {
    {"tokentally:v1:oldest=2026-W14", 0, TT_ERR_OK, 2934},
    {"tokentally:v1:oldest=2000-W01", 0, TT_ERR_OK, 1565},
    {"tokentally:v2:wm=1", 0, TT_ERR_EOF, 0},
    {"tokentally:v1:oldest=", 0, TT_ERR_FORMAT, 0},
    {"tokentally:v1:oldest=2026-W54", 0, TT_ERR_FORMAT, 0},
    {"tokentally:v1:oldest=1969-W01", 0, TT_ERR_FORMAT, 0},
    {"tokentally:v1:oldest=9999-W01", 0, TT_ERR_FORMAT, 0},
    {"tokentally:v1:oldest=2026-W14\0x", 31, TT_ERR_FORMAT, 0},
};

/* At-least-once metadata is tt_commit_meta_parse's (commit_meta.h): the
 * week cases hold for it too (not ours or malformed: refused alike). */
START_TEST(test_week) {
        tt_commit_meta cm;
        const char *m = week_cases[_i].meta;
        size_t n = week_cases[_i].len ? week_cases[_i].len : strlen(m);
        ck_assert_int_eq(tt_commit_meta_parse(m, n, &cm),
                         week_cases[_i].err == TT_ERR_OK ? 0 : -1);
        if (week_cases[_i].err == TT_ERR_OK)
                ck_assert_int_eq(cm.oldest, week_cases[_i].week);
}
END_TEST

START_TEST(test_registry_answers) {
        int32_t id = -1;
        static const char ok[] = "{\"id\": 12}";
        ck_assert_int_eq(tt_registry_answer_id(ok, strlen(ok), &id), 0);
        ck_assert_int_eq(id, 12);
        static const char *bad_ids[] = {"{\"id\":-1}", "{\"id\":2147483648}",
                                        "{\"id\":\"7\"}", "{}", "[1]"};
        for (size_t i = 0; i < 5; i++)
                ck_assert_int_eq(
                    tt_registry_answer_id(bad_ids[i], strlen(bad_ids[i]), &id),
                    TT_ERR_FORMAT);
        tt_buf s;
        tt_buf_init(&s, 1 << 16);
        static const char sch[] =
            "{\"schema\":\"{\\\"type\\\":\\\"long\\\"}\"}";
        ck_assert_int_eq(tt_registry_answer_schema(sch, strlen(sch), &s), 0);
        ck_assert_str_eq((const char *)s.data, "{\"type\":\"long\"}");
        /* A NUL escaped into the schema would hide its tail from the
         * decoder: refused. */
        static const char nul[] = "{\"schema\":\"\\\"long\\\"\\u0000junk\"}";
        ck_assert_int_eq(tt_registry_answer_schema(nul, strlen(nul), &s),
                         TT_ERR_FORMAT);
        static const char num[] = "{\"schema\":5}";
        ck_assert_int_eq(tt_registry_answer_schema(num, strlen(num), &s),
                         TT_ERR_FORMAT);
        tt_buf_free(&s);
}
END_TEST

int main(void) {
        Suite *s = suite_create("offset_meta");
        TCase *tc = tcase_create("core");
        tcase_add_loop_test(tc, test_wm, 0,
                            sizeof(wm_cases) / sizeof(wm_cases[0]));
        tcase_add_loop_test(tc, test_week, 0,
                            sizeof(week_cases) / sizeof(week_cases[0]));
        tcase_add_test(tc, test_registry_answers);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
