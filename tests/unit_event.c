/* tt_event_validate: every field-level dead-letter reason of SPEC §2, with
 * the boundary values on both sides. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/event.h"

static char long_model[300];

typedef struct vcase {
        const char *name;
        const char *model; /* NULL: long_model of model_len bytes */
        size_t model_len;
        int64_t t, prompt, completion;
        const char *origin;
        uint32_t drop; /* TT_F_* bits removed from present */
        tt_reason want;
        const char *detail_has;
} vcase;

#define T0 INT64_C(1774828800000)
static const vcase cases[] = {
    {"valid", "openai/gpt-5", 0, T0, 1, 2, NULL, 0, TT_REASON_NONE, ""},
    {"valid origin", "openai/gpt-5", 0, T0, 1, 2, "US", 0, TT_REASON_NONE, ""},
    {"zero tokens", "a/b", 0, T0, 0, 0, NULL, 0, TT_REASON_NONE, ""},
    {"no request_id", "a/b", 0, T0, 1, 1, NULL, TT_F_REQUEST_ID,
     TT_REASON_MISSING_FIELD, "request_id"},
    {"no event_time", "a/b", 0, T0, 1, 1, NULL, TT_F_EVENT_TIME,
     TT_REASON_MISSING_FIELD, "event_time"},
    {"no model", "a/b", 0, T0, 1, 1, NULL, TT_F_MODEL, TT_REASON_MISSING_FIELD,
     "model"},
    {"no prompt", "a/b", 0, T0, 1, 1, NULL, TT_F_PROMPT,
     TT_REASON_MISSING_FIELD, "prompt_tokens"},
    {"no completion", "a/b", 0, T0, 1, 1, NULL, TT_F_COMPLETION,
     TT_REASON_MISSING_FIELD, "completion_tokens"},
    {"negative prompt", "a/b", 0, T0, -1, 1, NULL, 0, TT_REASON_NEGATIVE_TOKENS,
     "-1"},
    {"negative completion", "a/b", 0, T0, 1, -5, NULL, 0,
     TT_REASON_NEGATIVE_TOKENS, "-5"},
    {"10M tokens is fine", "a/b", 0, T0, 9999999, 1, NULL, 0, TT_REASON_NONE,
     ""},
    {"10M + 1", "a/b", 0, T0, 10000000, 1, NULL, 0, TT_REASON_TOKENS_TOO_LARGE,
     "10000000"},
    {"huge, no overflow", "a/b", 0, T0, INT64_MAX, INT64_MAX, NULL, 0,
     TT_REASON_TOKENS_TOO_LARGE, ""},
    {"2000-01-01 is fine", "a/b", 0, 946684800000, 1, 1, NULL, 0,
     TT_REASON_NONE, ""},
    {"before 2000", "a/b", 0, 946684799999, 1, 1, NULL, 0,
     TT_REASON_TIME_OUT_OF_RANGE, "2000"},
    {"last ms before 2100", "a/b", 0, 4102444799999, 1, 1, NULL, 0,
     TT_REASON_NONE, ""},
    {"2100-01-01", "a/b", 0, 4102444800000, 1, 1, NULL, 0,
     TT_REASON_TIME_OUT_OF_RANGE, "2100"},
    {"empty model", "", 0, T0, 1, 1, NULL, 0, TT_REASON_BAD_MODEL, "empty"},
    {"no slash", "gpt-5", 0, T0, 1, 1, NULL, 0, TT_REASON_BAD_MODEL, "'/'"},
    {"256 bytes is fine", NULL, 256, T0, 1, 1, NULL, 0, TT_REASON_NONE, ""},
    {"257 bytes", NULL, 257, T0, 1, 1, NULL, 0, TT_REASON_BAD_MODEL, "257"},
    {"not UTF-8", "a/\xff\xfe", 0, T0, 1, 1, NULL, 0, TT_REASON_BAD_MODEL,
     "UTF-8"},
    {"overlong UTF-8", "a/\xc0\xaf", 0, T0, 1, 1, NULL, 0, TT_REASON_BAD_MODEL,
     "UTF-8"},
    {"surrogate", "a/\xed\xa0\x80", 0, T0, 1, 1, NULL, 0, TT_REASON_BAD_MODEL,
     "UTF-8"},
    {"bad byte after 16 ASCII", "abcdefghijklmnop/q\xff", 0, T0, 1, 1, NULL, 0,
     TT_REASON_BAD_MODEL, "UTF-8"},
    {"truncated after 8 ASCII", "abcdefgh/\xe4\xb8", 0, T0, 1, 1, NULL, 0,
     TT_REASON_BAD_MODEL, "UTF-8"},
    {"UTF-8 after 8 ASCII", "abcdefgh/\xe4\xb8\xadxxxxxxxx", 0, T0, 1, 1, NULL,
     0, TT_REASON_NONE, ""},
    {"UTF-8 is fine", "a/\xe4\xb8\xad\xf0\x9f\x98\x80", 0, T0, 1, 1, NULL, 0,
     TT_REASON_NONE, ""},
    {"origin lower case", "a/b", 0, T0, 1, 1, "cn", 0, TT_REASON_BAD_ORIGIN,
     "alpha-2"},
    {"origin word", "a/b", 0, T0, 1, 1, "china", 0, TT_REASON_BAD_ORIGIN,
     "alpha-2"},
    {"origin empty", "a/b", 0, T0, 1, 1, "", 0, TT_REASON_BAD_ORIGIN,
     "alpha-2"},
};

START_TEST(test_validate) {
        const vcase *c = &cases[_i];
        tt_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.request_id = TT_STR_LIT("r-1");
        ev.event_time_ms = c->t;
        ev.model = c->model ? (tt_str){c->model, strlen(c->model)}
                            : (tt_str){long_model, c->model_len};
        ev.origin =
            c->origin ? (tt_str){c->origin, strlen(c->origin)} : TT_STR_NULL;
        ev.prompt_tokens = c->prompt;
        ev.completion_tokens = c->completion;
        ev.present = (TT_F_REQUIRED | TT_F_ORIGIN) & ~c->drop;
        char detail[256];
        tt_reason r = tt_event_validate(&ev, detail, sizeof(detail));
        ck_assert_msg(r == c->want, "%s: got %s want %s (%s)", c->name,
                      tt_reason_str(r), tt_reason_str(c->want), detail);
        ck_assert_msg(strstr(detail, c->detail_has) != NULL,
                      "%s: detail '%s' lacks '%s'", c->name, detail,
                      c->detail_has);
}
END_TEST

START_TEST(test_reason_names) {
        /* The names are the contract (SPEC §2, §3). */
        static const char *const names[] = {"none",
                                            "malformed",
                                            "missing_field",
                                            "negative_tokens",
                                            "tokens_too_large",
                                            "time_out_of_range",
                                            "bad_model",
                                            "future_time",
                                            "late",
                                            "too_late",
                                            "bad_origin",
                                            "key_limit"};
        ck_assert_int_eq(TT_REASON__COUNT, 12);
        for (int i = 0; i < TT_REASON__COUNT; i++)
                ck_assert_str_eq(tt_reason_str((tt_reason)i), names[i]);
        ck_assert_str_eq(tt_reason_str(TT_REASON__COUNT), "unknown");
}
END_TEST

int main(void) {
        memset(long_model, 'x', sizeof(long_model));
        long_model[0] = 'a';
        long_model[1] = '/';
        Suite *s = suite_create("event");
        TCase *tc = tcase_create("validate");
        tcase_add_loop_test(tc, test_validate, 0,
                            sizeof(cases) / sizeof(cases[0]));
        tcase_add_test(tc, test_reason_names);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
