/* The merged rows of one week: TOTAL, one per origin, one per model, and
 * what is needed to re-emit exactly the rows whose content changed. Closed
 * weeks are held for --retain-weeks, so a row is kept small (40 bytes): its
 * cell, key and revision. prev_tokens, share and rank are derived at each
 * emission (O(n log n), in transient arrays), and what was last emitted is
 * derived too: from the current cells, except for the rows changed since
 * their last emission, whose cell as it was is kept in a snapshot. Rows of
 * closed weeks change only through late events, so snapshots are few.
 * Single-threaded: owned by the engine. */
#ifndef TT_WEEKVIEW_H
#define TT_WEEKVIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "tokentally/counters.h"
#include "tokentally/keytab.h"
#include "tokentally/rollup.h"
#include "tokentally/streak.h"

/* Row flags (kept in c.spare[1]; c.spare[0] is the dimension). */
#define TT_ROW_EMITTED 1u /* has a record out there */
#define TT_ROW_TOUCHED                                                         \
        2u /* changed since then; the snapshot has the cell                    \
              as emitted (when emitted) */

typedef struct tt_row {
        tt_ccell c;
        uint32_t key; /* MODEL: id in the engine keytab; ORIGIN: tt_origin */
        uint32_t revision; /* of the last record emitted */
} tt_row;

static inline tt_dim tt_row_dim(const tt_row *r) {
        return (tt_dim)r->c.spare[0];
}

typedef struct tt_row_snap {
        uint32_t row;
        tt_ccell old;
} tt_row_snap;

typedef struct tt_weekview {
        int32_t week;
        char name[16];
        int64_t start_ms;
        tt_row *rows;
        uint32_t n, cap;
        uint32_t *index;    /* (dim,key) -> row + 1; open addressing;
                               NULL when dropped (tt_weekview_drop_index) */
        uint32_t isize;     /* slots; any size (multiply-shift placement) */
        tt_row_snap *snaps; /* of TOUCHED rows that were EMITTED */
        uint32_t nsnaps, capsnaps;
        bool snaps_sorted;
        uint32_t ntouched;
        int64_t *prov_req; /* open weeks: requests per row before the
                              last re-merge (PROVISIONAL: what changed) */
        uint32_t nprov;
        bool dirty; /* counted a late event since the last emit */
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

/* The row of (dim, key), created empty when missing; NULL out of memory.
 * The pointer is valid until the next row is created. */
/* Prefetches the index slot where (dim, key) starts probing: for a caller
 * adding many rows a few keys ahead. No effect on results. */
void tt_weekview_prefetch(const tt_weekview *wv, tt_dim dim, uint32_t key);
tt_row *tt_weekview_row(tt_weekview *wv, tt_dim dim, uint32_t key);
const tt_row *tt_weekview_find(const tt_weekview *wv, tt_dim dim, uint32_t key);

/* Adds a cell (or one event) to the row of (dim, key). closed: the week
 * has been emitted as FINAL, so the row's emitted content is kept first
 * (snapshot) when this is its first change since. 0 or TT_ERR_NOMEM. */
int tt_weekview_add_cell(tt_weekview *wv, tt_dim dim, uint32_t key,
                         const tt_cell *c, bool closed);
int tt_weekview_add_event(tt_weekview *wv, tt_dim dim, uint32_t key,
                          const tt_event *ev, tt_origin o, bool closed);
/* Restores a saved row (engine_state.c): its cell, flags, revision and,
 * for a TOUCHED and EMITTED row, the cell as emitted. */
int tt_weekview_restore_row(tt_weekview *wv, tt_dim dim, uint32_t key,
                            const tt_cell *c, unsigned flags, uint32_t revision,
                            const tt_cell *emitted);
/* The cell of row i as last emitted (its snapshot when touched). */
void tt_weekview_emitted_cell(const tt_weekview *wv, uint32_t i, tt_cell *out);

/* Zeroes every row's counters before a fresh merge of an open week from the
 * shards, remembering the requests of each for PROVISIONAL emission. */
int tt_weekview_clear_counts(tt_weekview *wv);
/* True when the week has at least one event. */
bool tt_weekview_has_events(const tt_weekview *wv);
/* After the emissions that follow late events (the week and the next
 * one): what was emitted is now the current content. */
void tt_weekview_settle(tt_weekview *wv);
/* Gives back the slack of a week that was just closed (rows to size, index
 * to about 67% load): closed weeks are the bulk of what is held. */
void tt_weekview_shrink(tt_weekview *wv);
/* A closed week older than the newest closed one is looked up only when a
 * late event revises it: its index (6 bytes a row, 10% of what a 10^5-row
 * week holds) is dropped then, and rebuilt by the first call that needs
 * it: tt_weekview_row and what adds rows, tt_weekview_emit, or
 * tt_weekview_index (which a caller uses before lookups through a const
 * view). tt_weekview_find on a dropped index searches the rows (from the
 * end, where a merge puts the ORIGIN and TOTAL rows). */
void tt_weekview_drop_index(tt_weekview *wv);
/* Rebuilds a dropped index; 0 or TT_ERR_NOMEM. */
int tt_weekview_index(tt_weekview *wv);

/* Room for more rows without regrowth (a merge of known size). 0 or
 * TT_ERR_NOMEM. */
int tt_weekview_reserve(tt_weekview *wv, uint64_t more);
/* Renumbers MODEL keys (map[old id] = new id; the engine compacting its
 * key table) and re-indexes in place. Cannot fail. */
void tt_weekview_remap_keys(tt_weekview *wv, const uint32_t *map);
/* Bytes held (memory accounting). */
size_t tt_weekview_bytes(const tt_weekview *wv);

typedef enum tt_emit_mode {
        TT_EMIT_PROVISIONAL, /* rows whose counters changed */
        TT_EMIT_FINAL,       /* every row, revision 0 */
        TT_EMIT_REVISED,     /* rows whose content changed, revision + 1 */
} tt_emit_mode;

/* Derives prev_tokens (from prev_week, NULL if that week had no events or
 * is unknown), share and rank of every row with events, and emits rows
 * through sink in order (TOTAL, ORIGIN by rank, MODEL by rank), recording
 * them as emitted. keys resolves model ids to slugs (key, rank
 * tie-break); key_rank, if not NULL, is tt_keyorder_ranks of keys, and
 * ties are then broken without reading a slug (same order). O(n log n) in
 * the week's rows, O(n) with key_rank. Returns the sink's first error or
 * TT_ERR_NOMEM, else 0; *count gets the number of rows emitted. */
int tt_weekview_emit(tt_weekview *wv, const tt_weekview *prev_week,
                     tt_emit_mode mode, const tt_keytab *keys,
                     const uint32_t *key_rank, const tt_sink *sink,
                     void *opaque, int64_t now_ms, uint64_t *count);

#endif
