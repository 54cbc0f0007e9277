/* A shard of the weekly counters: per open ISO week, token counts by model
 * and by origin. One shard is owned by one thread (a worker, or the replay
 * applier) and needs no lock; the engine merges shards when a week closes or
 * PROVISIONAL rows are due. Each week has its own open-addressing table of
 * models whose slugs and cells live in arrays of that week, freed whole when
 * the week closes: memory follows the (week, model) cells held, the per-event
 * path is a hash of the slug, one probe and a few additions, and nothing is
 * allocated per event (tables grow by doubling). */
#ifndef TT_COUNTERS_H
#define TT_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/event.h"
#include "tokentally/origin_map.h"
#include "tokentally/week.h"

/* A cell as the engine's interfaces exchange it (partials, changelog). */
typedef struct tt_cell {
        int64_t tokens;
        int64_t prompt_tokens;
        int64_t completion_tokens;
        int64_t requests;
        int64_t last_time;     /* event_time of the latest event */
        tt_origin last_origin; /* its origin; ties: the larger code */
} tt_cell;

/* Adds one request to a cell; shared by the shards and the closed weeks. */
static inline void tt_cell_add(tt_cell *c, const tt_event *ev,
                               tt_origin origin) {
        c->prompt_tokens += ev->prompt_tokens;
        c->completion_tokens += ev->completion_tokens;
        c->tokens += ev->prompt_tokens + ev->completion_tokens;
        c->requests++;
        if (ev->event_time_ms > c->last_time ||
            (ev->event_time_ms == c->last_time && origin > c->last_origin)) {
                c->last_time = ev->event_time_ms;
                c->last_origin = origin;
        }
}

/* The largest count the engine keeps exact in one cell (tokens, prompt or
 * completion tokens, requests of one key in one week): 2^62, 4.6e18, about
 * 170,000 times the headline's platform week. Two counts at most this big
 * add up without int64 overflow, so merges check against it
 * (tt_cell_merge_ok) and are refused past it (TT_ERR_RANGE) instead of
 * wrapping. Per-event adds (tt_cell_add) stay unchecked on the hot path:
 * an event adds at most TT_MAX_TOKENS_PER_REQUEST, so a cell goes from
 * 2^62 to INT64_MAX only after 4.6e11 such events between two merges. */
#define TT_COUNT_MAX (INT64_C(1) << 62)

/* True when every field of b is in [0, TT_COUNT_MAX] and a + b stays
 * within it (a being a valid cell). */
static inline bool tt_cell_merge_ok(const tt_cell *a, const tt_cell *b) {
        return b->tokens >= 0 && b->prompt_tokens >= 0 &&
               b->completion_tokens >= 0 && b->requests >= 0 &&
               b->tokens <= TT_COUNT_MAX - a->tokens &&
               b->prompt_tokens <= TT_COUNT_MAX - a->prompt_tokens &&
               b->completion_tokens <= TT_COUNT_MAX - a->completion_tokens &&
               b->requests <= TT_COUNT_MAX - a->requests;
}

/* Merges b into a with the same rules as adding b's events one by one. */
static inline void tt_cell_merge(tt_cell *a, const tt_cell *b) {
        a->tokens += b->tokens;
        a->prompt_tokens += b->prompt_tokens;
        a->completion_tokens += b->completion_tokens;
        a->requests += b->requests;
        if (b->requests &&
            (a->requests == b->requests || b->last_time > a->last_time ||
             (b->last_time == a->last_time &&
              b->last_origin > a->last_origin))) {
                a->last_time = b->last_time;
                a->last_origin = b->last_origin;
        }
}

/* The same cell as held in memory, 32 bytes instead of 48: tokens is always
 * prompt + completion, and the latest event time fits in 32 bits as an
 * offset from the start of the cell's week (a week is 604,800,000 ms).
 * Shards and week views hold millions of these. spare is the holder's (a
 * view keeps a row's dimension and flags there). */
typedef struct tt_ccell {
        int64_t prompt_tokens;
        int64_t completion_tokens;
        int64_t requests;
        uint32_t last_off;     /* last_time - week start; 0 when empty */
        tt_origin last_origin; /* as in tt_cell */
        uint8_t spare[2];
} tt_ccell;

static inline int64_t tt_ccell_tokens(const tt_ccell *c) {
        return c->prompt_tokens + c->completion_tokens;
}

static inline void tt_ccell_get(const tt_ccell *c, int64_t week_start,
                                tt_cell *out) {
        out->prompt_tokens = c->prompt_tokens;
        out->completion_tokens = c->completion_tokens;
        out->tokens = c->prompt_tokens + c->completion_tokens;
        out->requests = c->requests;
        out->last_time = c->requests ? week_start + c->last_off : 0;
        out->last_origin = c->last_origin;
}

/* Keeps spare. A last_time outside the week (only a corrupt record could
 * carry one) is clamped to the week's bounds. */
