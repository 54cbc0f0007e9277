/* librdkafka clients as every command of ours builds them: our defaults
 * first, then the user's "-X key=value" properties, which win (as in kcat),
 * librdkafka's log lines through our logger (log.h), and the first contact
 * with the cluster bounded by --connect-timeout. One place, so that -X and
 * an unreachable cluster mean the same for the consumer, the producer, gen
 * and tail. */
#ifndef TT_KAFKA_CONF_H
#define TT_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tt_kafka_prop {
        const char *name;
        const char *value; /* NULL: not set */
} tt_kafka_prop;

/* A new configuration (caller owns it, or rd_kafka_new takes it). NULL with
 * "-X key=value: reason" or "name=value: reason" in errstr. */
rd_kafka_conf_t *tt_kafka_conf_new(const tt_kafka_prop *defaults,
                                   size_t ndefaults, const char *const *props,
                                   size_t nprops, char *errstr, size_t errsize);

/* The option table's check of one -X value: "key=value" that librdkafka
 * accepts. 0, or -1 with librdkafka's reason in why. */
int tt_kafka_prop_check(const char *kv, char *why, size_t whysize);

/* Waits until a broker of rk's cluster answers a metadata request, at most
 * timeout_ms (<= 0: until it does, or *stop). TT_ERR_KAFKA with "cannot
 * reach the Kafka cluster at BROKERS: <librdkafka's last connection
 * failure> (gave up after 30s, --connect-timeout)" in errstr, or "stopped
 * while reaching ..." when *stop became set (stop may be NULL). */
int tt_kafka_reach(rd_kafka_t *rk, const char *brokers, int64_t timeout_ms,
                   volatile sig_atomic_t *stop, char *errstr, size_t errsize);

#endif
