/* /metrics, /healthz and /readyz of a running stage on librdkafka's mock
 * cluster (fast suite): the counters agree with what the test produced,
 * the probes follow the stage's life, and promtool accepts the page. */
#include <arpa/inet.h>
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "recorder.h"
#include "stage_thread.h"
#include "tokentally/engine.h"
#include "tokentally/kafka_out.h"
#include "tokentally/metrics.h"
#include "tokentally/stage.h"

#define TOPIC "in.metrics"
#define W10 INT64_C(1772409600000) /* Monday 2026-03-02 00:00 UTC */
#define WEEK INT64_C(604800000)
#define NGOOD 90

static rd_kafka_t *mock_rk;
static const char *bootstraps;
static tt_origin_map *map;
/* ---- a tiny HTTP client --------------------------------------------- */

/* GET path from 127.0.0.1:port; the status code, body in a malloc'd
 * string (*body, caller frees). */
static int get(int port, const char *path, char **body) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        char req[256];
        int n = snprintf(req, sizeof(req),
                         "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
        ck_assert_int_eq(write(fd, req, (size_t)n), n);
        size_t cap = 1 << 16, len = 0;
        char *buf = malloc(cap);
        ssize_t r;
        while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
                len += (size_t)r;
                if (len + 1 == cap)
                        buf = realloc(buf, cap *= 2);
        }
        close(fd);
        buf[len] = '\0';
        int code = 0;
        ck_assert_int_eq(sscanf(buf, "HTTP/1.%*d %d", &code), 1);
        char *b = strstr(buf, "\r\n\r\n");
        ck_assert_ptr_nonnull(b);
        *body = strdup(b + 4);
        free(buf);
        return code;
}

/* The value of one sample ("name" or "name{labels}"); -1 if absent. */
static double sample(const char *page, const char *series) {
        size_t n = strlen(series);
        for (const char *p = page; p && *p; p = strchr(p, '\n')) {
                if (*p == '\n')
                        p++;
                if (!strncmp(p, series, n) && p[n] == ' ')
                        return strtod(p + n + 1, NULL);
        }
        return -1;
}

static double scrape(int port, const char *series) {
        char *b;
        ck_assert_int_eq(get(port, "/metrics", &b), 200);
        double v = sample(b, series);
        free(b);
        return v;
}

/* ---- the stage on its own thread ------------------------------------ */

static void produce(rd_kafka_t *p, int part, const char *value) {
        ck_assert_int_eq(
            rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(part),
                RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
}

static void setup(void) {
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "test.mock.num.brokers", "1", err, sizeof(err));
        rd_kafka_conf_set(c, "log_level", "2", err, sizeof(err));
        mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        ck_assert_ptr_nonnull(mock_rk);
        rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(mock_rk);
        bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
        rd_kafka_mock_topic_create(mc, TOPIC, 3, 1);
        rd_kafka_mock_topic_create(mc, "out.rollups", 1, 1);
        rd_kafka_mock_topic_create(mc, "out.streaks", 1, 1);
        rd_kafka_mock_topic_create(mc, "out.dlq", 1, 1);
        map = default_origins();
        ck_assert_ptr_nonnull(map);
}

static void teardown(void) {
        rd_kafka_destroy(mock_rk);
        tt_origin_map_destroy(map);
}

/* Runs promtool on page; its complaints, or NULL when it is satisfied. */
static char *promtool(const char *page) {
        char path[] = "/tmp/tt_metrics_XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, page, strlen(page)), (ssize_t)strlen(page));
        close(fd);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
        FILE *f = popen(cmd, "r");
        ck_assert_ptr_nonnull(f);
        static char out[8192];
        size_t n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = '\0';
        int rc = pclose(f);
        unlink(path);
        return rc || n ? out : NULL;
}

