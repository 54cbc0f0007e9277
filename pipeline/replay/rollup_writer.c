/* See rollup_writer.h. One producer (the engine's thread), one consumer
 * (the writer thread), chunks handed over under one mutex: a handover per
 * ~5,000 rows, so the lock is nowhere near the profile.
 *
 * A row goes into a chunk in a compact form, not as a tt_rollup copy (160
 * bytes and the strings): a closed week of 10^5 models is pushed at once,
 * and with 160-byte rows the four 256 KiB chunks held a quarter of it, so
 * the engine's thread waited on the encoder instead of counting the next
 * week. The compact form is ~30 bytes and the key, and the pool is a byte
 * budget of chunks allocated on demand: a 10^5-row week (~5 MiB) is queued
 * without a wait, a 10^6-row one still waits within the budget. */
#include "tokentally/rollup_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include "tokentally/buf.h"
#include "tokentally/err.h"
#include "tokentally/json_out.h"
#include "tokentally/mem.h"
#include "tokentally/outdir.h"

#define CHUNK_DEFAULT (1u << 18) /* rows' bytes handed over at a time */
/* All chunks together, at most. A 10^5-row week of hc.jsonl is ~5.1 MB of
 * compact rows (~51 bytes a row) and fits whole, so its rows are queued
 * without waiting for the writer; the budget is also what a writer thread
 * starved of CPU can add to the peak RSS. hc.jsonl on 2 shared cores under
 * load 4.5-6: 16 MiB peaked at up to ~98,400 KiB, 8 MiB at up to ~98,900
 * once, 6 MiB at up to ~96,600, 4 MiB ~95,700 with the odd wait. */
#define BUDGET_DEFAULT (6u << 20)
#define OUT_FLUSH (1u << 18)
/* Key and origin bytes of one row; keys are bounded far below. */
#define ROW_MAX (1u << 17)
/* A row's bytes besides its strings, at most: 3 header bytes, the week
 * context (1 + 16 + 8 + 8), two lengths and seven integers as varints (10
 * bytes each at most), two doubles. */
#define ROW_FIXED_MAX 192
/* Idle chunks kept for reuse when the writer has caught up; more go back to
 * the allocator, so a run's chunks do not stay at the budget after one big
 * week. */
#define KEEP_FREE 4

/* A compact row: flags, dimension, status, [context], varint key length,
 * [varint origin length], zigzag varints tokens, prompt_tokens,
 * completion_tokens, requests, [prev_tokens], rank, revision; the raw share
 * double, [growth double]; key bytes, [origin bytes]. The context (week
 * length and bytes, week_start, emitted_at) is written when it differs
 * from the previous row's in the same chunk, so a week's rows carry it
 * once a chunk. */
enum {
        F_CTX = 1,
        F_ORIGIN = 2,
        F_PREV = 4,
        F_GROWTH = 8,
};

struct tt_rollup_writer {
        FILE *f;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        size_t chunk; /* a chunk is handed over at this many bytes */
        int nslots;   /* budget / chunk */
        size_t cap;   /* a chunk's mapping: chunk + ROW_MAX + ROW_FIXED_MAX */
        struct chunk {
                uint8_t *data; /* NULL: not mapped */
                size_t len;
        } * chunks;
        int *queue; /* full chunks, in order: queue[head..head+n) */
        int head, nqueued;
        int *idle, nidle; /* slots with a chunk allocated, unused */
        int *bare, nbare; /* slots with no memory */
        int filling;      /* the chunk being filled, -1 if none */
        bool closing;
        int err;                 /* the writer's first error, sticky */
        int err_errno;           /* errno of a TT_ERR_IO */
        tt_buf out;              /* the writer's JSON, flushed at OUT_FLUSH */
        tt_writeback *wb;        /* f's early sync, or NULL */
        tt_json_rollup_ctx jctx; /* the text a week's rows share */
        /* The producer's last context in the filling chunk. */
        bool ctx_set;
        char ctx_week[16];
        int64_t ctx_start, ctx_emitted;
};

static uint8_t *put_uv(uint8_t *p, uint64_t v) {
        while (v >= 0x80) {
                *p++ = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t)v;
        return p;
}

static uint8_t *put_zz(uint8_t *p, int64_t v) {
        uint64_t u = (uint64_t)v;
        return put_uv(p, (u << 1) ^ ((uint64_t)0 - (u >> 63)));
}

