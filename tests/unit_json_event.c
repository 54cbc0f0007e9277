/* JSON TokenEvent scanner: valid lines (nulls, escapes, unknown nested
 * values, RFC 3339 times), every malformed kind with its exact detail,
 * RFC 3339 edge cases, and the encoder's round trip and escaping. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/avro_event.h"
#include "tokentally/json_event.h"
#include "tokentally/mem.h"

#define DETAIL 160

static bool str_eq(tt_str s, const char *want) {
        if (!want)
                return s.ptr == NULL;
        return s.ptr && s.len == strlen(want) &&
               memcmp(s.ptr, want, s.len) == 0;
}

/* Decodes from an exactly sized heap copy so ASan catches any overread. */
static tt_reason decode(tt_json_dec *d, const char *line, tt_event *ev,
                        char *detail, char **copy) {
        size_t n = strlen(line);
        *copy = malloc(n ? n : 1);
        memcpy(*copy, line, n);
        return tt_json_decode_event(d, *copy, n, ev, detail, DETAIL);
}

#define ALL (TT_F_REQUIRED | TT_F_ORIGIN | TT_F_PROVIDER)

static const struct {
        const char *line;
        const char *request_id;
        int64_t time;
        const char *model, *origin;
        int64_t prompt, completion;
        const char *provider;
        uint32_t present;
} good[] = {
    {"{\"request_id\":\"r1\",\"event_time\":1775044800000,\"model\":"
     "\"deepseek/deepseek-chat-v3\",\"origin\":\"CN\",\"prompt_tokens\":1200,"
     "\"completion_tokens\":350,\"provider\":\"deepinfra\"}",
     "r1", INT64_C(1775044800000), "deepseek/deepseek-chat-v3", "CN", 1200, 350,
     "deepinfra", ALL},
    /* nulls: absent for required fields, null values for the optional */
    {"{\"request_id\":null,\"event_time\":null,\"model\":\"a/b\",\"origin\":"
     "null,\"prompt_tokens\":null,\"completion_tokens\":0,\"provider\":null}",
     NULL, 0, "a/b", NULL, 0, 0, NULL,
     TT_F_MODEL | TT_F_COMPLETION | TT_F_ORIGIN | TT_F_PROVIDER},
    /* white space everywhere, other order, negative numbers kept */
    {" \t\r\n{ \"completion_tokens\" : -7 ,\n\"model\":\"x/y\" , "
     "\"prompt_tokens\":\t0,\"event_time\" :-1, \"request_id\": \"\" } \n",
     "", -1, "x/y", NULL, 0, -7, NULL, TT_F_REQUIRED},
    /* escapes, surrogate pair, escaped key */
    {"{\"request_id\":\"a\\\"b\\\\c\\/d\\n\\t\\b\\f\\r\\u00e9\\ud83d\\ude00"
     "\",\"mod\\u0065l\":\"q\\u002Fr\",\"provider\":\"\\u4e2d\"}",
     "a\"b\\c/d\n\t\b\f\r\xc3\xa9\xf0\x9f\x98\x80", 0, "q/r", NULL, 0, 0,
     "\xe4\xb8\xad", TT_F_REQUEST_ID | TT_F_MODEL | TT_F_PROVIDER},
    /* unknown values of every type, nested */
    {"{\"meta\":{\"a\":[1,2.5,-3e-2,{\"b\":null,\"c\":[]}],\"d\":\"x\\u0041\","
     "\"e\":{}},\"t\":true,\"f\":false,\"n\":null,\"s\":\"\\\"}\",\"model\":"
     "\"m/n\",\"z\":[[[\"]\"]]]}",
     NULL, 0, "m/n", NULL, 0, 0, NULL, TT_F_MODEL},
    /* RFC 3339 with offset and fraction */
    {"{\"event_time\":\"2026-04-01T14:00:00.123+02:00\"}", NULL,
     INT64_C(1775044800123), NULL, NULL, 0, 0, NULL, TT_F_EVENT_TIME},
    {"{\"event_time\":\"2026-04-01t06:30:00.9999z\"}", NULL,
     INT64_C(1775025000999), NULL, NULL, 0, 0, NULL, TT_F_EVENT_TIME},
    /* duplicates: the last one wins, a later null undoes a value */
    {"{\"model\":\"a/b\",\"model\":\"c/d\",\"request_id\":\"r\","
     "\"request_id\":null,\"origin\":\"US\",\"origin\":null}",
     NULL, 0, "c/d", NULL, 0, 0, NULL, TT_F_MODEL | TT_F_ORIGIN},
    {"{}", NULL, 0, NULL, NULL, 0, 0, NULL, 0},
    /* raw UTF-8, and int64 limits */
    {"{\"model\":\"qwen/\xe9\x80\x9a\xe4\xb9\x89\",\"prompt_tokens\":"
     "9223372036854775807,\"completion_tokens\":-9223372036854775808}",
     NULL, 0, "qwen/\xe9\x80\x9a\xe4\xb9\x89", NULL, INT64_MAX, INT64_MIN, NULL,
     TT_F_MODEL | TT_F_PROMPT | TT_F_COMPLETION},
    /* longer than one 8-byte scan window, quote right after one */
    {"{\"request_id\":\"0123456789abcdef\",\"model\":\"01234567\"}",
     "0123456789abcdef", 0, "01234567", NULL, 0, 0, NULL,
     TT_F_REQUEST_ID | TT_F_MODEL},
};

