/* The JSON API over the materialized view (docs/serve.md). Numbers are
 * written as the records carry them (tokens as integers, percentages as
 * the shortest double that reads back), so a client sees exactly what the
 * stage emitted; the page formats them. */
#include "tokentally/serve_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/json_out.h"
#include "tokentally/mem.h"
#include "tokentally/week.h"

#define LIT(b, s) tt_buf_append((b), (s), sizeof(s) - 1)
#define MAX_PARAMS 8
#define VALUE_MAX 256
#define TOP_MAX 100000

typedef struct param {
        char name[32];
        char value[VALUE_MAX];
        bool seen;
} param;

static int str(tt_buf *b, const char *s) {
        return s ? tt_json_string(b, s, strlen(s)) : LIT(b, "null");
}

static int error(tt_buf *b, unsigned status, const char *code,
                 const char *fmt_msg, const char *arg) {
        char msg[512];
        snprintf(msg, sizeof(msg), fmt_msg, arg ? arg : "");
        b->len = 0;
        int err =
            tt_buf_printf(b, "{\"error\":{\"status\":%u,\"code\":", status);
        err = err ? err : str(b, code);
        err = err ? err : LIT(b, ",\"message\":");
        err = err ? err : str(b, msg);
        err = err ? err : LIT(b, "}}\n");
        return err;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decodes s[0..n) ('+' is a space) into out; -1 when malformed or
 * longer than size - 1. */
static int decode(const char *s, size_t n, char *out, size_t size) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '%') {
                        if (i + 2 >= n)
                                return -1;
                        int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
                        if (a < 0 || b < 0)
                                return -1;
                        c = (char)(a * 16 + b);
                        i += 2;
                } else if (c == '+') {
                        c = ' ';
                }
                if (!c || o + 1 >= size)
                        return -1;
                out[o++] = c;
        }
        out[o] = '\0';
        return 0;
}

/* Parses query into the params named in p (in order); an unknown, repeated
 * or malformed parameter is a 400 written into b. 0 or 400. */
static unsigned parse_query(const char *query, param *p, size_t np, tt_buf *b) {
        for (size_t i = 0; i < np; i++)
                p[i].seen = false;
        if (!query)
                return 0;
        for (const char *s = query; *s;) {
                const char *amp = strchr(s, '&');
                size_t len = amp ? (size_t)(amp - s) : strlen(s);
                const char *eq = memchr(s, '=', len);
                size_t nlen = eq ? (size_t)(eq - s) : len;
                if (len) {
                        char name[32];
                        if (decode(s, nlen, name, sizeof(name))) {
                                error(b, 400, "bad_parameter",
                                      "a parameter name is malformed or too "
                                      "long%s",
                                      "");
                                return 400;
                        }
                        param *hit = NULL;
                        for (size_t i = 0; i < np; i++)
                                if (!strcmp(p[i].name, name))
                                        hit = &p[i];
                        if (!hit) {
                                error(b, 400, "unknown_parameter",
                                      "unknown parameter '%s'", name);
                                return 400;
                        }
                        if (hit->seen) {
                                error(b, 400, "bad_parameter",
                                      "parameter '%s' given twice", name);
                                return 400;
                        }
                        hit->seen = true;
                        const char *val = eq ? eq + 1 : s + len;
                        size_t vlen = eq ? len - nlen - 1 : 0;
                        if (decode(val, vlen, hit->value, sizeof(hit->value))) {
                                error(b, 400, "bad_parameter",
                                      "parameter '%s': malformed or longer "
                                      "than 255 bytes",
                                      name);
                                return 400;
                        }
                }
                s += len;
                if (*s == '&')
                        s++;
        }
        return 0;
}

static const char *dim_name(tt_dim d) {
        return d == TT_DIM_TOTAL    ? "total"
               : d == TT_DIM_ORIGIN ? "origin"
                                    : "model";
}

static int parse_dim(const char *s, tt_dim *d) {
        if (!strcmp(s, "origin"))
                *d = TT_DIM_ORIGIN;
        else if (!strcmp(s, "model"))
                *d = TT_DIM_MODEL;
        else if (!strcmp(s, "total"))
                *d = TT_DIM_TOTAL;
        else
                return -1;
        return 0;
}

static int opt_i64(tt_buf *b, bool has, int64_t x) {
        return has ? tt_buf_printf(b, "%lld", (long long)x) : LIT(b, "null");
}

