/* The Kafka output adapter (SPEC §4-§7): one idempotent producer shared by
 * the coordinator (rollups, streaks) and the workers (dead letters). Every
 * delivery report is checked; the first failure is kept as a sticky error
 * so that the stage stops and does not commit past output it lost. */
#include "tokentally/kafka_out.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/clock.h"
#include "tokentally/err.h"
#include "tokentally/kafka_conf.h"
#include "tokentally/framing.h"
#include "tokentally/json_out.h"
#include "tokentally/log.h"
#include "tokentally/mem.h"
#include "tokentally/schema_registry.h"

/* Ceiling of one encoded key + value. Rollups and streaks are a few hundred
 * bytes (model slugs are capped at 256); this only stops a runaway. */
#define SCRATCH_MAX (1u << 20)
#define DESTROY_FLUSH_MS 30000

/* An encoding buffer lent to one producing thread for one record. Freed
 * buffers go back to a free list, so once every thread that produces has
 * had one, no record allocates. The list is as long as the most threads
 * that ever produced at the same time. */
typedef struct scratch {
        tt_buf b;
        struct scratch *next;
} scratch;

enum { OUT_ROLLUPS, OUT_STREAKS, OUT_DLQ, OUT__COUNT };

struct tt_kafka_out {
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt[OUT__COUNT]; /* NULL: no topic configured */
        bool json;
        int32_t rollup_id, streak_id; /* schema ids in the Confluent header */

        atomic_int failed; /* sticky: 0 or the first tt_err */
        /* A delivery failed for a reason no retry can mend (see
         * permanent_error()): the stage must stop, not redo the work. */
        atomic_bool permanent;
        /* The largest offset delivered to track_topic (-1: none yet). */
        char track_topic[256];
        _Atomic int64_t tracked;
        atomic_uint_fast64_t delivered;
        pthread_mutex_t err_mu; /* guards why and last_broker_error */
        char why[512];
        char last_broker_error[256]; /* transient, for flush timeouts */

        pthread_mutex_t pool_mu;
        scratch *pool;
};

static const char *const out_name[OUT__COUNT] = {"rollups", "streaks",
                                                 "dead-letter"};

/* Keeps the first failure only: later ones are usually its consequences. */
static void fail(tt_kafka_out *o, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(tt_kafka_out *o, int err, const char *fmt, ...) {
        pthread_mutex_lock(&o->err_mu);
        if (!atomic_load(&o->failed)) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(o->why, sizeof(o->why), fmt, ap);
                va_end(ap);
                /* Published after why, so a reader that sees failed set
                 * and takes the lock finds the reason written. */
                atomic_store(&o->failed, err);
        }
        pthread_mutex_unlock(&o->err_mu);
}

/* Runs on whichever thread serves the queue (poll, flush), possibly several
 * at once. */
/* Errors that a new producer redoing the same work would meet again: the
 * topic is missing, we may not write to it, or the record is refused.
 * (librdkafka has already waited topic.metadata.propagation.max.ms before
 * it reports a topic as unknown.) Anything else — timeouts, a broker
 * outage, an aborted transaction's purged records — is worth a retry. */
static bool permanent_error(rd_kafka_resp_err_t e) {
        switch (e) {
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
        case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
                return true;
        default:
                return false;
        }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                      void *opaque) {
        tt_kafka_out *o = opaque;
        (void)rk;
        if (!m->err) {
                atomic_fetch_add(&o->delivered, 1);
                if (o->track_topic[0] && m->rkt &&
                    !strcmp(rd_kafka_topic_name(m->rkt), o->track_topic)) {
                        int64_t t = atomic_load(&o->tracked);
                        while (m->offset > t && !atomic_compare_exchange_weak(
                                                    &o->tracked, &t, m->offset))
                                ;
                }
                return;
        }
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "?";
        if (permanent_error(m->err) && !atomic_load(&o->permanent)) {
                /* The reason the stage stops with: it replaces a first
                 * failure that was only a consequence (a purged record). */
                pthread_mutex_lock(&o->err_mu);
                snprintf(o->why, sizeof(o->why),
                         "delivery to topic %s failed: %s (%s)", topic,
                         rd_kafka_err2str(m->err), rd_kafka_err2name(m->err));
                atomic_store(&o->permanent, true);
                atomic_store(&o->failed, TT_ERR_KAFKA);
                pthread_mutex_unlock(&o->err_mu);
                return;
        }
        fail(o, TT_ERR_KAFKA, "delivery to topic %s failed: %s (%s)", topic,
             rd_kafka_err2str(m->err), rd_kafka_err2name(m->err));
}

