/* The merger's engine and its changelog; see merger.h. */
#include "tokentally/merger.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/buf.h"
#include "tokentally/err.h"
#include "tokentally/keytab.h"
#include "tokentally/mem.h"
#include "tokentally/week.h"

#define RESTORE_TIMEOUT_MS 120000
/* Longer than the producers' transaction.timeout.ms (kafka_out.c): by then
 * the broker has aborted any transaction a dead instance left open. */
#define STABLE_TIMEOUT_MS 45000

/* A state record as last written: which key, and a hash of its bytes to
 * tell whether it changed. */
typedef struct written {
        int32_t week; /* INT32_MIN: meta */
        uint32_t part;
        uint64_t hash;
        bool seen; /* still held at this checkpoint */
} written;

struct tt_merger {
        tt_engine *e;
        char *group;
        written *w;
        size_t nw, capw;
};

tt_engine *tt_merger_engine(tt_merger *m) {
        return m->e;
}

/* A changelog record of a week is cut in parts past this (the state
 * topic's max.message.bytes is 16 MiB). */
#define STATE_PART_MAX (4u << 20)

/* GROUP/meta, GROUP/week/2026-W14, then GROUP/week/2026-W14/1, /2, ... for
 * the further parts of a big week. */
static void key_of(const tt_merger *m, int32_t week, uint32_t part, char *out,
                   size_t size) {
        if (week == INT32_MIN) {
                snprintf(out, size, "%s/meta", m->group);
                return;
        }
        char name[16];
        tt_week_name(week, name, sizeof(name));
        if (part)
                snprintf(out, size, "%s/week/%s/%u", m->group, name,
                         (unsigned)part);
        else
                snprintf(out, size, "%s/week/%s", m->group, name);
}

static written *find_written(tt_merger *m, int32_t week, uint32_t part) {
        for (size_t i = 0; i < m->nw; i++)
                if (m->w[i].week == week && m->w[i].part == part)
                        return &m->w[i];
        return NULL;
}

static written *add_written(tt_merger *m, int32_t week, uint32_t part) {
        written *x = find_written(m, week, part);
        if (x)
                return x;
        if (m->nw == m->capw) {
                size_t ncap = m->capw ? m->capw * 2 : 32;
                written *nw = tt_realloc(m->w, ncap * sizeof(*nw));
                if (!nw)
                        return NULL;
                m->w = nw;
                m->capw = ncap;
        }
        x = &m->w[m->nw++];
        memset(x, 0, sizeof(*x));
        x->week = week;
        x->part = part;
        return x;
}

/* ---- checkpoint --------------------------------------------------------- */

typedef struct ckpt {
        tt_merger *m;
        tt_merger_put_fn put;
        void *opaque;
        bool dry; /* after a restore: remember hashes, write nothing */
} ckpt;

static int ckpt_put(void *opaque, int32_t week, uint32_t part, const void *rec,
                    size_t len) {
        ckpt *c = opaque;
        written *x = add_written(c->m, week, part);
        if (!x)
                return TT_ERR_NOMEM;
        uint64_t h = tt_hash(rec, len);
        x->seen = true;
        if (x->hash == h)
                return TT_ERR_OK;
        x->hash = h;
        if (c->dry)
                return TT_ERR_OK;
        char key[320];
        key_of(c->m, week, part, key, sizeof(key));
        return c->put(c->opaque, key, rec, len);
}

static int checkpoint(tt_merger *m, tt_merger_put_fn put, void *opaque,
                      bool dry) {
        for (size_t i = 0; i < m->nw; i++)
                m->w[i].seen = false;
        ckpt c = {m, put, opaque, dry};
        int err = tt_engine_save(m->e, STATE_PART_MAX, ckpt_put, &c);
        if (err)
                return err;
        size_t j = 0;
        for (size_t i = 0; i < m->nw; i++) {
                if (m->w[i].seen) {
                        m->w[j++] = m->w[i];
                        continue;
                }
                if (dry)
                        continue;
                char key[320];
                key_of(m, m->w[i].week, m->w[i].part, key, sizeof(key));
                if ((err = put(opaque, key, NULL, 0)))
                        return err;
        }
        m->nw = j;
        return TT_ERR_OK;
}

