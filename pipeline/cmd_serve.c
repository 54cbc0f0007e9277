/* `tokentally serve`: the weekly leaderboard as a page and a JSON API.
 * Reads the compacted rollups and streaks topics from the beginning
 * (read_committed) into a materialized view of the latest record of every
 * key, follows them, and serves the view over HTTP (docs/serve.md). It
 * needs nothing of the stage's state, so any number can run beside it. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tokentally/cli.h"
#include "tokentally/http_server.h"
#include "tokentally/log.h"
#include "tokentally/options.h"
#include "tokentally/serve_follow.h"
#include "tokentally/serve_http.h"
#include "tokentally/serve_view.h"

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
                fprintf(stderr, "tokentally serve: %s\nusage: %s\n",
                        tt_opts_npos(o) ? "serve takes options only"
                                        : "--listen needs HOST:PORT",
                        usage);
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
        int rc = 1;
        pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        tt_sview *view = tt_sview_new();
        tt_follow *f = NULL;
        tt_http_server *srv = NULL;
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
        if (!view) {
                fprintf(stderr, "tokentally serve: out of memory\n");
                goto done;
        }
        f = tt_follow_new(&fc, view, &lock, errstr, sizeof(errstr));
        if (!f) {
                fprintf(stderr, "tokentally serve: %s\n", errstr);
                goto done;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        tt_serve_ctx ctx = {view, &lock, f,
                            (uint64_t)ts.tv_sec * 1000000 +
                                (uint64_t)ts.tv_nsec / 1000 +
                                ((uint64_t)getpid() << 48)};
        srv = tt_http_server_new_ex(listen, NULL, tt_serve_handle, &ctx, errstr,
                                    sizeof(errstr));
        if (!srv) {
                fprintf(stderr, "tokentally serve: --listen %s\n", errstr);
                goto done;
        }
        char host[256];
        snprintf(host, sizeof(host), "%.*s",
                 (int)(strrchr(listen, ':') - listen), listen);
        printf("serving http://%s:%d/ (JSON API under /api/v1/, /healthz, "
               "/readyz) from %s and %s\n",
               host, tt_http_server_port(srv), fc.rollups_topic,
               fc.streaks_topic);
        fflush(stdout);
        if (tt_follow_run(f, &stop_flag, true, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally serve: %s\n", errstr);
                goto done;
        }
        if (!stop_flag) {
                uint64_t nr, ns;
                pthread_mutex_lock(&lock);
                tt_sview_counts(view, &nr, &ns);
                size_t nw = tt_sview_nweeks(view);
                pthread_mutex_unlock(&lock);
                printf("ready: caught up with %llu WeeklyRollup and %llu "
                       "StreakChange records, %zu weeks; following\n",
                       (unsigned long long)nr, (unsigned long long)ns, nw);
                fflush(stdout);
        }
        if (tt_follow_run(f, &stop_flag, false, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally serve: %s\n", errstr);
                goto done;
        }
        rc = 0;
done:
        /* The server first: its thread reads the view. */
        tt_http_server_destroy(srv);
        tt_follow_destroy(f);
        tt_sview_destroy(view);
        tt_opts_destroy(o);
        return rc;
}
