/* `serve`'s main loop (see serve_run.h). */
#include "tokentally/serve_run.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tokentally/http_server.h"
#include "tokentally/serve_http.h"
#include "tokentally/serve_view.h"

int tt_serve_run(const tt_follow_conf *fc, const char *listen,
                 volatile sig_atomic_t *stop, char *errstr, size_t errsize) {
        int rc = -1;
        pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        tt_sview *view = tt_sview_new();
        tt_follow *f = NULL;
        tt_http_server *srv = NULL;
        if (!view) {
                snprintf(errstr, errsize, "out of memory");
                goto done;
        }
        f = tt_follow_new(fc, view, &lock, errstr, errsize);
        if (!f)
                goto done;
        /* In every ETag: a restarted server's versions start again at 0. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        tt_serve_ctx ctx = {view, &lock, f,
                            (uint64_t)ts.tv_sec * 1000000 +
                                (uint64_t)ts.tv_nsec / 1000 +
                                ((uint64_t)getpid() << 48)};
        char why[256];
        srv = tt_http_server_new_ex(listen, NULL, tt_serve_handle, &ctx, why,
                                    sizeof(why));
        if (!srv) {
                snprintf(errstr, errsize, "--listen %s", why);
                goto done;
        }
        const char *colon = strrchr(listen, ':');
        printf("serving http://%.*s:%d/ (JSON API under /api/v1/, /healthz, "
               "/readyz) from %s and %s\n",
               (int)(colon - listen), listen, tt_http_server_port(srv),
               fc->rollups_topic, fc->streaks_topic);
        fflush(stdout);
        if (tt_follow_run(f, stop, true, errstr, errsize))
                goto done;
        if (!*stop) {
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
        if (tt_follow_run(f, stop, false, errstr, errsize))
                goto done;
        rc = 0;
done:
        /* The server first: its thread reads the view. */
        tt_http_server_destroy(srv);
        tt_follow_destroy(f);
        tt_sview_destroy(view);
        return rc;
}