static inline void tt_ccell_put(tt_ccell *c, int64_t week_start,
                                const tt_cell *in) {
        c->prompt_tokens = in->prompt_tokens;
        c->completion_tokens = in->completion_tokens;
        c->requests = in->requests;
        int64_t off = in->last_time - week_start;
        c->last_off = !in->requests || off < 0 ? 0
                      : off >= TT_WEEK_MS      ? (uint32_t)(TT_WEEK_MS - 1)
                                               : (uint32_t)off;
        c->last_origin = in->last_origin;
}

/* tt_cell_merge on a held cell (so that the one merge rule applies). */
static inline void tt_ccell_merge(tt_ccell *a, int64_t week_start,
                                  const tt_cell *b) {
        tt_cell x;
        tt_ccell_get(a, week_start, &x);
        tt_cell_merge(&x, b);
        tt_ccell_put(a, week_start, &x);
}

/* tt_cell_add on a held cell of the event's week. */
static inline void tt_ccell_add(tt_ccell *c, int64_t week_start,
                                const tt_event *ev, tt_origin origin) {
        uint32_t off = (uint32_t)(ev->event_time_ms - week_start);
        c->prompt_tokens += ev->prompt_tokens;
        c->completion_tokens += ev->completion_tokens;
        if (!c->requests++ || off > c->last_off ||
            (off == c->last_off && origin > c->last_origin)) {
                c->last_off = off;
                c->last_origin = origin;
        }
}

#define TT_NORIGINS (26 * 26)
static inline unsigned tt_origin_index(tt_origin o) {
        return (unsigned)((o >> 8) - 'A') * 26 + (unsigned)((o & 0xff) - 'A');
}
/* Two letters A..Z and nothing else: the only codes the origin arrays
 * can index. Codes from outside the process are checked with it. */
static inline bool tt_origin_valid(tt_origin o) {
        unsigned hi = o >> 8 & 0xff, lo = o & 0xff;
        return o >> 16 == 0 && hi >= 'A' && hi <= 'Z' && lo >= 'A' && lo <= 'Z';
}
static inline tt_origin tt_origin_at(unsigned i) {
        return TT_ORIGIN('A' + i / 26, 'A' + i % 26);
}

typedef struct tt_shard tt_shard;

/* map is borrowed and must outlive the shard. max_models bounds the
 * distinct models of one week in this shard (--max-keys); 0 = unbounded. */
tt_shard *tt_shard_new(const tt_origin_map *map, uint32_t max_models);
void tt_shard_destroy(tt_shard *s);

/* Counts a validated event in week w. The origin is ev->origin when present,
 * else the map's answer for the model's author (cached per cell). Returns
 * 0, TT_ERR_LIMIT when a new model would pass max_models in week w,
 * TT_ERR_NOMEM. */
int tt_shard_add(tt_shard *s, int32_t w, const tt_event *ev);
/* Prefetches the index slot where a model of hash (tt_hash) starts probing
 * in week w, if w has counters: for a caller counting many events a few
 * events ahead. No effect on results. */
void tt_shard_prefetch(const tt_shard *s, int32_t w, uint64_t hash);

/* Resolves the origin an event would be counted under. */
tt_origin tt_event_origin(const tt_origin_map *map, const tt_event *ev);

typedef struct tt_shard_visitor {
        void (*model)(void *opaque, tt_str model, const tt_cell *c);
        void (*origin)(void *opaque, tt_origin o, const tt_cell *c);
} tt_shard_visitor;

/* Calls v for every model and origin with events in week w. */
void tt_shard_visit(const tt_shard *s, int32_t w, const tt_shard_visitor *v,
                    void *opaque);
/* Adds a cell counted elsewhere to week w (merger of partials). 0,
 * TT_ERR_LIMIT, TT_ERR_NOMEM. */
int tt_shard_merge_model(tt_shard *s, int32_t w, tt_str model,
                         const tt_cell *c);
int tt_shard_merge_origin(tt_shard *s, int32_t w, tt_origin o,
                          const tt_cell *c);
/* Empties every week (after a drain): weeks untouched since the last
 * clear are freed, the others zeroed and kept for reuse. */
void tt_shard_clear(tt_shard *s);
/* Forgets week w (after it closed). */
void tt_shard_drop(tt_shard *s, int32_t w);
/* Number of events counted in week w since the shard saw it first; lets the
 * engine skip unchanged weeks. */
uint64_t tt_shard_version(const tt_shard *s, int32_t w);
/* The smallest week with events, or INT32_MAX. */
int32_t tt_shard_min_week(const tt_shard *s);
/* Weeks held, and bytes held (memory accounting). */
size_t tt_shard_weeks(const tt_shard *s);
/* Model cells held over the weeks held. */
uint64_t tt_shard_keys(const tt_shard *s);
/* Distinct models of week w in this shard. */
uint32_t tt_shard_week_models(const tt_shard *s, int32_t w);
/* The i-th week held (0 <= i < tt_shard_weeks), in no particular order. */
int32_t tt_shard_week_at(const tt_shard *s, size_t i);
size_t tt_shard_bytes(const tt_shard *s);

#endif
