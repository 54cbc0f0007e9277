/* Exactly-once, the merger side: the instance that owns the partials
 * partition applies every partial record to one engine, restores its
 * state from the changelog and checkpoints it (merger.h). */
#include "stage_impl.h"

static int32_t input_partitions(stage *st) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt =
            rd_kafka_topic_new(st->rk, st->conf->topic, NULL);
        int32_t n = -1;
        if (rkt && !rd_kafka_metadata(st->rk, 0, rkt, &md, 10000) &&
            md->topic_cnt == 1 && !md->topics[0].err)
                n = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return n;
}

static void merger_restore_waits(void *opaque, int64_t stable, int64_t end) {
        stage *st = opaque;
        TT_LOG(TT_LOG_INFO,
               "merger restore waits for a transaction left open on the "
               "state topic (a stopped merger's) to end",
               TT_KV_S("state_topic", st->conf->state_topic),
               TT_KV_I("last_stable_offset", stable), TT_KV_I("end", end));
}

void tt_stage_merger_start(stage *st) {
        const tt_stage_conf *c = st->conf;
        char rgroup[300];
        snprintf(rgroup, sizeof(rgroup), "%s.restore", c->group);
        const tt_kafka_prop props[] = {
            {"bootstrap.servers", c->brokers},
            {"group.id", rgroup},
            {"enable.auto.commit", "false"},
            {"enable.partition.eof", "true"},
            {"isolation.level", "read_committed"},
            {"client.id", "tokentally-restore"},
            /* The last records are transaction markers, never delivered:
             * the end shows as EOF after a fetch wait; keep it short. */
            {"fetch.wait.max.ms", "10"},
        };
        tt_merger_conf mc = {
            .on_wait = merger_restore_waits,
            .opaque = st,
            .engine = c->engine,
            .group = c->group,
            .state_topic = c->state_topic,
            .props = props,
            .nprops = sizeof(props) / sizeof(props[0]),
            .xprops = c->props,
            .nxprops = c->nprops,
        };
        int32_t n = input_partitions(st);
        if (n < 1) {
                tt_stage_fail(st, TT_ERR_KAFKA,
                              "input topic %s: no partitions known", c->topic);
                return;
        }
        char why[512];
        uint64_t restored = 0;
        double t0 = tt_mono_s();
        int merr = TT_ERR_OK;
        st->merger = tt_merger_new(&mc, &st->sink, st, n, &restored, why,
                                   sizeof(why), &merr);
        if (!st->merger) {
                /* A broker error (a leader moving, a restart) is worth a
                 * rerun from the commits; a state we cannot read is not. */
                st->retry = merr == TT_ERR_KAFKA;
                tt_stage_fail(st, st->retry ? TT_ERR_RETRY : merr, "merger: %s",
                              why);
                return;
        }
        st->merge_next = -1;
        st->merge_committed = -1;
        st->merger_done = false;
        /* "Partition p is at its end" is true only of the run that said
         * it. A report left in the partials topic by an earlier run (its
         * merger had closed and left before applying it) let this merger
         * close every week before this run's counts arrived (issue 9,
         * defect 2). Fronts at their end repeat the report every cycle, so
         * the ones from before our start can be ignored. */
        /* The log end, not the last stable offset: a report committed
         * after a dead instance's open transaction sits above the LSO and
         * would pass for fresh. */
        int64_t end = -1;
        if (tt_merger_log_end(&mc, st->partials, 0, &end, why, sizeof(why))) {
                st->retry = true;
                tt_stage_fail(st, TT_ERR_RETRY, "partials topic end: %s", why);
                return;
        }
        st->eof_from = end;
        tt_engine_stats es;
        tt_engine_get_stats(tt_merger_engine(st->merger), &es);
        st->committed_stats = es;
        TT_LOG(TT_LOG_INFO, "merger state restored",
               TT_KV_S("state_topic", c->state_topic),
               TT_KV_I("records_read", restored),
               TT_KV_I("state_keys", es.state_keys),
               TT_KV_I("ms", (int64_t)((tt_mono_s() - t0) * 1000)));
}

void tt_stage_merger_stop(stage *st) {
        if (!st->merger)
                return;
        st->merger_stats = st->committed_stats;
        st->have_merger_stats = true;
        tt_merger_destroy(st->merger);
        st->merger = NULL;
        TT_LOG(TT_LOG_INFO, "merger handed over",
               TT_KV_S("partials_topic", st->partials));
}

/* How far a front's clock may run ahead of the merger's. */
#define REPORT_SKEW_MS (5 * 60 * 1000)