static const uint8_t *get_uv(const uint8_t *p, uint64_t *v) {
        uint64_t x = 0;
        for (int shift = 0;; shift += 7) {
                uint8_t b = *p++;
                x |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80))
                        break;
        }
        *v = x;
        return p;
}

static const uint8_t *get_zz(const uint8_t *p, int64_t *v) {
        uint64_t u;
        p = get_uv(p, &u);
        *v = (int64_t)((u >> 1) ^ ((uint64_t)0 - (u & 1)));
        return p;
}

static const uint8_t *get_i64(const uint8_t *p, int64_t *v) {
        memcpy(v, p, sizeof(*v));
        return p + sizeof(*v);
}

static const uint8_t *get_double(const uint8_t *p, double *v) {
        memcpy(v, p, sizeof(*v));
        return p + sizeof(*v);
}

/* An enum as one byte; anything outside 0..254 is 255, which reads back as
 * an unknown value and so writes the same "UNKNOWN". */
static uint8_t enum_byte(int v) {
        return v >= 0 && v < 255 ? (uint8_t)v : 255;
}

static int write_out(tt_rollup_writer *w) {
        if (w->out.len &&
            fwrite(w->out.data, 1, w->out.len, w->f) != w->out.len)
                return TT_ERR_IO;
        tt_writeback_wrote(w->wb, w->f, w->out.len);
        tt_buf_reset(&w->out);
        return TT_ERR_OK;
}

static int encode_chunk(tt_rollup_writer *w, const struct chunk *c) {
        const uint8_t *p = c->data, *end = c->data + c->len;
        /* Filled field by field below; the week only when a context comes
         * (every chunk starts with one). */
        tt_rollup r;
        memset(&r, 0, sizeof(r));
        while (p < end) {
                uint8_t flags = p[0];
                r.dimension = (tt_dim)p[1];
                r.status = (tt_status)p[2];
                p += 3;
                if (flags & F_CTX) {
                        size_t wlen = *p++;
                        memset(r.week, 0, sizeof(r.week));
                        memcpy(r.week, p, wlen);
                        p += wlen;
                        p = get_i64(p, &r.week_start_ms);
                        p = get_i64(p, &r.emitted_at_ms);
                }
                uint64_t klen, olen = 0;
                p = get_uv(p, &klen);
                if (flags & F_ORIGIN)
                        p = get_uv(p, &olen);
                p = get_zz(p, &r.tokens);
                p = get_zz(p, &r.prompt_tokens);
                p = get_zz(p, &r.completion_tokens);
                p = get_zz(p, &r.requests);
                r.has_prev = flags & F_PREV;
                r.prev_tokens = 0;
                if (r.has_prev)
                        p = get_zz(p, &r.prev_tokens);
                int64_t v;
                p = get_zz(p, &v);
                r.rank = (int32_t)v;
                p = get_zz(p, &v);
                r.revision = (int32_t)v;
                p = get_double(p, &r.share_pct);
                r.has_growth = flags & F_GROWTH;
                r.wow_growth_pct = 0;
                if (r.has_growth)
                        p = get_double(p, &r.wow_growth_pct);
                r.key = (tt_str){(const char *)p, (size_t)klen};
                p += klen;
                r.origin = (flags & F_ORIGIN)
                               ? (tt_str){(const char *)p, (size_t)olen}
                               : (tt_str){NULL, 0};
                p += olen;
                int err = tt_json_rollup_in(&w->out, &r, &w->jctx);
                if (!err && w->out.len >= OUT_FLUSH)
                        err = write_out(w);
                if (err)
                        return err;
        }
        return TT_ERR_OK;
}

/* Chunks are mappings of their own, not heap blocks: one given back is
 * gone from the process at once, and their coming and going does not move
 * the allocator's thresholds or leave holes in the heap the engine uses. A
 * mapping costs only the pages written. */
