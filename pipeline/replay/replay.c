/* File replay: a reader thread cuts the inputs into chunks, worker threads
 * decode them, and the calling thread applies them to the engine strictly in
 * the order the reader made them. Decoding is the expensive part and runs in
 * parallel; applying is cheap and stays serial, which keeps the engine's
 * semantics (watermarks, week closing, lateness) exact and deterministic.
 *
 * Memory is bounded by the batch pool: POOL batches of about CHUNK bytes
 * each, whatever the size of the input. */
#include "tokentally/replay.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tokentally/avro_event.h"
#include "tokentally/clock.h"
#include "tokentally/err.h"
#include "tokentally/input.h"
#include "tokentally/json_event.h"
#include "tokentally/keytab.h"
#include "tokentally/mem.h"
#include "tokentally/ocf.h"

#define CHUNK (1u << 18)              /* JSON Lines bytes per batch */
#define MAX_LINE TT_REPLAY_RECORD_MAX /* the cap of max_record_bytes */
#define DETAIL_MAX 200
#define PREFETCH_AHEAD 8

typedef struct rec {
        tt_event ev;
        uint32_t off, len; /* the record's bytes in the batch buffer */
        uint32_t index;    /* line or record number within the batch */
        uint16_t reason;   /* decode failure, TT_REASON_NONE if decoded */
        uint32_t detail;   /* offset of its detail in batch.details */
} rec;

typedef enum bkind { B_JSONL, B_OCF, B_EOF, B_BADBLOCK, B_FATAL } bkind;

typedef struct batch {
        uint64_t seq;
        bkind kind;
        int file;
        tt_buf in;           /* JSON Lines text, or a compressed OCF block */
        tt_buf out;          /* a decompressed OCF block */
        const uint8_t *data; /* what rec offsets refer to (in or out) */
        int64_t first;       /* OCF: file record index of the block's first */
        int64_t count;       /* OCF: records in the block */
        uint32_t lines; /* JSON Lines: lines in the chunk, blank included */
        bool oversize;  /* JSON Lines: in is the start of one long line */
        bool bad_tail;  /* JSON Lines: the file's data went bad after in
                           (corrupt gzip); msg says how */
        rec *recs;
        uint32_t n, cap;
        tt_buf details;
        tt_buf arena; /* unescaped strings; reserved up front, never moves */
        int64_t pos;  /* bytes of the file read when the batch was cut */
        char msg[256];
        bool done;
        struct batch *next;
} batch;

typedef struct file {
        const char *name;
        tt_input *in;
        tt_file_format fmt;
        tt_ocf_reader *ocf;
        tt_avro_dec *dec;
        tt_ocf_codec codec;
        tt_buf carry;        /* JSON Lines: the partial line after the chunk */
        int64_t next_record; /* OCF */
        int64_t line_base;   /* JSON Lines, advanced by the applier */
        int64_t pos;         /* bytes read, as of the last applied batch */
        bool skipping;       /* reading past the rest of an oversize line */
        bool eof;
        bool finished; /* the reader is done with it */
} file;

typedef struct replay {
        const tt_replay_conf *conf;
        size_t max_record; /* conf's max_record_bytes, defaulted */
        file *files;
        size_t nfiles;
        batch *pool;
        size_t npool;

        pthread_mutex_t mu;
        pthread_cond_t cv_free, cv_work, cv_done;
        batch *free_list;
        batch *work_head, *work_tail;
        batch **ring; /* by seq % npool: batches in flight, in order */
        uint64_t next_seq;
        bool stop;
        bool reader_done;
} replay;

tt_file_format tt_file_format_of(const char *path) {
        size_t n = strlen(path);
#define ENDS(s) (n >= sizeof(s) - 1 && !strcmp(path + n - (sizeof(s) - 1), s))
        if (ENDS(".avro"))
                return TT_FMT_OCF;
        if (ENDS(".jsonl") || ENDS(".jsonl.gz") || ENDS(".json") ||
            ENDS(".ndjson") || ENDS(".json.gz") || ENDS(".ndjson.gz"))
                return TT_FMT_JSONL;
#undef ENDS
        return TT_FMT_AUTO;
}

