/* At-least-once commit metadata (commit_meta.h): written by this process,
 * but read back from the broker, so parsed as untrusted input: every field
 * is checked for form and range before it is used. */
#include "tokentally/commit_meta.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/week.h"

static size_t hex_put(char *out, const char *s, size_t n) {
        static const char d[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = d[(unsigned char)s[i] >> 4];
                out[2 * i + 1] = d[(unsigned char)s[i] & 15];
        }
        return 2 * n;
}

static int hex_val(char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                      : -1;
}

/* Decodes n hex digits into out (n/2 bytes, at most cap). */
static int hex_get(const char *s, size_t n, char *out, size_t cap,
                   size_t *len) {
        if (n % 2 || n / 2 > cap)
                return -1;
        for (size_t i = 0; i < n; i += 2) {
                int a = hex_val(s[i]), b = hex_val(s[i + 1]);
                if (a < 0 || b < 0)
                        return -1;
                out[i / 2] = (char)(a << 4 | b);
        }
        *len = n / 2;
        return 0;
}

size_t tt_commit_meta_format(const tt_commit_meta *m, char *out, size_t size) {
        char oldest[16], closed[16] = "";
        tt_week_name(m->oldest, oldest, sizeof(oldest));
        if (m->closed != INT32_MIN)
                tt_week_name(m->closed, closed, sizeof(closed));
        /* Unknown end or revision (-1, from an older stage's "oldest="
         * alone) are left out: the parser takes only values >= 0, and
         * leaves them unknown when absent. */
        char end[32] = "", rev[24] = "";
        if (m->end >= 0)
                snprintf(end, sizeof(end), ";end=%" PRId64, m->end);
        if (m->revision >= 0)
                snprintf(rev, sizeof(rev), ";rev=%" PRId32, m->revision);
        int n = snprintf(out, size, TT_COMMIT_META_PREFIX "%s%s;closed=%s%s",
                         oldest, end, closed, rev);
        if (n < 0 || (size_t)n >= size)
                return 0;
        size_t len = (size_t)n;
        size_t cap =
            size < TT_COMMIT_META_MAX + 1 ? size : TT_COMMIT_META_MAX + 1;
        for (size_t i = 0; i < m->nstreaks; i++) {
                const tt_commit_streak *s = &m->streaks[i];
                size_t rl = strlen(s->rule);
                /* ";s=" rule "~" holder "~" up to 11 digits */
                size_t need = 3 + 2 * rl + 1 + 2 * s->holder_len + 1 + 11;
                if (len + need + 1 > cap)
                        continue; /* a shorter one after it may fit */
                memcpy(out + len, ";s=", 3);
                len += 3;
                len += hex_put(out + len, s->rule, rl);
                out[len++] = '~';
                len += hex_put(out + len, s->holder, s->holder_len);
                len += (size_t)snprintf(out + len, cap - len, "~%" PRId32,
                                        s->length);
        }
        out[len] = '\0';
        return len;
}

/* A decimal integer in [lo, hi], the whole of [s, s+n). */
static int num(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *v) {
        bool neg = n > 0 && s[0] == '-';
        /* 18 digits: no overflow before the range check. */
        if (n - neg == 0 || n - neg > 18)
                return -1;
        int64_t x = 0;
        for (size_t i = neg; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                x = x * 10 + (s[i] - '0');
        }
        if (neg)
                x = -x;
        if (x < lo || x > hi)
                return -1;
        *v = x;
        return 0;
}

static int week(const char *s, size_t n, int32_t *w) {
        char name[16];
        if (n == 0 || n >= sizeof(name))
                return -1;
        memcpy(name, s, n);
        name[n] = '\0';
        /* Only the weeks a valid event can be in (2000-2099): a closed
         * week of 9999 would make every week look final. */
        return tt_week_parse(name, w) || !tt_week_valid(*w) ? -1 : 0;
}

static int streak(const char *s, size_t n, tt_commit_streak *out) {
        const char *a = memchr(s, '~', n);
        const char *b = a ? memchr(a + 1, '~', n - (size_t)(a + 1 - s)) : NULL;
        size_t rl, hl;
        int64_t len;
        if (!b ||
            hex_get(s, (size_t)(a - s), out->rule, TT_COMMIT_META_KEY_MAX,
                    &rl) ||
            hex_get(a + 1, (size_t)(b - a - 1), out->holder,
                    TT_COMMIT_META_KEY_MAX, &hl) ||
            num(b + 1, n - (size_t)(b + 1 - s), 1, TT_COMMIT_META_LENGTH_MAX,
                &len) ||
            rl == 0 || memchr(out->rule, '\0', rl))
                return -1;
        out->rule[rl] = '\0';
        out->holder[hl] = '\0';
        out->holder_len = hl;
        out->length = (int32_t)len;
        return 0;
}

int tt_commit_meta_parse(const void *data, size_t len, tt_commit_meta *m) {
        const char *s = data;
        size_t pl = strlen(TT_COMMIT_META_PREFIX);
        memset(m, 0, sizeof(*m));
        m->end = -1;
        m->closed = INT32_MIN;
        m->revision = -1;
        /* No NUL inside: a week name followed by "\0x" parsed as the
         * week alone (tests/unit_offset_meta.c). */
        if (!s || len <= pl || len > TT_COMMIT_META_MAX ||
            memcmp(s, TT_COMMIT_META_PREFIX, pl) || memchr(s, '\0', len))
                return -1;
        const char *p = s + pl, *stop = s + len;
        const char *semi = memchr(p, ';', (size_t)(stop - p));
        const char *f = semi ? semi : stop;
        if (week(p, (size_t)(f - p), &m->oldest))
                return -1;
        for (p = f; p < stop; p = f) {
                p++; /* the ';' */
                semi = memchr(p, ';', (size_t)(stop - p));
                f = semi ? semi : stop;
                const char *eq = memchr(p, '=', (size_t)(f - p));
                if (!eq)
                        return -1;
                size_t kl = (size_t)(eq - p), vl = (size_t)(f - eq - 1);
                const char *v = eq + 1;
                int64_t x;
                if (kl == 3 && !memcmp(p, "end", 3)) {
                        if (num(v, vl, 0, INT64_MAX, &x))
                                return -1;
                        m->end = x;
                } else if (kl == 6 && !memcmp(p, "closed", 6)) {
                        if (vl && week(v, vl, &m->closed))
                                return -1;
                } else if (kl == 3 && !memcmp(p, "rev", 3)) {
                        if (num(v, vl, 0, TT_COMMIT_META_REVISION_MAX, &x))
                                return -1;
                        m->revision = (int32_t)x;
                } else if (kl == 1 && p[0] == 's') {
                        if (m->nstreaks == TT_COMMIT_META_STREAKS ||
                            streak(v, vl, &m->streaks[m->nstreaks]))
                                return -1;
                        m->nstreaks++;
                } else {
                        return -1;
                }
        }
        return 0;
}
