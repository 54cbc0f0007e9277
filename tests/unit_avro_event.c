/* Avro TokenEvent codec: primitives, bundled-schema round trips, every way a
 * record can be malformed, writer-schema resolution, and bytes written by an
 * independent encoder (python3-avro) decoded by ours. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "tokentally/avro_event.h"
#include "tokentally/mem.h"

#define DETAIL 160

static bool str_eq(tt_str s, const char *want) {
        if (!want)
                return s.ptr == NULL;
        return s.ptr && s.len == strlen(want) &&
               memcmp(s.ptr, want, s.len) == 0;
}

static tt_str S(const char *s) {
        return s ? (tt_str){s, strlen(s)} : TT_STR_NULL;
}

/* ---- primitives -------------------------------------------------------- */

static const struct {
        int64_t v;
        const char *hex;
} long_cases[] = {
    {0, "00"},
    {-1, "01"},
    {1, "02"},
    {63, "7e"},
    {-64, "7f"},
    {64, "8001"},
    {-65, "8101"},
    {8191, "fe7f"},
    {INT64_MAX, "feffffffffffffffff01"},
    {INT64_MIN, "ffffffffffffffffff01"},
};

static void hex_of(const uint8_t *p, size_t n, char *out) {
        for (size_t k = 0; k < n; k++)
                sprintf(out + 2 * k, "%02x", p[k]);
        out[2 * n] = '\0';
}

START_TEST(put_long_table) {
        uint8_t b[16];
        char hex[40];
        size_t n = tt_avro_put_long(b, sizeof(b), long_cases[_i].v);
        hex_of(b, n, hex);
        ck_assert_str_eq(hex, long_cases[_i].hex);
        /* One byte short of room is refused, not truncated. */
        ck_assert_uint_eq(tt_avro_put_long(b, n - 1, long_cases[_i].v), 0);
}
END_TEST

START_TEST(put_bytes_and_double) {
        uint8_t b[16];
        char hex[40];
        size_t n = tt_avro_put_bytes(b, sizeof(b), "abc", 3);
        hex_of(b, n, hex);
        ck_assert_str_eq(hex, "06616263");
        ck_assert_uint_eq(tt_avro_put_bytes(b, 3, "abc", 3), 0);
        n = tt_avro_put_double(b, sizeof(b), 1.0);
        hex_of(b, n, hex);
        ck_assert_str_eq(hex, "000000000000f03f");
        n = tt_avro_put_double(b, sizeof(b), -2.5);
        hex_of(b, n, hex);
        ck_assert_str_eq(hex, "00000000000004c0");
        ck_assert_uint_eq(tt_avro_put_double(b, 7, 1.0), 0);
}
END_TEST

/* ---- round trips with the bundled schema ------------------------------- */

static const struct {
        const char *request_id;
        int64_t time;
        const char *model;
        const char *origin;
        int64_t prompt, completion;
        const char *provider;
} events[] = {
    {"req-1", INT64_C(1775044800000), "deepseek/deepseek-chat-v3", NULL, 1200,
     350, NULL},
    {"req-2", INT64_C(1775044800123), "openai/gpt-4o", "US", 0, 0, "azure"},
    {"", 0, "", "", -1, -2, ""},
    {"r\xc3\xa9q", INT64_MAX, "qwen/qwen3", "CN", INT64_MAX, INT64_MIN,
     "alibaba"},
    {"x", INT64_MIN, "a/b", NULL, 63, 64, "p"},
};

static tt_event make_event(int i) {
        tt_event ev = {0};
        ev.request_id = S(events[i].request_id);
        ev.event_time_ms = events[i].time;
        ev.model = S(events[i].model);
        ev.origin = S(events[i].origin);
        ev.prompt_tokens = events[i].prompt;
        ev.completion_tokens = events[i].completion;
        ev.provider = S(events[i].provider);
        return ev;
}