START_TEST(good_lines) {
        tt_json_dec *d = tt_json_dec_new();
        char detail[DETAIL], *copy;
        tt_event ev;
        tt_reason r = decode(d, good[_i].line, &ev, detail, &copy);
        ck_assert_msg(r == TT_REASON_NONE, "%s", detail);
        ck_assert_uint_eq(ev.present, good[_i].present);
        if (ev.present & TT_F_REQUEST_ID)
                ck_assert(str_eq(ev.request_id, good[_i].request_id));
        if (ev.present & TT_F_EVENT_TIME)
                ck_assert_int_eq(ev.event_time_ms, good[_i].time);
        if (ev.present & TT_F_MODEL)
                ck_assert(str_eq(ev.model, good[_i].model));
        ck_assert(str_eq(ev.origin, good[_i].origin));
        if (ev.present & TT_F_PROMPT)
                ck_assert_int_eq(ev.prompt_tokens, good[_i].prompt);
        if (ev.present & TT_F_COMPLETION)
                ck_assert_int_eq(ev.completion_tokens, good[_i].completion);
        ck_assert(str_eq(ev.provider, good[_i].provider));
        free(copy);
        tt_json_dec_destroy(d);
}
END_TEST

static const struct {
        const char *line;
        const char *detail;
} bad[] = {
    {"", "empty input, expected a JSON object"},
    {"  \n", "empty input, expected a JSON object"},
    {"[1]", "expected '{' at offset 0"},
    {"{\"model\":\"a/b\"", "unexpected end of input"},
    {"{\"model\":", "unexpected end of input"},
    {"{\"model\":\"a/b\"}x", "trailing bytes after the object at offset 15"},
    {"{\"model\":\"a/b\"}{}", "trailing bytes after the object at offset 15"},
    {"{\"model\":\"a/b\",}", "expected string key at offset 15"},
    {"{model:1}", "expected string key at offset 1"},
    {"{\"model\" \"a/b\"}", "expected ':' at offset 9"},
    {"{\"model\":\"a/b\" \"x\":1}", "expected ',' or '}' at offset 15"},
    {"{\"prompt_tokens\":1.5}", "field prompt_tokens is not an integer"},
    {"{\"prompt_tokens\":1e3}", "field prompt_tokens is not an integer"},
    {"{\"prompt_tokens\":0.0}", "field prompt_tokens is not an integer"},
    {"{\"completion_tokens\":\"12\"}",
     "field completion_tokens is not an integer"},
    {"{\"completion_tokens\":true}",
     "field completion_tokens is not an integer"},
    {"{\"prompt_tokens\":9223372036854775808}",
     "integer out of range in field prompt_tokens"},
    {"{\"prompt_tokens\":-9223372036854775809}",
     "integer out of range in field prompt_tokens"},
    {"{\"prompt_tokens\":184467440737095516160}",
     "integer out of range in field prompt_tokens"},
    {"{\"prompt_tokens\":01}", "invalid number in field prompt_tokens"},
    {"{\"prompt_tokens\":-}", "invalid number in field prompt_tokens"},
    {"{\"prompt_tokens\":+1}", "field prompt_tokens is not an integer"},
    {"{\"event_time\":1775044800000.0}", "field event_time is not an integer"},
    {"{\"event_time\":\"2026-13-01T00:00:00Z\"}",
     "event_time is not an RFC 3339 date-time"},
    {"{\"event_time\":\"1775044800000\"}",
     "event_time is not an RFC 3339 date-time"},
    {"{\"event_time\":[]}", "field event_time is not an integer"},
    {"{\"model\":12}", "field model is not a string"},
    {"{\"origin\":{}}", "field origin is not a string"},
    {"{\"provider\":nul}", "field provider is not a string"},
    {"{\"model\":\"a\x01z\"}", "control character in model at offset 11"},
    {"{\"model\":\"a\\t\\n\x1f\"}", "control character in model at offset 15"},
    {"{\"model\":\"a\\qb\"}", "invalid escape in model at offset 11"},
    {"{\"model\":\"\\u12\"}", "invalid \\u escape in model"},
    {"{\"model\":\"\\u12G4\"}", "invalid \\u escape in model"},
    {"{\"model\":\"\\ud800\"}", "unpaired surrogate \\uD800 in model"},
    {"{\"model\":\"\\ud800\\u0041\"}", "unpaired surrogate \\uD800 in model"},
    {"{\"model\":\"\\udc00x\"}", "unpaired surrogate \\uDC00 in model"},
    {"{\"request_id\":\"\xff\"}", "invalid UTF-8 in request_id"},
    {"{\"request_id\":\"abcdefgh\xc3\"}", "invalid UTF-8 in request_id"},
    {"{\"request_id\":\"\xed\xa0\x80\"}", "invalid UTF-8 in request_id"},
    {"{\"request_id\":\"\xc3\\n\"}", "invalid UTF-8 in request_id"},
    {"{\"\xff\":1}", "invalid UTF-8 in key"},
    {"{\"x\":\"\xc0\xaf\"}", "invalid UTF-8 in string"},
    {"{\"model\":\"abc", "unterminated string in model"},
    {"{\"model\":\"abc\\", "unterminated string in model"},
    {"{\"model\":\"abc\\\"}", "unterminated string in model"},
    {"{\"x\":tru}", "invalid value at offset 5"},
    {"{\"x\":-a}", "invalid value at offset 5"},
    {"{\"x\":1.}", "invalid value at offset 5"},
    {"{\"x\":1e}", "invalid value at offset 5"},
    {"{\"x\":{\"a\" 1}}", "expected ':' at offset 10"},
    {"{\"x\":{1:1}}", "expected string key at offset 6"},
    {"{\"x\":[1 2]}", "expected ',' or ']' at offset 8"},
    {"{\"x\":[1,]}", "invalid value at offset 8"},
    {"{\"x\":[", "unexpected end of input"},
};

