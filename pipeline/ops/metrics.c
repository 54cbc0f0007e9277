/* The /metrics page of the stage and the HTTP server around it. Names
 * follow Prometheus conventions (promtool check metrics passes): a
 * tokentally_ prefix, base units in the name, counters end in _total. */
#include "tokentally/metrics.h"

#include <stdio.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/event.h"
#include "tokentally/http_server.h"
#include "tokentally/mem.h"
#include "tokentally/rollup.h"
#include "tokentally/stage_snapshot.h"
#include "tokentally/week.h"

#define PAGE_MAX (8u << 20)
#define MAX_PARTS 4096

const double tt_hist_bounds[TT_HIST_NB] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                           0.025,  0.05,  0.1,    0.25,  0.5,
                                           1,      2.5,   5,      10};

void tt_hist_observe(tt_hist *h, double seconds) {
        int i = 0;
        while (i < TT_HIST_NB && seconds > tt_hist_bounds[i])
                i++;
        atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
        if (seconds > 0)
                atomic_fetch_add_explicit(&h->sum_ns,
                                          (uint64_t)(seconds * 1e9 + 0.5),
                                          memory_order_relaxed);
}

void tt_hist_read(const tt_hist *h, tt_hist_snap *s) {
        for (int i = 0; i <= TT_HIST_NB; i++)
                s->bucket[i] = atomic_load_explicit(&((tt_hist *)h)->bucket[i],
                                                    memory_order_relaxed);
        s->sum = (double)atomic_load_explicit(&((tt_hist *)h)->sum_ns,
                                              memory_order_relaxed) /
                 1e9;
}

/* ---- exposition format ------------------------------------------------ */

void tt_metrics_family(tt_buf *out, const char *name, const char *type,
                       const char *help) {
        tt_buf_printf(out, "# HELP %s ", name);
        for (const char *p = help; *p; p++) {
                if (*p == '\\')
                        tt_buf_append(out, "\\\\", 2);
                else if (*p == '\n')
                        tt_buf_append(out, "\\n", 2);
                else
                        tt_buf_putc(out, *p);
        }
        tt_buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

void tt_metrics_label_value(tt_buf *out, const char *s) {
        for (const char *p = s; *p; p++) {
                if (*p == '\\' || *p == '"') {
                        tt_buf_putc(out, '\\');
                        tt_buf_putc(out, *p);
                } else if (*p == '\n') {
                        tt_buf_append(out, "\\n", 2);
                } else {
                        tt_buf_putc(out, *p);
                }
        }
}

static void sample_name(tt_buf *out, const char *name, const char *labels) {
        if (labels && *labels)
                tt_buf_printf(out, "%s{%s} ", name, labels);
        else
                tt_buf_printf(out, "%s ", name);
}

void tt_metrics_u64(tt_buf *out, const char *name, const char *labels,
                    uint64_t v) {
        sample_name(out, name, labels);
        tt_buf_printf(out, "%llu\n", (unsigned long long)v);
}

void tt_metrics_double(tt_buf *out, const char *name, const char *labels,
                       double v) {
        sample_name(out, name, labels);
        tt_buf_printf(out, "%.17g\n", v);
}

void tt_metrics_hist(tt_buf *out, const char *name, const char *help,
                     const tt_hist_snap *h) {
        tt_metrics_family(out, name, "histogram", help);
        uint64_t cum = 0;
        for (int i = 0; i <= TT_HIST_NB; i++) {
                cum += h->bucket[i];
                if (i < TT_HIST_NB)
                        tt_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
                                      tt_hist_bounds[i],
                                      (unsigned long long)cum);
                else
                        tt_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n",
                                      name, (unsigned long long)cum);
        }
        tt_buf_printf(out, "%s_sum %.9f\n%s_count %llu\n", name, h->sum, name,
                      (unsigned long long)cum);
}

static void counter(tt_buf *out, const char *name, const char *help,
                    uint64_t v) {
        tt_metrics_family(out, name, "counter", help);
        tt_metrics_u64(out, name, "", v);
}

static void gauge(tt_buf *out, const char *name, const char *help, double v) {
        tt_metrics_family(out, name, "gauge", help);
        tt_metrics_double(out, name, "", v);
}

/* 'topic="t",partition="3"' */
static void part_labels(char *dst, size_t size, const char *topic, int32_t p) {
        tt_buf b;
        tt_buf_init(&b, size);
        tt_buf_append(&b, "topic=\"", 7);
        tt_metrics_label_value(&b, topic ? topic : "");
        tt_buf_printf(&b, "\",partition=\"%d\"", (int)p);
        size_t n = b.len < size ? b.len : size - 1;
        if (n)
                memcpy(dst, b.data, n);
        dst[n] = '\0';
        tt_buf_free(&b);
}

