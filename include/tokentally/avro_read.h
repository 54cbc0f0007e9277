/* Decoders of the output records, the mirror of avro_out.c and json_out.c:
 * WeeklyRollup and StreakChange from Avro bodies written with the bundled
 * schemas (no Confluent header), or from the JSON objects of
 * --output-format json. Strings in the results point into the input (or,
 * for JSON strings with escapes, into the caller's scratch buffer). Used by
 * `tokentally tail`. */
#ifndef TT_AVRO_READ_H
#define TT_AVRO_READ_H

#include <stddef.h>
#include <stdint.h>

#include "tokentally/buf.h"
#include "tokentally/rollup.h"

/* One whole body in buf[0..len): TT_ERR_OK, or TT_ERR_FORMAT when it is
 * truncated, has a bad varint, union branch or enum symbol, or has bytes
 * after the record. */
int tt_avro_decode_rollup(const uint8_t *buf, size_t len, tt_rollup *r);
int tt_avro_decode_streak(const uint8_t *buf, size_t len, tt_streak_change *s);

typedef enum tt_out_kind {
        TT_OUT_UNKNOWN,
        TT_OUT_ROLLUP,
        TT_OUT_STREAK,
} tt_out_kind;

/* One flat JSON object of json_out.c. The kind is told by the field names
 * ("dimension" for a rollup, "rule" for a streak); the record is filled
 * for that kind. TT_ERR_FORMAT for anything else (syntax, a nested value,
 * a missing required field, an unknown enum symbol). scratch is reset and
 * holds unescaped strings. */
int tt_json_decode_output(const char *buf, size_t len, tt_buf *scratch,
                          tt_out_kind *kind, tt_rollup *r, tt_streak_change *s);

#endif
