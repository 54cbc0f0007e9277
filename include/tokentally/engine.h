/* The engine: decoded events in, WeeklyRollups and StreakChanges out
 * (SPEC §3-§5). No I/O and no clock of its own: callers pass processing time
 * (now_ms) in, and outputs leave through a tt_sink. Kafka, files and tests
 * are adapters around it.
 *
 * Events are counted in shards (counters.h), one per group of input
 * partitions (partition id modulo the shard count). Watermarks are kept per
 * partition; a week closes when the watermark passes its end plus the grace,
 * emitting FINAL rows and then the week's streak changes. Late events revise
 * closed weeks (REVISED rows, recomputed streaks) or become dead letters. */
#ifndef TT_ENGINE_H
#define TT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/counters.h"
#include "tokentally/event.h"
#include "tokentally/origin_map.h"
#include "tokentally/rollup.h"

typedef struct tt_engine tt_engine;

typedef struct tt_engine_conf {
        int64_t grace_ms;             /* default 10 min */
        bool late_dlq;                /* --late=dlq; default revise */
        int32_t retain_weeks;         /* default 12 */
        int64_t idle_timeout_ms;      /* default 30 s; <= 0: never idle */
        int64_t max_future_ms;        /* default 1 h; < 0: no check (replay) */
        const tt_origin_map *origins; /* borrowed; must outlive the engine */
        const char *const *rules;     /* streak rules; NULL: the defaults */
        size_t nrules;
        uint32_t nshards; /* default 1 */
        /* --max-keys: distinct models one shard counts in one week; past
         * it an event is a dead letter key_limit. 0 (the default) =
         * unbounded: every valid key is counted, memory follows the cells
         * held (open weeks' shards plus retained weeks' rows). */
        uint32_t max_models;
        int32_t max_partitions; /* partition ids < this, default 4096 */
} tt_engine_conf;

void tt_engine_conf_defaults(tt_engine_conf *conf);

#define TT_STATS_WEEKS 16

typedef struct tt_engine_stats {
        uint64_t accepted;
        uint64_t dead[TT_REASON__COUNT];
        uint64_t dead_total;
        uint64_t late_revised; /* late events counted into closed weeks */
        uint64_t late_lost;    /* queued late events whose week was dropped
                                  before the coordinator got to them */
        uint64_t weeks_closed;
        uint64_t rows[3]; /* by tt_status */
        uint64_t streaks; /* StreakChange records */
        int32_t open_weeks;
        /* Keys held: model cells of the shards' open weeks plus the rows of
         * the merged week views (what memory grows with), and the bytes of
         * the counters, views and key table that hold them. */
        uint64_t state_keys;
        uint64_t state_bytes;
        int32_t closed_weeks_held;
        int32_t max_revision;      /* the highest revision of an emitted row */
        uint32_t max_keys;         /* conf.max_models; 0 = unbounded */
        uint64_t key_limit_events; /* events refused by max_keys */
        /* Distinct models per open week, summed over the shards (up to
         * TT_STATS_WEEKS open weeks). */
        struct {
                int32_t week;
                uint64_t models;
        } week_models[TT_STATS_WEEKS];
        size_t nweek_models;
} tt_engine_stats;

/* conf is copied; sink and opaque are borrowed. NULL with a reason (bad
 * streak rule, no origin map, out of memory). */
tt_engine *tt_engine_new(const tt_engine_conf *conf, const tt_sink *sink,
                         void *opaque, char *errstr, size_t errsize);
void tt_engine_destroy(tt_engine *e);

/* Registers input partition pid (>= 0). Until it has events it holds the
 * watermark back (until idle). Idempotent. */
int tt_engine_partition_add(tt_engine *e, int32_t pid, int64_t now_ms);
/* The source's word on partition pid: true while it has messages still to
 * read (assigned and its end not reached yet, or messages arrived after
 * the end), false once it is read to its end. A partition that is behind
 * holds the watermark back however long it has been since its last event:
 * --idle-timeout is quiet at the end of a partition, not a slow fetch (a
 * first fetch 1 s late once closed a week on the other partitions' events
 * alone). Sources that cannot tell never call it (never behind). */
