/* Week views' derived fields under extreme counts: growth is computed in
 * double, so counts at the ends of int64 (which only a corrupt record
 * could bring, and the decoders now refuse) give a huge percentage with
 * the right sign instead of a signed overflow. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "recorder.h"
#include "tokentally/keytab.h"
#include "tokentally/keyorder.h"
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
        ck_assert_int_eq(tt_weekview_emit(wv, prev, TT_EMIT_FINAL, keys, NULL,
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

/* Rank order on a week big enough for the radix path (over 256 rows):
 * dimension, then tokens descending (ties from a small set of values,
 * values past 2^32 and 2^56, one negative as only a corrupt cell could
 * hold), then the key's bytes; keys share their first 16 bytes so that
 * the full key decides. Checked pair by pair on the emitted rows, and the
 * rank is the place within the dimension. Run without the key ranks (ties
 * compare slugs) and with them (_i = 1: ties compare ranks, the engine's
 * way), so both must give this order. */
START_TEST(test_rank_order_large) {
        enum { NMODELS = 5000 };
        tt_keytab *keys = tt_keytab_new(NMODELS + 1);
        tt_weekview *wv = tt_weekview_new(2933, 0);
        ck_assert_ptr_nonnull(keys);
        ck_assert_ptr_nonnull(wv);
        static const int64_t vals[] = {
            7, 7,         1000, INT64_C(1) << 33, (INT64_C(1) << 56) + 3,
            0, 123456789, -5};
        uint64_t x = 88172645463325252u; /* xorshift64 */
        for (int i = 0; i < NMODELS; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                char slug[64];
                int len =
                    snprintf(slug, sizeof(slug), "samevendorprefix/model-%05u",
                             (unsigned)(x % 100000));
                uint32_t id = tt_keytab_intern(keys, slug, (size_t)len, NULL);
                ck_assert_uint_ne(id, TT_KEY_NONE);
                tt_row *r = tt_weekview_row(wv, TT_DIM_MODEL, id);
                ck_assert_ptr_nonnull(r);
                r->c.prompt_tokens = vals[(x >> 20) % 8];
                r->c.requests = 1;
        }
        for (int o = 0; o < 300; o++) {
                tt_row *r = tt_weekview_row(
                    wv, TT_DIM_ORIGIN,
                    (uint32_t)TT_ORIGIN('A' + o / 26, 'A' + o % 26));
                r->c.prompt_tokens = o % 3;
                r->c.requests = 1;
        }
        tt_row *t = tt_weekview_row(wv, TT_DIM_TOTAL, 0);
        t->c.prompt_tokens = INT64_C(1) << 62; /* not a sum: no overflow */
        t->c.requests = 1;
        recorder rc = {0};
        uint64_t n = 0;
        tt_keyorder *order = tt_keyorder_new();
        ck_assert_ptr_nonnull(order);
        const uint32_t *rank = _i ? tt_keyorder_ranks(order, keys) : NULL;
        ck_assert(!_i || rank);
        ck_assert_int_eq(tt_weekview_emit(wv, NULL, TT_EMIT_FINAL, keys, rank,
                                          &recorder_sink, &rc, 0, &n),
                         0);
        tt_keyorder_destroy(order);
        ck_assert_uint_eq(n, rc.nrows);
        ck_assert_uint_eq(n, 1 + 300 + tt_keytab_count(keys));
        for (size_t i = 1; i < rc.nrows; i++) {
                const tt_rollup *a = &rc.rows[i - 1].r, *b = &rc.rows[i].r;
                ck_assert_int_le(a->dimension, b->dimension);
                if (a->dimension != b->dimension) {
                        ck_assert_int_eq(b->rank, 1);
                        continue;
                }
                ck_assert_int_eq(b->rank, a->rank + 1);
                ck_assert_int_ge(a->tokens, b->tokens);
                if (a->tokens == b->tokens)
                        ck_assert_msg(
                            strcmp(rc.rows[i - 1].key, rc.rows[i].key) < 0,
                            "%s before %s", rc.rows[i - 1].key, rc.rows[i].key);
        }
        recorder_free(&rc);
        tt_weekview_destroy(wv);
        tt_keytab_destroy(keys);
}
END_TEST

int main(void) {
        Suite *s = suite_create("weekview");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_growth_no_overflow);
        tcase_add_loop_test(tc, test_rank_order_large, 0, 2);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
