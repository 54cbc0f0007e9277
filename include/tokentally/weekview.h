/* The merged rows of one week: TOTAL, one per origin, one per model, with
 * the derived fields (prev_tokens, share, rank) and what was last emitted
 * for each row, so that the engine re-emits exactly the rows whose content
 * changed. Single-threaded: owned by the engine. */
#ifndef TT_WEEKVIEW_H
#define TT_WEEKVIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "tokentally/counters.h"
#include "tokentally/keytab.h"
#include "tokentally/rollup.h"
#include "tokentally/streak.h"

typedef struct tt_row {
        tt_dim dim;
        uint32_t key; /* MODEL: id in the engine keytab; ORIGIN: tt_origin */
        tt_cell c;
        /* derived by tt_weekview_derive */
        bool has_prev;
        int64_t prev;
        double share;
        int32_t rank;
        /* as last emitted */
        bool emitted;
        int32_t revision;
        tt_cell em;
        bool em_has_prev;
        int64_t em_prev;
        double em_share;
        int32_t em_rank;
} tt_row;

typedef struct tt_weekview {
        int32_t week;
        char name[16];
        int64_t start_ms;
        tt_row *rows;
        uint32_t n, cap;
        uint32_t *index; /* (dim,key) -> row + 1; open addressing */
        uint32_t index_mask;
        uint32_t *order; /* row indexes: TOTAL, ORIGIN by rank, MODEL */
        bool dirty;      /* counted a late event since the last emit */
        tt_streak_result *streaks; /* one per rule; valid when week had
                                      events and was closed */
        size_t nrules;
        /* At-least-once after a restart (engine_resume.c): quiet, the week
         * is only the previous week of the oldest one counted again, and
         * emits nothing; reemit_revision > 0, an earlier run emitted this
         * week, so its close emits REVISED rows at that revision. */
        bool quiet;
        int32_t reemit_revision;
        int32_t top_revision; /* the highest revision emitted */
} tt_weekview;

tt_weekview *tt_weekview_new(int32_t week, size_t nrules);
void tt_weekview_destroy(tt_weekview *wv);

/* The row of (dim, key), created empty when missing; NULL out of memory. */
tt_row *tt_weekview_row(tt_weekview *wv, tt_dim dim, uint32_t key);
const tt_row *tt_weekview_find(const tt_weekview *wv, tt_dim dim, uint32_t key);
/* Zeroes every row's counters (before a fresh merge from the shards); the
 * emitted state is kept. */
void tt_weekview_clear_counts(tt_weekview *wv);
/* True when the week has at least one event. */
bool tt_weekview_has_events(const tt_weekview *wv);

/* Computes prev_tokens (from prev_week, NULL if that week had no events or
 * is unknown), share and rank of every row, and the emission order. keys
 * resolves model ids to slugs for the rank tie-break. */
int tt_weekview_derive(tt_weekview *wv, const tt_weekview *prev_week,
                       const tt_keytab *keys);

typedef enum tt_emit_mode {
        TT_EMIT_PROVISIONAL, /* rows whose counters changed */
        TT_EMIT_FINAL,       /* every row, revision 0 */
        TT_EMIT_REVISED,     /* rows whose content changed, revision + 1 */
} tt_emit_mode;

/* Emits rows through sink in order (TOTAL, ORIGIN by rank, MODEL by rank)
 * and records them as emitted. Returns the sink's first error, or 0; *count
 * gets the number of rows emitted. */
int tt_weekview_emit(tt_weekview *wv, tt_emit_mode mode, const tt_keytab *keys,
                     const tt_sink *sink, void *opaque, int64_t now_ms,
                     uint64_t *count);

#endif
