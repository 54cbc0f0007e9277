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

/* The raw writers below write into room the caller has reserved (their
 * worst case is given with each) and return the end of what they wrote: a
 * rollup row reserves once and then runs through them without a length
 * check or an error test per field. The tt_buf wrappers are for the other
 * encoders, which are not hot. */

/* Longest decimal int64: "-9223372036854775808". */
#define I64_MAX_LEN 20

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static const uint64_t pow10_u64[20] = {1ULL,
                                       10ULL,
                                       100ULL,
                                       1000ULL,
                                       10000ULL,
                                       100000ULL,
                                       1000000ULL,
                                       10000000ULL,
                                       100000000ULL,
                                       1000000000ULL,
                                       10000000000ULL,
                                       100000000000ULL,
                                       1000000000000ULL,
                                       10000000000000ULL,
                                       100000000000000ULL,
                                       1000000000000000ULL,
                                       10000000000000000ULL,
                                       100000000000000000ULL,
                                       1000000000000000000ULL,
                                       10000000000000000000ULL};

/* Four digits of v < 10^4 at p[0..4). */
static void put4(char *p, uint32_t v) {
        memcpy(p, digit_pairs + (v / 100) * 2, 2);
        memcpy(p + 2, digit_pairs + (v % 100) * 2, 2);
}

/* The n decimal digits of u (10^(n-1) <= u < 10^n, or u = 0 and n = 1) at
 * o[0..n), from the end: eight at a time in 32-bit arithmetic while more
 * than eight are left (a timestamp is 13, a share's mantissa 15-17), then
 * two a division. */
static void put_digits(char *o, uint64_t u, int n) {
        char *p = o + n;
        while (u >= 100000000) {
                uint32_t lo = (uint32_t)(u % 100000000);
                u /= 100000000;
                p -= 8;
                put4(p, lo / 10000);
                put4(p + 4, lo % 10000);
        }
        uint32_t v = (uint32_t)u;
        while (v >= 100) {
                p -= 2;
                memcpy(p, digit_pairs + (v % 100) * 2, 2);
                v /= 100;
        }
        if (v >= 10) {
                p -= 2;
                memcpy(p, digit_pairs + v * 2, 2);
        } else {
                *--p = (char)('0' + v);
        }
}

static char *raw_i64(char *o, int64_t v) {
        /* Work on the magnitude as unsigned so INT64_MIN does not overflow.
         * The digit count first (bit length x log10(2), then one compare),
         * so the digits go straight to o: nine integers a rollup row. */
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        if (v < 0)
                *o++ = '-';
        int n = ((64 - __builtin_clzll(u | 1)) * 1233) >> 12;
        n += (u | 1) >= pow10_u64[n]; /* | 1: 0 has one digit too */
        put_digits(o, u, n);
        return o + n;
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

/* Appends a literal of compile-time length. */
#define PUT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)

static char *raw_escape(char *o, unsigned char c) {
        switch (c) {
        case '"':
                return PUT(o, "\\\"");
        case '\\':
                return PUT(o, "\\\\");
        case '\b':
                return PUT(o, "\\b");
        case '\f':
                return PUT(o, "\\f");
        case '\n':
                return PUT(o, "\\n");
        case '\r':
                return PUT(o, "\\r");
        case '\t':
                return PUT(o, "\\t");
        default: {
                static const char hex[] = "0123456789abcdef";
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                memcpy(o, u, sizeof(u));
                return o + sizeof(u);
        }
        }
}

/* Worst case of raw_string: every byte a six-byte escape ("\u0001", or
 * "\ufffd" for a stray byte), and the quotes. SIZE_MAX if that overflows. */
static size_t string_max(size_t len) {
        return len > (SIZE_MAX - 2) / 6 ? SIZE_MAX : len * 6 + 2;
}

/* A byte that needs a look (a control byte, '"', '\\', or one >= 0x80)
 * among the eight of x: a mask whose lowest set bit is in the first such
 * byte (in memory order, little-endian); bits above it may be spurious
 * (borrows), so only that first one is used. */
static uint64_t special8(uint64_t x) {
        const uint64_t ones = 0x0101010101010101ULL;
        const uint64_t high = 0x8080808080808080ULL;
        uint64_t ctl = x - ones * 0x20;            /* byte < 0x20 */
        uint64_t quo = (x ^ (ones * '"')) - ones;  /* byte == '"' */
        uint64_t bsl = (x ^ (ones * '\\')) - ones; /* byte == '\\' */
        return ((ctl | quo | bsl) & ~x & high) | (x & high);
}

static char *raw_string(char *o, const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        *o++ = '"';
        while (p < end) {
                /* Eight bytes at a time while none needs a look: a model
                 * name is two or three words. Each word is stored whole
                 * (the room is reserved for six bytes a byte) and the
                 * cursors move past its plain bytes only. */
                while (end - p >= 8) {
                        uint64_t x;
                        memcpy(&x, p, 8);
                        memcpy(o, &x, 8);
                        uint64_t m = special8(x);
                        if (m) {
                                unsigned n = (unsigned)__builtin_ctzll(m) >> 3;
                                o += n;
                                p += n;
                                break;
                        }
                        o += 8;
                        p += 8;
                }
                /* The tail under eight bytes, and the run up to the byte
                 * the word loop stopped at (none then). */
                while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' &&
                       *p != '\\')
                        *o++ = (char)*p++;
                if (p == end)
                        break;
                if (*p < 0x80) {
                        o = raw_escape(o, *p++);
                        continue;
                }
                size_t n = utf8_seq_len(p, end);
                if (n) {
                        memcpy(o, p, n);
                        o += n;
                        p += n;
                } else {
                        /* One replacement character per offending byte. */
                        o = PUT(o, "\\ufffd");
                        p++;
                }
        }
        *o++ = '"';
        return o;
}

