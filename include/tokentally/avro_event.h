/* Avro binary TokenEvent codec.
 *
 * The decoder walks the *writer* schema directly over the bytes and fills a
 * tt_event with pointers into the input: no allocation per record. Fields are
 * matched to TokenEvent by name (Avro schema resolution): unknown writer
 * fields are skipped, int/long promotions and union branches are followed, a
 * TokenEvent field the writer lacks is simply not marked present (so
 * tt_event_validate reports missing_field). With the bundled schema as the
 * writer (the common case) the walk is a fixed sequence. */
#ifndef TT_AVRO_EVENT_H
#define TT_AVRO_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "tokentally/event.h"

typedef struct tt_avro_dec tt_avro_dec;

/* The bundled schemas/token_event.avsc, compiled in (NUL-terminated JSON). */
extern const char tt_token_event_schema_json[];

/* A decoder for records written with writer_schema_json (NULL = the bundled
 * TokenEvent schema). NULL on failure: unparsable schema, not a record, or a
 * field type that cannot resolve to TokenEvent's (reason in errstr). */
tt_avro_dec *tt_avro_dec_new(const char *writer_schema_json, char *errstr,
                             size_t errsize);
void tt_avro_dec_destroy(tt_avro_dec *dec);

/* Decodes one record from buf[0..len). On success returns TT_REASON_NONE,
 * fills ev (strings point into buf) and sets *consumed to the record's
 * length; bytes after it are not looked at, so a caller holding exactly one
 * record (a Kafka message) should treat *consumed < len as malformed.
 * TT_REASON_MALFORMED (truncated, bad varint, bad union index, negative
 * length...) with a detail otherwise; *consumed is then 0.
 * Stateless across calls: one decoder may be shared by threads. */
tt_reason tt_avro_decode_event(const tt_avro_dec *dec, const uint8_t *buf,
                               size_t len, size_t *consumed, tt_event *ev,
                               char *detail, size_t detail_size);

/* Encodes ev with the bundled schema into out[0..cap). Returns the length,
 * or 0 if cap is too small. Null origin/provider when their ptr is NULL.
 * ev->present is ignored (Avro has no absent fields); a NULL request_id or
 * model is written as "". */
size_t tt_avro_encode_event(const tt_event *ev, uint8_t *out, size_t cap);

/* Avro primitives, shared with the output encoders. Each returns bytes
 * written, 0 if cap is too small. */
size_t tt_avro_put_long(uint8_t *out, size_t cap, int64_t v);
size_t tt_avro_put_bytes(uint8_t *out, size_t cap, const void *p, size_t n);
size_t tt_avro_put_double(uint8_t *out, size_t cap, double v);

#endif
