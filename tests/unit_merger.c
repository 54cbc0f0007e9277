/* The exactly-once data path without Kafka: partial records (encode,
 * decode, malformed input), fronts drained into a merger giving the same
 * latest rows as one engine fed every event, and a merger saved to state
 * records and restored continuing exactly as the original. */
#include <check.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "check_main.h"
#include "recorder.h"
#include "tokentally/buf.h"
#include "tokentally/engine.h"
#include "tokentally/err.h"
#include "tokentally/partials.h"
#include "tokentally/week.h"
#include "tokentally/wire.h"

#define W13 INT64_C(1774224000000)
#define WEEK TT_WEEK_MS
#define GRACE (10 * INT64_C(60000))
#define NPART 4

static tt_origin_map *map;

static void setup(void) {
        map = default_origins();
        ck_assert_ptr_nonnull(map);
}

static void teardown(void) {
        tt_origin_map_destroy(map);
}

/* ---- partial records ---------------------------------------------------- */

typedef struct seen {
        int reports, models, origins, events;
        int32_t pid[4];
        int64_t max_time[4];
        unsigned flags[4];
        int64_t tokens, requests;
        char model[64];
        int64_t offset;
        size_t klen, vlen;
} seen;

static void s_report(void *o, int32_t pid, int64_t mt, unsigned flags) {
        seen *s = o;
        s->pid[s->reports] = pid;
        s->max_time[s->reports] = mt;
        s->flags[s->reports] = flags;
        s->reports++;
}

static int s_model(void *o, int32_t w, tt_str model, const tt_cell *c) {
        seen *s = o;
        (void)w;
        s->models++;
        s->tokens += c->tokens;
        s->requests += c->requests;
        snprintf(s->model, sizeof(s->model), "%.*s", (int)model.len, model.ptr);
        return 0;
}

static int s_origin(void *o, int32_t w, tt_origin og, const tt_cell *c) {
        seen *s = o;
        (void)w;
        (void)og;
        (void)c;
        s->origins++;
        return 0;
}

static int s_event(void *o, int32_t pid, int64_t off, const void *k,
                   size_t klen, const void *v, size_t vlen) {
        seen *s = o;
        (void)k;
        (void)v;
        s->events++;
        s->pid[0] = pid;
        s->offset = off;
        s->klen = klen;
        s->vlen = vlen;
        return 0;
}

static const tt_partial_visitor sv = {s_report, s_model, s_origin, s_event};

/* Chunked: 3000 model cells and 2 reports with records of at most 4096
 * bytes. Every record decodes on its own, the reports come only in the
 * last, and together they carry every cell once. */
typedef struct chunks {
        tt_buf recs[256];
        int n;
} chunks;

static int keep_chunk(void *opaque, const void *rec, size_t len) {
        chunks *c = opaque;
        ck_assert_int_lt(c->n, 256);
        tt_buf_init(&c->recs[c->n], 1 << 20);
        ck_assert_int_eq(tt_buf_append(&c->recs[c->n], rec, len), 0);
        c->n++;
        return 0;
}

START_TEST(test_partials_chunked) {
        tt_buf b;
        tt_buf_init(&b, 1 << 20);
        chunks ch = {0};
        tt_partial_writer w;
        tt_partial_cells_begin(&w, &b);
        tt_partial_cells_chunked(&w, 4096, keep_chunk, &ch);
        tt_partial_report(&w, 3, W13 + 5, TT_PARTIAL_IDLE);
        tt_partial_report(&w, 7, W13 + 9, 0);
        tt_partial_cells_mid(&w);
        tt_cell c = {.tokens = 3,
                     .prompt_tokens = 3,
                     .requests = 1,
                     .last_time = W13 + 5,
                     .last_origin = TT_ORIGIN('C', 'N')};
        char m[32];
        for (int i = 0; i < 3000; i++) {
                snprintf(m, sizeof(m), "deepseek/model-%d", i);
                tt_partial_model(&w, 2933, (tt_str){m, strlen(m)}, &c);
        }
        ck_assert_int_eq(tt_partial_cells_end(&w), 0);
        ck_assert_int_gt(ch.n, 10);
        ck_assert_uint_eq(w.nchunks, (unsigned)ch.n);
        keep_chunk(&ch, b.data, b.len);
        seen total = {0};
        for (int i = 0; i < ch.n; i++) {
                ck_assert_uint_le(ch.recs[i].len, 4096 + (i == ch.n - 1) * 26);
                seen s = {0};
                ck_assert_int_eq(
                    tt_partial_decode(ch.recs[i].data, ch.recs[i].len, &sv, &s),
                    0);
                ck_assert_int_eq(s.reports, i == ch.n - 1 ? 2 : 0);
                total.models += s.models;
                total.tokens += s.tokens;
                if (i == ch.n - 1) {
                        ck_assert_int_eq(s.pid[1], 7);
                        ck_assert_int_eq(s.max_time[1], W13 + 9);
                        ck_assert_str_eq(s.model, "deepseek/model-2999");
                }
                tt_buf_free(&ch.recs[i]);
        }
        ck_assert_int_eq(total.models, 3000);
        ck_assert_int_eq(total.tokens, 9000);
        tt_buf_free(&b);
}
END_TEST

