/* JSON Lines encoders for the outputs (SPEC §4-§6): one object per call, the
 * Avro field names in schema order, enums as their symbols, unions as the
 * plain value or null, timestamps as epoch ms. Every encoder either appends a
 * whole line or, on failure, leaves the buffer as it found it, so a sink can
 * retry or skip without writing half an object. */
#include "tokentally/json_out.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/b64.h"
#include "tokentally/err.h"

#define LIT(b, s) tt_buf_append((b), (s), sizeof(s) - 1)

static int put_i64(tt_buf *out, int64_t v) {
        static const char pairs[201] = "00010203040506070809"
                                       "10111213141516171819"
                                       "20212223242526272829"
                                       "30313233343536373839"
                                       "40414243444546474849"
                                       "50515253545556575859"
                                       "60616263646566676869"
                                       "70717273747576777879"
                                       "80818283848586878889"
                                       "90919293949596979899";
        char tmp[24];
        char *p = tmp + sizeof(tmp);
        /* Work on the magnitude as unsigned so INT64_MIN does not overflow.
         * Two digits a division: eight integers a rollup row. */
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        while (u >= 100) {
                unsigned d = (unsigned)(u % 100) * 2;
                u /= 100;
                *--p = pairs[d + 1];
                *--p = pairs[d];
        }
        if (u >= 10) {
                *--p = pairs[u * 2 + 1];
                *--p = pairs[u * 2];
        } else {
                *--p = (char)('0' + u);
        }
        if (v < 0)
                *--p = '-';
        return tt_buf_append(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Length of the well-formed UTF-8 sequence starting at p, 0 if none does. */
static size_t utf8_seq_len(const unsigned char *p, const unsigned char *end) {
        unsigned c = *p;
        size_t n = (c & 0xE0) == 0xC0   ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (n == 0 || (size_t)(end - p) < n)
                return 0;
        return tt_utf8_valid((const char *)p, n) ? n : 0;
}

static int put_escape(tt_buf *out, unsigned char c) {
        switch (c) {
        case '"':
                return LIT(out, "\\\"");
        case '\\':
                return LIT(out, "\\\\");
        case '\b':
                return LIT(out, "\\b");
        case '\f':
                return LIT(out, "\\f");
        case '\n':
                return LIT(out, "\\n");
        case '\r':
                return LIT(out, "\\r");
        case '\t':
                return LIT(out, "\\t");
        default: {
                static const char hex[] = "0123456789abcdef";
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                return tt_buf_append(out, u, sizeof(u));
        }
        }
}

static int put_string(tt_buf *out, const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        int err = tt_buf_putc(out, '"');
        while (!err && p < end) {
                /* Copy the longest run that needs no escaping in one go. */
                const unsigned char *run = p;
                while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' &&
                       *p != '\\')
                        p++;
                if (p > run &&
                    (err = tt_buf_append(out, run, (size_t)(p - run))))
                        break;
                if (p == end)
                        break;
                if (*p < 0x80) {
                        err = put_escape(out, *p++);
                        continue;
                }
                size_t n = utf8_seq_len(p, end);
                if (n) {
                        err = tt_buf_append(out, p, n);
                        p += n;
                } else {
                        /* One replacement character per offending byte. */
                        err = LIT(out, "\\ufffd");
                        p++;
                }
        }
        if (!err)
                err = tt_buf_putc(out, '"');
        return err;
}

int tt_json_string(tt_buf *out, const char *s, size_t len) {
        size_t mark = out->len;
        int err = put_string(out, s, len);
        if (err)
                out->len = mark;
        return err;
}

/* The double as %.15g, %.16g or %.17g, the first that reads back to d
 * (%.17g always does): 31.48 prints as 31.48, not 31.480000000000000426.
 * The general way, through snprintf and strtod. */
static int fmt_double_slow(char *tmp, size_t size, double d) {
        int n = 0;
        for (int prec = 15; prec <= 17; prec++) {
                n = snprintf(tmp, size, "%.*g", prec, d);
                if (prec == 17 || strtod(tmp, NULL) == d)
                        break;
        }
        return n;
}

/* The same text, computed exactly in 128-bit integers for the doubles a
 * rollup mostly has (shares and growths: 1e-5 <= |d| < 1e15), where
 * snprintf and strtod were a quarter of a high-cardinality replay. d is
 * m / 2^k with m < 2^53 and k <= 70, and the P-digit decimal N / 10^q
 * (q <= 21) is exact in 128 bits: N = m * 10^q / 2^k rounded half to even,
 * as glibc rounds, and it reads back to d when it lies within half a unit
 * in the last place (on the half: when m is even, as strtod rounds). 0
 * when d is outside that range (the caller takes the slow way). */
typedef unsigned __int128 u128;

/* 10^q for q <= 38 (a loop of q 128-bit multiplies per call was a third
 * of this function's time). */
static const u128 pow10_tab[39] = {
    (u128)1ULL,
    (u128)10ULL,
    (u128)100ULL,
    (u128)1000ULL,
    (u128)10000ULL,
    (u128)100000ULL,
    (u128)1000000ULL,
    (u128)10000000ULL,
    (u128)100000000ULL,
    (u128)1000000000ULL,
    (u128)10000000000ULL,
    (u128)100000000000ULL,
    (u128)1000000000000ULL,
    (u128)10000000000000ULL,
    (u128)100000000000000ULL,
    (u128)1000000000000000ULL,
    (u128)10000000000000000ULL,
    (u128)100000000000000000ULL,
    (u128)1000000000000000000ULL,
    (u128)10000000000000000000ULL,
    (u128)10000000000000000000ULL * 10ULL,
    (u128)10000000000000000000ULL * 100ULL,
    (u128)10000000000000000000ULL * 1000ULL,
    (u128)10000000000000000000ULL * 10000ULL,
    (u128)10000000000000000000ULL * 100000ULL,
    (u128)10000000000000000000ULL * 1000000ULL,
    (u128)10000000000000000000ULL * 10000000ULL,
    (u128)10000000000000000000ULL * 100000000ULL,
    (u128)10000000000000000000ULL * 1000000000ULL,
    (u128)10000000000000000000ULL * 10000000000ULL,
    (u128)10000000000000000000ULL * 100000000000ULL,
    (u128)10000000000000000000ULL * 1000000000000ULL,
    (u128)10000000000000000000ULL * 10000000000000ULL,
    (u128)10000000000000000000ULL * 100000000000000ULL,
    (u128)10000000000000000000ULL * 1000000000000000ULL,
    (u128)10000000000000000000ULL * 10000000000000000ULL,
    (u128)10000000000000000000ULL * 100000000000000000ULL,
    (u128)10000000000000000000ULL * 1000000000000000000ULL,
    (u128)10000000000000000000ULL * 10000000000000000000ULL};

static u128 pow10_u128(int q) {
        return pow10_tab[q];
}

static int fmt_double_fast(char *tmp, double d) {
        static const uint64_t p10[18] = {1,
                                         10,
                                         100,
                                         1000,
                                         10000,
                                         100000,
                                         1000000,
                                         10000000,
                                         100000000,
                                         1000000000,
                                         10000000000ULL,
                                         100000000000ULL,
                                         1000000000000ULL,
                                         10000000000000ULL,
                                         100000000000000ULL,
                                         1000000000000000ULL,
                                         10000000000000000ULL,
                                         100000000000000000ULL};
        double a = fabs(d);
        if (!(a >= 1e-5 && a < 1e15))
                return 0;
        uint64_t bits;
        memcpy(&bits, &a, sizeof(bits));
        int e = (int)(bits >> 52);
        uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1) << 52;
        int k = 1075 - e;
        /* At a power of two the next double down is half as far: the
         * read-back interval is lopsided; leave it to strtod. */
        if (k < 1 || k > 70 || m == UINT64_C(1) << 52)
                return 0;
        int x = (int)floor(log10(a)); /* may be one off; fixed below */
        for (int prec = 15; prec <= 17; prec++) {
                uint64_t n = 0;
                int q = 0;
                for (int tries = 0; tries < 3; tries++) {
                        q = prec - 1 - x;
                        if (q < 0 || q > 21)
                                return 0;
                        u128 num = (u128)m * pow10_u128(q);
                        u128 fl = num >> k;
                        if (fl < p10[prec - 1]) {
                                x--;
                                continue;
                        }
                        if (fl >= p10[prec]) {
                                x++;
                                continue;
                        }
                        n = (uint64_t)fl;
                        u128 rem = num & (((u128)1 << k) - 1);
                        u128 half = (u128)1 << (k - 1);
                        if (rem > half || (rem == half && (n & 1)))
                                n++;
                        break;
                }
                if (!n)
                        return 0;
                int xr = x;
                if (n == p10[prec]) { /* 9.99...5 rounded up to 10 */
                        n = p10[prec - 1];
                        xr++;
                        q--;
                        if (q < 0)
                                return 0;
                }
                if (prec < 17) {
                        /* |n / 10^q - m / 2^k| vs 1 / 2^(k+1), all times
                         * 10^q 2^(k+1): < 2^128 for n < 10^17, k <= 70. */
                        u128 p = pow10_u128(q);
                        u128 lhs = (u128)n << (k + 1);
                        u128 rhs = (u128)(2 * m) * p;
                        u128 dist = lhs > rhs ? lhs - rhs : rhs - lhs;
                        if (dist > p || (dist == p && (m & 1)))
                                continue; /* does not read back */
                }
                /* %.<prec>g of n * 10^(xr - prec + 1), trailing zeros cut */
                char dig[20];
                for (int i = prec - 1; i >= 0; i--) {
                        dig[i] = (char)('0' + n % 10);
                        n /= 10;
                }
                int nd = prec;
                while (nd > 1 && dig[nd - 1] == '0')
                        nd--;
                char *o = tmp;
                if (d < 0)
                        *o++ = '-';
                if (xr < -4) { /* d.ddde-05 */
                        *o++ = dig[0];
                        if (nd > 1) {
                                *o++ = '.';
                                memcpy(o, dig + 1, (size_t)nd - 1);
                                o += nd - 1;
                        }
                        o += sprintf(o, "e-%02d", -xr);
                } else if (xr < 0) { /* 0.000ddd */
                        *o++ = '0';
                        *o++ = '.';
                        for (int i = 0; i < -xr - 1; i++)
                                *o++ = '0';
                        memcpy(o, dig, (size_t)nd);
                        o += nd;
                } else { /* ddd.ddd (xr < 15 <= prec) */
                        int ip = xr + 1;
                        for (int i = 0; i < ip; i++)
                                *o++ = i < nd ? dig[i] : '0';
                        if (nd > ip) {
                                *o++ = '.';
                                memcpy(o, dig + ip, (size_t)(nd - ip));
                                o += nd - ip;
                        }
                }
                return (int)(o - tmp);
        }
        return 0;
}

