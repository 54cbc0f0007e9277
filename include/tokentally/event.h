/* TokenEvent as the engine sees it (SPEC §2), and the dead-letter reasons.
 *
 * Every string in a tt_event is borrowed: it points into the decoder's input
 * or scratch buffer and is valid only until that buffer is reused. Nothing in
 * an event is ever allocated per event. */
#ifndef TT_EVENT_H
#define TT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed byte string, not NUL-terminated. ptr == NULL means null (for
 * Avro unions); ptr != NULL with len 0 is the empty string. */
typedef struct tt_str {
        const char *ptr;
        size_t len;
} tt_str;

#define TT_STR_NULL ((tt_str){NULL, 0})
#define TT_STR_LIT(s) ((tt_str){(s), sizeof(s) - 1})

/* Dead-letter reasons. The names are part of the contract (SPEC §2/§3);
 * append only. */
#define TT_REASON_MAP(X)                                                       \
        X(NONE, "none")                                                        \
        X(MALFORMED, "malformed")                                              \
        X(MISSING_FIELD, "missing_field")                                      \
        X(NEGATIVE_TOKENS, "negative_tokens")                                  \
        X(TOKENS_TOO_LARGE, "tokens_too_large")                                \
        X(TIME_OUT_OF_RANGE, "time_out_of_range")                              \
        X(BAD_MODEL, "bad_model")                                              \
        X(FUTURE_TIME, "future_time")                                          \
        X(LATE, "late")                                                        \
        X(TOO_LATE, "too_late")                                                \
        X(BAD_ORIGIN, "bad_origin")                                            \
        X(KEY_LIMIT, "key_limit")

typedef enum tt_reason {
#define TT_REASON_ENUM(name, str) TT_REASON_##name,
        TT_REASON_MAP(TT_REASON_ENUM)
#undef TT_REASON_ENUM
            TT_REASON__COUNT
} tt_reason;

/* "malformed", "late", ...; "none" for TT_REASON_NONE. Never NULL. */
const char *tt_reason_str(tt_reason r);

/* Bits of tt_event.present, set by decoders for the fields they saw. */
enum {
        TT_F_REQUEST_ID = 1u << 0,
        TT_F_EVENT_TIME = 1u << 1,
        TT_F_MODEL = 1u << 2,
        TT_F_ORIGIN = 1u << 3,
        TT_F_PROMPT = 1u << 4,
        TT_F_COMPLETION = 1u << 5,
        TT_F_PROVIDER = 1u << 6,
        TT_F_REQUIRED = TT_F_REQUEST_ID | TT_F_EVENT_TIME | TT_F_MODEL |
                        TT_F_PROMPT | TT_F_COMPLETION,
};

typedef struct tt_event {
        tt_str request_id;
        int64_t event_time_ms; /* UTC epoch ms */
        tt_str model;          /* "author/name" */
        tt_str origin;         /* ISO 3166-1 alpha-2, or null */
        int64_t prompt_tokens;
        int64_t completion_tokens;
        tt_str provider;  /* informational, may be null */
        uint32_t present; /* TT_F_* bits */
        /* tt_hash(model) when a decoder computed it (on its own thread,
         * ahead of counting), else 0: computed when counted. The decoders
         * zero the whole event first. Only the shard's table slot depends
         * on it: a wrong one would file the model twice in a shard, and
         * the two cells still merge into one row by slug when the week
         * closes. */
        uint64_t model_hash;
} tt_event;

/* Limits of SPEC §2. */
#define TT_MAX_TOKENS_PER_REQUEST INT64_C(10000000)
#define TT_MIN_EVENT_TIME_MS INT64_C(946684800000)  /* 2000-01-01 */
#define TT_MAX_EVENT_TIME_MS INT64_C(4102444800000) /* 2100-01-01, excl. */
#define TT_MAX_MODEL_LEN 256

/* Field checks that need no engine state: missing fields, negative or too
 * many tokens, time range, model slug, origin code. Returns TT_REASON_NONE
 * or the reason, with a human-readable detail written to detail (always
 * NUL-terminated when size > 0). */
tt_reason tt_event_validate(const tt_event *ev, char *detail, size_t size);

/* The model slug rules of bad_model (SPEC §2): not empty, at most
 * TT_MAX_MODEL_LEN bytes, an author '/', UTF-8. Shared by the event check
 * and the decoders of internal records, which hold model slugs too. false
 * with a detail. */
bool tt_model_valid(tt_str m, char *detail, size_t size);

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool tt_utf8_valid(const char *s, size_t len);

#endif
