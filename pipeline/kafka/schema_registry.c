/* Confluent Schema Registry client over libcurl (see schema_registry.h).
 * The answers are small JSON objects; a scanner here reads the few
 * top-level members the API defines (id, schema, error_code, message) and
 * skips the rest. */
#include "tokentally/schema_registry.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/avro_event.h"
#include "tokentally/buf.h"
#include "tokentally/err.h"
#include "tokentally/mem.h"

/* An answer larger than this is refused (a schema is a few KiB). */
#define ANSWER_MAX (16u << 20)
#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 15000L
#define MAX_DEPTH 64
/* Distinct writer schema ids one run decodes (TokenEvent versions). */
#define DEC_MAX 256

typedef struct cached {
        int32_t id;
        char *schema;
} cached;

typedef struct dec_entry {
        int32_t id;
        tt_avro_dec *dec; /* NULL: the schema does not resolve (why) */
        char *why;
} dec_entry;

struct tt_registry {
        char *base; /* without a trailing '/' */
        CURL *curl; /* one handle: keeps the connection alive */
        struct curl_slist *headers;
        pthread_mutex_t lock;
        cached *cache;
        size_t ncache, capcache;
        tt_buf answer;
        /* Decoders by id: entries [0, ndecs) are complete and never change
         * (written under dec_lock, then published by the release store). */
        pthread_mutex_t dec_lock;
        dec_entry decs[DEC_MAX];
        atomic_size_t ndecs;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void) {
        global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static __attribute__((format(printf, 3, 4))) void
set_err(char *errstr, size_t errsize, const char *fmt, ...) {
        if (!errsize)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errsize, fmt, ap);
        va_end(ap);
}

/* ---- a minimal JSON reader ------------------------------------------- */

typedef struct jscan {
        const char *p, *end;
} jscan;

static void ws(jscan *s) {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
                                 *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static int hex4(const char *q, unsigned *out) {
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
                char c = q[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned)(c - 'A' + 10);
                else
                        return -1;
        }
        *out = v;
        return 0;
}

static int put_utf8(tt_buf *b, unsigned cp) {
        char o[4];
        size_t n;
        if (cp < 0x80) {
                o[0] = (char)cp;
                n = 1;
        } else if (cp < 0x800) {
                o[0] = (char)(0xC0 | cp >> 6);
                o[1] = (char)(0x80 | (cp & 0x3F));
                n = 2;
        } else if (cp < 0x10000) {
                o[0] = (char)(0xE0 | cp >> 12);
                o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
                o[2] = (char)(0x80 | (cp & 0x3F));
                n = 3;
        } else {
                o[0] = (char)(0xF0 | cp >> 18);
                o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
                o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
                o[3] = (char)(0x80 | (cp & 0x3F));
                n = 4;
        }
        return tt_buf_append(b, o, n);
}

/* A string at s->p; unescaped into out (when not NULL, NUL-terminated). */
static bool jstring(jscan *s, tt_buf *out) {
        if (s->p >= s->end || *s->p != '"')
                return false;
        s->p++;
        while (s->p < s->end) {
                char c = *s->p++;
                if (c == '"')
                        return !out || tt_buf_putc(out, '\0') == TT_ERR_OK;
                if ((unsigned char)c < 0x20)
                        return false;
                if (c != '\\') {
                        if (out && tt_buf_putc(out, c))
                                return false;
                        continue;
                }
                if (s->p >= s->end)
                        return false;
                char e = *s->p++;
                unsigned cp;
                switch (e) {
                case '"':
                case '\\':
                case '/':
                        cp = (unsigned char)e;
                        break;
                case 'b':
                        cp = '\b';
                        break;
                case 'f':
                        cp = '\f';
                        break;
                case 'n':
                        cp = '\n';
                        break;
                case 'r':
                        cp = '\r';
                        break;
                case 't':
                        cp = '\t';
                        break;
                case 'u':
                        if (s->end - s->p < 4 || hex4(s->p, &cp))
                                return false;
                        s->p += 4;
                        if (cp >= 0xD800 && cp < 0xDC00) {
                                unsigned lo;
                                if (s->end - s->p < 6 || s->p[0] != '\\' ||
                                    s->p[1] != 'u' || hex4(s->p + 2, &lo) ||
                                    lo < 0xDC00 || lo > 0xDFFF)
                                        return false;
                                s->p += 6;
                                cp = 0x10000 + ((cp - 0xD800) << 10) +
                                     (lo - 0xDC00);
                        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                                return false;
                        }
                        break;
                default:
                        return false;
                }
                if (out && put_utf8(out, cp))
                        return false;
        }
        return false;
}

