/* See rollup_writer.h. One producer (the engine's thread), one consumer
 * (the writer thread), chunks handed over under one mutex: a handover per
 * ~6,000 rows, so the lock is nowhere near the profile. */
#include "tokentally/rollup_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "tokentally/buf.h"
#include "tokentally/err.h"
#include "tokentally/json_out.h"
#include "tokentally/mem.h"

#define CHUNK (1u << 18) /* rows' bytes handed over at a time */
#define POOL 4           /* chunks: one filling, up to three queued */
#define OUT_FLUSH (1u << 18)
/* A row and its strings must fit in a chunk; keys are bounded far below. */
#define ROW_MAX (CHUNK / 2)

struct tt_rollup_writer {
        FILE *f;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        tt_buf chunks[POOL];
        int queue[POOL]; /* full chunks, in order: queue[head..head+n) */
        int head, nqueued;
        int free_list[POOL], nfree;
        int filling; /* the chunk being filled, -1 if none */
        bool closing;
        int err;       /* the writer's first error, sticky */
        int err_errno; /* errno of a TT_ERR_IO */
        tt_buf out;    /* the writer's JSON, flushed at OUT_FLUSH */
};

/* A row in a chunk: the struct, then key and origin bytes, padded to 8. */
static size_t row_size(const tt_rollup *r) {
        size_t n =
            sizeof(*r) + r->key.len + (r->origin.ptr ? r->origin.len : 0);
        return (n + 7) & ~(size_t)7;
}

static int write_out(tt_rollup_writer *w) {
        if (w->out.len &&
            fwrite(w->out.data, 1, w->out.len, w->f) != w->out.len)
                return TT_ERR_IO;
        tt_buf_reset(&w->out);
        return TT_ERR_OK;
}

static int encode_chunk(tt_rollup_writer *w, const tt_buf *c) {
        size_t at = 0;
        while (at < c->len) {
                tt_rollup r;
                memcpy(&r, c->data + at, sizeof(r));
                const char *s = (const char *)c->data + at + sizeof(r);
                r.key.ptr = s;
                if (r.origin.ptr)
                        r.origin.ptr = s + r.key.len;
                at += row_size(&r);
                int err = tt_json_rollup(&w->out, &r);
                if (!err && w->out.len >= OUT_FLUSH)
                        err = write_out(w);
                if (err)
                        return err;
        }
        return TT_ERR_OK;
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
                w->head = (w->head + 1) % POOL;
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
                tt_buf_reset(&w->chunks[c]);
                w->free_list[w->nfree++] = c;
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

tt_rollup_writer *tt_rollup_writer_new(FILE *f, char *errstr, size_t errsize) {
        tt_rollup_writer *w = tt_calloc(1, sizeof(*w));
        if (!w) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        w->f = f;
        w->filling = -1;
        /* A row with a 64 KiB key of escapes is ~400 KiB of JSON. */
        tt_buf_init(&w->out, OUT_FLUSH + (8u << 20));
        for (int i = 0; i < POOL; i++) {
                tt_buf_init(&w->chunks[i], CHUNK + ROW_MAX);
                w->free_list[w->nfree++] = i;
        }
        int rc = 0;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cond, NULL);
        if ((rc = pthread_create(&w->thread, NULL, writer_main, w))) {
                snprintf(errstr, errsize, "cannot start the writer thread: %s",
                         strerror(rc));
                pthread_cond_destroy(&w->cond);
                pthread_mutex_destroy(&w->mu);
                tt_free(w);
                return NULL;
        }
        return w;
}

/* Hands the filling chunk to the writer (if any) and takes a free one,
 * waiting for the writer when all are queued. Returns the sticky error. */
static int next_chunk(tt_rollup_writer *w) {
        pthread_mutex_lock(&w->mu);
        if (w->filling >= 0) {
                w->queue[(w->head + w->nqueued) % POOL] = w->filling;
                w->nqueued++;
                w->filling = -1;
                pthread_cond_broadcast(&w->cond);
        }
        while (!w->nfree && !w->err)
                pthread_cond_wait(&w->cond, &w->mu);
        int err = w->err;
        if (!err)
                w->filling = w->free_list[--w->nfree];
        pthread_mutex_unlock(&w->mu);
        return err;
}

int tt_rollup_writer_push(tt_rollup_writer *w, const tt_rollup *r) {
        size_t n = row_size(r);
        if (n > ROW_MAX)
                return TT_ERR_LIMIT;
        int err;
        if (w->filling < 0 || w->chunks[w->filling].len + n > CHUNK)
                if ((err = next_chunk(w)))
                        return err;
        tt_buf *c = &w->chunks[w->filling];
        if ((err = tt_buf_reserve(c, n)))
                return err;
        uint8_t *p = c->data + c->len;
        memcpy(p, r, sizeof(*r));
        memcpy(p + sizeof(*r), r->key.ptr, r->key.len);
        if (r->origin.ptr)
                memcpy(p + sizeof(*r) + r->key.len, r->origin.ptr,
                       r->origin.len);
        memset(
            p + sizeof(*r) + r->key.len + (r->origin.ptr ? r->origin.len : 0),
            0,
            n - sizeof(*r) - r->key.len - (r->origin.ptr ? r->origin.len : 0));
        c->len += n;
        return TT_ERR_OK;
}

int tt_rollup_writer_close(tt_rollup_writer *w) {
        if (!w)
                return TT_ERR_OK;
        pthread_mutex_lock(&w->mu);
        if (w->filling >= 0 && w->chunks[w->filling].len) {
                w->queue[(w->head + w->nqueued) % POOL] = w->filling;
                w->nqueued++;
                w->filling = -1;
        }
        w->closing = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        int err = w->err;
        for (int i = 0; i < POOL; i++)
                tt_buf_free(&w->chunks[i]);
        tt_buf_free(&w->out);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mu);
        if (err == TT_ERR_IO)
                errno = w->err_errno;
        tt_free(w);
        return err;
}