static int chunk_map(tt_rollup_writer *w, struct chunk *c) {
        void *p = mmap(NULL, w->cap, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return TT_ERR_NOMEM;
        c->data = p;
        c->len = 0;
        return TT_ERR_OK;
}

static void chunk_unmap(tt_rollup_writer *w, struct chunk *c) {
        if (c->data)
                munmap(c->data, w->cap);
        c->data = NULL;
        c->len = 0;
}

static void *writer_main(void *arg) {
        tt_rollup_writer *w = arg;
        pthread_mutex_lock(&w->mu);
        for (;;) {
                while (!w->nqueued && !w->closing)
                        pthread_cond_wait(&w->cond, &w->mu);
                if (!w->nqueued)
                        break; /* closing and drained */
                int c = w->queue[w->head];
                w->head = (w->head + 1) % w->nslots;
                w->nqueued--;
                bool skip = w->err != TT_ERR_OK;
                pthread_mutex_unlock(&w->mu);
                int err = skip ? TT_ERR_OK : encode_chunk(w, &w->chunks[c]);
                int saved = errno;
                pthread_mutex_lock(&w->mu);
                if (err && !w->err) {
                        w->err = err;
                        w->err_errno = saved;
                }
                w->chunks[c].len = 0;
                if (w->nidle < KEEP_FREE || w->nqueued) {
                        w->idle[w->nidle++] = c;
                } else {
                        chunk_unmap(w, &w->chunks[c]);
                        w->bare[w->nbare++] = c;
                }
                pthread_cond_broadcast(&w->cond);
        }
        pthread_mutex_unlock(&w->mu);
        if (!w->err) {
                int err = write_out(w);
                if (err) {
                        w->err = err;
                        w->err_errno = errno;
                }
        }
        return NULL;
}

static void free_slots(tt_rollup_writer *w) {
        if (w->chunks)
                for (int i = 0; i < w->nslots; i++)
                        chunk_unmap(w, &w->chunks[i]);
        tt_free(w->chunks);
        tt_free(w->queue);
        tt_free(w->idle);
        tt_free(w->bare);
}

tt_rollup_writer *tt_rollup_writer_new_sized(FILE *f, tt_writeback *wb,
                                             size_t chunk_bytes,
                                             size_t budget_bytes, char *errstr,
                                             size_t errsize) {
        tt_rollup_writer *w = tt_calloc(1, sizeof(*w));
        if (!w) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        w->f = f;
        w->wb = wb;
        w->filling = -1;
        w->chunk = chunk_bytes ? chunk_bytes : 1;
        /* One chunk filling and one being written, at least. */
        size_t n = budget_bytes / w->chunk;
        w->nslots = n < 2 ? 2 : n > 1u << 20 ? 1 << 20 : (int)n;
        w->chunks = tt_calloc((size_t)w->nslots, sizeof(*w->chunks));
        w->queue = tt_calloc((size_t)w->nslots, sizeof(int));
        w->idle = tt_calloc((size_t)w->nslots, sizeof(int));
        w->bare = tt_calloc((size_t)w->nslots, sizeof(int));
        if (!w->chunks || !w->queue || !w->idle || !w->bare) {
                snprintf(errstr, errsize, "out of memory");
                free_slots(w);
                tt_free(w);
                return NULL;
        }
        /* A row with a 64 KiB key of escapes is ~400 KiB of JSON. */
        tt_buf_init(&w->out, OUT_FLUSH + (8u << 20));
        /* Room for a chunk's worth and then one more row of any size. */
        w->cap = w->chunk + ROW_MAX + ROW_FIXED_MAX;
        for (int i = 0; i < w->nslots; i++)
                w->bare[w->nbare++] = w->nslots - 1 - i;
        int rc = 0;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cond, NULL);
        if ((rc = pthread_create(&w->thread, NULL, writer_main, w))) {
                snprintf(errstr, errsize, "cannot start the writer thread: %s",
                         strerror(rc));
                pthread_cond_destroy(&w->cond);
                pthread_mutex_destroy(&w->mu);
                free_slots(w);
                tt_free(w);
                return NULL;
        }
        return w;
}

tt_rollup_writer *tt_rollup_writer_new(FILE *f, tt_writeback *wb, char *errstr,
                                       size_t errsize) {
        return tt_rollup_writer_new_sized(f, wb, CHUNK_DEFAULT, BUDGET_DEFAULT,
                                          errstr, errsize);
}

/* Hands the filling chunk to the writer (if any) and takes an idle one, or
 * allocates one within the budget, waiting for the writer when all are
 * queued. Returns the sticky error. */
