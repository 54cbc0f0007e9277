/* Stateless validation of decoded events (SPEC §2). Engine-dependent reasons
 * (future_time, late, too_late, key_limit) are decided by the engine. */
#include "tokentally/event.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const reason_names[] = {
#define TT_REASON_NAME(name, str) str,
    TT_REASON_MAP(TT_REASON_NAME)
#undef TT_REASON_NAME
};

const char *tt_reason_str(tt_reason r) {
        if ((unsigned)r >= TT_REASON__COUNT)
                return "unknown";
        return reason_names[r];
}

bool tt_utf8_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        while (p < end) {
                /* Slugs are nearly always ASCII: 8 bytes per step while no
                 * byte has its top bit set. */
                while (end - p >= 8) {
                        uint64_t w;
                        memcpy(&w, p, 8);
                        if (w & UINT64_C(0x8080808080808080))
                                break;
                        p += 8;
                }
                if (p >= end)
                        break;
                unsigned c = *p;
                if (c < 0x80) {
                        p++;
                        continue;
                }
                size_t n;
                unsigned cp, min;
                if ((c & 0xE0) == 0xC0) {
                        n = 1, cp = c & 0x1F, min = 0x80;
                } else if ((c & 0xF0) == 0xE0) {
                        n = 2, cp = c & 0x0F, min = 0x800;
                } else if ((c & 0xF8) == 0xF0) {
                        n = 3, cp = c & 0x07, min = 0x10000;
                } else {
                        return false;
                }
                if ((size_t)(end - p) <= n)
                        return false;
                for (size_t i = 1; i <= n; i++) {
                        if ((p[i] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3F);
                }
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                p += n + 1;
        }
        return true;
}

static const struct {
        uint32_t bit;
        const char *name;
} required[] = {
    {TT_F_REQUEST_ID, "request_id"},
    {TT_F_EVENT_TIME, "event_time"},
    {TT_F_MODEL, "model"},
    {TT_F_PROMPT, "prompt_tokens"},
    {TT_F_COMPLETION, "completion_tokens"},
};

bool tt_model_valid(tt_str m, char *detail, size_t size) {
        if (!m.ptr || m.len == 0) {
                snprintf(detail, size, "model is empty");
                return false;
        }
        if (m.len > TT_MAX_MODEL_LEN) {
                snprintf(detail, size, "model is %zu bytes, over %d", m.len,
                         TT_MAX_MODEL_LEN);
                return false;
        }
        if (!memchr(m.ptr, '/', m.len)) {
                snprintf(detail, size, "model has no '/' author separator");
                return false;
        }
        if (!tt_utf8_valid(m.ptr, m.len)) {
                snprintf(detail, size, "model is not valid UTF-8");
                return false;
        }
        return true;
}

tt_reason tt_event_validate(const tt_event *ev, char *detail, size_t size) {
        for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
                if (!(ev->present & required[i].bit)) {
                        snprintf(detail, size, "field %s is missing",
                                 required[i].name);
                        return TT_REASON_MISSING_FIELD;
                }
        }
        if (ev->prompt_tokens < 0 || ev->completion_tokens < 0) {
                snprintf(detail, size,
                         "prompt_tokens %" PRId64
                         ", completion_tokens %" PRId64,
                         ev->prompt_tokens, ev->completion_tokens);
                return TT_REASON_NEGATIVE_TOKENS;
        }
        /* Each term is checked first so that the sum cannot overflow. */
        if (ev->prompt_tokens > TT_MAX_TOKENS_PER_REQUEST ||
            ev->completion_tokens > TT_MAX_TOKENS_PER_REQUEST ||
            ev->prompt_tokens + ev->completion_tokens >
                TT_MAX_TOKENS_PER_REQUEST) {
                snprintf(detail, size,
                         "%" PRId64 " + %" PRId64 " tokens exceeds %" PRId64,
                         ev->prompt_tokens, ev->completion_tokens,
                         TT_MAX_TOKENS_PER_REQUEST);
                return TT_REASON_TOKENS_TOO_LARGE;
        }
        if (ev->event_time_ms < TT_MIN_EVENT_TIME_MS ||
            ev->event_time_ms >= TT_MAX_EVENT_TIME_MS) {
                snprintf(detail, size,
                         "event_time %" PRId64
                         " outside [2000-01-01, 2100-01-01)",
                         ev->event_time_ms);
                return TT_REASON_TIME_OUT_OF_RANGE;
        }
        if (!tt_model_valid(ev->model, detail, size))
                return TT_REASON_BAD_MODEL;
        if (ev->origin.ptr) {
                const char *o = ev->origin.ptr;
                if (ev->origin.len != 2 || o[0] < 'A' || o[0] > 'Z' ||
                    o[1] < 'A' || o[1] > 'Z') {
                        snprintf(detail, size,
                                 "origin is not an ISO 3166-1 alpha-2 code "
                                 "(two upper-case letters)");
                        return TT_REASON_BAD_ORIGIN;
                }
        }
        if (size)
                detail[0] = '\0';
        return TT_REASON_NONE;
}
