/* librdkafka clients: defaults, then -X, our log callback, and the first
 * contact with the cluster; see kafka_conf.h. */
#include "tokentally/kafka_conf.h"

#include <time.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/clock.h"
#include "tokentally/duration.h"
#include "tokentally/err.h"
#include "tokentally/log.h"

/* log.c links no librdkafka (pipeline/ops/ sits below the Kafka layer):
 * the client's name is looked up here and the line logged there. */
void tt_log_rdkafka(const struct rd_kafka_s *rk, int level, const char *fac,
                    const char *buf) {
        tt_log_library(rk ? rd_kafka_name(rk) : "", level, fac, buf);
}

rd_kafka_conf_t *tt_kafka_conf_new(const tt_kafka_prop *defaults,
                                   size_t ndefaults, const char *const *props,
                                   size_t nprops, char *errstr,
                                   size_t errsize) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        /* Never librdkafka's own "%3|..." lines on stderr: ours are JSON at
         * the level of --log-level, and only at debug in the commands that
         * print plain text (log.h). */
        rd_kafka_conf_set_log_cb(conf, tt_log_rdkafka);
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

int tt_kafka_prop_check(const char *kv, char *why, size_t whysize) {
        const char *eq = strchr(kv, '=');
        char name[256];
        if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(name)) {
                snprintf(why, whysize, "is not key=value");
                return -1;
        }
        memcpy(name, kv, (size_t)(eq - kv));
        name[eq - kv] = '\0';
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char reason[256];
        int rc = rd_kafka_conf_set(conf, name, eq + 1, reason,
                                   sizeof(reason)) == RD_KAFKA_CONF_OK
                     ? 0
                     : -1;
        if (rc)
                snprintf(why, whysize, "is refused by librdkafka: %s", reason);
        rd_kafka_conf_destroy(conf);
        return rc;
}

int tt_kafka_reach(rd_kafka_t *rk, const char *brokers, int64_t timeout_ms,
                   volatile sig_atomic_t *stop, char *errstr, size_t errsize) {
        /* No topic: an answer listing the brokers is enough. librdkafka
         * waits in each call for a usable broker; calls of at most 1 s so
         * that a stop request is seen. */
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        for (int64_t waited = 0;
             (timeout_ms <= 0 || waited < timeout_ms) && !(stop && *stop);) {
                int slice = 1000;
                if (timeout_ms > 0 && timeout_ms - waited < slice)
                        slice = (int)(timeout_ms - waited);
                const struct rd_kafka_metadata *md = NULL;
                double t0 = tt_mono_s();
                err = rd_kafka_metadata(rk, 0, NULL, &md, slice);
                if (md)
                        rd_kafka_metadata_destroy(md);
                if (!err)
                        return TT_ERR_OK;
                /* A call may return early (no broker at all yet). */
                int64_t took = (int64_t)((tt_mono_s() - t0) * 1000);
                if (took < slice) {
                        struct timespec ts = {0,
                                              (long)(slice - took) * 1000000L};
                        nanosleep(&ts, NULL);
                }
                waited += slice;
        }
        if (stop && *stop) {
                snprintf(errstr, errsize,
                         "stopped while reaching the Kafka cluster at %s",
                         brokers ? brokers : "?");
                return TT_ERR_KAFKA;
        }
        char why[512], took[32];
        if (!tt_log_rdkafka_failure(why, sizeof(why)))
                snprintf(why, sizeof(why),
                         "no broker answered (librdkafka: %s)",
                         rd_kafka_err2str(err));
        tt_duration_format((double)timeout_ms, took, sizeof(took));
        snprintf(errstr, errsize,
                 "cannot reach the Kafka cluster at %s: %s (gave up after %s, "
                 "--connect-timeout)",
                 brokers ? brokers : "?", why, took);
        return TT_ERR_KAFKA;
}
