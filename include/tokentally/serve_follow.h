/* Feeds a materialized view (serve_view.h) from the output topics: every
 * partition of the rollups and streaks topics assigned from the beginning
 * (no consumer group, no commits, isolation.level=read_committed), each
 * record decoded as `tail` does (Confluent-framed Avro by schema id, or the
 * JSON of --output-format json) and applied under the caller's lock, so an
 * HTTP thread can read the view between records. Any number of followers
 * can read beside the stage: they need none of its state. */
#ifndef TT_SERVE_FOLLOW_H
#define TT_SERVE_FOLLOW_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/serve_view.h"

typedef struct tt_follow_conf {
        const char *brokers;
        const char *rollups_topic, *streaks_topic;
        const char *const *props; /* -X key=value */
        size_t nprops;
        int64_t connect_timeout_ms;
        const char *client_id;
} tt_follow_conf;

typedef struct tt_follow tt_follow;

/* Connects, reads the end offsets of every partition (readiness: see
 * tt_follow_ready) and assigns them from the beginning. NULL with a reason
 * (no broker, unknown topic). */
tt_follow *tt_follow_new(const tt_follow_conf *c, tt_sview *view,
                         pthread_mutex_t *lock, char *errstr, size_t errsize);
/* Applies records until *stop is set, or with until_ready until
 * tt_follow_ready. 0, or -1 with a reason (topic deleted, out of memory). */
int tt_follow_run(tt_follow *f, volatile sig_atomic_t *stop, bool until_ready,
                  char *errstr, size_t errsize);
/* True once every partition was read to the end offset it had at
 * tt_follow_new (thread-safe). */
bool tt_follow_ready(const tt_follow *f);
/* Records read: applied, and not recognised (skipped). */
void tt_follow_counts(const tt_follow *f, uint64_t *applied, uint64_t *skipped);
void tt_follow_destroy(tt_follow *f);

#endif
