/* gen -> Kafka: one producer, the scenario's events encoded as the stage
 * reads them. */
#include "tokentally/gen_kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/avro_event.h"
#include "tokentally/buf.h"
#include "tokentally/clock.h"
#include "tokentally/err.h"
#include "tokentally/framing.h"
#include "tokentally/json_event.h"
#include "tokentally/kafka_conf.h"
#include "tokentally/kafka_out.h"

typedef struct gk {
        rd_kafka_t *rk;
        const tt_gen_kafka_conf *kc;
        tt_buf buf;
        uint64_t produced;
        double t0;  /* tt_mono_s() at the start, for --rate */
        int failed; /* first delivery error */
        char why[256];
} gk;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        gk *g = opaque;
        (void)rk;
        if (m->err && !g->failed) {
                g->failed = TT_ERR_KAFKA;
                snprintf(g->why, sizeof(g->why), "delivery to %s: %s",
                         g->kc->topic, rd_kafka_err2str(m->err));
        }
}

/* --rate: event n is due n / rate seconds after the start; wait for it in
 * steps of at least 5 ms, serving delivery reports meanwhile. */
static void pace(gk *g) {
        double due = g->t0 + (double)g->produced / g->kc->rate;
        double wait;
        while ((wait = due - tt_mono_s()) >= 0.005)
                rd_kafka_poll(g->rk, (int)(wait * 1000));
}

static int produce(gk *g, const void *key, size_t klen) {
        for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    g->rk, RD_KAFKA_V_TOPIC(g->kc->topic),
                    RD_KAFKA_V_KEY(key, klen),
                    RD_KAFKA_V_VALUE(g->buf.data, g->buf.len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (!err)
                        break;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        snprintf(g->why, sizeof(g->why), "produce to %s: %s",
                                 g->kc->topic, rd_kafka_err2str(err));
                        return TT_ERR_KAFKA;
                }
                rd_kafka_poll(g->rk, 50); /* backpressure: wait for room */
        }
        g->produced++;
        rd_kafka_poll(g->rk, 0);
        if (g->kc->rate > 0)
                pace(g);
        return g->failed;
}

static int on_event(void *opaque, const tt_event *ev) {
        gk *g = opaque;
        tt_buf_reset(&g->buf);
        int err;
        if (g->kc->json) {
                err = tt_json_encode_event(&g->buf, ev);
        } else {
                err = tt_buf_reserve(&g->buf, TT_CONFLUENT_HEADER_LEN + 1024);
                if (!err) {
                        tt_confluent_header(g->buf.data,
                                            g->kc->schema_id
                                                ? g->kc->schema_id
                                                : TT_SCHEMA_ID_TOKEN_EVENT);
                        size_t n = tt_avro_encode_event(
                            ev, g->buf.data + TT_CONFLUENT_HEADER_LEN,
                            g->buf.cap - TT_CONFLUENT_HEADER_LEN);
                        g->buf.len = TT_CONFLUENT_HEADER_LEN + n;
                        err = n ? TT_ERR_OK : TT_ERR_LIMIT;
                }
        }
        if (err)
                return err;
        return produce(g, ev->request_id.ptr, ev->request_id.len);
}

static int on_raw(void *opaque, const uint8_t *p, size_t n) {
        gk *g = opaque;
        tt_buf_reset(&g->buf);
        int err = tt_buf_append(&g->buf, p, n);
        return err ? err : produce(g, NULL, 0);
}

int tt_gen_to_kafka(const tt_gen_conf *gc, const tt_gen_kafka_conf *kc,
                    uint64_t *count, char *errstr, size_t errsize) {
        gk g;
        memset(&g, 0, sizeof(g));
        g.kc = kc;
        tt_buf_init(&g.buf, 1u << 20);
        *count = 0;
        char why[512];
        const tt_kafka_prop defaults[] = {
            {"bootstrap.servers", kc->brokers},
            {"enable.idempotence", "true"},
            {"linger.ms", "20"},
            {"queue.buffering.max.messages", "1000000"},
            {"batch.num.messages", "10000"},
        };
        rd_kafka_conf_t *conf =
            tt_kafka_conf_new(defaults, sizeof(defaults) / sizeof(defaults[0]),
                              kc->props, kc->nprops, errstr, errsize);
        if (!conf)
                return TT_ERR_INVAL;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, &g);
        g.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
        if (!g.rk) {
                snprintf(errstr, errsize, "%s", why);
                return TT_ERR_KAFKA;
        }
        /* Before the first event: a cluster that does not answer would
         * otherwise be retried until every message times out. */
        int rerr = tt_kafka_reach(g.rk, kc->brokers, kc->connect_timeout_ms,
                                  NULL, errstr, errsize);
        if (rerr) {
                rd_kafka_destroy(g.rk);
                tt_buf_free(&g.buf);
                return rerr;
        }
        const tt_gen_sink sink = {on_event, on_raw};
        tt_gen_conf c = *gc;
        c.text_output = kc->json;
        g.t0 = tt_mono_s();
        int err = tt_gen_run(&c, &sink, &g, errstr, errsize);
        rd_kafka_resp_err_t ferr = rd_kafka_flush(g.rk, 120000);
        if (!err && ferr) {
                snprintf(errstr, errsize, "flush to %s: %s", kc->topic,
                         rd_kafka_err2str(ferr));
                err = TT_ERR_KAFKA;
        }
        if (!err && g.failed) {
                snprintf(errstr, errsize, "%s", g.why);
                err = g.failed;
        } else if (err && g.why[0]) {
                snprintf(errstr, errsize, "%s", g.why);
        }
        *count = g.produced;
        rd_kafka_destroy(g.rk);
        tt_buf_free(&g.buf);
        return err;
}