START_TEST(test_partials_roundtrip) {
        tt_buf b;
        tt_buf_init(&b, 1 << 20);
        tt_partial_writer w;
        tt_partial_cells_begin(&w, &b);
        tt_partial_report(&w, 3, W13 + 5, TT_PARTIAL_IDLE);
        tt_partial_report(&w, 7, INT64_MIN, TT_PARTIAL_EOF);
        tt_partial_cells_mid(&w);
        tt_cell c = {.tokens = 110,
                     .prompt_tokens = 100,
                     .completion_tokens = 10,
                     .requests = 2,
                     .last_time = W13 + 5,
                     .last_origin = TT_ORIGIN('C', 'N')};
        tt_partial_model(&w, 2933, (tt_str){"deepseek/x", 10}, &c);
        tt_partial_origin(&w, 2933, TT_ORIGIN('C', 'N'), &c);
        ck_assert_int_eq(tt_partial_cells_end(&w), 0);
        seen s = {0};
        ck_assert_int_eq(tt_partial_decode(b.data, b.len, &sv, &s), 0);
        ck_assert_int_eq(s.reports, 2);
        ck_assert_int_eq(s.pid[0], 3);
        ck_assert_int_eq(s.max_time[0], W13 + 5);
        ck_assert_uint_eq(s.flags[0], TT_PARTIAL_IDLE);
        ck_assert_int_eq(s.max_time[1], INT64_MIN);
        ck_assert_uint_eq(s.flags[1], TT_PARTIAL_EOF);
        ck_assert_int_eq(s.models, 1);
        ck_assert_int_eq(s.origins, 1);
        ck_assert_int_eq(s.tokens, 110);
        ck_assert_int_eq(s.requests, 2);
        ck_assert_str_eq(s.model, "deepseek/x");
        /* Every truncation is rejected whole: no call reaches the
         * visitor, so a bad record never half-applies. */
        for (size_t n = 0; n < b.len; n++) {
                seen t = {0};
                ck_assert_int_eq(tt_partial_decode(b.data, n, &sv, &t),
                                 TT_ERR_FORMAT);
                ck_assert_int_eq(t.reports + t.models + t.origins, 0);
        }
        b.data[0] = 'X';
        ck_assert_int_eq(tt_partial_decode(b.data, b.len, &sv, &s),
                         TT_ERR_FORMAT);
        /* A forwarded message, with a NULL key. */
        ck_assert_int_eq(
            tt_partial_event(&b, 5, 123456789012, NULL, 0, "{\"a\":1}", 7), 0);
        seen e = {0};
        ck_assert_int_eq(tt_partial_decode(b.data, b.len, &sv, &e), 0);
        ck_assert_int_eq(e.events, 1);
        ck_assert_int_eq(e.pid[0], 5);
        ck_assert_int_eq(e.offset, 123456789012);
        ck_assert_uint_eq(e.klen, 0);
        ck_assert_uint_eq(e.vlen, 7);
        tt_buf_free(&b);
}
END_TEST

/* ---- fronts and a merger ------------------------------------------------ */

static tt_engine *mk(recorder *rc, uint32_t shards, bool merger) {
        tt_engine_conf c;
        tt_engine_conf_defaults(&c);
        c.origins = map;
        c.max_future_ms = -1;
        c.idle_timeout_ms = 0;
        c.nshards = shards;
        (void)merger;
        char err[256];
        tt_engine *e = tt_engine_new(&c, &recorder_sink, rc, err, sizeof(err));
        ck_assert_msg(e != NULL, "%s", err);
        return e;
}

