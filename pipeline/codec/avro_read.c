/* Decoders of the output records (the mirror of avro_out.c and json_out.c),
 * for `tokentally tail`: Avro bodies read field by field in the order of
 * schemas/weekly_rollup.avsc and schemas/streak_change.avsc, and the flat
 * JSON objects of --output-format json. */
#include "tokentally/avro_read.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/err.h"

typedef struct dec {
        const uint8_t *p, *end;
        int err;
} dec;

static int64_t get_long(dec *d) {
        uint64_t u = 0;
        for (int shift = 0; shift < 64; shift += 7) {
                if (d->p >= d->end) {
                        d->err = TT_ERR_FORMAT;
                        return 0;
                }
                uint8_t b = *d->p++;
                u |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80))
                        return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        }
        d->err = TT_ERR_FORMAT; /* more than 10 bytes */
        return 0;
}

static int32_t get_int(dec *d) {
        int64_t v = get_long(d);
        if (v < INT32_MIN || v > INT32_MAX)
                d->err = TT_ERR_FORMAT;
        return (int32_t)v;
}

static double get_double(dec *d) {
        if (d->end - d->p < 8) {
                d->err = TT_ERR_FORMAT;
                d->p = d->end;
                return 0;
        }
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--) /* little-endian */
                u = u << 8 | d->p[i];
        d->p += 8;
        double v;
        memcpy(&v, &u, sizeof(v));
        return v;
}

static tt_str get_string(dec *d) {
        int64_t n = get_long(d);
        if (d->err || n < 0 || n > d->end - d->p) {
                d->err = TT_ERR_FORMAT;
                return TT_STR_NULL;
        }
        tt_str s = {(const char *)d->p, (size_t)n};
        d->p += n;
        return s;
}

/* ["null", T]: the branch index, 0 or 1. */
static bool get_branch(dec *d) {
        int64_t b = get_long(d);
        if (b != 0 && b != 1)
                d->err = TT_ERR_FORMAT;
        return b == 1;
}

static int get_enum(dec *d, int nsymbols) {
        int64_t v = get_long(d);
        if (v < 0 || v >= nsymbols) {
                d->err = TT_ERR_FORMAT;
                return 0;
        }
        return (int)v;
}

static void get_week(dec *d, char *week, size_t size) {
        tt_str w = get_string(d);
        if (d->err || w.len >= size) {
                d->err = TT_ERR_FORMAT;
                week[0] = '\0';
                return;
        }
        memcpy(week, w.ptr, w.len);
        week[w.len] = '\0';
}

int tt_avro_decode_rollup(const uint8_t *buf, size_t len, tt_rollup *r) {
        dec d = {buf, buf + len, TT_ERR_OK};
        memset(r, 0, sizeof(*r));
        get_week(&d, r->week, sizeof(r->week));
        r->week_start_ms = get_long(&d);
        r->dimension = (tt_dim)get_enum(&d, 3);
        r->key = get_string(&d);
        r->origin = get_branch(&d) ? get_string(&d) : TT_STR_NULL;
        r->tokens = get_long(&d);
        r->prompt_tokens = get_long(&d);
        r->completion_tokens = get_long(&d);
        r->requests = get_long(&d);
        if ((r->has_prev = get_branch(&d)))
                r->prev_tokens = get_long(&d);
        if ((r->has_growth = get_branch(&d)))
                r->wow_growth_pct = get_double(&d);
        r->share_pct = get_double(&d);
        r->rank = get_int(&d);
        r->status = (tt_status)get_enum(&d, 3);
        r->revision = get_int(&d);
        r->emitted_at_ms = get_long(&d);
        if (!d.err && d.p != d.end)
                d.err = TT_ERR_FORMAT;
        return d.err;
}

