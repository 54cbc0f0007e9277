/* `tokentally run`: the Kafka stage (SPEC §7). Options and environment
 * come from the shared table; SIGTERM/SIGINT stop consuming, deliver,
 * commit and exit 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tokentally/cli.h"
#include "tokentally/deadline.h"
#include "tokentally/err.h"
#include "tokentally/kafka_out.h"
#include "tokentally/log.h"
#include "tokentally/metrics.h"
#include "tokentally/options.h"
#include "tokentally/schema_registry.h"
#include "tokentally/setup.h"
#include "tokentally/stage.h"

static volatile sig_atomic_t stop_flag;
static tt_deadline *volatile stop_deadline;

static void on_signal(int sig) {
        (void)sig;
        stop_flag = 1;
        tt_deadline_arm(stop_deadline);
}

/* --shutdown-timeout ran out (on the deadline's thread; exit 1 follows). */
static void stop_overran(void *opaque, const char *phase, int64_t ms) {
        (void)opaque;
        TT_LOG(TT_LOG_ERROR,
               "run: the stop did not finish within --shutdown-timeout: "
               "exiting 1 (what was not committed is read again by the next "
               "run)",
               TT_KV_S("phase", phase), TT_KV_I("shutdown_timeout_ms", ms));
}

static const char usage[] = "tokentally run [options]";

/* The last line of every run that started: how it ended, what it read,
 * and what of its results is emitted and committed (issue 9). msg keeps
 * the old wording ("run: N messages, N accepted, ...") after the outcome
 * for scripts that grep it. */
static void log_summary(const tt_stage_conf *sc, const tt_stage_stats *st,
                        int err, const char *errstr) {
        const char *how = err                 ? "failed"
                          : !sc->close_at_eof ? "stopped"
                          : st->closed        ? "closed at the end of input"
                                              : "stopped before the end of "
                                                "input";
        uint64_t rows =
            st->engine.rows[0] + st->engine.rows[1] + st->engine.rows[2];
        /* Exactly-once: rows exist only in the merger; a front hands its
         * counts over. Rows counted here were in committed transactions. */
        char whose[160] = "";
        if (sc->exactly_once && !st->merger && st->partials_applied >= 0)
                snprintf(whose, sizeof(whose),
                         " (not the merger: its counts were applied by the "
                         "merger, partials offset %lld)",
                         (long long)st->partials_applied);
        else if (sc->exactly_once && !st->merger)
                snprintf(whose, sizeof(whose), " (not the merger)");
        char sum[768];
        snprintf(sum, sizeof(sum),
                 "run: %s: %llu messages, %llu accepted, %llu dead letters, "
                 "%llu skipped as already final, %llu weeks closed, %llu "
                 "rollups, %llu streak changes emitted and committed%s, "
                 "%llu commits, %.2f s",
                 how, (unsigned long long)st->messages,
                 (unsigned long long)st->accepted,
                 (unsigned long long)st->dead_letters,
                 (unsigned long long)st->skipped_replayed,
                 (unsigned long long)st->engine.weeks_closed,
                 (unsigned long long)rows,
                 (unsigned long long)st->engine.streaks, whose,
                 (unsigned long long)st->commits, st->seconds);
        TT_LOG(err ? TT_LOG_ERROR : TT_LOG_INFO, sum, TT_KV_S("outcome", how),
               TT_KV_S("reason", err ? errstr : ""),
               TT_KV_I("messages", st->messages),
               TT_KV_I("accepted", st->accepted),
               TT_KV_I("dead_letters", st->dead_letters),
               TT_KV_I("weeks_closed", st->engine.weeks_closed),
               TT_KV_I("rollups", rows), TT_KV_I("streaks", st->engine.streaks),
               TT_KV_I("merger", st->merger), TT_KV_I("commits", st->commits),
               TT_KV_I("forwarded", st->forwarded), TT_KV_I("gaps", st->gaps),
               TT_KV_I("duplicates", st->duplicates));
}

