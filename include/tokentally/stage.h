/* The Kafka stage (`tokentally run`, SPEC §7): one consumer group member,
 * worker threads that each own some input partitions and one shard of the
 * counters, and a coordinator (the calling thread) that serves rebalances,
 * closes weeks with the workers paused, emits PROVISIONAL rows and commits
 * offsets.
 *
 * What a commit means (no durable state yet): the committed offset of a
 * partition is the first offset that still matters for a week the engine
 * can still change (any week within --retain-weeks of the watermark), and
 * every output of the events before it has been delivered. A restarted
 * stage re-reads from there, recounts those weeks and re-emits their rows
 * (same content; the latest record per key stays exact), and skips
 * re-read events of older weeks, whose effects were delivered; the commit
 * metadata ("tokentally:v1:oldest=2026-W03") tells it where that line is.
 *
 * Exactly-once (the default): every instance of the group is a "front"
 * for the input partitions it owns: its workers check and count their
 * events into per-worker shards. Every commit interval the coordinator
 * pauses them and, in one Kafka transaction, produces what was counted
 * since the last one as a partial record (cells by week, then each
 * partition's watermark) to the partials topic, and commits the input
 * offsets with the partition's watermark as metadata. The instance that
 * owns the partials topic's single partition is also the merger: it reads
 * the partials (read_committed), runs the engine on them (weeks close on
 * the global watermark, FINAL rows, streaks, revisions), and in the same
 * kind of transaction produces the outputs, the changed state records
 * (merger.h) and commits the partials offset. A crash anywhere loses only
 * an uncommitted transaction, which the broker aborts: the restarted or
 * new owner resumes from the committed offsets and the committed state,
 * so no event counts twice or never. Events that may belong to a closed
 * week are forwarded whole, so the merger can revise or dead-letter them
 * with their original bytes. */
#ifndef TT_STAGE_H
#define TT_STAGE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/engine.h"
#include "tokentally/kafka_out.h"
#include "tokentally/stage_snapshot.h"

typedef enum tt_input_format {
        TT_IN_AVRO,     /* Confluent framing + Avro body */
        TT_IN_AVRO_RAW, /* Avro body only */
        TT_IN_JSON,
} tt_input_format;

typedef struct tt_stage_conf {
        const char *brokers;
        const char *group;
        const char *topic;
        tt_input_format format;
        const char *const *props; /* -X key=value */
        size_t nprops;
        int workers;
        bool from_beginning;
        bool has_from_timestamp;
        int64_t from_timestamp;
        bool close_at_eof;
        /* Exactly-once (see below); false: at-least-once as described
         * above. out must then have a transactional_id. */
        bool exactly_once;
        const char *state_topic;    /* changelog of the merger's state */
        const char *partials_topic; /* fronts -> merger */
        /* --instance-id when given: also the consumer's group.instance.id
         * (static membership), so a restart gets its partitions back at
         * once. NULL: dynamic membership. */
        const char *instance_id;
        int64_t emit_interval_ms; /* 0 = never */
        int64_t commit_interval_ms;
        tt_engine_conf engine; /* nshards is set to workers */
        tt_kafka_out *out;     /* borrowed: outputs and dead letters */
        /* --schema-registry (borrowed; NULL: the bundled TokenEvent schema
         * for every id). */
        struct tt_registry *registry;
        /* Extra sink called with every rollup/streak after the producer
         * (demo's leaderboard); may be NULL. */
        const tt_sink *tee;
        void *tee_opaque;
        /* Live view for /metrics, /healthz, /readyz; may be NULL. Borrowed:
         * must outlive tt_stage_run. */
        struct tt_stage_live *live;
        /* --shutdown-timeout (borrowed; may be NULL): the stage names each
         * step of its stop on it, for the message of a stop that overran. */
        struct tt_deadline *deadline;
} tt_stage_conf;

/* Runs until *stop becomes non-zero (SIGTERM/SIGINT), or with close_at_eof
 * until every assigned partition is at its end. Either way: closes what
 * the mode says, flushes outputs, commits, leaves the group, returns 0.
 * A tt_err with a one-line reason on failure (broker unreachable for
 * good, delivery failed, bad -X property). */
int tt_stage_run(const tt_stage_conf *conf, volatile sig_atomic_t *stop,
                 tt_stage_stats *stats, char *errstr, size_t errsize);

/* ---- live view (metrics and probes) ---------------------------------
 * A tt_stage_live outlives the stage run it watches: the HTTP server
 * thread reads it with tt_stage_live_snapshot at any time, while the stage
 * attaches itself for the length of tt_stage_run. Counters are read with
 * relaxed atomic loads (workers are never stopped for a scrape); engine
 * figures are those the coordinator published the last time it had the
 * workers paused (every tick, emit and commit). */
#include "tokentally/metrics.h"

typedef struct tt_stage_live tt_stage_live;

/* NULL when out of memory. */
tt_stage_live *tt_stage_live_new(void);
/* Must not be attached to a running stage; NULL is fine. */
void tt_stage_live_destroy(tt_stage_live *l);
/* Fills s (s->parts/s->cap set by the caller) from any thread. */
void tt_stage_live_snapshot(tt_stage_live *l, tt_stage_snapshot *s);
/* The same as a tt_snapshot_fn (stage_snapshot.h) of a tt_stage_live, for
 * tt_metrics_server_new: the metrics side reads the published snapshot
 * through it and never calls into the stage. */
void tt_stage_live_read(void *live, tt_stage_snapshot *s);

/* Fills sc from parsed options (run and demo share them). su receives the
 * engine set-up and must be freed with tt_setup_free. */
#include "tokentally/options.h"
#include "tokentally/setup.h"
int tt_stage_conf_from_opts(tt_stage_conf *sc, tt_setup *su, const tt_opts *o,
                            unsigned cmd, char *errstr, size_t errsize);

#endif
