/* The engine's internals, shared by engine.c (counting, closing, revising)
 * and engine_state.c (saving and restoring it for the changelog). Not a
 * public header: nothing outside the engine's two files includes it. */
#ifndef TT_ENGINE_IMPL_H
#define TT_ENGINE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "tokentally/buf.h"
#include "tokentally/counters.h"
#include "tokentally/engine.h"
#include "tokentally/keyorder.h"
#include "tokentally/keytab.h"
#include "tokentally/streak.h"
#include "tokentally/weekview.h"

#define NO_WEEK INT32_MIN
#define RELAXED memory_order_relaxed

/* max_time and last_activity have one writer each (the thread that owns
 * the partition's events) and are read by the coordinator. */
typedef struct partition {
        bool live; /* registered and not removed; coordinator only */
        _Atomic int64_t max_time;      /* INT64_MIN: no event yet */
        _Atomic int64_t last_activity; /* processing time of the last one */
        /* The source has messages of it still to read (tt_engine_partition_
         * behind): never idle then, however long since its last event. */
        _Atomic bool behind;
        /* Merger mode: what the partition's owner last reported. */
        bool reported_idle;
        bool reported_eof;
} partition;

/* A late event queued by a worker. Its model lives in the queue's arena,
 * by offset because the arena may move as it grows. */
typedef struct late_ev {
        tt_event ev;
        size_t model_off;
        char origin[2];
} late_ev;

struct tt_engine {
        tt_engine_conf conf;
        const tt_sink *sink;
        void *opaque;
        int err;

        tt_streak_rule *rules;
        size_t nrules;

        tt_shard **shards;
        tt_keytab *keys;    /* model slugs of merged rows, engine-wide */
        tt_keyorder *order; /* the slugs' byte order, for rank ties */

        partition *parts; /* conf.max_partitions, never moves */
        int32_t nparts;   /* highest live pid + 1 */

        /* Written only by the coordinator (workers paused), read by
         * workers without a lock. */
        _Atomic int64_t watermark;
        _Atomic int32_t closed_through; /* every week <= this is closed */

        /* Weeks some shard holds, ascending; rebuilt when needed. */
        int32_t *open;
        size_t nopen, capopen;

        pthread_mutex_t late_mu;
        late_ev *late;
        size_t nlate, caplate;
        tt_buf late_arena;

        /* Merged views, ascending by week: closed ones within retention and
         * open ones that have had PROVISIONAL rows. */
        tt_weekview **views;
        size_t nviews, capviews;
        bool pending; /* a closed view is dirty */

        tt_engine_stats st;
        int64_t now;

        /* At-least-once after a restart (engine_resume.c). */
        int32_t quiet_through;  /* weeks <= this close without output */
        int32_t reemit_through; /* weeks <= this were emitted before */
        int32_t revision_base;  /* their rows' revision when they close */
        char **seed_holder;     /* per rule: holder of week quiet_through */
        int32_t *seed_length;   /* and its streak length (0: none) */
        /* Events refused by --max-keys; workers add to it. */
        _Atomic uint64_t key_limit_events;
};

/* The view of week w, or NULL. */
tt_weekview *tt_engine_view_find_(const tt_engine *e, int32_t w);
/* The view of week w, created empty when missing (views stay sorted). */
tt_weekview *tt_engine_view_get_(tt_engine *e, int32_t w);

/* engine_resume.c: marks wv quiet or re-emitted as tt_engine_resume said;
 * decides a quiet week's streaks without emitting them, taking the
 * lengths handed over by the earlier run. */
void tt_engine_resume_mark_(const tt_engine *e, tt_weekview *wv);
int tt_engine_decide_quiet_(tt_engine *e, tt_weekview *wv);
void tt_engine_resume_free_(tt_engine *e);
/* Candidates of rule r in wv (engine.c). Listed keys count 0 when absent. */
size_t tt_engine_candidates_(const tt_engine *e, const tt_streak_rule *r,
                             const tt_weekview *wv, tt_streak_cand *out,
                             size_t cap);

#endif
