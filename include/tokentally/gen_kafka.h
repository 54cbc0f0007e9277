/* Produces a generated scenario to a Kafka topic (gen --brokers, and the
 * demo's input): TokenEvents in Confluent-framed Avro (schema id
 * TT_SCHEMA_ID_TOKEN_EVENT) or JSON, keyed by request_id, so that the
 * default partitioner spreads them over the topic's partitions. */
#ifndef TT_GEN_KAFKA_H
#define TT_GEN_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/gen.h"

typedef struct tt_gen_kafka_conf {
        const char *brokers;
        const char *topic;
        bool json;
        const char *const *props; /* -X key=value */
        size_t nprops;
        double rate; /* events per second; 0 = as fast as the broker takes */
        int32_t schema_id; /* Confluent header; 0: TT_SCHEMA_ID_TOKEN_EVENT */
        int64_t connect_timeout_ms; /* tt_kafka_reach first; 0: no limit */
} tt_gen_kafka_conf;

/* Runs the scenario into the topic and waits until every message is
 * delivered. 0, or a tt_err with a reason. *count: messages delivered. */
int tt_gen_to_kafka(const tt_gen_conf *gc, const tt_gen_kafka_conf *kc,
                    uint64_t *count, char *errstr, size_t errsize);

#endif
