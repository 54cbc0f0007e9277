/* Week views' derived fields under extreme counts: growth is computed in
 * double, so counts at the ends of int64 (which only a corrupt record
 * could bring, and the decoders now refuse) give a huge percentage with
 * the right sign instead of a signed overflow. */
#include <check.h>
#include <stdint.h>

#include "check_main.h"
#include "recorder.h"
#include "tokentally/keytab.h"
#include "tokentally/weekview.h"

START_TEST(test_growth_no_overflow) {
        tt_keytab *keys = tt_keytab_new(16);
        tt_weekview *prev = tt_weekview_new(2932, 0);
        tt_weekview *wv = tt_weekview_new(2933, 0);
        ck_assert_ptr_nonnull(keys);
        ck_assert_ptr_nonnull(prev);
        ck_assert_ptr_nonnull(wv);
        /* tokens are prompt + completion in a held cell */
        tt_row *p = tt_weekview_row(prev, TT_DIM_TOTAL, 0);
        p->c.prompt_tokens = 2;
        p->c.requests = 1;
        tt_row *r = tt_weekview_row(wv, TT_DIM_TOTAL, 0);
        r->c.prompt_tokens = INT64_MIN + 1;
        r->c.requests = 1;
        recorder rc = {0};
        uint64_t n = 0;
        ck_assert_int_eq(tt_weekview_emit(wv, prev, TT_EMIT_FINAL, keys,
                                          &recorder_sink, &rc, 0, &n),
                         0);
        ck_assert_uint_eq(n, 1);
        /* (INT64_MIN + 1 - 2) / 2 * 100: about -4.6e20. In int64 the
         * difference wraps to INT64_MAX and gave +4.6e20. */
        ck_assert(rc.rows[0].r.has_growth);
        ck_assert_double_lt(rc.rows[0].r.wow_growth_pct, -4.6e20);
        recorder_free(&rc);
        tt_weekview_destroy(wv);
        tt_weekview_destroy(prev);
        tt_keytab_destroy(keys);
}
END_TEST

int main(void) {
        Suite *s = suite_create("weekview");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_growth_no_overflow);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
