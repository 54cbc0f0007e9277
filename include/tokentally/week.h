/* ISO-8601 weeks in UTC (SPEC §3). A week is identified by its index: the
 * number of whole weeks between Monday 1970-01-05 00:00 UTC and its Monday
 * (negative before). Indexes make "next week" and "week order" plain
 * integer arithmetic; names ("2026-W14") are made only for output. */
#ifndef TT_WEEK_H
#define TT_WEEK_H

#include <stddef.h>
#include <stdint.h>

#define TT_WEEK_MS INT64_C(604800000)
#define TT_DAY_MS INT64_C(86400000)
/* 1970-01-05T00:00:00Z, the first Monday of the Unix epoch. */
#define TT_WEEK_EPOCH_MS (4 * TT_DAY_MS)

/* Index of the ISO week holding epoch-ms t (floor division, so times before
 * 1970 work too). */
static inline int32_t tt_week_of(int64_t t) {
        int64_t d = t - TT_WEEK_EPOCH_MS;
        int64_t w = d / TT_WEEK_MS;
        if (d % TT_WEEK_MS < 0)
                w--;
        return (int32_t)w;
}

/* The weeks that can hold a valid event (SPEC §2: event times in
 * [2000-01-01, 2100-01-01)): tt_week_of of those two bounds (the last one
 * minus 1 ms), checked by tests/unit_week.c. A week index read from
 * outside the process (partials, changelog, offset metadata) is refused
 * outside them, so week arithmetic (w - 1, w + 1, tt_week_start) never
 * overflows. */
#define TT_MIN_WEEK 1564
#define TT_MAX_WEEK 6782
static inline int tt_week_valid(int32_t w) {
        return w >= TT_MIN_WEEK && w <= TT_MAX_WEEK;
}

/* Monday 00:00:00.000 UTC of week w; end(w) is tt_week_start(w + 1). */
static inline int64_t tt_week_start(int32_t w) {
        return TT_WEEK_EPOCH_MS + (int64_t)w * TT_WEEK_MS;
}

/* Writes "YYYY-Www" (ISO week-year) into out, NUL-terminated. Needs 9 bytes
 * for years 0..9999. Returns the length. */
size_t tt_week_name(int32_t w, char *out, size_t size);

/* Parses "YYYY-Www" into an index; 0 on success, -1 when malformed or the
 * week does not exist in that year (W53 only in long years). */
int tt_week_parse(const char *s, int32_t *w);

#endif