static void assert_event(const tt_event *ev, int i) {
        ck_assert(str_eq(ev->request_id, events[i].request_id));
        ck_assert_int_eq(ev->event_time_ms, events[i].time);
        ck_assert(str_eq(ev->model, events[i].model));
        ck_assert(str_eq(ev->origin, events[i].origin));
        ck_assert_int_eq(ev->prompt_tokens, events[i].prompt);
        ck_assert_int_eq(ev->completion_tokens, events[i].completion);
        ck_assert(str_eq(ev->provider, events[i].provider));
}

START_TEST(round_trip) {
        char err[DETAIL], detail[DETAIL];
        /* NULL and the bundled JSON must behave the same. */
        tt_avro_dec *decs[2] = {
            tt_avro_dec_new(NULL, err, sizeof(err)),
            tt_avro_dec_new(tt_token_event_schema_json, err, sizeof(err))};
        ck_assert_ptr_nonnull(decs[0]);
        ck_assert_ptr_nonnull(decs[1]);
        tt_event in = make_event(_i);
        uint8_t buf[256];
        size_t n = tt_avro_encode_event(&in, buf, sizeof(buf));
        ck_assert_uint_gt(n, 0);
        for (int d = 0; d < 2; d++) {
                tt_event out;
                size_t used = 99;
                /* Trailing bytes belong to the next record, not this one. */
                buf[n] = 0x55;
                ck_assert_int_eq(tt_avro_decode_event(decs[d], buf, n + 1,
                                                      &used, &out, detail,
                                                      sizeof(detail)),
                                 TT_REASON_NONE);
                ck_assert_uint_eq(used, n);
                assert_event(&out, _i);
                ck_assert_uint_eq(out.present,
                                  TT_F_REQUIRED | TT_F_ORIGIN | TT_F_PROVIDER);
        }
        /* Too small a buffer: 0, never a partial record. */
        for (size_t cap = 0; cap < n; cap++)
                ck_assert_uint_eq(tt_avro_encode_event(&in, buf, cap), 0);
        tt_avro_dec_destroy(decs[0]);
        tt_avro_dec_destroy(decs[1]);
}
END_TEST

/* Truncating a record anywhere must name the field it was cut in. */
START_TEST(truncated_everywhere) {
        char err[DETAIL], detail[DETAIL], want[DETAIL];
        tt_avro_dec *dec = tt_avro_dec_new(NULL, err, sizeof(err));
        tt_event in = make_event(_i);
        uint8_t buf[256];
        /* Field end offsets, from encoding growing prefixes by hand. */
        static const char *const names[] = {
            "request_id",    "event_time",        "model",   "origin",
            "prompt_tokens", "completion_tokens", "provider"};
        size_t ends[7], n = 0;
        n += tt_avro_put_bytes(buf + n, sizeof(buf) - n, in.request_id.ptr,
                               in.request_id.len);
        ends[0] = n;
        n += tt_avro_put_long(buf + n, sizeof(buf) - n, in.event_time_ms);
        ends[1] = n;
        n += tt_avro_put_bytes(buf + n, sizeof(buf) - n, in.model.ptr,
                               in.model.len);
        ends[2] = n;
        n += tt_avro_put_long(buf + n, sizeof(buf) - n, in.origin.ptr ? 1 : 0);
        if (in.origin.ptr)
                n += tt_avro_put_bytes(buf + n, sizeof(buf) - n, in.origin.ptr,
                                       in.origin.len);
        ends[3] = n;
        n += tt_avro_put_long(buf + n, sizeof(buf) - n, in.prompt_tokens);
        ends[4] = n;
        n += tt_avro_put_long(buf + n, sizeof(buf) - n, in.completion_tokens);
        ends[5] = n;
        n +=
            tt_avro_put_long(buf + n, sizeof(buf) - n, in.provider.ptr ? 1 : 0);
        if (in.provider.ptr)
                n += tt_avro_put_bytes(buf + n, sizeof(buf) - n,
                                       in.provider.ptr, in.provider.len);
        ends[6] = n;
        uint8_t ref[256];
        ck_assert_uint_eq(tt_avro_encode_event(&in, ref, sizeof(ref)), n);
        ck_assert_mem_eq(ref, buf, n);
        for (size_t cut = 0; cut < n; cut++) {
                /* A heap copy of exactly cut bytes, so ASan sees overreads. */
                uint8_t *p = malloc(cut ? cut : 1);
                memcpy(p, buf, cut);
                tt_event out;
                size_t used = 7;
                ck_assert_int_eq(tt_avro_decode_event(dec, p, cut, &used, &out,
                                                      detail, sizeof(detail)),
                                 TT_REASON_MALFORMED);
                ck_assert_uint_eq(used, 0);
                ck_assert_uint_eq(out.present, 0);
                int f = 0;
                while (cut >= ends[f])
                        f++;
                snprintf(want, sizeof(want), "truncated in field %s", names[f]);
                ck_assert_str_eq(detail, want);
                free(p);
        }
        tt_avro_dec_destroy(dec);
}
END_TEST

