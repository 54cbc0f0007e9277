/* The merger of the exactly-once stage: the one engine, in whichever
 * instance owns the partials topic's partition, that turns every front's
 * partial counts into global FINAL rows and streaks (see stage.h).
 *
 * Its state lives in the compacted changelog topic (--state-topic): one
 * record per week it holds and one meta record, keyed
 * "<group>/week/2026-W14" and "<group>/meta", written in the same Kafka
 * transaction as the outputs and offsets they go with. A new owner restores
 * by reading that topic once to its end: the time grows with the state
 * (compaction keeps the latest record per key), not with the input's
 * history. */
#ifndef TT_MERGER_H
#define TT_MERGER_H

#include <stddef.h>
#include <stdint.h>

#include "tokentally/engine.h"
#include "tokentally/kafka_conf.h"

typedef struct tt_merger tt_merger;

typedef struct tt_merger_conf {
        tt_engine_conf engine; /* adjusted: 1 shard, no idle, no future */
        const char *group;     /* key prefix in the state topic */
        const char *state_topic;
        /* librdkafka properties for the restore consumer (brokers, -X). */
        const tt_kafka_prop *props;
        size_t nprops;
        const char *const *xprops;
        size_t nxprops;
        /* Called once when the restore waits for a transaction left open
         * on the state topic (a killed merger's) to end; may be NULL. */
        void (*on_wait)(void *opaque, int64_t stable, int64_t end);
        void *opaque;
} tt_merger_conf;

/* Creates the merger and restores it from the state topic. The input
 * topic's partitions 0..npartitions-1 hold the watermark back until their
 * owners report (for a state that does not know them yet). *restored gets
 * the number of state records read. NULL with a reason and *errp:
 * TT_ERR_KAFKA when the state topic could not be read (worth a retry),
 * TT_ERR_FORMAT when a state record is not ours, TT_ERR_NOMEM. */
tt_merger *tt_merger_new(const tt_merger_conf *conf, const tt_sink *sink,
                         void *opaque, int32_t npartitions, uint64_t *restored,
                         char *errstr, size_t errsize, int *errp);
void tt_merger_destroy(tt_merger *m);

/* The log end of topic's partition (open transactions included: what a
 * read_uncommitted reader's high watermark is), asked with conf's brokers
 * and -X properties. */
int tt_merger_log_end(const tt_merger_conf *conf, const char *topic,
                      int32_t partition, int64_t *end, char *errstr,
                      size_t errsize);

tt_engine *tt_merger_engine(tt_merger *m);

/* The state records that changed since the last call (or since the
 * restore): put(key, value) for each, value NULL for a week no longer
 * held (tombstone). */
typedef int (*tt_merger_put_fn)(void *opaque, const char *key,
                                const void *value, size_t len);
int tt_merger_checkpoint(tt_merger *m, tt_merger_put_fn put, void *opaque);

#endif
