/* librdkafka configurations: defaults, then -X; see kafka_conf.h. */
#include "tokentally/kafka_conf.h"

#include <stdio.h>
#include <string.h>

rd_kafka_conf_t *tt_kafka_conf_new(const tt_kafka_prop *defaults,
                                   size_t ndefaults, const char *const *props,
                                   size_t nprops, char *errstr,
                                   size_t errsize) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char why[512];
        for (size_t i = 0; i < ndefaults; i++) {
                if (!defaults[i].value)
                        continue;
                if (rd_kafka_conf_set(conf, defaults[i].name, defaults[i].value,
                                      why, sizeof(why)) != RD_KAFKA_CONF_OK) {
                        snprintf(errstr, errsize, "%s=%s: %s", defaults[i].name,
                                 defaults[i].value, why);
                        goto fail;
                }
        }
        for (size_t i = 0; i < nprops; i++) {
                const char *kv = props[i], *eq = strchr(kv, '=');
                char name[256];
                if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(name)) {
                        snprintf(errstr, errsize, "-X %s: expected key=value",
                                 kv);
                        goto fail;
                }
                memcpy(name, kv, (size_t)(eq - kv));
                name[eq - kv] = '\0';
                if (rd_kafka_conf_set(conf, name, eq + 1, why, sizeof(why)) !=
                    RD_KAFKA_CONF_OK) {
                        snprintf(errstr, errsize, "-X %s: %s", kv, why);
                        goto fail;
                }
        }
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}
