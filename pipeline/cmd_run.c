/* `tokentally run`: the Kafka stage (SPEC §7). Options and environment
 * come from the shared table; SIGTERM/SIGINT stop consuming, deliver,
 * commit and exit 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/cli.h"
#include "tokentally/kafka_out.h"
#include "tokentally/options.h"
#include "tokentally/setup.h"
#include "tokentally/stage.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
        (void)sig;
        stop_flag = 1;
}

static const char usage[] = "tokentally run [options]";

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
        sc->engine = su->conf;
        if (cmd & TT_CMD_RUN) {
                sc->from_beginning = tt_opts_flag(o, "from-beginning");
                sc->has_from_timestamp = tt_opts_given(o, "from-timestamp");
                sc->from_timestamp = tt_opts_int(o, "from-timestamp");
                sc->close_at_eof = tt_opts_flag(o, "close-at-eof");
        }
        return 0;
}

int tt_cmd_run(int argc, char **argv) {
        char errstr[512];
        bool help;
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
        tt_setup su;
        memset(&su, 0, sizeof(su));
        tt_kafka_out *out = NULL;
        tt_stage_conf sc;
        if (tt_opts_npos(o)) {
                fprintf(stderr, "tokentally run: unexpected argument '%s'\n",
                        tt_opts_pos(o, 0));
                goto done;
        }
        if (tt_stage_conf_from_opts(&sc, &su, o, TT_CMD_RUN, errstr,
                                    sizeof(errstr))) {
                fprintf(stderr, "tokentally run: %s\n", errstr);
                goto done;
        }
        if (!strcmp(tt_opts_str(o, "guarantee"), "exactly-once"))
                fprintf(stderr,
                        "tokentally run: --guarantee exactly-once is not "
                        "implemented yet; running at-least-once (see "
                        "README)\n");
        tt_kafka_out_conf oc = {
            .brokers = sc.brokers,
            .rollups_topic = tt_opts_str(o, "rollups-topic"),
            .streaks_topic = tt_opts_str(o, "streaks-topic"),
            .dlq_topic = tt_opts_str(o, "dlq-topic"),
            .json = !strcmp(tt_opts_str(o, "output-format"), "json"),
            .props = sc.props,
            .nprops = sc.nprops,
        };
        out = tt_kafka_out_new(&oc, errstr, sizeof(errstr));
        if (!out) {
                fprintf(stderr, "tokentally run: %s\n", errstr);
                goto done;
        }
        sc.out = out;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        tt_stage_stats st;
        int err = tt_stage_run(&sc, &stop_flag, &st, errstr, sizeof(errstr));
        fprintf(stderr,
                "run: %llu messages, %llu accepted, %llu dead letters, "
                "%llu skipped as already final, %llu weeks closed, %llu "
                "rollups, %llu streak changes, %llu commits, %.2f s\n",
                (unsigned long long)st.messages,
                (unsigned long long)st.accepted,
                (unsigned long long)st.dead_letters,
                (unsigned long long)st.skipped_replayed,
                (unsigned long long)st.engine.weeks_closed,
                (unsigned long long)(st.engine.rows[0] + st.engine.rows[1] +
                                     st.engine.rows[2]),
                (unsigned long long)st.engine.streaks,
                (unsigned long long)st.commits, st.seconds);
        if (err) {
                fprintf(stderr, "tokentally run: %s\n", errstr);
                rc = 1;
                goto done;
        }
        rc = 0;
done:
        tt_kafka_out_destroy(out);
        tt_setup_free(&su);
        tt_opts_destroy(o);
        return rc;
}
