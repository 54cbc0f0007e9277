/* JSON-lines logger on stderr. One snprintf into a stack line and one
 * write(2), so lines from different threads never interleave. */
#include "tokentally/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static _Atomic int level = TT_LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

int tt_log_parse_level(const char *s) {
        for (int i = 0; s && i < 4; i++)
                if (!strcmp(s, names[i]))
                        return i;
        return -1;
}

void tt_log_set_level(tt_log_level l) {
        atomic_store(&level, (int)l);
}

int tt_log_enabled(tt_log_level l) {
        return (int)l <= atomic_load_explicit(&level, memory_order_relaxed);
}

typedef struct line {
        char b[LINE_MAX_BYTES];
        size_t n;
} line;

static void put(line *L, const char *s, size_t n) {
        /* Keep room for the closing "}\n". */
        if (L->n + n + 2 > sizeof(L->b))
                n = sizeof(L->b) - 2 - L->n;
        memcpy(L->b + L->n, s, n);
        L->n += n;
}

static void put_str(line *L, const char *s) {
        put(L, "\"", 1);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                char esc[8];
                if (*p == '"' || *p == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char)*p;
                        put(L, esc, 2);
                } else if (*p == '\n') {
                        put(L, "\\n", 2);
                } else if (*p < 0x20 || *p == 0x7f) {
                        snprintf(esc, sizeof(esc), "\\u%04x", *p);
                        put(L, esc, 6);
                } else {
                        put(L, (const char *)p, 1);
                }
        }
        put(L, "\"", 1);
}

void tt_log_kvs(tt_log_level l, const char *msg, const tt_log_kv *kv,
                size_t n) {
        if (!tt_log_enabled(l))
                return;
        line L;
        L.n = 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char head[96];
        int hn =
            snprintf(head, sizeof(head),
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
                     "\"level\":\"%s\",\"msg\":",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[l]);
        put(&L, head, (size_t)hn);
        put_str(&L, msg);
        for (size_t i = 0; i < n; i++) {
                put(&L, ",", 1);
                put_str(&L, kv[i].k);
                put(&L, ":", 1);
                if (kv[i].s) {
                        put_str(&L, kv[i].s);
                } else {
                        char num[24];
                        int k = snprintf(num, sizeof(num), "%lld",
                                         (long long)kv[i].i);
                        put(&L, num, (size_t)k);
                }
        }
        memcpy(L.b + L.n, "}\n", 2);
        L.n += 2;
        ssize_t w = write(STDERR_FILENO, L.b, L.n);
        (void)w;
}

void tt_logf(tt_log_level l, const char *fmt, ...) {
        if (!tt_log_enabled(l))
                return;
        char msg[LINE_MAX_BYTES / 2];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        tt_log_kvs(l, msg, NULL, 0);
}

static _Atomic int rdkafka_levels;
/* A process has one cluster (one --brokers), so one slot serves all its
 * clients; the callback has no slot of its own (the opaque is the
 * client's owner's). */
static pthread_mutex_t failure_mu = PTHREAD_MUTEX_INITIALIZER;
static char failure[512];

void tt_log_rdkafka_levels(int keep) {
        atomic_store(&rdkafka_levels, keep);
}

int tt_log_rdkafka_failure(char *out, size_t size) {
        pthread_mutex_lock(&failure_mu);
        snprintf(out, size, "%s", failure);
        pthread_mutex_unlock(&failure_mu);
        return out[0] != '\0';
}

/* "[thrd:...]: 127.0.0.1:1/bootstrap: Connect ... (after 0ms in state
 * CONNECT, 3 identical error(s) suppressed)" -> the part in between. */
static void keep_failure(const char *buf) {
        const char *p = strstr(buf, "]: ");
        p = p && buf[0] == '[' ? p + 3 : buf;
        const char *end = strstr(p, " (after ");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        pthread_mutex_lock(&failure_mu);
        snprintf(failure, sizeof(failure), "%.*s", (int)n, p);
        pthread_mutex_unlock(&failure_mu);
}

void tt_log_library(const char *client, int lvl, const char *fac,
                    const char *buf) {
        if (lvl <= 4 && fac && !strcmp(fac, "FAIL"))
                keep_failure(buf);
        /* syslog: 0-3 emerg..err, 4 warning, 5-6 notice/info, 7 debug. */
        tt_log_level l = lvl <= 3   ? TT_LOG_ERROR
                         : lvl == 4 ? TT_LOG_WARN
                         : lvl <= 6 ? TT_LOG_INFO
                                    : TT_LOG_DEBUG;
        if (!atomic_load_explicit(&rdkafka_levels, memory_order_relaxed))
                l = TT_LOG_DEBUG;
        TT_LOG(l, buf, TT_KV_S("component", "librdkafka"),
               TT_KV_S("facility", fac), TT_KV_S("client", client));
}