/* Broker and connection errors are transient (librdkafka retries until
 * message.timeout.ms, and the delivery report then tells what was lost);
 * only a fatal error — the idempotent producer can no longer guarantee
 * order or no duplicates — ends the producer. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        tt_kafka_out *o = opaque;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char fatal[256];
                rd_kafka_resp_err_t orig =
                    rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                fail(o, TT_ERR_KAFKA, "fatal producer error: %s (%s)", fatal,
                     rd_kafka_err2name(orig));
                return;
        }
        pthread_mutex_lock(&o->err_mu);
        snprintf(o->last_broker_error, sizeof(o->last_broker_error), "%s: %s",
                 rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
        pthread_mutex_unlock(&o->err_mu);
}

static scratch *scratch_get(tt_kafka_out *o) {
        pthread_mutex_lock(&o->pool_mu);
        scratch *s = o->pool;
        if (s)
                o->pool = s->next;
        pthread_mutex_unlock(&o->pool_mu);
        if (!s) {
                s = tt_malloc(sizeof(*s));
                if (!s)
                        return NULL;
                tt_buf_init(&s->b, SCRATCH_MAX);
        }
        tt_buf_reset(&s->b);
        return s;
}

static void scratch_put(tt_kafka_out *o, scratch *s) {
        pthread_mutex_lock(&o->pool_mu);
        s->next = o->pool;
        o->pool = s;
        pthread_mutex_unlock(&o->pool_mu);
}

static void free_out(tt_kafka_out *o) {
        for (int i = 0; i < OUT__COUNT; i++)
                if (o->rkt[i])
                        rd_kafka_topic_destroy(o->rkt[i]);
        if (o->rk)
                rd_kafka_destroy(o->rk);
        while (o->pool) {
                scratch *s = o->pool;
                o->pool = s->next;
                tt_buf_free(&s->b);
                tt_free(s);
        }
        pthread_mutex_destroy(&o->err_mu);
        pthread_mutex_destroy(&o->pool_mu);
        tt_free(o);
}

/* Registers schema under "<topic>-value" (none for a NULL topic). */
static int register_output(tt_registry *reg, const char *topic,
                           const char *schema, int32_t *id, char *errstr,
                           size_t errsize) {
        if (!topic)
                return TT_ERR_OK;
        char subject[512];
        snprintf(subject, sizeof(subject), "%s-value", topic);
        return tt_registry_register(reg, subject, schema, id, errstr, errsize);
}

tt_kafka_out *tt_kafka_out_new(const tt_kafka_out_conf *c, char *errstr,
                               size_t errsize) {
        tt_kafka_out *o = tt_calloc(1, sizeof(*o));
        if (!o) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&o->err_mu, NULL);
        pthread_mutex_init(&o->pool_mu, NULL);
        atomic_init(&o->failed, 0);
        atomic_init(&o->delivered, 0);
        atomic_init(&o->permanent, false);
        atomic_init(&o->tracked, -1);
        o->json = c->json;
        o->rollup_id = TT_SCHEMA_ID_WEEKLY_ROLLUP;
        o->streak_id = TT_SCHEMA_ID_STREAK_CHANGE;
        if (c->registry && !c->json &&
            (register_output(c->registry, c->rollups_topic,
                             tt_weekly_rollup_schema_json, &o->rollup_id,
                             errstr, errsize) ||
             register_output(c->registry, c->streaks_topic,
                             tt_streak_change_schema_json, &o->streak_id,
                             errstr, errsize))) {
                free_out(o);
                return NULL;
        }

        /* Ours first, then -X: the user's properties win, as in kcat. */
        const tt_kafka_prop defaults[] = {
            {"bootstrap.servers", c->brokers},
            {"enable.idempotence", "true"},
            {"linger.ms", "5"},
            /* Dead letters carry input messages unchanged plus headers: room
             * for the largest a broker accepts by default, and more. */
            {"message.max.bytes", "16777216"},
            {"compression.codec", "none"},
            {"transactional.id", c->transactional_id},
            /* An instance that dies mid-transaction blocks read_committed
             * readers of the outputs until its transaction times out or
             * a restart with the same id aborts it: keep that short. */
            {"transaction.timeout.ms", c->transactional_id ? "30000" : NULL},
        };
        rd_kafka_conf_t *conf =
            tt_kafka_conf_new(defaults, sizeof(defaults) / sizeof(defaults[0]),
                              c->props, c->nprops, errstr, errsize);
        if (!conf) {
                free_out(o);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        rd_kafka_conf_set_log_cb(conf, tt_log_rdkafka); /* JSON lines */
        rd_kafka_conf_set_error_cb(conf, error_cb);
        rd_kafka_conf_set_opaque(conf, o);

        char why[512];
        o->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
        if (!o->rk) {
                /* conf is still ours when rd_kafka_new fails. */
                rd_kafka_conf_destroy(conf);
                snprintf(errstr, errsize, "kafka producer: %s", why);
                free_out(o);
                return NULL;
        }
        const char *topics[OUT__COUNT] = {c->rollups_topic, c->streaks_topic,
                                          c->dlq_topic};
        for (int i = 0; i < OUT__COUNT; i++) {
                if (!topics[i])
                        continue;
                o->rkt[i] = rd_kafka_topic_new(o->rk, topics[i], NULL);
                if (!o->rkt[i]) {
                        snprintf(errstr, errsize, "%s topic %s: %s",
                                 out_name[i], topics[i],
                                 rd_kafka_err2str(rd_kafka_last_error()));
                        free_out(o);
                        return NULL;
                }
        }
        return o;
}