static int opt_double(tt_buf *b, bool has, double x) {
        return has ? tt_json_double(b, x) : LIT(b, "null");
}

/* One row as its JSON object (the week and dimension are the caller's). */
static int row_json(tt_buf *b, const tt_sview_row *r) {
        int err = tt_buf_printf(b, "{\"rank\":%d,\"key\":", (int)r->rank);
        err = err ? err : str(b, r->key);
        err = err ? err : LIT(b, ",\"origin\":");
        err = err ? err : str(b, r->has_origin ? r->origin : NULL);
        err = err ? err
                  : tt_buf_printf(b,
                                  ",\"tokens\":%lld,\"prompt_tokens\":%lld,"
                                  "\"completion_tokens\":%lld,\"requests\":%"
                                  "lld,\"prev_tokens\":",
                                  (long long)r->tokens,
                                  (long long)r->prompt_tokens,
                                  (long long)r->completion_tokens,
                                  (long long)r->requests);
        err = err ? err : opt_i64(b, r->has_prev, r->prev_tokens);
        err = err ? err : LIT(b, ",\"wow_growth_pct\":");
        err = err ? err : opt_double(b, r->has_growth, r->growth_pct);
        err = err ? err : LIT(b, ",\"share_pct\":");
        err = err ? err : tt_json_double(b, r->share_pct);
        err = err ? err
                  : tt_buf_printf(b, ",\"status\":\"%s\",\"revision\":%d}",
                                  tt_status_str(r->status), (int)r->revision);
        return err;
}

/* A week's status is its TOTAL row's: every counted event changes the
 * TOTAL row, so it is re-emitted with every PROVISIONAL, FINAL and REVISED
 * emission of the week. */
static int week_head(tt_buf *b, const tt_sview *v, const char *week) {
        const tt_sview_row *t = tt_sview_find(v, week, TT_DIM_TOTAL, "*");
        int err = LIT(b, "\"week\":");
        err = err ? err : str(b, week);
        if (t)
                err = err ? err
                          : tt_buf_printf(
                                b,
                                ",\"week_start\":%lld,\"status\":\"%s\","
                                "\"revision\":%d,\"tokens\":%lld,"
                                "\"requests\":%lld,\"prev_tokens\":",
                                (long long)t->week_start_ms,
                                tt_status_str(t->status), (int)t->revision,
                                (long long)t->tokens, (long long)t->requests);
        else
                err = err ? err
                          : LIT(b, ",\"week_start\":null,\"status\":null,"
                                   "\"revision\":null,\"tokens\":null,"
                                   "\"requests\":null,\"prev_tokens\":");
        err = err ? err : opt_i64(b, t && t->has_prev, t ? t->prev_tokens : 0);
        err = err ? err : LIT(b, ",\"wow_growth_pct\":");
        err = err ? err
                  : opt_double(b, t && t->has_growth, t ? t->growth_pct : 0);
        return err;
}

static int weeks_json(tt_buf *b, const tt_sview *v) {
        int err = LIT(b, "[");
        for (size_t i = 0; !err && i < tt_sview_nweeks(v); i++) {
                err = i ? tt_buf_putc(b, ',') : 0;
                err = err ? err : tt_buf_putc(b, '{');
                err = err ? err : week_head(b, v, tt_sview_week(v, i));
                err = err ? err : tt_buf_putc(b, '}');
        }
        return err ? err : LIT(b, "]");
}

static unsigned api_weeks(const tt_sview *v, const char *query, tt_buf *b) {
        if (parse_query(query, NULL, 0, b))
                return 400;
        size_t n = tt_sview_nweeks(v);
        int err = LIT(b, "{\"api\":\"v1\",\"newest\":");
        err = err ? err : str(b, n ? tt_sview_week(v, n - 1) : NULL);
        err = err ? err : LIT(b, ",\"weeks\":");
        err = err ? err : weeks_json(b, v);
        err = err ? err : LIT(b, "}\n");
        return err ? 500 : 200;
}

static int rows_json(tt_buf *b, const tt_sview_row **rows, size_t n) {
        int err = LIT(b, "[");
        for (size_t i = 0; !err && i < n; i++) {
                err = i ? tt_buf_putc(b, ',') : 0;
                err = err ? err : row_json(b, rows[i]);
        }
        return err ? err : LIT(b, "]");
}

