/* The follower of `serve`, `report --brokers` and `demo --serve`: the
 * output topics into a materialized view (see serve_follow.h). */
#include "tokentally/serve_follow.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/avro_read.h"
#include "tokentally/buf.h"
#include "tokentally/kafka_conf.h"
#include "tokentally/kafka_out.h"
#include "tokentally/mem.h"
#include "tokentally/output_read.h"

struct tt_follow {
        rd_kafka_t *rk;
        rd_kafka_topic_partition_list_t *parts;
        int64_t *end; /* per partition: the end offset seen at start */
        bool *caught; /* read to it */
        int ncaught;
        atomic_bool ready;
        tt_sview *view;
        pthread_mutex_t *lock;
        tt_buf scratch;
        uint64_t applied, skipped;
};

/* The record's type from its bytes alone, as `tail` tells them: Confluent
 * framing with the rollup or streak schema id, or another id whose body
 * decodes as exactly one of the two (a schema registry's ids), or the JSON
 * of --output-format json. 0 rollup, 1 streak, -1 not recognised. */
static int decode(tt_follow *f, const rd_kafka_message_t *m, tt_rollup *r,
                  tt_streak_change *s) {
        switch (tt_output_decode(m->payload, m->len, &f->scratch, r, s)) {
        case TT_OUT_ROLLUP:
                return 0;
        case TT_OUT_STREAK:
                return 1;
        case TT_OUT_UNKNOWN:
                break;
        }
        return -1;
}

tt_follow *tt_follow_new(const tt_follow_conf *c, tt_sview *view,
                         pthread_mutex_t *lock, char *errstr, size_t errsize) {
        tt_follow *f = tt_calloc(1, sizeof(*f));
        if (!f) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        f->view = view;
        f->lock = lock;
        tt_buf_init(&f->scratch, (size_t)64 << 20);
        const tt_kafka_prop defaults[] = {
            {"bootstrap.servers", c->brokers},
            {"group.id", c->client_id},
            {"client.id", c->client_id},
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"enable.partition.eof", "true"},
            /* The stage writes in transactions: committed records only. */
            {"isolation.level", "read_committed"},
            {"fetch.message.max.bytes", "16777216"},
        };
        rd_kafka_conf_t *conf =
            tt_kafka_conf_new(defaults, sizeof(defaults) / sizeof(defaults[0]),
                              c->props, c->nprops, errstr, errsize);
        if (!conf)
                goto fail;
        f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errsize);
        if (!f->rk) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        rd_kafka_poll_set_consumer(f->rk);
        if (tt_kafka_reach(f->rk, c->brokers, c->connect_timeout_ms, NULL,
                           errstr, errsize))
                goto fail;
        int64_t md_timeout =
            c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 30000;
        f->parts = rd_kafka_topic_partition_list_new(8);
        if (tt_output_add_partitions(f->rk, c->rollups_topic,
                                     RD_KAFKA_OFFSET_BEGINNING, (int)md_timeout,
                                     f->parts, errstr, errsize) ||
            tt_output_add_partitions(f->rk, c->streaks_topic,
                                     RD_KAFKA_OFFSET_BEGINNING, (int)md_timeout,
                                     f->parts, errstr, errsize))
                goto fail;
        int n = f->parts->cnt;
        f->end = tt_calloc((size_t)n, sizeof(*f->end));
        f->caught = tt_calloc((size_t)n, sizeof(*f->caught));
        if (!f->end || !f->caught) {
                snprintf(errstr, errsize, "out of memory");
                goto fail;
        }
        /* Readiness: the end offsets as they are now. */
        for (int i = 0; i < n; i++) {
                int64_t lo = 0, hi = 0;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    f->rk, f->parts->elems[i].topic,
                    f->parts->elems[i].partition, &lo, &hi, (int)md_timeout);
                if (err) {
                        snprintf(errstr, errsize, "end offset of %s [%d]: %s",
                                 f->parts->elems[i].topic,
                                 (int)f->parts->elems[i].partition,
                                 rd_kafka_err2str(err));
                        goto fail;
                }
                f->end[i] = hi;
                if (hi <= lo) { /* empty: nothing to catch up with */
                        f->caught[i] = true;
                        f->ncaught++;
                }
        }
        atomic_store(&f->ready, f->ncaught == n);
        rd_kafka_resp_err_t aerr = rd_kafka_assign(f->rk, f->parts);
        if (aerr) {
                snprintf(errstr, errsize, "assign: %s", rd_kafka_err2str(aerr));
                goto fail;
        }
        return f;
fail:
        tt_follow_destroy(f);
        return NULL;
}

static int part_index(const tt_follow *f, const rd_kafka_message_t *m) {
        const char *t = rd_kafka_topic_name(m->rkt);
        for (int i = 0; i < f->parts->cnt; i++)
                if (f->parts->elems[i].partition == m->partition &&
                    !strcmp(f->parts->elems[i].topic, t))
                        return i;
        return -1;
}

/* A partition is caught up once read past the end offset it had at start
 * (its EOF's offset, or a record's). */
static void reached(tt_follow *f, int i, int64_t next_offset) {
        if (i < 0 || f->caught[i] || next_offset < f->end[i])
                return;
        f->caught[i] = true;
        if (++f->ncaught == f->parts->cnt)
                atomic_store(&f->ready, true);
}

int tt_follow_run(tt_follow *f, volatile sig_atomic_t *stop, bool until_ready,
                  char *errstr, size_t errsize) {
        while (!(stop && *stop) && !(until_ready && tt_follow_ready(f))) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, 200);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        reached(f, part_index(f, m), m->offset);
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (m->err) {
                        bool fatal = tt_output_read_fatal(m->err);
                        snprintf(errstr, errsize, "%s",
                                 rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        if (fatal)
                                return -1;
                        continue;
                }
                tt_rollup r;
                tt_streak_change s;
                int err = 0;
                pthread_mutex_lock(f->lock);
                switch (decode(f, m, &r, &s)) {
                case 0:
                        err = tt_sview_rollup(f->view, &r);
                        f->applied++;
                        break;
                case 1:
                        err = tt_sview_streak(f->view, &s);
                        f->applied++;
                        break;
                default:
                        f->skipped++;
                }
                pthread_mutex_unlock(f->lock);
                reached(f, part_index(f, m), m->offset + 1);
                rd_kafka_message_destroy(m);
                if (err) {
                        snprintf(errstr, errsize, "out of memory");
                        return -1;
                }
        }
        return 0;
}

bool tt_follow_ready(const tt_follow *f) {
        return atomic_load(&((tt_follow *)f)->ready);
}

void tt_follow_counts(const tt_follow *f, uint64_t *applied,
                      uint64_t *skipped) {
        *applied = f->applied;
        *skipped = f->skipped;
}

void tt_follow_destroy(tt_follow *f) {
        if (!f)
                return;
        if (f->rk) {
                rd_kafka_consumer_close(f->rk);
                rd_kafka_destroy(f->rk);
        }
        if (f->parts)
                rd_kafka_topic_partition_list_destroy(f->parts);
        tt_free(f->end);
        tt_free(f->caught);
        tt_buf_free(&f->scratch);
        tt_free(f);
}