static uint64_t rng;
static uint64_t next_rand(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static const char *models[] = {"deepseek/a",  "qwen/b",      "openai/c",
                               "anthropic/d", "mistralai/e", "unknown/f"};

/* The i-th event of the run: time advances ~6 weeks over n events with up
 * to 2 days of disorder, so many land in closed weeks. */
static tt_event nth(int i, int n, int *pid) {
        int m = (int)(next_rand() % 6);
        int64_t t = W13 + (int64_t)i * (6 * WEEK / n) -
                    (int64_t)(next_rand() % (2 * 86400000));
        *pid = (int)(next_rand() % NPART);
        return mkev(models[m], NULL, t, (int64_t)(next_rand() % 1000), 7);
}

typedef struct pipe {
        tt_engine *front, *merger;
        tt_buf b;
        int64_t bound;
        uint64_t forwarded;
} pipe_t;

static int m_model(void *o, int32_t w, tt_str model, const tt_cell *c) {
        return tt_engine_merge_model(((pipe_t *)o)->merger, w, model, c);
}
static int m_origin(void *o, int32_t w, tt_origin og, const tt_cell *c) {
        return tt_engine_merge_origin(((pipe_t *)o)->merger, w, og, c);
}
static void m_report(void *o, int32_t pid, int64_t mt, unsigned flags) {
        tt_engine_partition_report(((pipe_t *)o)->merger, pid, mt,
                                   flags & TT_PARTIAL_IDLE,
                                   flags & TT_PARTIAL_EOF);
}
static void d_model(void *o, int32_t w, tt_str model, const tt_cell *c) {
        tt_partial_model(o, w, model, c);
}
static void d_origin(void *o, int32_t w, tt_origin og, const tt_cell *c) {
        tt_partial_origin(o, w, og, c);
}

/* One transaction of the stage: the front's counts and watermarks go
 * through a partial record into the merger, which ticks; the bound for
 * forwarding is what the stage computes (update_bound). */
static void cycle(pipe_t *p) {
        tt_partial_writer w;
        tt_partial_cells_begin(&w, &p->b);
        int64_t lo = INT64_MAX;
        for (int pid = 0; pid < NPART; pid++) {
                int64_t mt;
                bool idle;
                tt_engine_partition_state(p->front, pid, 0, &mt, &idle);
                tt_partial_report(&w, pid, mt, 0);
                if (mt < lo)
                        lo = mt;
        }
        tt_partial_cells_mid(&w);
        static const tt_engine_cells_visitor dv = {d_model, d_origin};
        tt_engine_drain(p->front, &dv, &w);
        ck_assert_int_eq(tt_partial_cells_end(&w), 0);
        static const tt_partial_visitor mv = {m_report, m_model, m_origin,
                                              NULL};
        ck_assert_int_eq(tt_partial_decode(p->b.data, p->b.len, &mv, p), 0);
        ck_assert_int_eq(tt_engine_tick(p->merger, 0), 0);
        int64_t mw = tt_engine_watermark(p->merger);
        p->bound = lo > mw ? lo : mw;
}

static void front_offer(pipe_t *p, int pid, const tt_event *ev) {
        char d[256];
        int32_t week;
        bool late;
        ck_assert_int_eq(
            tt_engine_check(p->front, ev, 0, &week, &late, d, sizeof(d)),
            TT_REASON_NONE);
        if (tt_week_start(week + 1) + GRACE <= p->bound) {
                p->forwarded++;
                ck_assert_int_eq(
                    tt_engine_offer_forwarded(p->merger, ev, 0, d, sizeof(d)),
                    TT_REASON_NONE);
        } else {
                ck_assert_int_eq(
                    tt_engine_count(p->front, (uint32_t)pid % 2, week, ev), 0);
        }
        tt_engine_seen(p->front, pid, ev->event_time_ms, 0);
}

static void assert_same_latest(const recorder *ref, const recorder *got) {
        size_t checked = 0;
        for (size_t i = 0; i < ref->nrows; i++) {
                const rec_row *a = &ref->rows[i];
                const rec_row *want =
                    latest(ref, a->r.week, a->r.dimension, a->key);
                if (want != a)
                        continue;
                const rec_row *b =
                    latest(got, a->r.week, a->r.dimension, a->key);
                ck_assert_msg(b != NULL, "%s %s missing", a->r.week, a->key);
                ck_assert_int_eq(b->r.tokens, a->r.tokens);
                ck_assert_int_eq(b->r.requests, a->r.requests);
                ck_assert_int_eq(b->r.has_prev, a->r.has_prev);
                ck_assert_int_eq(b->r.prev_tokens, a->r.prev_tokens);
                ck_assert_int_eq(b->r.rank, a->r.rank);
                ck_assert_double_eq_tol(b->r.share_pct, a->r.share_pct, 1e-9);
                ck_assert_str_eq(b->origin, a->origin);
                checked++;
        }
        ck_assert_uint_gt(checked, 50);
}

START_TEST(test_fronts_merger_equal_one_engine) {
        enum { N = 20000 };
        recorder ref = {0}, got = {0};
        tt_engine *one = mk(&ref, 1, false);
        pipe_t p = {mk(NULL, 2, false), mk(&got, 1, true), {0}, INT64_MIN, 0};
        tt_buf_init(&p.b, 16 << 20);
        for (int pid = 0; pid < NPART; pid++) {
                tt_engine_partition_add(p.front, pid, 0);
                tt_engine_partition_add(p.merger, pid, 0);
                tt_engine_partition_add(one, pid, 0);
        }
        rng = 4242;
        for (int i = 0; i < N; i++) {
                int pid;
                tt_event ev = nth(i, N, &pid);
                char d[256];
                ck_assert_int_eq(
                    tt_engine_offer(one, pid, &ev, 0, d, sizeof(d)),
                    TT_REASON_NONE);
                front_offer(&p, pid, &ev);
                if (i % 700 == 699)
                        cycle(&p);
        }
        cycle(&p);
        tt_engine_close_all(one, 0);
        tt_engine_close_all(p.merger, 0);
        size_t revised = 0;
        for (size_t i = 0; i < got.nrows; i++)
                revised += got.rows[i].r.status == TT_STATUS_REVISED;
        ck_assert_uint_gt(p.forwarded, 100); /* lateness is exercised */
        ck_assert_uint_gt(revised, 50);
        assert_same_latest(&ref, &got);
        tt_engine_destroy(one);
        tt_engine_destroy(p.front);
        tt_engine_destroy(p.merger);
        tt_buf_free(&p.b);
        recorder_free(&ref);
        recorder_free(&got);
}
END_TEST

/* ---- save and restore --------------------------------------------------- */

typedef struct saved {
        tt_buf rec[1024];
        size_t n;
} saved;

static int put(void *o, int32_t week, uint32_t part, const void *rec,
               size_t len) {
        saved *s = o;
        (void)week;
        (void)part;
        ck_assert_uint_lt(s->n, 1024);
        tt_buf_init(&s->rec[s->n], 64 << 20);
        return tt_buf_append(&s->rec[s->n++], rec, len);
}

START_TEST(test_restore_continues_identically) {
        enum { N = 12000 };
        recorder ra = {0}, rb = {0};
        pipe_t a = {mk(NULL, 2, false), mk(&ra, 1, true), {0}, INT64_MIN, 0};
        tt_buf_init(&a.b, 16 << 20);
        for (int pid = 0; pid < NPART; pid++) {
                tt_engine_partition_add(a.front, pid, 0);
                tt_engine_partition_add(a.merger, pid, 0);
        }
        rng = 777;
        int i = 0;
        for (; i < N / 2; i++) {
                int pid;
                tt_event ev = nth(i, N, &pid);
                front_offer(&a, pid, &ev);
                if (i % 500 == 499)
                        cycle(&a);
        }
        cycle(&a);
        /* Save, restore into a fresh merger, and run both on. */
        saved s = {0};
        ck_assert_int_eq(tt_engine_save(a.merger, 4u << 20, put, &s), 0);
        ck_assert_uint_gt(s.n, 3);
        tt_engine *b = mk(&rb, 1, true);
        char err[256];
        for (size_t k = s.n; k-- > 0;) /* any order */
                ck_assert_msg(tt_engine_load(b, s.rec[k].data, s.rec[k].len,
                                             err, sizeof(err)) == 0,
                              "%s", err);
        /* Restored state saves to the same bytes. */
        saved s2 = {0};
        ck_assert_int_eq(tt_engine_save(b, 4u << 20, put, &s2), 0);
        ck_assert_uint_eq(s2.n, s.n);
        for (size_t k = 0; k < s.n; k++) {
                bool found = false;
                for (size_t j = 0; j < s2.n && !found; j++)
                        found = s2.rec[j].len == s.rec[k].len &&
                                !memcmp(s2.rec[j].data, s.rec[k].data,
                                        s.rec[k].len);
                ck_assert_msg(found, "state record %zu differs after restore",
                              k);
        }
        /* The same state in parts of about 64 bytes: more records, each
         * self-contained and small; loaded in order into a fresh merger,
         * it saves whole to the very same bytes. */
        saved pt = {0}, s3 = {0};
        ck_assert_int_eq(tt_engine_save(a.merger, 64, put, &pt), 0);
        ck_assert_uint_gt(pt.n, s.n + 4);
        recorder rc3 = {0};
        tt_engine *c3 = mk(&rc3, 1, true);
        for (size_t k = 0; k < pt.n; k++) {
                ck_assert_uint_le(pt.rec[k].len, 64 + 600);
                ck_assert_msg(tt_engine_load(c3, pt.rec[k].data, pt.rec[k].len,
                                             err, sizeof(err)) == 0,
                              "%s", err);
        }
        ck_assert_int_eq(tt_engine_save(c3, 4u << 20, put, &s3), 0);
        ck_assert_uint_eq(s3.n, s.n);
        for (size_t k = 0; k < s.n; k++)
                ck_assert(s3.rec[k].len == s.rec[k].len &&
                          !memcmp(s3.rec[k].data, s.rec[k].data, s.rec[k].len));
        for (size_t k = 0; k < pt.n; k++)
                tt_buf_free(&pt.rec[k]);
        for (size_t k = 0; k < s3.n; k++)
                tt_buf_free(&s3.rec[k]);
        tt_engine_destroy(c3);
        recorder_free(&rc3);
        size_t before = ra.nrows;
        tt_engine *orig = a.merger;
        int64_t bound_at_save = a.bound;
        uint64_t seed = rng;
        /* Second half through a (original merger)... */
        for (int j = i; j < N; j++) {
                int pid;
                tt_event ev = nth(j, N, &pid);
                front_offer(&a, pid, &ev);
                if (j % 500 == 499)
                        cycle(&a);
        }
        cycle(&a);
        tt_engine_close_all(orig, 0);
        /* ...and the same events through b (a fresh front with the same
         * watermarks, as a restarted stage restores them). */
        tt_engine *front_b = mk(NULL, 2, false);
        for (int pid = 0; pid < NPART; pid++)
                tt_engine_partition_add(front_b, pid, 0);
        pipe_t pb = {front_b, b, {0}, bound_at_save, 0};
        tt_buf_init(&pb.b, 16 << 20);
        /* The watermarks the original front had at the save (a restarted
         * front gets them from the committed offsets' metadata). */
        rng = 777;
        for (int j = 0; j < N / 2; j++) {
                int pid;
                tt_event ev = nth(j, N, &pid);
                tt_engine_seen(front_b, pid, ev.event_time_ms, 0);
        }
        rng = seed;
        for (int j = i; j < N; j++) {
                int pid;
                tt_event ev = nth(j, N, &pid);
                front_offer(&pb, pid, &ev);
                if (j % 500 == 499)
                        cycle(&pb);
        }
        cycle(&pb);
        tt_engine_close_all(b, 0);
        /* Every output after the save is the same, in the same order. */
        ck_assert_uint_eq(rb.nrows, ra.nrows - before);
        for (size_t k = 0; k < rb.nrows; k++) {
                const rec_row *x = &ra.rows[before + k], *y = &rb.rows[k];
                ck_assert_str_eq(x->r.week, y->r.week);
                ck_assert_str_eq(x->key, y->key);
                ck_assert_int_eq(x->r.tokens, y->r.tokens);
                ck_assert_int_eq(x->r.status, y->r.status);
                ck_assert_int_eq(x->r.revision, y->r.revision);
                ck_assert_int_eq(x->r.rank, y->r.rank);
        }
        for (size_t k = 0; k < s.n; k++)
                tt_buf_free(&s.rec[k]);
        for (size_t k = 0; k < s2.n; k++)
                tt_buf_free(&s2.rec[k]);
        tt_engine_destroy(a.front);
        tt_engine_destroy(orig);
        tt_engine_destroy(front_b);
        tt_engine_destroy(b);
        tt_buf_free(&a.b);
        tt_buf_free(&pb.b);
        recorder_free(&ra);
        recorder_free(&rb);
}
END_TEST

START_TEST(test_load_rejects_garbage) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, true);
        char err[256];
        ck_assert_int_eq(tt_engine_load(e, "W\2", 2, err, sizeof(err)),
                         TT_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(err, "version 2"));
        ck_assert_int_eq(tt_engine_load(e, "W\1\0", 3, err, sizeof(err)),
                         TT_ERR_FORMAT);
        ck_assert_int_eq(tt_engine_load(e, "Q\1", 2, err, sizeof(err)),
                         TT_ERR_FORMAT);
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

