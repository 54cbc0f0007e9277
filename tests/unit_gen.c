/* The april-2026 generator, checked from the outside: a counting sink sums
 * what tt_gen_run emits, resolving origins with its own reading of
 * schemas/origins.json, and compares the weekly totals with the headline
 * (SPEC §9). Also arrival order, determinism, invalid records and errors. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/err.h"
#include "tokentally/event.h"
#include "tokentally/gen.h"
#include "tokentally/json_event.h"
#include "tokentally/mem.h"

#define WEEK_MS INT64_C(604800000)
#define W05_START INT64_C(1769385600000) /* Mon 2026-01-26 00:00 UTC */
#define NWEEKS 10                        /* W05..W14 */
#define W09 4
#define W10 5
#define W13 8
#define W14 9

/* ---- the origin map, read independently of the library ---- */

static struct {
        char author[64];
        char code[3];
} amap[128];
static size_t namap;

static void load_origin_map(void) {
        if (namap)
                return;
        const char *src = getenv("TT_SOURCE_DIR");
        ck_assert_msg(src != NULL, "TT_SOURCE_DIR is not set");
        char path[1024];
        snprintf(path, sizeof(path), "%s/schemas/origins.json", src);
        FILE *f = fopen(path, "r");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        char line[256];
        while (fgets(line, sizeof(line), f)) {
                char a[64], c[8];
                if (sscanf(line, " \"%63[^\"]\" : \"%7[^\"]\"", a, c) == 2) {
                        ck_assert_uint_lt(namap, 128);
                        snprintf(amap[namap].author, 64, "%s", a);
                        snprintf(amap[namap].code, 3, "%s", c);
                        namap++;
                }
        }
        fclose(f);
        ck_assert_uint_gt(namap, 20);
}

static const char *origin_of(tt_str model) {
        const char *slash = memchr(model.ptr, '/', model.len);
        size_t n = slash ? (size_t)(slash - model.ptr) : model.len;
        for (size_t i = 0; i < namap; i++)
                if (strlen(amap[i].author) == n &&
                    memcmp(amap[i].author, model.ptr, n) == 0)
                        return amap[i].code;
        return "ZZ";
}

/* ---- the counting sink ---- */

#define MAXO 16
#define MAXM 64

typedef struct counts {
        int64_t valid, raw, allocs_before;
        int64_t invalid[TT_REASON__COUNT];
        int64_t raw_reason[TT_REASON__COUNT];
        char ocode[MAXO][3];
        size_t no;
        int64_t by_origin[NWEEKS][MAXO];
        int64_t total[NWEEKS];
        char model[MAXM][128];
        int model_origin[MAXM];
        size_t nm;
        int64_t by_model[NWEEKS][MAXM];
        int64_t explicit_origin, null_provider, max_request;
        int64_t max_seen, max_late;
        uint64_t hash;
        uint64_t *ids; /* hashes of request ids, for uniqueness */
        size_t nids, capids;
        tt_json_dec *jdec;
        int fail_after; /* > 0: the sink fails on that event */
} counts;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
        const unsigned char *b = p;
        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * UINT64_C(0x100000001b3);
        return h;
}

static uint64_t fnv_str(uint64_t h, tt_str s) {
        uint8_t tag = s.ptr != NULL;
        h = fnv(h, &tag, 1);
        h = fnv(h, &s.len, sizeof(s.len));
        return s.ptr ? fnv(h, s.ptr, s.len) : h;
}

static size_t origin_slot(counts *c, const char *code) {
        for (size_t i = 0; i < c->no; i++)
                if (!strcmp(c->ocode[i], code))
                        return i;
        ck_assert_uint_lt(c->no, MAXO);
        memcpy(c->ocode[c->no], code, 3);
        return c->no++;
}

static int64_t origin_tokens(const counts *c, int week, const char *code) {
        for (size_t i = 0; i < c->no; i++)
                if (!strcmp(c->ocode[i], code))
                        return c->by_origin[week][i];
        return 0;
}