static int put_double(tt_buf *out, double d) {
        if (!isfinite(d))
                return LIT(out, "null");
        char tmp[40];
        int n = fmt_double_fast(tmp, d);
        if (!n)
                n = fmt_double_slow(tmp, sizeof(tmp), d);
        /* An integral value would read back as a JSON integer; keep it a
         * double for typed readers (Python's json gives float 48.0). */
        if (!memchr(tmp, '.', (size_t)n) && !memchr(tmp, 'e', (size_t)n) &&
            !memchr(tmp, 'E', (size_t)n)) {
                tmp[n++] = '.';
                tmp[n++] = '0';
        }
        return tt_buf_append(out, tmp, (size_t)n);
}

int tt_json_double(tt_buf *out, double d) {
        size_t mark = out->len;
        int err = put_double(out, d);
        if (err)
                out->len = mark;
        return err;
}

/* An object being written. Errors are sticky: after the first failure every
 * call is a no-op, and jw_end() rolls the buffer back to where it started. */
typedef struct jw {
        tt_buf *out;
        size_t mark;
        int err;
        int nfields;
} jw;

static jw jw_begin(tt_buf *out) {
        jw j = {out, out->len, 0, 0};
        j.err = tt_buf_putc(out, '{');
        return j;
}

static void jw_key(jw *j, const char *name) {
        if (j->err)
                return;
        if (j->nfields++ && (j->err = tt_buf_putc(j->out, ',')))
                return;
        /* Field names are schema identifiers: nothing to escape. */
        if (!(j->err = tt_buf_putc(j->out, '"')) &&
            !(j->err = tt_buf_append(j->out, name, strlen(name))))
                j->err = LIT(j->out, "\":");
}

