/* Output files replaced only by a run that succeeded: temporaries beside
 * the final names, renamed over them at the end. Without this a replay that
 * failed on its input (a typo in a file name) had already truncated the
 * previous results. */
#include "tokentally/outdir.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokentally/mem.h"

#define PATH_BYTES 4096

struct tt_writeback {
        int fd;
        long long written; /* the writer's: bytes reported */
        long long posted;  /* the writer's: written at the last post */
        bool started;      /* the writer's until stopped: thread running */
        bool failed;       /* no thread could be started: no early syncs */
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        bool pending, stopping; /* under mu */
        unsigned syncs;         /* under mu: early syncs done */
};

struct tt_outdir {
        const char *dir;
        bool created; /* mkdir made it: removed again if the run fails */
        size_t n;
        FILE *f[TT_OUTDIR_MAX_FILES];
        char path[TT_OUTDIR_MAX_FILES][PATH_BYTES];
        char tmp[TT_OUTDIR_MAX_FILES][PATH_BYTES]; /* "" once gone */
        tt_writeback wb[TT_OUTDIR_MAX_FILES];
        struct sigaction old[3];
        bool handled[3];
};

/* What a signal handler removes: set before the handler is installed and
 * cleared before a temporary is renamed, so it never removes a result. */
static char *volatile armed_tmp[TT_OUTDIR_MAX_FILES];
static const char *volatile armed_dir;
static const int signals[3] = {SIGINT, SIGTERM, SIGHUP};

static void on_signal(int sig) {
        int saved = errno;
        for (size_t i = 0; i < TT_OUTDIR_MAX_FILES; i++)
                if (armed_tmp[i])
                        unlink(armed_tmp[i]);
        if (armed_dir)
                rmdir(armed_dir); /* only if empty */
        /* Die of the signal as without the handler (exit status 128+n). */
        signal(sig, SIG_DFL);
        raise(sig);
        errno = saved;
}

static void disarm(tt_outdir *d) {
        for (size_t i = 0; i < TT_OUTDIR_MAX_FILES; i++)
                armed_tmp[i] = NULL;
        armed_dir = NULL;
        for (int s = 0; s < 3; s++)
                if (d->handled[s]) {
                        sigaction(signals[s], &d->old[s], NULL);
                        d->handled[s] = false;
                }
}

static void arm(tt_outdir *d) {
        for (size_t i = 0; i < d->n; i++)
                armed_tmp[i] = d->tmp[i];
        armed_dir = d->created ? d->dir : NULL;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (int s = 0; s < 3; s++) {
                /* A signal ignored on purpose (nohup) stays ignored. */
                if (sigaction(signals[s], NULL, &d->old[s]) ||
                    d->old[s].sa_handler == SIG_IGN)
                        continue;
                d->handled[s] = !sigaction(signals[s], &sa, NULL);
        }
}

/* ---- early sync -------------------------------------------------------- */

static void *syncer_main(void *arg) {
        tt_writeback *wb = arg;
        pthread_mutex_lock(&wb->mu);
        for (;;) {
                while (!wb->pending && !wb->stopping)
                        pthread_cond_wait(&wb->cv, &wb->mu);
                if (!wb->pending)
                        break; /* stopping, and nothing asked since */
                wb->pending = false;
                pthread_mutex_unlock(&wb->mu);
                (void)fdatasync(wb->fd); /* the commit's fsync reports */
                pthread_mutex_lock(&wb->mu);
                wb->syncs++;
        }
        pthread_mutex_unlock(&wb->mu);
        return NULL;
}

void tt_writeback_wrote(tt_writeback *wb, FILE *f, size_t n) {
        if (!wb)
                return;
        wb->written += (long long)n;
        if (wb->failed || wb->written - wb->posted < TT_WRITEBACK_STEP ||
            fflush(f))
                return;
        wb->posted = wb->written;
        if (!wb->started) {
                wb->fd = fileno(f);
                pthread_mutex_init(&wb->mu, NULL);
                pthread_cond_init(&wb->cv, NULL);
                wb->pending = true;
                if (pthread_create(&wb->thread, NULL, syncer_main, wb)) {
                        pthread_cond_destroy(&wb->cv);
                        pthread_mutex_destroy(&wb->mu);
                        wb->failed = true; /* the commit syncs it all */
                        return;
                }
                wb->started = true;
                return;
        }
        pthread_mutex_lock(&wb->mu);
        wb->pending = true;
        pthread_cond_signal(&wb->cv);
        pthread_mutex_unlock(&wb->mu);
}

/* Before its file is closed (the thread syncs it by descriptor). Waits for
 * the sync in progress and one asked for since, which the commit's fsync
 * would otherwise do. */
static void stop_syncers(tt_outdir *d) {
        for (size_t i = 0; i < d->n; i++) {
                tt_writeback *wb = &d->wb[i];
                if (!wb->started)
                        continue;
                pthread_mutex_lock(&wb->mu);
                wb->stopping = true;
                pthread_cond_signal(&wb->cv);
                pthread_mutex_unlock(&wb->mu);
                pthread_join(wb->thread, NULL);
                pthread_cond_destroy(&wb->cv);
                pthread_mutex_destroy(&wb->mu);
                wb->started = false;
        }
}

