/* The Kafka output adapter on librdkafka's mock cluster: rollups, streaks
 * and dead letters read back by a plain consumer with their exact keys,
 * values and headers; every Avro value decoded by an independent decoder
 * (python3-avro) and every JSON value by Python's json; delivery failures
 * that stay reported; backpressure and concurrent producers that lose
 * nothing; and no allocation per record once warm. */
#include <check.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tokentally/err.h"
#include "tokentally/framing.h"
#include "tokentally/json_out.h"
#include "tokentally/kafka_out.h"
#include "tokentally/mem.h"

#define S(lit) ((tt_str){(lit), sizeof(lit) - 1})
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* The Produce request's API key (Kafka protocol), for error injection. */
#define API_PRODUCE 0

/* ---- records ----------------------------------------------------------- */

/* Every union of both schemas appears once as null and once set. */
static const tt_rollup rollups[] = {
    {.week = "2026-W14",
     .week_start_ms = INT64_C(1774828800000),
     .dimension = TT_DIM_TOTAL,
     .key = S("*"),
     .origin = {NULL, 0},
     .tokens = INT64_C(2700000000),
     .prompt_tokens = INT64_C(2600000000),
     .completion_tokens = INT64_C(100000000),
     .requests = 90000,
     .share_pct = 100.0,
     .rank = 1,
     .status = TT_STATUS_FINAL,
     .emitted_at_ms = INT64_C(1775436000123)},
    {.week = "2026-W14",
     .week_start_ms = INT64_C(1774828800000),
     .dimension = TT_DIM_MODEL,
     .key = S("deepseek/deepseek-chat-v3"),
     .origin = S("CN"),
     .tokens = 512,
     .prompt_tokens = 500,
     .completion_tokens = 12,
     .requests = 3,
     .has_prev = true,
     .prev_tokens = 389,
     .has_growth = true,
     .wow_growth_pct = 31.619537275064268,
     .share_pct = 0.1 + 0.2,
     .rank = 12345,
     .status = TT_STATUS_REVISED,
     .revision = 2,
     .emitted_at_ms = INT64_C(1775436000999)},
    {.week = "2026-W13",
     .week_start_ms = INT64_C(1774224000000),
     .dimension = TT_DIM_ORIGIN,
     .key = S("US"),
     .origin = {NULL, 0},
     .tokens = 0,
     .prompt_tokens = 0,
     .completion_tokens = 0,
     .requests = 0,
     .has_prev = true,
     .prev_tokens = 0,
     .has_growth = false,
     .share_pct = 0.0,
     .rank = 2,
     .status = TT_STATUS_PROVISIONAL,
     .emitted_at_ms = INT64_C(1774300000000)},
    {.week = "2026-W53",
     .week_start_ms = INT64_C(1798416000000),
     .dimension = TT_DIM_MODEL,
     .key = S("mistralai/mistral-m\xc3\xa9\xe2\x82\xac"),
     .origin = S(""),
     .tokens = INT64_MAX,
     .prompt_tokens = INT64_MIN,
     .completion_tokens = -1,
     .requests = 64,
     .has_prev = true,
     .prev_tokens = INT64_MAX,
     .has_growth = true,
     .wow_growth_pct = -100.0,
     .share_pct = 5e-324,
     .rank = INT32_MAX,
     .status = TT_STATUS_FINAL,
     .revision = INT32_MIN,
     .emitted_at_ms = 0},
};

static const tt_streak_change streaks[] = {
    {.rule = S("leader:origin:CN,US"),
     .week = "2026-W10",
     .kind = TT_STREAK_STARTED,
     .holder = S("CN"),
     .length_weeks = 1,
     .previous_holder = S("US"),
     .holder_tokens = INT64_C(9000000000),
     .runner_up = S("US"),
     .has_runner_up_tokens = true,
     .runner_up_tokens = INT64_C(2900000000),
     .has_margin = true,
     .margin_pct = 210.34482758620689,
     .emitted_at_ms = INT64_C(1773100000000)},
    {.rule = S("leader:model"),
     .week = "2026-W14",
     .kind = TT_STREAK_EXTENDED,
     .holder = S("qwen/qwen3-\xe2\x82\xac"),
     .length_weeks = 5,
     .previous_holder = {NULL, 0},
     .holder_tokens = 7,
     .runner_up = {NULL, 0},
     .emitted_at_ms = INT64_C(1775436000123)},
    {.rule = S("leader:origin"),
     .week = "2026-W14",
     .kind = TT_STREAK_EXTENDED,
     .holder = S("CN"),
     .length_weeks = 2,
     .previous_holder = {NULL, 0},
     .holder_tokens = 10,
     .runner_up = S("ZZ"),
     .has_runner_up_tokens = true,
     .runner_up_tokens = 0,
     .has_margin = false,
     .emitted_at_ms = INT64_C(1775436000124)},
};

#define BIG_LEN ((size_t)1 << 20)
static uint8_t big_value[BIG_LEN];

typedef struct dl_case {
        tt_reason reason;
        const char *detail, *topic;
        int32_t partition;
        int64_t offset;
        const char *key;
        size_t key_len;
        const uint8_t *value; /* NULL = null value */
        size_t value_len;
} dl_case;