int tt_metrics_write_stage(tt_buf *out, tt_snapshot_fn *read, void *src) {
        tt_stage_part_snap *parts = tt_calloc(MAX_PARTS, sizeof(*parts));
        if (!parts)
                return TT_ERR_NOMEM;
        tt_stage_snapshot s;
        memset(&s, 0, sizeof(s));
        s.parts = parts;
        s.cap = MAX_PARTS;
        read(src, &s);
        const tt_stage_stats *t = &s.stats;
        const tt_engine_stats *e = &t->engine;

        counter(out, "tokentally_events_total",
                "Input messages read (valid or not)", t->messages);
        counter(out, "tokentally_events_accepted_total",
                "Events counted (on time or queued late)", t->accepted);
        counter(out, "tokentally_events_skipped_replayed_total",
                "Events re-read after a restart whose week was already final",
                t->skipped_replayed);
        counter(out, "tokentally_events_forwarded_total",
                "Exactly-once: events sent whole to the merger because their "
                "week may be closed",
                t->forwarded);
        counter(out, "tokentally_offset_gaps_total",
                "Exactly-once: offset gaps in a partition re-read before "
                "committing past them",
                t->gaps);
        counter(out, "tokentally_internal_records_rejected_total",
                "Exactly-once: corrupt records of the internal topics and "
                "committed offset metadata refused and skipped (logged with "
                "topic, partition, offset and reason), and partials "
                "watermark reports beyond --max-future held to it",
                t->internal_rejected);
        gauge(out, "tokentally_merger",
              "Exactly-once: 1 when this instance merges the partials (and "
              "emits the rows)",
              s.merger ? 1 : 0);
        tt_metrics_family(out, "tokentally_dead_letters_total", "counter",
                          "Messages sent to the dead-letter topic, by reason");
        for (int r = 1; r < TT_REASON__COUNT; r++) {
                char l[64];
                snprintf(l, sizeof(l), "reason=\"%s\"",
                         tt_reason_str((tt_reason)r));
                tt_metrics_u64(out, "tokentally_dead_letters_total", l,
                               t->dead[r]);
        }
        counter(out, "tokentally_late_events_queued_total",
                "Late events queued to revise a closed week", s.late_queued);
        counter(out, "tokentally_late_events_revised_total",
                "Late events counted into a closed week", e->late_revised);
        counter(out, "tokentally_late_events_lost_total",
                "Queued late events whose week was dropped before counting",
                e->late_lost);
        static const char *const status[] = {"provisional", "final", "revised"};
        tt_metrics_family(out, "tokentally_rows_emitted_total", "counter",
                          "WeeklyRollup records produced, by status");
        for (int i = 0; i < 3; i++) {
                char l[32];
                snprintf(l, sizeof(l), "status=\"%s\"", status[i]);
                tt_metrics_u64(out, "tokentally_rows_emitted_total", l,
                               e->rows[i]);
        }
        counter(out, "tokentally_streak_changes_total",
                "StreakChange records produced", e->streaks);
        counter(out, "tokentally_week_closes_total",
                "Weeks closed (FINAL rows emitted)", e->weeks_closed);
        gauge(out, "tokentally_open_week_shards",
              "Open weeks summed over the counting shards (one per worker)",
              (double)e->open_weeks);
        gauge(out, "tokentally_closed_week_views",
              "Closed weeks held for revisions", (double)e->closed_weeks_held);
        gauge(out, "tokentally_state_keys",
              "Keys held in memory: model cells of open weeks plus rows of "
              "merged week views",
              (double)e->state_keys);
        gauge(out, "tokentally_state_bytes",
              "Bytes of the counters, week views and key table holding them",
              (double)e->state_bytes);
        tt_metrics_family(out, "tokentally_week_models", "gauge",
                          "Distinct models of an open week, summed over the "
                          "counting shards");
        for (size_t i = 0; i < e->nweek_models; i++) {
                char l[64], wk[16];
                tt_week_name(e->week_models[i].week, wk, sizeof(wk));
                snprintf(l, sizeof(l), "week=\"%s\"", wk);
                tt_metrics_u64(out, "tokentally_week_models", l,
                               e->week_models[i].models);
        }
        gauge(out, "tokentally_max_keys",
              "--max-keys: distinct models per week and counting shard (0 = "
              "unbounded)",
              (double)e->max_keys);
        gauge(out, "tokentally_key_limit_reached",
              "1 once --max-keys refused an event (its model was not counted; "
              "see tokentally_dead_letters_total{reason=\"key_limit\"})",
              e->key_limit_events ? 1 : 0);
        counter(out, "tokentally_commits_total",
                "Offset commits that succeeded", t->commits);
        counter(out, "tokentally_rebalances_total",
                "Partition assignments and revocations served", s.rebalances);
        gauge(out, "tokentally_ready", "1 when /readyz answers 200",
              s.ready ? 1 : 0);
        gauge(out, "tokentally_partitions_assigned",
              "Input partitions assigned to this member", (double)s.nparts);
        tt_metrics_family(out, "tokentally_watermark_timestamp_seconds",
                          "gauge",
                          "Event-time watermark of the stage (absent until "
                          "every live partition has an event or is idle)");
        if (s.watermark_ms != INT64_MIN)
                tt_metrics_double(out, "tokentally_watermark_timestamp_seconds",
                                  "", (double)s.watermark_ms / 1000.0);
        tt_metrics_family(
            out, "tokentally_partition_lag_messages", "gauge",
            "Messages behind the partition's high watermark (cached by "
            "librdkafka from fetch responses)");
        for (size_t i = 0; i < s.nparts; i++) {
                if (s.parts[i].lag < 0)
                        continue;
                char l[320];
                part_labels(l, sizeof(l), s.topic, s.parts[i].partition);
                tt_metrics_u64(out, "tokentally_partition_lag_messages", l,
                               (uint64_t)s.parts[i].lag);
        }
        tt_metrics_family(
            out, "tokentally_partition_watermark_timestamp_seconds", "gauge",
            "Newest event time seen on the input partition");
        for (size_t i = 0; i < s.nparts; i++) {
                if (s.parts[i].watermark_ms == INT64_MIN)
                        continue;
                char l[320];
                part_labels(l, sizeof(l), s.topic, s.parts[i].partition);
                tt_metrics_double(
                    out, "tokentally_partition_watermark_timestamp_seconds", l,
                    (double)s.parts[i].watermark_ms / 1000.0);
        }
        tt_metrics_hist(out, "tokentally_emit_latency_seconds",
                        "Coordinator passes that emitted rows or streak "
                        "changes: workers paused to outputs queued",
                        &s.emit_latency);
        tt_metrics_hist(out, "tokentally_commit_latency_seconds",
                        "Synchronous offset commits", &s.commit_latency);
        tt_free(parts);
        return out->len + 64 < out->max ? TT_ERR_OK : TT_ERR_LIMIT;
}