START_TEST(test_metrics_agree) {
        /* NGOOD events over three partitions, from W10 into W12, so that W10
         * and W11 close while the stage runs; then bad messages. */
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, err, sizeof(err));
        rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        for (int i = 0; i < NGOOD; i++) {
                char v[256];
                snprintf(v, sizeof(v),
                         "{\"request_id\":\"r%d\",\"event_time\":%lld,"
                         "\"model\":\"%s\",\"prompt_tokens\":10,"
                         "\"completion_tokens\":1}",
                         i, (long long)(W10 + i * (WEEK * 5 / 2 / NGOOD)),
                         i % 2 ? "openai/x" : "qwen/y");
                produce(p, i % 3, v);
        }
        static const struct {
                const char *reason, *value;
        } bad[] = {
            {"malformed", "not json"},
            {"malformed", "{\"request_id\":"},
            {"malformed", NULL},
            {"missing_field", "{\"request_id\":\"r\",\"event_time\":"
                              "1772409600000,\"prompt_tokens\":1,"
                              "\"completion_tokens\":1}"},
            {"negative_tokens", "{\"request_id\":\"r\",\"event_time\":"
                                "1772409600000,\"model\":\"a/b\","
                                "\"prompt_tokens\":-1,\"completion_tokens\""
                                ":1}"},
        };
        const int nbad = (int)(sizeof(bad) / sizeof(bad[0]));
        for (int i = 0; i < nbad; i++)
                produce(p, i % 3, bad[i].value);
        ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
        rd_kafka_destroy(p);

        tt_stage_live *live = tt_stage_live_new();
        ck_assert_ptr_nonnull(live);
        tt_metrics_server *ms = tt_metrics_server_new(
            "127.0.0.1:0", tt_stage_live_read, live, err, sizeof(err));
        ck_assert_msg(ms != NULL, "%s", err);
        int port = tt_metrics_server_port(ms);
        ck_assert_int_gt(port, 0);
        char *body;
        /* Before the stage: alive, not ready. */
        ck_assert_int_eq(get(port, "/healthz", &body), 200);
        free(body);
        ck_assert_int_eq(get(port, "/readyz", &body), 503);
        ck_assert_ptr_nonnull(strstr(
            body,
            "no partition assigned yet: connecting to the Kafka cluster"));
        free(body);

        tt_kafka_out_conf oc = {.brokers = bootstraps,
                                .rollups_topic = "out.rollups",
                                .streaks_topic = "out.streaks",
                                .dlq_topic = "out.dlq",
                                .json = true};
        tt_kafka_out *o = tt_kafka_out_new(&oc, err, sizeof(err));
        ck_assert_msg(o != NULL, "%s", err);
        static const tt_sink tee = {locked_rollup, locked_streak};
        recorder rc = {0};
        tt_stage_conf sc;
        memset(&sc, 0, sizeof(sc));
        sc.brokers = bootstraps;
        sc.group = "gm";
        sc.topic = TOPIC;
        sc.format = TT_IN_JSON;
        sc.workers = 2;
        sc.from_beginning = true;
        sc.emit_interval_ms = 200;
        sc.commit_interval_ms = 300;
        tt_engine_conf_defaults(&sc.engine);
        sc.engine.origins = map;
        sc.engine.max_future_ms = -1;
        sc.out = o;
        sc.tee = &tee;
        sc.tee_opaque = &rc;
        sc.live = live;
        run_arg a = {.sc = &sc};
        pthread_t th;
        pthread_create(&th, NULL, run_thread, &a);

        /* Everything read, two weeks closed, a commit made. */
        const uint64_t total = NGOOD + (uint64_t)nbad;
        bool done = false;
        for (int i = 0; i < 300 && !done; i++) {
                usleep(100000);
                done = scrape(port, "tokentally_events_total") == total &&
                       scrape(port, "tokentally_week_closes_total") >= 2 &&
                       scrape(port, "tokentally_commits_total") >= 1;
        }
        ck_assert_msg(done, "the stage did not get through its input");
        ck_assert_int_eq(get(port, "/readyz", &body), 200);
        free(body);
        ck_assert_int_eq(get(port, "/healthz", &body), 200);
        free(body);

        /* The input is all read: the page must agree exactly with our
         * counts, and with the recorder's (outputs come only from the
         * coordinator, which publishes before resuming the workers). */
        char *page;
        ck_assert_int_eq(get(port, "/metrics", &page), 200);
        ck_assert_double_eq(sample(page, "tokentally_events_total"), total);
        ck_assert_double_eq(sample(page, "tokentally_events_accepted_total"),
                            NGOOD);
        int want[TT_REASON__COUNT] = {0};
        for (int i = 0; i < nbad; i++)
                for (int r = 1; r < TT_REASON__COUNT; r++)
                        if (!strcmp(bad[i].reason, tt_reason_str(r)))
                                want[r]++;
        for (int r = 1; r < TT_REASON__COUNT; r++) {
                char s[128];
                snprintf(s, sizeof(s),
                         "tokentally_dead_letters_total{reason=\"%s\"}",
                         tt_reason_str(r));
                ck_assert_msg(sample(page, s) == want[r], "%s = %g, want %d", s,
                              sample(page, s), want[r]);
        }
        ck_assert_double_eq(sample(page, "tokentally_partitions_assigned"), 3);
        ck_assert_double_eq(sample(page, "tokentally_ready"), 1);
        ck_assert_double_ge(sample(page, "tokentally_rebalances_total"), 1);
        for (int part = 0; part < 3; part++) {
                char s[128];
                snprintf(s, sizeof(s),
                         "tokentally_partition_lag_messages{topic=\"" TOPIC
                         "\",partition=\"%d\"}",
                         part);
                ck_assert_msg(sample(page, s) == 0, "%s = %g", s,
                              sample(page, s));
                snprintf(s, sizeof(s),
                         "tokentally_partition_watermark_timestamp_seconds{"
                         "topic=\"" TOPIC "\",partition=\"%d\"}",
                         part);
                /* The newest event of each partition (the last three). */
                int last = NGOOD - 3 + part;
                ck_assert_double_eq_tol(
                    sample(page, s),
                    (double)(W10 + last * (WEEK * 5 / 2 / NGOOD)) / 1000, 1e-3);
        }
        pthread_mutex_lock(&rec_mu);
        uint64_t rows[3] = {0};
        for (size_t i = 0; i < rc.nrows; i++)
                rows[rc.rows[i].r.status]++;
        size_t nstreaks = rc.nstreaks;
        pthread_mutex_unlock(&rec_mu);
        /* Rows emitted since the page was taken would make these differ:
         * the input is all read and no week is due, but PROVISIONAL rows
         * can still come every emit interval, so compare FINAL exactly and
         * PROVISIONAL as a lower bound. */
        ck_assert_double_eq(
            sample(page, "tokentally_rows_emitted_total{status=\"final\"}"),
            rows[TT_STATUS_FINAL]);
        ck_assert_uint_gt(rows[TT_STATUS_FINAL], 0);
        ck_assert_double_le(
            sample(page,
                   "tokentally_rows_emitted_total{status=\"provisional\"}"),
            rows[TT_STATUS_PROVISIONAL]);
        ck_assert_double_eq(sample(page, "tokentally_streak_changes_total"),
                            nstreaks);
        /* W10 and W11 closed: 5 rows each (TOTAL, CN, US, two models); W12
         * open: its two models in the shards (2 to 4 cells over the
         * workers), plus up to 5 rows of its PROVISIONAL view. */
        double keys = sample(page, "tokentally_state_keys");
        ck_assert_double_ge(keys, 12);
        ck_assert_double_le(keys, 19);
        /* The open week's two models, counted by one or two workers. */
        double models =
            sample(page, "tokentally_week_models{week=\"2026-W12\"}");
        ck_assert_double_ge(models, 2);
        ck_assert_double_le(models, 4);
        ck_assert_double_gt(sample(page, "tokentally_state_bytes"), 0);
        ck_assert_double_eq(sample(page, "tokentally_max_keys"), 0);
        ck_assert_double_eq(sample(page, "tokentally_key_limit_reached"), 0);
        ck_assert_double_ge(
            sample(page, "tokentally_emit_latency_seconds_count"), 1);
        ck_assert_double_eq(
            sample(page, "tokentally_commit_latency_seconds_count"),
            sample(page, "tokentally_commits_total"));
        char *complaints = promtool(page);
        ck_assert_msg(complaints == NULL, "promtool check metrics: %s",
                      complaints);
        free(page);

        a.stop = 1;
        pthread_join(th, NULL);
        ck_assert_msg(a.rc == 0, "%s", a.err);
        /* Stopped cleanly: alive, not ready; the final counts stay. */
        ck_assert_int_eq(get(port, "/healthz", &body), 200);
        free(body);
        ck_assert_int_eq(get(port, "/readyz", &body), 503);
        ck_assert_ptr_nonnull(strstr(body, "stopped"));
        free(body);
        ck_assert_double_eq(scrape(port, "tokentally_events_total"), total);
        ck_assert_uint_eq(a.st.messages, total);
        /* The revoke in consumer close commits once more after the run's
         * stats were taken. */
        ck_assert_double_ge(scrape(port, "tokentally_commits_total"),
                            a.st.commits);
        tt_metrics_server_destroy(ms);
        tt_stage_live_destroy(live);
        tt_kafka_out_destroy(o);
        recorder_free(&rc);
}
END_TEST

