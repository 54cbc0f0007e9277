/* The Kafka stage against librdkafka's mock cluster (fast suite): the
 * scenario through 6 partitions gives exactly replay's rows; an idle
 * partition stops holding the watermark back, a slow one does not; bad messages
 * become dead letters with their bytes and headers while the totals stay the
 * same. */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "recorder.h"
#include "stage_thread.h"
#include "tokentally/engine.h"
#include "tokentally/gen.h"
#include "tokentally/gen_kafka.h"
#include "tokentally/json_event.h"
#include "tokentally/kafka_out.h"
#include "tokentally/stage.h"

#define SCALE 2e-5

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mcluster;
static const char *bootstraps;
static tt_origin_map *map;

static void setup(void) {
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "test.mock.num.brokers", "1", err, sizeof(err));
        rd_kafka_conf_set(c, "log_level", "2", err, sizeof(err));
        mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        ck_assert_ptr_nonnull(mock_rk);
        mcluster = rd_kafka_handle_mock_cluster(mock_rk);
        bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
        map = default_origins();
        ck_assert_ptr_nonnull(map);
}

static void teardown(void) {
        rd_kafka_destroy(mock_rk);
        tt_origin_map_destroy(map);
}

static void topics(const char *in, int parts) {
        rd_kafka_mock_topic_create(mcluster, in, parts, 1);
        rd_kafka_mock_topic_create(mcluster, "out.rollups", 1, 1);
        rd_kafka_mock_topic_create(mcluster, "out.streaks", 1, 1);
        rd_kafka_mock_topic_create(mcluster, "out.dlq", 1, 1);
}

static tt_kafka_out *mkout(bool json) {
        char err[256];
        tt_kafka_out_conf oc = {.brokers = bootstraps,
                                .rollups_topic = "out.rollups",
                                .streaks_topic = "out.streaks",
                                .dlq_topic = "out.dlq",
                                .json = json};
        tt_kafka_out *o = tt_kafka_out_new(&oc, err, sizeof(err));
        ck_assert_msg(o != NULL, "%s", err);
        return o;
}

static void stage_conf(tt_stage_conf *sc, const char *topic, tt_kafka_out *o,
                       recorder *rc) {
        static const tt_sink tee = {locked_rollup, locked_streak};
        memset(sc, 0, sizeof(*sc));
        sc->brokers = bootstraps;
        sc->group = "g";
        sc->topic = topic;
        sc->format = TT_IN_AVRO;
        sc->workers = 2;
        sc->from_beginning = true;
        sc->close_at_eof = true;
        sc->commit_interval_ms = 1000;
        tt_engine_conf_defaults(&sc->engine);
        sc->engine.origins = map;
        sc->engine.max_future_ms = -1;
        sc->out = o;
        sc->tee = &tee;
        sc->tee_opaque = rc;
}

/* Rows as text without emitted_at, sorted: the comparable content. */
static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **rows_text(const recorder *rc, size_t *n) {
        char **out = calloc(rc->nrows + 1, sizeof(char *));
        for (size_t i = 0; i < rc->nrows; i++) {
                const tt_rollup *r = &rc->rows[i].r;
                char buf[512];
                snprintf(
                    buf, sizeof(buf),
                    "%s|%d|%s|%s|%lld|%lld|%lld|%lld|%d|%lld|%.17g|%d|%d|"
                    "%d",
                    r->week, r->dimension, rc->rows[i].key, rc->rows[i].origin,
                    (long long)r->tokens, (long long)r->prompt_tokens,
                    (long long)r->completion_tokens, (long long)r->requests,
                    r->has_prev, (long long)r->prev_tokens, r->share_pct,
                    r->rank, r->status, r->revision);
                out[i] = strdup(buf);
        }
        qsort(out, rc->nrows, sizeof(char *), cmp_str);
        *n = rc->nrows;
        return out;
}