/* Hand-made bad records for the bundled schema. */
static const struct {
        const char *hex;
        const char *detail;
} bad_records[] = {
    /* origin union index 5 (zig-zag 0x0a) */
    {"026100066f2f6d0a", "union index 5 out of range in field origin"},
    /* provider union index -1 */
    {"026100066f2f6d00000001", "union index -1 out of range in field "
                               "provider"},
    /* request_id length -3 */
    {"05616263", "negative length -3 in field request_id"},
    /* event_time: 11-byte varint */
    {"0261ffffffffffffffffffff01", "bad varint (over 10 bytes) in field "
                                   "event_time"},
    /* event_time: 10th byte carries more than bit 63 */
    {"0261ffffffffffffffffff02", "bad varint (over 10 bytes) in field "
                                 "event_time"},
    /* model length 100 with 3 bytes left */
    {"026100c801616263", "truncated in field model"},
    /* prompt_tokens varint cut short */
    {"026100066f2f6d0080", "truncated in field prompt_tokens"},
};

static size_t unhex(const char *hex, uint8_t *out) {
        size_t n = strlen(hex) / 2;
        for (size_t k = 0; k < n; k++) {
                unsigned v;
                sscanf(hex + 2 * k, "%2x", &v);
                out[k] = (uint8_t)v;
        }
        return n;
}

START_TEST(bad_record_table) {
        char err[DETAIL], detail[DETAIL];
        tt_avro_dec *dec = tt_avro_dec_new(NULL, err, sizeof(err));
        uint8_t buf[64];
        size_t n = unhex(bad_records[_i].hex, buf);
        tt_event ev;
        size_t used;
        ck_assert_int_eq(tt_avro_decode_event(dec, buf, n, &used, &ev, detail,
                                              sizeof(detail)),
                         TT_REASON_MALFORMED);
        ck_assert_str_eq(detail, bad_records[_i].detail);
        ck_assert_uint_eq(used, 0);
        tt_avro_dec_destroy(dec);
}
END_TEST

START_TEST(no_allocation_per_record) {
        char err[DETAIL], detail[DETAIL];
        tt_avro_dec *dec = tt_avro_dec_new(NULL, err, sizeof(err));
        tt_event in = make_event(1), out;
        uint8_t buf[256];
        size_t n = tt_avro_encode_event(&in, buf, sizeof(buf)), used;
        unsigned long before = tt_mem_allocs();
        for (int k = 0; k < 1000; k++)
                ck_assert_int_eq(tt_avro_decode_event(dec, buf, n, &used, &out,
                                                      detail, sizeof(detail)),
                                 TT_REASON_NONE);
        ck_assert_uint_eq(tt_mem_allocs(), before);
        tt_avro_dec_destroy(dec);
}
END_TEST

/* ---- writer schemas ---------------------------------------------------- */

/* Fields reordered, an unknown field of every Avro type, int event_time,
 * plain string provider, origin with the branches the other way round. */