int tt_merger_checkpoint(tt_merger *m, tt_merger_put_fn put, void *opaque) {
        return checkpoint(m, put, opaque, false);
}

/* ---- restore ------------------------------------------------------------ */

/* The latest value of each of our keys, in the order first seen. */
typedef struct latest {
        char *key;
        tt_buf val;
        bool tomb;
        int64_t offset; /* where it was read, for the reason of a refusal */
} latest;

typedef struct latest_set {
        latest *v;
        size_t n, cap;
} latest_set;

static int latest_put(latest_set *s, const char *key, size_t klen,
                      const void *val, size_t vlen, int64_t offset) {
        latest *x = NULL;
        for (size_t i = 0; i < s->n; i++)
                if (strlen(s->v[i].key) == klen &&
                    !memcmp(s->v[i].key, key, klen)) {
                        x = &s->v[i];
                        break;
                }
        if (!x) {
                if (s->n == s->cap) {
                        size_t ncap = s->cap ? s->cap * 2 : 32;
                        latest *nv = tt_realloc(s->v, ncap * sizeof(*nv));
                        if (!nv)
                                return TT_ERR_NOMEM;
                        s->v = nv;
                        s->cap = ncap;
                }
                x = &s->v[s->n];
                memset(x, 0, sizeof(*x));
                if (!(x->key = tt_malloc(klen + 1)))
                        return TT_ERR_NOMEM;
                memcpy(x->key, key, klen);
                x->key[klen] = '\0';
                tt_buf_init(&x->val, 64u << 20);
                s->n++;
        }
        tt_buf_reset(&x->val);
        x->tomb = val == NULL;
        x->offset = offset;
        return val ? tt_buf_append(&x->val, val, vlen) : TT_ERR_OK;
}

static void latest_free(latest_set *s) {
        for (size_t i = 0; i < s->n; i++) {
                tt_free(s->v[i].key);
                tt_buf_free(&s->v[i].val);
        }
        tt_free(s->v);
}

/* A consumer with the restore's brokers and -X (security), reading
 * uncommitted: its "high watermark" is a partition's log end. */
static rd_kafka_t *end_consumer_new(const tt_merger_conf *c, char *errstr,
                                    size_t errsize) {
        const tt_kafka_prop props[] = {{"isolation.level", "read_uncommitted"},
                                       {"group.id", "tokentally-log-end"}};
        char why[512];
        rd_kafka_conf_t *kc = tt_kafka_conf_new(c->props, c->nprops, c->xprops,
                                                c->nxprops, errstr, errsize);
        if (!kc)
                return NULL;
        for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
                if (rd_kafka_conf_set(kc, props[i].name, props[i].value, why,
                                      sizeof(why))) {
                        rd_kafka_conf_destroy(kc);
                        snprintf(errstr, errsize, "log end consumer: %s", why);
                        return NULL;
                }
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof(why));
        if (!rk) {
                rd_kafka_conf_destroy(kc);
                snprintf(errstr, errsize, "log end consumer: %s", why);
        }
        return rk;
}

int tt_merger_log_end(const tt_merger_conf *c, const char *topic,
                      int32_t partition, int64_t *end, char *errstr,
                      size_t errsize) {
        rd_kafka_t *rk = end_consumer_new(c, errstr, errsize);
        if (!rk)
                return TT_ERR_KAFKA;
        int64_t lo;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            rk, topic, partition, &lo, end, 30000);
        rd_kafka_destroy(rk);
        if (kerr) {
                snprintf(errstr, errsize, "%s: %s", topic,
                         rd_kafka_err2str(kerr));
                return TT_ERR_KAFKA;
        }
        return TT_ERR_OK;
}