void tt_kafka_out_abandon(tt_kafka_out *o) {
        if (!o)
                return;
        rd_kafka_purge(o->rk,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        free_out(o);
}

void tt_kafka_out_destroy(tt_kafka_out *o) {
        if (!o)
                return;
        rd_kafka_flush(o->rk, DESTROY_FLUSH_MS);
        free_out(o);
}

/* Queues one record (librdkafka copies key, value; it takes hdrs on
 * success). A full queue is backpressure: serve delivery reports until
 * there is room, never drop. */
static int produce(tt_kafka_out *o, int out, const void *key, size_t klen,
                   const void *val, size_t vlen, rd_kafka_headers_t *hdrs) {
        rd_kafka_topic_t *rkt = o->rkt[out];
        if (!rkt)
                return TT_ERR_INVAL;
        for (;;) {
                int failed = atomic_load(&o->failed);
                if (failed)
                        return failed;
                rd_kafka_resp_err_t err;
                if (hdrs)
                        err = rd_kafka_producev(
                            o->rk, RD_KAFKA_V_RKT(rkt),
                            RD_KAFKA_V_KEY(key, klen),
                            RD_KAFKA_V_VALUE((void *)val, vlen),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                else
                        err = rd_kafka_producev(
                            o->rk, RD_KAFKA_V_RKT(rkt),
                            RD_KAFKA_V_KEY(key, klen),
                            RD_KAFKA_V_VALUE((void *)val, vlen),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_END);
                if (!err)
                        break;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        /* Not queued (too large, fatal producer, ...): the
                         * record is lost, which is as bad as a failed
                         * delivery. */
                        fail(o, TT_ERR_KAFKA, "produce to topic %s: %s (%s)",
                             rd_kafka_topic_name(rkt), rd_kafka_err2str(err),
                             rd_kafka_err2name(err));
                        return TT_ERR_KAFKA;
                }
                rd_kafka_poll(o->rk, 50);
        }
        /* Serve delivery reports as we go so failures surface early. */
        rd_kafka_poll(o->rk, 0);
        return TT_ERR_OK;
}

/* Appends the value of a rollup or streak to b: Confluent header + Avro
 * body, or the JSON object without its line feed. */
static int encode_value(const tt_kafka_out *o, tt_buf *b, const tt_rollup *r,
                        const tt_streak_change *s) {
        int err;
        if (o->json) {
                err = r ? tt_json_rollup(b, r) : tt_json_streak(b, s);
                if (!err)
                        b->len--; /* the '\n' of JSON Lines */
                return err;
        }
        err = tt_buf_reserve(b, TT_CONFLUENT_HEADER_LEN);
        if (err)
                return err;
        tt_confluent_header(b->data + b->len, r ? o->rollup_id : o->streak_id);
        b->len += TT_CONFLUENT_HEADER_LEN;
        err = r ? tt_avro_encode_rollup(b, r) : tt_avro_encode_streak(b, s);
        if (err)
                b->len -= TT_CONFLUENT_HEADER_LEN;
        return err;
}

int tt_kafka_out_rollup(tt_kafka_out *o, const tt_rollup *r) {
        int err = atomic_load(&o->failed);
        if (err)
                return err;
        scratch *sc = scratch_get(o);
        if (!sc)
                return TT_ERR_NOMEM;
        /* Key then value in one buffer; offsets, as the buffer may move. */
        err = tt_rollup_key(&sc->b, r);
        size_t klen = sc->b.len;
        if (!err)
                err = encode_value(o, &sc->b, r, NULL);
        if (!err)
                err = produce(o, OUT_ROLLUPS, sc->b.data, klen,
                              sc->b.data + klen, sc->b.len - klen, NULL);
        scratch_put(o, sc);
        return err;
}

int tt_kafka_out_streak(tt_kafka_out *o, const tt_streak_change *s) {
        int err = atomic_load(&o->failed);
        if (err)
                return err;
        scratch *sc = scratch_get(o);
        if (!sc)
                return TT_ERR_NOMEM;
        err = encode_value(o, &sc->b, NULL, s);
        if (!err)
                err = produce(o, OUT_STREAKS, s->rule.ptr,
                              s->rule.ptr ? s->rule.len : 0, sc->b.data,
                              sc->b.len, NULL);
        scratch_put(o, sc);
        return err;
}

int tt_kafka_out_dead_letter(tt_kafka_out *o, tt_reason reason,
                             const char *detail, const char *src_topic,
                             int32_t src_partition, int64_t src_offset,
                             const void *key, size_t key_len, const void *value,
                             size_t value_len) {
        int err = atomic_load(&o->failed);
        if (err)
                return err;
        if (!o->rkt[OUT_DLQ])
                return TT_ERR_INVAL;
        char part[16], off[24];
        snprintf(part, sizeof(part), "%" PRId32, src_partition);
        snprintf(off, sizeof(off), "%" PRId64, src_offset);
        rd_kafka_headers_t *h = rd_kafka_headers_new(5);
        if (!h)
                return TT_ERR_NOMEM;
        /* A missing detail or topic is a null header value, not "". */
        rd_kafka_header_add(h, "tokentally.reason", -1, tt_reason_str(reason),
                            -1);
        rd_kafka_header_add(h, "tokentally.detail", -1, detail,
                            detail ? -1 : 0);
        rd_kafka_header_add(h, "tokentally.topic", -1, src_topic,
                            src_topic ? -1 : 0);
        rd_kafka_header_add(h, "tokentally.partition", -1, part, -1);
        rd_kafka_header_add(h, "tokentally.offset", -1, off, -1);
        err = produce(o, OUT_DLQ, key, key ? key_len : 0, value,
                      value ? value_len : 0, h);
        if (err) /* still ours when producev failed */
                rd_kafka_headers_destroy(h);
        return err;
}

int tt_kafka_out_error(tt_kafka_out *o, char *errstr, size_t errsize) {
        if (!atomic_load(&o->failed)) {
                /* A fatal error not yet served by a poll. */
                char fatal[256];
                rd_kafka_resp_err_t ferr =
                    rd_kafka_fatal_error(o->rk, fatal, sizeof(fatal));
                if (ferr)
                        fail(o, TT_ERR_KAFKA, "fatal producer error: %s (%s)",
                             fatal, rd_kafka_err2name(ferr));
        }
        int err = atomic_load(&o->failed);
        if (errsize) {
                errstr[0] = '\0';
                if (err) {
                        pthread_mutex_lock(&o->err_mu);
                        snprintf(errstr, errsize, "%s", o->why);
                        pthread_mutex_unlock(&o->err_mu);
                }
        }
        return err;
}

int tt_kafka_out_flush(tt_kafka_out *o, int timeout_ms, char *errstr,
                       size_t errsize) {
        rd_kafka_resp_err_t ferr = rd_kafka_flush(o->rk, timeout_ms);
        int err = tt_kafka_out_error(o, errstr, errsize);
        if (err)
                return err;
        if (ferr) {
                /* Not sticky: the records may still be delivered. */
                pthread_mutex_lock(&o->err_mu);
                snprintf(errstr, errsize,
                         "flush: not done after %d ms (%d message(s) or "
                         "request(s) in flight)%s%s",
                         timeout_ms, rd_kafka_outq_len(o->rk),
                         o->last_broker_error[0] ? "; last broker error: " : "",
                         o->last_broker_error);
                pthread_mutex_unlock(&o->err_mu);
                return TT_ERR_KAFKA;
        }
        return TT_ERR_OK;
}

void tt_kafka_out_poll(tt_kafka_out *o) {
        rd_kafka_poll(o->rk, 0);
}

uint64_t tt_kafka_out_delivered(const tt_kafka_out *o) {
        return atomic_load(&o->delivered);
}

bool tt_kafka_out_permanent(tt_kafka_out *o) {
        return atomic_load(&o->permanent);
}

void tt_kafka_out_track(tt_kafka_out *o, const char *topic) {
        snprintf(o->track_topic, sizeof(o->track_topic), "%s", topic);
}

int64_t tt_kafka_out_tracked(tt_kafka_out *o) {
        return atomic_load(&o->tracked);
}

int tt_kafka_out_check_topics(tt_kafka_out *o, int timeout_ms, char *errstr,
                              size_t errsize) {
        for (int i = 0; i < OUT__COUNT; i++) {
                if (!o->rkt[i])
                        continue;
                rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
                /* A broker that creates topics on first use answers
                 * LEADER_NOT_AVAILABLE while it does: ask again, within
                 * timeout_ms in all (each request waits at most 2 s). */
                double t0 = tt_mono_s();
                while ((tt_mono_s() - t0) * 1000 < timeout_ms) {
                        const struct rd_kafka_metadata *md = NULL;
                        err = rd_kafka_metadata(o->rk, 0, o->rkt[i], &md, 2000);
                        if (!err)
                                err = md->topic_cnt == 1
                                          ? md->topics[0].err
                                          : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
                        if (md)
                                rd_kafka_metadata_destroy(md);
                        if (err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
                            err != RD_KAFKA_RESP_ERR__TIMED_OUT &&
                            err != RD_KAFKA_RESP_ERR__TRANSPORT)
                                break;
                        rd_kafka_poll(o->rk, 200);
                }
                if (!err)
                        continue;
                const char *name = rd_kafka_topic_name(o->rkt[i]);
                /* Only what the operator must mend stops the start; a
                 * cluster that is slow or still starting is retried by
                 * the stage as usual. */
                bool fatal =
                    err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                    err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
                if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                        snprintf(errstr, errsize,
                                 "%s topic %s does not exist on the cluster "
                                 "(%s): create it first",
                                 out_name[i], name, rd_kafka_err2name(err));
                else
                        snprintf(errstr, errsize, "%s topic %s: %s (%s)",
                                 out_name[i], name, rd_kafka_err2str(err),
                                 rd_kafka_err2name(err));
                return fatal ? TT_ERR_KAFKA : TT_ERR_RETRY;
        }
        return TT_ERR_OK;
}

int tt_kafka_out_reach(tt_kafka_out *o, const char *brokers, int64_t timeout_ms,
                       volatile sig_atomic_t *stop, char *errstr,
                       size_t errsize) {
        return tt_kafka_reach(o->rk, brokers, timeout_ms, stop, errstr,
                              errsize);
}

int tt_kafka_out_raw(tt_kafka_out *o, const char *topic, int32_t partition,
                     const void *key, size_t klen, const void *val,
                     size_t vlen) {
        for (;;) {
                int failed = atomic_load(&o->failed);
                if (failed)
                        return failed;
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    o->rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA
                                                       : partition),
                    RD_KAFKA_V_KEY(key, klen),
                    RD_KAFKA_V_VALUE((void *)val, vlen),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (!err)
                        break;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        fail(o, TT_ERR_KAFKA, "produce to topic %s: %s (%s)",
                             topic, rd_kafka_err2str(err),
                             rd_kafka_err2name(err));
                        return TT_ERR_KAFKA;
                }
                rd_kafka_poll(o->rk, 50);
        }
        rd_kafka_poll(o->rk, 0);
        return TT_ERR_OK;
}