/* ---- hostile internal records ----------------------------------------- */

/* One cells record with one origin cell, written field by field so that
 * any value can be put in (the writer API would not make a bad one). */
static void origin_record(tt_buf *b, int32_t week, uint32_t code,
                          const tt_cell *c) {
        tt_buf_reset(b);
        tt_put_u8(b, 'C');
        tt_put_u8(b, 1);
        tt_put_u32(b, 0); /* no reports */
        tt_put_u32(b, 1);
        tt_put_u8(b, 'o');
        tt_put_u32(b, (uint32_t)week);
        tt_put_u32(b, code);
        tt_put_cell(b, c);
}

static const tt_cell good_cell = {.tokens = 110,
                                  .prompt_tokens = 100,
                                  .completion_tokens = 10,
                                  .requests = 2,
                                  .last_time = W13 + 5,
                                  .last_origin = TT_ORIGIN('C', 'N')};

/* Each entry broke something before the fix: an origin code outside
 * AA..ZZ indexed far outside the origin array (heap read and write in
 * tt_cell_merge), counts near INT64_MAX overflowed in merges and growth,
 * week INT32_MIN underflowed in view_prev. Now each is refused whole with
 * a reason naming the field, and the visitor is never called. */
static const struct {
        int32_t week;
        uint32_t code;
        tt_cell c;
        const char *why;
} bad_partials[] = {
    {2933,
     0xFFFF,
     {110, 100, 10, 2, W13 + 5, TT_ORIGIN('C', 'N')},
     "origin code"},
    {2933,
     TT_ORIGIN('C', 'N') | 0x10000,
     {110, 100, 10, 2, W13 + 5, 0x434e},
     "origin code"},
    {2933,
     TT_ORIGIN('c', 'n'),
     {110, 100, 10, 2, W13 + 5, 0x434e},
     "origin code"},
    {INT32_MIN,
     TT_ORIGIN('C', 'N'),
     {110, 100, 10, 2, W13 + 5, 0x434e},
     "week"},
    {2933,
     TT_ORIGIN('C', 'N'),
     {INT64_MAX, INT64_MAX, 0, INT64_MAX, W13, 0x434e},
     "out of [0, 2^62]"},
    {2933,
     TT_ORIGIN('C', 'N'),
     {-5, -5, 0, 1, W13, 0x434e},
     "out of [0, 2^62]"},
    {2933,
     TT_ORIGIN('C', 'N'),
     {110, 100, 11, 2, W13 + 5, 0x434e},
     "!= prompt"},
    {2933,
     TT_ORIGIN('C', 'N'),
     {30000000, 20000000, 10000000, 2, W13, 0x434e},
     "requests"},
    {2933,
     TT_ORIGIN('C', 'N'),
     {110, 100, 10, 0, W13 + 5, 0x434e},
     "no requests"},
    {2933,
     TT_ORIGIN('C', 'N'),
     {110, 100, 10, 2, 0, 0x434e},
     "latest event time"},
    {2933,
     TT_ORIGIN('C', 'N'),
     {110, 100, 10, 2, W13, 0x1234},
     "latest event time"},
};