/* The text writer on its own: escaping and histogram shape. */
START_TEST(test_writer) {
        tt_buf b;
        tt_buf_init(&b, 1 << 16);
        tt_metrics_family(&b, "x_total", "counter", "a \\ b\nc");
        tt_buf_append(&b, "x_total{l=\"", 11);
        tt_metrics_label_value(&b, "q\"\\\n");
        tt_buf_append(&b, "\"} 1\n", 5);
        tt_hist h;
        memset(&h, 0, sizeof(h));
        tt_hist_observe(&h, 0.0001);
        tt_hist_observe(&h, 0.003);
        tt_hist_observe(&h, 60);
        tt_hist_snap hs;
        tt_hist_read(&h, &hs);
        tt_metrics_hist(&b, "y_seconds", "latency", &hs);
        tt_buf_putc(&b, '\0');
        const char *t = (const char *)b.data;
        ck_assert_ptr_nonnull(strstr(t, "# HELP x_total a \\\\ b\\nc\n"));
        ck_assert_ptr_nonnull(strstr(t, "x_total{l=\"q\\\"\\\\\\n\"} 1\n"));
        ck_assert_double_eq(sample(t, "y_seconds_bucket{le=\"0.0005\"}"), 1);
        ck_assert_double_eq(sample(t, "y_seconds_bucket{le=\"0.005\"}"), 2);
        ck_assert_double_eq(sample(t, "y_seconds_bucket{le=\"10\"}"), 2);
        ck_assert_double_eq(sample(t, "y_seconds_bucket{le=\"+Inf\"}"), 3);
        ck_assert_double_eq(sample(t, "y_seconds_count"), 3);
        ck_assert_double_eq_tol(sample(t, "y_seconds_sum"), 60.0031, 1e-6);
        b.len--;
        tt_buf_putc(&b, '\0');
        ck_assert_ptr_null(promtool(t));
        tt_buf_free(&b);
}
END_TEST

START_TEST(test_bad_addr) {
        char err[256];
        ck_assert_ptr_null(tt_metrics_server_new("nocolon", tt_stage_live_read,
                                                 NULL, err, sizeof(err)));
        ck_assert_ptr_nonnull(strstr(err, "HOST:PORT"));
        tt_stage_live *live = tt_stage_live_new();
        tt_metrics_server *a = tt_metrics_server_new(
            "127.0.0.1:0", tt_stage_live_read, live, err, sizeof(err));
        ck_assert_msg(a != NULL, "%s", err);
        /* The same port twice: the second cannot listen. */
        char addr[64];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", tt_metrics_server_port(a));
        ck_assert_ptr_null(tt_metrics_server_new(addr, tt_stage_live_read, live,
                                                 err, sizeof(err)));
        ck_assert_ptr_nonnull(strstr(err, "cannot listen"));
        tt_metrics_server_destroy(a);
        tt_stage_live_destroy(live);
}
END_TEST

int main(void) {
        Suite *s = suite_create("metrics_mock");
        TCase *tc = tcase_create("mock");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_writer);
        tcase_add_test(tc, test_bad_addr);
        tcase_add_test(tc, test_metrics_agree);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