void tt_engine_partition_behind(tt_engine *e, int32_t pid, bool behind);
/* The partition is finished (file at its end) or revoked: it stops holding
 * the watermark back. Weeks may close inside this call. */
int tt_engine_partition_remove(tt_engine *e, int32_t pid, int64_t now_ms);

/* Offers one decoded event from partition pid (registered on first use).
 * Returns TT_REASON_NONE when counted, or the dead-letter reason with a
 * detail. Weeks may close, and outputs be emitted, inside this call; a sink
 * error is kept and returned by tt_engine_error(). */
/* Prefetches what counting ev (its model_hash set) into partition pid's
 * shard will touch: for a caller offering many events, a few ahead. No
 * effect on results. */
void tt_engine_prefetch(const tt_engine *e, int32_t pid, const tt_event *ev);
tt_reason tt_engine_offer(tt_engine *e, int32_t pid, const tt_event *ev,
                          int64_t now_ms, char *detail, size_t detail_size);

/* Processing-time housekeeping: marks partitions idle after the idle
 * timeout, advances the watermark, closes weeks, emits pending revisions. */
int tt_engine_tick(tt_engine *e, int64_t now_ms);
/* Emits pending REVISED rows and streak changes of late events now. Late
 * events are batched until the next flush, a week close or close_all. */
int tt_engine_flush(tt_engine *e, int64_t now_ms);
/* PROVISIONAL rows of every open week for the keys that changed since the
 * last call. */
int tt_engine_emit_provisional(tt_engine *e, int64_t now_ms);
/* Closes every open week in order (end of input). */
int tt_engine_close_all(tt_engine *e, int64_t now_ms);

/* ---- worker mode -----------------------------------------------------
 * Worker threads each own some partitions and one shard. Per event, without
 * a lock: tt_engine_check, then tt_engine_count (on time) or
 * tt_engine_queue_late (late, to revise), then tt_engine_seen. The
 * coordinator polls tt_engine_sync_due and, with every worker paused
 * between batches, calls tt_engine_tick / emit_provisional / close_all. */

/* Validates ev and classifies it against the closed weeks: TT_REASON_NONE
 * with *week set, and *late when it belongs to a closed week that is to
 * be revised; else the dead-letter reason. Reads engine state with atomic
 * loads only: safe while the coordinator is not ticking. */
tt_reason tt_engine_check(const tt_engine *e, const tt_event *ev,
                          int64_t now_ms, int32_t *week, bool *late,
                          char *detail, size_t detail_size);
/* Counts an on-time event into shard (owned by the calling worker).
 * TT_ERR_LIMIT: --max-keys reached for that week in that shard (dead
 * letter key_limit; counted in stats.key_limit_events). */
int tt_engine_count(tt_engine *e, uint32_t shard, int32_t week,
                    const tt_event *ev);
/* Records that partition pid (owned by the caller) saw event_time. */
void tt_engine_seen(tt_engine *e, int32_t pid, int64_t event_time,
                    int64_t now_ms);
/* Queues a late event for the next tick (copies what it needs). */
int tt_engine_queue_late(tt_engine *e, const tt_event *ev);
/* True when a tick would close a week or count queued late events. */
bool tt_engine_sync_due(tt_engine *e, int64_t now_ms);
/* The newest closed week index (INT32_MIN before any). */
int32_t tt_engine_closed_through(const tt_engine *e);

/* ---- exactly-once stage: front and merger ---------------------------
 * Each instance's workers count their input partitions' events into a
 * "front" engine that never closes weeks; every transaction the front is
 * drained into a partial record (cells by week, plus each partition's
 * watermark) for the "merger" engine of whichever instance merges. The
 * merger (nshards 1, idle_timeout 0, max_future -1) takes cells and
 * watermark reports instead of events, and closes weeks as usual. */

typedef struct tt_engine_cells_visitor {
        void (*model)(void *opaque, int32_t week, tt_str model,
                      const tt_cell *c);
        void (*origin)(void *opaque, int32_t week, tt_origin o,
                       const tt_cell *c);
} tt_engine_cells_visitor;