START_TEST(bad_lines) {
        tt_json_dec *d = tt_json_dec_new();
        char detail[DETAIL], *copy;
        tt_event ev;
        ck_assert_int_eq(decode(d, bad[_i].line, &ev, detail, &copy),
                         TT_REASON_MALFORMED);
        ck_assert_str_eq(detail, bad[_i].detail);
        ck_assert_uint_eq(ev.present, 0);
        free(copy);
        tt_json_dec_destroy(d);
}
END_TEST

/* Invalid UTF-8 in model is bad_model whatever the encoding (SPEC §2):
 * the JSON decoder leaves the model's bytes to tt_event_validate as the
 * Avro decoder does. Before, JSON said malformed and Avro bad_model. */
static const char *const bad_utf8_models[] = {"a/\xff", "a/abcdefgh\xc3",
                                              "a/\xed\xa0\x80", "a/\xc0\xaf"};

START_TEST(model_utf8_is_bad_model) {
        const char *m = bad_utf8_models[_i];
        char line[256], detail[DETAIL], *copy;
        snprintf(
            line, sizeof(line),
            "{\"request_id\":\"r\",\"event_time\":1775044800000,"
            "\"model\":\"%s\",\"prompt_tokens\":1,\"completion_tokens\":2}",
            m);
        tt_json_dec *d = tt_json_dec_new();
        tt_event ev;
        ck_assert_int_eq(decode(d, line, &ev, detail, &copy), TT_REASON_NONE);
        ck_assert_int_eq(tt_event_validate(&ev, detail, sizeof(detail)),
                         TT_REASON_BAD_MODEL);
        ck_assert_str_eq(detail, "model is not valid UTF-8");
        /* The same event in Avro: the same reason. */
        uint8_t buf[512];
        size_t n = tt_avro_encode_event(&ev, buf, sizeof(buf)), used;
        ck_assert_uint_gt(n, 0);
        tt_avro_dec *ad = tt_avro_dec_new(NULL, detail, sizeof(detail));
        tt_event av;
        ck_assert_int_eq(tt_avro_decode_event(ad, buf, n, &used, &av, detail,
                                              sizeof(detail)),
                         TT_REASON_NONE);
        ck_assert_int_eq(tt_event_validate(&av, detail, sizeof(detail)),
                         TT_REASON_BAD_MODEL);
        tt_avro_dec_destroy(ad);
        free(copy);
        tt_json_dec_destroy(d);
}
END_TEST

