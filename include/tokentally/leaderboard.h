/* A leaderboard of the output records: the latest WeeklyRollup of every
 * (week, dimension, key) -- of the models, only those ranked within the top
 * TT_BOARD_TOP_MODELS -- and the latest StreakChange of every (rule, week),
 * printed as tokens by origin for the last weeks (growth, share), the top
 * models and the streaks of the newest week. Fed as a tt_sink (the demo's
 * tee) or record by record (`tokentally tail --format table`). */
#ifndef TT_LEADERBOARD_H
#define TT_LEADERBOARD_H

#include <stdint.h>
#include <stdio.h>

#include "tokentally/rollup.h"

/* MODEL rows kept and printed per week: the top ones by rank. */
#define TT_BOARD_TOP_MODELS 5

typedef struct tt_board_row {
        char week[16];
        tt_dim dim;
        char key[260];
        char origin[4];
        int64_t tokens;
        bool has_prev;
        int64_t prev;
        bool has_growth;
        double growth, share;
        int32_t rank;
        tt_status status;
        int32_t revision;
} tt_board_row;

typedef struct tt_board_streak_row {
        char rule[64], week[16], holder[260], runner[260], previous[260];
        tt_streak_kind kind;
        int32_t length;
        bool has_margin;
        double margin;
} tt_board_streak_row;

typedef struct tt_board {
        tt_board_row *rows;
        size_t nrows, caprows;
        size_t *slots; /* open addressing: row index + 1, 0 = empty */
        size_t nslots; /* a power of two, at least 2 * nrows */
        tt_board_streak_row *streaks;
        size_t nstreaks, capstreaks;
        uint64_t rollups, streak_records; /* records seen */
} tt_board;

/* Zero-initialise a tt_board before use. Both return 0, or -1 when out of
 * memory; the signature is tt_sink's. */
int tt_board_rollup(void *board, const tt_rollup *r);
int tt_board_streak(void *board, const tt_streak_change *s);

enum {
        /* A note that the figures are at the scenario's scale 1e-4. */
        TT_BOARD_SCENARIO_NOTE = 1 << 0,
        /* Exact figures of the newest week's origins, with revisions. */
        TT_BOARD_DETAIL = 1 << 1,
};
/* Prints the last nweeks weeks (by the TOTAL rows) to f. */
void tt_board_print(FILE *f, const tt_board *b, int nweeks, unsigned flags);
void tt_board_free(tt_board *b);

#endif