static void mv_report(void *opaque, int32_t pid, int64_t max_time,
                      unsigned flags) {
        stage *st = opaque;
        /* A front reports the newest event time it counted, and it counts
         * no event more than --max-future ahead of its clock. A report
         * beyond that (plus clock skew) can only come from a corrupt or
         * hostile record; taken as it is, it would close every week up to
         * it at once and turn the honest events of those weeks into
         * too_late dead letters. Its counts are kept (they passed
         * tt_partial_check); its watermark is held to the bound. */
        int64_t mf = st->conf->engine.max_future_ms;
        if (mf >= 0 && max_time != INT64_MIN) {
                int64_t bound = tt_wall_ms() + mf + REPORT_SKEW_MS;
                if (max_time > bound) {
                        uint64_t n =
                            atomic_fetch_add(&st->internal_rejected, 1) + 1;
                        if ((n & (n - 1)) == 0) /* 1st, 2nd, 4th, ... */
                                TT_LOG(TT_LOG_ERROR,
                                       "partial record reports a watermark "
                                       "beyond --max-future: held to the "
                                       "bound",
                                       TT_KV_S("topic", st->partials),
                                       TT_KV_I("partition", pid),
                                       TT_KV_I("reported", max_time),
                                       TT_KV_I("bound", bound),
                                       TT_KV_I("count", (int64_t)n));
                        max_time = bound;
                }
        }
        tt_engine_partition_report(tt_merger_engine(st->merger), pid, max_time,
                                   flags & TT_PARTIAL_IDLE,
                                   st->fresh && (flags & TT_PARTIAL_EOF));
}

static int mv_model(void *opaque, int32_t week, tt_str model,
                    const tt_cell *c) {
        stage *st = opaque;
        return tt_engine_merge_model(tt_merger_engine(st->merger), week, model,
                                     c);
}

static int mv_origin(void *opaque, int32_t week, tt_origin o,
                     const tt_cell *c) {
        stage *st = opaque;
        return tt_engine_merge_origin(tt_merger_engine(st->merger), week, o, c);
}

static int mv_event(void *opaque, int32_t pid, int64_t off, const void *key,
                    size_t klen, const void *val, size_t vlen) {
        stage *st = opaque;
        tt_event ev;
        char detail[DETAIL_MAX];
        memset(&ev, 0, sizeof(ev));
        tt_reason r = tt_stage_decode_value(st, st->mjd, val, vlen, &ev, detail,
                                            sizeof(detail));
        if (r == TT_REASON_NONE)
                r = tt_engine_offer_forwarded(tt_merger_engine(st->merger), &ev,
                                              tt_wall_ms(), detail,
                                              sizeof(detail));
        if (r == TT_REASON_NONE)
                return TT_ERR_OK;
        return tt_kafka_out_dead_letter(st->conf->out, r, detail,
                                        st->conf->topic, pid, off, key, klen,
                                        val, vlen);
}

/* A record of the partials topic, in offset order. */
void tt_stage_merger_apply(stage *st, const rd_kafka_message_t *m) {
        if (!st->merger)
                return; /* fetched before a revoke */
        if (st->merge_next >= 0 && m->offset < st->merge_next)
                return; /* merged already: never twice */
        st->merge_next = m->offset + 1;
        const char *g = st->conf->group;
        size_t glen = strlen(g);
        if (m->key_len != glen || memcmp(m->key, g, glen))
                return; /* another group's */
        static const tt_partial_visitor v = {mv_report, mv_model, mv_origin,
                                             mv_event};
        st->fresh = m->offset >= st->eof_from;
        char why[256];
        if (tt_partial_check(m->payload, m->len, why, sizeof(why))) {
                /* Refused whole, nothing applied (docs: hostile input). */
                atomic_fetch_add(&st->internal_rejected, 1);
                TT_LOG(TT_LOG_ERROR, "corrupt partial record skipped",
                       TT_KV_S("topic", st->partials), TT_KV_I("partition", 0),
                       TT_KV_I("offset", m->offset), TT_KV_S("reason", why));
                return;
        }
        int err = tt_partial_decode(m->payload, m->len, &v, st);
        if (err)
                tt_stage_fail(st, err, "merging partials: %s", tt_err2str(err));
}

void tt_stage_dv_model(void *opaque, int32_t week, tt_str model,
                       const tt_cell *c) {
        tt_partial_model(opaque, week, model, c);
}

void tt_stage_dv_origin(void *opaque, int32_t week, tt_origin o,
                        const tt_cell *c) {
        tt_partial_origin(opaque, week, o, c);
}

int tt_stage_put_state(void *opaque, const char *key, const void *val,
                       size_t len) {
        stage *st = opaque;
        return tt_kafka_out_raw(st->conf->out, st->conf->state_topic, 0, key,
                                strlen(key), val, len);
}
