/* The output decoders of `tokentally tail` (avro_read.c): Avro bodies of
 * avro_out.c and JSON objects of json_out.c read back to the same records,
 * with every null and non-null union branch; truncated bodies, trailing
 * bytes, bad enum symbols and bad JSON are rejected. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/avro_read.h"
#include "tokentally/err.h"
#include "tokentally/json_out.h"
#include "tokentally/kafka_out.h"

#define S(lit) ((tt_str){(lit), sizeof(lit) - 1})

static tt_rollup rollup(bool nulls) {
        tt_rollup r = {
            .week = "2026-W14",
            .week_start_ms = 1774828800000,
            .dimension = nulls ? TT_DIM_ORIGIN : TT_DIM_MODEL,
            .key =
                nulls ? S("CN") : S("deepseek/deepseek-\"chat\"-v3 \xc3\xa9"),
            .origin = nulls ? TT_STR_NULL : S("CN"),
            .tokens = 1296000000,
            .prompt_tokens = 1264632220,
            .completion_tokens = 31367780,
            .requests = 30058,
            .has_prev = !nulls,
            .prev_tokens = 985701247,
            .has_growth = !nulls,
            .wow_growth_pct = 31.480000045084655,
            .share_pct = 48.0,
            .rank = 1,
            .status = nulls ? TT_STATUS_REVISED : TT_STATUS_PROVISIONAL,
            .revision = nulls ? 3 : 0,
            .emitted_at_ms = 1795836770414,
        };
        return r;
}

static tt_streak_change streak(bool nulls) {
        tt_streak_change s = {
            .rule = S("leader:origin:CN,US"),
            .week = "2026-W14",
            .kind = nulls ? TT_STREAK_STARTED : TT_STREAK_EXTENDED,
            .holder = S("CN"),
            .length_weeks = 5,
            .previous_holder = nulls ? TT_STR_NULL : S("US"),
            .holder_tokens = 1296000000,
            .runner_up = nulls ? TT_STR_NULL : S("US"),
            .has_runner_up_tokens = !nulls,
            .runner_up_tokens = 303000000,
            .has_margin = !nulls,
            .margin_pct = 327.7227722772277,
            .emitted_at_ms = -1,
        };
        return s;
}

static bool str_eq(tt_str a, tt_str b) {
        if (!a.ptr || !b.ptr)
                return !a.ptr && !b.ptr;
        return a.len == b.len && !memcmp(a.ptr, b.ptr, a.len);
}

static void ck_rollup_eq(const tt_rollup *a, const tt_rollup *b) {
        ck_assert_str_eq(a->week, b->week);
        ck_assert_int_eq(a->week_start_ms, b->week_start_ms);
        ck_assert_int_eq(a->dimension, b->dimension);
        ck_assert(str_eq(a->key, b->key));
        ck_assert(str_eq(a->origin, b->origin));
        ck_assert_int_eq(a->tokens, b->tokens);
        ck_assert_int_eq(a->prompt_tokens, b->prompt_tokens);
        ck_assert_int_eq(a->completion_tokens, b->completion_tokens);
        ck_assert_int_eq(a->requests, b->requests);
        ck_assert_int_eq(a->has_prev, b->has_prev);
        if (a->has_prev)
                ck_assert_int_eq(a->prev_tokens, b->prev_tokens);
        ck_assert_int_eq(a->has_growth, b->has_growth);
        if (a->has_growth)
                ck_assert(a->wow_growth_pct == b->wow_growth_pct);
        ck_assert(a->share_pct == b->share_pct);
        ck_assert_int_eq(a->rank, b->rank);
        ck_assert_int_eq(a->status, b->status);
        ck_assert_int_eq(a->revision, b->revision);
        ck_assert_int_eq(a->emitted_at_ms, b->emitted_at_ms);
}

static void ck_streak_eq(const tt_streak_change *a, const tt_streak_change *b) {
        ck_assert(str_eq(a->rule, b->rule));
        ck_assert_str_eq(a->week, b->week);
        ck_assert_int_eq(a->kind, b->kind);
        ck_assert(str_eq(a->holder, b->holder));
        ck_assert_int_eq(a->length_weeks, b->length_weeks);
        ck_assert(str_eq(a->previous_holder, b->previous_holder));
        ck_assert_int_eq(a->holder_tokens, b->holder_tokens);
        ck_assert(str_eq(a->runner_up, b->runner_up));
        ck_assert_int_eq(a->has_runner_up_tokens, b->has_runner_up_tokens);
        if (a->has_runner_up_tokens)
                ck_assert_int_eq(a->runner_up_tokens, b->runner_up_tokens);
        ck_assert_int_eq(a->has_margin, b->has_margin);
        if (a->has_margin)
                ck_assert(a->margin_pct == b->margin_pct);
        ck_assert_int_eq(a->emitted_at_ms, b->emitted_at_ms);
}

START_TEST(avro_rollup_round_trip) {
        tt_buf b;
        tt_buf_init(&b, 1 << 16);
        tt_rollup in = rollup(_i), out;
        ck_assert_int_eq(tt_avro_encode_rollup(&b, &in), TT_ERR_OK);
        ck_assert_int_eq(tt_avro_decode_rollup(b.data, b.len, &out), TT_ERR_OK);
        ck_rollup_eq(&in, &out);
        /* Every truncation fails, and so does one byte too many. */
        for (size_t n = 0; n < b.len; n++)
                ck_assert_int_eq(tt_avro_decode_rollup(b.data, n, &out),
                                 TT_ERR_FORMAT);
        tt_buf_putc(&b, 0);
        ck_assert_int_eq(tt_avro_decode_rollup(b.data, b.len, &out),
                         TT_ERR_FORMAT);
        /* A StreakChange body is not a rollup. */
        tt_buf_reset(&b);
        tt_streak_change s = streak(_i);
        ck_assert_int_eq(tt_avro_encode_streak(&b, &s), TT_ERR_OK);
        ck_assert_int_ne(tt_avro_decode_rollup(b.data, b.len, &out), TT_ERR_OK);
        tt_buf_free(&b);
}
END_TEST