/* ---- records ---------------------------------------------------------- */

static rec *rec_add(batch *b) {
        if (b->n == b->cap) {
                uint32_t ncap = b->cap ? b->cap * 2 : 4096;
                rec *nr = tt_realloc(b->recs, ncap * sizeof(*nr));
                if (!nr)
                        return NULL;
                b->recs = nr;
                b->cap = ncap;
        }
        rec *r = &b->recs[b->n++];
        r->reason = TT_REASON_NONE;
        r->detail = 0;
        return r;
}

static int set_detail(batch *b, rec *r, const char *d) {
        r->detail = (uint32_t)b->details.len;
        return tt_buf_append(&b->details, d, strlen(d) + 1);
}

/* Strings that the JSON decoder unescaped live in its scratch, which the
 * next line reuses: copy them into the batch's arena. The arena was sized
 * to the chunk, and unescaping never lengthens a string, so it never
 * moves. */
static void pin(batch *b, tt_str *s, const char *lo, const char *hi) {
        if (!s->ptr || (s->ptr >= lo && s->ptr <= hi))
                return;
        char *dst = (char *)b->arena.data + b->arena.len;
        memcpy(dst, s->ptr, s->len);
        b->arena.len += s->len;
        s->ptr = dst;
}

/* One dead letter for a line longer than max: never decoded (a prefix
 * could parse as a whole object), its first bytes as the payload. */
static int too_long(batch *b, const char *p, size_t len, uint32_t line,
                    size_t max) {
        rec *r = rec_add(b);
        if (!r)
                return TT_ERR_NOMEM;
        r->off = (uint32_t)(p - (const char *)b->in.data);
        r->len = (uint32_t)(len > max ? max : len);
        r->index = line;
        r->reason = TT_REASON_MALFORMED;
        char detail[DETAIL_MAX];
        snprintf(detail, sizeof(detail),
                 "line longer than --max-record-bytes %zu; the payload is its "
                 "first %zu bytes",
                 max, max);
        return set_detail(b, r, detail);
}

/* One dead letter for everything from tail to the end of a file whose
 * data went bad (corrupt gzip): the readable start of it (maybe empty) as
 * the payload, the reader's error as the detail. */
static int bad_rest(batch *b, const char *tail, uint32_t line, size_t max) {
        rec *r = rec_add(b);
        if (!r)
                return TT_ERR_NOMEM;
        size_t at = (size_t)(tail - (const char *)b->in.data);
        size_t n = b->in.len - at;
        r->off = (uint32_t)at;
        r->len = (uint32_t)(n > max ? max : n);
        r->index = line;
        r->reason = TT_REASON_MALFORMED;
        char d[DETAIL_MAX];
        snprintf(d, sizeof(d), "%.150s; the rest of the file is unreadable",
                 b->msg);
        return set_detail(b, r, d);
}

/* The model's hash on the decoding thread, so that the applying thread,
 * which counts in order alone, neither computes it nor waits on the
 * table slot it names (apply prefetches it PREFETCH_AHEAD records ahead). */
static void set_hash(tt_event *ev) {
        ev->model_hash = tt_hash(ev->model.ptr, ev->model.len);
}

