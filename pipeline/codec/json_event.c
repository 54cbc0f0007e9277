/* JSON TokenEvent decoder and encoder: a scanner that knows the seven
 * TokenEvent keys and skips everything else, fast enough for millions of
 * lines per second per core. Strings point into the input unless they had
 * escapes, which are undone into the decoder's scratch buffer. */
#include "tokentally/json_event.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/mem.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Unescaped strings of one line live here; a cap so that one huge line
 * cannot grow it without bound. */
#define SCRATCH_MAX (1u << 20)
/* Nesting of skipped values; deeper input is refused rather than risking
 * the stack. */
#define MAX_DEPTH 64

struct tt_json_dec {
        tt_buf scratch;
};

typedef struct ctx {
        const char *buf, *p, *end;
        tt_json_dec *dec;
        bool reserved; /* scratch sized for this line: pointers stay put */
        /* The string being read is the model: its UTF-8 is left to
         * tt_event_validate, so that invalid UTF-8 there is bad_model
         * (SPEC §2) as it is from Avro, not malformed. */
        bool model_utf8;
        char *detail;
        size_t detail_size;
} ctx;

tt_json_dec *tt_json_dec_new(void) {
        tt_json_dec *d = tt_calloc(1, sizeof(*d));
        if (d)
                tt_buf_init(&d->scratch, SCRATCH_MAX);
        return d;
}

void tt_json_dec_destroy(tt_json_dec *dec) {
        if (!dec)
                return;
        tt_buf_free(&dec->scratch);
        tt_free(dec);
}

static __attribute__((format(printf, 2, 3), cold)) bool
fail(ctx *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (c->detail_size)
                vsnprintf(c->detail, c->detail_size, fmt, ap);
        va_end(ap);
        return false;
}

static size_t off(const ctx *c) {
        return (size_t)(c->p - c->buf);
}

static inline void skip_ws(ctx *c) {
        while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
                                 *c->p == '\n' || *c->p == '\r'))
                c->p++;
}

/* ---- strings ---------------------------------------------------------- */