/* ---- HTTP ------------------------------------------------------------- */

struct tt_metrics_server {
        tt_http_server *http;
        tt_snapshot_fn *read;
        void *src;
};

static unsigned handle(void *opaque, const char *path, tt_buf *body,
                       const char **ctype) {
        tt_metrics_server *s = opaque;
        if (!strcmp(path, "/metrics")) {
                if (tt_metrics_write_stage(body, s->read, s->src)) {
                        tt_buf_reset(body);
                        tt_buf_printf(body, "metrics page too large\n");
                        return 500;
                }
                *ctype = "text/plain; version=0.0.4; charset=utf-8";
                return 200;
        }
        if (!strcmp(path, "/healthz") || !strcmp(path, "/readyz")) {
                tt_stage_snapshot snap;
                memset(&snap, 0, sizeof(snap));
                s->read(s->src, &snap);
                bool ok = path[1] == 'h' ? snap.healthy : snap.ready;
                tt_buf_printf(body, "%s\n", ok ? "ok" : snap.reason);
                return ok ? 200 : 503;
        }
        tt_buf_printf(body, "not found: try /metrics, /healthz, /readyz\n");
        return 404;
}

tt_metrics_server *tt_metrics_server_new(const char *addr, tt_snapshot_fn *read,
                                         void *src, char *errstr,
                                         size_t errsize) {
        tt_metrics_server *s = tt_calloc(1, sizeof(*s));
        if (!s) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        s->read = read;
        s->src = src;
        tt_http_conf hc;
        tt_http_conf_defaults(&hc);
        hc.body_max = PAGE_MAX;
        char why[256];
        s->http = tt_http_server_new(addr, &hc, handle, s, why, sizeof(why));
        if (!s->http) {
                snprintf(errstr, errsize, "--metrics-addr %s", why);
                tt_free(s);
                return NULL;
        }
        return s;
}

int tt_metrics_server_port(const tt_metrics_server *s) {
        return s ? tt_http_server_port(s->http) : 0;
}

void tt_metrics_server_destroy(tt_metrics_server *s) {
        if (!s)
                return;
        tt_http_server_destroy(s->http);
        tt_free(s);
}