int tt_stage_conf_from_opts(tt_stage_conf *sc, tt_setup *su, const tt_opts *o,
                            unsigned cmd, char *errstr, size_t errsize) {
        memset(sc, 0, sizeof(*sc));
        if (tt_setup_engine(su, o, cmd, errstr, errsize))
                return -1;
        bool run = cmd & TT_CMD_RUN; /* demo has its own cluster */
        sc->brokers = run ? tt_opts_str(o, "brokers") : NULL;
        sc->group = run ? tt_opts_str(o, "group") : "tokentally-demo";
        sc->topic = tt_opts_str(o, "input-topic");
        const char *f = run ? tt_opts_str(o, "input-format") : NULL;
        if (!f || !strcmp(f, "avro"))
                sc->format = TT_IN_AVRO;
        else if (!strcmp(f, "avro-raw"))
                sc->format = TT_IN_AVRO_RAW;
        else if (!strcmp(f, "json"))
                sc->format = TT_IN_JSON;
        else {
                snprintf(errstr, errsize,
                         "--input-format %s: Kafka messages are avro, "
                         "avro-raw or json",
                         f);
                return -1;
        }
        sc->props = tt_opts_list(o, "X", &sc->nprops);
        sc->workers = su->workers;
        sc->emit_interval_ms = tt_opts_duration_ms(o, "emit-interval");
        sc->commit_interval_ms = 5000;
        if (run) {
                sc->exactly_once =
                    !strcmp(tt_opts_str(o, "guarantee"), "exactly-once");
                sc->state_topic = tt_opts_str(o, "state-topic");
                sc->partials_topic = tt_opts_str(o, "partials-topic");
                const char *id = tt_opts_str(o, "instance-id");
                if (sc->exactly_once && id && *id)
                        sc->instance_id = id;
                /* Transactions every 200 ms: the latency of an output and
                 * the work a crash redoes (Kafka Streams uses 100 ms). */
                if (sc->exactly_once)
                        sc->commit_interval_ms = 200;
                if (tt_opts_given(o, "commit-interval"))
                        sc->commit_interval_ms =
                            tt_opts_duration_ms(o, "commit-interval");
        }
        sc->engine = su->conf;
        if (cmd & TT_CMD_RUN) {
                sc->from_beginning = tt_opts_flag(o, "from-beginning");
                sc->has_from_timestamp = tt_opts_given(o, "from-timestamp");
                if (sc->from_beginning && sc->has_from_timestamp) {
                        snprintf(errstr, errsize,
                                 "--from-beginning and --from-timestamp: "
                                 "give one of them");
                        return -1;
                }
                sc->from_timestamp = tt_opts_int(o, "from-timestamp");
                sc->close_at_eof = tt_opts_flag(o, "close-at-eof");
        }
        return 0;
}