START_TEST(avro_streak_round_trip) {
        tt_buf b;
        tt_buf_init(&b, 1 << 16);
        tt_streak_change in = streak(_i), out;
        ck_assert_int_eq(tt_avro_encode_streak(&b, &in), TT_ERR_OK);
        ck_assert_int_eq(tt_avro_decode_streak(b.data, b.len, &out), TT_ERR_OK);
        ck_streak_eq(&in, &out);
        for (size_t n = 0; n < b.len; n++)
                ck_assert_int_eq(tt_avro_decode_streak(b.data, n, &out),
                                 TT_ERR_FORMAT);
        tt_buf_free(&b);
}
END_TEST

START_TEST(avro_bad_enum) {
        tt_buf b;
        tt_buf_init(&b, 1 << 16);
        tt_rollup in = rollup(true), out;
        ck_assert_int_eq(tt_avro_encode_rollup(&b, &in), TT_ERR_OK);
        /* "2026-W14" is 1 + 8 bytes, week_start 6 bytes: then dimension. */
        size_t at = 1 + 8 + 6;
        ck_assert_int_eq(b.data[at], 2); /* ORIGIN = 1, zigzag 2 */
        b.data[at] = 6;                  /* 3: no such symbol */
        ck_assert_int_eq(tt_avro_decode_rollup(b.data, b.len, &out),
                         TT_ERR_FORMAT);
        tt_buf_free(&b);
}
END_TEST

START_TEST(json_round_trip) {
        tt_buf b, scratch;
        tt_buf_init(&b, 1 << 16);
        tt_buf_init(&scratch, 1 << 16);
        tt_rollup r = rollup(_i), ro;
        tt_streak_change s = streak(_i), so;
        tt_out_kind k;
        ck_assert_int_eq(tt_json_rollup(&b, &r), TT_ERR_OK);
        ck_assert_int_eq(tt_json_decode_output((const char *)b.data, b.len,
                                               &scratch, &k, &ro, &so),
                         TT_ERR_OK);
        ck_assert_int_eq(k, TT_OUT_ROLLUP);
        ck_rollup_eq(&r, &ro);
        tt_buf_reset(&b);
        ck_assert_int_eq(tt_json_streak(&b, &s), TT_ERR_OK);
        ck_assert_int_eq(tt_json_decode_output((const char *)b.data, b.len,
                                               &scratch, &k, &ro, &so),
                         TT_ERR_OK);
        ck_assert_int_eq(k, TT_OUT_STREAK);
        ck_streak_eq(&s, &so);
        tt_buf_free(&b);
        tt_buf_free(&scratch);
}
END_TEST

START_TEST(json_rejects) {
        static const char *const bad[] = {
            "",
            "[]",
            "{\"rule\":\"r\"}", /* fields missing */
            "{\"week\":\"2026-W14\"}",
            "{\"dimension\":{}}",
            "{\"rule\":\"r\",\"week\":\"2026-W14\",\"kind\":\"ENDED\","
            "\"holder\":\"CN\",\"length_weeks\":1,\"holder_tokens\":1,"
            "\"emitted_at\":1}",
            "{\"rule\":\"r\",\"week\":\"2026-W14\",\"kind\":\"STARTED\","
            "\"holder\":\"CN\",\"length_weeks\":1,\"holder_tokens\":1,"
            "\"emitted_at\":1} x",
            "{\"rule\":\"a\\q\"}",
        };
        tt_buf scratch;
        tt_buf_init(&scratch, 1 << 16);
        tt_rollup r;
        tt_streak_change s;
        tt_out_kind k;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert_msg(tt_json_decode_output(bad[i], strlen(bad[i]),
                                                    &scratch, &k, &r,
                                                    &s) != TT_ERR_OK,
                              "accepted %s", bad[i]);
        /* The minimal streak, with escapes and absent nullable fields. */
        const char *ok = " {\"rule\":\"a\\\"b\\u00e9\",\"week\":\"2026-W14\","
                         "\"kind\":\"STARTED\",\"holder\":\"CN\","
                         "\"length_weeks\":1,\"holder_tokens\":7,"
                         "\"emitted_at\":1} ";
        ck_assert_int_eq(
            tt_json_decode_output(ok, strlen(ok), &scratch, &k, &r, &s),
            TT_ERR_OK);
        ck_assert_int_eq(k, TT_OUT_STREAK);
        ck_assert(str_eq(s.rule, S("a\"b\xc3\xa9")));
        ck_assert(!s.previous_holder.ptr && !s.has_margin);
        tt_buf_free(&scratch);
}
END_TEST

static Suite *avro_read_suite(void) {
        Suite *s = suite_create("avro_read");
        TCase *tc = tcase_create("decode");
        tcase_add_loop_test(tc, avro_rollup_round_trip, 0, 2);
        tcase_add_loop_test(tc, avro_streak_round_trip, 0, 2);
        tcase_add_test(tc, avro_bad_enum);
        tcase_add_loop_test(tc, json_round_trip, 0, 2);
        tcase_add_test(tc, json_rejects);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(avro_read_suite());
}