/* Replay's answer for the same events, in this process. */
static int replay_event(void *opaque, const tt_event *ev) {
        char d[256];
        tt_engine_offer(opaque, 0, ev, 0, d, sizeof(d));
        return 0;
}

START_TEST(test_scenario_equals_replay) {
        topics("in.scenario", 6);
        tt_gen_conf gc = {.scenario = "april-2026", .scale = SCALE, .seed = 7};
        tt_gen_kafka_conf kc = {.brokers = bootstraps, .topic = "in.scenario"};
        uint64_t produced;
        char err[512];
        ck_assert_msg(!tt_gen_to_kafka(&gc, &kc, &produced, err, sizeof(err)),
                      "%s", err);
        ck_assert_uint_gt(produced, 50000);

        recorder live = {0}, ref = {0};
        tt_kafka_out *o = mkout(false);
        tt_stage_conf sc;
        stage_conf(&sc, "in.scenario", o, &live);
        volatile sig_atomic_t stop = 0;
        tt_stage_stats st;
        ck_assert_msg(!tt_stage_run(&sc, &stop, &st, err, sizeof(err)), "%s",
                      err);
        ck_assert_uint_eq(st.messages, produced);
        ck_assert_uint_eq(st.accepted, produced);
        ck_assert_uint_eq(st.dead_letters, 0);

        tt_engine_conf ec;
        tt_engine_conf_defaults(&ec);
        ec.origins = map;
        ec.max_future_ms = -1;
        tt_engine *e =
            tt_engine_new(&ec, &recorder_sink, &ref, err, sizeof(err));
        const tt_gen_sink gs = {replay_event, NULL};
        tt_gen_run(&gc, &gs, e, err, sizeof(err));
        tt_engine_close_all(e, 0);
        tt_engine_destroy(e);

        size_t na, nb;
        char **a = rows_text(&live, &na), **b = rows_text(&ref, &nb);
        ck_assert_uint_eq(na, nb);
        for (size_t i = 0; i < na; i++)
                ck_assert_str_eq(a[i], b[i]);
        ck_assert_uint_eq(live.nstreaks, ref.nstreaks);
        char out_err[256];
        ck_assert_int_eq(tt_kafka_out_flush(o, 10000, out_err, sizeof(out_err)),
                         0);
        ck_assert_uint_eq(tt_kafka_out_delivered(o),
                          live.nrows + live.nstreaks);
        for (size_t i = 0; i < na; i++) {
                free(a[i]);
                free(b[i]);
        }
        free(a);
        free(b);
        tt_kafka_out_destroy(o);
        recorder_free(&live);
        recorder_free(&ref);
}
END_TEST

