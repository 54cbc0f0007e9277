/* JSON Lines output encoders: exact bytes for rollups, streak changes, dead
 * letters, string escapes and doubles, then the same output read back by an
 * independent parser (Python's json) to prove it is valid JSON that carries
 * the same values, field order and types as the Avro schemas. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "tokentally/buf.h"
#include "tokentally/err.h"
#include "tokentally/json_out.h"

#define S(lit) ((tt_str){(lit), sizeof(lit) - 1})

static tt_buf buf;

static void setup(void) {
        tt_buf_init(&buf, 1 << 20);
}
static void teardown(void) {
        tt_buf_free(&buf);
}

static void ck_buf_eq(const char *want) {
        size_t n = strlen(want);
        ck_assert_msg(buf.len == n && memcmp(buf.data, want, n) == 0,
                      "got  %.*s\nwant %s", (int)buf.len, (char *)buf.data,
                      want);
}

static tt_rollup rollup_all_null(void) {
        tt_rollup r = {
            .week = "2026-W14",
            .week_start_ms = 1774828800000,
            .dimension = TT_DIM_ORIGIN,
            .key = S("CN"),
            .origin = TT_STR_NULL,
            .tokens = 1296000000,
            .prompt_tokens = 1250000000,
            .completion_tokens = 46000000,
            .requests = 41234,
            .has_prev = false,
            .has_growth = false,
            .share_pct = 48.0,
            .rank = 1,
            .status = TT_STATUS_FINAL,
            .revision = 0,
            .emitted_at_ms = 1775436000123,
        };
        return r;
}

static tt_rollup rollup_all_set(void) {
        tt_rollup r = {
            .week = "2026-W14",
            .week_start_ms = 1774828800000,
            .dimension = TT_DIM_MODEL,
            .key = S("deepseek/deepseek-chat-v3"),
            .origin = S("CN"),
            .tokens = 336960000,
            .prompt_tokens = 330000000,
            .completion_tokens = 6960000,
            .requests = 9001,
            .has_prev = true,
            .prev_tokens = 256280000,
            .has_growth = true,
            .wow_growth_pct = 31.48,
            .share_pct = 12.48,
            .rank = 3,
            .status = TT_STATUS_REVISED,
            .revision = 2,
            .emitted_at_ms = 1775436000123,
        };
        return r;
}

START_TEST(rollup_nulls) {
        tt_rollup r = rollup_all_null();
        ck_assert_int_eq(tt_json_rollup(&buf, &r), TT_ERR_OK);
        ck_buf_eq("{\"week\":\"2026-W14\",\"week_start\":1774828800000,"
                  "\"dimension\":\"ORIGIN\",\"key\":\"CN\",\"origin\":null,"
                  "\"tokens\":1296000000,\"prompt_tokens\":1250000000,"
                  "\"completion_tokens\":46000000,\"requests\":41234,"
                  "\"prev_tokens\":null,\"wow_growth_pct\":null,"
                  "\"share_pct\":48.0,\"rank\":1,\"status\":\"FINAL\","
                  "\"revision\":0,\"emitted_at\":1775436000123}\n");
}
END_TEST

START_TEST(rollup_set) {
        tt_rollup r = rollup_all_set();
        ck_assert_int_eq(tt_json_rollup(&buf, &r), TT_ERR_OK);
        ck_buf_eq("{\"week\":\"2026-W14\",\"week_start\":1774828800000,"
                  "\"dimension\":\"MODEL\",\"key\":\"deepseek/"
                  "deepseek-chat-v3\",\"origin\":\"CN\","
                  "\"tokens\":336960000,\"prompt_tokens\":330000000,"
                  "\"completion_tokens\":6960000,\"requests\":9001,"
                  "\"prev_tokens\":256280000,\"wow_growth_pct\":31.48,"
                  "\"share_pct\":12.48,\"rank\":3,\"status\":\"REVISED\","
                  "\"revision\":2,\"emitted_at\":1775436000123}\n");
}
END_TEST

START_TEST(rollup_total_provisional) {
        tt_rollup r = rollup_all_null();
        r.dimension = TT_DIM_TOTAL;
        r.key = S("*");
        r.status = TT_STATUS_PROVISIONAL;
        r.share_pct = 100.0;
        r.tokens = INT64_MAX;
        r.prompt_tokens = INT64_MIN;
        ck_assert_int_eq(tt_json_rollup(&buf, &r), TT_ERR_OK);
        ck_buf_eq("{\"week\":\"2026-W14\",\"week_start\":1774828800000,"
                  "\"dimension\":\"TOTAL\",\"key\":\"*\",\"origin\":null,"
                  "\"tokens\":9223372036854775807,"
                  "\"prompt_tokens\":-9223372036854775808,"
                  "\"completion_tokens\":46000000,\"requests\":41234,"
                  "\"prev_tokens\":null,\"wow_growth_pct\":null,"
                  "\"share_pct\":100.0,\"rank\":1,\"status\":\"PROVISIONAL\","
                  "\"revision\":0,\"emitted_at\":1775436000123}\n");
}
END_TEST

static tt_streak_change streak_started(void) {
        tt_streak_change s = {
            .rule = S("leader:origin:CN,US"),
            .week = "2026-W10",
            .kind = TT_STREAK_STARTED,
            .holder = S("CN"),
            .length_weeks = 1,
            .previous_holder = S("US"),
            .holder_tokens = 340000000,
            .runner_up = S("US"),
            .has_runner_up_tokens = true,
            .runner_up_tokens = 297000000,
            .has_margin = true,
            .margin_pct = 0.1,
            .emitted_at_ms = 1773619200000,
        };
        return s;
}

START_TEST(streak_set) {
        tt_streak_change s = streak_started();
        ck_assert_int_eq(tt_json_streak(&buf, &s), TT_ERR_OK);
        ck_buf_eq("{\"rule\":\"leader:origin:CN,US\",\"week\":\"2026-W10\","
                  "\"kind\":\"STARTED\",\"holder\":\"CN\",\"length_weeks\":1,"
                  "\"previous_holder\":\"US\",\"holder_tokens\":340000000,"
                  "\"runner_up\":\"US\",\"runner_up_tokens\":297000000,"
                  "\"margin_pct\":0.1,\"emitted_at\":1773619200000}\n");
}
END_TEST

START_TEST(streak_nulls) {
        tt_streak_change s = {
            .rule = S("leader:model"),
            .week = "2026-W14",
            .kind = TT_STREAK_EXTENDED,
            .holder = S("deepseek/deepseek-chat-v3"),
            .length_weeks = 5,
            .holder_tokens = 7,
            .emitted_at_ms = 0,
        };
        ck_assert_int_eq(tt_json_streak(&buf, &s), TT_ERR_OK);
        ck_buf_eq("{\"rule\":\"leader:model\",\"week\":\"2026-W14\","
                  "\"kind\":\"EXTENDED\",\"holder\":\"deepseek/"
                  "deepseek-chat-v3\",\"length_weeks\":5,"
                  "\"previous_holder\":null,\"holder_tokens\":7,"
                  "\"runner_up\":null,\"runner_up_tokens\":null,"
                  "\"margin_pct\":null,\"emitted_at\":0}\n");
}
END_TEST

START_TEST(dead_letter) {
        ck_assert_int_eq(tt_json_dead_letter(
                             &buf, "malformed", "unexpected end of \"input\"",
                             "in/events.jsonl", 7, "{\"a\":", 5),
                         TT_ERR_OK);
        ck_buf_eq("{\"reason\":\"malformed\",\"detail\":\"unexpected end of "
                  "\\\"input\\\"\",\"source\":\"in/events.jsonl\","
                  "\"offset\":7,\"payload_base64\":\"eyJhIjo=\"}\n");
        tt_buf_reset(&buf);
        ck_assert_int_eq(tt_json_dead_letter(&buf, "bad_model", "", "x.avro", 0,
                                             "\x00\xff\x10", 3),
                         TT_ERR_OK);
        ck_buf_eq("{\"reason\":\"bad_model\",\"detail\":\"\",\"source\":"
                  "\"x.avro\",\"offset\":0,\"payload_base64\":\"AP8Q\"}\n");
        tt_buf_reset(&buf);
        ck_assert_int_eq(
            tt_json_dead_letter(&buf, "malformed", NULL, NULL, 3, NULL, 0),
            TT_ERR_OK);
        ck_buf_eq("{\"reason\":\"malformed\",\"detail\":null,\"source\":null,"
                  "\"offset\":3,\"payload_base64\":\"\"}\n");
}
END_TEST

/* A failing append leaves the buffer exactly as it was. */
START_TEST(limit_rolls_back) {
        tt_buf small;
        tt_buf_init(&small, 40);
        ck_assert_int_eq(tt_buf_append(&small, "keep", 4), TT_ERR_OK);
        tt_rollup r = rollup_all_set();
        ck_assert_int_eq(tt_json_rollup(&small, &r), TT_ERR_LIMIT);
        ck_assert_uint_eq(small.len, 4);
        tt_streak_change s = streak_started();
        ck_assert_int_eq(tt_json_streak(&small, &s), TT_ERR_LIMIT);
        ck_assert_uint_eq(small.len, 4);
        ck_assert_int_eq(tt_json_dead_letter(&small, "malformed", "d", "s", 1,
                                             "0123456789abcdef", 16),
                         TT_ERR_LIMIT);
        ck_assert_uint_eq(small.len, 4);
        /* 42 bytes (the length was 48, past the literal: read only
         * since the encoder tries a scratch copy, and ASan caught it). */
        static const char s42[] = "0123456789abcdef0123456789"
                                  "abcdef0123456789";
        ck_assert_int_eq(tt_json_string(&small, s42, sizeof(s42) - 1),
                         TT_ERR_LIMIT);
        ck_assert_uint_eq(small.len, 4);
        ck_assert_int_eq(tt_json_double(&small, 0.1), TT_ERR_OK);
        ck_assert_int_eq(memcmp(small.data, "keep0.1", 7), 0);
        tt_buf_free(&small);
}
END_TEST