static dl_case dls[] = {
    {TT_REASON_MALFORMED, "Confluent magic byte is 0x7b, expected 0x00",
     "token-usage.events", 3, INT64_C(12345678901), "req-1", 5,
     (const uint8_t *)"{\"x\":\x00\xff", 7},
    /* A tombstone with no key, detail or topic. */
    {TT_REASON_MISSING_FIELD, NULL, NULL, 0, 0, NULL, 0, NULL, 0},
    /* An empty (not null) value. */
    {TT_REASON_MALFORMED, "empty message", "in", 0, 7, "k", 1,
     (const uint8_t *)"", 0},
    {TT_REASON_TOKENS_TOO_LARGE, "1 MiB", "in", 2147483647, INT64_MAX, "big", 3,
     big_value, BIG_LEN},
};

/* ---- mock cluster and a plain consumer --------------------------------- */

/* One mock cluster and one set of topics for the whole run; each test
 * reads back only what was appended after it started. The tests run
 * unforked because librdkafka's threads do not survive fork(), and fresh
 * clusters or topics per test would cost seconds: librdkafka 2.0.2's mock
 * thread often misses the wake-up of a request from the application (create
 * topic, destroy cluster) and serves it only at its 1 s poll timeout. */
static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mcluster;
static const char *bootstraps;
enum { T_ROLLUPS, T_STREAKS, T_DLQ, T__COUNT };
static const char *const topic[T__COUNT] = {"rollups", "streaks", "dlq"};
static int64_t topic_start[T__COUNT];

static void cluster_up(void) {
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "log_level", "2", err, sizeof(err));
        mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        ck_assert_msg(mock_rk != NULL, "%s", err);
        mcluster = rd_kafka_mock_cluster_new(mock_rk, 1);
        ck_assert_ptr_nonnull(mcluster);
        bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
        for (int i = 0; i < T__COUNT; i++)
                ck_assert_int_eq(
                    rd_kafka_mock_topic_create(mcluster, topic[i], 1, 1), 0);
        for (size_t i = 0; i < BIG_LEN; i++)
                big_value[i] = (uint8_t)(i * 131 + (i >> 9));
}

static void cluster_down(void) {
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(mock_rk);
}

static rd_kafka_t *new_consumer(void) {
        char err[512];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        const char *props[][2] = {
            {"bootstrap.servers", bootstraps},
            {"group.id", "unit_kafka_out"},
            {"enable.auto.commit", "false"},
            {"enable.partition.eof", "true"},
            {"fetch.wait.max.ms", "10"},
            {"fetch.message.max.bytes", "4000000"},
            {"log_level", "2"},
        };
        for (size_t i = 0; i < NELEM(props); i++)
                ck_assert_int_eq(rd_kafka_conf_set(c, props[i][0], props[i][1],
                                                   err, sizeof(err)),
                                 RD_KAFKA_CONF_OK);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        return rk;
}

/* Per test: where its records will start, and no errors left over from
 * another test. */
static void mark_topics(void) {
        rd_kafka_mock_clear_request_errors(mcluster, API_PRODUCE);
        rd_kafka_t *rk = new_consumer();
        for (int i = 0; i < T__COUNT; i++) {
                int64_t lo, hi;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    rk, topic[i], 0, &lo, &hi, 5000);
                ck_assert_msg(!err, "watermarks of %s: %s", topic[i],
                              rd_kafka_err2str(err));
                topic_start[i] = hi;
        }
        rd_kafka_destroy(rk);
}

static tt_kafka_out *mkout(bool json, const char *const *props, size_t nprops) {
        char err[512];
        const tt_kafka_out_conf oc = {.brokers = bootstraps,
                                      .rollups_topic = topic[T_ROLLUPS],
                                      .streaks_topic = topic[T_STREAKS],
                                      .dlq_topic = topic[T_DLQ],
                                      .json = json,
                                      .props = props,
                                      .nprops = nprops};
        tt_kafka_out *o = tt_kafka_out_new(&oc, err, sizeof(err));
        ck_assert_msg(o != NULL, "%s", err);
        return o;
}

static const char *const hdr_names[] = {
    "tokentally.reason", "tokentally.detail", "tokentally.topic",
    "tokentally.partition", "tokentally.offset"};

typedef struct bytes {
        uint8_t *p; /* NULL = null */
        size_t n;
} bytes;

typedef struct msg {
        bytes key, value;
        bool has_hdr[NELEM(hdr_names)];
        bytes hdr[NELEM(hdr_names)];
        size_t nhdrs;
} msg;

static bytes dup_bytes(const void *p, size_t n) {
        bytes b = {NULL, n};
        if (p) {
                b.p = malloc(n + 1);
                ck_assert_ptr_nonnull(b.p);
                memcpy(b.p, p, n);
                b.p[n] = 0;
        }
        return b;
}

static void free_msgs(msg *m, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(m[i].key.p);
                free(m[i].value.p);
                for (size_t h = 0; h < NELEM(hdr_names); h++)
                        free(m[i].hdr[h].p);
        }
        free(m);
}