static int next_chunk(tt_rollup_writer *w) {
        pthread_mutex_lock(&w->mu);
        if (w->filling >= 0) {
                w->queue[(w->head + w->nqueued) % w->nslots] = w->filling;
                w->nqueued++;
                w->filling = -1;
                pthread_cond_broadcast(&w->cond);
        }
        while (!w->nidle && !w->nbare && !w->err)
                pthread_cond_wait(&w->cond, &w->mu);
        int err = w->err;
        int c = -1;
        bool alloc = false;
        if (!err) {
                if (w->nidle) {
                        c = w->idle[--w->nidle];
                } else {
                        c = w->bare[--w->nbare];
                        alloc = true;
                }
        }
        pthread_mutex_unlock(&w->mu);
        if (alloc && (err = chunk_map(w, &w->chunks[c]))) {
                pthread_mutex_lock(&w->mu);
                w->bare[w->nbare++] = c;
                pthread_mutex_unlock(&w->mu);
                return err;
        }
        if (!err) {
                w->filling = c;
                w->ctx_set = false; /* a chunk starts with its context */
        }
        return err;
}

int tt_rollup_writer_push(tt_rollup_writer *w, const tt_rollup *r) {
        size_t klen = r->key.ptr ? r->key.len : 0;
        size_t olen = r->origin.ptr ? r->origin.len : 0;
        if (klen > ROW_MAX || olen > ROW_MAX - klen)
                return TT_ERR_LIMIT;
        size_t n = ROW_FIXED_MAX + klen + olen;
        int err;
        if (w->filling < 0 || (w->chunks[w->filling].len &&
                               w->chunks[w->filling].len + n > w->chunk))
                if ((err = next_chunk(w)))
                        return err;
        struct chunk *c = &w->chunks[w->filling];
        uint8_t *p = c->data + c->len;
        uint8_t flags = (r->origin.ptr ? F_ORIGIN : 0) |
                        (r->has_prev ? F_PREV : 0) |
                        (r->has_growth ? F_GROWTH : 0);
        p[1] = enum_byte((int)r->dimension);
        p[2] = enum_byte((int)r->status);
        uint8_t *q = p + 3;
        /* All 16 bytes compared (a fixed-size compare, no strnlen a row):
         * bytes after the NUL that differ only cost a context more. */
        if (!w->ctx_set || memcmp(w->ctx_week, r->week, sizeof(r->week)) ||
            w->ctx_start != r->week_start_ms ||
            w->ctx_emitted != r->emitted_at_ms) {
                flags |= F_CTX;
                w->ctx_set = true;
                memcpy(w->ctx_week, r->week, sizeof(r->week));
                w->ctx_start = r->week_start_ms;
                w->ctx_emitted = r->emitted_at_ms;
                size_t wlen = strnlen(r->week, sizeof(r->week));
                *q++ = (uint8_t)wlen;
                memcpy(q, r->week, wlen);
                q += wlen;
                memcpy(q, &r->week_start_ms, 8);
                memcpy(q + 8, &r->emitted_at_ms, 8);
                q += 16;
        }
        p[0] = flags;
        q = put_uv(q, klen);
        if (r->origin.ptr)
                q = put_uv(q, olen);
        q = put_zz(q, r->tokens);
        q = put_zz(q, r->prompt_tokens);
        q = put_zz(q, r->completion_tokens);
        q = put_zz(q, r->requests);
        if (r->has_prev)
                q = put_zz(q, r->prev_tokens);
        q = put_zz(q, r->rank);
        q = put_zz(q, r->revision);
        memcpy(q, &r->share_pct, 8);
        q += 8;
        if (r->has_growth) {
                memcpy(q, &r->wow_growth_pct, 8);
                q += 8;
        }
        if (klen)
                memcpy(q, r->key.ptr, klen);
        q += klen;
        if (olen)
                memcpy(q, r->origin.ptr, olen);
        q += olen;
        c->len = (size_t)(q - c->data);
        return TT_ERR_OK;
}

int tt_rollup_writer_close(tt_rollup_writer *w) {
        if (!w)
                return TT_ERR_OK;
        pthread_mutex_lock(&w->mu);
        if (w->filling >= 0 && w->chunks[w->filling].len) {
                w->queue[(w->head + w->nqueued) % w->nslots] = w->filling;
                w->nqueued++;
                w->filling = -1;
        }
        w->closing = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        int err = w->err;
        free_slots(w);
        tt_buf_free(&w->out);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mu);
        if (err == TT_ERR_IO)
                errno = w->err_errno;
        tt_free(w);
        return err;
}