static const char variant_schema[] =
    "{\"type\":\"record\",\"name\":\"TokenEvent\",\"namespace\":\"x\","
    "\"fields\":["
    "{\"name\":\"model\",\"type\":\"string\"},"
    "{\"name\":\"extra\",\"type\":{\"type\":\"record\",\"name\":\"Extra\","
    "\"fields\":["
    "{\"name\":\"b\",\"type\":\"boolean\"},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"by\",\"type\":\"bytes\"},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"Fx\","
    "\"size\":3}},"
    "{\"name\":\"fx2\",\"type\":\"Fx\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"symbols\":[\"A\",\"B\",\"C\"]}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":[\"null\","
    "\"string\"]}},"
    "{\"name\":\"n\",\"type\":\"null\"},"
    "{\"name\":\"u\",\"type\":[\"int\",\"string\",\"Fx\"]}]}},"
    "{\"name\":\"event_time\",\"type\":\"int\"},"
    "{\"name\":\"request_id\",\"type\":\"string\"},"
    "{\"name\":\"provider\",\"type\":\"string\"},"
    "{\"name\":\"completion_tokens\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"prompt_tokens\",\"type\":\"int\"},"
    "{\"name\":\"origin\",\"type\":[\"string\",\"null\"]}]}";

/* No model at all; a recursive list as an unknown field. */
static const char no_model_schema[] =
    "{\"type\":\"record\",\"name\":\"TokenEvent\",\"fields\":["
    "{\"name\":\"request_id\",\"type\":\"string\"},"
    "{\"name\":\"chain\",\"type\":{\"type\":\"record\",\"name\":\"Node\","
    "\"fields\":[{\"name\":\"v\",\"type\":\"int\"},"
    "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}},"
    "{\"name\":\"event_time\",\"type\":\"long\"},"
    "{\"name\":\"prompt_tokens\",\"type\":\"long\"},"
    "{\"name\":\"completion_tokens\",\"type\":\"long\"}]}";

/* Runs python3-avro (an encoder independent of ours) over a script and
 * returns its stdout lines of hex, one record each. */
static int python_records(const char *script, char lines[][1024], int max) {
        char path[] = "/tmp/tt_avro_py_XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        FILE *f = fdopen(fd, "w");
        fputs(script, f);
        fclose(f);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s", path);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        int n = 0;
        while (n < max && fgets(lines[n], 1024, p)) {
                lines[n][strcspn(lines[n], "\n")] = '\0';
                n++;
        }
        ck_assert_int_eq(pclose(p), 0);
        unlink(path);
        return n;
}

static const char py_prelude[] =
    "import io, json, sys, datetime\n"
    "import avro.schema, avro.io\n"
    "EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)\n"
    "def ts(ms): return EPOCH + datetime.timedelta(milliseconds=ms)\n"
    "def enc(schema, rec):\n"
    "    b = io.BytesIO()\n"
    "    avro.io.DatumWriter(schema).write(rec, avro.io.BinaryEncoder(b))\n"
    "    print(b.getvalue().hex())\n";

START_TEST(python_bundled) {
        char script[8192];
        snprintf(script, sizeof(script),
                 "%s"
                 "s = avro.schema.parse(r'''%s''')\n"
                 "enc(s, {'request_id': 'req-1', 'event_time': "
                 "ts(1775044800000), 'model': 'deepseek/deepseek-chat-v3', "
                 "'origin': None, 'prompt_tokens': 1200, "
                 "'completion_tokens': 350, 'provider': None})\n"
                 "enc(s, {'request_id': 'r\\u00e9q', 'event_time': "
                 "ts(946684800001), 'model': 'openai/gpt-4o', "
                 "'origin': 'US', 'prompt_tokens': 9223372036854775807, "
                 "'completion_tokens': -9223372036854775808, "
                 "'provider': 'azure'})\n",
                 py_prelude, tt_token_event_schema_json);
        char lines[4][1024];
        ck_assert_int_eq(python_records(script, lines, 4), 2);
        char err[DETAIL], detail[DETAIL];
        tt_avro_dec *dec = tt_avro_dec_new(NULL, err, sizeof(err));
        uint8_t buf[512];
        tt_event ev;
        size_t used, n = unhex(lines[0], buf);
        ck_assert_int_eq(tt_avro_decode_event(dec, buf, n, &used, &ev, detail,
                                              sizeof(detail)),
                         TT_REASON_NONE);
        ck_assert_uint_eq(used, n);
        assert_event(&ev, 0);
        n = unhex(lines[1], buf);
        ck_assert_int_eq(tt_avro_decode_event(dec, buf, n, &used, &ev, detail,
                                              sizeof(detail)),
                         TT_REASON_NONE);
        ck_assert(str_eq(ev.request_id, "r\xc3\xa9q"));
        ck_assert_int_eq(ev.event_time_ms, INT64_C(946684800001));
        ck_assert(str_eq(ev.model, "openai/gpt-4o"));
        ck_assert(str_eq(ev.origin, "US"));
        ck_assert_int_eq(ev.prompt_tokens, INT64_MAX);
        ck_assert_int_eq(ev.completion_tokens, INT64_MIN);
        ck_assert(str_eq(ev.provider, "azure"));
        /* Our encoder must produce python's bytes exactly. */
        uint8_t mine[512];
        ck_assert_uint_eq(tt_avro_encode_event(&ev, mine, sizeof(mine)), n);
        ck_assert_mem_eq(mine, buf, n);
        tt_avro_dec_destroy(dec);
}
END_TEST

START_TEST(python_variant_schema) {
        char script[8192];
        snprintf(script, sizeof(script),
                 "%s"
                 "s = avro.schema.parse(json.dumps(json.loads(r'''%s''')))\n"
                 "ex = {'b': True, 'f': 1.5, 'd': -2.25, 'by': b'\\x00\\xff', "
                 "'fx': b'abc', 'fx2': b'xyz', 'e': 'C', 'a': [1, -2, 300], "
                 "'m': {'k1': None, 'k2': 'v'}, 'n': None, 'u': b'fix'}\n"
                 "enc(s, {'model': 'mistralai/mistral-large', 'extra': ex, "
                 "'event_time': 2147483647, 'request_id': 'v-1', "
                 "'provider': 'mistral', 'completion_tokens': 77, "
                 "'prompt_tokens': -5, 'origin': 'FR'})\n"
                 "ex['a'] = []; ex['m'] = {}; ex['u'] = 'str'\n"
                 "enc(s, {'model': 'm/x', 'extra': ex, "
                 "'event_time': -2147483648, 'request_id': '', "
                 "'provider': '', 'completion_tokens': None, "
                 "'prompt_tokens': 0, 'origin': None})\n",
                 py_prelude, variant_schema);
        char lines[4][1024];
        ck_assert_int_eq(python_records(script, lines, 4), 2);
        char err[DETAIL], detail[DETAIL];
        tt_avro_dec *dec = tt_avro_dec_new(variant_schema, err, sizeof(err));
        ck_assert_msg(dec != NULL, "%s", err);
        uint8_t buf[512];
        tt_event ev;
        size_t used, n = unhex(lines[0], buf);
        ck_assert_int_eq(tt_avro_decode_event(dec, buf, n, &used, &ev, detail,
                                              sizeof(detail)),
                         TT_REASON_NONE);
        ck_assert_uint_eq(used, n);
        ck_assert(str_eq(ev.request_id, "v-1"));
        ck_assert_int_eq(ev.event_time_ms, 2147483647);
        ck_assert(str_eq(ev.model, "mistralai/mistral-large"));
        ck_assert(str_eq(ev.origin, "FR"));
        ck_assert_int_eq(ev.prompt_tokens, -5);
        ck_assert_int_eq(ev.completion_tokens, 77);
        ck_assert(str_eq(ev.provider, "mistral"));
        ck_assert_uint_eq(ev.present,
                          TT_F_REQUIRED | TT_F_ORIGIN | TT_F_PROVIDER);

        n = unhex(lines[1], buf);
        ck_assert_int_eq(tt_avro_decode_event(dec, buf, n, &used, &ev, detail,
                                              sizeof(detail)),
                         TT_REASON_NONE);
        ck_assert_uint_eq(used, n);
        ck_assert(str_eq(ev.request_id, ""));
        ck_assert_int_eq(ev.event_time_ms, INT32_MIN);
        ck_assert(str_eq(ev.origin, NULL));
        ck_assert(str_eq(ev.provider, ""));
        /* The null branch of a union for a plain reader field: absent. */
        ck_assert_uint_eq(ev.present, (TT_F_REQUIRED & ~TT_F_COMPLETION) |
                                          TT_F_ORIGIN | TT_F_PROVIDER);
        /* Truncated anywhere: malformed, never a crash or overread. */
        for (size_t cut = 0; cut < n; cut++) {
                uint8_t *p = malloc(cut ? cut : 1);
                memcpy(p, buf, cut);
                ck_assert_int_eq(tt_avro_decode_event(dec, p, cut, &used, &ev,
                                                      detail, sizeof(detail)),
                                 TT_REASON_MALFORMED);
                ck_assert_msg(strncmp(detail, "truncated in field ", 19) == 0,
                              "%zu: %s", cut, detail);
                free(p);
        }
        tt_avro_dec_destroy(dec);
}
END_TEST

START_TEST(python_missing_model_and_recursion) {
        char script[8192];
        snprintf(script, sizeof(script),
                 "%s"
                 "s = avro.schema.parse(r'''%s''')\n"
                 "def chain(k):\n"
                 "    node = None\n"
                 "    for v in range(k): node = {'v': v, 'next': node}\n"
                 "    return node\n"
                 "enc(s, {'request_id': 'nm', 'chain': chain(5), "
                 "'event_time': 1775044800000, 'prompt_tokens': 1, "
                 "'completion_tokens': 2})\n"
                 "enc(s, {'request_id': 'deep', 'chain': chain(100), "
                 "'event_time': 1, 'prompt_tokens': 1, "
                 "'completion_tokens': 2})\n",
                 py_prelude, no_model_schema);
        char lines[4][1024];
        ck_assert_int_eq(python_records(script, lines, 4), 2);
        char err[DETAIL], detail[DETAIL];
        tt_avro_dec *dec = tt_avro_dec_new(no_model_schema, err, sizeof(err));
        ck_assert_msg(dec != NULL, "%s", err);
        uint8_t buf[1024];
        tt_event ev;
        size_t used, n = unhex(lines[0], buf);
        ck_assert_int_eq(tt_avro_decode_event(dec, buf, n, &used, &ev, detail,
                                              sizeof(detail)),
                         TT_REASON_NONE);
        ck_assert_uint_eq(used, n);
        ck_assert(str_eq(ev.request_id, "nm"));
        ck_assert_int_eq(ev.event_time_ms, INT64_C(1775044800000));
        ck_assert_int_eq(ev.prompt_tokens, 1);
        ck_assert_int_eq(ev.completion_tokens, 2);
        ck_assert_uint_eq(ev.present, TT_F_REQUIRED & ~TT_F_MODEL);
        ck_assert_ptr_null(ev.model.ptr);
        /* A 100-deep recursive value is refused at the depth cap. */
        n = unhex(lines[1], buf);
        ck_assert_int_eq(tt_avro_decode_event(dec, buf, n, &used, &ev, detail,
                                              sizeof(detail)),
                         TT_REASON_MALFORMED);
        ck_assert_str_eq(detail, "nesting deeper than 64 in field chain");
        tt_avro_dec_destroy(dec);
}
END_TEST

/* Hand-encoded records against writer schemas with odd unions and ints. */
START_TEST(resolution_edge_cases) {
        static const char schema[] =
            "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
            "{\"name\":\"model\",\"type\":[\"null\",\"int\",\"string\"]},"
            "{\"name\":\"event_time\",\"type\":\"int\"},"
            "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
            "\"symbols\":[\"A\",\"B\"]}}]}";
        static const struct {
                const char *hex;
                const char *detail; /* NULL: decodes */
                uint32_t present;
        } cases[] = {
            {"00"
             "02"
             "02",
             NULL, TT_F_EVENT_TIME},
            {"04"
             "06612f62"
             "02"
             "00",
             NULL, TT_F_EVENT_TIME | TT_F_MODEL},
            {"02"
             "02"
             "02"
             "00",
             "union branch of field model does not resolve to TokenEvent's "
             "type",
             0},
            {"00"
             "8080808010"
             "00",
             "int value 2147483648 out of range in field event_time", 0},
            {"00"
             "02"
             "04",
             "enum index 2 out of range in field e", 0},
            {"06", "union index 3 out of range in field model", 0},
        };
        char err[DETAIL], detail[DETAIL];
        tt_avro_dec *dec = tt_avro_dec_new(schema, err, sizeof(err));
        ck_assert_msg(dec != NULL, "%s", err);
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                uint8_t buf[64];
                size_t n = unhex(cases[k].hex, buf), used;
                tt_event ev;
                tt_reason r = tt_avro_decode_event(dec, buf, n, &used, &ev,
                                                   detail, sizeof(detail));
                if (!cases[k].detail) {
                        ck_assert_msg(r == TT_REASON_NONE, "%zu: %s", k,
                                      detail);
                        ck_assert_uint_eq(used, n);
                        ck_assert_uint_eq(ev.present, cases[k].present);
                } else {
                        ck_assert_int_eq(r, TT_REASON_MALFORMED);
                        ck_assert_str_eq(detail, cases[k].detail);
                }
        }
        uint8_t ok[] = {0x04, 0x06, 'a', '/', 'b', 0x02, 0x00};
        size_t used;
        tt_event ev;
        ck_assert_int_eq(tt_avro_decode_event(dec, ok, sizeof(ok), &used, &ev,
                                              detail, sizeof(detail)),
                         TT_REASON_NONE);
        ck_assert(str_eq(ev.model, "a/b"));
        ck_assert_int_eq(ev.event_time_ms, 1);
        tt_avro_dec_destroy(dec);
}
END_TEST