/* Appends what enc writes for arg, reserving its worst case `max` in out.
 * Only when that worst case does not fit under out->max (an exact text
 * could still) does it go through a scratch allocation and an exact
 * append, so the encoders refuse nothing the buffer could take. */
static int put_bounded(tt_buf *out, size_t max,
                       char *(*enc)(char *o, const void *arg),
                       const void *arg) {
        if (max == SIZE_MAX)
                return TT_ERR_LIMIT;
        int err = tt_buf_reserve(out, max);
        if (!err) {
                char *o = (char *)out->data + out->len;
                out->len += (size_t)(enc(o, arg) - o);
                return TT_ERR_OK;
        }
        if (err != TT_ERR_LIMIT || max > ((size_t)1 << 30))
                return err;
        char *tmp = malloc(max);
        if (!tmp)
                return TT_ERR_NOMEM;
        err = tt_buf_append(out, tmp, (size_t)(enc(tmp, arg) - tmp));
        free(tmp);
        return err;
}

typedef struct str_arg {
        const char *s;
        size_t len;
} str_arg;

static char *enc_string(char *o, const void *arg) {
        const str_arg *a = arg;
        return raw_string(o, a->s, a->len);
}

static int put_string(tt_buf *out, const char *s, size_t len) {
        str_arg a = {s, len};
        return put_bounded(out, string_max(len), enc_string, &a);
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

static int fmt_double_fast(char *tmp, double d, bool *point) {
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
        /* floor(log10(a)): a = m / 2^k with 2^52 <= m < 2^53, so it is
         * floor(log10(2) (52 - k)) or one more; the loop below moves x by
         * one when the digits say so. e2 * 1233 / 2^12, floored as below,
         * is floor(log10(2) e2) for |e2| <= 100 (checked against libm);
         * the log10() call it replaces was 15% of this function. */
        int e2 = 52 - k;
        int x = e2 >= 0 ? (e2 * 1233) >> 12 : -((-e2 * 1233 + 4095) >> 12);
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
                put_digits(dig, n, prec);
                int nd = prec;
                while (nd > 1 && dig[nd - 1] == '0')
                        nd--;
                char *o = tmp;
                if (d < 0)
                        *o++ = '-';
                *point = xr < 0 || nd > xr + 1; /* a '.' or an 'e' */
                if (xr < -4) {                  /* d.ddde-05 */
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

/* Longest double text: %.17g of a negative subnormal
 * ("-2.2250738585072009e-308", 24), or an integral one and ".0". */
#define DOUBLE_MAX_LEN 32

static char *raw_double(char *o, double d) {
        if (!isfinite(d))
                return PUT(o, "null");
        bool point;
        int n = fmt_double_fast(o, d, &point);
        if (!n) {
                n = fmt_double_slow(o, DOUBLE_MAX_LEN - 2, d);
                point = memchr(o, '.', (size_t)n) ||
                        memchr(o, 'e', (size_t)n) || memchr(o, 'E', (size_t)n);
        }
        /* An integral value would read back as a JSON integer; keep it a
         * double for typed readers (Python's json gives float 48.0). */
        if (!point) {
                o[n++] = '.';
                o[n++] = '0';
        }
        return o + n;
}

static int put_double(tt_buf *out, double d) {
        int err = tt_buf_reserve(out, DOUBLE_MAX_LEN);
        if (!err)
                out->len = (size_t)((uint8_t *)raw_double(
                                        (char *)out->data + out->len, d) -
                                    out->data);
        return err;
}

int tt_json_double(tt_buf *out, double d) {
        size_t mark = out->len;
        int err = put_double(out, d);
        if (err)
                out->len = mark;
        return err;
}

/* The enum symbols as quoted JSON strings of compile-time length, the
 * same text as tt_dim_str and tt_status_str (unit_json_out checks every
 * value, an unknown one too). */
#define ENUM_MAX_LEN 16
static char *raw_dim(char *o, tt_dim d) {
        switch (d) {
        case TT_DIM_TOTAL:
                return PUT(o, "\"TOTAL\"");
        case TT_DIM_ORIGIN:
                return PUT(o, "\"ORIGIN\"");
        case TT_DIM_MODEL:
                return PUT(o, "\"MODEL\"");
        }
        return PUT(o, "\"UNKNOWN\"");
}

static char *raw_status(char *o, tt_status s) {
        switch (s) {
        case TT_STATUS_PROVISIONAL:
                return PUT(o, "\"PROVISIONAL\"");
        case TT_STATUS_FINAL:
                return PUT(o, "\"FINAL\"");
        case TT_STATUS_REVISED:
                return PUT(o, "\"REVISED\"");
        }
        return PUT(o, "\"UNKNOWN\"");
}

/* A union string: a NULL ptr is null. */
static char *raw_opt_string(char *o, tt_str s) {
        return s.ptr ? raw_string(o, s.ptr, s.len) : PUT(o, "null");
}

/* Worst case of one rollup line: the field names and punctuation (under
 * 256 bytes), eight int64s, two int32s, three doubles, two enums, the week
 * (16 bytes) and the two strings escaped. SIZE_MAX if it overflows. */
static size_t rollup_max(const tt_rollup *r) {
        size_t key = string_max(r->key.ptr ? r->key.len : 0);
        size_t origin = string_max(r->origin.ptr ? r->origin.len : 0);
        size_t fixed = 256 + 10 * I64_MAX_LEN + 3 * DOUBLE_MAX_LEN +
                       2 * ENUM_MAX_LEN + string_max(16);
        if (key > SIZE_MAX - fixed || origin > SIZE_MAX - fixed - key)
                return SIZE_MAX;
        return fixed + key + origin;
}

/* A WeeklyRollup line in three parts: the head and the tail are what the
 * rows of one week and emission share (tt_json_rollup_ctx). */
#define ROLLUP_HEAD_MAX (40 + 6 * 16 + I64_MAX_LEN)
#define ROLLUP_TAIL_MAX (20 + I64_MAX_LEN)
static char *raw_rollup_head(char *o, const tt_rollup *r) {
        o = PUT(o, "{\"week\":");
        o = raw_string(o, r->week, strnlen(r->week, sizeof(r->week)));
        o = PUT(o, ",\"week_start\":");
        o = raw_i64(o, r->week_start_ms);
        return PUT(o, ",\"dimension\":");
}

static char *raw_rollup_tail(char *o, const tt_rollup *r) {
        o = PUT(o, ",\"emitted_at\":");
        o = raw_i64(o, r->emitted_at_ms);
        return PUT(o, "}\n");
}

static char *raw_rollup_mid(char *o, const tt_rollup *r) {
        o = raw_dim(o, r->dimension);
        o = PUT(o, ",\"key\":");
        /* A required string: a NULL ptr (a caller bug) still yields valid
         * JSON. */
        o = raw_string(o, r->key.ptr ? r->key.ptr : "",
                       r->key.ptr ? r->key.len : 0);
        o = PUT(o, ",\"origin\":");
        o = raw_opt_string(o, r->origin);
        o = PUT(o, ",\"tokens\":");
        o = raw_i64(o, r->tokens);
        o = PUT(o, ",\"prompt_tokens\":");
        o = raw_i64(o, r->prompt_tokens);
        o = PUT(o, ",\"completion_tokens\":");
        o = raw_i64(o, r->completion_tokens);
        o = PUT(o, ",\"requests\":");
        o = raw_i64(o, r->requests);
        o = PUT(o, ",\"prev_tokens\":");
        o = r->has_prev ? raw_i64(o, r->prev_tokens) : PUT(o, "null");
        o = PUT(o, ",\"wow_growth_pct\":");
        o = r->has_growth ? raw_double(o, r->wow_growth_pct) : PUT(o, "null");
        o = PUT(o, ",\"share_pct\":");
        o = raw_double(o, r->share_pct);
        o = PUT(o, ",\"rank\":");
        o = raw_i64(o, r->rank);
        o = PUT(o, ",\"status\":");
        o = raw_status(o, r->status);
        o = PUT(o, ",\"revision\":");
        return raw_i64(o, r->revision);
}

/* One WeeklyRollup line into room of rollup_max(r) bytes. */
static char *raw_rollup(char *o, const tt_rollup *r) {
        o = raw_rollup_head(o, r);
        o = raw_rollup_mid(o, r);
        return raw_rollup_tail(o, r);
}

static char *enc_rollup(char *o, const void *arg) {
        return raw_rollup(o, arg);
}

/* The hot encoder of a high-cardinality replay (a closed week of 10^5
 * models is 10^5 rows): one reserve of the worst case, then the fields
 * written without a length check or an error test each. */
int tt_json_rollup(tt_buf *out, const tt_rollup *r) {
        return put_bounded(out, rollup_max(r), enc_rollup, r);
}

typedef struct ctx_arg {
        const tt_rollup *r;
        const tt_json_rollup_ctx *ctx;
} ctx_arg;

static char *enc_rollup_ctx(char *o, const void *arg) {
        const ctx_arg *a = arg;
        memcpy(o, a->ctx->head, a->ctx->headlen);
        o = raw_rollup_mid(o + a->ctx->headlen, a->r);
        memcpy(o, a->ctx->tail, a->ctx->taillen);
        return o + a->ctx->taillen;
}

int tt_json_rollup_in(tt_buf *out, const tt_rollup *r,
                      tt_json_rollup_ctx *ctx) {
        if (!ctx->set || memcmp(ctx->week, r->week, sizeof(ctx->week)) ||
            ctx->week_start_ms != r->week_start_ms ||
            ctx->emitted_at_ms != r->emitted_at_ms) {
                _Static_assert(ROLLUP_HEAD_MAX <= sizeof(ctx->head) &&
                                   ROLLUP_TAIL_MAX <= sizeof(ctx->tail),
                               "rollup context buffers too small");
                memcpy(ctx->week, r->week, sizeof(ctx->week));
                ctx->week_start_ms = r->week_start_ms;
                ctx->emitted_at_ms = r->emitted_at_ms;
                ctx->headlen =
                    (uint8_t)(raw_rollup_head(ctx->head, r) - ctx->head);
                ctx->taillen =
                    (uint8_t)(raw_rollup_tail(ctx->tail, r) - ctx->tail);
                ctx->set = true;
        }
        ctx_arg a = {r, ctx};
        return put_bounded(out, rollup_max(r), enc_rollup_ctx, &a);
}

/* A C string; NULL is written as null. */
static size_t cstr_max(const char *s) {
        return s ? string_max(strlen(s)) : 4;
}

static char *raw_cstr(char *o, const char *s) {
        return s ? raw_string(o, s, strlen(s)) : PUT(o, "null");
}

static size_t str_max(tt_str s) {
        return string_max(s.ptr ? s.len : 0);
}

/* Worst case of one StreakChange line: names and punctuation (under 256
 * bytes), three int64s, one double, the week, the kind and four strings
 * escaped. SIZE_MAX if it overflows. */
static size_t streak_max(const tt_streak_change *s) {
        size_t parts[] = {str_max(s->rule),
                          str_max(s->holder),
                          str_max(s->previous_holder),
                          str_max(s->runner_up),
                          cstr_max(tt_streak_kind_str(s->kind)),
                          256 + 4 * I64_MAX_LEN + DOUBLE_MAX_LEN +
                              string_max(16)};
        size_t n = 0;
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
                if (parts[i] > SIZE_MAX - n)
                        return SIZE_MAX;
                n += parts[i];
        }
        return n;
}

static char *enc_streak(char *o, const void *arg) {
        const tt_streak_change *s = arg;
        /* Required strings: a NULL ptr (a caller bug) still yields valid
         * JSON. */
        o = PUT(o, "{\"rule\":");
        o = raw_string(o, s->rule.ptr ? s->rule.ptr : "",
                       s->rule.ptr ? s->rule.len : 0);
        o = PUT(o, ",\"week\":");
        o = raw_string(o, s->week, strnlen(s->week, sizeof(s->week)));
        o = PUT(o, ",\"kind\":");
        o = raw_cstr(o, tt_streak_kind_str(s->kind));
        o = PUT(o, ",\"holder\":");
        o = raw_string(o, s->holder.ptr ? s->holder.ptr : "",
                       s->holder.ptr ? s->holder.len : 0);
        o = PUT(o, ",\"length_weeks\":");
        o = raw_i64(o, s->length_weeks);
        o = PUT(o, ",\"previous_holder\":");
        o = raw_opt_string(o, s->previous_holder);
        o = PUT(o, ",\"holder_tokens\":");
        o = raw_i64(o, s->holder_tokens);
        o = PUT(o, ",\"runner_up\":");
        o = raw_opt_string(o, s->runner_up);
        o = PUT(o, ",\"runner_up_tokens\":");
        o = s->has_runner_up_tokens ? raw_i64(o, s->runner_up_tokens)
                                    : PUT(o, "null");
        o = PUT(o, ",\"margin_pct\":");
        o = s->has_margin ? raw_double(o, s->margin_pct) : PUT(o, "null");
        o = PUT(o, ",\"emitted_at\":");
        o = raw_i64(o, s->emitted_at_ms);
        return PUT(o, "}\n");
}

int tt_json_streak(tt_buf *out, const tt_streak_change *s) {
        return put_bounded(out, streak_max(s), enc_streak, s);
}

typedef struct dl_head {
        const char *reason, *detail, *source;
        int64_t offset;
} dl_head;

/* A dead letter up to the opening quote of its payload. */
static char *enc_dl_head(char *o, const void *arg) {
        const dl_head *h = arg;
        o = PUT(o, "{\"reason\":");
        o = raw_cstr(o, h->reason);
        o = PUT(o, ",\"detail\":");
        o = raw_cstr(o, h->detail);
        o = PUT(o, ",\"source\":");
        o = raw_cstr(o, h->source);
        o = PUT(o, ",\"offset\":");
        o = raw_i64(o, h->offset);
        return PUT(o, ",\"payload_base64\":\"");
}

int tt_json_dead_letter(tt_buf *out, const char *reason, const char *detail,
                        const char *source, int64_t offset, const void *payload,
                        size_t payload_len) {
        size_t mark = out->len;
        dl_head h = {reason, detail, source, offset};
        size_t max = 0, parts[] = {cstr_max(reason), cstr_max(detail),
                                   cstr_max(source), 128 + I64_MAX_LEN};
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
                max = parts[i] > SIZE_MAX - max ? SIZE_MAX : max + parts[i];
        int err = put_bounded(out, max, enc_dl_head, &h);
        if (!err && payload_len)
                err = tt_b64_encode(out, payload, payload_len);
        if (!err)
                err = LIT(out, "\"}\n");
        if (err)
                out->len = mark;
        return err;
}
