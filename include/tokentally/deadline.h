/* A stop that must end in time. A stopping stage can wait on a cluster
 * that no longer answers (a frozen broker held `run` 60 s after SIGTERM:
 * transaction and group timeouts), longer than Docker (10 s) or Kubernetes
 * (30 s) wait before SIGKILL, which leaves no word of why. The deadline
 * ends such a stop itself, after naming the step it was stuck in: exit 1,
 * which is as safe as a kill (an open transaction is aborted by the next
 * run's fencing; uncommitted offsets are read again). */
#ifndef TT_DEADLINE_H
#define TT_DEADLINE_H

#include <stdint.h>

typedef struct tt_deadline tt_deadline;

/* Called on the deadline's thread when ms passed after tt_deadline_arm
 * with the stop still running; the process exits with status 1 when it
 * returns. phase is the last tt_deadline_phase (never NULL). */
typedef void(tt_deadline_fn)(void *opaque, const char *phase, int64_t ms);

/* Starts the waiting thread. ms <= 0: never expires (arm is a no-op). NULL
 * when the thread cannot start (out of memory or threads). */
tt_deadline *tt_deadline_new(int64_t ms, tt_deadline_fn *expired, void *opaque);
/* Starts the countdown; only the first call counts. Async-signal-safe:
 * meant for the SIGTERM handler. NULL is fine. */
void tt_deadline_arm(tt_deadline *d);
/* The step the stop is in now: a string that lives as long as the
 * process (a literal). NULL d is fine. */
void tt_deadline_phase(tt_deadline *d, const char *phase);
/* The stop ended in time: stops the thread and frees d. NULL is fine. */
void tt_deadline_destroy(tt_deadline *d);

#endif