static bool jvalue(jscan *s, int depth);

static bool jcontainer(jscan *s, int depth, char close) {
        if (depth > MAX_DEPTH)
                return false;
        s->p++;
        ws(s);
        if (s->p < s->end && *s->p == close) {
                s->p++;
                return true;
        }
        for (;;) {
                ws(s);
                if (close == '}') {
                        if (!jstring(s, NULL))
                                return false;
                        ws(s);
                        if (s->p >= s->end || *s->p != ':')
                                return false;
                        s->p++;
                        ws(s);
                }
                if (!jvalue(s, depth + 1))
                        return false;
                ws(s);
                if (s->p >= s->end)
                        return false;
                if (*s->p == ',') {
                        s->p++;
                        continue;
                }
                if (*s->p != close)
                        return false;
                s->p++;
                return true;
        }
}

static bool jvalue(jscan *s, int depth) {
        if (s->p >= s->end)
                return false;
        char c = *s->p;
        if (c == '{')
                return jcontainer(s, depth, '}');
        if (c == '[')
                return jcontainer(s, depth, ']');
        if (c == '"')
                return jstring(s, NULL);
        const char *q = s->p;
        while (q < s->end && *q != ',' && *q != '}' && *q != ']' && *q != ' ' &&
               *q != '\t' && *q != '\n' && *q != '\r')
                q++;
        if (q == s->p)
                return false;
        s->p = q; /* number, true, false or null: not looked into */
        return true;
}

/* Positions s at the value of the top-level member key of the object in
 * [p, end). False when absent or the text is not an object. */
static bool jmember(const char *p, size_t len, const char *key, jscan *s) {
        s->p = p;
        s->end = p + len;
        ws(s);
        if (s->p >= s->end || *s->p != '{')
                return false;
        s->p++;
        ws(s);
        if (s->p < s->end && *s->p == '}')
                return false;
        size_t klen = strlen(key);
        for (;;) {
                ws(s);
                const char *k = s->p + 1;
                if (!jstring(s, NULL))
                        return false;
                /* Keys here are plain ASCII: compare the raw text. */
                bool hit =
                    (size_t)(s->p - 1 - k) == klen && memcmp(k, key, klen) == 0;
                ws(s);
                if (s->p >= s->end || *s->p != ':')
                        return false;
                s->p++;
                ws(s);
                if (hit)
                        return true;
                if (!jvalue(s, 1))
                        return false;
                ws(s);
                if (s->p >= s->end || *s->p != ',')
                        return false;
                s->p++;
        }
}

static bool jget_int(const char *p, size_t len, const char *key, int64_t *v) {
        jscan s;
        if (!jmember(p, len, key, &s))
                return false;
        char tmp[32];
        size_t n = 0;
        while (s.p < s.end && n < sizeof(tmp) - 1 &&
               (*s.p == '-' || (*s.p >= '0' && *s.p <= '9')))
                tmp[n++] = *s.p++;
        tmp[n] = '\0';
        if (!n || (n == 1 && tmp[0] == '-'))
                return false;
        char *e;
        long long x = strtoll(tmp, &e, 10);
        if (*e)
                return false;
        *v = x;
        return true;
}

/* The unescaped string member key, NUL-terminated in out. */
static bool jget_str(const char *p, size_t len, const char *key, tt_buf *out) {
        jscan s;
        tt_buf_reset(out);
        return jmember(p, len, key, &s) && jstring(&s, out);
}

/* Appends s as a JSON string literal. */
static int put_json_string(tt_buf *b, const char *s) {
        int err = tt_buf_putc(b, '"');
        for (; !err && *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\')
                        err = tt_buf_printf(b, "\\%c", c);
                else if (c == '\n')
                        err = tt_buf_append(b, "\\n", 2);
                else if (c == '\r')
                        err = tt_buf_append(b, "\\r", 2);
                else if (c == '\t')
                        err = tt_buf_append(b, "\\t", 2);
                else if (c < 0x20)
                        err = tt_buf_printf(b, "\\u%04x", c);
                else
                        err = tt_buf_putc(b, (char)c);
        }
        return err ? err : tt_buf_putc(b, '"');
}