static size_t model_slot(counts *c, tt_str m, size_t origin) {
        for (size_t i = 0; i < c->nm; i++)
                if (strlen(c->model[i]) == m.len &&
                    !memcmp(c->model[i], m.ptr, m.len))
                        return i;
        ck_assert_uint_lt(c->nm, MAXM);
        ck_assert_uint_lt(m.len, 128);
        memcpy(c->model[c->nm], m.ptr, m.len);
        c->model[c->nm][m.len] = '\0';
        c->model_origin[c->nm] = (int)origin;
        return c->nm++;
}

static int on_event(void *opaque, const tt_event *ev) {
        counts *c = opaque;
        if (c->fail_after > 0 && c->valid + 1 >= c->fail_after)
                return TT_ERR_IO;
        char detail[256];
        tt_reason r = tt_event_validate(ev, detail, sizeof(detail));
        if (r != TT_REASON_NONE) {
                c->invalid[r]++;
                return 0;
        }
        int64_t t = ev->event_time_ms;
        int64_t w = (t - W05_START) / WEEK_MS;
        ck_assert_msg(t >= W05_START && w < NWEEKS, "time %lld outside W05-14",
                      (long long)t);
        const char *mapped = origin_of(ev->model);
        if (ev->origin.ptr) {
                /* An explicit origin must agree with the map, or totals
                 * would depend on which one the engine believes. */
                ck_assert_uint_eq(ev->origin.len, 2);
                ck_assert_int_eq(memcmp(ev->origin.ptr, mapped, 2), 0);
                c->explicit_origin++;
        }
        if (!ev->provider.ptr)
                c->null_provider++;
        else
                ck_assert_int_eq(strncmp(ev->provider.ptr, "openrouter/", 11),
                                 0);
        int64_t tok = ev->prompt_tokens + ev->completion_tokens;
        if (tok > c->max_request)
                c->max_request = tok;
        size_t o = origin_slot(c, mapped);
        c->by_origin[w][o] += tok;
        c->total[w] += tok;
        c->by_model[w][model_slot(c, ev->model, o)] += tok;
        if (t > c->max_seen)
                c->max_seen = t;
        else if (c->max_seen - t > c->max_late)
                c->max_late = c->max_seen - t;
        c->valid++;

        uint64_t h = c->hash ? c->hash : UINT64_C(0xcbf29ce484222325);
        h = fnv_str(h, ev->request_id);
        h = fnv(h, &ev->event_time_ms, 8);
        h = fnv_str(h, ev->model);
        h = fnv_str(h, ev->origin);
        h = fnv(h, &ev->prompt_tokens, 8);
        h = fnv(h, &ev->completion_tokens, 8);
        c->hash = fnv_str(h, ev->provider);
        if (c->ids && c->nids < c->capids)
                c->ids[c->nids++] =
                    fnv_str(UINT64_C(0xcbf29ce484222325), ev->request_id);
        return 0;
}

static int on_raw(void *opaque, const uint8_t *p, size_t n) {
        counts *c = opaque;
        c->raw++;
        ck_assert_ptr_null(memchr(p, '\n', n));
        /* Classified the way replay would: decode, then validate. */
        tt_event ev;
        char detail[256];
        tt_reason r = tt_json_decode_event(c->jdec, (const char *)p, n, &ev,
                                           detail, sizeof(detail));
        if (r == TT_REASON_NONE)
                r = tt_event_validate(&ev, detail, sizeof(detail));
        c->raw_reason[r]++;
        return 0;
}

static const tt_gen_sink sink = {on_event, on_raw};

static counts *run(double scale, uint64_t seed, double invalid_rate, int text) {
        load_origin_map();
        counts *c = calloc(1, sizeof(*c));
        ck_assert_ptr_nonnull(c);
        c->jdec = tt_json_dec_new();
        ck_assert_ptr_nonnull(c->jdec);
        tt_gen_conf conf = {"april-2026", scale, seed, invalid_rate, text};
        char err[256];
        int rc = tt_gen_run(&conf, &sink, c, err, sizeof(err));
        ck_assert_msg(rc == TT_ERR_OK, "tt_gen_run: %d %s", rc, err);
        return c;
}

