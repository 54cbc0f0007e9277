/* The output topics read back, as `tail` and `serve` do: a record's value
 * is a WeeklyRollup or a StreakChange in Avro with Confluent framing (the
 * fixed ids of kafka_out.h, or a Schema Registry's id) or in JSON with the
 * same field names. One decoder for both readers, so that they can never
 * disagree about what a record is. */
#ifndef TT_OUTPUT_READ_H
#define TT_OUTPUT_READ_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "tokentally/avro_read.h"
#include "tokentally/buf.h"
#include "tokentally/rollup.h"

/* Decodes value[0..len) into r (TT_OUT_ROLLUP) or s (TT_OUT_STREAK);
 * TT_OUT_UNKNOWN for anything else (empty, truncated, a registry id whose
 * body both or neither schema reads). JSON strings with escapes are
 * unescaped into scratch, which is reset. */
tt_out_kind tt_output_decode(const void *value, size_t len, tt_buf *scratch,
                             tt_rollup *r, tt_streak_change *s);

/* A consumer error after which a reader of the output topics cannot go on
 * (the topic does not exist, reading it is not allowed, a fatal client
 * error); others are transient and only reported. */
bool tt_output_read_fatal(rd_kafka_resp_err_t err);

/* Adds every partition of topic to parts, each at offset (for example
 * RD_KAFKA_OFFSET_BEGINNING), from the cluster's metadata (waiting up to
 * timeout_ms). -1 with "topic T: reason" in errstr when the topic cannot be
 * read or has no partitions. */
int tt_output_add_partitions(rd_kafka_t *rk, const char *topic, int64_t offset,
                             int timeout_ms,
                             rd_kafka_topic_partition_list_t *parts,
                             char *errstr, size_t errsize);

#endif