/* Produces one JSON event to a partition. */
static void put(rd_kafka_t *p, const char *topic, int part, int64_t t,
                const char *model) {
        char buf[256];
        int n = snprintf(buf, sizeof(buf),
                         "{\"request_id\":\"r\",\"event_time\":%lld,"
                         "\"model\":\"%s\",\"prompt_tokens\":10,"
                         "\"completion_tokens\":1}",
                         (long long)t, model);
        ck_assert_int_eq(
            rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                RD_KAFKA_V_VALUE(buf, (size_t)n),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
}

#define W10 INT64_C(1772409600000)
#define WEEK INT64_C(604800000)

/* Runs the stage on its own thread until week's TOTAL row is FINAL (the
 * week closed; PROVISIONAL rows come every emit_interval_ms before that)
 * or secs pass, then stops it. true when the week closed. */
static bool run_until_final(tt_stage_conf *sc, const recorder *rc,
                            const char *week, int secs) {
        run_arg a = {.sc = sc};
        pthread_t th;
        pthread_create(&th, NULL, run_thread, &a);
        bool closed = false;
        for (int i = 0; i < secs * 10 && !closed; i++) {
                usleep(100000);
                pthread_mutex_lock(&rec_mu);
                const rec_row *r = latest(rc, week, TT_DIM_TOTAL, "*");
                closed = r && r->r.status == TT_STATUS_FINAL;
                pthread_mutex_unlock(&rec_mu);
        }
        a.stop = 1;
        pthread_join(th, NULL);
        ck_assert_msg(a.rc == 0, "%s", a.err);
        return closed;
}

START_TEST(test_idle_partition) {
        topics("in.idle", 2);
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, err, sizeof(err));
        rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        /* Partition 1 has one event in W10 and then nothing; partition 0
         * goes on into W12. */
        put(p, "in.idle", 1, W10 + 3600000, "openai/x");
        for (int i = 0; i < 30; i++)
                put(p, "in.idle", 0, W10 + i * (WEEK / 12), "qwen/y");
        rd_kafka_flush(p, 10000);
        rd_kafka_destroy(p);

        recorder rc = {0};
        tt_kafka_out *o = mkout(true);
        tt_stage_conf sc;
        stage_conf(&sc, "in.idle", o, &rc);
        sc.format = TT_IN_JSON;
        sc.close_at_eof = false;
        sc.engine.idle_timeout_ms = 1500;
        sc.emit_interval_ms = 300;
        /* W11 can only close once partition 1 is idle. */
        ck_assert_msg(run_until_final(&sc, &rc, "2026-W11", 20),
                      "2026-W11 never closed: the idle partition held the "
                      "watermark");
        const rec_row *w10 = latest(&rc, "2026-W10", TT_DIM_TOTAL, "*");
        ck_assert_ptr_nonnull(w10);
        ck_assert_int_eq(w10->r.status, TT_STATUS_FINAL);
        ck_assert_int_eq(w10->r.requests, 13); /* 12 of p0 + 1 of p1 */
        /* W12 is still open: only PROVISIONAL rows, with what it has. */
        const rec_row *w12 = latest(&rc, "2026-W12", TT_DIM_TOTAL, "*");
        ck_assert_ptr_nonnull(w12);
        ck_assert_int_eq(w12->r.status, TT_STATUS_PROVISIONAL);
        ck_assert_int_eq(w12->r.revision, 0);
        ck_assert_int_eq(w12->r.tokens, 6 * 11);
        tt_kafka_out_destroy(o);
        recorder_free(&rc);
}
END_TEST

/* A partition whose first fetch is slow is not idle: it has messages to
 * read. Partition 1's leader answers 2.5 s late; with --idle-timeout 1 s
 * it used to count as idle before its first message, so 2026-W10 closed
 * on partition 0's events alone and partition 1's arrived as revisions
 * (the restart_long scenario in containers: a week FINAL with half its
 * tokens). Now 2026-W10 closes once, with both partitions' events. */