int tt_cmd_run(int argc, char **argv) {
        char errstr[512];
        bool help;
        /* Usage errors are one plain line and exit 2, as in every command;
         * JSON log lines begin once the options are accepted. */
        tt_opts *o = tt_opts_parse(TT_CMD_RUN, argc, argv, &help, errstr,
                                   sizeof(errstr));
        if (!o) {
                fprintf(stderr, "tokentally run: %s\n", errstr);
                return 2;
        }
        if (help) {
                tt_opts_help(stdout, TT_CMD_RUN, usage);
                tt_opts_destroy(o);
                return 0;
        }
        int rc = 2;
        tt_stage_live *live = NULL;
        tt_metrics_server *ms = NULL;
        tt_setup su;
        memset(&su, 0, sizeof(su));
        tt_kafka_out *out = NULL;
        tt_registry *reg = NULL;
        bool abandon = false;
        tt_stage_conf sc;
        if (tt_stage_conf_from_opts(&sc, &su, o, TT_CMD_RUN, errstr,
                                    sizeof(errstr))) {
                fprintf(stderr, "tokentally run: %s\n", errstr);
                goto done;
        }
        tt_log_set_level(
            (tt_log_level)tt_log_parse_level(tt_opts_str(o, "log-level")));
        /* The stage's log is the JSON stream: librdkafka's lines keep their
         * levels there. */
        tt_log_rdkafka_levels(1);
        rc = 1; /* from here on, what fails is the run, not its options */
        /* transactional.id: stable per instance, so that a restarted
         * instance fences its predecessor and aborts what it left open. */
        char txid[512] = "";
        if (sc.exactly_once) {
                const char *id = tt_opts_str(o, "instance-id");
                char host[256] = "tokentally";
                if (!id || !*id) {
                        gethostname(host, sizeof(host) - 1);
                        host[sizeof(host) - 1] = '\0';
                        id = host;
                }
                snprintf(txid, sizeof(txid), "%s-%s", sc.group, id);
        }
        const char *maddr = tt_opts_str(o, "metrics-addr");
        if (maddr && *maddr && strcmp(maddr, "off")) {
                if (!(live = tt_stage_live_new())) {
                        tt_log_kvs(TT_LOG_ERROR, "out of memory", NULL, 0);
                        goto done;
                }
                ms = tt_metrics_server_new(maddr, tt_stage_live_read, live,
                                           errstr, sizeof(errstr));
                if (!ms) {
                        tt_log_kvs(TT_LOG_ERROR, errstr, NULL, 0);
                        goto done;
                }
                TT_LOG(TT_LOG_INFO, "serving /metrics, /healthz, /readyz",
                       TT_KV_S("metrics_addr", maddr),
                       TT_KV_I("port", tt_metrics_server_port(ms)));
                sc.live = live;
        }
        const char *srurl = tt_opts_str(o, "schema-registry");
        if (srurl && *srurl) {
                if (!(reg = tt_registry_new(srurl, errstr, sizeof(errstr)))) {
                        tt_log_kvs(TT_LOG_ERROR, errstr, NULL, 0);
                        goto done;
                }
                sc.registry = reg;
        }
        tt_kafka_out_conf oc = {
            .registry = reg,
            .brokers = sc.brokers,
            .rollups_topic = tt_opts_str(o, "rollups-topic"),
            .streaks_topic = tt_opts_str(o, "streaks-topic"),
            .dlq_topic = tt_opts_str(o, "dlq-topic"),
            .json = !strcmp(tt_opts_str(o, "output-format"), "json"),
            .props = sc.props,
            .nprops = sc.nprops,
            .transactional_id = sc.exactly_once ? txid : NULL,
        };
        stop_deadline = tt_deadline_new(
            tt_opts_duration_ms(o, "shutdown-timeout"), stop_overran, NULL);
        if (!stop_deadline) {
                tt_log_kvs(TT_LOG_ERROR, "cannot start a thread", NULL, 0);
                goto done;
        }
        sc.deadline = stop_deadline;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        tt_stage_stats st;
        TT_LOG(TT_LOG_INFO, "stage starting", TT_KV_S("brokers", sc.brokers),
               TT_KV_S("group", sc.group), TT_KV_S("topic", sc.topic),
               TT_KV_I("workers", sc.workers),
               TT_KV_S("guarantee", tt_opts_str(o, "guarantee")),
               TT_KV_S("transactional_id", txid));
        int err;
        for (int attempt = 1;; attempt++) {
                if (!(out = tt_kafka_out_new(&oc, errstr, sizeof(errstr)))) {
                        tt_log_kvs(TT_LOG_ERROR, errstr, NULL, 0);
                        goto done;
                }
                sc.out = out;
                if (attempt == 1) {
                        /* A cluster that never answers is a wrong
                         * --brokers (or a network in the way): say so once
                         * and exit, rather than retry in silence. Only at
                         * start: an outage of a running stage is ridden
                         * out. */
                        if (tt_kafka_out_reach(
                                out, sc.brokers,
                                tt_opts_duration_ms(o, "connect-timeout"),
                                &stop_flag, errstr, sizeof(errstr))) {
                                /* Stopped by a signal: a clean stop. */
                                rc = stop_flag ? 0 : 1;
                                tt_log_kvs(stop_flag ? TT_LOG_INFO
                                                     : TT_LOG_ERROR,
                                           errstr, NULL, 0);
                                goto done;
                        }
                        /* A missing output topic is an operator's mistake
                         * to report at once, not after a transaction
                         * times out (issue 9, defect 6). */
                        int cerr = tt_kafka_out_check_topics(out, 10000, errstr,
                                                             sizeof(errstr));
                        if (cerr == TT_ERR_KAFKA) {
                                TT_LOG(TT_LOG_ERROR, "run: not started",
                                       TT_KV_S("reason", errstr));
                                rc = 1;
                                goto done;
                        }
                        if (cerr)
                                TT_LOG(TT_LOG_WARN, "output topics not checked",
                                       TT_KV_S("reason", errstr));
                }
                err =
                    tt_stage_run(&sc, &stop_flag, &st, errstr, sizeof(errstr));
                if (err != TT_ERR_RETRY || stop_flag)
                        break;
                /* An aborted transaction: nothing of it is visible. A new
                 * producer and consumer resume from the committed offsets
                 * and state, as a restarted process would. */
                TT_LOG(TT_LOG_WARN,
                       "transaction aborted; resuming from the "
                       "last commit",
                       TT_KV_S("reason", errstr), TT_KV_I("attempt", attempt));
                tt_kafka_out_abandon(out);
                out = NULL;
                struct timespec ts = {1, 0};
                nanosleep(&ts, NULL);
        }
        abandon = err == TT_ERR_RETRY;
        if (err == TT_ERR_RETRY && stop_flag) {
                /* Asked to stop while the last transaction failed: nothing
                 * of it is visible, the next run redoes it. Still a clean
                 * stop. */
                TT_LOG(TT_LOG_WARN,
                       "stopped; the last transaction was aborted and will "
                       "be redone by the next run",
                       TT_KV_S("reason", errstr));
                err = 0;
        }
        if (err)
                tt_log_kvs(TT_LOG_ERROR, errstr, NULL, 0);
        log_summary(&sc, &st, err, errstr);
        rc = err ? 1 : 0;
done:
        /* The server goes first: it reads live. */
        tt_metrics_server_destroy(ms);
        tt_stage_live_destroy(live);
        tt_deadline_phase(stop_deadline,
                          "delivering the last outputs and closing the "
                          "producer");
        if (abandon)
                tt_kafka_out_abandon(out);
        else
                tt_kafka_out_destroy(out);
        /* Done in time (or no signal): the thread goes. */
        tt_deadline *d = stop_deadline;
        stop_deadline = NULL;
        tt_deadline_destroy(d);
        tt_registry_destroy(reg);
        tt_setup_free(&su);
        tt_opts_destroy(o);
        return rc;
}
