/* Logs as JSON lines on stderr, one object per line:
 * {"ts":"2026-04-01T12:00:00.123Z","level":"info","msg":"...", fields...}.
 * Only main, the cmd_* entry points and the stage's coordinator log;
 * library code returns errors. librdkafka's log_cb is routed here too. */
#ifndef TT_LOG_H
#define TT_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum tt_log_level {
        TT_LOG_ERROR,
        TT_LOG_WARN,
        TT_LOG_INFO,
        TT_LOG_DEBUG,
} tt_log_level;

/* One extra field: a string (TT_KV_S; a NULL string is written as "") or
 * an integer (TT_KV_I). */
typedef struct tt_log_kv {
        const char *k;
        const char *s;
        int64_t i;
} tt_log_kv;

#define TT_KV_S(key, val) ((tt_log_kv){(key), tt_log_str(val), 0})
static inline const char *tt_log_str(const char *s) {
        return s ? s : "";
}
#define TT_KV_I(key, val) ((tt_log_kv){(key), NULL, (int64_t)(val)})

/* "error|warn|info|debug" -> level; -1 for anything else. */
int tt_log_parse_level(const char *s);
/* Default TT_LOG_INFO. Set once at start, before threads. */
void tt_log_set_level(tt_log_level l);
int tt_log_enabled(tt_log_level l);

/* Writes one line (atomically: one write(2) per line). msg and string
 * fields are escaped; kv may be NULL when n is 0. */
void tt_log_kvs(tt_log_level l, const char *msg, const tt_log_kv *kv, size_t n);
/* msg from a printf format, no extra fields. */
void tt_logf(tt_log_level l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* TT_LOG(TT_LOG_INFO, "week closed", TT_KV_S("week", w), TT_KV_I("rows", n)) */
#define TT_LOG(l, msg, ...)                                                    \
        tt_log_kvs((l), (msg), (const tt_log_kv[]){__VA_ARGS__},               \
                   sizeof((const tt_log_kv[]){__VA_ARGS__}) /                  \
                       sizeof(tt_log_kv))

/* librdkafka's log_cb (rd_kafka_conf_set_log_cb, set by tt_kafka_conf_new):
 * syslog levels mapped to ours, with the facility and client name as
 * fields. By default every line is logged at debug: the commands that print
 * plain text (tail, gen, replay) say what failed in one line of their own,
 * and librdkafka's retries are detail. run, whose log is the JSON stream,
 * calls tt_log_rdkafka_levels(true) to keep librdkafka's own levels. It also
 * keeps the last connection failure (facility FAIL), for
 * tt_log_rdkafka_failure. Defined in kafka/kafka_conf.c, which names the
 * client and calls tt_log_library, so that this file's log.c links no
 * librdkafka. */
struct rd_kafka_s;
void tt_log_rdkafka(const struct rd_kafka_s *rk, int level, const char *fac,
                    const char *buf);
/* The body of tt_log_rdkafka: client is the rd_kafka_name ("" for none). */
void tt_log_library(const char *client, int level, const char *fac,
                    const char *buf);
/* Set once at start, before clients exist. */
void tt_log_rdkafka_levels(int keep);
/* The last connection failure librdkafka logged in this process, without
 * its thread prefix ("127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1
 * failed: Connection refused"). 1 when there is one, else 0. */
int tt_log_rdkafka_failure(char *out, size_t size);

#endif