START_TEST(test_partials_refuse_bad_fields) {
        tt_buf b;
        tt_buf_init(&b, 1 << 20);
        origin_record(&b, bad_partials[_i].week, bad_partials[_i].code,
                      &bad_partials[_i].c);
        seen s = {0};
        ck_assert_int_eq(tt_partial_decode(b.data, b.len, &sv, &s),
                         TT_ERR_FORMAT);
        ck_assert_int_eq(s.reports + s.models + s.origins + s.events, 0);
        char why[256] = "";
        ck_assert_int_eq(tt_partial_check(b.data, b.len, why, sizeof(why)),
                         TT_ERR_FORMAT);
        ck_assert_msg(strstr(why, bad_partials[_i].why), "why: %s", why);
        /* The same record with good fields passes: the test isolates the
         * one field. */
        origin_record(&b, 2933, TT_ORIGIN('C', 'N'), &good_cell);
        ck_assert_int_eq(tt_partial_check(b.data, b.len, why, sizeof(why)), 0);
        tt_buf_free(&b);
}
END_TEST

START_TEST(test_partials_refuse_bad_models_and_reports) {
        tt_buf b;
        tt_buf_init(&b, 1 << 20);
        char why[256];
        static const char *bad_models[] = {"", "noslash", "a/\xff\xfe"};
        for (size_t i = 0; i < 3; i++) {
                tt_partial_writer w;
                tt_partial_cells_begin(&w, &b);
                tt_partial_cells_mid(&w);
                tt_partial_model(&w, 2933,
                                 (tt_str){bad_models[i], strlen(bad_models[i])},
                                 &good_cell);
                ck_assert_int_eq(tt_partial_cells_end(&w), 0);
                ck_assert_int_eq(
                    tt_partial_check(b.data, b.len, why, sizeof(why)),
                    TT_ERR_FORMAT);
                ck_assert_ptr_nonnull(strstr(why, "model"));
        }
        /* A report with a negative partition, or a watermark in 2200. */
        int64_t times[] = {W13, INT64_C(7258118400000)};
        int32_t pids[] = {-1, 0};
        for (size_t i = 0; i < 2; i++) {
                tt_partial_writer w;
                tt_partial_cells_begin(&w, &b);
                tt_partial_report(&w, pids[i], times[i], 0);
                tt_partial_cells_mid(&w);
                ck_assert_int_eq(tt_partial_cells_end(&w), 0);
                seen s = {0};
                ck_assert_int_eq(tt_partial_decode(b.data, b.len, &sv, &s),
                                 TT_ERR_FORMAT);
                ck_assert_int_eq(s.reports, 0);
        }
        /* An event record with a negative offset. */
        ck_assert_int_eq(tt_partial_event(&b, 0, -1, NULL, 0, "{}", 2), 0);
        ck_assert_int_eq(tt_partial_check(b.data, b.len, why, sizeof(why)),
                         TT_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(why, "offset -1"));
        tt_buf_free(&b);
}
END_TEST