START_TEST(test_slow_partition_holds) {
        rd_kafka_mock_cluster_t *one = mcluster;
        const char *one_bs = bootstraps;
        mcluster = rd_kafka_mock_cluster_new(mock_rk, 2);
        ck_assert_ptr_nonnull(mcluster);
        bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
        topics("in.slow", 2);
        rd_kafka_mock_partition_set_leader(mcluster, "in.slow", 0, 1);
        rd_kafka_mock_partition_set_leader(mcluster, "in.slow", 1, 2);
        rd_kafka_mock_coordinator_set(mcluster, "group", "g", 1);
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, err, sizeof(err));
        rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        for (int i = 0; i < 5; i++)
                put(p, "in.slow", 1, W10 + (i + 1) * 3600000, "openai/x");
        for (int i = 0; i < 30; i++)
                put(p, "in.slow", 0, W10 + i * (WEEK / 12), "qwen/y");
        ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
        rd_kafka_destroy(p);
        rd_kafka_mock_broker_set_rtt(mcluster, 2, 2500);

        recorder rc = {0};
        tt_kafka_out *o = mkout(true);
        tt_stage_conf sc;
        stage_conf(&sc, "in.slow", o, &rc);
        sc.format = TT_IN_JSON;
        sc.close_at_eof = false;
        sc.engine.idle_timeout_ms = 1000;
        sc.emit_interval_ms = 300;
        /* W11 closes once partition 1 is read to its end and quiet. */
        ck_assert_msg(run_until_final(&sc, &rc, "2026-W11", 30),
                      "2026-W11 never closed");
        size_t w10 = 0;
        for (size_t i = 0; i < rc.nrows; i++) {
                const tt_rollup *r = &rc.rows[i].r;
                ck_assert_msg(r->status != TT_STATUS_REVISED,
                              "%s %s revised: a week closed before the slow "
                              "partition was read",
                              r->week, rc.rows[i].key);
                if (!strcmp(r->week, "2026-W10") &&
                    r->dimension == TT_DIM_TOTAL &&
                    r->status == TT_STATUS_FINAL) {
                        ck_assert_int_eq(r->requests, 12 + 5);
                        w10++;
                }
        }
        ck_assert_uint_eq(w10, 1);
        tt_kafka_out_destroy(o);
        recorder_free(&rc);
        rd_kafka_mock_cluster_destroy(mcluster);
        mcluster = one;
        bootstraps = one_bs;
}
END_TEST

/* Reads every message of a one-partition topic. The messages keep *rkp
 * alive: destroy them before rd_kafka_destroy(*rkp). */
static int read_all(const char *topic, rd_kafka_message_t **out, int max,
                    rd_kafka_t **rkp) {
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, err, sizeof(err));
        rd_kafka_conf_set(c, "group.id", "reader", err, sizeof(err));
        rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof(err));
        rd_kafka_conf_set(c, "fetch.message.max.bytes", "4000000", err,
                          sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        int n = 0;
        for (int i = 0; i < 100; i++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        rd_kafka_message_destroy(m);
                        break;
                }
                if (m->err || n == max)
                        rd_kafka_message_destroy(m);
                else
                        out[n++] = m;
        }
        rd_kafka_consumer_close(rk);
        *rkp = rk;
        return n;
}

static const char *header(const rd_kafka_message_t *m, const char *name,
                          char *buf, size_t size) {
        rd_kafka_headers_t *h;
        const void *v;
        size_t n;
        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, name, &v, &n))
                return NULL;
        snprintf(buf, size, "%.*s", (int)n, (const char *)v);
        return buf;
}

