/* `tokentally serve`: the weekly leaderboard as a page and a JSON API.
 * Reads the compacted rollups and streaks topics from the beginning
 * (read_committed) into a materialized view of the latest record of every
 * key, follows them, and serves the view over HTTP (docs/serve.md). It
 * needs nothing of the stage's state, so any number can run beside it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/cli.h"
#include "tokentally/log.h"
#include "tokentally/options.h"
#include "tokentally/serve_run.h"

static const char usage[] =
    "tokentally serve [--brokers B] [--rollups-topic T] [--streaks-topic T] "
    "[--listen HOST:PORT] [-X key=value ...]";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
        (void)sig;
        stop_flag = 1;
}

int tt_cmd_serve(int argc, char **argv) {
        char errstr[512];
        bool help;
        tt_opts *o = tt_opts_parse(TT_CMD_SERVE, argc, argv, &help, errstr,
                                   sizeof(errstr));
        if (!o) {
                fprintf(stderr, "tokentally serve: %s\n", errstr);
                return 2;
        }
        if (help) {
                tt_opts_help(stdout, TT_CMD_SERVE, usage);
                tt_opts_destroy(o);
                return 0;
        }
        const char *listen = tt_opts_str(o, "listen");
        if (tt_opts_npos(o) > 0 || !*listen || !strcmp(listen, "off")) {
                if (tt_opts_npos(o))
                        fprintf(stderr,
                                "tokentally serve: unexpected argument '%s' "
                                "(serve takes options only)\n",
                                tt_opts_pos(o, 0));
                else
                        fprintf(stderr, "tokentally serve: --listen needs "
                                        "HOST:PORT\n");
                tt_opts_destroy(o);
                return 2;
        }
        tt_log_set_level(
            (tt_log_level)tt_log_parse_level(tt_opts_str(o, "log-level")));
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        size_t nprops;
        const char *const *props = tt_opts_list(o, "X", &nprops);
        tt_follow_conf fc = {
            .brokers = tt_opts_str(o, "brokers"),
            .rollups_topic = tt_opts_str(o, "rollups-topic"),
            .streaks_topic = tt_opts_str(o, "streaks-topic"),
            .props = props,
            .nprops = nprops,
            .connect_timeout_ms = tt_opts_duration_ms(o, "connect-timeout"),
            .client_id = "tokentally-serve",
        };
        int rc = 0;
        if (tt_serve_run(&fc, listen, &stop_flag, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally serve: %s\n", errstr);
                rc = 1;
        }
        tt_opts_destroy(o);
        return rc;
}
