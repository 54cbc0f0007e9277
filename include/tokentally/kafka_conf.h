/* librdkafka configurations as every client of ours builds them: our
 * defaults first, then the user's "-X key=value" properties, which win (as
 * in kcat). One place, so that -X means the same for the consumer, the
 * producer and gen. */
#ifndef TT_KAFKA_CONF_H
#define TT_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

typedef struct tt_kafka_prop {
        const char *name;
        const char *value; /* NULL: not set */
} tt_kafka_prop;

/* A new configuration (caller owns it, or rd_kafka_new takes it). NULL with
 * "-X key=value: reason" or "name=value: reason" in errstr. */
rd_kafka_conf_t *tt_kafka_conf_new(const tt_kafka_prop *defaults,
                                   size_t ndefaults, const char *const *props,
                                   size_t nprops, char *errstr, size_t errsize);

#endif
