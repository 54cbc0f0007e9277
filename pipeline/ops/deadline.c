/* See deadline.h. Semaphores, because sem_post is the one way to wake a
 * thread that is async-signal-safe (POSIX.1-2008, signal-safety(7)). */
#include "tokentally/deadline.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "tokentally/mem.h"

struct tt_deadline {
        int64_t ms;
        tt_deadline_fn *expired;
        void *opaque;
        pthread_t thread;
        sem_t armed; /* posted once by tt_deadline_arm */
        sem_t done;  /* posted by tt_deadline_destroy */
        atomic_flag arm_once;
        _Atomic(const char *) phase;
};

/* sem_*wait until posted, through signals. false: sem_timedwait timed
 * out. */
static bool wait_sem(sem_t *s, const struct timespec *until) {
        for (;;) {
                int rc = until ? sem_timedwait(s, until) : sem_wait(s);
                if (!rc)
                        return true;
                if (errno != EINTR)
                        return errno != ETIMEDOUT;
        }
}

static void *deadline_main(void *arg) {
        tt_deadline *d = arg;
        if (!wait_sem(&d->armed, NULL))
                return NULL;
        /* destroy posts armed too, after done: a stop that ended before
         * any signal. */
        if (!sem_trywait(&d->done))
                return NULL;
        /* sem_timedwait measures CLOCK_REALTIME: a clock step shortens or
         * stretches the wait, acceptable for a last resort. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(d->ms / 1000);
        until.tv_nsec += (long)(d->ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        if (wait_sem(&d->done, &until))
                return NULL;
        d->expired(d->opaque, atomic_load(&d->phase), d->ms);
        _exit(1);
}

tt_deadline *tt_deadline_new(int64_t ms, tt_deadline_fn *expired,
                             void *opaque) {
        tt_deadline *d = tt_calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->ms = ms;
        d->expired = expired;
        d->opaque = opaque;
        atomic_flag_clear(&d->arm_once);
        atomic_init(&d->phase, "stopping");
        sem_init(&d->armed, 0, 0);
        sem_init(&d->done, 0, 0);
        if (ms > 0 && pthread_create(&d->thread, NULL, deadline_main, d)) {
                sem_destroy(&d->armed);
                sem_destroy(&d->done);
                tt_free(d);
                return NULL;
        }
        return d;
}

void tt_deadline_arm(tt_deadline *d) {
        if (d && d->ms > 0 && !atomic_flag_test_and_set(&d->arm_once))
                sem_post(&d->armed);
}

void tt_deadline_phase(tt_deadline *d, const char *phase) {
        if (d && phase)
                atomic_store(&d->phase, phase);
}

void tt_deadline_destroy(tt_deadline *d) {
        if (!d)
                return;
        if (d->ms > 0) {
                sem_post(&d->done);
                if (!atomic_flag_test_and_set(&d->arm_once))
                        sem_post(&d->armed);
                pthread_join(d->thread, NULL);
        }
        sem_destroy(&d->armed);
        sem_destroy(&d->done);
        tt_free(d);
}
