/* What the stage publishes for /metrics, /healthz and /readyz: plain
 * types, no code. The stage (pipeline/kafka/, stage.h) fills a
 * tt_stage_snapshot; the metrics side (pipeline/ops/metrics.c) reads it
 * through a tt_snapshot_fn and so neither includes stage.h nor links the
 * Kafka layer. Before this header the two sources included each other. */
#ifndef TT_STAGE_SNAPSHOT_H
#define TT_STAGE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/engine.h"
#include "tokentally/event.h"
#include "tokentally/metrics.h"

typedef struct tt_stage_stats {
        uint64_t messages;
        uint64_t accepted;
        uint64_t dead_letters;
        uint64_t dead[TT_REASON__COUNT];
        uint64_t skipped_replayed; /* re-read after restart, already final */
        uint64_t forwarded;        /* exactly-once: sent whole to the merger */
        uint64_t gaps;             /* offset gaps re-read (stage_eos.c) */
        uint64_t duplicates;       /* messages below the expected offset */
        uint64_t commits;
        /* --close-at-eof did all it promises: every week closed and its
         * rows committed (or, exactly-once in an instance that is not the
         * merger, every count handed to the merger and applied by it). */
        bool closed;
        bool merger; /* exactly-once: held the merger role in this run */
        /* exactly-once, not the merger: the group's committed partials
         * offset last seen by --close-at-eof (-2: not asked) */
        int64_t partials_applied;
        /* Exactly-once: corrupt internal records (partials refused by
         * tt_partial_check, committed offset metadata refused by
         * tt_offset_meta_*) logged and skipped, never applied; and
         * watermark reports past now + --max-future held to it. */
        uint64_t internal_rejected;
        tt_engine_stats engine; /* the merger's, when this instance was */
        double seconds;
} tt_stage_stats;

typedef struct tt_stage_part_snap {
        int32_t partition;
        int64_t lag;          /* high watermark - next offset; -1 unknown */
        int64_t watermark_ms; /* newest event time seen; INT64_MIN none */
} tt_stage_part_snap;

typedef struct tt_stage_snapshot {
        tt_stage_stats stats; /* seconds unused */
        uint64_t late_queued;
        uint64_t rebalances;
        int64_t watermark_ms; /* INT64_MIN until known */
        tt_hist_snap emit_latency, commit_latency;
        bool healthy, ready;
        bool merger;      /* exactly-once: this instance is the merger */
        char reason[160]; /* why not healthy / not ready */
        const char *topic;
        /* Assigned partitions; caller-provided array of cap entries. */
        tt_stage_part_snap *parts;
        size_t nparts, cap;
} tt_stage_snapshot;

/* The reader, tt_snapshot_fn(src, s), is declared in metrics.h: it fills
 * s (s->parts/s->cap set by the caller) from any thread; src is the
 * publisher's handle (tt_stage_live_read reads a tt_stage_live). */

#endif