START_TEST(depth_cap) {
        tt_json_dec *d = tt_json_dec_new();
        char line[512], detail[DETAIL], *copy;
        tt_event ev;
        /* 63 levels under the top-level object are fine, 64 are not. */
        for (int depth = 63; depth <= 64; depth++) {
                size_t n = (size_t)sprintf(line, "{\"x\":");
                for (int k = 0; k < depth; k++)
                        line[n++] = '[';
                for (int k = 0; k < depth; k++)
                        line[n++] = ']';
                strcpy(line + n, "}");
                tt_reason r = decode(d, line, &ev, detail, &copy);
                if (depth == 63) {
                        ck_assert_msg(r == TT_REASON_NONE, "%s", detail);
                } else {
                        ck_assert_int_eq(r, TT_REASON_MALFORMED);
                        ck_assert_str_eq(detail,
                                         "nesting deeper than 64 at offset 68");
                }
                free(copy);
        }
        tt_json_dec_destroy(d);
}
END_TEST

/* Every string length around the 8-byte scan window, with a quote, an
 * escape or a non-ASCII character at every position. */
START_TEST(scan_windows) {
        tt_json_dec *d = tt_json_dec_new();
        char detail[DETAIL], *copy, line[128], want[64], body[64];
        tt_event ev;
        for (int len = 0; len < 24; len++) {
                for (int pos = -1; pos < len; pos++) {
                        for (int kind = 0; kind < 3; kind++) {
                                size_t bn = 0, wn = 0;
                                for (int k = 0; k < len; k++) {
                                        if (k == pos && kind == 0) {
                                                memcpy(body + bn, "\\\"", 2);
                                                bn += 2;
                                                want[wn++] = '"';
                                        } else if (k == pos && kind == 1) {
                                                memcpy(body + bn, "\xc3\xa9",
                                                       2);
                                                bn += 2;
                                                memcpy(want + wn, "\xc3\xa9",
                                                       2);
                                                wn += 2;
                                        } else if (k == pos && kind == 2) {
                                                memcpy(body + bn, "\\u00e9", 6);
                                                bn += 6;
                                                memcpy(want + wn, "\xc3\xa9",
                                                       2);
                                                wn += 2;
                                        } else {
                                                body[bn++] = (char)('a' + k);
                                                want[wn++] = (char)('a' + k);
                                        }
                                }
                                body[bn] = want[wn] = '\0';
                                snprintf(line, sizeof(line),
                                         "{\"model\":\"%s\",\"origin\":\"%s\"}",
                                         body, body);
                                ck_assert_int_eq(
                                    decode(d, line, &ev, detail, &copy),
                                    TT_REASON_NONE);
                                ck_assert(str_eq(ev.model, want));
                                ck_assert(str_eq(ev.origin, want));
                                free(copy);
                        }
                }
        }
        tt_json_dec_destroy(d);
}
END_TEST

