/* JSON Lines encoders for the outputs: WeeklyRollup, StreakChange and dead
 * letters, with the Avro field names in schema order, enums as strings,
 * unions as plain values or null, doubles in the shortest form that reads
 * back to the same double. Each call appends one object and a '\n'; on
 * failure (TT_ERR_LIMIT/NOMEM from out) it appends nothing, so out->len is
 * as before the call. Strings are borrowed for the call only. */
#ifndef TT_JSON_OUT_H
#define TT_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/buf.h"
#include "tokentally/rollup.h"

int tt_json_rollup(tt_buf *out, const tt_rollup *r);
/* The text a week's rows share (the week, week_start and emitted_at
 * fields: two 13-digit integers and a string a row), kept between calls of
 * tt_json_rollup_in for rows that mostly share it (a closed week's rows).
 * Zero it before the first call. */
typedef struct tt_json_rollup_ctx {
        bool set;
        char week[16];
        int64_t week_start_ms, emitted_at_ms;
        uint8_t headlen, taillen;
        char head[160]; /* {"week":...,"week_start":...,"dimension": */
        char tail[48];  /* ,"emitted_at":...}\n */
} tt_json_rollup_ctx;
/* tt_json_rollup, the same bytes, with that text from ctx when r has the
 * same week, week_start and emitted_at as the row before. */
int tt_json_rollup_in(tt_buf *out, const tt_rollup *r, tt_json_rollup_ctx *ctx);
int tt_json_streak(tt_buf *out, const tt_streak_change *s);
/* {"reason","detail","source","offset","payload_base64"} (SPEC §6). A NULL
 * reason, detail or source is written as null; payload may be NULL when
 * payload_len is 0. */
int tt_json_dead_letter(tt_buf *out, const char *reason, const char *detail,
                        const char *source, int64_t offset, const void *payload,
                        size_t payload_len);
/* Appends s[0..len) as a JSON string literal with quotes; bytes that are not
 * valid UTF-8 are written as \ufffd. */
int tt_json_string(tt_buf *out, const char *s, size_t len);
/* Appends the shortest decimal that round-trips d (finite only; NaN and
 * infinities are written as null). */
int tt_json_double(tt_buf *out, double d);

#endif