static const struct {
        const char *in;
        size_t len;
        const char *want;
} string_cases[] = {
#define SC(in, want)                                                           \
        { in, sizeof(in) - 1, want }
    SC("", "\"\""),
    SC("plain ascii / slash", "\"plain ascii / slash\""),
    SC("a\"b\\c", "\"a\\\"b\\\\c\""),
    SC("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""),
    SC("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\""),
    SC("nul\0byte", "\"nul\\u0000byte\""),
    SC("caf\xc3\xa9 \xe6\x9c\x88 \xf0\x9f\x98\x80",
       "\"caf\xc3\xa9 \xe6\x9c\x88 \xf0\x9f\x98\x80\""),
    SC("\xff", "\"\\ufffd\""),
    SC("a\xc3", "\"a\\ufffd\""),                     /* truncated */
    SC("\xc0\xaf", "\"\\ufffd\\ufffd\""),            /* overlong '/' */
    SC("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""), /* surrogate */
    SC("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""), /* >10FFFF */
    SC("x\x80y", "\"x\\ufffdy\""),
#undef SC
};

START_TEST(strings) {
        tt_buf_reset(&buf);
        ck_assert_int_eq(
            tt_json_string(&buf, string_cases[_i].in, string_cases[_i].len),
            TT_ERR_OK);
        ck_buf_eq(string_cases[_i].want);
}
END_TEST

static const struct {
        double d;
        const char *want;
} double_cases[] = {
    {31.48, "31.48"},
    {0.76, "0.76"},
    {0.1, "0.1"},
    {48.0, "48.0"},
    {100.0, "100.0"},
    {0.0, "0.0"},
    {-0.0, "-0.0"},
    {1e-7, "1e-07"},
    {-2.5, "-2.5"},
    {1e21, "1e+21"},
    {1.0 / 3.0, "0.3333333333333333"},
    {0.1 + 0.2, "0.30000000000000004"},
    {123456789012345678.0, "1.2345678901234568e+17"},
    {DBL_MAX, "1.7976931348623157e+308"},
    {5e-324, "4.94065645841247e-324"},
};

START_TEST(doubles) {
        tt_buf_reset(&buf);
        ck_assert_int_eq(tt_json_double(&buf, double_cases[_i].d), TT_ERR_OK);
        ck_buf_eq(double_cases[_i].want);
        /* Whatever the form, it must read back to the very same double. */
        char tmp[64];
        snprintf(tmp, sizeof(tmp), "%.*s", (int)buf.len, (char *)buf.data);
        double back = strtod(tmp, NULL);
        ck_assert(memcmp(&back, &double_cases[_i].d, sizeof(back)) == 0);
}
END_TEST

/* The text the encoder promises, computed the plain way: the first of
 * %.15g, %.16g, %.17g that strtod reads back to d, ".0" when integral. */
static void reference_double(double d, char *out, size_t size) {
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(out, size, "%.*g", prec, d);
                if (prec == 17 || strtod(out, NULL) == d)
                        break;
        }
        if (!strpbrk(out, ".eE"))
                strcat(out, ".0");
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void) { /* xorshift64: fixed sequence */
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

/* The encoder computes most doubles with integer arithmetic instead of
 * snprintf/strtod: it must give the same text (200,000 here; 3,000,000 agreed
 * when it was written). Shares
 * (tokens * 100 / total), growths, log-uniform values over the range it
 * handles and past its ends, random bit patterns, and the neighbours of
 * powers of ten and two, where rounding carries or read-back intervals are
 * lopsided. */
START_TEST(doubles_match_reference) {
        char want[64], got[64];
        for (long i = 0; i < 200000; i++) {
                double d;
                uint64_t r = next_rand();
                switch (i % 6) {
                case 0: {
                        int64_t total = (int64_t)(next_rand() >> 20) + 1;
                        int64_t t = (int64_t)(r % (uint64_t)total);
                        d = (double)t * 100.0 / (double)total;
                        break;
                }
                case 1: {
                        int64_t prev = (int64_t)(r >> 40) + 1;
                        int64_t t = (int64_t)(next_rand() >> 38);
                        d = (double)(t - prev) / (double)prev * 100.0;
                        break;
                }
                case 2:
                        d = pow(10.0, (double)(r % 2600000) / 100000.0 - 7.0);
                        break;
                case 3:
                        memcpy(&d, &r, sizeof(d));
                        break;
                case 4: {
                        double p = pow(10.0, (double)(int)(r % 24) - 6);
                        d = nextafter(p, (r >> 8) & 1 ? 0.0 : INFINITY);
                        for (int k = (int)((r >> 9) % 4); k > 0; k--)
                                d = nextafter(d, (r >> 8) & 1 ? 0 : INFINITY);
                        break;
                }
                default: {
                        double p = ldexp(1.0, (int)(r % 120) - 20);
                        d = (r >> 8) & 1 ? nextafter(p, 0.0) : p;
                        break;
                }
                }
                if ((r >> 63) & 1)
                        d = -d;
                if (!isfinite(d))
                        continue;
                reference_double(d, want, sizeof(want));
                tt_buf_reset(&buf);
                ck_assert_int_eq(tt_json_double(&buf, d), TT_ERR_OK);
                snprintf(got, sizeof(got), "%.*s", (int)buf.len,
                         (char *)buf.data);
                ck_assert_msg(!strcmp(got, want), "%a: %s, want %s", d, got,
                              want);
        }
}
END_TEST

START_TEST(non_finite) {
        ck_assert_int_eq(tt_json_double(&buf, NAN), TT_ERR_OK);
        ck_assert_int_eq(tt_json_double(&buf, INFINITY), TT_ERR_OK);
        ck_assert_int_eq(tt_json_double(&buf, -INFINITY), TT_ERR_OK);
        ck_buf_eq("nullnullnull");
        tt_buf_reset(&buf);
        tt_rollup r = rollup_all_set();
        r.wow_growth_pct = INFINITY;
        r.share_pct = NAN;
        ck_assert_int_eq(tt_json_rollup(&buf, &r), TT_ERR_OK);
        ck_assert_ptr_nonnull(memmem(buf.data, buf.len,
                                     "\"wow_growth_pct\":null,"
                                     "\"share_pct\":null,",
                                     39));
}
END_TEST

START_TEST(enum_names) {
        ck_assert_str_eq(tt_dim_str(TT_DIM_TOTAL), "TOTAL");
        ck_assert_str_eq(tt_dim_str(TT_DIM_ORIGIN), "ORIGIN");
        ck_assert_str_eq(tt_dim_str(TT_DIM_MODEL), "MODEL");
        ck_assert_str_eq(tt_status_str(TT_STATUS_PROVISIONAL), "PROVISIONAL");
        ck_assert_str_eq(tt_status_str(TT_STATUS_FINAL), "FINAL");
        ck_assert_str_eq(tt_status_str(TT_STATUS_REVISED), "REVISED");
        ck_assert_str_eq(tt_streak_kind_str(TT_STREAK_STARTED), "STARTED");
        ck_assert_str_eq(tt_streak_kind_str(TT_STREAK_EXTENDED), "EXTENDED");
        ck_assert_ptr_nonnull(tt_dim_str((tt_dim)99));
}
END_TEST

/* The plain way, byte by byte, for the inputs of strings_word_edges
 * (stray bytes are 0xff, the one multibyte sequence is "\xce\xbb"). */
static size_t ref_escape(const unsigned char *s, size_t n, char *out) {
        char *o = out;
        *o++ = '"';
        for (size_t i = 0; i < n; i++) {
                unsigned c = s[i];
                if (c == '"' || c == '\\') {
                        *o++ = '\\';
                        *o++ = (char)c;
                } else if (c == '\n') {
                        o += sprintf(o, "\\n");
                } else if (c < 0x20) {
                        o += sprintf(o, "\\u%04x", c);
                } else if (c < 0x80) {
                        *o++ = (char)c;
                } else if (c == 0xce && i + 1 < n && s[i + 1] == 0xbb) {
                        *o++ = (char)0xce;
                        *o++ = (char)0xbb;
                        i++;
                } else {
                        o += sprintf(o, "\\ufffd");
                }
        }
        *o++ = '"';
        return (size_t)(o - out);
}

/* The string encoder looks at eight bytes at a time: a byte that needs
 * escaping at every offset of a word and of the tail, next to the
 * characters just above the ranges it tests (' ', '#', ']', 0x7f), in
 * strings of 0..40 bytes. */
START_TEST(strings_word_edges) {
        static const char *const specials[] = {
            "\"",       "\\",   "\n",    "\x01", "\x1f", "\xff",
            "\xce\xbb", "\x7f", "\x01 ", "\"#",  "\\]",  "\x1f\x20\x21"};
        unsigned char in[64];
        char want[512];
        for (size_t len = 0; len <= 40; len++) {
                for (size_t pos = 0; pos <= len; pos++) {
                        for (size_t k = 0;
                             k < sizeof(specials) / sizeof(specials[0]); k++) {
                                size_t sl = strlen(specials[k]);
                                for (size_t i = 0; i < len; i++)
                                        in[i] = (unsigned char)('a' + i % 26);
                                size_t n = len;
                                if (pos < len) {
                                        memcpy(in + pos, specials[k], sl);
                                        n = len > pos + sl ? len : pos + sl;
                                }
                                size_t wn = ref_escape(in, n, want);
                                tt_buf_reset(&buf);
                                ck_assert_int_eq(
                                    tt_json_string(&buf, (char *)in, n),
                                    TT_ERR_OK);
                                ck_assert_msg(buf.len == wn &&
                                                  !memcmp(buf.data, want, wn),
                                              "len %zu pos %zu special %zu",
                                              len, pos, k);
                        }
                }
        }
}
END_TEST

/* The rollup encoder reserves a worst case once and then writes without
 * checks: exact bytes for what stretches that worst case (a key and origin
 * of escapes and stray bytes, a week of 16 bytes with no NUL, extreme
 * integers, non-finite doubles, unknown enum values, a NULL key). */
START_TEST(rollup_edges) {
        tt_rollup r = rollup_all_set();
        memcpy(r.week,
               "\"2026-W14\\\x01\xff\xce\xbb"
               "67",
               16); /* no NUL */
        r.week_start_ms = INT64_MIN;
        r.dimension = (tt_dim)7;
        r.key = S("a\"b\\c\n\x1f\x80\xe2\x82\xac/\t");
        r.origin = S("");
        r.tokens = INT64_MAX;
        r.prompt_tokens = -1;
        r.completion_tokens = 0;
        r.requests = INT64_MIN;
        r.prev_tokens = -9;
        r.wow_growth_pct = -INFINITY;
        r.share_pct = 37.1324717627143;
        r.rank = INT32_MIN;
        r.status = (tt_status)-1;
        r.revision = INT32_MAX;
        r.emitted_at_ms = 0;
        ck_assert_int_eq(tt_json_rollup(&buf, &r), TT_ERR_OK);
        ck_buf_eq("{\"week\":\"\\\"2026-W14\\\\\\u0001\\ufffd\xce\xbb"
                  "67\",\"week_start\":-9223372036854775808,"
                  "\"dimension\":\"UNKNOWN\",\"key\":\"a\\\"b\\\\c\\n\\u001f"
                  "\\ufffd\xe2\x82\xac/\\t\",\"origin\":\"\","
                  "\"tokens\":9223372036854775807,\"prompt_tokens\":-1,"
                  "\"completion_tokens\":0,"
                  "\"requests\":-9223372036854775808,\"prev_tokens\":-9,"
                  "\"wow_growth_pct\":null,\"share_pct\":37.1324717627143,"
                  "\"rank\":-2147483648,\"status\":\"UNKNOWN\","
                  "\"revision\":2147483647,\"emitted_at\":0}\n");
        tt_buf_reset(&buf);
        r = rollup_all_null();
        r.key = (tt_str){NULL, 5};
        r.share_pct = NAN;
        r.status = (tt_status)3;
        ck_assert_int_eq(tt_json_rollup(&buf, &r), TT_ERR_OK);
        ck_buf_eq("{\"week\":\"2026-W14\",\"week_start\":1774828800000,"
                  "\"dimension\":\"ORIGIN\",\"key\":\"\",\"origin\":null,"
                  "\"tokens\":1296000000,\"prompt_tokens\":1250000000,"
                  "\"completion_tokens\":46000000,\"requests\":41234,"
                  "\"prev_tokens\":null,\"wow_growth_pct\":null,"
                  "\"share_pct\":null,\"rank\":1,\"status\":\"UNKNOWN\","
                  "\"revision\":0,\"emitted_at\":1775436000123}\n");
}
END_TEST

/* tt_json_rollup_in writes the bytes of tt_json_rollup, with the week's
 * text from its context: rows that share it, rows that change one of its
 * three fields (a new week, a new emitted_at, week_start alone), and the
 * worst-case week of rollup_edges (escapes and a 16-byte name, so the
 * context's head at its longest). */
START_TEST(rollup_context_same_bytes) {
        tt_buf direct;
        tt_buf_init(&direct, 1 << 20);
        tt_json_rollup_ctx ctx;
        memset(&ctx, 0, sizeof(ctx));
        for (int i = 0; i < 40; i++) {
                tt_rollup r = i % 3 ? rollup_all_set() : rollup_all_null();
                r.tokens = i * 1000003;
                r.share_pct = 100.0 / (i + 3);
                if (i >= 10)
                        r.emitted_at_ms += 1; /* a new emission */
                if (i >= 20)
                        memcpy(r.week, "2026-W15", 9);
                if (i >= 25 && i < 30)
                        r.week_start_ms = INT64_MIN + i; /* alone */
                if (i >= 30 && i % 2)
                        memcpy(r.week,
                               "\"2026-W14\\\x01\xff\xce\xbb"
                               "67",
                               16); /* no NUL, every byte escaped or kept */
                ck_assert_int_eq(tt_json_rollup(&direct, &r), TT_ERR_OK);
                ck_assert_int_eq(tt_json_rollup_in(&buf, &r, &ctx), TT_ERR_OK);
                ck_assert_uint_eq(buf.len, direct.len);
                ck_assert_int_eq(memcmp(buf.data, direct.data, buf.len), 0);
        }
        tt_buf_free(&direct);
}
END_TEST

/* The encoder writes the enum symbols from literals of its own: they must
 * be tt_dim_str's and tt_status_str's for every value, an unknown too. */
START_TEST(rollup_enums_match_names) {
        for (int d = -1; d <= 4; d++) {
                for (int st = -1; st <= 4; st++) {
                        tt_rollup r = rollup_all_null();
                        r.dimension = (tt_dim)d;
                        r.status = (tt_status)st;
                        tt_buf_reset(&buf);
                        ck_assert_int_eq(tt_json_rollup(&buf, &r), TT_ERR_OK);
                        char want[64];
                        int n = snprintf(want, sizeof(want),
                                         "\"dimension\":\"%s\",",
                                         tt_dim_str((tt_dim)d));
                        ck_assert_ptr_nonnull(
                            memmem(buf.data, buf.len, want, (size_t)n));
                        n = snprintf(want, sizeof(want), "\"status\":\"%s\",",
                                     tt_status_str((tt_status)st));
                        ck_assert_ptr_nonnull(
                            memmem(buf.data, buf.len, want, (size_t)n));
                }
        }
}
END_TEST

/* Near the buffer's cap the worst case (six bytes a key byte) may not fit
 * where the row itself does: the row is still written, whole, and one byte
 * less of room is TT_ERR_LIMIT with the buffer untouched. */
START_TEST(rollup_fits_exactly) {
        static char key[3000];
        memset(key, 'k', sizeof(key));
        tt_rollup r = rollup_all_set();
        r.key = (tt_str){key, sizeof(key)};
        ck_assert_int_eq(tt_json_rollup(&buf, &r), TT_ERR_OK);
        size_t exact = buf.len;
        tt_buf tight;
        tt_buf_init(&tight, exact + 2);
        ck_assert_int_eq(tt_buf_append(&tight, "ab", 2), TT_ERR_OK);
        ck_assert_int_eq(tt_json_rollup(&tight, &r), TT_ERR_OK);
        ck_assert_uint_eq(tight.len, exact + 2);
        ck_assert_int_eq(memcmp(tight.data + 2, buf.data, exact), 0);
        tt_buf_free(&tight);
        tt_buf_init(&tight, exact + 1);
        ck_assert_int_eq(tt_buf_append(&tight, "ab", 2), TT_ERR_OK);
        ck_assert_int_eq(tt_json_rollup(&tight, &r), TT_ERR_LIMIT);
        ck_assert_uint_eq(tight.len, 2);
        tt_buf_free(&tight);
        /* The same for a string alone. */
        tt_buf_init(&tight, sizeof(key) + 2);
        ck_assert_int_eq(tt_json_string(&tight, key, sizeof(key)), TT_ERR_OK);
        ck_assert_uint_eq(tight.len, sizeof(key) + 2);
        tt_buf_free(&tight);
        tt_buf_init(&tight, sizeof(key) + 1);
        ck_assert_int_eq(tt_json_string(&tight, key, sizeof(key)),
                         TT_ERR_LIMIT);
        ck_assert_uint_eq(tight.len, 0);
        tt_buf_free(&tight);
}
END_TEST

/* The independent reader. Line kinds: R rollup, S streak, D dead letter
 * (checked against the .avsc field order and types), "d" a double and "s" a
 * string, echoed back (repr of the float, hex of the UTF-8) for the C side
 * to compare. */
static const char py_script[] =
    "import json, sys\n"
    "src = sys.argv[2]\n"
    "def fields(name):\n"
    "    return json.load(open(src + '/schemas/' + name))['fields']\n"
    "def check(obj, fl):\n"
    "    assert list(obj) == [f['name'] for f in fl], (list(obj), fl)\n"
    "    for f in fl:\n"
    "        t, v = f['type'], obj[f['name']]\n"
    "        if isinstance(t, list):\n"
    "            if v is None: continue\n"
    "            t = t[1]\n"
    "        if isinstance(t, dict) and t['type'] == 'enum':\n"
    "            assert v in t['symbols'], v\n"
    "            continue\n"
    "        if isinstance(t, dict): t = t['type']\n"
    "        want = {'string': str, 'long': int, 'int': int,\n"
    "                'double': float}[t]\n"
    "        if t == 'double' and v is None: continue\n"
    "        assert type(v) is want, (f['name'], v)\n"
    "roll = fields('weekly_rollup.avsc')\n"
    "streak = fields('streak_change.avsc')\n"
    "for line in open(sys.argv[1], 'rb'):\n"
    "    kind, text = line[:1], line[2:]\n"
    "    v = json.loads(text)\n"
    "    if kind == b'R': check(v, roll); print('ok')\n"
    "    elif kind == b'S': check(v, streak); print('ok')\n"
    "    elif kind == b'D':\n"
    "        assert list(v) == ['reason', 'detail', 'source', 'offset',\n"
    "                           'payload_base64'], list(v)\n"
    "        import base64\n"
    "        print(base64.b64decode(v['payload_base64']).hex())\n"
    "    elif kind == b'd': print('null' if v is None else repr(v))\n"
    "    elif kind == b's': print(v.encode('utf-8').hex() or '-')\n";

static void hex_of(const char *s, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", (unsigned char)s[i]);
        out[2 * n] = '\0';
}

START_TEST(python_reads_it) {
        char dir[] = "/tmp/tt_json_out_XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        char data[256], script[256];
        snprintf(data, sizeof(data), "%s/lines", dir);
        snprintf(script, sizeof(script), "%s/check.py", dir);
        FILE *f = fopen(script, "w");
        ck_assert_ptr_nonnull(f);
        fputs(py_script, f);
        fclose(f);

        /* Build the input file, remembering what each line should echo. */
        static char want[64][512];
        size_t nwant = 0;
        tt_buf_reset(&buf);
        tt_rollup r1 = rollup_all_null(), r2 = rollup_all_set();
        tt_streak_change s1 = streak_started();
        const tt_rollup *rs[] = {&r1, &r2};
        for (size_t i = 0; i < 2; i++) {
                tt_buf_append(&buf, "R ", 2);
                ck_assert_int_eq(tt_json_rollup(&buf, rs[i]), 0);
                strcpy(want[nwant++], "ok");
        }
        tt_buf_append(&buf, "S ", 2);
        ck_assert_int_eq(tt_json_streak(&buf, &s1), 0);
        strcpy(want[nwant++], "ok");
        tt_buf_append(&buf, "D ", 2);
        ck_assert_int_eq(tt_json_dead_letter(&buf, "malformed", "x\n\"y\"",
                                             "f\xff.jsonl", 1, "\x00\xff\n{",
                                             4),
                         0);
        strcpy(want[nwant++], "00ff0a7b");
        for (size_t i = 0; i < sizeof(double_cases) / sizeof(double_cases[0]);
             i++) {
                tt_buf_append(&buf, "d ", 2);
                ck_assert_int_eq(tt_json_double(&buf, double_cases[i].d), 0);
                tt_buf_putc(&buf, '\n');
                /* Python's repr is the shortest round-trip form too, but
                 * spelled its own way; compared by value below. */
                snprintf(want[nwant++], sizeof(want[0]), "=%.17g",
                         double_cases[i].d);
        }
        tt_buf_append(&buf, "d ", 2);
        ck_assert_int_eq(tt_json_double(&buf, NAN), 0);
        tt_buf_putc(&buf, '\n');
        strcpy(want[nwant++], "null");
        for (size_t i = 0; i < sizeof(string_cases) / sizeof(string_cases[0]);
             i++) {
                tt_buf_append(&buf, "s ", 2);
                ck_assert_int_eq(tt_json_string(&buf, string_cases[i].in,
                                                string_cases[i].len),
                                 0);
                tt_buf_putc(&buf, '\n');
                /* Expected decoded text: the input with every byte that is
                 * not part of a valid sequence replaced by U+FFFD. */
                char dec[256];
                size_t dn = 0;
                const char *in = string_cases[i].in;
                size_t len = string_cases[i].len;
                for (size_t k = 0; k < len;) {
                        unsigned c = (unsigned char)in[k];
                        size_t n = c < 0x80             ? 1
                                   : (c & 0xE0) == 0xC0 ? 2
                                   : (c & 0xF0) == 0xE0 ? 3
                                   : (c & 0xF8) == 0xF0 ? 4
                                                        : 0;
                        if (n && k + n <= len && tt_utf8_valid(in + k, n)) {
                                memcpy(dec + dn, in + k, n);
                                dn += n, k += n;
                        } else {
                                memcpy(dec + dn, "\xef\xbf\xbd", 3);
                                dn += 3, k++;
                        }
                }
                if (dn == 0)
                        strcpy(want[nwant++], "-");
                else
                        hex_of(dec, dn, want[nwant++]);
        }
        f = fopen(data, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(buf.data, 1, buf.len, f);
        fclose(f);

        const char *src = getenv("TT_SOURCE_DIR");
        ck_assert_msg(src != NULL, "TT_SOURCE_DIR is not set");
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' '%s' '%s'", script,
                 data, src);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        char line[1024];
        size_t got = 0;
        while (fgets(line, sizeof(line), p)) {
                line[strcspn(line, "\n")] = '\0';
                ck_assert_msg(got < nwant, "extra output: %s", line);
                if (want[got][0] == '=') {
                        double a = strtod(line, NULL),
                               b = strtod(want[got] + 1, NULL);
                        ck_assert_msg(memcmp(&a, &b, sizeof(a)) == 0,
                                      "line %zu: python read %s, wrote %s", got,
                                      line, want[got] + 1);
                } else {
                        ck_assert_msg(strcmp(line, want[got]) == 0,
                                      "line %zu: python says %s, want %s", got,
                                      line, want[got]);
                }
                got++;
        }
        ck_assert_int_eq(pclose(p), 0);
        ck_assert_uint_eq(got, nwant);
        unlink(data);
        unlink(script);
        rmdir(dir);
}
END_TEST

static Suite *json_out_suite(void) {
        Suite *s = suite_create("json_out");
        TCase *tc = tcase_create("encode");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, rollup_nulls);
        tcase_add_test(tc, rollup_set);
        tcase_add_test(tc, rollup_total_provisional);
        tcase_add_test(tc, streak_set);
        tcase_add_test(tc, streak_nulls);
        tcase_add_test(tc, dead_letter);
        tcase_add_test(tc, limit_rolls_back);
        tcase_add_loop_test(tc, strings, 0,
                            sizeof(string_cases) / sizeof(string_cases[0]));
        tcase_add_loop_test(tc, doubles, 0,
                            sizeof(double_cases) / sizeof(double_cases[0]));
        tcase_add_test(tc, non_finite);
        tcase_add_test(tc, enum_names);
        tcase_add_test(tc, rollup_edges);
        tcase_add_test(tc, rollup_context_same_bytes);
        tcase_add_test(tc, strings_word_edges);
        tcase_add_test(tc, rollup_enums_match_names);
        tcase_add_test(tc, rollup_fits_exactly);
        suite_add_tcase(s, tc);
        /* A sweep over many doubles: slower than the others, more so under
         * the sanitizers. */
        TCase *sweep = tcase_create("sweep");
        tcase_add_checked_fixture(sweep, setup, teardown);
        tcase_set_timeout(sweep, 120);
        tcase_add_test(sweep, doubles_match_reference);
        suite_add_tcase(s, sweep);
        TCase *py = tcase_create("python");
        tcase_add_checked_fixture(py, setup, teardown);
        tcase_set_timeout(py, 30);
        tcase_add_test(py, python_reads_it);
        suite_add_tcase(s, py);
        return s;
}

int main(void) {
        return tt_check_run(json_out_suite());
}