static int decode_jsonl(batch *b, tt_json_dec *dec, size_t max) {
        b->data = b->in.data;
        b->arena.len = 0;
        if (b->oversize) {
                b->lines = b->bad_tail ? 2 : 1;
                int err =
                    too_long(b, (const char *)b->in.data, b->in.len, 0, max);
                if (!err && b->bad_tail)
                        err = bad_rest(b, (const char *)b->in.data + b->in.len,
                                       1, max);
                return err;
        }
        int err = tt_buf_reserve(&b->arena, b->in.len);
        if (err)
                return err;
        const char *base = (const char *)b->in.data;
        const char *p = base, *end = base + b->in.len;
        /* Before bad data, only whole lines are read as lines; the bytes
         * after the last line end are the unreadable rest (below). */
        const char *tail = end;
        if (b->bad_tail) {
                const char *nl =
                    b->in.len ? memrchr(base, '\n', b->in.len) : NULL;
                tail = end = nl ? nl + 1 : base;
        }
        uint32_t line = 0;
        char detail[DETAIL_MAX];
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *le = nl ? nl : end;
                const char *ce = le;
                if (ce > p && ce[-1] == '\r')
                        ce--;
                const char *q = p;
                while (q < ce && (*q == ' ' || *q == '\t'))
                        q++;
                if (q < ce && (size_t)(ce - p) > max) {
                        if ((err = too_long(b, p, (size_t)(ce - p), line, max)))
                                return err;
                } else if (q < ce) {
                        rec *r = rec_add(b);
                        if (!r)
                                return TT_ERR_NOMEM;
                        r->off = (uint32_t)(p - base);
                        r->len = (uint32_t)(ce - p);
                        r->index = line;
                        memset(&r->ev, 0, sizeof(r->ev));
                        tt_reason why = tt_json_decode_event(
                            dec, p, (size_t)(ce - p), &r->ev, detail,
                            sizeof(detail));
                        if (why != TT_REASON_NONE) {
                                r->reason = (uint16_t)why;
                                if ((err = set_detail(b, r, detail)))
                                        return err;
                        } else {
                                pin(b, &r->ev.request_id, p, ce);
                                pin(b, &r->ev.model, p, ce);
                                pin(b, &r->ev.origin, p, ce);
                                pin(b, &r->ev.provider, p, ce);
                                set_hash(&r->ev);
                        }
                }
                line++;
                p = nl ? nl + 1 : end;
        }
        if (b->bad_tail && (err = bad_rest(b, tail, line++, max)))
                return err;
        b->lines = line;
        return TT_ERR_OK;
}

static int decode_ocf(batch *b, const file *f) {
        char detail[DETAIL_MAX], msg[DETAIL_MAX + 64];
        int err = tt_ocf_decompress(f->codec, b->in.data, b->in.len, &b->out,
                                    detail, sizeof(detail));
        if (err) {
                /* The whole block is unreadable: one dead letter for it,
                 * carrying the bytes as they are in the file. */
                rec *r = rec_add(b);
                if (!r)
                        return TT_ERR_NOMEM;
                b->data = b->in.data;
                r->off = 0;
                r->len = (uint32_t)b->in.len;
                r->index = 0;
                r->reason = TT_REASON_MALFORMED;
                snprintf(msg, sizeof(msg), "block of %lld records: %s",
                         (long long)b->count, detail);
                return set_detail(b, r, msg);
        }
        b->data = b->out.data;
        size_t pos = 0, len = b->out.len;
        for (int64_t i = 0; i < b->count; i++) {
                rec *r = rec_add(b);
                if (!r)
                        return TT_ERR_NOMEM;
                size_t used = 0;
                tt_reason why =
                    tt_avro_decode_event(f->dec, b->out.data + pos, len - pos,
                                         &used, &r->ev, detail, sizeof(detail));
                r->off = (uint32_t)pos;
                r->index = (uint32_t)i;
                if (why != TT_REASON_NONE) {
                        /* Avro records are not delimited: after a bad one
                         * the rest of the block cannot be found. */
                        r->len = (uint32_t)(len - pos);
                        r->reason = (uint16_t)why;
                        snprintf(msg, sizeof(msg),
                                 "%s; the block's %lld later records are "
                                 "unreadable",
                                 detail, (long long)(b->count - i - 1));
                        return set_detail(b, r, msg);
                }
                r->len = (uint32_t)used;
                set_hash(&r->ev);
                pos += used;
        }
        if (pos != len) {
                rec *r = rec_add(b);
                if (!r)
                        return TT_ERR_NOMEM;
                r->off = (uint32_t)pos;
                r->len = (uint32_t)(len - pos);
                r->index = (uint32_t)b->count;
                r->reason = TT_REASON_MALFORMED;
                snprintf(msg, sizeof(msg),
                         "%zu bytes after the block's %lld records", len - pos,
                         (long long)b->count);
                return set_detail(b, r, msg);
        }
        return TT_ERR_OK;
}

/* ---- threads ---------------------------------------------------------- */