static int hexval(char ch) {
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

static bool read_hex4(ctx *c, const char *q, unsigned *out) {
        if (c->end - q < 4)
                return false;
        unsigned v = 0;
        for (int k = 0; k < 4; k++) {
                int h = hexval(q[k]);
                if (h < 0)
                        return false;
                v = v << 4 | (unsigned)h;
        }
        *out = v;
        return true;
}

static size_t put_utf8(uint8_t *o, unsigned cp) {
        if (cp < 0x80) {
                o[0] = (uint8_t)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (uint8_t)(0xC0 | cp >> 6);
                o[1] = (uint8_t)(0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (uint8_t)(0xE0 | cp >> 12);
                o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                o[2] = (uint8_t)(0x80 | (cp & 0x3F));
                return 3;
        }
        o[0] = (uint8_t)(0xF0 | cp >> 18);
        o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (uint8_t)(0x80 | (cp & 0x3F));
        return 4;
}

/* The slow path from the first backslash at q: undo escapes into scratch.
 * start is the first byte of the string's content. */
static bool unescape(ctx *c, const char *start, const char *q, tt_str *out,
                     const char *what) {
        tt_buf *s = &c->dec->scratch;
        if (!c->reserved) {
                /* An unescaped string is never longer than its source, so
                 * room for the whole line means no reallocation (and no
                 * stale pointers) for the rest of it. */
                size_t need = (size_t)(c->end - c->buf);
                tt_buf_reset(s);
                if (need > SCRATCH_MAX)
                        need = SCRATCH_MAX;
                if (tt_buf_reserve(s, need) != TT_ERR_OK)
                        return fail(c, "out of memory unescaping %s", what);
                c->reserved = true;
        }
        size_t pre = (size_t)(q - start);
        if (s->cap - s->len < pre)
                return fail(c, "escaped strings over %u bytes in one line",
                            SCRATCH_MAX);
        uint8_t *o0 = s->data + s->len, *o = o0;
        uint8_t *olim = s->data + s->cap;
        memcpy(o, start, pre);
        o += pre;
        bool high = false;
        for (const char *r = start; r < q; r++)
                high |= (unsigned char)*r >= 0x80;
        for (;;) {
                if (q >= c->end)
                        return fail(c, "unterminated string in %s", what);
                unsigned char ch = (unsigned char)*q;
                /* Each step writes at most 4 bytes from at least 2 (or 1
                 * byte from 1) consumed, so the line-sized room holds
                 * unless the line is over the cap. */
                if (olim - o < 4)
                        return fail(c,
                                    "escaped strings over %u bytes in one line",
                                    SCRATCH_MAX);
                if (ch == '"') {
                        q++;
                        break;
                }
                if (ch < 0x20) {
                        c->p = q;
                        return fail(c, "control character in %s at offset %zu",
                                    what, off(c));
                }
                if (ch != '\\') {
                        high |= ch >= 0x80;
                        *o++ = ch;
                        q++;
                        continue;
                }
                if (q + 1 >= c->end)
                        return fail(c, "unterminated string in %s", what);
                char e = q[1];
                q += 2;
                switch (e) {
                case '"':
                        *o++ = '"';
                        break;
                case '\\':
                        *o++ = '\\';
                        break;
                case '/':
                        *o++ = '/';
                        break;
                case 'b':
                        *o++ = '\b';
                        break;
                case 'f':
                        *o++ = '\f';
                        break;
                case 'n':
                        *o++ = '\n';
                        break;
                case 'r':
                        *o++ = '\r';
                        break;
                case 't':
                        *o++ = '\t';
                        break;
                case 'u': {
                        unsigned cp, lo;
                        if (!read_hex4(c, q, &cp))
                                return fail(c, "invalid \\u escape in %s",
                                            what);
                        q += 4;
                        if (cp >= 0xDC00 && cp <= 0xDFFF)
                                return fail(c,
                                            "unpaired surrogate \\u%04X "
                                            "in %s",
                                            cp, what);
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                                if (c->end - q < 6 || q[0] != '\\' ||
                                    q[1] != 'u' || !read_hex4(c, q + 2, &lo) ||
                                    lo < 0xDC00 || lo > 0xDFFF)
                                        return fail(c,
                                                    "unpaired surrogate "
                                                    "\\u%04X in %s",
                                                    cp, what);
                                q += 6;
                                cp = 0x10000 + ((cp - 0xD800) << 10) +
                                     (lo - 0xDC00);
                        }
                        o += put_utf8(o, cp);
                        break;
                }
                default:
                        c->p = q - 2;
                        return fail(c, "invalid escape in %s at offset %zu",
                                    what, off(c));
                }
        }
        size_t n = (size_t)(o - o0);
        /* Escapes always produce valid UTF-8; raw bytes next to them may
         * not, so the whole result is checked. */
        if (high && !c->model_utf8 && !tt_utf8_valid((const char *)o0, n))
                return fail(c, "invalid UTF-8 in %s", what);
        s->len += n;
        out->ptr = (const char *)o0;
        out->len = n;
        c->p = q;
        return true;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR 1
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
#endif

/* c->p is just past the opening quote. On success out is the content and
 * c->p is past the closing quote. */
static inline bool scan_string(ctx *c, tt_str *out, const char *what) {
        const char *start = c->p, *q = start, *end = c->end;
        uint64_t high = 0;
#ifdef SWAR
        /* Eight bytes at a time: stop at '"', '\\' or a control byte; the
         * lowest flagged byte is exact, which is the one we act on. */
        while (end - q >= 8) {
                uint64_t v;
                memcpy(&v, q, 8);
                uint64_t quote = v ^ (ONES * '"');
                uint64_t bslash = v ^ (ONES * '\\');
                uint64_t m = ((quote - ONES) & ~quote) |
                             ((bslash - ONES) & ~bslash) |
                             ((v - ONES * 0x20) & ~v);
                m &= HIGHS;
                if (m) {
                        q += __builtin_ctzll(m) >> 3;
                        high |= v; /* may include bytes past q: harmless,
                                      only triggers a full check */
                        goto found;
                }
                high |= v;
                q += 8;
        }
#endif
        while (q < end && *q != '"' && *q != '\\' &&
               (unsigned char)*q >= 0x20) {
                high |= (unsigned char)*q;
                q++;
        }
#ifdef SWAR
found:
#endif
        if (UNLIKELY(q >= end))
                return fail(c, "unterminated string in %s", what);
        if (LIKELY(*q == '"')) {
                size_t n = (size_t)(q - start);
#ifdef SWAR
                bool nonascii = (high & HIGHS) != 0;
#else
                bool nonascii = (high & 0x80) != 0;
#endif
                if (nonascii && !c->model_utf8 && !tt_utf8_valid(start, n))
                        return fail(c, "invalid UTF-8 in %s", what);
                out->ptr = start;
                out->len = n;
                c->p = q + 1;
                return true;
        }
        if (*q == '\\')
                return unescape(c, start, q, out, what);
        c->p = q;
        return fail(c, "control character in %s at offset %zu", what, off(c));
}

/* ---- numbers and other values ---------------------------------------- */

/* A JSON number per RFC 8259. Sets *is_int when it has no fraction or
 * exponent. Leaves c->p after it. */
static bool scan_number(ctx *c, bool *is_int) {
        const char *q = c->p, *end = c->end;
        if (q < end && *q == '-')
                q++;
        if (q >= end || *q < '0' || *q > '9')
                return false;
        if (*q == '0')
                q++;
        else
                while (q < end && *q >= '0' && *q <= '9')
                        q++;
        *is_int = true;
        if (q < end && *q == '.') {
                *is_int = false;
                q++;
                if (q >= end || *q < '0' || *q > '9')
                        return false;
                while (q < end && *q >= '0' && *q <= '9')
                        q++;
        }
        if (q < end && (*q == 'e' || *q == 'E')) {
                *is_int = false;
                q++;
                if (q < end && (*q == '+' || *q == '-'))
                        q++;
                if (q >= end || *q < '0' || *q > '9')
                        return false;
                while (q < end && *q >= '0' && *q <= '9')
                        q++;
        }
        c->p = q;
        return true;
}

static bool literal(ctx *c, const char *lit, size_t n) {
        if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
                return false;
        c->p += n;
        return true;
}

static bool skip_value(ctx *c, int depth);

static bool skip_container(ctx *c, int depth, char close) {
        if (depth >= MAX_DEPTH)
                return fail(c, "nesting deeper than %d at offset %zu",
                            MAX_DEPTH, off(c));
        c->p++; /* '{' or '[' */
        skip_ws(c);
        if (c->p < c->end && *c->p == close) {
                c->p++;
                return true;
        }
        for (;;) {
                if (close == '}') {
                        tt_str key;
                        if (c->p >= c->end || *c->p != '"')
                                return fail(c,
                                            "expected string key at offset "
                                            "%zu",
                                            off(c));
                        c->p++;
                        if (!scan_string(c, &key, "key"))
                                return false;
                        skip_ws(c);
                        if (c->p >= c->end || *c->p != ':')
                                return fail(c, "expected ':' at offset %zu",
                                            off(c));
                        c->p++;
                        skip_ws(c);
                }
                if (!skip_value(c, depth + 1))
                        return false;
                skip_ws(c);
                if (c->p < c->end && *c->p == ',') {
                        c->p++;
                        skip_ws(c);
                        continue;
                }
                if (c->p < c->end && *c->p == close) {
                        c->p++;
                        return true;
                }
                return fail(c, "expected ',' or '%c' at offset %zu", close,
                            off(c));
        }
}

static bool skip_value(ctx *c, int depth) {
        if (c->p >= c->end)
                return fail(c, "unexpected end of input");
        bool is_int;
        tt_str s;
        switch (*c->p) {
        case '"':
                c->p++;
                return scan_string(c, &s, "string");
        case '{':
                return skip_container(c, depth, '}');
        case '[':
                return skip_container(c, depth, ']');
        case 't':
                if (literal(c, "true", 4))
                        return true;
                break;
        case 'f':
                if (literal(c, "false", 5))
                        return true;
                break;
        case 'n':
                if (literal(c, "null", 4))
                        return true;
                break;
        default:
                if (scan_number(c, &is_int))
                        return true;
                break;
        }
        return fail(c, "invalid value at offset %zu", off(c));
}

/* An integer value for field name. *null when the value is JSON null. */
static bool get_int(ctx *c, const char *name, int64_t *v, bool *null) {
        *null = false;
        const char *q = c->p, *end = c->end;
        bool neg = false;
        if (q < end && *q == '-') {
                neg = true;
                q++;
        }
        if (LIKELY(q < end && *q >= '1' && *q <= '9')) {
                /* Up to 18 digits cannot overflow; only longer ones need
                 * the careful path. */
                uint64_t u = 0;
                const char *d0 = q;
                while (q < end && *q >= '0' && *q <= '9' && q - d0 < 18)
                        u = u * 10 + (uint64_t)(*q++ - '0');
                while (q < end && *q >= '0' && *q <= '9') {
                        uint64_t dgt = (uint64_t)(*q - '0');
                        if (u > (UINT64_MAX - dgt) / 10)
                                return fail(c,
                                            "integer out of range in "
                                            "field %s",
                                            name);
                        u = u * 10 + dgt;
                        q++;
                }
                if (q < end && (*q == '.' || *q == 'e' || *q == 'E'))
                        return fail(c, "field %s is not an integer", name);
                if (neg ? u > (uint64_t)INT64_MAX + 1 : u > INT64_MAX)
                        return fail(c, "integer out of range in field %s",
                                    name);
                *v = neg ? (int64_t)(0 - u) : (int64_t)u;
                c->p = q;
                return true;
        }
        if (q < end && *q == '0') {
                q++;
                if (q < end && (*q == '.' || *q == 'e' || *q == 'E'))
                        return fail(c, "field %s is not an integer", name);
                if (q < end && *q >= '0' && *q <= '9')
                        return fail(c, "invalid number in field %s", name);
                *v = 0;
                c->p = q;
                return true;
        }
        if (!neg && literal(c, "null", 4)) {
                *null = true;
                return true;
        }
        if (neg)
                return fail(c, "invalid number in field %s", name);
        return fail(c, "field %s is not an integer", name);
}

/* A string value (or null) for field name. */
static bool get_str(ctx *c, const char *name, tt_str *s, bool *null) {
        *null = false;
        if (LIKELY(c->p < c->end && *c->p == '"')) {
                c->p++;
                return scan_string(c, s, name);
        }
        if (literal(c, "null", 4)) {
                *null = true;
                *s = TT_STR_NULL;
                return true;
        }
        return fail(c, "field %s is not a string", name);
}

/* ---- the object ------------------------------------------------------- */

enum key {
        K_UNKNOWN,
        K_REQUEST_ID,
        K_EVENT_TIME,
        K_MODEL,
        K_ORIGIN,
        K_PROMPT,
        K_COMPLETION,
        K_PROVIDER,
};

static inline enum key key_of(const char *k, size_t n) {
        switch (n) {
        case 5:
                return memcmp(k, "model", 5) == 0 ? K_MODEL : K_UNKNOWN;
        case 6:
                return memcmp(k, "origin", 6) == 0 ? K_ORIGIN : K_UNKNOWN;
        case 8:
                return memcmp(k, "provider", 8) == 0 ? K_PROVIDER : K_UNKNOWN;
        case 10:
                if (memcmp(k, "request_id", 10) == 0)
                        return K_REQUEST_ID;
                return memcmp(k, "event_time", 10) == 0 ? K_EVENT_TIME
                                                        : K_UNKNOWN;
        case 13:
                return memcmp(k, "prompt_tokens", 13) == 0 ? K_PROMPT
                                                           : K_UNKNOWN;
        case 17:
                return memcmp(k, "completion_tokens", 17) == 0 ? K_COMPLETION
                                                               : K_UNKNOWN;
        }
        return K_UNKNOWN;
}

static inline void mark(tt_event *ev, uint32_t bit, bool null) {
        /* Last key wins, so a later null undoes an earlier value. */
        if (null)
                ev->present &= ~bit;
        else
                ev->present |= bit;
}

static bool member(ctx *c, tt_event *ev) {
        tt_str key;
        bool null;
        if (UNLIKELY(c->p >= c->end || *c->p != '"'))
                return fail(c, "expected string key at offset %zu", off(c));
        c->p++;
        if (!scan_string(c, &key, "key"))
                return false;
        skip_ws(c);
        if (UNLIKELY(c->p >= c->end || *c->p != ':'))
                return fail(c, "expected ':' at offset %zu", off(c));
        c->p++;
        skip_ws(c);
        if (UNLIKELY(c->p >= c->end))
                return fail(c, "unexpected end of input");
        switch (key_of(key.ptr, key.len)) {
        case K_REQUEST_ID:
                if (!get_str(c, "request_id", &ev->request_id, &null))
                        return false;
                mark(ev, TT_F_REQUEST_ID, null);
                return true;
        case K_MODEL: {
                c->model_utf8 = true;
                bool got = get_str(c, "model", &ev->model, &null);
                c->model_utf8 = false;
                if (!got)
                        return false;
                mark(ev, TT_F_MODEL, null);
                return true;
        }
        case K_ORIGIN:
                /* null is a value here: "resolve from the author". */
                if (!get_str(c, "origin", &ev->origin, &null))
                        return false;
                ev->present |= TT_F_ORIGIN;
                return true;
        case K_PROVIDER:
                if (!get_str(c, "provider", &ev->provider, &null))
                        return false;
                ev->present |= TT_F_PROVIDER;
                return true;
        case K_PROMPT:
                if (!get_int(c, "prompt_tokens", &ev->prompt_tokens, &null))
                        return false;
                mark(ev, TT_F_PROMPT, null);
                return true;
        case K_COMPLETION:
                if (!get_int(c, "completion_tokens", &ev->completion_tokens,
                             &null))
                        return false;
                mark(ev, TT_F_COMPLETION, null);
                return true;
        case K_EVENT_TIME:
                if (c->p < c->end && *c->p == '"') {
                        tt_str s;
                        c->p++;
                        if (!scan_string(c, &s, "event_time"))
                                return false;
                        if (tt_rfc3339_parse(s.ptr, s.len,
                                             &ev->event_time_ms) != 0)
                                return fail(c, "event_time is not an RFC "
                                               "3339 date-time");
                        ev->present |= TT_F_EVENT_TIME;
                        return true;
                }
                if (!get_int(c, "event_time", &ev->event_time_ms, &null))
                        return false;
                mark(ev, TT_F_EVENT_TIME, null);
                return true;
        case K_UNKNOWN:
                break;
        }
        return skip_value(c, 1);
}

tt_reason tt_json_decode_event(tt_json_dec *dec, const char *buf, size_t len,
                               tt_event *ev, char *detail, size_t detail_size) {
        ctx c = {buf, buf, buf + len, dec, false, false, detail, detail_size};
        *ev = (tt_event){0};
        tt_buf_reset(&dec->scratch);
        skip_ws(&c);
        if (c.p >= c.end || *c.p != '{') {
                if (c.p >= c.end)
                        fail(&c, "empty input, expected a JSON object");
                else
                        fail(&c, "expected '{' at offset %zu", off(&c));
                goto bad;
        }
        c.p++;
        skip_ws(&c);
        if (c.p < c.end && *c.p == '}') {
                c.p++;
        } else {
                for (;;) {
                        if (!member(&c, ev))
                                goto bad;
                        skip_ws(&c);
                        if (LIKELY(c.p < c.end && *c.p == ',')) {
                                c.p++;
                                skip_ws(&c);
                                continue;
                        }
                        if (LIKELY(c.p < c.end && *c.p == '}')) {
                                c.p++;
                                break;
                        }
                        if (c.p >= c.end)
                                fail(&c, "unexpected end of input");
                        else
                                fail(&c, "expected ',' or '}' at offset %zu",
                                     off(&c));
                        goto bad;
                }
        }
        skip_ws(&c);
        if (c.p != c.end) {
                fail(&c, "trailing bytes after the object at offset %zu",
                     off(&c));
                goto bad;
        }
        /* Null strings of absent required fields stay {NULL, 0}; the bits
         * decide. */
        if (detail_size)
                detail[0] = '\0';
        return TT_REASON_NONE;
bad:
        ev->present = 0;
        return TT_REASON_MALFORMED;
}

/* ---- RFC 3339 --------------------------------------------------------- */

static bool digits(const char *s, int n, int *v) {
        int x = 0;
        for (int k = 0; k < n; k++) {
                if (s[k] < '0' || s[k] > '9')
                        return false;
                x = x * 10 + (s[k] - '0');
        }
        *v = x;
        return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): no timegm, no time zone or locale state. */
static int64_t days_from_civil(int64_t y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
        static const int dm[] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
        if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
                return 29;
        return dm[m - 1];
}

int tt_rfc3339_parse(const char *s, size_t len, int64_t *ms) {
        int y, mo, d, h, mi, sec, frac = 0;
        /* YYYY-MM-DDTHH:MM:SS is 19 bytes, then at least "Z". */
        if (len < 20 || !digits(s, 4, &y) || s[4] != '-' ||
            !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
            (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
            s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
            !digits(s + 17, 2, &sec))
                return -1;
        if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
            mi > 59 || sec > 60)
                return -1;
        size_t k = 19;
        if (s[k] == '.') {
                k++;
                size_t f0 = k;
                while (k < len && s[k] >= '0' && s[k] <= '9') {
                        /* Milliseconds: further digits are truncated. */
                        if (k - f0 < 3)
                                frac = frac * 10 + (s[k] - '0');
                        k++;
                }
                if (k == f0)
                        return -1;
                for (size_t n = k - f0; n < 3; n++)
                        frac *= 10;
        }
        if (k >= len)
                return -1;
        int offset_min = 0;
        if ((s[k] == 'Z' || s[k] == 'z') && k + 1 == len) {
                offset_min = 0;
        } else if ((s[k] == '+' || s[k] == '-') && k + 6 == len) {
                int oh, om;
                if (!digits(s + k + 1, 2, &oh) || s[k + 3] != ':' ||
                    !digits(s + k + 4, 2, &om) || oh > 23 || om > 59)
                        return -1;
                offset_min = oh * 60 + om;
                if (s[k] == '-')
                        offset_min = -offset_min;
        } else {
                return -1;
        }
        int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
                       sec - (int64_t)offset_min * 60;
        *ms = secs * 1000 + frac;
        return 0;
}

/* ---- encoder ---------------------------------------------------------- */

static int put_json_str(tt_buf *out, tt_str s) {
        static const char hex[] = "0123456789abcdef";
        if (!s.ptr)
                return tt_buf_append(out, "null", 4);
        int err = tt_buf_putc(out, '"');
        size_t run = 0;
        for (size_t k = 0; k < s.len && !err; k++) {
                unsigned char ch = (unsigned char)s.ptr[k];
                if (ch >= 0x20 && ch != '"' && ch != '\\')
                        continue;
                err = tt_buf_append(out, s.ptr + run, k - run);
                run = k + 1;
                if (err)
                        break;
                char esc[6] = {'\\', 0};
                size_t n = 2;
                switch (ch) {
                case '"':
                        esc[1] = '"';
                        break;
                case '\\':
                        esc[1] = '\\';
                        break;
                case '\n':
                        esc[1] = 'n';
                        break;
                case '\r':
                        esc[1] = 'r';
                        break;
                case '\t':
                        esc[1] = 't';
                        break;
                case '\b':
                        esc[1] = 'b';
                        break;
                case '\f':
                        esc[1] = 'f';
                        break;
                default:
                        memcpy(esc + 1, "u00", 3);
                        esc[4] = hex[ch >> 4];
                        esc[5] = hex[ch & 15];
                        n = 6;
                        break;
                }
                err = tt_buf_append(out, esc, n);
        }
        if (!err)
                err = tt_buf_append(out, s.ptr + run, s.len - run);
        if (!err)
                err = tt_buf_putc(out, '"');
        return err;
}

int tt_json_encode_event(tt_buf *out, const tt_event *ev) {
        int err = tt_buf_putc(out, '{');
        const char *sep = "";
#define KEY(name)                                                              \
        do {                                                                   \
                if (!err)                                                      \
                        err = tt_buf_printf(out, "%s\"" name "\":", sep);      \
                sep = ",";                                                     \
        } while (0)
        if (ev->present & TT_F_REQUEST_ID) {
                KEY("request_id");
                if (!err)
                        err = put_json_str(out, ev->request_id);
        }
        if (ev->present & TT_F_EVENT_TIME) {
                KEY("event_time");
                if (!err)
                        err = tt_buf_printf(out, "%" PRId64, ev->event_time_ms);
        }
        if (ev->present & TT_F_MODEL) {
                KEY("model");
                if (!err)
                        err = put_json_str(out, ev->model);
        }
        if (ev->present & TT_F_ORIGIN || ev->origin.ptr) {
                KEY("origin");
                if (!err)
                        err = put_json_str(out, ev->origin);
        }
        if (ev->present & TT_F_PROMPT) {
                KEY("prompt_tokens");
                if (!err)
                        err = tt_buf_printf(out, "%" PRId64, ev->prompt_tokens);
        }
        if (ev->present & TT_F_COMPLETION) {
                KEY("completion_tokens");
                if (!err)
                        err = tt_buf_printf(out, "%" PRId64,
                                            ev->completion_tokens);
        }
        if (ev->present & TT_F_PROVIDER || ev->provider.ptr) {
                KEY("provider");
                if (!err)
                        err = put_json_str(out, ev->provider);
        }
#undef KEY
        if (!err)
                err = tt_buf_putc(out, '}');
        return err;
}