/* A valid week name, else a 400 in b. */
static unsigned check_week(const char *w, const char *what, tt_buf *b) {
        int32_t idx;
        if (tt_week_parse(w, &idx)) {
                error(b, 400, "bad_week",
                      "%s: expected an ISO week such as 2026-W14", what);
                return 400;
        }
        return 0;
}

static unsigned api_week(const tt_sview *v, const char *week, const char *query,
                         tt_buf *b) {
        param p[2] = {{.name = "dimension"}, {.name = "top"}};
        if (parse_query(query, p, 2, b))
                return 400;
        if (check_week(week, "the path's week", b))
                return 400;
        tt_dim dim = TT_DIM_ORIGIN;
        if (p[0].seen && (parse_dim(p[0].value, &dim) || dim == TT_DIM_TOTAL)) {
                error(b, 400, "bad_parameter",
                      "dimension: expected origin or model, got '%s'",
                      p[0].value);
                return 400;
        }
        long top = 10;
        if (p[1].seen) {
                char *end;
                top = strtol(p[1].value, &end, 10);
                if (!p[1].value[0] || *end || top < 1 || top > TOP_MAX) {
                        error(b, 400, "bad_parameter",
                              "top: expected a whole number from 1 to "
                              "100000, got '%s'",
                              p[1].value);
                        return 400;
                }
        }
        if (tt_sview_week_index(v, week) < 0) {
                error(b, 404, "unknown_week", "no records of week %s", week);
                return 404;
        }
        const tt_sview_row **rows;
        size_t n = tt_sview_rows(v, week, dim, &rows);
        if (n == (size_t)-1)
                return 500;
        int err = LIT(b, "{\"api\":\"v1\",");
        err = err ? err : week_head(b, v, week);
        err = err ? err
                  : tt_buf_printf(b,
                                  ",\"dimension\":\"%s\",\"top\":%ld,"
                                  "\"count\":%zu,\"rows\":",
                                  dim_name(dim), top, n);
        err = err ? err : rows_json(b, rows, n < (size_t)top ? n : (size_t)top);
        err = err ? err : LIT(b, "}\n");
        tt_free(rows);
        return err ? 500 : 200;
}

static unsigned api_series(const tt_sview *v, const char *query, tt_buf *b) {
        param p[4] = {{.name = "dimension"},
                      {.name = "key"},
                      {.name = "from"},
                      {.name = "to"}};
        if (parse_query(query, p, 4, b))
                return 400;
        tt_dim dim;
        if (!p[0].seen || parse_dim(p[0].value, &dim)) {
                error(b, 400, "bad_parameter",
                      "dimension: expected total, origin or model, got '%s'",
                      p[0].seen ? p[0].value : "(none)");
                return 400;
        }
        const char *key = dim == TT_DIM_TOTAL ? "*" : p[1].value;
        if (dim == TT_DIM_TOTAL ? p[1].seen && strcmp(p[1].value, "*")
                                : !p[1].seen || !p[1].value[0]) {
                error(b, 400, "bad_parameter", "%s",
                      dim == TT_DIM_TOTAL
                          ? "key: the total has the key * only"
                          : "key: required for dimension origin or model");
                return 400;
        }
        if ((p[2].seen && check_week(p[2].value, "from", b)) ||
            (p[3].seen && check_week(p[3].value, "to", b)))
                return 400;
        if (p[2].seen && p[3].seen && strcmp(p[2].value, p[3].value) > 0) {
                error(b, 400, "bad_parameter", "from is after to%s", "");
                return 400;
        }
        size_t nw = tt_sview_nweeks(v);
        bool any = false;
        for (size_t i = 0; i < nw && !any; i++)
                any = tt_sview_find(v, tt_sview_week(v, i), dim, key) != NULL;
        if (!any) {
                error(b, 404, "unknown_key", "no records of key '%s'", key);
                return 404;
        }
        int err = tt_buf_printf(
            b, "{\"api\":\"v1\",\"dimension\":\"%s\",\"key\":", dim_name(dim));
        err = err ? err : str(b, key);
        err = err ? err : LIT(b, ",\"from\":");
        err = err ? err : str(b, p[2].seen ? p[2].value : NULL);
        err = err ? err : LIT(b, ",\"to\":");
        err = err ? err : str(b, p[3].seen ? p[3].value : NULL);
        err = err ? err : LIT(b, ",\"points\":[");
        bool first = true;
        for (size_t i = 0; !err && i < nw; i++) {
                const char *w = tt_sview_week(v, i);
                if ((p[2].seen && strcmp(w, p[2].value) < 0) ||
                    (p[3].seen && strcmp(w, p[3].value) > 0))
                        continue;
                const tt_sview_row *r = tt_sview_find(v, w, dim, key);
                err = first ? 0 : tt_buf_putc(b, ',');
                first = false;
                err = err ? err : LIT(b, "{\"week\":");
                err = err ? err : str(b, w);
                if (r) {
                        err = err ? err : LIT(b, ",\"row\":");
                        err = err ? err : row_json(b, r);
                } else {
                        /* No record: the key had no event that week. */
                        err = err ? err : LIT(b, ",\"row\":null");
                }
                err = err ? err : tt_buf_putc(b, '}');
        }
        err = err ? err : LIT(b, "]}\n");
        return err ? 500 : 200;
}

