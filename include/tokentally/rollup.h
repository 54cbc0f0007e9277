/* Output records: WeeklyRollup (SPEC §4) and StreakChange (SPEC §5), as the
 * engine hands them to sinks. Strings are borrowed from the engine and valid
 * only during the sink callback. */
#ifndef TT_ROLLUP_H
#define TT_ROLLUP_H

#include <stdbool.h>
#include <stdint.h>

#include "tokentally/event.h"

typedef enum tt_dim { TT_DIM_TOTAL, TT_DIM_ORIGIN, TT_DIM_MODEL } tt_dim;
typedef enum tt_status {
        TT_STATUS_PROVISIONAL,
        TT_STATUS_FINAL,
        TT_STATUS_REVISED
} tt_status;
typedef enum tt_streak_kind {
        TT_STREAK_STARTED,
        TT_STREAK_EXTENDED
} tt_streak_kind;

const char *tt_dim_str(tt_dim d);       /* "TOTAL", "ORIGIN", "MODEL" */
const char *tt_status_str(tt_status s); /* "PROVISIONAL", ... */
const char *tt_streak_kind_str(tt_streak_kind k); /* "STARTED", ... */

typedef struct tt_rollup {
        char week[16]; /* "2026-W14", NUL-terminated */
        int64_t week_start_ms;
        tt_dim dimension;
        tt_str key;
        tt_str origin; /* ptr NULL = null */
        int64_t tokens;
        int64_t prompt_tokens;
        int64_t completion_tokens;
        int64_t requests;
        bool has_prev;
        int64_t prev_tokens;
        bool has_growth;
        double wow_growth_pct;
        double share_pct;
        int32_t rank;
        tt_status status;
        int32_t revision;
        int64_t emitted_at_ms;
} tt_rollup;

typedef struct tt_streak_change {
        tt_str rule;
        char week[16];
        tt_streak_kind kind;
        tt_str holder;
        int32_t length_weeks;
        tt_str previous_holder; /* ptr NULL = null */
        int64_t holder_tokens;
        tt_str runner_up; /* ptr NULL = null */
        bool has_runner_up_tokens;
        int64_t runner_up_tokens;
        bool has_margin;
        double margin_pct;
        int64_t emitted_at_ms;
} tt_streak_change;

/* Where the engine sends its outputs. A non-zero return is a tt_err that
 * stops the current engine call and is reported by it. */
typedef struct tt_sink {
        int (*rollup)(void *opaque, const tt_rollup *r);
        int (*streak)(void *opaque, const tt_streak_change *s);
} tt_sink;

#endif
