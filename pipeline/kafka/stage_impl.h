/* Internals of the Kafka stage shared by its files (pipeline/kafka/stage*.c;
 * see docs/architecture.md): the stage, worker and partition structs and
 * the functions one file calls in another. Not a public header: only the
 * stage's own files include it. */
#ifndef TT_STAGE_IMPL_H
#define TT_STAGE_IMPL_H

#include "tokentally/stage.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokentally/avro_event.h"
#include "tokentally/clock.h"
#include "tokentally/commit_meta.h"
#include "tokentally/deadline.h"
#include "tokentally/err.h"
#include "tokentally/framing.h"
#include "tokentally/json_event.h"
#include "tokentally/kafka_conf.h"
#include "tokentally/log.h"
#include "tokentally/mem.h"
#include "tokentally/merger.h"
#include "tokentally/offset_meta.h"
#include "tokentally/partials.h"
#include "tokentally/schema_registry.h"
#include "tokentally/week.h"

#define BATCH 1024
#define TRACKED_WEEKS 32
#define DETAIL_MAX 200

/* Per input partition; fields marked (w) belong to the owning worker and
 * are read by the coordinator only while workers are paused. */
typedef struct wkoff {
        int32_t week;
        int64_t off; /* smallest offset of an event counted in week */
} wkoff;

typedef struct ppart {
        _Atomic bool assigned;           /* coordinator */
        _Atomic int64_t next_offset;     /* (w) -1: nothing consumed yet */
        _Atomic int64_t newest_event_ms; /* (w) for /metrics */
        _Atomic bool eof;                /* (w) at the end of the partition */
        wkoff weeks[TRACKED_WEEKS];      /* (w) */
        int nweeks;                      /* (w) */
        /* At-least-once, after a restart: the offset where the last
         * committed run had read to (-1: unknown). Below it, an event of a
         * week already final was counted then; from it on, such an event is
         * new and too old: a dead letter too_late, never dropped. */
        int64_t replay_end;
        /* Exactly-once gap repair: the offset a worker asks the
         * coordinator to seek back to (-1: none), and the last offset the
         * coordinator did seek to. */
        _Atomic int64_t want_seek;
        _Atomic uint64_t seeks; /* completed seeks (coordinator) */
        /* (w) what the first message after each completed seek showed */
        uint64_t seeks_seen;
        int64_t gap_from, gap_first;
        int gap_count;
} ppart;

typedef struct worker {
        struct stage *st;
        int id;
        pthread_t th;
        bool started;
        rd_kafka_queue_t *q;
        tt_json_dec *jd;
        tt_buf fwd; /* exactly-once: a forwarded event's record */
        /* Counters: written by this worker only (bump), read by the
         * coordinator and by metrics scrapes at any time. */
        _Atomic uint64_t messages, accepted, skipped, late_queued, forwarded,
            gaps, duplicates, dead[TT_REASON__COUNT];
} worker;

typedef struct stage {
        const tt_stage_conf *conf;
        rd_kafka_t *rk;
        tt_engine *e;
        tt_avro_dec *adec;
        worker *w;
        int nw;
        ppart *parts;
        int32_t nparts;
        tt_sink sink;

        pthread_mutex_t mu;
        pthread_cond_t cv;
        _Atomic bool pause;
        int paused;
        _Atomic bool quit;

        /* After a restart: events of weeks before this are already final
         * (but the week just before it is counted again, quietly, when its
         * commit said where it had read to: see commit_meta.h). */
        _Atomic int32_t skip_below;
        int32_t resume_closed; /* the newest week an earlier run closed */
        int32_t resume_rev;    /* the highest revision it emitted, -1 */
        /* The newest of the partitions' metadata (greatest oldest, then
         * end): its streaks seed the engine, and are handed on by commits
         * made before this run has closed that week itself. */
        tt_commit_meta resume_meta;
        bool have_resume_meta;
        bool first_assign_done;
        bool assigned_any;
        _Atomic int err;
        char errmsg[256];
        uint64_t commits;
        _Atomic uint64_t internal_rejected; /* see tt_stage_stats */
        struct tt_stage_live *live;         /* conf->live or our own */

        /* Exactly-once. */
        bool eos;
        char partials[256]; /* the partials topic */
        /* An upper bound of the merger's watermark when this interval's
         * counts reach it: events of weeks closing at or before it are
         * forwarded whole (see tt_stage_update_bound()). */
        _Atomic int64_t fwd_bound;
        tt_merger *merger;  /* while we own the partials partition */
        int64_t merge_next; /* next partials offset to apply */
        /* Partial records below this offset were written before this
         * merger started: their end-of-partition flags are stale. */
        int64_t eof_from;
        bool fresh;       /* the record being applied is at or past eof_from */
        bool merger_done; /* --close-at-eof: closed everything */
        tt_engine_stats merger_stats; /* of the last merger we held */
        /* The merger's figures as of its last committed transaction: what
         * read_committed consumers can see. */
        tt_engine_stats committed_stats;
        bool have_merger_stats;
        tt_json_dec *mjd; /* decodes forwarded events */
        tt_buf pbuf;      /* partial record under construction */
        int64_t last_prov;
        bool retry; /* a transaction was aborted: rerun from the commits */
        bool eof_committed; /* every own partition's end went out */
        /* --close-at-eof: the offset of our partial record that first
         * reported every own partition at its end (-1: none yet). We may
         * leave only once the merger has applied it. */
        int64_t eof_mark;
        int64_t merge_committed; /* merger: partials offset committed */
        int64_t applied_seen;    /* the group's partials offset, last read */
        int64_t applied_since;   /* when applied_seen last moved */
        bool txn_open;
        int64_t unassigned_since;
        bool closed;                 /* --close-at-eof finished its work */
        volatile sig_atomic_t *stop; /* the caller's stop request */
} stage;