/* What partition 0 of topic t got since the test started. */
static size_t consume_all(int t, msg **out) {
        rd_kafka_t *rk = new_consumer();
        rd_kafka_topic_partition_list_t *tp =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tp, topic[t], 0)->offset =
            topic_start[t];
        ck_assert_int_eq(rd_kafka_assign(rk, tp), 0);
        rd_kafka_topic_partition_list_destroy(tp);

        size_t n = 0, cap = 16;
        msg *m = calloc(cap, sizeof(*m));
        ck_assert_ptr_nonnull(m);
        time_t deadline = time(NULL) + 10;
        bool eof = false;
        while (!eof) {
                ck_assert_msg(time(NULL) < deadline, "no EOF on %s", topic[t]);
                rd_kafka_message_t *km = rd_kafka_consumer_poll(rk, 100);
                if (!km)
                        continue;
                if (km->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eof = true;
                } else {
                        ck_assert_msg(!km->err, "consume %s: %s", topic[t],
                                      rd_kafka_message_errstr(km));
                        if (n == cap) {
                                m = realloc(m, 2 * cap * sizeof(*m));
                                ck_assert_ptr_nonnull(m);
                                memset(m + cap, 0, cap * sizeof(*m));
                                cap *= 2;
                        }
                        msg *x = &m[n++];
                        x->key = dup_bytes(km->key, km->key_len);
                        x->value = dup_bytes(km->payload, km->len);
                        rd_kafka_headers_t *h = NULL;
                        if (!rd_kafka_message_headers(km, &h)) {
                                x->nhdrs = rd_kafka_header_cnt(h);
                                for (size_t k = 0; k < NELEM(hdr_names); k++) {
                                        const void *v;
                                        size_t vn;
                                        if (rd_kafka_header_get_last(
                                                h, hdr_names[k], &v, &vn))
                                                continue;
                                        x->has_hdr[k] = true;
                                        x->hdr[k] = dup_bytes(v, vn);
                                }
                        }
                }
                rd_kafka_message_destroy(km);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        *out = m;
        return n;
}

static void produce_all(tt_kafka_out *o, bool with_dls) {
        for (size_t i = 0; i < NELEM(rollups); i++)
                ck_assert_int_eq(tt_kafka_out_rollup(o, &rollups[i]), 0);
        for (size_t i = 0; i < NELEM(streaks); i++)
                ck_assert_int_eq(tt_kafka_out_streak(o, &streaks[i]), 0);
        for (size_t i = 0; with_dls && i < NELEM(dls); i++) {
                const dl_case *d = &dls[i];
                ck_assert_int_eq(tt_kafka_out_dead_letter(
                                     o, d->reason, d->detail, d->topic,
                                     d->partition, d->offset, d->key,
                                     d->key_len, d->value, d->value_len),
                                 0);
        }
}

static void flush_ok(tt_kafka_out *o, uint64_t want_delivered) {
        char err[512];
        int rc = tt_kafka_out_flush(o, 10000, err, sizeof(err));
        ck_assert_msg(rc == 0, "flush: %s", err);
        ck_assert_uint_eq(tt_kafka_out_delivered(o), want_delivered);
        ck_assert_int_eq(tt_kafka_out_error(o, err, sizeof(err)), 0);
        ck_assert_str_eq(err, "");
}

static void ck_bytes(bytes got, const void *want, size_t want_len,
                     const char *what, size_t i) {
        if (!want) {
                ck_assert_msg(got.p == NULL, "%s %zu: want null", what, i);
                return;
        }
        ck_assert_msg(got.p != NULL, "%s %zu: got null", what, i);
        ck_assert_msg(got.n == want_len &&
                          (want_len == 0 || memcmp(got.p, want, want_len) == 0),
                      "%s %zu: got %zu bytes \"%.*s\", want %zu", what, i,
                      got.n, (int)(got.n < 80 ? got.n : 80), (char *)got.p,
                      want_len);
}

/* ---- canonical text of a record, shared with the Python side ----------- */

/* One line "field=value ..." in schema order: strings (and enum symbols)
 * as hex of their UTF-8, "-" when empty; ints in decimal; doubles %.17g,
 * which both C and Python round correctly, so equal text is equal bits
 * for every finite double; null as "null". */
typedef struct line {
        char s[2048];
        size_t n;
} line;