static void jw_null(jw *j, const char *name) {
        jw_key(j, name);
        if (!j->err)
                j->err = LIT(j->out, "null");
}

static void jw_i64(jw *j, const char *name, int64_t v) {
        jw_key(j, name);
        if (!j->err)
                j->err = put_i64(j->out, v);
}

static void jw_opt_i64(jw *j, const char *name, bool has, int64_t v) {
        if (has)
                jw_i64(j, name, v);
        else
                jw_null(j, name);
}

static void jw_opt_double(jw *j, const char *name, bool has, double v) {
        jw_key(j, name);
        if (!j->err)
                j->err = has ? put_double(j->out, v) : LIT(j->out, "null");
}

static void jw_bytes(jw *j, const char *name, const char *s, size_t len) {
        jw_key(j, name);
        if (!j->err)
                j->err = put_string(j->out, s, len);
}

/* A C string; NULL is written as null. */
static void jw_cstr(jw *j, const char *name, const char *s) {
        if (s)
                jw_bytes(j, name, s, strlen(s));
        else
                jw_null(j, name);
}

/* A union string: a NULL ptr is null. */
static void jw_opt_str(jw *j, const char *name, tt_str s) {
        if (s.ptr)
                jw_bytes(j, name, s.ptr, s.len);
        else
                jw_null(j, name);
}

