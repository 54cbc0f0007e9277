/* Prometheus metrics (text exposition format 0.0.4) and the small HTTP
 * server that serves them with /healthz and /readyz (http_server.h: one
 * thread, slow clients cannot starve the probes). The metric values come from a
 * tt_stage_snapshot (stage_snapshot.h) that a tt_snapshot_fn fills; this file
 * only knows how to write and serve them, and never calls the stage. */
#ifndef TT_METRICS_H
#define TT_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/buf.h"

/* Latency histogram buckets (seconds): 0.5 ms to 10 s. */
#define TT_HIST_NB 14
extern const double tt_hist_bounds[TT_HIST_NB];

/* One writer (the coordinator) observes, any thread reads: relaxed
 * atomics, so a scrape may see a count one behind its sum. */
typedef struct tt_hist {
        _Atomic uint64_t bucket[TT_HIST_NB + 1]; /* last: above every bound */
        _Atomic uint64_t sum_ns;
} tt_hist;

typedef struct tt_hist_snap {
        uint64_t bucket[TT_HIST_NB + 1]; /* not cumulative */
        double sum;
} tt_hist_snap;

void tt_hist_observe(tt_hist *h, double seconds);
void tt_hist_read(const tt_hist *h, tt_hist_snap *s);

/* Writers of the exposition format, appending to out. HELP text is
 * escaped; labels is "" or a ready label set without braces
 * ('topic="t",partition="3"'). */
void tt_metrics_family(tt_buf *out, const char *name, const char *type,
                       const char *help);
void tt_metrics_u64(tt_buf *out, const char *name, const char *labels,
                    uint64_t v);
void tt_metrics_double(tt_buf *out, const char *name, const char *labels,
                       double v);
void tt_metrics_hist(tt_buf *out, const char *name, const char *help,
                     const tt_hist_snap *h);
/* Appends s to out as a label value (escapes \, " and newline). */
void tt_metrics_label_value(tt_buf *out, const char *s);

struct tt_stage_snapshot;
/* The stage_snapshot.h reader, repeated here so that this header needs no
 * more than a forward declaration. */
typedef void tt_snapshot_fn(void *src, struct tt_stage_snapshot *s);
/* The whole /metrics page of the snapshot read(src) fills. TT_ERR_LIMIT if
 * out's cap is hit. */
int tt_metrics_write_stage(tt_buf *out, tt_snapshot_fn *read, void *src);

typedef struct tt_metrics_server tt_metrics_server;

/* Listens on addr ("HOST:PORT", "[v6]:PORT"; port 0 picks a free one) and
 * serves /metrics, /healthz and /readyz from the snapshots read(src) fills
 * (src borrowed: must outlive the server; tt_stage_live_read with a
 * tt_stage_live for the stage). NULL with a reason (bad address, port in
 * use). */
tt_metrics_server *tt_metrics_server_new(const char *addr, tt_snapshot_fn *read,
                                         void *src, char *errstr,
                                         size_t errsize);
/* The bound port (the chosen one when addr asked for port 0). */
int tt_metrics_server_port(const tt_metrics_server *s);
/* Stops the server thread and frees; NULL is fine. */
void tt_metrics_server_destroy(tt_metrics_server *s);

#endif