START_TEST(test_bad_messages) {
        topics("in.bad", 3);
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, err, sizeof(err));
        rd_kafka_conf_set(c, "message.max.bytes", "4000000", err, sizeof(err));
        rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        for (int i = 0; i < 100; i++)
                put(p, "in.bad", i % 3, W10 + i * 60000, "openai/x");
        static char big[1000000];
        memset(big, 'x', sizeof(big));
        static const struct {
                const char *reason;
                const char *value; /* NULL: no value; "" : the 1 MB one */
        } bad[] = {
            {"malformed", "not json"},
            {"missing_field", "{\"request_id\":\"r\",\"event_time\":"
                              "1772409600000,\"prompt_tokens\":1,"
                              "\"completion_tokens\":1}"},
            {"negative_tokens", "{\"request_id\":\"r\",\"event_time\":"
                                "1772409600000,\"model\":\"a/b\","
                                "\"prompt_tokens\":-1,\"completion_tokens\""
                                ":1}"},
            {"malformed", NULL},
            {"malformed", ""},
        };
        const int nbad = (int)(sizeof(bad) / sizeof(bad[0]));
        for (int i = 0; i < nbad; i++) {
                const void *v =
                    bad[i].value ? (*bad[i].value ? (const void *)bad[i].value
                                                  : (const void *)big)
                                 : NULL;
                size_t n = bad[i].value ? (*bad[i].value ? strlen(bad[i].value)
                                                         : sizeof(big))
                                        : 0;
                char key[16];
                snprintf(key, sizeof(key), "bad-%d", i);
                ck_assert_int_eq(
                    rd_kafka_producev(p, RD_KAFKA_V_TOPIC("in.bad"),
                                      RD_KAFKA_V_PARTITION(i % 3),
                                      RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE((void *)v, n),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END),
                    0);
        }
        ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
        rd_kafka_destroy(p);

        static const char *const props[] = {"message.max.bytes=4000000"};
        recorder rc = {0};
        char oerr[256];
        tt_kafka_out_conf oc = {.brokers = bootstraps,
                                .rollups_topic = "out.rollups",
                                .streaks_topic = "out.streaks",
                                .dlq_topic = "out.dlq",
                                .props = props,
                                .nprops = 1};
        tt_kafka_out *o = tt_kafka_out_new(&oc, oerr, sizeof(oerr));
        ck_assert_msg(o != NULL, "%s", oerr);
        tt_stage_conf sc;
        stage_conf(&sc, "in.bad", o, &rc);
        sc.format = TT_IN_JSON;
        sc.props = props;
        sc.nprops = 1;
        volatile sig_atomic_t stop = 0;
        tt_stage_stats st;
        ck_assert_msg(!tt_stage_run(&sc, &stop, &st, err, sizeof(err)), "%s",
                      err);
        ck_assert_uint_eq(st.accepted, 100);
        ck_assert_uint_eq(st.dead_letters, (uint64_t)nbad);
        ck_assert_int_eq(latest(&rc, "2026-W10", TT_DIM_TOTAL, "*")->r.tokens,
                         1100);
        tt_kafka_out_destroy(o);

        rd_kafka_message_t *got[16];
        rd_kafka_t *reader;
        int n = read_all("out.dlq", got, 16, &reader);
        ck_assert_int_eq(n, nbad);
        int seen = 0;
        for (int k = 0; k < n; k++) {
                char key[16], buf[256];
                snprintf(key, sizeof(key), "%.*s", (int)got[k]->key_len,
                         (const char *)got[k]->key);
                int i = atoi(key + 4);
                ck_assert_str_eq(
                    header(got[k], "tokentally.reason", buf, sizeof(buf)),
                    bad[i].reason);
                ck_assert_str_eq(
                    header(got[k], "tokentally.topic", buf, sizeof(buf)),
                    "in.bad");
                ck_assert_ptr_nonnull(
                    header(got[k], "tokentally.offset", buf, sizeof(buf)));
                ck_assert_ptr_nonnull(
                    header(got[k], "tokentally.detail", buf, sizeof(buf)));
                char part[8];
                snprintf(part, sizeof(part), "%d", i % 3);
                ck_assert_str_eq(
                    header(got[k], "tokentally.partition", buf, sizeof(buf)),
                    part);
                if (!bad[i].value) {
                        ck_assert_ptr_null(got[k]->payload);
                } else if (!*bad[i].value) {
                        ck_assert_uint_eq(got[k]->len, sizeof(big));
                        ck_assert_int_eq(
                            memcmp(got[k]->payload, big, sizeof(big)), 0);
                } else {
                        ck_assert_uint_eq(got[k]->len, strlen(bad[i].value));
                        ck_assert_int_eq(
                            memcmp(got[k]->payload, bad[i].value, got[k]->len),
                            0);
                }
                seen |= 1 << i;
                rd_kafka_message_destroy(got[k]);
        }
        ck_assert_int_eq(seen, (1 << nbad) - 1);
        rd_kafka_destroy(reader);
        recorder_free(&rc);
}
END_TEST

int main(void) {
        Suite *s = suite_create("stage_mock");
        TCase *tc = tcase_create("mock");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_scenario_equals_replay);
        tcase_add_test(tc, test_idle_partition);
        tcase_add_test(tc, test_slow_partition_holds);
        tcase_add_test(tc, test_bad_messages);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