int tt_registry_answer_id(const char *p, size_t len, int32_t *id) {
        int64_t v;
        if (!jget_int(p, len, "id", &v) || v < 0 || v > INT32_MAX)
                return TT_ERR_FORMAT;
        *id = (int32_t)v;
        return TT_ERR_OK;
}

int tt_registry_answer_schema(const char *p, size_t len, tt_buf *schema) {
        if (!jget_str(p, len, "schema", schema))
                return TT_ERR_FORMAT;
        /* A \u0000 escape would cut the schema short where the decoder
         * reads it as a C string: refuse it rather than parse a prefix. */
        if (strlen((const char *)schema->data) + 1 != schema->len)
                return TT_ERR_FORMAT;
        return TT_ERR_OK;
}

/* ---- HTTP ------------------------------------------------------------ */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
        tt_buf *b = ud;
        size_t n = size * nmemb;
        return tt_buf_append(b, ptr, n) == TT_ERR_OK ? n : 0;
}

/* "HTTP 409, error_code 409: Schema being registered is incompatible..."
 * from an error answer; its first bytes when it is not the API's JSON. */
static void http_reason(const tt_buf *a, long status, char *out,
                        size_t outsize) {
        int64_t code;
        tt_buf msg;
        tt_buf_init(&msg, 1u << 16);
        const char *p = (const char *)a->data;
        if (a->len && jget_int(p, a->len, "error_code", &code) &&
            jget_str(p, a->len, "message", &msg)) {
                set_err(out, outsize, "HTTP %ld, error_code %" PRId64 ": %s",
                        status, code, (const char *)msg.data);
        } else {
                int n = a->len > 200 ? 200 : (int)a->len;
                while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
                        n--;
                set_err(out, outsize, "HTTP %ld%s%.*s", status, n ? ": " : "",
                        n, n ? p : "");
        }
        tt_buf_free(&msg);
}

/* One request (r->lock held); the answer in r->answer, NUL-terminated.
 * TT_ERR_OK for a 2xx status, TT_ERR_INVAL for 409/422 (the registry
 * refused the schema), TT_ERR_IO otherwise; *status is the HTTP status
 * (0 when none came). */
static int request(tt_registry *r, const char *method, const char *path,
                   const tt_buf *body, long *status, char *errstr,
                   size_t errsize) {
        tt_buf url;
        tt_buf_init(&url, 1u << 16);
        int err = tt_buf_printf(&url, "%s%s", r->base, path);
        if (!err)
                err = tt_buf_putc(&url, '\0'); /* printf leaves none */
        if (err) {
                tt_buf_free(&url);
                set_err(errstr, errsize, "registry: URL too long");
                return err;
        }
        tt_buf_reset(&r->answer);
        CURL *c = r->curl;
        curl_easy_setopt(c, CURLOPT_URL, (const char *)url.data);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                                 (const char *)body->data);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t)body->len);
        } else {
                curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        }
        char cerr[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
        CURLcode rc = curl_easy_perform(c);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
        *status = 0;
        if (rc != CURLE_OK) {
                set_err(errstr, errsize, "registry %s %s: %s", method,
                        (const char *)url.data,
                        cerr[0] ? cerr : curl_easy_strerror(rc));
                tt_buf_free(&url);
                return TT_ERR_IO;
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (tt_buf_putc(&r->answer, '\0')) {
                tt_buf_free(&url);
                set_err(errstr, errsize, "registry: answer too large");
                return TT_ERR_LIMIT;
        }
        r->answer.len--; /* the NUL is not part of the answer */
        if (*status >= 200 && *status < 300) {
                tt_buf_free(&url);
                return TT_ERR_OK;
        }
        char why[512];
        http_reason(&r->answer, *status, why, sizeof(why));
        set_err(errstr, errsize, "registry %s %s: %s", method,
                (const char *)url.data, why);
        tt_buf_free(&url);
        return *status == 409 || *status == 422 ? TT_ERR_INVAL : TT_ERR_IO;
}

/* ---- API ------------------------------------------------------------- */

tt_registry *tt_registry_new(const char *url, char *errstr, size_t errsize) {
        if (!url || !*url) {
                set_err(errstr, errsize, "registry: empty URL");
                return NULL;
        }
        pthread_once(&global_once, global_init);
        if (global_rc != CURLE_OK) {
                set_err(errstr, errsize, "registry: curl_global_init: %s",
                        curl_easy_strerror(global_rc));
                return NULL;
        }
        tt_registry *r = tt_calloc(1, sizeof(*r));
        if (!r) {
                set_err(errstr, errsize, "registry: out of memory");
                return NULL;
        }
        pthread_mutex_init(&r->lock, NULL);
        pthread_mutex_init(&r->dec_lock, NULL);
        atomic_init(&r->ndecs, 0);
        tt_buf_init(&r->answer, ANSWER_MAX);
        size_t n = strlen(url);
        while (n > 1 && url[n - 1] == '/')
                n--;
        r->base = tt_strndup(url, n);
        r->curl = curl_easy_init();
        struct curl_slist *h = curl_slist_append(
            NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
        if (h)
                r->headers = curl_slist_append(
                    h, "Accept: application/vnd.schemaregistry.v1+json, "
                       "application/json");
        if (!r->headers)
                curl_slist_free_all(h);
        if (!r->base || !r->curl || !r->headers) {
                set_err(errstr, errsize, "registry: out of memory");
                tt_registry_destroy(r);
                return NULL;
        }
        CURL *c = r->curl;
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->answer);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "tokentally");
        return r;
}