static batch *take_free(replay *rp) {
        pthread_mutex_lock(&rp->mu);
        while (!rp->free_list && !rp->stop)
                pthread_cond_wait(&rp->cv_free, &rp->mu);
        batch *b = rp->stop ? NULL : rp->free_list;
        if (b)
                rp->free_list = b->next;
        pthread_mutex_unlock(&rp->mu);
        return b;
}

/* Gives b its place in the order; decode work goes to the workers. */
static void submit(replay *rp, batch *b, bool needs_work) {
        pthread_mutex_lock(&rp->mu);
        b->seq = rp->next_seq++;
        b->done = !needs_work;
        b->next = NULL;
        rp->ring[b->seq % rp->npool] = b;
        if (needs_work) {
                if (rp->work_tail)
                        rp->work_tail->next = b;
                else
                        rp->work_head = b;
                rp->work_tail = b;
                pthread_cond_signal(&rp->cv_work);
        } else {
                pthread_cond_broadcast(&rp->cv_done);
        }
        pthread_mutex_unlock(&rp->mu);
}

static void batch_reset(batch *b, bkind kind, int fi) {
        b->kind = kind;
        b->file = fi;
        b->n = 0;
        b->lines = 0;
        b->oversize = false;
        b->bad_tail = false;
        b->count = 0;
        b->first = 0;
        b->msg[0] = '\0';
        tt_buf_reset(&b->in);
        tt_buf_reset(&b->details);
        /* Offset 0 of details is the empty string. */
        tt_buf_putc(&b->details, '\0');
}

/* Reads more of f into b->in; false on a read error (b->msg set). */
static bool read_more(file *f, batch *b) {
        if (tt_buf_reserve(&b->in, 256 * 1024))
                return false;
        ssize_t r =
            tt_input_read(f->in, b->in.data + b->in.len, b->in.cap - b->in.len,
                          b->msg, sizeof(b->msg));
        if (r < 0 && !tt_input_corrupt(f->in))
                return false;
        if (r < 0) {
                /* Corrupt or truncated gzip: the data ends here. */
                b->bad_tail = true;
                r = 0;
        }
        if (r == 0)
                f->eof = true;
        b->in.len += (size_t)r;
        return true;
}

/* Cuts the next JSON Lines chunk of f into b: whole lines only, the partial
 * last line carried over to the next chunk. A line longer than max is cut
 * to its first max bytes (the batch is marked oversize: one dead letter)
 * and f skips the rest of it, up to its newline, before the next chunk. */
static int cut_jsonl(file *f, batch *b, size_t max) {
        int err;
        while (f->skipping) {
                const uint8_t *nl =
                    b->in.len ? memchr(b->in.data, '\n', b->in.len) : NULL;
                if (nl) {
                        size_t drop = (size_t)(nl - b->in.data) + 1;
                        memmove(b->in.data, nl + 1, b->in.len - drop);
                        b->in.len -= drop;
                        f->skipping = false;
                        break;
                }
                b->in.len = 0;
                if (f->eof) {
                        f->skipping = false;
                        break;
                }
                if (!read_more(f, b))
                        return TT_ERR_IO;
        }
        if ((err = tt_buf_append(&b->in, f->carry.data, f->carry.len)))
                return err;
        tt_buf_reset(&f->carry);
        size_t want = CHUNK;
        for (;;) {
                while (b->in.len < want && !f->eof)
                        if (!read_more(f, b))
                                return TT_ERR_IO;
                const uint8_t *nl =
                    b->in.len ? memrchr(b->in.data, '\n', b->in.len) : NULL;
                if (nl && !f->eof) {
                        size_t keep = (size_t)(nl - b->in.data) + 1;
                        err =
                            tt_buf_append(&f->carry, nl + 1, b->in.len - keep);
                        b->in.len = keep;
                        return err;
                }
                if (nl || (f->eof && b->in.len <= max))
                        return TT_ERR_OK;
                /* No line end in b->in: it is all one line. */
                size_t body = b->in.len;
                if (body && b->in.data[body - 1] == '\r')
                        body--;
                if (body > max) {
                        b->oversize = true;
                        b->in.len = max;
                        f->skipping = !f->eof;
                        return TT_ERR_OK;
                }
                if (f->eof)
                        return TT_ERR_OK;
                want = b->in.len * 2 > max + 2 ? max + 2 : b->in.len * 2;
                if (want <= b->in.len)
                        want = b->in.len + 1;
        }
}