int tt_avro_decode_streak(const uint8_t *buf, size_t len, tt_streak_change *s) {
        dec d = {buf, buf + len, TT_ERR_OK};
        memset(s, 0, sizeof(*s));
        s->rule = get_string(&d);
        get_week(&d, s->week, sizeof(s->week));
        s->kind = (tt_streak_kind)get_enum(&d, 2);
        s->holder = get_string(&d);
        s->length_weeks = get_int(&d);
        s->previous_holder = get_branch(&d) ? get_string(&d) : TT_STR_NULL;
        s->holder_tokens = get_long(&d);
        s->runner_up = get_branch(&d) ? get_string(&d) : TT_STR_NULL;
        if ((s->has_runner_up_tokens = get_branch(&d)))
                s->runner_up_tokens = get_long(&d);
        if ((s->has_margin = get_branch(&d)))
                s->margin_pct = get_double(&d);
        s->emitted_at_ms = get_long(&d);
        if (!d.err && d.p != d.end)
                d.err = TT_ERR_FORMAT;
        return d.err;
}

/* --- JSON: flat objects of strings, numbers and nulls. --- */

typedef enum jtype { J_NULL, J_STR, J_NUM } jtype;

typedef struct jval {
        jtype type;
        tt_str s; /* J_STR: the unescaped string; J_NUM: the number text */
} jval;

typedef struct jscan {
        const char *p, *end;
        uint8_t *scratch; /* room for len bytes, reserved up front */
        size_t nscratch;
} jscan;

static void ws(jscan *j) {
        while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
                                 *j->p == '\n' || *j->p == '\r'))
                j->p++;
}

static int hex4(const char *p, unsigned *v) {
        *v = 0;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                unsigned x = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                             : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                    : 16u;
                if (x == 16)
                        return -1;
                *v = *v << 4 | x;
        }
        return 0;
}

/* A string at j->p (after the opening quote). Without escapes it points
 * into the input; with escapes it is unescaped into the scratch (never
 * longer than its escaped form). */
static int jstring(jscan *j, tt_str *out) {
        const char *start = j->p;
        while (j->p < j->end && *j->p != '"' && *j->p != '\\')
                j->p++;
        if (j->p < j->end && *j->p == '"') {
                *out = (tt_str){start, (size_t)(j->p - start)};
                j->p++;
                return 0;
        }
        uint8_t *o = j->scratch + j->nscratch, *o0 = o;
        memcpy(o, start, (size_t)(j->p - start));
        o += j->p - start;
        while (j->p < j->end && *j->p != '"') {
                char c = *j->p++;
                if (c != '\\') {
                        *o++ = (uint8_t)c;
                        continue;
                }
                if (j->p >= j->end)
                        return -1;
                c = *j->p++;
                unsigned u;
                switch (c) {
                case '"':
                case '\\':
                case '/':
                        *o++ = (uint8_t)c;
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
                case 'u':
                        if (j->end - j->p < 4 || hex4(j->p, &u))
                                return -1;
                        j->p += 4;
                        /* \uXXXX is 6 bytes of input, at most 3 of UTF-8;
                         * surrogates (which json_out.c never writes) are
                         * kept as U+FFFD. */
                        if (u >= 0xD800 && u < 0xE000)
                                u = 0xFFFD;
                        if (u < 0x80) {
                                *o++ = (uint8_t)u;
                        } else if (u < 0x800) {
                                *o++ = (uint8_t)(0xC0 | u >> 6);
                                *o++ = (uint8_t)(0x80 | (u & 0x3f));
                        } else {
                                *o++ = (uint8_t)(0xE0 | u >> 12);
                                *o++ = (uint8_t)(0x80 | (u >> 6 & 0x3f));
                                *o++ = (uint8_t)(0x80 | (u & 0x3f));
                        }
                        break;
                default:
                        return -1;
                }
        }
        if (j->p >= j->end)
                return -1;
        j->p++;
        *out = (tt_str){(const char *)o0, (size_t)(o - o0)};
        j->nscratch += (size_t)(o - o0);
        return 0;
}