void tt_registry_destroy(tt_registry *r) {
        if (!r)
                return;
        if (r->curl)
                curl_easy_cleanup(r->curl);
        pthread_mutex_destroy(&r->lock);
        size_t nd = atomic_load(&r->ndecs);
        for (size_t i = 0; i < nd; i++) {
                tt_avro_dec_destroy(r->decs[i].dec);
                tt_free(r->decs[i].why);
        }
        pthread_mutex_destroy(&r->dec_lock);
        curl_slist_free_all(r->headers);
        for (size_t i = 0; i < r->ncache; i++)
                tt_free(r->cache[i].schema);
        tt_free(r->cache);
        tt_buf_free(&r->answer);
        tt_free(r->base);
        tt_free(r);
}

/* "/<prefix><escaped subject><suffix>" into out. */
static int subject_path(tt_registry *r, tt_buf *out, const char *prefix,
                        const char *subject, const char *suffix) {
        char *esc = curl_easy_escape(r->curl, subject, 0);
        if (!esc)
                return TT_ERR_NOMEM;
        int err = tt_buf_printf(out, "%s%s%s", prefix, esc, suffix);
        curl_free(esc);
        return err ? err : tt_buf_putc(out, '\0');
}

int tt_registry_register(tt_registry *r, const char *subject,
                         const char *schema_json, int32_t *id, char *errstr,
                         size_t errsize) {
        if (!r || !subject || !*subject || !schema_json || !id) {
                set_err(errstr, errsize, "registry: invalid argument");
                return TT_ERR_INVAL;
        }
        tt_buf path, body;
        tt_buf_init(&path, 1u << 16);
        tt_buf_init(&body, ANSWER_MAX);
        long status;
        int err;
        pthread_mutex_lock(&r->lock);

        err = subject_path(r, &path, "/config/", subject, "");
        if (!err)
                err = tt_buf_printf(&body, "{\"compatibility\":\"BACKWARD\"}");
        if (err) {
                set_err(errstr, errsize, "registry: %s", tt_err2str(err));
                goto out;
        }
        err = request(r, "PUT", (const char *)path.data, &body, &status, errstr,
                      errsize);
        if (err) {
                if (err == TT_ERR_INVAL)
                        err = TT_ERR_IO; /* not about the schema */
                goto out;
        }

        tt_buf_reset(&path);
        tt_buf_reset(&body);
        err = subject_path(r, &path, "/subjects/", subject, "/versions");
        if (!err)
                err = tt_buf_append(&body, "{\"schema\":", 10);
        if (!err)
                err = put_json_string(&body, schema_json);
        if (!err)
                err = tt_buf_putc(&body, '}');
        if (err) {
                set_err(errstr, errsize, "registry: %s", tt_err2str(err));
                goto out;
        }
        err = request(r, "POST", (const char *)path.data, &body, &status,
                      errstr, errsize);
        if (err)
                goto out;
        if (tt_registry_answer_id((const char *)r->answer.data, r->answer.len,
                                  id)) {
                set_err(errstr, errsize,
                        "registry POST %s%s: no schema id in the answer: "
                        "%.200s",
                        r->base, (const char *)path.data,
                        (const char *)r->answer.data);
                err = TT_ERR_FORMAT;
                goto out;
        }
out:
        pthread_mutex_unlock(&r->lock);
        tt_buf_free(&path);
        tt_buf_free(&body);
        return err;
}