static void *reader_main(void *arg) {
        replay *rp = arg;
        size_t live = rp->nfiles;
        while (live) {
                for (size_t fi = 0; fi < rp->nfiles && live; fi++) {
                        file *f = &rp->files[fi];
                        if (f->finished)
                                continue;
                        batch *b = take_free(rp);
                        if (!b)
                                goto out;
                        if (f->fmt == TT_FMT_JSONL) {
                                batch_reset(b, B_JSONL, (int)fi);
                                int err = cut_jsonl(f, b, rp->max_record);
                                b->pos = tt_input_pos(f->in);
                                if (err) {
                                        if (!b->msg[0])
                                                snprintf(b->msg, sizeof(b->msg),
                                                         "%.200s: %s", f->name,
                                                         tt_err2str(err));
                                        b->kind = B_FATAL;
                                        submit(rp, b, false);
                                        goto out;
                                }
                                if (b->in.len || b->bad_tail) {
                                        submit(rp, b, true);
                                        if (!f->eof)
                                                continue;
                                        if (!(b = take_free(rp)))
                                                goto out;
                                }
                                batch_reset(b, B_EOF, (int)fi);
                                b->pos = tt_input_pos(f->in);
                                submit(rp, b, false);
                                f->finished = true;
                                live--;
                                continue;
                        }
                        batch_reset(b, B_OCF, (int)fi);
                        int64_t count = 0;
                        size_t skipped = 0;
                        int err =
                            tt_ocf_reader_next(f->ocf, &count, &b->in, &skipped,
                                               b->msg, sizeof(b->msg));
                        b->pos = tt_input_pos(f->in);
                        if (err == TT_ERR_OK) {
                                b->first = f->next_record;
                                b->count = count;
                                f->next_record += count;
                                submit(rp, b, true);
                        } else if (err == TT_ERR_FORMAT) {
                                b->kind = B_BADBLOCK;
                                b->first = f->next_record;
                                submit(rp, b, false);
                        } else if (err == TT_ERR_EOF) {
                                b->kind = B_EOF;
                                submit(rp, b, false);
                                f->finished = true;
                                live--;
                        } else {
                                b->kind = B_FATAL;
                                char tmp[200];
                                snprintf(tmp, sizeof(tmp), "%.190s", b->msg);
                                snprintf(b->msg, sizeof(b->msg), "%.50s: %s",
                                         f->name, tmp);
                                submit(rp, b, false);
                                goto out;
                        }
                }
        }
out:
        pthread_mutex_lock(&rp->mu);
        rp->reader_done = true;
        pthread_mutex_unlock(&rp->mu);
        return NULL;
}

static void *worker_main(void *arg) {
        replay *rp = arg;
        tt_json_dec *dec = tt_json_dec_new();
        for (;;) {
                pthread_mutex_lock(&rp->mu);
                while (!rp->work_head && !rp->stop)
                        pthread_cond_wait(&rp->cv_work, &rp->mu);
                batch *b = rp->stop ? NULL : rp->work_head;
                if (b) {
                        rp->work_head = b->next;
                        if (!rp->work_head)
                                rp->work_tail = NULL;
                }
                pthread_mutex_unlock(&rp->mu);
                if (!b)
                        break;
                int err = !dec ? TT_ERR_NOMEM
                          : b->kind == B_JSONL
                              ? decode_jsonl(b, dec, rp->max_record)
                              : decode_ocf(b, &rp->files[b->file]);
                if (err) {
                        b->kind = B_FATAL;
                        snprintf(b->msg, sizeof(b->msg), "%.180s: decoding: %s",
                                 rp->files[b->file].name, tt_err2str(err));
                }
                pthread_mutex_lock(&rp->mu);
                b->done = true;
                pthread_cond_broadcast(&rp->cv_done);
                pthread_mutex_unlock(&rp->mu);
        }
        tt_json_dec_destroy(dec);
        return NULL;
}