/* A single writer's counter: a relaxed load and store (no locked add), so
 * counting costs what a plain ++ does while scrapes read it race-free. */
static inline void bump(_Atomic uint64_t *c) {
        atomic_store_explicit(c,
                              atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
}

struct tt_stage_live {
        pthread_mutex_t mu;
        stage *st;           /* the attached run, or NULL */
        tt_engine_stats eng; /* published with the workers paused */
        bool merger;         /* exactly-once: this instance merges */
        int64_t watermark_ms;
        tt_stage_stats last; /* the last finished run */
        uint64_t last_late_queued;
        bool finished;
        int err; /* fatal error of the last run */
        char errmsg[128];
        char topic[256];
        _Atomic uint64_t rebalances, commits;
        tt_hist emit, commit;
};

/* stage.c: the coordinator: set-up, the loop, week closing and emission
 * (at-least-once), wind-down */
void tt_stage_fail(stage *st, int err, const char *fmt, const char *arg);

/* stage_worker.c: worker threads: decode, check, count; pause and resume */
void tt_stage_dead(worker *w, const rd_kafka_message_t *m, tt_reason why,
                   const char *detail);
tt_reason tt_stage_decode_value(stage *st, tt_json_dec *jd, const void *payload,
                                size_t plen, tt_event *ev, char *detail,
                                size_t size);
void tt_stage_newest(ppart *pp, int64_t t);
bool tt_stage_in_sequence(worker *w, ppart *pp, const rd_kafka_message_t *m);
void *tt_stage_worker_main(void *arg);
void tt_stage_pause_workers(stage *st);
void tt_stage_resume_workers(stage *st);

/* stage_commit.c: at-least-once offset commits and their metadata */
rd_kafka_topic_partition_list_t *
tt_stage_commit_offsets(stage *st, const rd_kafka_topic_partition_list_t *only);
int tt_stage_commit(stage *st, rd_kafka_topic_partition_list_t *l);
/* A commit (or transaction) that began at t0 went through: counted for
 * the stats and /metrics; returns its latency in seconds. */
double tt_stage_count_commit(stage *st, double t0);

/* stage_eos.c: exactly-once, front side: transactions, partial records, gap
 * repair */
void tt_stage_update_bound(stage *st, int64_t now);
void tt_stage_repair_gaps(stage *st);
void tt_stage_eos_cycle(stage *st, int64_t now, bool final);
bool tt_stage_eos_finished(stage *st, int64_t now);
int tt_stage_ensure_topics(stage *st, char *errstr, size_t errsize);

/* stage_merger.c: exactly-once, merger side: applying partial records, its
 * state */
void tt_stage_merger_start(stage *st);
void tt_stage_merger_stop(stage *st);
void tt_stage_merger_apply(stage *st, const rd_kafka_message_t *m);
void tt_stage_dv_model(void *opaque, int32_t week, tt_str model,
                       const tt_cell *c);
void tt_stage_dv_origin(void *opaque, int32_t week, tt_origin o,
                        const tt_cell *c);
int tt_stage_put_state(void *opaque, const char *key, const void *val,
                       size_t len);

/* stage_rebalance.c: the consumer: creation, rebalances, start positions */
rd_kafka_t *tt_stage_make_consumer(stage *st, char *errstr, size_t errsize);

/* stage_live.c: the live view, snapshots for /metrics and the probes */
bool tt_stage_publish(stage *st);
void tt_stage_live_attach(stage *st);
void tt_stage_live_detach(stage *st, const tt_stage_stats *final, int err);

#endif