/* ---- transactions ------------------------------------------------------ */

#define TXN_TIMEOUT_MS 60000
#define TXN_RETRIES 20

/* Classifies and frees a transactional API error: TT_ERR_EOF "call
 * again" (retriable), TT_ERR_KAFKA fenced by a newer instance with our
 * transactional.id (we must stop: it owns the work now), TT_ERR_RETRY
 * anything else, abortable or fatal: the caller aborts if it can and
 * redoes the work from the last commit with a new producer, whose
 * init_transactions aborts whatever this one left open. */
static int txn_result(rd_kafka_error_t *e, const char *what, char *errstr,
                      size_t errsize) {
        if (!e)
                return TT_ERR_OK;
        snprintf(errstr, errsize, "%s: %s (%s)", what, rd_kafka_error_string(e),
                 rd_kafka_error_name(e));
        rd_kafka_resp_err_t code = rd_kafka_error_code(e);
        int err = code == RD_KAFKA_RESP_ERR__FENCED ||
                          code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED
                      ? TT_ERR_KAFKA
                  : !rd_kafka_error_is_fatal(e) &&
                          !rd_kafka_error_txn_requires_abort(e) &&
                          rd_kafka_error_is_retriable(e)
                      ? TT_ERR_EOF
                      : TT_ERR_RETRY;
        rd_kafka_error_destroy(e);
        return err;
}