static const struct {
        const char *schema;
        const char *err;
} bad_schemas[] = {
    {"\"string\"", "writer schema is a string, not a record"},
    {"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"model\","
     "\"type\":\"int\"}]}",
     "field model: writer type int does not resolve to TokenEvent's"},
    {"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":"
     "\"prompt_tokens\",\"type\":\"double\"}]}",
     "field prompt_tokens: writer type double does not resolve to "
     "TokenEvent's"},
    {"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":"
     "\"request_id\",\"type\":\"null\"}]}",
     "field request_id: writer type null does not resolve to TokenEvent's"},
    {"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"model\","
     "\"type\":[\"int\",\"boolean\"]}]}",
     "field model: no branch of the writer union resolves to TokenEvent's "
     "type"},
    {"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"model\","
     "\"type\":\"string\"},{\"name\":\"model\",\"type\":\"string\"}]}",
     "field model appears twice in the writer schema"},
};

START_TEST(bad_schema_table) {
        char err[DETAIL];
        ck_assert_ptr_null(
            tt_avro_dec_new(bad_schemas[_i].schema, err, sizeof(err)));
        ck_assert_str_eq(err, bad_schemas[_i].err);
}
END_TEST

START_TEST(unparsable_schema) {
        char err[DETAIL];
        ck_assert_ptr_null(tt_avro_dec_new("{nope", err, sizeof(err)));
        ck_assert_msg(strncmp(err, "cannot parse writer schema: ", 28) == 0,
                      "%s", err);
}
END_TEST