/* Cells each within bounds whose sum passes TT_COUNT_MAX: the merge is
 * refused with TT_ERR_RANGE and the count kept, never wrapped. */
START_TEST(test_merge_overflow_refused) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, true);
        tt_engine_partition_add(e, 0, 0);
        int64_t big = TT_COUNT_MAX - 5;
        tt_cell c = {.tokens = big,
                     .prompt_tokens = big,
                     .completion_tokens = 0,
                     .requests = big / TT_MAX_TOKENS_PER_REQUEST + 1,
                     .last_time = W13 + 5,
                     .last_origin = TT_ORIGIN('C', 'N')};
        tt_buf b;
        tt_buf_init(&b, 1 << 20);
        origin_record(&b, 2933, TT_ORIGIN('C', 'N'), &c);
        ck_assert_int_eq(tt_partial_check(b.data, b.len, NULL, 0), 0);
        ck_assert_int_eq(
            tt_engine_merge_origin(e, 2933, TT_ORIGIN('C', 'N'), &c), 0);
        ck_assert_int_eq(
            tt_engine_merge_origin(e, 2933, TT_ORIGIN('C', 'N'), &c),
            TT_ERR_RANGE);
        ck_assert_int_eq(tt_engine_merge_model(e, 2933, TT_STR_LIT("a/b"), &c),
                         0);
        ck_assert_int_eq(tt_engine_merge_model(e, 2933, TT_STR_LIT("a/b"), &c),
                         TT_ERR_RANGE);
        tt_engine_partition_report(e, 0, W13 + 2 * WEEK, false, true);
        ck_assert_int_eq(tt_engine_close_all(e, 0), 0);
        const rec_row *r = latest(&rc, "2026-W13", TT_DIM_ORIGIN, "CN");
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->r.tokens, big);
        tt_buf_free(&b);
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