static int streak_json(tt_buf *b, const tt_sview_srow *s) {
        int err = LIT(b, "{\"rule\":");
        err = err ? err : str(b, s->rule);
        err = err ? err : LIT(b, ",\"week\":");
        err = err ? err : str(b, s->week);
        err = err ? err
                  : tt_buf_printf(b, ",\"kind\":\"%s\",\"holder\":",
                                  tt_streak_kind_str(s->kind));
        err = err ? err : str(b, s->holder);
        err =
            err ? err
                : tt_buf_printf(b, ",\"length_weeks\":%d,\"previous_holder\":",
                                (int)s->length);
        err = err ? err : str(b, s->previous);
        err = err ? err
                  : tt_buf_printf(b, ",\"holder_tokens\":%lld,\"runner_up\":",
                                  (long long)s->holder_tokens);
        err = err ? err : str(b, s->runner);
        err = err ? err : LIT(b, ",\"runner_up_tokens\":");
        err = err ? err : opt_i64(b, s->has_runner_tokens, s->runner_tokens);
        err = err ? err : LIT(b, ",\"margin_pct\":");
        err = err ? err : opt_double(b, s->has_margin, s->margin_pct);
        return err ? err : tt_buf_putc(b, '}');
}

/* The streaks of week, or with week NULL the current streak of every rule
 * (its greatest week), by rule. */
static int streaks_json(tt_buf *b, const tt_sview *v, const char *week,
                        size_t *count) {
        int err = LIT(b, "[");
        size_t n = tt_sview_nstreaks(v), k = 0;
        for (size_t i = 0; !err && i < n; i++) {
                const tt_sview_srow *s = tt_sview_streak_at(v, i);
                if (week ? strcmp(s->week, week) != 0
                         : i + 1 < n &&
                               !strcmp(tt_sview_streak_at(v, i + 1)->rule,
                                       s->rule))
                        continue; /* sorted by (rule, week): last of a rule */
                err = k++ ? tt_buf_putc(b, ',') : 0;
                err = err ? err : streak_json(b, s);
        }
        if (count)
                *count = k;
        return err ? err : LIT(b, "]");
}

static unsigned api_streaks(const tt_sview *v, const char *query, tt_buf *b) {
        param p[1] = {{.name = "week"}};
        if (parse_query(query, p, 1, b))
                return 400;
        if (p[0].seen && check_week(p[0].value, "week", b))
                return 400;
        size_t mark = b->len, k;
        int err = LIT(b, "{\"api\":\"v1\",\"week\":");
        err = err ? err : str(b, p[0].seen ? p[0].value : NULL);
        err = err ? err : LIT(b, ",\"streaks\":");
        err = err ? err : streaks_json(b, v, p[0].seen ? p[0].value : NULL, &k);
        err = err ? err : LIT(b, "}\n");
        if (!err && p[0].seen && !k) {
                b->len = mark;
                error(b, 404, "unknown_week", "no streaks of week %s",
                      p[0].value);
                return 404;
        }
        return err ? 500 : 200;
}