/* A record that contains itself through a union; nested copies are only
 * skipped, the top level still decodes. */
START_TEST(self_recursive_top_level) {
        static const char schema[] =
            "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
            "{\"name\":\"model\",\"type\":\"string\"},"
            "{\"name\":\"parent\",\"type\":[\"null\",\"T\"]}]}";
        char err[DETAIL], detail[DETAIL];
        tt_avro_dec *dec = tt_avro_dec_new(schema, err, sizeof(err));
        ck_assert_msg(dec != NULL, "%s", err);
        /* model "a/b", parent = T{model "c", parent null} */
        uint8_t buf[] = {0x06, 'a', '/', 'b', 0x02, 0x02, 'c', 0x00};
        tt_event ev;
        size_t used;
        ck_assert_int_eq(tt_avro_decode_event(dec, buf, sizeof(buf), &used, &ev,
                                              detail, sizeof(detail)),
                         TT_REASON_NONE);
        ck_assert_uint_eq(used, sizeof(buf));
        ck_assert(str_eq(ev.model, "a/b"));
        ck_assert_uint_eq(ev.present, TT_F_MODEL);
        tt_avro_dec_destroy(dec);
}
END_TEST

/* Arrays and maps in their block-size form, and a huge count with nothing
 * behind it (must fail fast, not loop). */
