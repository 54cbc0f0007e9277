/* The materialized view of `serve` and `report`: the latest WeeklyRollup of
 * every (week, dimension, key) and the latest StreakChange of every
 * (rule, week), as read from the compacted output topics (or a replay's
 * output files). Pure: fed record by record through the tt_sink signature,
 * no I/O, no locking (the caller serialises feeding and reading).
 *
 * The latest record of a key replaces the one before it whatever its
 * status: records of one key are in one partition in offset order and the
 * latest is the truth (SPEC §4a), so a REVISED record replaces a FINAL or a
 * PROVISIONAL one. Streaks are kept per (rule, week), not per Kafka key
 * (rule): a revision can re-emit an older week's streak after a newer one,
 * and the current streak of a rule is the one of its greatest week. */
#ifndef TT_SERVE_VIEW_H
#define TT_SERVE_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/rollup.h"

typedef struct tt_sview tt_sview;

typedef struct tt_sview_row {
        char week[16];
        int64_t week_start_ms;
        tt_dim dim;
        char *key; /* owned, NUL-terminated */
        bool has_origin;
        char origin[8];
        int64_t tokens, prompt_tokens, completion_tokens, requests;
        bool has_prev;
        int64_t prev_tokens;
        bool has_growth;
        double growth_pct;
        double share_pct;
        int32_t rank;
        tt_status status;
        int32_t revision;
        int64_t emitted_at_ms;
} tt_sview_row;

typedef struct tt_sview_srow {
        char *rule; /* owned, as the strings below */
        char week[16];
        tt_streak_kind kind;
        char *holder;
        char *previous; /* NULL = null */
        int32_t length;
        int64_t holder_tokens;
        char *runner; /* NULL = null */
        bool has_runner_tokens;
        int64_t runner_tokens;
        bool has_margin;
        double margin_pct;
        int64_t emitted_at_ms;
} tt_sview_srow;

tt_sview *tt_sview_new(void);
void tt_sview_destroy(tt_sview *v);

/* tt_sink's signature: 0, or TT_ERR_NOMEM (the view is unchanged). */
int tt_sview_rollup(void *v, const tt_rollup *r);
int tt_sview_streak(void *v, const tt_streak_change *s);

/* Grows by one at every record applied: the ETag of every answer. */
uint64_t tt_sview_version(const tt_sview *v);
/* Records applied (rollups, streaks). */
void tt_sview_counts(const tt_sview *v, uint64_t *rollups, uint64_t *streaks);

/* The weeks that have any row, oldest first ("2026-W05" sorts as time). */
size_t tt_sview_nweeks(const tt_sview *v);
const char *tt_sview_week(const tt_sview *v, size_t i);
/* Index of week in the list above, or -1. */
long tt_sview_week_index(const tt_sview *v, const char *week);

/* The row of (week, dim, key), or NULL. Pointers into the view are valid
 * until the next record is applied. */
const tt_sview_row *tt_sview_find(const tt_sview *v, const char *week,
                                  tt_dim dim, const char *key);
/* Every row of (week, dim) by rank (then key, byte order) into *out (a
 * tt_malloc'd array the caller frees, NULL when none); the count, or
 * (size_t)-1 out of memory. */
size_t tt_sview_rows(const tt_sview *v, const char *week, tt_dim dim,
                     const tt_sview_row ***out);
/* The distinct keys of dim over all weeks, byte order (caller frees the
 * array, not the strings); (size_t)-1 out of memory. */
size_t tt_sview_keys(const tt_sview *v, tt_dim dim, const char ***out);

/* Every (rule, week) streak record, by rule then week. */
size_t tt_sview_nstreaks(const tt_sview *v);
const tt_sview_srow *tt_sview_streak_at(const tt_sview *v, size_t i);

#endif
