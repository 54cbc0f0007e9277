/* `tokentally demo`: the whole Kafka stage with no broker to install. It
 * starts librdkafka's mock cluster in this process, produces the april-2026
 * scenario into a 6-partition input topic, runs the stage on it until every
 * partition is at its end, and prints the leaderboard that the stage wrote
 * to its output topics. */
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
#include "tokentally/options.h"
#include "tokentally/setup.h"
#include "tokentally/stage.h"

#define INPUT_PARTITIONS 6

/* The latest record of every row and streak, for the leaderboard. */
typedef struct row {
        char week[16];
        tt_dim dim;
        char key[260];
        char origin[4];
        int64_t tokens;
        bool has_growth;
        double growth, share;
        int32_t rank;
} row;

typedef struct streak {
        char rule[64], week[16], holder[260], runner[260];
        tt_streak_kind kind;
        int32_t length;
        bool has_margin;
        double margin;
} streak;

typedef struct board {
        row *rows;
        size_t nrows, caprows;
        streak *streaks;
        size_t nstreaks, capstreaks;
        uint64_t rollups, streak_records;
} board;

static void cpy(char *dst, size_t size, tt_str s) {
        size_t n = s.ptr ? (s.len < size - 1 ? s.len : size - 1) : 0;
        if (n)
                memcpy(dst, s.ptr, n);
        dst[n] = '\0';
}

static int board_rollup(void *opaque, const tt_rollup *r) {
        board *b = opaque;
        char key[260];
        cpy(key, sizeof(key), r->key);
        b->rollups++;
        row *x = NULL;
        for (size_t i = 0; i < b->nrows && !x; i++)
                if (b->rows[i].dim == r->dimension &&
                    !strcmp(b->rows[i].week, r->week) &&
                    !strcmp(b->rows[i].key, key))
                        x = &b->rows[i];
        if (!x) {
                if (b->nrows == b->caprows) {
                        size_t n = b->caprows ? b->caprows * 2 : 256;
                        row *nr = realloc(b->rows, n * sizeof(*nr));
                        if (!nr)
                                return -1;
                        b->rows = nr;
                        b->caprows = n;
                }
                x = &b->rows[b->nrows++];
        }
        snprintf(x->week, sizeof(x->week), "%s", r->week);
        x->dim = r->dimension;
        snprintf(x->key, sizeof(x->key), "%s", key);
        cpy(x->origin, sizeof(x->origin), r->origin);
        x->tokens = r->tokens;
        x->has_growth = r->has_growth;
        x->growth = r->wow_growth_pct;
        x->share = r->share_pct;
        x->rank = r->rank;
        return 0;
}

static int board_streak(void *opaque, const tt_streak_change *s) {
        board *b = opaque;
        b->streak_records++;
        char rule[64];
        cpy(rule, sizeof(rule), s->rule);
        streak *x = NULL;
        for (size_t i = 0; i < b->nstreaks && !x; i++)
                if (!strcmp(b->streaks[i].rule, rule) &&
                    !strcmp(b->streaks[i].week, s->week))
                        x = &b->streaks[i];
        if (!x) {
                if (b->nstreaks == b->capstreaks) {
                        size_t n = b->capstreaks ? b->capstreaks * 2 : 64;
                        streak *ns = realloc(b->streaks, n * sizeof(*ns));
                        if (!ns)
                                return -1;
                        b->streaks = ns;
                        b->capstreaks = n;
                }
                x = &b->streaks[b->nstreaks++];
        }
        snprintf(x->rule, sizeof(x->rule), "%s", rule);
        snprintf(x->week, sizeof(x->week), "%s", s->week);
        cpy(x->holder, sizeof(x->holder), s->holder);
        cpy(x->runner, sizeof(x->runner), s->runner_up);
        x->kind = s->kind;
        x->length = s->length_weeks;
        x->has_margin = s->has_margin;
        x->margin = s->margin_pct;
        return 0;
}