tt_writeback *tt_outdir_writeback(tt_outdir *d, size_t i) {
        return i < d->n ? &d->wb[i] : NULL;
}

unsigned tt_writeback_syncs(const tt_writeback *wb) {
        return wb->started ? 0 : wb->syncs; /* read once stopped */
}

static void remove_temps(tt_outdir *d) {
        stop_syncers(d);
        for (size_t i = 0; i < d->n; i++) {
                if (d->f[i]) {
                        fclose(d->f[i]);
                        d->f[i] = NULL;
                }
                if (d->tmp[i][0]) {
                        armed_tmp[i] = NULL;
                        unlink(d->tmp[i]);
                        d->tmp[i][0] = '\0';
                }
        }
}

tt_outdir *tt_outdir_open(const char *dir, const char *const *names, size_t n,
                          char *errstr, size_t errsize) {
        if (n > TT_OUTDIR_MAX_FILES) {
                snprintf(errstr, errsize, "too many output files");
                return NULL;
        }
        tt_outdir *d = tt_calloc(1, sizeof(*d));
        if (!d) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        d->dir = dir;
        if (mkdir(dir, 0777) == 0) {
                d->created = true;
        } else {
                int e = errno;
                struct stat st;
                if (e != EEXIST) {
                        snprintf(errstr, errsize,
                                 "cannot create output folder %s: %s", dir,
                                 strerror(e));
                        tt_free(d);
                        return NULL;
                }
                if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
                        snprintf(errstr, errsize,
                                 "cannot create output folder %s: %s", dir,
                                 "a file of that name exists");
                        tt_free(d);
                        return NULL;
                }
        }
        /* mkstemp makes 0600 files; outputs get what fopen would give. */
        mode_t mask = umask(0);
        umask(mask);
        for (size_t i = 0; i < n; i++) {
                d->n = i + 1;
                int k =
                    snprintf(d->path[i], PATH_BYTES, "%s/%s", dir, names[i]);
                int k2 = snprintf(d->tmp[i], PATH_BYTES, "%s/.%s.XXXXXX", dir,
                                  names[i]);
                if (k < 0 || k >= PATH_BYTES || k2 < 0 || k2 >= PATH_BYTES) {
                        d->tmp[i][0] = '\0';
                        snprintf(errstr, errsize,
                                 "output folder name too long");
                        goto fail;
                }
                int fd = mkstemp(d->tmp[i]);
                if (fd < 0) {
                        int e = errno;
                        d->tmp[i][0] = '\0';
                        snprintf(errstr, errsize,
                                 "cannot create a file in output folder "
                                 "%s: %s",
                                 dir, strerror(e));
                        goto fail;
                }
                d->f[i] = fdopen(fd, "wb");
                if (!d->f[i] || fchmod(fd, 0666 & ~mask)) {
                        int e = errno;
                        if (!d->f[i])
                                close(fd);
                        snprintf(errstr, errsize, "%s: %s", d->tmp[i],
                                 strerror(e));
                        goto fail;
                }
        }
        arm(d);
        return d;
fail:
        remove_temps(d);
        if (d->created)
                rmdir(dir);
        tt_free(d);
        return NULL;
}

FILE *tt_outdir_file(tt_outdir *d, size_t i) {
        return i < d->n ? d->f[i] : NULL;
}

const char *tt_outdir_path(const tt_outdir *d, size_t i) {
        return i < d->n ? d->path[i] : "";
}

int tt_outdir_commit(tt_outdir *d, char *errstr, size_t errsize) {
        stop_syncers(d);
        /* Everything on disk first: a crash after a rename must not leave
         * a renamed file whose data was never written. */
        for (size_t i = 0; i < d->n; i++) {
                FILE *f = d->f[i];
                d->f[i] = NULL;
                int e = 0;
                if (ferror(f))
                        e = EIO;
                else if (fflush(f) || fsync(fileno(f)))
                        e = errno;
                if (fclose(f) && !e)
                        e = errno;
                if (e) {
                        snprintf(errstr, errsize,
                                 "writing %s: %s; nothing in %s was "
                                 "replaced",
                                 d->path[i], strerror(e), d->dir);
                        return -1;
                }
        }
        for (size_t i = 0; i < d->n; i++) {
                armed_tmp[i] = NULL;
                if (rename(d->tmp[i], d->path[i])) {
                        int e = errno;
                        armed_tmp[i] = d->tmp[i];
                        snprintf(errstr, errsize,
                                 "cannot replace %s: %s (%zu of %zu output "
                                 "files replaced before it)",
                                 d->path[i], strerror(e), i, d->n);
                        return -1;
                }
                d->tmp[i][0] = '\0';
        }
        d->created = false; /* a result now */
        armed_dir = NULL;
        int fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) { /* the renames themselves, durably */
                fsync(fd);
                close(fd);
        }
        return 0;
}

void tt_outdir_close(tt_outdir *d) {
        if (!d)
                return;
        remove_temps(d);
        if (d->created)
                rmdir(d->dir);
        disarm(d);
        tt_free(d);
}
