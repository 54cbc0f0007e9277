/* The author -> origin map. The file is small and read once, so a minimal
 * parser for one flat object of strings is enough; anything else in it is a
 * configuration error reported with its byte position. */
#include "tokentally/origin_map.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/mem.h"

typedef struct entry {
        char *author;
        size_t len;
        tt_origin origin;
} entry;

struct tt_origin_map {
        entry *slots; /* open addressing, power-of-two size */
        size_t mask;
        size_t n;
};

static uint64_t hash(const char *s, size_t n) {
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
        return h;
}

static entry *find(const tt_origin_map *m, const char *s, size_t n) {
        for (size_t i = hash(s, n) & m->mask;; i = (i + 1) & m->mask) {
                entry *e = &m->slots[i];
                if (!e->author || (e->len == n && !memcmp(e->author, s, n)))
                        return e;
        }
}

static int insert(tt_origin_map *m, const char *s, size_t n, tt_origin o) {
        if ((m->n + 1) * 2 > m->mask + 1) {
                size_t ncap = (m->mask + 1) * 2;
                entry *ns = tt_calloc(ncap, sizeof(*ns));
                if (!ns)
                        return -1;
                entry *old = m->slots;
                size_t oldcap = m->mask + 1;
                m->slots = ns;
                m->mask = ncap - 1;
                for (size_t i = 0; i < oldcap; i++)
                        if (old[i].author)
                                *find(m, old[i].author, old[i].len) = old[i];
                tt_free(old);
        }
        entry *e = find(m, s, n);
        if (!e->author) {
                e->author = tt_strndup(s, n);
                if (!e->author)
                        return -1;
                e->len = n;
                m->n++;
        }
        e->origin = o; /* a repeated key: the last one wins, as in JSON */
        return 0;
}

static const char *skip_ws(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

/* A JSON string without escapes (authors and codes never need them). */
static const char *read_str(const char *p, const char *end, const char **s,
                            size_t *n) {
        if (p >= end || *p != '"')
                return NULL;
        const char *q = ++p;
        while (q < end && *q != '"') {
                if (*q == '\\' || (unsigned char)*q < 0x20)
                        return NULL;
                q++;
        }
        if (q >= end)
                return NULL;
        *s = p;
        *n = (size_t)(q - p);
        return q + 1;
}

tt_origin_map *tt_origin_map_parse(const char *json, size_t len, char *errstr,
                                   size_t errsize) {
        tt_origin_map *m = tt_calloc(1, sizeof(*m));
        if (m)
                m->slots = tt_calloc(64, sizeof(entry));
        if (!m || !m->slots) {
                tt_origin_map_destroy(m);
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        m->mask = 63;
        const char *p = json, *end = json + len;
        p = skip_ws(p, end);
        if (p >= end || *p++ != '{')
                goto syntax;
        p = skip_ws(p, end);
        if (p < end && *p == '}') {
                p++;
                goto done;
        }
        for (;;) {
                const char *k, *v;
                size_t kn, vn;
                p = read_str(skip_ws(p, end), end, &k, &kn);
                if (!p)
                        goto syntax;
                p = skip_ws(p, end);
                if (p >= end || *p++ != ':')
                        goto syntax;
                p = read_str(skip_ws(p, end), end, &v, &vn);
                if (!p)
                        goto syntax;
                if (vn != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' ||
                    v[1] > 'Z') {
                        snprintf(errstr, errsize,
                                 "origin map: \"%.*s\" maps to \"%.*s\", not "
                                 "a two-letter upper-case code",
                                 (int)(kn > 64 ? 64 : kn), k,
                                 (int)(vn > 16 ? 16 : vn), v);
                        tt_origin_map_destroy(m);
                        return NULL;
                }
                if (insert(m, k, kn, TT_ORIGIN(v[0], v[1]))) {
                        snprintf(errstr, errsize, "out of memory");
                        tt_origin_map_destroy(m);
                        return NULL;
                }
                p = skip_ws(p, end);
                if (p < end && *p == ',') {
                        p++;
                        continue;
                }
                if (p < end && *p == '}') {
                        p++;
                        break;
                }
                goto syntax;
        }
done:
        if (skip_ws(p, end) != end)
                goto syntax;
        return m;
syntax:
        snprintf(errstr, errsize,
                 "origin map: expected a JSON object of \"author\": \"CC\" "
                 "strings (error at byte %zu)",
                 (size_t)(p ? p - json : 0));
        tt_origin_map_destroy(m);
        return NULL;
}

tt_origin_map *tt_origin_map_load(const char *path, char *errstr,
                                  size_t errsize) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                snprintf(errstr, errsize, "origin map %s: %m", path);
                return NULL;
        }
        char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (len == cap) {
                        if (cap >= (16u << 20)) {
                                snprintf(errstr, errsize,
                                         "origin map %s: larger than 16 MiB",
                                         path);
                                goto fail;
                        }
                        cap = cap ? cap * 2 : 4096;
                        char *nb = tt_realloc(buf, cap);
                        if (!nb) {
                                snprintf(errstr, errsize, "out of memory");
                                goto fail;
                        }
                        buf = nb;
                }
                size_t r = fread(buf + len, 1, cap - len, f);
                len += r;
                if (r == 0)
                        break;
        }
        if (ferror(f)) {
                snprintf(errstr, errsize, "origin map %s: read error", path);
                goto fail;
        }
        fclose(f);
        tt_origin_map *m = tt_origin_map_parse(buf, len, errstr, errsize);
        tt_free(buf);
        if (!m) {
                /* Prefix the path so that the one-line reason is enough. */
                char tmp[512];
                snprintf(tmp, sizeof(tmp), "%s", errstr);
                snprintf(errstr, errsize, "%s: %s", path, tmp);
        }
        return m;
fail:
        fclose(f);
        tt_free(buf);
        return NULL;
}

void tt_origin_map_destroy(tt_origin_map *m) {
        if (!m)
                return;
        if (m->slots)
                for (size_t i = 0; i <= m->mask; i++)
                        tt_free(m->slots[i].author);
        tt_free(m->slots);
        tt_free(m);
}

tt_origin tt_origin_map_lookup(const tt_origin_map *m, const char *author,
                               size_t len) {
        const entry *e = find(m, author, len);
        return e->author ? e->origin : TT_ORIGIN_UNKNOWN;
}

size_t tt_origin_map_size(const tt_origin_map *m) {
        return m->n;
}

tt_origin tt_origin_of_model(const tt_origin_map *m, const char *model,
                             size_t len) {
        const char *slash = memchr(model, '/', len);
        return tt_origin_map_lookup(m, model,
                                    slash ? (size_t)(slash - model) : len);
}

/* All 676 codes back to back, so a code's string never needs storage of its
 * own (streak holders keep pointers to it across weeks). */
static char origin_names[26 * 26 * 2];
static pthread_once_t origin_names_once = PTHREAD_ONCE_INIT;

static void origin_names_init(void) {
        for (int a = 0; a < 26; a++)
                for (int b = 0; b < 26; b++) {
                        origin_names[(a * 26 + b) * 2] = (char)('A' + a);
                        origin_names[(a * 26 + b) * 2 + 1] = (char)('A' + b);
                }
}

tt_str tt_origin_str(tt_origin o) {
        pthread_once(&origin_names_once, origin_names_init);
        unsigned i =
            (unsigned)((o >> 8) - 'A') * 26 + (unsigned)((o & 0xff) - 'A');
        if (i >= 26 * 26)
                return (tt_str){"ZZ", 2};
        return (tt_str){&origin_names[i * 2], 2};
}