/* ---- applying --------------------------------------------------------- */

typedef struct applier {
        replay *rp;
        tt_replay_stats *st;
        int64_t now;
        char detail[DETAIL_MAX];
} applier;

static int dead(applier *a, tt_reason why, const char *detail, const file *f,
                int64_t offset, const uint8_t *p, size_t n) {
        a->st->dead_letters++;
        const tt_replay_conf *c = a->rp->conf;
        return c->dead_letter ? c->dead_letter(c->opaque, why, detail, f->name,
                                               offset, p, n)
                              : 0;
}

static int apply(applier *a, batch *b) {
        const tt_replay_conf *c = a->rp->conf;
        file *f = &a->rp->files[b->file];
        tt_engine *e = c->engine;
        int err = 0;
        switch (b->kind) {
        case B_FATAL:
                return TT_ERR_IO;
        case B_EOF:
                return tt_engine_partition_remove(e, b->file, a->now);
        case B_BADBLOCK:
                a->st->records++;
                return dead(a, TT_REASON_MALFORMED, b->msg, f, b->first,
                            b->in.data, b->in.len);
        default:
                break;
        }
        int64_t base = b->kind == B_JSONL ? f->line_base : b->first;
        for (uint32_t i = 0; i < b->n && !err; i++) {
                if (i + PREFETCH_AHEAD < b->n &&
                    b->recs[i + PREFETCH_AHEAD].reason == TT_REASON_NONE)
                        tt_engine_prefetch(e, b->file,
                                           &b->recs[i + PREFETCH_AHEAD].ev);
                rec *r = &b->recs[i];
                const uint8_t *raw = b->data + r->off;
                a->st->records++;
                if (r->reason != TT_REASON_NONE) {
                        err = dead(a, (tt_reason)r->reason,
                                   (const char *)b->details.data + r->detail, f,
                                   base + r->index, raw, r->len);
                        continue;
                }
                tt_reason why = tt_engine_offer(e, b->file, &r->ev, a->now,
                                                a->detail, sizeof(a->detail));
                if (why == TT_REASON_NONE)
                        a->st->accepted++;
                else
                        err = dead(a, why, a->detail, f, base + r->index, raw,
                                   r->len);
                if (!err)
                        err = tt_engine_error(e);
        }
        if (b->kind == B_JSONL)
                f->line_base += b->lines;
        if (!err)
                err = tt_engine_flush(e, a->now);
        return err;
}

/* ---- set-up ----------------------------------------------------------- */

static int open_file(file *f, const char *name, tt_file_format want,
                     char *errstr, size_t errsize) {
        memset(f, 0, sizeof(*f));
        f->name = name;
        tt_buf_init(&f->carry, MAX_LINE);
        f->in = tt_input_open(name, errstr, errsize);
        if (!f->in)
                return TT_ERR_IO;
        f->fmt = want != TT_FMT_AUTO ? want : tt_file_format_of(name);
        if (f->fmt == TT_FMT_AUTO) {
                /* No telling extension, or standard input: an OCF file
                 * starts with "Obj\1" (inside gzip too: the bytes looked
                 * at are inflated ones); anything else is read as JSON
                 * Lines. Peeked, not read, so a pipe works. */
                uint8_t magic[4];
                ssize_t r = tt_input_peek(f->in, magic, 4, errstr, errsize);
                /* Corrupt gzip at the start: the JSON Lines reader meets
                 * the same error again and dead-letters it (damaged files
                 * are not fatal); a failing read(2) is. */
                if (r < 0 && !tt_input_corrupt(f->in))
                        return TT_ERR_IO;
                f->fmt = r == 4 && !memcmp(magic, "Obj\x01", 4) ? TT_FMT_OCF
                                                                : TT_FMT_JSONL;
        }
        if (f->fmt == TT_FMT_OCF) {
                char why[256];
                f->ocf = tt_ocf_reader_new(f->in, why, sizeof(why));
                if (!f->ocf) {
                        snprintf(errstr, errsize, "%s: %s", name, why);
                        return TT_ERR_FORMAT;
                }
                f->codec = tt_ocf_reader_codec(f->ocf);
                f->dec = tt_avro_dec_new(tt_ocf_reader_schema(f->ocf), why,
                                         sizeof(why));
                if (!f->dec) {
                        snprintf(errstr, errsize,
                                 "%s: writer schema does not resolve to "
                                 "TokenEvent: %s",
                                 name, why);
                        return TT_ERR_FORMAT;
                }
        }
        return TT_ERR_OK;
}

