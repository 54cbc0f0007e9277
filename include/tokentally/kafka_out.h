/* The Kafka output adapter: WeeklyRollups, StreakChanges and dead letters
 * produced to their topics (SPEC §4-§7). Avro in Confluent framing with a
 * fixed schema id per output schema (or the ids a Schema Registry gives), or
 * JSON with the same field names. Keys: "week/dimension/key" for rollups,
 * the rule for streaks; dead letters keep the original key and value bytes
 * and carry tokentally.* headers (Kafka Connect convention).
 *
 * The producer is idempotent; every delivery report is checked. A failed
 * delivery is a sticky error that tt_kafka_out_error() reports, so the
 * stage stops instead of losing output. Thread-safe: workers produce dead
 * letters while the coordinator produces rollups. */
#ifndef TT_KAFKA_OUT_H
#define TT_KAFKA_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include "tokentally/event.h"
#include "tokentally/rollup.h"

/* Schema ids written in the Confluent header while no registry is used. */
#define TT_SCHEMA_ID_TOKEN_EVENT 1
#define TT_SCHEMA_ID_WEEKLY_ROLLUP 2
#define TT_SCHEMA_ID_STREAK_CHANGE 3

typedef struct tt_kafka_out tt_kafka_out;

typedef struct tt_kafka_out_conf {
        /* bootstrap.servers (a mock cluster's bootstraps in tests); NULL
         * leaves it to -X. */
        const char *brokers;
        /* A NULL topic is not produced to: its calls return TT_ERR_INVAL. */
        const char *rollups_topic;
        const char *streaks_topic;
        const char *dlq_topic;
        bool json; /* --output-format json */
        /* Exactly-once: the producer's transactional.id (NULL: plain
         * idempotent producer). Every produce call then belongs to the
         * transaction the tt_kafka_out_txn_* calls open and close. */
        const char *transactional_id;
        /* "-X key=value" strings, applied last (they win). */
        const char *const *props;
        size_t nprops;
        /* --schema-registry (borrowed; NULL: the fixed ids above). Avro
         * outputs: tt_kafka_out_new registers the WeeklyRollup and
         * StreakChange schemas under "<topic>-value" (BACKWARD) and frames
         * the records with the ids the registry gives; a registry that
         * refuses them fails tt_kafka_out_new with its reason. */
        struct tt_registry *registry;
} tt_kafka_out_conf;

/* Creates the producer. NULL with a reason (bad -X property, ...). */
tt_kafka_out *tt_kafka_out_new(const tt_kafka_out_conf *conf, char *errstr,
                               size_t errsize);
/* Flushes (up to 30 s) and frees; NULL is fine. */
void tt_kafka_out_destroy(tt_kafka_out *o);
/* Frees without delivering what is queued (a failed transaction's
 * records, which no read_committed reader will see); NULL is fine. */
void tt_kafka_out_abandon(tt_kafka_out *o);

/* Encode and produce one record. TT_ERR_OK once librdkafka has it queued
 * (queue full: waits, serving delivery reports, until there is room);
 * a tt_err when encoding fails or a delivery has already failed. */
int tt_kafka_out_rollup(tt_kafka_out *o, const tt_rollup *r);
int tt_kafka_out_streak(tt_kafka_out *o, const tt_streak_change *s);
/* A dead letter: value/key are the original bytes (NULL = none); headers
 * tokentally.reason, .detail, .topic, .partition, .offset. */
int tt_kafka_out_dead_letter(tt_kafka_out *o, tt_reason reason,
                             const char *detail, const char *src_topic,
                             int32_t src_partition, int64_t src_offset,
                             const void *key, size_t key_len, const void *value,
                             size_t value_len);

/* Waits until every record produced so far is delivered (or timeout_ms).
 * TT_ERR_OK, or the first delivery error (reason in errstr). */
int tt_kafka_out_flush(tt_kafka_out *o, int timeout_ms, char *errstr,
                       size_t errsize);