static const struct {
        const char *s;
        int rc;
        int64_t ms;
} times[] = {
    {"1970-01-01T00:00:00Z", 0, 0},
    {"2000-01-01T00:00:00Z", 0, INT64_C(946684800000)},
    {"2026-04-01T12:00:00Z", 0, INT64_C(1775044800000)},
    {"2026-04-01T12:00:00.5Z", 0, INT64_C(1775044800500)},
    {"2026-04-01T12:00:00.05Z", 0, INT64_C(1775044800050)},
    {"2026-04-01T12:00:00.123456789Z", 0, INT64_C(1775044800123)},
    {"2026-04-01T14:00:00+02:00", 0, INT64_C(1775044800000)},
    {"2026-04-01T06:30:00-05:30", 0, INT64_C(1775044800000)},
    {"2026-04-02T01:00:00+13:00", 0, INT64_C(1775044800000)},
    {"2026-04-01t12:00:00z", 0, INT64_C(1775044800000)},
    {"2024-02-29T00:00:00Z", 0, INT64_C(1709164800000)},
    {"1969-12-31T23:59:59.999Z", 0, -1},
    {"2100-01-01T00:00:00Z", 0, INT64_C(4102444800000)},
    {"0001-01-01T00:00:00Z", 0, INT64_C(-62135596800000)},
    {"9999-12-31T23:59:59Z", 0, INT64_C(253402300799000)},
    {"2023-02-29T00:00:00Z", -1, 0},
    {"2100-02-29T00:00:00Z", -1, 0},
    {"2026-04-31T00:00:00Z", -1, 0},
    {"2026-00-01T00:00:00Z", -1, 0},
    {"2026-04-00T00:00:00Z", -1, 0},
    {"2026-04-01 12:00:00Z", -1, 0},
    {"2026-04-01T12:00:00", -1, 0},
    {"2026-04-01T24:00:00Z", -1, 0},
    {"2026-04-01T12:60:00Z", -1, 0},
    {"2026-04-01T12:00:61Z", -1, 0},
    {"2026-04-01T12:00:00+2:00", -1, 0},
    {"2026-04-01T12:00:00+02:60", -1, 0},
    {"2026-04-01T12:00:00+0200", -1, 0},
    {"2026-04-01T12:00:00.Z", -1, 0},
    {"2026-04-01T12:00:00Zx", -1, 0},
    {"2026-04-01T12:00:00,5Z", -1, 0},
    {"2026-4-01T12:00:00Z", -1, 0},
    {"+2026-04-01T12:00:00Z", -1, 0},
    {"2026-04-01", -1, 0},
    {"", -1, 0},
};

START_TEST(rfc3339_table) {
        int64_t ms = 42;
        size_t n = strlen(times[_i].s);
        char *copy = malloc(n ? n : 1);
        memcpy(copy, times[_i].s, n);
        int rc = tt_rfc3339_parse(copy, n, &ms);
        ck_assert_msg(rc == times[_i].rc, "%s", times[_i].s);
        if (rc == 0)
                ck_assert_int_eq(ms, times[_i].ms);
        free(copy);
}
END_TEST

START_TEST(encode_escapes_and_omits) {
        tt_event ev = {0};
        ev.request_id = (tt_str){"a\"b\\c\x01\n\x7f\xc3\xa9", 10};
        ev.event_time_ms = INT64_C(1775044800000);
        ev.model = TT_STR_LIT("x/y");
        ev.prompt_tokens = -3;
        ev.completion_tokens = INT64_MAX;
        ev.provider = TT_STR_LIT("p");
        ev.present = TT_F_REQUIRED | TT_F_ORIGIN | TT_F_PROVIDER;
        tt_buf out;
        tt_buf_init(&out, 1 << 16);
        ck_assert_int_eq(tt_json_encode_event(&out, &ev), 0);
        ck_assert_int_eq(tt_buf_putc(&out, '\0'), 0);
        ck_assert_str_eq(
            (char *)out.data,
            "{\"request_id\":\"a\\\"b\\\\c\\u0001\\n\x7f\xc3\xa9\","
            "\"event_time\":1775044800000,\"model\":\"x/y\",\"origin\":null,"
            "\"prompt_tokens\":-3,\"completion_tokens\":9223372036854775807,"
            "\"provider\":\"p\"}");
        /* A field whose bit is clear is left out (missing_field records for
         * the generator). */
        tt_buf_reset(&out);
        ev.present = TT_F_REQUIRED & ~TT_F_MODEL;
        ev.provider = TT_STR_NULL;
        ck_assert_int_eq(tt_json_encode_event(&out, &ev), 0);
        ck_assert_int_eq(tt_buf_putc(&out, '\0'), 0);
        ck_assert_ptr_null(strstr((char *)out.data, "model"));
        ck_assert_ptr_null(strstr((char *)out.data, "origin"));
        ck_assert_ptr_null(strstr((char *)out.data, "provider"));
        ck_assert_ptr_nonnull(strstr((char *)out.data, "\"prompt_tokens\":-3"));
        tt_buf_free(&out);
}
END_TEST