static int jvalue(jscan *j, jval *v) {
        ws(j);
        if (j->p >= j->end)
                return -1;
        if (*j->p == '"') {
                j->p++;
                v->type = J_STR;
                return jstring(j, &v->s);
        }
        if (j->end - j->p >= 4 && !memcmp(j->p, "null", 4)) {
                j->p += 4;
                v->type = J_NULL;
                return 0;
        }
        const char *start = j->p;
        while (j->p < j->end &&
               ((*j->p >= '0' && *j->p <= '9') || *j->p == '-' ||
                *j->p == '+' || *j->p == '.' || *j->p == 'e' || *j->p == 'E'))
                j->p++;
        if (j->p == start)
                return -1; /* objects, arrays, booleans: not ours */
        v->type = J_NUM;
        v->s = (tt_str){start, (size_t)(j->p - start)};
        return 0;
}

#define MAX_FIELDS 24

typedef struct jfield {
        tt_str name;
        jval v;
} jfield;

static const jval *field(const jfield *f, size_t n, const char *name) {
        size_t len = strlen(name);
        for (size_t i = 0; i < n; i++)
                if (f[i].name.len == len && !memcmp(f[i].name.ptr, name, len))
                        return &f[i].v;
        return NULL;
}

typedef struct getter {
        const jfield *f;
        size_t n;
        int err;
} getter;

static bool num_text(getter *g, const char *name, char *tmp, size_t size) {
        const jval *v = field(g->f, g->n, name);
        if (!v || v->type != J_NUM || v->s.len >= size) {
                g->err = TT_ERR_FORMAT;
                return false;
        }
        memcpy(tmp, v->s.ptr, v->s.len);
        tmp[v->s.len] = '\0';
        return true;
}

static int64_t jlong(getter *g, const char *name) {
        char tmp[32], *end;
        if (!num_text(g, name, tmp, sizeof(tmp)))
                return 0;
        errno = 0;
        long long x = strtoll(tmp, &end, 10);
        if (*end || errno)
                g->err = TT_ERR_FORMAT;
        return x;
}

static double jdouble(getter *g, const char *name) {
        char tmp[64], *end;
        if (!num_text(g, name, tmp, sizeof(tmp)))
                return 0;
        double x = strtod(tmp, &end);
        if (*end)
                g->err = TT_ERR_FORMAT;
        return x;
}

/* Present and not null. */
static bool jhas(getter *g, const char *name) {
        const jval *v = field(g->f, g->n, name);
        return v && v->type != J_NULL;
}

static tt_str jstr(getter *g, const char *name, bool nullable) {
        const jval *v = field(g->f, g->n, name);
        if (v && v->type == J_STR)
                return v->s;
        if (!(nullable && (!v || v->type == J_NULL)))
                g->err = TT_ERR_FORMAT;
        return TT_STR_NULL;
}

static void jweek(getter *g, const char *name, char *week, size_t size) {
        tt_str w = jstr(g, name, false);
        if (w.len >= size) {
                g->err = TT_ERR_FORMAT;
                w.len = 0;
        }
        if (w.len)
                memcpy(week, w.ptr, w.len);
        week[w.len] = '\0';
}

static int jenum(getter *g, const char *name, const char *const *symbols,
                 int n) {
        tt_str s = jstr(g, name, false);
        for (int i = 0; i < n; i++)
                if (s.ptr && s.len == strlen(symbols[i]) &&
                    !memcmp(s.ptr, symbols[i], s.len))
                        return i;
        g->err = TT_ERR_FORMAT;
        return 0;
}