/* Serves delivery reports without blocking. */
void tt_kafka_out_poll(tt_kafka_out *o);
/* The first delivery failure so far (0 = none), with its reason. */
int tt_kafka_out_error(tt_kafka_out *o, char *errstr, size_t errsize);
/* Records delivered so far (delivery reports with no error). */
uint64_t tt_kafka_out_delivered(const tt_kafka_out *o);
/* True once a delivery failed for a reason a retry cannot mend (unknown
 * topic or partition, not authorised, record too large or invalid): the
 * stage stops with tt_kafka_out_error()'s reason instead of redoing the
 * transaction. */
bool tt_kafka_out_permanent(tt_kafka_out *o);
/* Remember the largest offset delivered to topic (one topic; the stage's
 * one-partition partials topic), read with tt_kafka_out_tracked (-1 until
 * a record of it was delivered). */
void tt_kafka_out_track(tt_kafka_out *o, const char *topic);
int64_t tt_kafka_out_tracked(tt_kafka_out *o);
/* Asks the cluster about every configured output topic (up to timeout_ms
 * each): TT_ERR_KAFKA with "... topic X does not exist on the cluster" when
 * one is missing (or we may not use it), TT_ERR_RETRY for anything else
 * (no answer, no leader yet: the caller goes on), TT_ERR_OK when all have
 * leaders. */
int tt_kafka_out_check_topics(tt_kafka_out *o, int timeout_ms, char *errstr,
                              size_t errsize);
/* tt_kafka_reach (kafka_conf.h) on the producer: TT_ERR_KAFKA with "cannot
 * reach the Kafka cluster at BROKERS: ..." when no broker answers within
 * timeout_ms (<= 0: no wait). */
int tt_kafka_out_reach(tt_kafka_out *o, const char *brokers, int64_t timeout_ms,
                       volatile sig_atomic_t *stop, char *errstr,
                       size_t errsize);

/* Any record to any topic (the stage's internal topics); partition -1
 * lets the partitioner choose. Same queueing and errors as above. */
int tt_kafka_out_raw(tt_kafka_out *o, const char *topic, int32_t partition,
                     const void *key, size_t key_len, const void *value,
                     size_t value_len);

/* ---- transactions (conf.transactional_id set) ------------------------
 * Return TT_ERR_OK; TT_ERR_RETRY when the transaction failed (abortable,
 * timed out, or a fatal producer error): nothing of it is visible to
 * read_committed consumers, so a new producer and consumer must redo the
 * work from the committed offsets; TT_ERR_KAFKA when a newer instance with
 * the same transactional.id fenced this one (it owns the work now). The
 * reason goes to errstr. */
struct rd_kafka_s;
struct rd_kafka_topic_partition_list_s;
int tt_kafka_out_txn_init(tt_kafka_out *o, int timeout_ms, char *errstr,
                          size_t errsize);
int tt_kafka_out_txn_begin(tt_kafka_out *o, char *errstr, size_t errsize);
/* Adds consumer's offsets (with their metadata) to the transaction, as
 * consumer's group member, and commits it. */
int tt_kafka_out_txn_commit(tt_kafka_out *o,
                            const struct rd_kafka_topic_partition_list_s *offs,
                            struct rd_kafka_s *consumer, char *errstr,
                            size_t errsize);
int tt_kafka_out_txn_abort(tt_kafka_out *o, char *errstr, size_t errsize);
/* True when the producer's fatal error is a fence by a newer producer with
 * the same transactional.id (another instance runs with our id). */
bool tt_kafka_out_fenced(tt_kafka_out *o);

/* Avro binary bodies (no framing) of the output records with the bundled
 * schemas, appended to out. */
#include "tokentally/buf.h"
int tt_avro_encode_rollup(tt_buf *out, const tt_rollup *r);
int tt_avro_encode_streak(tt_buf *out, const tt_streak_change *s);
/* The bundled schemas/weekly_rollup.avsc and streak_change.avsc, compiled
 * in (NUL-terminated JSON). */
extern const char tt_weekly_rollup_schema_json[];
extern const char tt_streak_change_schema_json[];
/* The Kafka key of a rollup: "2026-W14/ORIGIN/CN". */
int tt_rollup_key(tt_buf *out, const tt_rollup *r);

#endif