/* Front: visits every cell counted since the last drain, then empties the
 * shards (workers paused). */
void tt_engine_drain(tt_engine *e, const tt_engine_cells_visitor *v,
                     void *opaque);
/* Front: partition pid's newest event time and whether it is idle now. */
void tt_engine_partition_state(const tt_engine *e, int32_t pid, int64_t now_ms,
                               int64_t *max_time, bool *idle);

/* Merger: adds a partial's cell to week w: counted while w is open; a
 * revision of w (REVISED rows at the next tick) when w is closed and
 * retained; counted in stats.late_lost when older. TT_ERR_LIMIT when the
 * model table is full. */
int tt_engine_merge_model(tt_engine *e, int32_t w, tt_str model,
                          const tt_cell *c);
int tt_engine_merge_origin(tt_engine *e, int32_t w, tt_origin o,
                           const tt_cell *c);
/* Merger: what partition pid's owner reports. An idle or finished
 * partition stops holding the watermark back. */
void tt_engine_partition_report(tt_engine *e, int32_t pid, int64_t max_time,
                                bool idle, bool eof);
/* ---- at-least-once restarts (engine_resume.c) -------------------------
 * A restarted at-least-once stage counts again the retained weeks of the
 * run before it, plus the week before the oldest of them (quiet_through),
 * so that the oldest has its prev_tokens. tt_engine_resume, before any
 * week closes: weeks <= quiet_through close without any output; weeks <=
 * reemit_through (closed by the earlier run) close with REVISED rows at
 * revision_base, above every revision the earlier run emitted. */
void tt_engine_resume(tt_engine *e, int32_t quiet_through,
                      int32_t reemit_through, int32_t revision_base);
/* The streak of rule (by its text) in week quiet_through as the earlier
 * run had it: the recount of that week alone cannot know how long the
 * holder had led. 0, or TT_ERR_NOMEM. */
int tt_engine_resume_streak(tt_engine *e, const char *rule, const char *holder,
                            size_t holder_len, int32_t length);
/* What an at-least-once commit hands to the next run: rule i's holder and
 * streak length in closed week w. False when unknown (w not held, no
 * events, not closed). */
size_t tt_engine_rules(const tt_engine *e);
const char *tt_engine_rule_text(const tt_engine *e, size_t i);
bool tt_engine_streak_at(const tt_engine *e, int32_t w, size_t i,
                         tt_str *holder, int32_t *length);

/* Merger: every known partition reported its end (--close-at-eof). */
bool tt_engine_all_eof(const tt_engine *e);
/* Merger: an event a front forwarded whole because its week may be closed:
 * counted, revised, or its dead-letter reason (late, too_late). */
tt_reason tt_engine_offer_forwarded(tt_engine *e, const tt_event *ev,
                                    int64_t now_ms, char *detail,
                                    size_t detail_size);

/* Merger state for the changelog (engine_state.c). tt_engine_save calls
 * put for each week held (week index) and once for the meta record (week
 * NO_WEEK = INT32_MIN); a week's state comes in parts 0, 1, ... of about
 * max_part bytes each (one part unless the week is bigger), so that a week
 * of 10^6 models fits a topic's max.message.bytes. Records are
 * self-contained: tt_engine_load applies one record (any part) to a fresh
 * engine, in any order. */
typedef int (*tt_engine_put_fn)(void *opaque, int32_t week, uint32_t part,
                                const void *rec, size_t len);
int tt_engine_save(tt_engine *e, size_t max_part, tt_engine_put_fn put,
                   void *opaque);
int tt_engine_load(tt_engine *e, const void *rec, size_t len, char *errstr,
                   size_t errsize);

/* The first sink error, or 0. */
int tt_engine_error(const tt_engine *e);
/* INT64_MIN until every live partition has an event or is idle. */
int64_t tt_engine_watermark(const tt_engine *e);
void tt_engine_get_stats(const tt_engine *e, tt_engine_stats *st);

#endif