int tt_serve_page_json(const tt_sview *v, tt_buf *b) {
        size_t nw = tt_sview_nweeks(v);
        const char **origins = NULL;
        size_t no = tt_sview_keys(v, TT_DIM_ORIGIN, &origins);
        if (no == (size_t)-1)
                return TT_ERR_NOMEM;
        int err = LIT(b, "{\"api\":\"v1\",\"newest\":");
        err = err ? err : str(b, nw ? tt_sview_week(v, nw - 1) : NULL);
        err = err ? err : LIT(b, ",\"weeks\":");
        err = err ? err : weeks_json(b, v);
        /* Every origin's tokens and share in every week, aligned with
         * "weeks" (0 where it had no event): the chart's series. */
        err = err ? err : LIT(b, ",\"series\":[");
        for (size_t o = 0; !err && o < no; o++) {
                err = o ? tt_buf_putc(b, ',') : 0;
                err = err ? err : LIT(b, "{\"key\":");
                err = err ? err : str(b, origins[o]);
                err = err ? err : LIT(b, ",\"tokens\":[");
                for (size_t i = 0; !err && i < nw; i++) {
                        const tt_sview_row *r = tt_sview_find(
                            v, tt_sview_week(v, i), TT_DIM_ORIGIN, origins[o]);
                        err = i ? tt_buf_putc(b, ',') : 0;
                        err =
                            err ? err
                                : tt_buf_printf(b, "%lld",
                                                (long long)(r ? r->tokens : 0));
                }
                err = err ? err : LIT(b, "],\"share_pct\":[");
                for (size_t i = 0; !err && i < nw; i++) {
                        const tt_sview_row *r = tt_sview_find(
                            v, tt_sview_week(v, i), TT_DIM_ORIGIN, origins[o]);
                        err = i ? tt_buf_putc(b, ',') : 0;
                        err =
                            err ? err : tt_json_double(b, r ? r->share_pct : 0);
                }
                err = err ? err : LIT(b, "]}");
        }
        err = err ? err : LIT(b, "],\"detail\":{");
        for (size_t i = 0; !err && i < nw; i++) {
                const char *w = tt_sview_week(v, i);
                const tt_sview_row **rows;
                err = i ? tt_buf_putc(b, ',') : 0;
                err = err ? err : str(b, w);
                err = err ? err : LIT(b, ":{\"origins\":");
                size_t n = tt_sview_rows(v, w, TT_DIM_ORIGIN, &rows);
                if (n == (size_t)-1)
                        err = TT_ERR_NOMEM;
                err = err ? err : rows_json(b, rows, n);
                tt_free(rows);
                err = err ? err : LIT(b, ",\"models\":");
                n = err ? 0 : tt_sview_rows(v, w, TT_DIM_MODEL, &rows);
                if (n == (size_t)-1)
                        err = TT_ERR_NOMEM;
                err = err ? err
                          : rows_json(b, rows,
                                      n < TT_API_PAGE_MODELS
                                          ? n
                                          : TT_API_PAGE_MODELS);
                err = err ? err : tt_buf_printf(b, ",\"model_count\":%zu", n);
                tt_free(rows);
                err = err ? err : LIT(b, ",\"streaks\":");
                err = err ? err : streaks_json(b, v, w, NULL);
                err = err ? err : tt_buf_putc(b, '}');
        }
        err = err ? err : LIT(b, "}}\n");
        tt_free(origins);
        return err;
}

unsigned tt_serve_api(const tt_sview *v, const char *path, const char *query,
                      tt_buf *b) {
        static const char weeks[] = "/api/v1/weeks/";
        unsigned st;
        if (!strcmp(path, "/api/v1/weeks"))
                st = api_weeks(v, query, b);
        else if (!strncmp(path, weeks, sizeof(weeks) - 1) &&
                 !strchr(path + sizeof(weeks) - 1, '/'))
                st = api_week(v, path + sizeof(weeks) - 1, query, b);
        else if (!strcmp(path, "/api/v1/series"))
                st = api_series(v, query, b);
        else if (!strcmp(path, "/api/v1/streaks"))
                st = api_streaks(v, query, b);
        else if (!strcmp(path, "/api/v1/page")) {
                st = parse_query(query, NULL, 0, b);
                if (!st)
                        st = tt_serve_page_json(v, b) ? 500 : 200;
        } else {
                error(b, 404, "not_found", "no such API path: %s", path);
                return 404;
        }
        if (st == 500)
                error(b, 500, "internal", "out of memory%s", "");
        return st;
}