START_TEST(encode_round_trip) {
        tt_json_dec *d = tt_json_dec_new();
        char detail[DETAIL];
        tt_buf out;
        tt_buf_init(&out, 1 << 16);
        for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
                char *copy;
                tt_event ev, back;
                ck_assert_int_eq(decode(d, good[k].line, &ev, detail, &copy),
                                 TT_REASON_NONE);
                tt_buf_reset(&out);
                ck_assert_int_eq(tt_json_encode_event(&out, &ev), 0);
                /* ev points into the first decoder's scratch: use another. */
                tt_json_dec *d2 = tt_json_dec_new();
                ck_assert_int_eq(tt_json_decode_event(d2, (char *)out.data,
                                                      out.len, &back, detail,
                                                      DETAIL),
                                 TT_REASON_NONE);
                ck_assert_uint_eq(back.present, ev.present);
                if (ev.present & TT_F_REQUEST_ID)
                        ck_assert_mem_eq(back.request_id.ptr, ev.request_id.ptr,
                                         ev.request_id.len);
                ck_assert_int_eq(back.event_time_ms, ev.event_time_ms);
                ck_assert_uint_eq(back.model.len, ev.model.len);
                ck_assert_uint_eq(back.origin.len, ev.origin.len);
                ck_assert_int_eq(back.origin.ptr == NULL,
                                 ev.origin.ptr == NULL);
                ck_assert_int_eq(back.prompt_tokens, ev.prompt_tokens);
                ck_assert_int_eq(back.completion_tokens, ev.completion_tokens);
                ck_assert_int_eq(back.provider.ptr == NULL,
                                 ev.provider.ptr == NULL);
                if (ev.provider.ptr)
                        ck_assert_mem_eq(back.provider.ptr, ev.provider.ptr,
                                         ev.provider.len);
                tt_json_dec_destroy(d2);
                free(copy);
        }
        tt_buf_free(&out);
        tt_json_dec_destroy(d);
}
END_TEST

START_TEST(no_allocation_per_line) {
        tt_json_dec *d = tt_json_dec_new();
        char detail[DETAIL];
        tt_event ev;
        const char *line = good[3].line; /* has escapes: uses the scratch */
        ck_assert_int_eq(
            tt_json_decode_event(d, line, strlen(line), &ev, detail, DETAIL),
            TT_REASON_NONE);
        unsigned long before = tt_mem_allocs();
        for (int k = 0; k < 1000; k++)
                ck_assert_int_eq(tt_json_decode_event(d, line, strlen(line),
                                                      &ev, detail, DETAIL),
                                 TT_REASON_NONE);
        ck_assert_uint_eq(tt_mem_allocs(), before);
        tt_json_dec_destroy(d);
}
END_TEST

/* A line over the 1 MiB scratch cap with escapes is refused, not grown. */
START_TEST(scratch_cap) {
        tt_json_dec *d = tt_json_dec_new();
        size_t n = (1u << 20) + 64;
        char *line = malloc(n + 32), detail[DETAIL];
        size_t k = (size_t)sprintf(line, "{\"model\":\"");
        while (k < n)
                line[k++] = 'x';
        memcpy(line + k, "\\n\"}", 4);
        k += 4;
        tt_event ev;
        ck_assert_int_eq(tt_json_decode_event(d, line, k, &ev, detail, DETAIL),
                         TT_REASON_MALFORMED);
        ck_assert_str_eq(detail, "escaped strings over 1048576 bytes in one "
                                 "line");
        /* Without escapes the same size is fine: nothing is copied. */
        line[k - 4] = '"';
        line[k - 3] = '}';
        ck_assert_int_eq(
            tt_json_decode_event(d, line, k - 2, &ev, detail, DETAIL),
            TT_REASON_NONE);
        ck_assert_uint_eq(ev.model.len, n - 10);
        free(line);
        tt_json_dec_destroy(d);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("json_event");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 20);
        tcase_add_loop_test(tc, good_lines, 0, sizeof(good) / sizeof(good[0]));
        tcase_add_loop_test(tc, bad_lines, 0, sizeof(bad) / sizeof(bad[0]));
        tcase_add_test(tc, depth_cap);
        tcase_add_loop_test(tc, model_utf8_is_bad_model, 0,
                            sizeof(bad_utf8_models) /
                                sizeof(bad_utf8_models[0]));
        tcase_add_test(tc, scan_windows);
        tcase_add_loop_test(tc, rfc3339_table, 0,
                            sizeof(times) / sizeof(times[0]));
        tcase_add_test(tc, encode_escapes_and_omits);
        tcase_add_test(tc, encode_round_trip);
        tcase_add_test(tc, no_allocation_per_line);
        tcase_add_test(tc, scratch_cap);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(suite());
}
