/* Streak rules (SPEC §5): which key leads a dimension week after week. The
 * decision for one week is a pure function of that week's candidates and the
 * previous week's result, so a revision can replay it from any week. */
#ifndef TT_STREAK_H
#define TT_STREAK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/event.h"
#include "tokentally/rollup.h"

#define TT_STREAK_MAX_CANDIDATES 64

typedef struct tt_streak_rule {
        char *text;   /* as given, e.g. "leader:origin:CN,US"; owned */
        tt_dim dim;   /* TT_DIM_ORIGIN or TT_DIM_MODEL */
        size_t ncand; /* 0: every key with events that week */
        tt_str cand[TT_STREAK_MAX_CANDIDATES]; /* point into text */
} tt_streak_rule;

/* The default rules when none is given. */
extern const char *const tt_streak_default_rules[];
extern const size_t tt_streak_ndefault_rules;

/* Parses "leader:origin", "leader:model", "leader:origin:CN,US",
 * "leader:model:a/b,c/d". Origin candidates must be two upper-case letters.
 * 0, or -1 with a reason. */
int tt_streak_rule_parse(const char *text, tt_streak_rule *out, char *errstr,
                         size_t errsize);
void tt_streak_rule_free(tt_streak_rule *r);

typedef struct tt_streak_cand {
        tt_str key; /* stable for the life of the results that refer to it */
        int64_t tokens;
} tt_streak_cand;

/* One rule's outcome for one week with events. */
typedef struct tt_streak_result {
        bool valid; /* false: week empty / not computed */
        tt_streak_kind kind;
        tt_str holder;
        int64_t holder_tokens;
        int32_t length_weeks;
        tt_str previous_holder; /* ptr NULL = null */
        tt_str runner_up;       /* ptr NULL = null */
        int64_t runner_up_tokens;
        bool has_margin;
        double margin_pct;
} tt_streak_result;

/* Decides a week: holder = most tokens; a tie keeps prev's holder if it is
 * among the tied, else the smallest key (byte order). prev is last week's
 * result, or NULL when last week had no events (the streak is broken).
 * cand is reordered. n must be > 0. */
void tt_streak_decide(tt_streak_cand *cand, size_t n,
                      const tt_streak_result *prev, tt_streak_result *out);

/* True when two results would produce the same StreakChange. */
bool tt_streak_result_eq(const tt_streak_result *a, const tt_streak_result *b);

/* Byte-order comparison of two keys (memcmp, then length). */
int tt_str_cmp(tt_str a, tt_str b);

#endif
