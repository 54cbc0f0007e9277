/* Test helper: the Kafka stage on its own thread, stopped through its stop
 * flag, with a recorder that the test thread may read while the stage
 * writes to it (hence the lock). */
#ifndef TT_TEST_STAGE_THREAD_H
#define TT_TEST_STAGE_THREAD_H

#include <pthread.h>
#include <signal.h>

#include "recorder.h"
#include "tokentally/stage.h"

typedef struct run_arg {
        tt_stage_conf *sc;
        volatile sig_atomic_t stop;
        int rc;
        char err[256];
        tt_stage_stats st;
} run_arg;

static inline void *run_thread(void *p) {
        run_arg *a = p;
        a->rc = tt_stage_run(a->sc, &a->stop, &a->st, a->err, sizeof(a->err));
        return NULL;
}

/* Hold rec_mu to read a recorder that a running stage writes. */
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;

static inline int locked_rollup(void *opaque, const tt_rollup *r) {
        pthread_mutex_lock(&rec_mu);
        int err = rec_rollup(opaque, r);
        pthread_mutex_unlock(&rec_mu);
        return err;
}

static inline int locked_streak(void *opaque, const tt_streak_change *s) {
        pthread_mutex_lock(&rec_mu);
        int err = rec_streak_fn(opaque, s);
        pthread_mutex_unlock(&rec_mu);
        return err;
}

#endif