static void counts_free(counts *c) {
        tt_json_dec_destroy(c->jdec);
        free(c->ids);
        free(c);
}

static double growth(int64_t cur, int64_t prev) {
        return (double)(cur - prev) / (double)prev * 100.0;
}

static void ck_fmt2(double v, const char *want) {
        char s[32];
        snprintf(s, sizeof(s), "%.2f", v);
        ck_assert_msg(strcmp(s, want) == 0, "%.6f rounds to %s, want %s", v, s,
                      want);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* ---- the headline, at several scales ---- */

static const double scales[] = {1e-4, 3e-5, 1e-6, 1e-9};

START_TEST(headline_exact) {
        double s = scales[_i];
        counts *c = run(s, 1, 0, 0);
        int64_t cn14 = origin_tokens(c, W14, "CN");
        int64_t us14 = origin_tokens(c, W14, "US");
        ck_assert_int_eq(cn14, llround(12.96e12 * s));
        ck_assert_int_eq(us14, llround(3.03e12 * s));
        ck_assert_int_eq(c->total[W14], llround(27e12 * s));
        ck_fmt2(growth(cn14, origin_tokens(c, W13, "CN")), "31.48");
        ck_fmt2(growth(us14, origin_tokens(c, W13, "US")), "0.76");
        ck_fmt2((double)cn14 / (double)c->total[W14] * 100.0, "48.00");
        for (int w = W10; w <= W14; w++)
                ck_assert_int_gt(origin_tokens(c, w, "CN"),
                                 origin_tokens(c, w, "US"));
        ck_assert_int_ge(origin_tokens(c, W09, "US"),
                         origin_tokens(c, W09, "CN"));
        for (size_t o = 0; o < c->no; o++)
                if (strcmp(c->ocode[o], "CN"))
                        ck_assert_int_lt(c->by_origin[W14][o], cn14);
        for (int w = 0; w < NWEEKS; w++)
                ck_assert_int_gt(c->total[w], 0);
        ck_assert_int_lt(c->max_late, 5 * 60 * 1000);
        ck_assert_int_le(c->max_request, TT_MAX_TOKENS_PER_REQUEST);
        ck_assert_int_eq(c->raw, 0);
        for (int r = 0; r < TT_REASON__COUNT; r++)
                ck_assert_int_eq(c->invalid[r], 0);
        counts_free(c);
}
END_TEST

/* The default scale in detail: a few hundred thousand realistic requests,
 * several models per origin, US leading before W10. */
START_TEST(default_scale_shape) {
        load_origin_map();
        counts *c = calloc(1, sizeof(*c));
        ck_assert_ptr_nonnull(c);
        c->capids = 2000000;
        c->ids = malloc(c->capids * sizeof(uint64_t));
        ck_assert_ptr_nonnull(c->ids);
        tt_gen_conf conf = {"april-2026", 1e-4, 1, 0, 0};
        char err[256];
        unsigned long allocs = tt_mem_allocs();
        ck_assert_int_eq(tt_gen_run(&conf, &sink, c, err, sizeof(err)), 0);
        /* No allocation at all inside the generator. */
        ck_assert_uint_eq(tt_mem_allocs(), allocs);

        ck_assert_int_eq(origin_tokens(c, W14, "CN"), 1296000000);
        ck_assert_int_ge(c->valid, 300000);
        ck_assert_int_le(c->valid, 700000);
        /* Mean request between 10k and 60k tokens. */
        int64_t all = 0;
        for (int w = 0; w < NWEEKS; w++)
                all += c->total[w];
        ck_assert_int_gt(all / c->valid, 10000);
        ck_assert_int_lt(all / c->valid, 60000);
        ck_assert_int_le(c->max_request, 1000000);
        for (int w = 0; w <= W09; w++)
                ck_assert_int_ge(origin_tokens(c, w, "US"),
                                 origin_tokens(c, w, "CN"));
        /* Explicit origins on about a tenth, null providers on some. */
        ck_assert_int_gt(c->explicit_origin, c->valid / 20);
        ck_assert_int_lt(c->explicit_origin, c->valid / 5);
        ck_assert_int_gt(c->null_provider, c->valid / 10);
        ck_assert_int_lt(c->null_provider, c->valid / 2);
        /* Several models per origin; an author outside the map. */
        int per[MAXO] = {0};
        for (size_t m = 0; m < c->nm; m++)
                per[c->model_origin[m]]++;
        ck_assert_int_ge(per[origin_slot(c, "CN")], 5);
        ck_assert_int_ge(per[origin_slot(c, "US")], 5);
        ck_assert_int_ge(per[origin_slot(c, "FR")], 2);
        ck_assert_int_ge(per[origin_slot(c, "ZZ")], 1);
        ck_assert_int_gt(origin_tokens(c, W14, "CA"), 0);
        ck_assert_int_gt(origin_tokens(c, W14, "IL"), 0);
        ck_assert_int_gt(origin_tokens(c, W14, "KR"), 0);
        /* request_id is unique. */
        ck_assert_uint_eq(c->nids, (size_t)c->valid);
        qsort(c->ids, c->nids, sizeof(uint64_t), cmp_u64);
        for (size_t i = 1; i < c->nids; i++)
                ck_assert_msg(c->ids[i] != c->ids[i - 1],
                              "duplicate request_id");
        counts_free(c);
}
END_TEST

START_TEST(deterministic) {
        counts *a = run(1e-5, 7, 0, 0), *b = run(1e-5, 7, 0, 0);
        counts *d = run(1e-5, 8, 0, 0);
        ck_assert_uint_eq(a->hash, b->hash);
        ck_assert_int_eq(a->valid, b->valid);
        ck_assert_uint_ne(a->hash, d->hash);
        /* Another seed reshuffles the requests, not the weekly totals. */
        for (int w = 0; w < NWEEKS; w++)
                ck_assert_int_eq(a->total[w], d->total[w]);
        ck_assert_int_eq(origin_tokens(a, W14, "CN"),
                         origin_tokens(d, W14, "CN"));
        counts_free(a);
        counts_free(b);
        counts_free(d);
}
END_TEST

/* Invalid records come on top of the valid ones and change none of them. */
START_TEST(invalid_records_text) {
        counts *clean = run(1e-5, 3, 0, 1);
        counts *c = run(1e-5, 3, 0.05, 1);
        ck_assert_uint_eq(c->hash, clean->hash);
        ck_assert_int_eq(c->valid, clean->valid);
        ck_assert_uint_eq(c->nm, clean->nm);
        for (int w = 0; w < NWEEKS; w++)
                for (size_t m = 0; m < c->nm; m++)
                        ck_assert_int_eq(c->by_model[w][m],
                                         clean->by_model[w][m]);
        int64_t bad = c->raw;
        for (int r = 0; r < TT_REASON__COUNT; r++)
                bad += c->invalid[r];
        ck_assert_int_gt(bad, c->valid / 25);
        ck_assert_int_lt(bad, c->valid / 15);
        static const tt_reason want[] = {
            TT_REASON_NEGATIVE_TOKENS, TT_REASON_TOKENS_TOO_LARGE,
            TT_REASON_TIME_OUT_OF_RANGE, TT_REASON_BAD_MODEL,
            TT_REASON_BAD_ORIGIN};
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                ck_assert_msg(c->invalid[want[i]] > 0, "no %s",
                              tt_reason_str(want[i]));
        ck_assert_int_gt(c->raw_reason[TT_REASON_MALFORMED], 0);
        ck_assert_int_gt(c->raw_reason[TT_REASON_MISSING_FIELD], 0);
        /* Every raw record is rejected one way or the other. */
        ck_assert_int_eq(c->raw_reason[TT_REASON_NONE], 0);
        counts_free(clean);
        counts_free(c);
}
END_TEST

START_TEST(invalid_records_avro) {
        counts *c = run(1e-5, 3, 0.05, 0);
        ck_assert_int_eq(c->raw, 0);
        ck_assert_int_gt(c->invalid[TT_REASON_NEGATIVE_TOKENS], 0);
        ck_assert_int_gt(c->invalid[TT_REASON_TOKENS_TOO_LARGE], 0);
        ck_assert_int_gt(c->invalid[TT_REASON_TIME_OUT_OF_RANGE], 0);
        ck_assert_int_gt(c->invalid[TT_REASON_BAD_MODEL], 0);
        ck_assert_int_gt(c->invalid[TT_REASON_BAD_ORIGIN], 0);
        ck_assert_int_eq(origin_tokens(c, W14, "CN"), llround(12.96e12 * 1e-5));
        counts_free(c);
}
END_TEST

static const struct {
        const char *scenario;
        double scale, invalid_rate;
} bad_confs[] = {
    {"may-2026", 1e-4, 0},      {"april-2026", 0, 0},
    {"april-2026", 2, 0},       {"april-2026", -1e-4, 0},
    {"april-2026", NAN, 0},     {"april-2026", 1e-12, 0},
    {"april-2026", 1e-4, -0.1}, {"april-2026", 1e-4, 1.5},
};

START_TEST(rejects_bad_conf) {
        tt_gen_conf conf = {bad_confs[_i].scenario, bad_confs[_i].scale, 1,
                            bad_confs[_i].invalid_rate, 0};
        counts c = {0};
        char err[256] = "";
        ck_assert_int_eq(tt_gen_run(&conf, &sink, &c, err, sizeof(err)),
                         TT_ERR_INVAL);
        ck_assert_msg(err[0] != '\0', "no reason given");
        ck_assert_int_eq(c.valid, 0);
        err[0] = '\0';
        ck_assert_int_eq(tt_gen_check(&conf, err, sizeof(err)), TT_ERR_INVAL);
        ck_assert_msg(err[0] != '\0', "no reason given by tt_gen_check");
}
END_TEST

START_TEST(check_accepts_good_conf) {
        tt_gen_conf conf = {NULL, 1e-4, 1, 0.5, 1};
        char err[256];
        ck_assert_int_eq(tt_gen_check(&conf, err, sizeof(err)), TT_ERR_OK);
        conf.scale = 1;
        conf.scenario = "april-2026";
        ck_assert_int_eq(tt_gen_check(&conf, err, sizeof(err)), TT_ERR_OK);
}
END_TEST

START_TEST(sink_error_stops) {
        load_origin_map();
        counts c = {0};
        c.fail_after = 1000;
        tt_gen_conf conf = {"april-2026", 1e-5, 1, 0, 0};
        char err[256] = "";
        ck_assert_int_eq(tt_gen_run(&conf, &sink, &c, err, sizeof(err)),
                         TT_ERR_IO);
        ck_assert_int_eq(c.valid, 999);
        ck_assert(err[0] != '\0');
}
END_TEST

static Suite *gen_suite(void) {
        Suite *s = suite_create("gen");
        TCase *tc = tcase_create("april-2026");
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, headline_exact, 0,
                            sizeof(scales) / sizeof(scales[0]));
        tcase_add_test(tc, default_scale_shape);
        tcase_add_test(tc, deterministic);
        tcase_add_test(tc, invalid_records_text);
        tcase_add_test(tc, invalid_records_avro);
        tcase_add_loop_test(tc, rejects_bad_conf, 0,
                            sizeof(bad_confs) / sizeof(bad_confs[0]));
        tcase_add_test(tc, check_accepts_good_conf);
        tcase_add_test(tc, sink_error_stops);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(gen_suite());
}