static void close_file(file *f) {
        tt_avro_dec_destroy(f->dec);
        tt_ocf_reader_destroy(f->ocf);
        tt_input_close(f->in);
        tt_buf_free(&f->carry);
}

int tt_replay_run(const tt_replay_conf *conf, tt_replay_stats *stats,
                  char *errstr, size_t errsize) {
        memset(stats, 0, sizeof(*stats));
        double t0 = tt_mono_s();
        replay rp;
        memset(&rp, 0, sizeof(rp));
        rp.conf = conf;
        rp.max_record = conf->max_record_bytes ? conf->max_record_bytes
                                               : TT_REPLAY_RECORD_DEFAULT;
        if (rp.max_record > TT_REPLAY_RECORD_MAX)
                rp.max_record = TT_REPLAY_RECORD_MAX;
        int workers = conf->workers > 0 ? conf->workers : 1;
        int err = TT_ERR_OK;
        int nstarted = 0;
        int64_t total_bytes = 0;
        pthread_t reader, *threads = NULL;
        bool reader_started = false;

        rp.files = tt_calloc(conf->nfiles ? conf->nfiles : 1, sizeof(file));
        rp.npool = (size_t)workers * 2 + 2;
        rp.pool = tt_calloc(rp.npool, sizeof(batch));
        rp.ring = tt_calloc(rp.npool, sizeof(batch *));
        threads = tt_calloc((size_t)workers, sizeof(pthread_t));
        if (!rp.files || !rp.pool || !rp.ring || !threads) {
                snprintf(errstr, errsize, "out of memory");
                err = TT_ERR_NOMEM;
                goto done;
        }
        for (size_t i = 0; i < conf->nfiles; i++) {
                rp.nfiles++;
                if ((err = open_file(&rp.files[i], conf->files[i], conf->format,
                                     errstr, errsize)))
                        goto done;
                if (rp.files[i].fmt == TT_FMT_OCF)
                        stats->files_ocf++;
                else
                        stats->files_jsonl++;
                int64_t sz = tt_input_size(rp.files[i].in);
                total_bytes = sz < 0 || total_bytes < 0 ? -1 : total_bytes + sz;
        }
        for (size_t i = 0; i < rp.npool; i++) {
                batch *b = &rp.pool[i];
                tt_buf_init(&b->in, TT_OCF_MAX_BLOCK + MAX_LINE);
                tt_buf_init(&b->out, TT_OCF_MAX_BLOCK);
                tt_buf_init(&b->details, 64u << 20);
                tt_buf_init(&b->arena, TT_OCF_MAX_BLOCK + MAX_LINE);
                b->next = rp.free_list;
                rp.free_list = b;
        }
        int64_t now = conf->clock ? conf->clock(conf->opaque) : tt_wall_ms();
        for (size_t i = 0; i < rp.nfiles; i++)
                tt_engine_partition_add(conf->engine, (int32_t)i, now);
        pthread_mutex_init(&rp.mu, NULL);
        pthread_cond_init(&rp.cv_free, NULL);
        pthread_cond_init(&rp.cv_work, NULL);
        pthread_cond_init(&rp.cv_done, NULL);
        for (; nstarted < workers; nstarted++)
                if (pthread_create(&threads[nstarted], NULL, worker_main, &rp))
                        break;
        reader_started = !pthread_create(&reader, NULL, reader_main, &rp);
        if (nstarted < workers || !reader_started) {
                snprintf(errstr, errsize, "cannot start threads");
                err = TT_ERR_NOMEM;
                goto stop;
        }

        applier a = {&rp, stats, now, {0}};
        size_t eofs = 0;
        uint64_t seq = 0;
        double last_progress = t0;
        int64_t last_prov = INT64_MIN;
        while (eofs < rp.nfiles) {
                pthread_mutex_lock(&rp.mu);
                batch *b;
                for (;;) {
                        b = rp.ring[seq % rp.npool];
                        if (b && b->seq == seq && b->done)
                                break;
                        if (rp.reader_done && seq >= rp.next_seq) {
                                b = NULL;
                                break;
                        }
                        pthread_cond_wait(&rp.cv_done, &rp.mu);
                }
                pthread_mutex_unlock(&rp.mu);
                if (!b) {
                        snprintf(errstr, errsize, "reader stopped early");
                        err = TT_ERR_IO;
                        break;
                }
                a.now = conf->clock ? conf->clock(conf->opaque) : tt_wall_ms();
                if (b->kind == B_FATAL)
                        snprintf(errstr, errsize, "%s", b->msg);
                if (b->kind == B_EOF)
                        eofs++;
                rp.files[b->file].pos = b->pos;
                err = apply(&a, b);
                if (err && b->kind != B_FATAL)
                        snprintf(errstr, errsize, "%s", tt_err2str(err));
                seq++;
                pthread_mutex_lock(&rp.mu);
                b->next = rp.free_list;
                rp.free_list = b;
                pthread_cond_signal(&rp.cv_free);
                pthread_mutex_unlock(&rp.mu);
                if (err)
                        break;
                int64_t wm = tt_engine_watermark(conf->engine);
                if (conf->emit_provisional && conf->emit_interval_ms > 0 &&
                    wm != INT64_MIN &&
                    (last_prov == INT64_MIN ||
                     wm - last_prov >= conf->emit_interval_ms)) {
                        last_prov = wm;
                        if ((err = tt_engine_emit_provisional(conf->engine,
                                                              a.now))) {
                                snprintf(errstr, errsize, "%s",
                                         tt_err2str(err));
                                break;
                        }
                }
                double t = tt_mono_s();
                if (conf->progress && t - last_progress >= 0.25) {
                        last_progress = t;
                        int64_t read = 0;
                        for (size_t i = 0; i < rp.nfiles; i++)
                                read += rp.files[i].pos;
                        tt_replay_progress p = {stats->records,
                                                stats->dead_letters, read,
                                                total_bytes, t - t0};
                        conf->progress(conf->opaque, &p);
                }
        }
        if (!err) {
                a.now = conf->clock ? conf->clock(conf->opaque) : tt_wall_ms();
                err = tt_engine_close_all(conf->engine, a.now);
                if (err)
                        snprintf(errstr, errsize, "%s", tt_err2str(err));
        }
stop:
        pthread_mutex_lock(&rp.mu);
        rp.stop = true;
        pthread_cond_broadcast(&rp.cv_free);
        pthread_cond_broadcast(&rp.cv_work);
        pthread_mutex_unlock(&rp.mu);
        for (int i = 0; i < nstarted; i++)
                pthread_join(threads[i], NULL);
        if (reader_started)
                pthread_join(reader, NULL);
        pthread_mutex_destroy(&rp.mu);
        pthread_cond_destroy(&rp.cv_free);
        pthread_cond_destroy(&rp.cv_work);
        pthread_cond_destroy(&rp.cv_done);
done:
        if (rp.pool)
                for (size_t i = 0; i < rp.npool; i++) {
                        tt_buf_free(&rp.pool[i].in);
                        tt_buf_free(&rp.pool[i].out);
                        tt_buf_free(&rp.pool[i].details);
                        tt_buf_free(&rp.pool[i].arena);
                        tt_free(rp.pool[i].recs);
                }
        for (size_t i = 0; i < rp.nfiles; i++)
                close_file(&rp.files[i]);
        stats->bytes = total_bytes;
        stats->seconds = tt_mono_s() - t0;
        tt_free(rp.files);
        tt_free(rp.pool);
        tt_free(rp.ring);
        tt_free(threads);
        return err;
}