static int cmp_week(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const row *find(const board *b, const char *week, tt_dim dim,
                       int32_t rank) {
        for (size_t i = 0; i < b->nrows; i++)
                if (b->rows[i].dim == dim && b->rows[i].rank == rank &&
                    !strcmp(b->rows[i].week, week))
                        return &b->rows[i];
        return NULL;
}

static void human(char *out, size_t size, int64_t t) {
        if (t >= 1000000000)
                snprintf(out, size, "%.3f G", (double)t / 1e9);
        else
                snprintf(out, size, "%.1f M", (double)t / 1e6);
}

static void print_board(const board *b, int nweeks) {
        const char *weeks[64];
        size_t nw = 0;
        for (size_t i = 0; i < b->nrows; i++) {
                if (b->rows[i].dim != TT_DIM_TOTAL || nw == 64)
                        continue;
                weeks[nw++] = b->rows[i].week;
        }
        qsort(weeks, nw, sizeof(weeks[0]), cmp_week);
        size_t from = nw > (size_t)nweeks ? nw - (size_t)nweeks : 0;
        printf("\nWeekly tokens by origin (scenario scale 1e-4: 1 G here is "
               "10 T in the headline)\n\n");
        printf("%-9s  %-28s %-28s %-28s %s\n", "week", "#1", "#2", "#3", "all");
        for (size_t i = from; i < nw; i++) {
                printf("%-9s ", weeks[i]);
                for (int r = 1; r <= 3; r++) {
                        const row *x = find(b, weeks[i], TT_DIM_ORIGIN, r);
                        char cell[64] = "", t[32];
                        if (x) {
                                human(t, sizeof(t), x->tokens);
                                if (x->has_growth)
                                        snprintf(cell, sizeof(cell),
                                                 "%s %s %+.2f%% %.1f%%", x->key,
                                                 t, x->growth, x->share);
                                else
                                        snprintf(cell, sizeof(cell),
                                                 "%s %s %.1f%%", x->key, t,
                                                 x->share);
                        }
                        printf(" %-28s", cell);
                }
                const row *t = find(b, weeks[i], TT_DIM_TOTAL, 1);
                char tt[32];
                human(tt, sizeof(tt), t ? t->tokens : 0);
                printf(" %s\n", tt);
        }
        if (!nw)
                return;
        const char *last = weeks[nw - 1];
        printf("\nTop models of %s\n", last);
        for (int r = 1; r <= 5; r++) {
                const row *x = find(b, last, TT_DIM_MODEL, r);
                if (!x)
                        break;
                char t[32];
                human(t, sizeof(t), x->tokens);
                printf("  %d. %-34s %s  %10s  %5.2f%%\n", r, x->key, x->origin,
                       t, x->share);
        }
        printf("\nStreaks after %s\n", last);
        for (size_t i = 0; i < b->nstreaks; i++) {
                const streak *s = &b->streaks[i];
                if (strcmp(s->week, last))
                        continue;
                printf("  %-22s %s has led for %d consecutive week%s", s->rule,
                       s->holder, s->length, s->length == 1 ? "" : "s");
                if (s->has_margin)
                        printf(", %.2f%% ahead of %s", s->margin, s->runner);
                printf("\n");
        }
}

static const char usage[] = "tokentally demo [options]";
static volatile sig_atomic_t never;

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
        int rc = 1;
        tt_setup su;
        memset(&su, 0, sizeof(su));
        board b;
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
        printf("embedded Kafka (librdkafka mock cluster) at %s\n", bootstraps);

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
        static const tt_sink tee = {board_rollup, board_streak};
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
        print_board(&b, 6);
        printf("\nTopics on %s: %s (%llu WeeklyRollup records), %s (%llu "
               "StreakChange records), %s (%llu dead letters); %s values, "
               "keys week/dimension/key and rule.\n",
               bootstraps, topics[1], (unsigned long long)b.rollups, topics[2],
               (unsigned long long)b.streak_records, topics[3],
               (unsigned long long)st.dead_letters,
               oc.json ? "JSON" : "Confluent-framed Avro");
        rc = 0;
done:
        tt_kafka_out_destroy(out);
        if (mock_rk)
                rd_kafka_destroy(mock_rk);
        free(b.rows);
        free(b.streaks);
        tt_setup_free(&su);
        tt_opts_destroy(o);
        return rc;
}