int tt_kafka_out_txn_init(tt_kafka_out *o, int timeout_ms, char *errstr,
                          size_t errsize) {
        int err;
        for (int i = 0; i < TXN_RETRIES; i++) {
                err = txn_result(rd_kafka_init_transactions(o->rk, timeout_ms),
                                 "init_transactions", errstr, errsize);
                if (err != TT_ERR_EOF)
                        return err;
        }
        return TT_ERR_RETRY;
}

int tt_kafka_out_txn_begin(tt_kafka_out *o, char *errstr, size_t errsize) {
        int err = txn_result(rd_kafka_begin_transaction(o->rk),
                             "begin_transaction", errstr, errsize);
        return err == TT_ERR_EOF ? TT_ERR_RETRY : err;
}

int tt_kafka_out_txn_abort(tt_kafka_out *o, char *errstr, size_t errsize) {
        int err;
        for (int i = 0; i < TXN_RETRIES; i++) {
                err = txn_result(
                    rd_kafka_abort_transaction(o->rk, TXN_TIMEOUT_MS),
                    "abort_transaction", errstr, errsize);
                if (err != TT_ERR_EOF)
                        return err;
        }
        return TT_ERR_RETRY;
}

int tt_kafka_out_txn_commit(tt_kafka_out *o,
                            const rd_kafka_topic_partition_list_t *offs,
                            rd_kafka_t *consumer, char *errstr,
                            size_t errsize) {
        int err = TT_ERR_EOF;
        if (offs && offs->cnt) {
                rd_kafka_consumer_group_metadata_t *md =
                    rd_kafka_consumer_group_metadata(consumer);
                for (int i = 0; i < TXN_RETRIES && err == TT_ERR_EOF; i++)
                        err = txn_result(rd_kafka_send_offsets_to_transaction(
                                             o->rk, offs, md, TXN_TIMEOUT_MS),
                                         "send_offsets_to_transaction", errstr,
                                         errsize);
                rd_kafka_consumer_group_metadata_destroy(md);
                if (err == TT_ERR_EOF)
                        err = TT_ERR_RETRY;
                if (err)
                        goto failed;
        }
        err = TT_ERR_EOF;
        for (int i = 0; i < TXN_RETRIES && err == TT_ERR_EOF; i++)
                err = txn_result(
                    rd_kafka_commit_transaction(o->rk, TXN_TIMEOUT_MS),
                    "commit_transaction", errstr, errsize);
        if (err == TT_ERR_EOF)
                err = TT_ERR_RETRY;
        if (!err) {
                /* A delivery error inside a committed transaction cannot
                 * happen (commit flushes and fails instead); one before it
                 * would have made the commit abortable. */
                return TT_ERR_OK;
        }
failed:
        /* No abort here: it can block for long on a producer in a failed
         * state (it hung a stage inside a rebalance callback), and the
         * caller's next producer, with the same transactional.id, aborts
         * this transaction when it initialises. */
        return err;
}

bool tt_kafka_out_fenced(tt_kafka_out *o) {
        char why[256];
        rd_kafka_resp_err_t e = rd_kafka_fatal_error(o->rk, why, sizeof(why));
        return e == RD_KAFKA_RESP_ERR__FENCED ||
               e == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
               e == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}