static void add(line *l, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add(line *l, const char *name, const char *fmt, ...) {
        l->n += (size_t)snprintf(l->s + l->n, sizeof(l->s) - l->n,
                                 "%s%s=", l->n ? " " : "", name);
        va_list ap;
        va_start(ap, fmt);
        l->n += (size_t)vsnprintf(l->s + l->n, sizeof(l->s) - l->n, fmt, ap);
        va_end(ap);
        ck_assert_uint_lt(l->n, sizeof(l->s));
}

static void add_str(line *l, const char *name, const char *p, size_t n) {
        if (!p) {
                add(l, name, "null");
                return;
        }
        char hex[1024];
        ck_assert_uint_lt(2 * n, sizeof(hex));
        for (size_t i = 0; i < n; i++)
                sprintf(hex + 2 * i, "%02x", (unsigned char)p[i]);
        hex[2 * n] = '\0';
        add(l, name, "%s", n ? hex : "-");
}

static void add_cstr(line *l, const char *name, const char *s) {
        add_str(l, name, s, strlen(s));
}

static void canon_rollup(const tt_rollup *r, line *l) {
        l->n = 0;
        add_cstr(l, "week", r->week);
        add(l, "week_start", "%" PRId64, r->week_start_ms);
        add_cstr(l, "dimension", tt_dim_str(r->dimension));
        add_str(l, "key", r->key.ptr, r->key.len);
        add_str(l, "origin", r->origin.ptr, r->origin.len);
        add(l, "tokens", "%" PRId64, r->tokens);
        add(l, "prompt_tokens", "%" PRId64, r->prompt_tokens);
        add(l, "completion_tokens", "%" PRId64, r->completion_tokens);
        add(l, "requests", "%" PRId64, r->requests);
        if (r->has_prev)
                add(l, "prev_tokens", "%" PRId64, r->prev_tokens);
        else
                add(l, "prev_tokens", "null");
        if (r->has_growth)
                add(l, "wow_growth_pct", "%.17g", r->wow_growth_pct);
        else
                add(l, "wow_growth_pct", "null");
        add(l, "share_pct", "%.17g", r->share_pct);
        add(l, "rank", "%" PRId32, r->rank);
        add_cstr(l, "status", tt_status_str(r->status));
        add(l, "revision", "%" PRId32, r->revision);
        add(l, "emitted_at", "%" PRId64, r->emitted_at_ms);
}

static void canon_streak(const tt_streak_change *s, line *l) {
        l->n = 0;
        add_str(l, "rule", s->rule.ptr, s->rule.len);
        add_cstr(l, "week", s->week);
        add_cstr(l, "kind", tt_streak_kind_str(s->kind));
        add_str(l, "holder", s->holder.ptr, s->holder.len);
        add(l, "length_weeks", "%" PRId32, s->length_weeks);
        add_str(l, "previous_holder", s->previous_holder.ptr,
                s->previous_holder.len);
        add(l, "holder_tokens", "%" PRId64, s->holder_tokens);
        add_str(l, "runner_up", s->runner_up.ptr, s->runner_up.len);
        if (s->has_runner_up_tokens)
                add(l, "runner_up_tokens", "%" PRId64, s->runner_up_tokens);
        else
                add(l, "runner_up_tokens", "null");
        if (s->has_margin)
                add(l, "margin_pct", "%.17g", s->margin_pct);
        else
                add(l, "margin_pct", "null");
        add(l, "emitted_at", "%" PRId64, s->emitted_at_ms);
}

/* Reads each file with the schema (Avro binary body, or one JSON value)
 * and prints its canonical line, driven by the schema's field types. */
static const char py_script[] =
    "import sys, io, json, datetime\n"
    "import avro.schema, avro.io\n"
    "mode, schema_path = sys.argv[1], sys.argv[2]\n"
    "with open(schema_path) as f:\n"
    "    schema = avro.schema.parse(f.read())\n"
    "EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)\n"
    "def canon(t, v):\n"
    "    if isinstance(t, avro.schema.UnionSchema):\n"
    "        if v is None:\n"
    "            return 'null'\n"
    "        t = [b for b in t.schemas if b.type != 'null'][0]\n"
    "    if t.type in ('string', 'enum'):\n"
    "        return v.encode('utf-8').hex() or '-'\n"
    "    if t.type == 'double':\n"
    "        return '%.17g' % float(v)\n"
    "    if t.type in ('int', 'long'):\n"
    "        if isinstance(v, datetime.datetime):\n"
    "            v = (v - EPOCH) // datetime.timedelta(milliseconds=1)\n"
    "        if isinstance(v, bool) or not isinstance(v, int):\n"
    "            return 'BADTYPE:' + repr(v)\n"
    "        return str(v)\n"
    "    return 'UNKNOWN:' + t.type\n"
    "names = [f.name for f in schema.fields]\n"
    "for path in sys.argv[3:]:\n"
    "    with open(path, 'rb') as f:\n"
    "        data = f.read()\n"
    "    try:\n"
    "        if mode == 'avro':\n"
    "            bio = io.BytesIO(data)\n"
    "            rec = avro.io.DatumReader(schema).read(\n"
    "                avro.io.BinaryDecoder(bio))\n"
    "            if bio.tell() != len(data):\n"
    "                print('TRAILING', len(data) - bio.tell())\n"
    "                continue\n"
    "        else:\n"
    "            rec = json.loads(data.decode('utf-8'))\n"
    "            if list(rec) != names:\n"
    "                print('FIELDS', list(rec))\n"
    "                continue\n"
    "        print(' '.join('%s=%s' % (f.name, canon(f.type, rec[f.name]))\n"
    "                       for f in schema.fields))\n"
    "    except Exception as e:\n"
    "        print('ERROR', repr(e))\n";

/* Writes values[i] to files in a temp dir, runs the script over them with
 * schemas/<schema> and compares line i with want[i]. */
static void python_check(const char *mode, const char *schema,
                         const bytes *values, const line *want, size_t n) {
        const char *src = getenv("TT_SOURCE_DIR");
        ck_assert_msg(src != NULL, "TT_SOURCE_DIR is not set");
        char dir[] = "/tmp/tt_kafka_out_XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        char path[256], cmd[8192];
        snprintf(path, sizeof(path), "%s/check.py", dir);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(py_script, f);
        fclose(f);
        size_t cn = (size_t)snprintf(cmd, sizeof(cmd),
                                     "/usr/bin/python3 %s %s '%s/schemas/%s'",
                                     path, mode, src, schema);
        for (size_t i = 0; i < n; i++) {
                snprintf(path, sizeof(path), "%s/%zu.bin", dir, i);
                f = fopen(path, "wb");
                ck_assert_ptr_nonnull(f);
                ck_assert_uint_eq(fwrite(values[i].p, 1, values[i].n, f),
                                  values[i].n);
                fclose(f);
                cn += (size_t)snprintf(cmd + cn, sizeof(cmd) - cn, " %s", path);
                ck_assert_uint_lt(cn, sizeof(cmd));
        }
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        char got[4096];
        size_t k = 0;
        while (fgets(got, sizeof(got), p)) {
                got[strcspn(got, "\n")] = '\0';
                ck_assert_msg(k < n, "extra python output: %s", got);
                ck_assert_msg(strcmp(got, want[k].s) == 0,
                              "%s record %zu:\npython %s\nwant   %s", mode, k,
                              got, want[k].s);
                k++;
        }
        ck_assert_int_eq(pclose(p), 0);
        ck_assert_uint_eq(k, n);
        for (size_t i = 0; i < n; i++) {
                snprintf(path, sizeof(path), "%s/%zu.bin", dir, i);
                unlink(path);
        }
        snprintf(path, sizeof(path), "%s/check.py", dir);
        unlink(path);
        rmdir(dir);
}

/* ---- encoders ---------------------------------------------------------- */

static const struct {
        tt_rollup r;
        const char *key;
} key_cases[] = {
    {{.week = "2026-W14", .dimension = TT_DIM_TOTAL, .key = S("*")},
     "2026-W14/TOTAL/*"},
    {{.week = "2026-W14", .dimension = TT_DIM_ORIGIN, .key = S("CN")},
     "2026-W14/ORIGIN/CN"},
    {{.week = "2026-W53",
      .dimension = TT_DIM_MODEL,
      .key = S("deepseek/deepseek-chat-v3")},
     "2026-W53/MODEL/deepseek/deepseek-chat-v3"},
    {{.week = "2026-W01", .dimension = TT_DIM_MODEL, .key = S("")},
     "2026-W01/MODEL/"},
};

START_TEST(rollup_key_table) {
        tt_buf b;
        tt_buf_init(&b, 1024);
        ck_assert_int_eq(tt_buf_append(&b, "x", 1), 0); /* appends */
        ck_assert_int_eq(tt_rollup_key(&b, &key_cases[_i].r), 0);
        ck_assert_uint_eq(b.len, 1 + strlen(key_cases[_i].key));
        ck_assert(memcmp(b.data + 1, key_cases[_i].key, b.len - 1) == 0);
        tt_buf_free(&b);
}
END_TEST

START_TEST(avro_exact_bytes) {
        /* Hand-encoded from the schema: the smallest rollup and streak. */
        tt_rollup r = {.week = "W",
                       .week_start_ms = -1,
                       .dimension = TT_DIM_ORIGIN,
                       .key = S("CN"),
                       .origin = S("x"),
                       .tokens = 1,
                       .prompt_tokens = 64,
                       .completion_tokens = -65,
                       .requests = 0,
                       .has_prev = true,
                       .prev_tokens = 2,
                       .has_growth = true,
                       .wow_growth_pct = 1.0,
                       .share_pct = -2.5,
                       .rank = 1,
                       .status = TT_STATUS_REVISED,
                       .revision = 3,
                       .emitted_at_ms = 5};
        static const uint8_t want_r[] = {
            0x02, 'W',  0x01, 0x02, 0x04, 'C',  'N',  0x02, 0x02, 'x',
            0x02, 0x80, 0x01, 0x81, 0x01, 0x00, 0x02, 0x04, 0x02, 0,
            0,    0,    0,    0,    0,    0xf0, 0x3f, 0,    0,    0,
            0,    0,    0,    0x04, 0xc0, 0x02, 0x04, 0x06, 0x0a};
        tt_streak_change s = {.rule = S("r"),
                              .week = "W",
                              .kind = TT_STREAK_EXTENDED,
                              .holder = S(""),
                              .length_weeks = 2};
        static const uint8_t want_s[] = {0x02, 'r',  0x02, 'W',  0x02,
                                         0x00, 0x04, 0x00, 0x00, 0x00,
                                         0x00, 0x00, 0x00};
        tt_buf b;
        tt_buf_init(&b, 1024);
        ck_assert_int_eq(tt_avro_encode_rollup(&b, &r), 0);
        ck_assert_uint_eq(b.len, sizeof(want_r));
        ck_assert(memcmp(b.data, want_r, b.len) == 0);
        tt_buf_reset(&b);
        ck_assert_int_eq(tt_avro_encode_streak(&b, &s), 0);
        ck_assert_uint_eq(b.len, sizeof(want_s));
        ck_assert(memcmp(b.data, want_s, b.len) == 0);
        tt_buf_free(&b);
}
END_TEST

START_TEST(encoders_fail_whole) {
        /* A capped buffer refuses the record and keeps what it had. */
        tt_buf b;
        tt_buf_init(&b, 40);
        ck_assert_int_eq(tt_buf_append(&b, "abc", 3), 0);
        ck_assert_int_eq(tt_avro_encode_rollup(&b, &rollups[1]), TT_ERR_LIMIT);
        ck_assert_int_eq(tt_avro_encode_streak(&b, &streaks[0]), TT_ERR_LIMIT);
        ck_assert_uint_eq(b.len, 3);
        tt_rollup r = rollups[0];
        r.dimension = (tt_dim)7;
        ck_assert_int_eq(tt_avro_encode_rollup(&b, &r), TT_ERR_INVAL);
        ck_assert_int_eq(tt_rollup_key(&b, &r), TT_ERR_INVAL);
        r = rollups[0];
        r.status = (tt_status)-1;
        ck_assert_int_eq(tt_avro_encode_rollup(&b, &r), TT_ERR_INVAL);
        tt_streak_change s = streaks[0];
        s.kind = (tt_streak_kind)2;
        ck_assert_int_eq(tt_avro_encode_streak(&b, &s), TT_ERR_INVAL);
        ck_assert_uint_eq(b.len, 3);
        tt_buf_free(&b);
}
END_TEST

/* ---- through the mock cluster ------------------------------------------ */

static const char *const big_props[] = {"message.max.bytes=2000000"};

START_TEST(avro_round_trip) {
        tt_kafka_out *o = mkout(false, big_props, 1);
        produce_all(o, true);
        flush_ok(o, NELEM(rollups) + NELEM(streaks) + NELEM(dls));
        tt_kafka_out_destroy(o);

        tt_buf b;
        tt_buf_init(&b, 1 << 16);
        bytes bodies[8];
        line want[8];

        msg *m;
        size_t n = consume_all(T_ROLLUPS, &m);
        ck_assert_uint_eq(n, NELEM(rollups));
        for (size_t i = 0; i < n; i++) {
                tt_buf_reset(&b);
                ck_assert_int_eq(tt_rollup_key(&b, &rollups[i]), 0);
                ck_bytes(m[i].key, b.data, b.len, "rollup key", i);
                ck_assert_uint_eq(m[i].nhdrs, 0);
                int32_t id;
                const uint8_t *body;
                size_t blen;
                char detail[128];
                ck_assert_int_eq(tt_confluent_parse(m[i].value.p, m[i].value.n,
                                                    &id, &body, &blen, detail,
                                                    sizeof(detail)),
                                 0);
                ck_assert_int_eq(id, TT_SCHEMA_ID_WEEKLY_ROLLUP);
                tt_buf_reset(&b);
                ck_assert_int_eq(tt_avro_encode_rollup(&b, &rollups[i]), 0);
                ck_bytes((bytes){(uint8_t *)body, blen}, b.data, b.len,
                         "rollup body", i);
                bodies[i] = (bytes){(uint8_t *)body, blen};
                canon_rollup(&rollups[i], &want[i]);
        }
        python_check("avro", "weekly_rollup.avsc", bodies, want, n);
        free_msgs(m, n);

        n = consume_all(T_STREAKS, &m);
        ck_assert_uint_eq(n, NELEM(streaks));
        for (size_t i = 0; i < n; i++) {
                ck_bytes(m[i].key, streaks[i].rule.ptr, streaks[i].rule.len,
                         "streak key", i);
                int32_t id;
                const uint8_t *body;
                size_t blen;
                char detail[128];
                ck_assert_int_eq(tt_confluent_parse(m[i].value.p, m[i].value.n,
                                                    &id, &body, &blen, detail,
                                                    sizeof(detail)),
                                 0);
                ck_assert_int_eq(id, TT_SCHEMA_ID_STREAK_CHANGE);
                bodies[i] = (bytes){(uint8_t *)body, blen};
                canon_streak(&streaks[i], &want[i]);
        }
        python_check("avro", "streak_change.avsc", bodies, want, n);
        free_msgs(m, n);
        tt_buf_free(&b);

        n = consume_all(T_DLQ, &m);
        ck_assert_uint_eq(n, NELEM(dls));
        for (size_t i = 0; i < n; i++) {
                const dl_case *d = &dls[i];
                ck_bytes(m[i].key, d->key, d->key_len, "dlq key", i);
                ck_bytes(m[i].value, d->value, d->value_len, "dlq value", i);
                ck_assert_uint_eq(m[i].nhdrs, NELEM(hdr_names));
                char part[16], off[24];
                snprintf(part, sizeof(part), "%" PRId32, d->partition);
                snprintf(off, sizeof(off), "%" PRId64, d->offset);
                const char *hv[] = {tt_reason_str(d->reason), d->detail,
                                    d->topic, part, off};
                for (size_t h = 0; h < NELEM(hdr_names); h++) {
                        ck_assert_msg(m[i].has_hdr[h], "dlq %zu: no %s", i,
                                      hdr_names[h]);
                        ck_bytes(m[i].hdr[h], hv[h], hv[h] ? strlen(hv[h]) : 0,
                                 hdr_names[h], i);
                }
        }
        free_msgs(m, n);
}
END_TEST

START_TEST(json_round_trip) {
        tt_kafka_out *o = mkout(true, NULL, 0);
        produce_all(o, false);
        flush_ok(o, NELEM(rollups) + NELEM(streaks));
        tt_kafka_out_destroy(o);

        tt_buf b;
        tt_buf_init(&b, 1 << 16);
        bytes values[8];
        line want[8];
        msg *m;
        size_t n = consume_all(T_ROLLUPS, &m);
        ck_assert_uint_eq(n, NELEM(rollups));
        for (size_t i = 0; i < n; i++) {
                tt_buf_reset(&b);
                ck_assert_int_eq(tt_rollup_key(&b, &rollups[i]), 0);
                ck_bytes(m[i].key, b.data, b.len, "rollup key", i);
                tt_buf_reset(&b);
                ck_assert_int_eq(tt_json_rollup(&b, &rollups[i]), 0);
                ck_assert_uint_eq(b.data[b.len - 1], '\n');
                ck_bytes(m[i].value, b.data, b.len - 1, "rollup json", i);
                values[i] = m[i].value;
                canon_rollup(&rollups[i], &want[i]);
        }
        python_check("json", "weekly_rollup.avsc", values, want, n);
        free_msgs(m, n);

        n = consume_all(T_STREAKS, &m);
        ck_assert_uint_eq(n, NELEM(streaks));
        for (size_t i = 0; i < n; i++) {
                ck_bytes(m[i].key, streaks[i].rule.ptr, streaks[i].rule.len,
                         "streak key", i);
                tt_buf_reset(&b);
                ck_assert_int_eq(tt_json_streak(&b, &streaks[i]), 0);
                ck_bytes(m[i].value, b.data, b.len - 1, "streak json", i);
                values[i] = m[i].value;
                canon_streak(&streaks[i], &want[i]);
        }
        python_check("json", "streak_change.avsc", values, want, n);
        free_msgs(m, n);
        tt_buf_free(&b);
}
END_TEST

START_TEST(bad_properties) {
        static const struct {
                const char *prop, *want;
        } cases[] = {
            {"no.such.property=1", "no.such.property"},
            {"linger.ms", "expected key=value"},
            {"=1", "expected key=value"},
            {"linger.ms=soon", "linger.ms"},
        };
        for (size_t i = 0; i < NELEM(cases); i++) {
                char err[512] = "";
                const char *props[] = {cases[i].prop};
                const tt_kafka_out_conf oc = {.brokers = bootstraps,
                                              .rollups_topic = topic[T_ROLLUPS],
                                              .props = props,
                                              .nprops = 1};
                ck_assert_ptr_null(tt_kafka_out_new(&oc, err, sizeof(err)));
                ck_assert_msg(strstr(err, cases[i].want) != NULL,
                              "%s: error \"%s\"", cases[i].prop, err);
        }
        tt_kafka_out_destroy(NULL);
}
END_TEST

/* The broker refuses every Produce for good: the flush reports why, the
 * error stays, and no later record is accepted. */
START_TEST(delivery_failure_is_sticky) {
        rd_kafka_mock_push_request_errors(
            mcluster, API_PRODUCE, 8,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
        /* librdkafka notes the topic's loss of partitions at level 5. */
        tt_kafka_out *o = mkout(false, (const char *const[]){"log_level=4"}, 1);
        ck_assert_int_eq(tt_kafka_out_rollup(o, &rollups[0]), 0);
        char err[512], err2[512];
        ck_assert_int_eq(tt_kafka_out_flush(o, 10000, err, sizeof(err)),
                         TT_ERR_KAFKA);
        ck_assert_msg(strstr(err, topic[T_ROLLUPS]) && strstr(err, "authoriz"),
                      "reason: %s", err);
        ck_assert_int_eq(tt_kafka_out_error(o, err2, sizeof(err2)),
                         TT_ERR_KAFKA);
        ck_assert_str_eq(err, err2);
        ck_assert_uint_eq(tt_kafka_out_delivered(o), 0);
        /* Nothing further is queued, even once the broker would accept. */
        rd_kafka_mock_clear_request_errors(mcluster, API_PRODUCE);
        ck_assert_int_eq(tt_kafka_out_streak(o, &streaks[0]), TT_ERR_KAFKA);
        ck_assert_int_eq(tt_kafka_out_dead_letter(o, TT_REASON_MALFORMED, "d",
                                                  "t", 0, 0, NULL, 0, "v", 1),
                         TT_ERR_KAFKA);
        ck_assert_int_eq(tt_kafka_out_flush(o, 1000, err2, sizeof(err2)),
                         TT_ERR_KAFKA);
        ck_assert_str_eq(err, err2);
        tt_kafka_out_destroy(o);
}
END_TEST

/* Retriable broker errors are librdkafka's to retry, not failures. */
START_TEST(retriable_errors_recover) {
        rd_kafka_mock_push_request_errors(
            mcluster, API_PRODUCE, 2,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
        tt_kafka_out *o =
            mkout(false, (const char *const[]){"retry.backoff.ms=10"}, 1);
        ck_assert_int_eq(tt_kafka_out_rollup(o, &rollups[1]), 0);
        flush_ok(o, 1);
        tt_kafka_out_destroy(o);
        msg *m;
        size_t n = consume_all(T_ROLLUPS, &m);
        ck_assert_uint_eq(n, 1); /* idempotence: no duplicate */
        free_msgs(m, n);
}
END_TEST

/* A record librdkafka will not even queue is as lost as a failed one. */
START_TEST(produce_failure_is_sticky) {
        tt_kafka_out *o =
            mkout(false, (const char *const[]){"message.max.bytes=1000"}, 1);
        char err[512];
        ck_assert_int_eq(tt_kafka_out_dead_letter(o, TT_REASON_MALFORMED, "d",
                                                  "t", 1, 2, "k", 1, big_value,
                                                  5000),
                         TT_ERR_KAFKA);
        ck_assert_int_eq(tt_kafka_out_error(o, err, sizeof(err)), TT_ERR_KAFKA);
        ck_assert_msg(strstr(err, topic[T_DLQ]) &&
                          strstr(err, "MSG_SIZE_TOO_LARGE"),
                      "reason: %s", err);
        ck_assert_int_eq(tt_kafka_out_rollup(o, &rollups[0]), TT_ERR_KAFKA);
        ck_assert_int_eq(tt_kafka_out_flush(o, 1000, err, sizeof(err)),
                         TT_ERR_KAFKA);
        tt_kafka_out_destroy(o);
}
END_TEST

START_TEST(unconfigured_topic) {
        char err[512];
        const tt_kafka_out_conf oc = {.brokers = bootstraps,
                                      .rollups_topic = topic[T_ROLLUPS]};
        tt_kafka_out *o = tt_kafka_out_new(&oc, err, sizeof(err));
        ck_assert_msg(o != NULL, "%s", err);
        ck_assert_int_eq(tt_kafka_out_streak(o, &streaks[0]), TT_ERR_INVAL);
        ck_assert_int_eq(tt_kafka_out_dead_letter(o, TT_REASON_MALFORMED, NULL,
                                                  NULL, 0, 0, NULL, 0, NULL, 0),
                         TT_ERR_INVAL);
        ck_assert_int_eq(tt_kafka_out_error(o, err, sizeof(err)), 0);
        tt_kafka_out_destroy(o);
}
END_TEST

/* A flush that runs out of time is reported but not sticky: the records
 * may still arrive. Once they expire, that is a delivery failure. */
START_TEST(flush_timeout_is_not_sticky) {
        char err[512];
        const char *props[] = {"message.timeout.ms=500", "log_level=0"};
        const tt_kafka_out_conf oc = {.brokers = "127.0.0.1:1",
                                      .rollups_topic = topic[T_ROLLUPS],
                                      .props = props,
                                      .nprops = NELEM(props)};
        tt_kafka_out *o = tt_kafka_out_new(&oc, err, sizeof(err));
        ck_assert_msg(o != NULL, "%s", err);
        ck_assert_int_eq(tt_kafka_out_rollup(o, &rollups[0]), 0);
        ck_assert_int_eq(tt_kafka_out_flush(o, 50, err, sizeof(err)),
                         TT_ERR_KAFKA);
        ck_assert_msg(strstr(err, "not done after 50 ms"), "reason: %s", err);
        ck_assert_int_eq(tt_kafka_out_error(o, err, sizeof(err)), 0);
        ck_assert_int_eq(tt_kafka_out_flush(o, 5000, err, sizeof(err)),
                         TT_ERR_KAFKA);
        ck_assert_msg(strstr(err, "timed out") && strstr(err, "rollups"),
                      "reason: %s", err);
        ck_assert_int_eq(tt_kafka_out_error(o, err, sizeof(err)), TT_ERR_KAFKA);
        tt_kafka_out_destroy(o);
}
END_TEST

/* A queue of 4 messages: every produce beyond it waits for room. */
START_TEST(backpressure_loses_nothing) {
        tt_kafka_out *o = mkout(
            false, (const char *const[]){"queue.buffering.max.messages=4"}, 1);
        for (int i = 0; i < 200; i++)
                ck_assert_int_eq(tt_kafka_out_rollup(o, &rollups[i % 4]), 0);
        flush_ok(o, 200);
        tt_kafka_out_destroy(o);
        msg *m;
        size_t n = consume_all(T_ROLLUPS, &m);
        ck_assert_uint_eq(n, 200);
        free_msgs(m, n);
}
END_TEST

#define THREADS 4
#define PER_THREAD 250

static void *dl_thread(void *arg) {
        tt_kafka_out *o = arg;
        for (int i = 0; i < PER_THREAD; i++) {
                char v[32];
                int n = snprintf(v, sizeof(v), "v%d", i);
                if (tt_kafka_out_dead_letter(o, TT_REASON_LATE, "late", "in", 1,
                                             i, NULL, 0, v, (size_t)n))
                        return (void *)1;
                if (tt_kafka_out_streak(o, &streaks[i % 3]))
                        return (void *)1;
        }
        return NULL;
}

/* Workers produce dead letters while the coordinator produces rollups. */
START_TEST(concurrent_producers) {
        tt_kafka_out *o = mkout(
            false, (const char *const[]){"queue.buffering.max.messages=64"}, 1);
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, dl_thread, o), 0);
        for (int i = 0; i < 100; i++)
                ck_assert_int_eq(tt_kafka_out_rollup(o, &rollups[i % 4]), 0);
        for (int i = 0; i < THREADS; i++) {
                void *rc;
                pthread_join(t[i], &rc);
                ck_assert_ptr_null(rc);
        }
        flush_ok(o, 100 + 2 * THREADS * PER_THREAD);
        tt_kafka_out_destroy(o);
        msg *m;
        size_t n = consume_all(T_DLQ, &m);
        ck_assert_uint_eq(n, THREADS * PER_THREAD);
        free_msgs(m, n);
}
END_TEST

START_TEST(no_allocation_when_warm) {
        tt_kafka_out *o = mkout(false, NULL, 0);
        tt_kafka_out *j = mkout(true, NULL, 0);
        produce_all(o, false);
        produce_all(j, false);
        unsigned long before = tt_mem_allocs();
        for (int i = 0; i < 50; i++) {
                produce_all(o, false);
                produce_all(j, false);
        }
        ck_assert_uint_eq(tt_mem_allocs(), before);
        flush_ok(o, 51 * (NELEM(rollups) + NELEM(streaks)));
        flush_ok(j, 51 * (NELEM(rollups) + NELEM(streaks)));
        tt_kafka_out_destroy(o);
        tt_kafka_out_destroy(j);
}
END_TEST

static Suite *kafka_out_suite(void) {
        Suite *s = suite_create("kafka_out");
        TCase *enc = tcase_create("encode");
        tcase_add_loop_test(enc, rollup_key_table, 0, NELEM(key_cases));
        tcase_add_test(enc, avro_exact_bytes);
        tcase_add_test(enc, encoders_fail_whole);
        suite_add_tcase(s, enc);
        TCase *mock = tcase_create("mock");
        tcase_add_unchecked_fixture(mock, cluster_up, cluster_down);
        tcase_add_checked_fixture(mock, mark_topics, NULL);
        tcase_add_test(mock, avro_round_trip);
        tcase_add_test(mock, json_round_trip);
        tcase_add_test(mock, bad_properties);
        tcase_add_test(mock, delivery_failure_is_sticky);
        tcase_add_test(mock, retriable_errors_recover);
        tcase_add_test(mock, produce_failure_is_sticky);
        tcase_add_test(mock, unconfigured_topic);
        tcase_add_test(mock, flush_timeout_is_not_sticky);
        tcase_add_test(mock, backpressure_loses_nothing);
        tcase_add_test(mock, concurrent_producers);
        tcase_add_test(mock, no_allocation_when_warm);
        suite_add_tcase(s, mock);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(kafka_out_suite());
        srunner_set_fork_status(sr, CK_NOFORK); /* see cluster_up */
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