/* Waits until no transaction is open on the state topic: its last stable
 * offset (what read_committed reads up to) is its log end. A merger that
 * was killed mid-transaction leaves one open until the broker aborts it
 * (transaction.timeout.ms), and until then the LSO hides every record
 * after its first one, including checkpoints the next merger committed
 * since. A restore that stopped there lost them: a week closed twice,
 * counts merged after it missing (tests/it_kafka_eos.sh multi, 3 of 5
 * runs under load). Records before the LSO are all decided; records of
 * the open transaction are either aborted (the dead instance's) or ours
 * (none: we write the state only as the merger). */
static int wait_stable(rd_kafka_t *rk, const tt_merger_conf *c, int64_t *hi,
                       char *errstr, size_t errsize) {
        rd_kafka_t *end = end_consumer_new(c, errstr, errsize);
        if (!end)
                return TT_ERR_KAFKA;
        int err = TT_ERR_OK;
        bool logged = false;
        for (int waited = 0;; waited += 200) {
                int64_t lo, lso, log_end;
                rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
                    rk, c->state_topic, 0, &lo, &lso, 30000);
                if (!kerr)
                        kerr = rd_kafka_query_watermark_offsets(
                            end, c->state_topic, 0, &lo, &log_end, 30000);
                if (kerr) {
                        snprintf(errstr, errsize, "state topic %s: %s",
                                 c->state_topic, rd_kafka_err2str(kerr));
                        err = TT_ERR_KAFKA;
                        break;
                }
                if (lso >= log_end) {
                        *hi = lso;
                        break;
                }
                if (waited >= STABLE_TIMEOUT_MS) {
                        snprintf(errstr, errsize,
                                 "state topic %s: a transaction is still open "
                                 "after %d s (last stable offset %lld, end "
                                 "%lld)",
                                 c->state_topic, STABLE_TIMEOUT_MS / 1000,
                                 (long long)lso, (long long)log_end);
                        err = TT_ERR_KAFKA;
                        break;
                }
                if (!logged && c->on_wait)
                        c->on_wait(c->opaque, lso, log_end);
                logged = true;
                rd_kafka_poll(end, 200);
        }
        rd_kafka_destroy(end);
        return err;
}

/* Reads the state topic's one partition from the start to its end. */
static int read_state(const tt_merger_conf *c, latest_set *out, uint64_t *nread,
                      char *errstr, size_t errsize) {
        rd_kafka_conf_t *kc = tt_kafka_conf_new(c->props, c->nprops, c->xprops,
                                                c->nxprops, errstr, errsize);
        if (!kc)
                return TT_ERR_INVAL;
        char why[512];
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof(why));
        if (!rk) {
                rd_kafka_conf_destroy(kc);
                snprintf(errstr, errsize, "state consumer: %s", why);
                return TT_ERR_KAFKA;
        }
        int64_t lo = 0, hi = 0;
        int err = wait_stable(rk, c, &hi, errstr, errsize);
        if (err)
                goto out;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            rk, c->state_topic, 0, &lo, &hi, 30000);
        if (kerr) {
                snprintf(errstr, errsize, "state topic %s: %s", c->state_topic,
                         rd_kafka_err2str(kerr));
                err = TT_ERR_KAFKA;
                goto out;
        }
        if (hi <= lo)
                goto out; /* empty: a fresh state */
        rd_kafka_topic_partition_list_t *a =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(a, c->state_topic, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, a);
        rd_kafka_topic_partition_list_destroy(a);
        size_t plen = strlen(c->group);
        /* read_committed stops at the last stable offset, which may be
         * below hi (aborted or open transactions' markers): EOF ends it. */
        for (;;) {
                rd_kafka_message_t *msg =
                    rd_kafka_consumer_poll(rk, RESTORE_TIMEOUT_MS);
                if (!msg) {
                        snprintf(errstr, errsize,
                                 "state topic %s: no end after %d s",
                                 c->state_topic, RESTORE_TIMEOUT_MS / 1000);
                        err = TT_ERR_KAFKA;
                        break;
                }
                if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        rd_kafka_message_destroy(msg);
                        break;
                }
                if (msg->err) {
                        snprintf(errstr, errsize, "state topic %s: %s",
                                 c->state_topic, rd_kafka_message_errstr(msg));
                        rd_kafka_message_destroy(msg);
                        err = TT_ERR_KAFKA;
                        break;
                }
                (*nread)++;
                /* Only this group's keys: "<group>/..." */
                if (msg->key_len > plen + 1 &&
                    !memcmp(msg->key, c->group, plen) &&
                    ((const char *)msg->key)[plen] == '/')
                        err = latest_put(out, msg->key, msg->key_len,
                                         msg->payload, msg->len, msg->offset);
                int64_t off = msg->offset;
                rd_kafka_message_destroy(msg);
                if (err) {
                        snprintf(errstr, errsize, "state restore: %s",
                                 tt_err2str(err));
                        break;
                }
                if (off + 1 >= hi)
                        break;
        }
