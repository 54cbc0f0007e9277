/* `tokentally demo`: the whole Kafka stage with no broker to install. It
 * starts librdkafka's mock cluster in this process, produces the april-2026
 * scenario into a 6-partition input topic, runs the stage on it until every
 * partition is at its end, and prints the leaderboard that the stage wrote
 * to its output topics. The cluster lives in this process: its address is
 * printed only with --keep, which keeps it up until Ctrl-C. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokentally/cli.h"
#include "tokentally/gen_kafka.h"
#include "tokentally/kafka_out.h"
#include "tokentally/leaderboard.h"
#include "tokentally/options.h"
#include "tokentally/serve_run.h"
#include "tokentally/setup.h"
#include "tokentally/stage.h"

#define INPUT_PARTITIONS 6

static const char usage[] =
    "tokentally demo [--keep] [--serve [--listen HOST:PORT]] [options]";
static volatile sig_atomic_t never;
static volatile sig_atomic_t stop_keeping;

static void on_stop(int sig) {
        (void)sig;
        stop_keeping = 1;
}

static void on_signals(void) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

/* --keep: wait for SIGINT/SIGTERM with the cluster's threads serving. */
static void keep_until_signal(void) {
        on_signals();
        while (!stop_keeping) {
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
}

int tt_cmd_demo(int argc, char **argv) {
        char errstr[512];
        bool help;
        tt_opts *o = tt_opts_parse(TT_CMD_DEMO, argc, argv, &help, errstr,
                                   sizeof(errstr));
        if (!o) {
                fprintf(stderr, "tokentally demo: %s\n", errstr);
                return 2;
        }
        if (help) {
                tt_opts_help(stdout, TT_CMD_DEMO, usage);
                tt_opts_destroy(o);
                return 0;
        }
        if (tt_opts_npos(o) > 0) {
                fprintf(stderr,
                        "tokentally demo: unexpected argument '%s' (demo "
                        "takes options only)\nusage: %s\n",
                        tt_opts_pos(o, 0), usage);
                tt_opts_destroy(o);
                return 2;
        }
        bool keep = tt_opts_flag(o, "keep");
        int rc = 1;
        tt_setup su;
        memset(&su, 0, sizeof(su));
        tt_board b;
        memset(&b, 0, sizeof(b));
        rd_kafka_t *mock_rk = NULL;
        tt_kafka_out *out = NULL;
        tt_stage_conf sc;
        if (tt_stage_conf_from_opts(&sc, &su, o, TT_CMD_DEMO, errstr,
                                    sizeof(errstr))) {
                fprintf(stderr, "tokentally demo: %s\n", errstr);
                rc = 2;
                goto done;
        }
        /* A client with test.mock.num.brokers owns an in-process cluster
         * that any other client can reach on its loopback bootstraps. */
        rd_kafka_conf_t *mc = rd_kafka_conf_new();
        char why[256];
        rd_kafka_conf_set(mc, "test.mock.num.brokers", "1", why, sizeof(why));
        rd_kafka_conf_set(mc, "log_level", "3", why, sizeof(why));
        mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, mc, why, sizeof(why));
        if (!mock_rk) {
                fprintf(stderr, "tokentally demo: mock cluster: %s\n", why);
                goto done;
        }
        rd_kafka_mock_cluster_t *mcluster =
            rd_kafka_handle_mock_cluster(mock_rk);
        const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
        const char *topics[4] = {sc.topic, tt_opts_str(o, "rollups-topic"),
                                 tt_opts_str(o, "streaks-topic"),
                                 tt_opts_str(o, "dlq-topic")};
        for (int i = 0; i < 4; i++)
                rd_kafka_mock_topic_create(mcluster, topics[i],
                                           i == 0 ? INPUT_PARTITIONS : 1, 1);
        printf("embedded Kafka (librdkafka mock cluster) started in this "
               "process\n");

        struct timespec t0, t1, t2;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        tt_gen_conf gc = {.scenario = "april-2026", .scale = 1e-4, .seed = 1};
        /* The mock cluster keeps only the newest 5 MB of each partition:
         * compressed batches keep the whole scenario. */
        static const char *const lz4[] = {"compression.codec=lz4"};
        tt_gen_kafka_conf gkc = {.brokers = bootstraps,
                                 .topic = sc.topic,
                                 .props = lz4,
                                 .nprops = 1};
        uint64_t produced;
        if (tt_gen_to_kafka(&gc, &gkc, &produced, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally demo: producing the scenario: %s\n",
                        errstr);
                goto done;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("produced %llu april-2026 events to %s (%d partitions, "
               "Confluent-framed Avro) in %.1f s\n",
               (unsigned long long)produced, sc.topic, INPUT_PARTITIONS,
               (double)(t1.tv_sec - t0.tv_sec) +
                   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);

        tt_kafka_out_conf oc = {
            .brokers = bootstraps,
            .rollups_topic = topics[1],
            .streaks_topic = topics[2],
            .dlq_topic = topics[3],
            .json = !strcmp(tt_opts_str(o, "output-format"), "json"),
        };
        out = tt_kafka_out_new(&oc, errstr, sizeof(errstr));
        if (!out) {
                fprintf(stderr, "tokentally demo: %s\n", errstr);
                goto done;
        }
        static const tt_sink tee = {tt_board_rollup, tt_board_streak};
        sc.brokers = bootstraps;
        sc.group = "tokentally-demo";
        sc.out = out;
        sc.close_at_eof = true;
        sc.from_beginning = true;
        sc.tee = &tee;
        sc.tee_opaque = &b;
        sc.emit_interval_ms = 0;
        tt_stage_stats st;
        if (tt_stage_run(&sc, &never, &st, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally demo: %s\n", errstr);
                goto done;
        }
        clock_gettime(CLOCK_MONOTONIC, &t2);
        printf("the stage consumed %llu events with %d workers in %.1f s: "
               "%llu dead letters, %llu weeks closed\n",
               (unsigned long long)st.messages, sc.workers,
               (double)(t2.tv_sec - t1.tv_sec) +
                   (double)(t2.tv_nsec - t1.tv_nsec) / 1e9,
               (unsigned long long)st.dead_letters,
               (unsigned long long)st.engine.weeks_closed);
        tt_board_print(stdout, &b, 6, TT_BOARD_SCENARIO_NOTE);
        printf("\nTopics: %s (%llu WeeklyRollup records), %s (%llu "
               "StreakChange records), %s (%llu dead letters); %s values, "
               "keys week/dimension/key and rule.\n",
               topics[1], (unsigned long long)b.rollups, topics[2],
               (unsigned long long)b.streak_records, topics[3],
               (unsigned long long)st.dead_letters,
               oc.json ? "JSON" : "Confluent-framed Avro");
        if (tt_opts_flag(o, "serve")) {
                /* `serve` on the embedded cluster, in this process, until
                 * Ctrl-C: the cluster lives as long as the page. */
                on_signals();
                tt_follow_conf fc = {.brokers = bootstraps,
                                     .rollups_topic = topics[1],
                                     .streaks_topic = topics[2],
                                     .connect_timeout_ms = 30000,
                                     .client_id = "tokentally-demo-serve"};
                printf("The leaderboard as a page, until Ctrl-C:\n");
                fflush(stdout);
                if (tt_serve_run(&fc, tt_opts_str(o, "listen"), &stop_keeping,
                                 errstr, sizeof(errstr))) {
                        fprintf(stderr, "tokentally demo: %s\n", errstr);
                        goto done;
                }
        } else if (keep) {
                /* Printed only now: before, the address was gone by the
                 * time anyone read it. */
                printf("The embedded Kafka cluster stays up at %s until "
                       "Ctrl-C; for example:\n  tokentally tail --brokers %s "
                       "--from-beginning --exit-at-eof --format table "
                       "--topic %s,%s\n",
                       bootstraps, bootstraps, topics[1], topics[2]);
                fflush(stdout);
                keep_until_signal();
        } else {
                printf("(The embedded cluster is gone when demo exits; "
                       "--keep keeps it up until Ctrl-C; --serve also "
                       "serves this leaderboard as a page until Ctrl-C.)\n");
        }
        rc = 0;
done:
        tt_kafka_out_destroy(out);
        if (mock_rk)
                rd_kafka_destroy(mock_rk);
        tt_board_free(&b);
        tt_setup_free(&su);
        tt_opts_destroy(o);
        return rc;
}
