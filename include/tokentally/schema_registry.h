/* A small client of the Confluent Schema Registry REST API (also served by
 * Karapace and by Apicurio Registry under /apis/ccompat/v7), over libcurl:
 * registers the output schemas under "<topic>-value" with BACKWARD
 * compatibility, and fetches writer schemas by the id in a message's
 * Confluent header (SPEC §2, §4).
 *
 * Errors are returned with a reason in errstr (the HTTP status and the
 * registry's error_code and message when it sent them), never printed.
 * Thread-safe: one mutex serialises the requests and guards the cache of
 * schemas by id, so worker threads may share one handle. */
#ifndef TT_SCHEMA_REGISTRY_H
#define TT_SCHEMA_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_registry tt_registry;

/* A client of the registry at url ("http://host:port", or with a path
 * prefix such as ".../apis/ccompat/v7"; a trailing '/' is ignored). No
 * request is made here. NULL with a reason (empty URL, curl failed to
 * initialise, out of memory). */
tt_registry *tt_registry_new(const char *url, char *errstr, size_t errsize);
/* Frees the handle and every schema tt_registry_schema_by_id returned;
 * NULL is fine. */
void tt_registry_destroy(tt_registry *r);

/* Sets subject's compatibility to BACKWARD (PUT /config/<subject>), then
 * registers schema_json under it (POST /subjects/<subject>/versions) and
 * stores the registry's schema id in *id. Registering a schema the subject
 * already has returns its existing id. TT_ERR_OK; TT_ERR_INVAL for a schema
 * the registry refuses (incompatible: HTTP 409, invalid: 422); TT_ERR_IO
 * when the registry cannot be reached or answers otherwise; TT_ERR_FORMAT
 * for an answer that is not what the API says. */
int tt_registry_register(tt_registry *r, const char *subject,
                         const char *schema_json, int32_t *id, char *errstr,
                         size_t errsize);

/* The schema (JSON text) registered with id (GET /schemas/ids/<id>),
 * fetched once per id and then served from the cache; the string lives as
 * long as the handle. NULL with a reason when the registry does not know
 * the id or cannot be asked (a failure is not cached: the next call asks
 * again). */
const char *tt_registry_schema_by_id(tt_registry *r, int32_t id, char *errstr,
                                     size_t errsize);

/* The TokenEvent decoder (avro_event.h) for records written with the schema
 * registered as id: that writer schema, fetched with
 * tt_registry_schema_by_id, resolved against the bundled TokenEvent schema.
 * Made once per id and kept as long as the handle; a cached id is found
 * without taking the lock, so workers may call this for every message.
 * NULL with a reason when the schema cannot be fetched (asked again next
 * time) or does not resolve to TokenEvent (remembered, with its reason). */
struct tt_avro_dec;
const struct tt_avro_dec *tt_registry_event_decoder(tt_registry *r, int32_t id,
                                                    char *errstr,
                                                    size_t errsize);

/* Parsers of the registry's answers (bytes from another process): the
 * "id" member of a registration answer, in [0, INT32_MAX]; the "schema"
 * member of GET /schemas/ids/N, unescaped and NUL-terminated in schema
 * (reset first; refused when it holds a NUL). TT_ERR_FORMAT otherwise. */
#include "tokentally/buf.h"
int tt_registry_answer_id(const char *p, size_t len, int32_t *id);
int tt_registry_answer_schema(const char *p, size_t len, tt_buf *schema);

#endif
