/* JSON TokenEvent decoder: a schema-specific scanner, not a general JSON
 * library. It recognises the seven TokenEvent keys, skips any other value
 * (nested objects and arrays included), and fills a tt_event whose strings
 * point into the input, or into the decoder's scratch buffer when a string
 * had escapes to undo. No allocation per event once the scratch has grown.
 *
 * event_time is an integer of epoch ms or an RFC 3339 string
 * ("2026-04-01T12:00:00Z", "...:00.123+02:00"). A JSON null counts as absent
 * for required fields and as null for origin/provider. Tokens must be JSON
 * integers. */
#ifndef TT_JSON_EVENT_H
#define TT_JSON_EVENT_H

#include <stddef.h>

#include "tokentally/event.h"

typedef struct tt_json_dec tt_json_dec;

/* One decoder per thread: it owns the scratch the events may point into. */
tt_json_dec *tt_json_dec_new(void);
void tt_json_dec_destroy(tt_json_dec *dec);

/* Decodes one JSON object from buf[0..len) (surrounding white space allowed,
 * nothing else after the object). TT_REASON_NONE on success; otherwise
 * TT_REASON_MALFORMED (syntax, wrong type, bad timestamp, invalid UTF-8 in a
 * string, trailing bytes) with a detail. Strings in ev stay valid until the
 * next call on the same decoder. Missing fields are left unmarked in
 * ev->present; tt_event_validate() reports them. */
tt_reason tt_json_decode_event(tt_json_dec *dec, const char *buf, size_t len,
                               tt_event *ev, char *detail, size_t detail_size);

/* Writes ev as one JSON object (no newline) with the TokenEvent field names,
 * event_time as epoch ms. Strings are escaped. A field whose TT_F_* bit is
 * clear in ev->present is left out (so a generator can write missing_field
 * records); origin/provider are also written when their ptr is set. */
#include "tokentally/buf.h"
int tt_json_encode_event(tt_buf *out, const tt_event *ev);

/* Parses RFC 3339 date-time into epoch ms. 0 on success, -1 otherwise. */
int tt_rfc3339_parse(const char *s, size_t len, int64_t *ms);

#endif