START_TEST(array_blocks) {
        static const char schema[] =
            "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
            "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"int\"}},"
            "{\"name\":\"z\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
            "{\"name\":\"model\",\"type\":\"string\"}]}";
        char err[DETAIL], detail[DETAIL];
        tt_avro_dec *dec = tt_avro_dec_new(schema, err, sizeof(err));
        ck_assert_msg(dec != NULL, "%s", err);
        /* a: block of -2 items, 2 bytes; then 0. z: 2^40 nulls; model. */
        uint8_t ok[] = {0x03, 0x04, 0x02, 0x04, 0x00, 0x80, 0x80,
                        0x80, 0x80, 0x80, 0x40, 0x00, 0x02, 'x'};
        tt_event ev;
        size_t used;
        ck_assert_int_eq(tt_avro_decode_event(dec, ok, sizeof(ok), &used, &ev,
                                              detail, sizeof(detail)),
                         TT_REASON_NONE);
        ck_assert(str_eq(ev.model, "x"));
        uint8_t huge[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x02};
        ck_assert_int_eq(tt_avro_decode_event(dec, huge, sizeof(huge), &used,
                                              &ev, detail, sizeof(detail)),
                         TT_REASON_MALFORMED);
        ck_assert_str_eq(detail, "truncated in field a");
        uint8_t negsize[] = {0x03, 0x03};
        ck_assert_int_eq(tt_avro_decode_event(dec, negsize, sizeof(negsize),
                                              &used, &ev, detail,
                                              sizeof(detail)),
                         TT_REASON_MALFORMED);
        ck_assert_str_eq(detail, "negative length -2 in field a");
        tt_avro_dec_destroy(dec);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("avro_event");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 20);
        tcase_add_loop_test(tc, put_long_table, 0,
                            sizeof(long_cases) / sizeof(long_cases[0]));
        tcase_add_test(tc, put_bytes_and_double);
        tcase_add_loop_test(tc, round_trip, 0,
                            sizeof(events) / sizeof(events[0]));
        tcase_add_loop_test(tc, truncated_everywhere, 0,
                            sizeof(events) / sizeof(events[0]));
        tcase_add_loop_test(tc, bad_record_table, 0,
                            sizeof(bad_records) / sizeof(bad_records[0]));
        tcase_add_test(tc, no_allocation_per_record);
        tcase_add_test(tc, python_bundled);
        tcase_add_test(tc, python_variant_schema);
        tcase_add_test(tc, python_missing_model_and_recursion);
        tcase_add_test(tc, resolution_edge_cases);
        tcase_add_loop_test(tc, bad_schema_table, 0,
                            sizeof(bad_schemas) / sizeof(bad_schemas[0]));
        tcase_add_test(tc, unparsable_schema);
        tcase_add_test(tc, self_recursive_top_level);
        tcase_add_test(tc, array_blocks);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(suite());
}