const char *tt_registry_schema_by_id(tt_registry *r, int32_t id, char *errstr,
                                     size_t errsize) {
        if (!r) {
                set_err(errstr, errsize, "registry: invalid argument");
                return NULL;
        }
        const char *res = NULL;
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < r->ncache; i++) {
                if (r->cache[i].id == id) {
                        res = r->cache[i].schema;
                        goto out;
                }
        }
        char path[64];
        snprintf(path, sizeof(path), "/schemas/ids/%" PRId32, id);
        long status;
        if (request(r, "GET", path, NULL, &status, errstr, errsize))
                goto out;
        tt_buf s;
        tt_buf_init(&s, ANSWER_MAX);
        if (tt_registry_answer_schema((const char *)r->answer.data,
                                      r->answer.len, &s)) {
                set_err(errstr, errsize,
                        "registry GET %s%s: no schema in the answer: %.200s",
                        r->base, path, (const char *)r->answer.data);
                tt_buf_free(&s);
                goto out;
        }
        if (r->ncache == r->capcache) {
                size_t cap = r->capcache ? 2 * r->capcache : 8;
                cached *nc = tt_realloc(r->cache, cap * sizeof(*nc));
                if (!nc) {
                        set_err(errstr, errsize, "registry: out of memory");
                        tt_buf_free(&s);
                        goto out;
                }
                r->cache = nc;
                r->capcache = cap;
        }
        /* s owns its bytes: the cache keeps them (tt_buf data is
         * tt_malloc'd). */
        r->cache[r->ncache].id = id;
        r->cache[r->ncache].schema = (char *)s.data;
        res = r->cache[r->ncache++].schema;
out:
        pthread_mutex_unlock(&r->lock);
        return res;
}

static const dec_entry *find_dec(tt_registry *r, int32_t id) {
        size_t n = atomic_load_explicit(&r->ndecs, memory_order_acquire);
        for (size_t i = 0; i < n; i++)
                if (r->decs[i].id == id)
                        return &r->decs[i];
        return NULL;
}

const struct tt_avro_dec *tt_registry_event_decoder(tt_registry *r, int32_t id,
                                                    char *errstr,
                                                    size_t errsize) {
        const dec_entry *e = find_dec(r, id);
        if (!e) {
                const char *schema =
                    tt_registry_schema_by_id(r, id, errstr, errsize);
                if (!schema)
                        return NULL;
                pthread_mutex_lock(&r->dec_lock);
                e = find_dec(r, id); /* another thread may have made it */
                size_t n = atomic_load(&r->ndecs);
                if (!e && n == DEC_MAX) {
                        pthread_mutex_unlock(&r->dec_lock);
                        set_err(errstr, errsize,
                                "registry: more than %d writer schema ids",
                                DEC_MAX);
                        return NULL;
                }
                if (!e) {
                        char why[512] = "";
                        dec_entry *ne = &r->decs[n];
                        ne->id = id;
                        ne->dec = tt_avro_dec_new(schema, why, sizeof(why));
                        ne->why = NULL;
                        if (!ne->dec) {
                                char head[64];
                                snprintf(head, sizeof(head),
                                         "writer schema id %" PRId32 ": ", id);
                                ne->why =
                                    tt_malloc(strlen(head) + strlen(why) + 1);
                                if (!ne->why) {
                                        pthread_mutex_unlock(&r->dec_lock);
                                        set_err(errstr, errsize,
                                                "registry: out of memory");
                                        return NULL;
                                }
                                strcpy(ne->why, head);
                                strcat(ne->why, why);
                        }
                        atomic_store_explicit(&r->ndecs, n + 1,
                                              memory_order_release);
                        e = ne;
                }
                pthread_mutex_unlock(&r->dec_lock);
        }
        if (!e->dec)
                set_err(errstr, errsize, "%s", e->why);
        return e->dec;
}