out:
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return err;
}

tt_merger *tt_merger_new(const tt_merger_conf *c, const tt_sink *sink,
                         void *opaque, int32_t npartitions, uint64_t *restored,
                         char *errstr, size_t errsize, int *errp) {
        *restored = 0;
        *errp = TT_ERR_NOMEM;
        tt_merger *m = tt_calloc(1, sizeof(*m));
        if (!m || !(m->group = tt_malloc(strlen(c->group) + 1))) {
                tt_free(m);
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        strcpy(m->group, c->group);
        tt_engine_conf ec = c->engine;
        ec.nshards = 1;
        ec.idle_timeout_ms = 0; /* fronts report idleness */
        ec.max_future_ms = -1;  /* fronts checked it against their clock */
        /* --max-keys is applied by the fronts, where an event over it still
         * has its bytes for the dead letter; the merger takes every cell
         * they counted (several fronts may each hold the bound). */
        ec.max_models = 0;
        if (!(m->e = tt_engine_new(&ec, sink, opaque, errstr, errsize)))
                goto fail;
        latest_set s = {0};
        if ((*errp = read_state(c, &s, restored, errstr, errsize))) {
                latest_free(&s);
                goto fail;
        }
        bool had_meta = false;
        for (size_t i = 0; i < s.n; i++) {
                if (s.v[i].tomb)
                        continue;
                /* A state record that does not check out stops the restore
                 * (and so the stage, with this reason): running on
                 * without the week it held would emit wrong totals as
                 * FINAL, and what it did apply is in the engine. */
                char why[400];
                if ((*errp =
                         tt_engine_load(m->e, s.v[i].val.data, s.v[i].val.len,
                                        why, sizeof(why)))) {
                        snprintf(errstr, errsize,
                                 "state topic %s partition 0 offset %" PRId64
                                 " key %.100s: %s",
                                 c->state_topic, s.v[i].offset, s.v[i].key,
                                 why);
                        latest_free(&s);
                        goto fail;
                }
                had_meta |= s.v[i].val.len && s.v[i].val.data[0] == 'M';
        }
        latest_free(&s);
        /* Partitions the state does not know yet hold the watermark back
         * until their owner reports. */
        for (int32_t p = 0; p < npartitions; p++)
                tt_engine_partition_add(m->e, p, 0);
        (void)had_meta;
        /* What was restored counts as written. */
        if (checkpoint(m, NULL, NULL, true)) {
                *errp = TT_ERR_NOMEM;
                snprintf(errstr, errsize, "out of memory");
                goto fail;
        }
        *errp = TT_ERR_OK;
        return m;
fail:
        tt_merger_destroy(m);
        return NULL;
}

void tt_merger_destroy(tt_merger *m) {
        if (!m)
                return;
        tt_engine_destroy(m->e);
        tt_free(m->w);
        tt_free(m->group);
        tt_free(m);
}