int tt_json_decode_output(const char *buf, size_t len, tt_buf *scratch,
                          tt_out_kind *kind, tt_rollup *r,
                          tt_streak_change *s) {
        *kind = TT_OUT_UNKNOWN;
        tt_buf_reset(scratch);
        int err = tt_buf_reserve(scratch, len + 1);
        if (err)
                return err;
        jscan j = {buf, buf + len, scratch->data, 0};
        jfield f[MAX_FIELDS];
        size_t n = 0;
        ws(&j);
        if (j.p >= j.end || *j.p++ != '{')
                return TT_ERR_FORMAT;
        ws(&j);
        if (j.p < j.end && *j.p == '}') {
                j.p++;
        } else {
                for (;;) {
                        ws(&j);
                        if (n == MAX_FIELDS || j.p >= j.end || *j.p++ != '"' ||
                            jstring(&j, &f[n].name))
                                return TT_ERR_FORMAT;
                        ws(&j);
                        if (j.p >= j.end || *j.p++ != ':' ||
                            jvalue(&j, &f[n].v))
                                return TT_ERR_FORMAT;
                        n++;
                        ws(&j);
                        if (j.p < j.end && *j.p == ',') {
                                j.p++;
                                continue;
                        }
                        if (j.p < j.end && *j.p == '}') {
                                j.p++;
                                break;
                        }
                        return TT_ERR_FORMAT;
                }
        }
        ws(&j);
        if (j.p != j.end)
                return TT_ERR_FORMAT;
        getter g = {f, n, TT_ERR_OK};
        if (field(f, n, "dimension")) {
                static const char *const dims[] = {"TOTAL", "ORIGIN", "MODEL"};
                static const char *const st[] = {"PROVISIONAL", "FINAL",
                                                 "REVISED"};
                memset(r, 0, sizeof(*r));
                jweek(&g, "week", r->week, sizeof(r->week));
                r->week_start_ms = jlong(&g, "week_start");
                r->dimension = (tt_dim)jenum(&g, "dimension", dims, 3);
                r->key = jstr(&g, "key", false);
                r->origin = jstr(&g, "origin", true);
                r->tokens = jlong(&g, "tokens");
                r->prompt_tokens = jlong(&g, "prompt_tokens");
                r->completion_tokens = jlong(&g, "completion_tokens");
                r->requests = jlong(&g, "requests");
                if ((r->has_prev = jhas(&g, "prev_tokens")))
                        r->prev_tokens = jlong(&g, "prev_tokens");
                if ((r->has_growth = jhas(&g, "wow_growth_pct")))
                        r->wow_growth_pct = jdouble(&g, "wow_growth_pct");
                r->share_pct = jdouble(&g, "share_pct");
                r->rank = (int32_t)jlong(&g, "rank");
                r->status = (tt_status)jenum(&g, "status", st, 3);
                r->revision = (int32_t)jlong(&g, "revision");
                r->emitted_at_ms = jlong(&g, "emitted_at");
                if (!g.err)
                        *kind = TT_OUT_ROLLUP;
        } else if (field(f, n, "rule")) {
                static const char *const kinds[] = {"STARTED", "EXTENDED"};
                memset(s, 0, sizeof(*s));
                s->rule = jstr(&g, "rule", false);
                jweek(&g, "week", s->week, sizeof(s->week));
                s->kind = (tt_streak_kind)jenum(&g, "kind", kinds, 2);
                s->holder = jstr(&g, "holder", false);
                s->length_weeks = (int32_t)jlong(&g, "length_weeks");
                s->previous_holder = jstr(&g, "previous_holder", true);
                s->holder_tokens = jlong(&g, "holder_tokens");
                s->runner_up = jstr(&g, "runner_up", true);
                if ((s->has_runner_up_tokens = jhas(&g, "runner_up_tokens")))
                        s->runner_up_tokens = jlong(&g, "runner_up_tokens");
                if ((s->has_margin = jhas(&g, "margin_pct")))
                        s->margin_pct = jdouble(&g, "margin_pct");
                s->emitted_at_ms = jlong(&g, "emitted_at");
                if (!g.err)
                        *kind = TT_OUT_STREAK;
        } else {
                return TT_ERR_FORMAT;
        }
        return g.err;
}