/* A required string: a NULL ptr (a caller bug) still yields valid JSON. */
static void jw_str(jw *j, const char *name, tt_str s) {
        jw_bytes(j, name, s.ptr ? s.ptr : "", s.ptr ? s.len : 0);
}

static void jw_week(jw *j, const char *name, const char week[16]) {
        jw_bytes(j, name, week, strnlen(week, 16));
}

static int jw_end(jw *j) {
        if (!j->err)
                j->err = LIT(j->out, "}\n");
        if (j->err)
                j->out->len = j->mark;
        return j->err;
}

int tt_json_rollup(tt_buf *out, const tt_rollup *r) {
        jw j = jw_begin(out);
        jw_week(&j, "week", r->week);
        jw_i64(&j, "week_start", r->week_start_ms);
        jw_cstr(&j, "dimension", tt_dim_str(r->dimension));
        jw_str(&j, "key", r->key);
        jw_opt_str(&j, "origin", r->origin);
        jw_i64(&j, "tokens", r->tokens);
        jw_i64(&j, "prompt_tokens", r->prompt_tokens);
        jw_i64(&j, "completion_tokens", r->completion_tokens);
        jw_i64(&j, "requests", r->requests);
        jw_opt_i64(&j, "prev_tokens", r->has_prev, r->prev_tokens);
        jw_opt_double(&j, "wow_growth_pct", r->has_growth, r->wow_growth_pct);
        jw_opt_double(&j, "share_pct", true, r->share_pct);
        jw_i64(&j, "rank", r->rank);
        jw_cstr(&j, "status", tt_status_str(r->status));
        jw_i64(&j, "revision", r->revision);
        jw_i64(&j, "emitted_at", r->emitted_at_ms);
        return jw_end(&j);
}

int tt_json_streak(tt_buf *out, const tt_streak_change *s) {
        jw j = jw_begin(out);
        jw_str(&j, "rule", s->rule);
        jw_week(&j, "week", s->week);
        jw_cstr(&j, "kind", tt_streak_kind_str(s->kind));
        jw_str(&j, "holder", s->holder);
        jw_i64(&j, "length_weeks", s->length_weeks);
        jw_opt_str(&j, "previous_holder", s->previous_holder);
        jw_i64(&j, "holder_tokens", s->holder_tokens);
        jw_opt_str(&j, "runner_up", s->runner_up);
        jw_opt_i64(&j, "runner_up_tokens", s->has_runner_up_tokens,
                   s->runner_up_tokens);
        jw_opt_double(&j, "margin_pct", s->has_margin, s->margin_pct);
        jw_i64(&j, "emitted_at", s->emitted_at_ms);
        return jw_end(&j);
}

int tt_json_dead_letter(tt_buf *out, const char *reason, const char *detail,
                        const char *source, int64_t offset, const void *payload,
                        size_t payload_len) {
        jw j = jw_begin(out);
        jw_cstr(&j, "reason", reason);
        jw_cstr(&j, "detail", detail);
        jw_cstr(&j, "source", source);
        jw_i64(&j, "offset", offset);
        jw_key(&j, "payload_base64");
        if (!j.err)
                j.err = tt_buf_putc(out, '"');
        if (!j.err && payload_len)
                j.err = tt_b64_encode(out, payload, payload_len);
        if (!j.err)
                j.err = tt_buf_putc(out, '"');
        return jw_end(&j);
}