/* A week record holding one origin cell with the given code and week. */
static void week_record(tt_buf *b, uint32_t week, uint32_t code,
                        const tt_cell *c) {
        tt_buf_reset(b);
        tt_put_u8(b, 'W');
        tt_put_u8(b, 1);
        tt_put_u32(b, week);
        tt_put_u32(b, 0); /* no models */
        tt_put_u32(b, 1);
        tt_put_u32(b, code);
        tt_put_cell(b, c);
        tt_put_u8(b, 0); /* no view */
}

START_TEST(test_load_refuses_bad_fields) {
        recorder rc = {0};
        tt_engine *e = mk(&rc, 1, true);
        tt_buf b;
        tt_buf_init(&b, 1 << 20);
        char err[512];
        /* Before the fix this wrote 44 bytes far past the origin array. */
        week_record(&b, 2933, 0xFFFF, &good_cell);
        ck_assert_int_eq(tt_engine_load(e, b.data, b.len, err, sizeof(err)),
                         TT_ERR_FORMAT);
        ck_assert_msg(strstr(err, "code 0xffff is not AA..ZZ"), "%s", err);
        week_record(&b, (uint32_t)INT32_MIN, TT_ORIGIN('C', 'N'), &good_cell);
        ck_assert_int_eq(tt_engine_load(e, b.data, b.len, err, sizeof(err)),
                         TT_ERR_FORMAT);
        ck_assert_msg(strstr(err, "outside 2000-2099"), "%s", err);
        tt_cell neg = good_cell;
        neg.tokens = INT64_MIN;
        week_record(&b, 2933, TT_ORIGIN('C', 'N'), &neg);
        ck_assert_int_eq(tt_engine_load(e, b.data, b.len, err, sizeof(err)),
                         TT_ERR_FORMAT);
        /* A meta record with a watermark past 2100 or a partition past
         * max_partitions. */
        tt_buf_reset(&b);
        tt_put_u8(&b, 'M');
        tt_put_u8(&b, 1);
        tt_put_i64(&b, INT64_MAX);
        tt_put_u32(&b, (uint32_t)INT32_MIN);
        tt_put_u32(&b, 0);
        ck_assert_int_eq(tt_engine_load(e, b.data, b.len, err, sizeof(err)),
                         TT_ERR_FORMAT);
        ck_assert_msg(strstr(err, "meta: watermark"), "%s", err);
        tt_buf_reset(&b);
        tt_put_u8(&b, 'M');
        tt_put_u8(&b, 1);
        tt_put_i64(&b, W13);
        tt_put_u32(&b, 2932);
        tt_put_u32(&b, 1);
        tt_put_u32(&b, 1u << 30);
        tt_put_i64(&b, W13);
        tt_put_u8(&b, 0);
        ck_assert_int_eq(tt_engine_load(e, b.data, b.len, err, sizeof(err)),
                         TT_ERR_FORMAT);
        /* Nothing was applied: the engine has no week and no watermark. */
        ck_assert_int_eq(tt_engine_watermark(e), INT64_MIN);
        tt_engine_stats st;
        tt_engine_get_stats(e, &st);
        ck_assert_int_eq(st.open_weeks, 0);
        /* The good record loads. */
        week_record(&b, 2933, TT_ORIGIN('C', 'N'), &good_cell);
        ck_assert_msg(tt_engine_load(e, b.data, b.len, err, sizeof(err)) == 0,
                      "%s", err);
        tt_buf_free(&b);
        tt_engine_destroy(e);
        recorder_free(&rc);
}
END_TEST

int main(void) {
        Suite *s = suite_create("merger");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_partials_roundtrip);
        tcase_add_test(tc, test_partials_chunked);
        tcase_add_test(tc, test_fronts_merger_equal_one_engine);
        tcase_add_test(tc, test_restore_continues_identically);
        tcase_add_test(tc, test_load_rejects_garbage);
        tcase_add_loop_test(tc, test_partials_refuse_bad_fields, 0,
                            sizeof(bad_partials) / sizeof(bad_partials[0]));
        tcase_add_test(tc, test_partials_refuse_bad_models_and_reports);
        tcase_add_test(tc, test_merge_overflow_refused);
        tcase_add_test(tc, test_load_refuses_bad_fields);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
