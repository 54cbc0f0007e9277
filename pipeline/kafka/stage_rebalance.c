/* The consumer: its creation and configuration, rebalances (assign and
 * revoke), and where each partition starts reading after a restart
 * (committed offsets and their metadata). */
#include "stage_impl.h"

static void log_parts(const char *msg, const stage *st,
                      const rd_kafka_topic_partition_list_t *parts) {
        char list[512] = "";
        size_t n = 0;
        for (int i = 0; i < parts->cnt && n < sizeof(list); i++)
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%d",
                                      i ? "," : "",
                                      (int)parts->elems[i].partition);
        TT_LOG(TT_LOG_INFO, msg, TT_KV_S("topic", st->conf->topic),
               TT_KV_S("partitions", list), TT_KV_I("count", parts->cnt));
}

static bool is_partials(const stage *st, const rd_kafka_topic_partition_t *t) {
        return st->eos && !strcmp(t->topic, st->partials);
}

/* Exactly-once: the committed watermark of each newly assigned input
 * partition (metadata of its offset) back into the front. */
static void restore_watermarks(stage *st,
                               const rd_kafka_topic_partition_list_t *c,
                               int64_t now) {
        for (int i = 0; i < c->cnt; i++) {
                const rd_kafka_topic_partition_t *t = &c->elems[i];
                char why[200];
                int64_t wm;
                if (is_partials(st, t) || t->partition < 0 ||
                    t->partition >= st->nparts)
                        continue;
                int err = tt_offset_meta_wm(t->metadata, t->metadata_size, &wm,
                                            why, sizeof(why));
                if (err == TT_ERR_FORMAT) {
                        /* The partition then starts with no watermark, as
                         * a new one: it holds the watermark back until its
                         * events show where it is. */
                        atomic_fetch_add(&st->internal_rejected, 1);
                        TT_LOG(TT_LOG_ERROR,
                               "corrupt committed offset metadata ignored",
                               TT_KV_S("topic", t->topic),
                               TT_KV_I("partition", t->partition),
                               TT_KV_I("offset", t->offset),
                               TT_KV_S("reason", why));
                }
                if (err)
                        continue;
                tt_engine_seen(st->e, t->partition, wm, now);
                tt_stage_newest(&st->parts[t->partition], wm);
        }
}

/* Exactly-once: each newly assigned input partition starts exactly at its
 * committed offset, which is also the first offset the front expects (so
 * tt_stage_in_sequence() catches a fetch that starts elsewhere). A committed
 * offset still covered by another instance's open transaction is "unstable"
 * until that transaction ends (at most transaction.timeout.ms): wait for it, as
 * counting from an older offset would count twice. c receives the
 * committed offsets and their metadata. 0, or -1 (the stage fails and
 * reruns). */
static int eos_start_offsets(stage *st, rd_kafka_topic_partition_list_t *parts,
                             rd_kafka_topic_partition_list_t *c) {
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        /* librdkafka retries an unstable fetch itself until the timeout:
         * short calls, so that a stop request is seen, for up to 24 s
         * (a dead instance's transaction ends within 15 s). */
        for (int attempt = 0; attempt < 12 && !*st->stop; attempt++) {
                for (int i = 0; i < c->cnt; i++) {
                        c->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
                        c->elems[i].err = 0;
                }
                err = rd_kafka_committed(st->rk, c, 2000);
                bool unstable = false;
                for (int i = 0; !err && i < c->cnt; i++)
                        if (c->elems[i].err ==
                            RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT)
                                unstable = true;
                        else if (c->elems[i].err)
                                err = c->elems[i].err;
                if (!err && !unstable)
                        break;
                if (!err)
                        err = RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT;
                TT_LOG(TT_LOG_INFO, "waiting for committed offsets",
                       TT_KV_S("reason", rd_kafka_err2str(err)));
        }
        if (!err && *st->stop)
                err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (err) {
                st->retry = true;
                tt_stage_fail(st, TT_ERR_RETRY, "committed offsets: %s",
                              rd_kafka_err2str(err));
                return -1;
        }
        for (int i = 0; i < c->cnt; i++) {
                const rd_kafka_topic_partition_t *t = &c->elems[i];
                rd_kafka_topic_partition_t *a =
                    rd_kafka_topic_partition_list_find(parts, t->topic,
                                                       t->partition);
                if (a && is_partials(st, t) && t->offset >= 0) {
                        /* The merger resumes after what it merged. */
                        a->offset = t->offset;
                        st->merge_next = t->offset;
                        continue;
                }
                if (!a || is_partials(st, t) || t->partition < 0 ||
                    t->partition >= st->nparts)
                        continue;
                if (t->offset >= 0) {
                        a->offset = t->offset;
                        st->parts[t->partition].next_offset = t->offset;
                }
                /* No commit is librdkafka's OFFSET_INVALID (-1001): say
                 * "none" rather than show the sentinel. */
                if (t->offset >= 0)
                        TT_LOG(TT_LOG_INFO, "partition starts",
                               TT_KV_S("topic", t->topic),
                               TT_KV_I("partition", t->partition),
                               TT_KV_I("committed_offset", t->offset));
                else
                        TT_LOG(TT_LOG_INFO,
                               "partition starts (no committed offset: "
                               "--from-beginning, --from-timestamp or the "
                               "end)",
                               TT_KV_S("topic", t->topic),
                               TT_KV_I("partition", t->partition),
                               TT_KV_S("committed", "none"));
        }
        return 0;
}

/* At-least-once: the commit metadata of a partition (commit_meta.h).
 * Events of weeks before the oldest kept week are final; below end they
 * were counted by that run. Returns true when the commit said where the
 * run had read to (the engine then resumes: see tt_engine_resume). */
static bool restore_replay_line(stage *st,
                                const rd_kafka_topic_partition_t *t) {
        tt_commit_meta cm;
        size_t pl = strlen(TT_COMMIT_META_PREFIX);
        if (!t->metadata || t->metadata_size < pl ||
            memcmp(t->metadata, TT_COMMIT_META_PREFIX, pl) ||
            t->partition < 0 || t->partition >= st->nparts)
                return false; /* none, or not ours */
        if (tt_commit_meta_parse(t->metadata, t->metadata_size, &cm)) {
                atomic_fetch_add(&st->internal_rejected, 1);
                TT_LOG(TT_LOG_ERROR,
                       "corrupt committed offset metadata ignored: the "
                       "partition is read from its committed offset as is",
                       TT_KV_S("topic", t->topic),
                       TT_KV_I("partition", t->partition),
                       TT_KV_I("offset", t->offset));
                return false;
        }
        if (cm.oldest > atomic_load(&st->skip_below))
                atomic_store(&st->skip_below, cm.oldest);
        st->parts[t->partition].replay_end = cm.end;
        if (cm.end < 0)
                return false;
        if (cm.closed > st->resume_closed)
                st->resume_closed = cm.closed;
        if (cm.revision > st->resume_rev)
                st->resume_rev = cm.revision;
        /* A partition that read nothing in a run keeps an older commit
         * (older oldest, older streaks): only the newest one's streaks
         * describe the week before the oldest kept one. */
        tt_commit_meta *r = &st->resume_meta;
        if (!st->have_resume_meta || cm.oldest > r->oldest ||
            (cm.oldest == r->oldest && cm.end > r->end))
                *r = cm;
        st->have_resume_meta = true;
        return true;
}

/* The offset of partition p at which to start for --from-beginning (its
 * first) or --from-timestamp (the first whose message timestamp is at or
 * after it; the end when there is none). -1 on failure (st fails). */
static int start_positions_resolve(stage *st,
                                   rd_kafka_topic_partition_list_t *l) {
        const tt_stage_conf *c = st->conf;
        if (c->has_from_timestamp) {
                rd_kafka_resp_err_t err =
                    rd_kafka_offsets_for_times(st->rk, l, 10000);
                for (int i = 0; !err && i < l->cnt; i++)
                        err = l->elems[i].err;
                if (err) {
                        tt_stage_fail(
                            st, TT_ERR_KAFKA,
                            "--from-timestamp: looking up offsets: %s",
                            rd_kafka_err2str(err));
                        return -1;
                }
        }
        for (int i = 0; i < l->cnt; i++) {
                rd_kafka_topic_partition_t *e = &l->elems[i];
                if (e->offset >= 0)
                        continue;
                /* BEGINNING, or END: no message at or after the time. */
                int64_t lo = -1, hi = -1;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    st->rk, e->topic, e->partition, &lo, &hi, 10000);
                if (err) {
                        tt_stage_fail(
                            st, TT_ERR_KAFKA,
                            "start offsets: input topic watermarks: %s",
                            rd_kafka_err2str(err));
                        return -1;
                }
                e->offset = c->from_beginning ? lo : hi;
        }
        return 0;
}

/* --from-beginning / --from-timestamp. At-least-once: the first
 * assignment of the run starts there (the group is reset). Exactly-once:
 * only the partitions the group has no committed offset for (a new group,
 * or partitions added since). A committed partition's counts are in the
 * merger's state already: re-reading it would count them twice. The start
 * is an exact offset, which the exactly-once front then expects first
 * (issue 9, defect 5: the timestamp itself was used as an offset). */
static void start_positions(stage *st, rd_kafka_topic_partition_list_t *parts,
                            const rd_kafka_topic_partition_list_t *committed) {
        const tt_stage_conf *c = st->conf;
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(parts->cnt);
        for (int i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *t = &parts->elems[i];
                if (is_partials(st, t) || t->partition < 0 ||
                    t->partition >= st->nparts)
                        continue;
                const rd_kafka_topic_partition_t *k =
                    committed ? rd_kafka_topic_partition_list_find(
                                    committed, t->topic, t->partition)
                              : NULL;
                if (committed && (!k || k->offset >= 0)) {
                        static const char msg[] =
                            "partition has a committed offset: it "
                            "continues there (--from-beginning and "
                            "--from-timestamp start new groups only; "
                            "use a new --group to re-read)";
                        /* k is NULL when the answer lacked the partition:
                         * no number to show, rather than a sentinel. */
                        if (k)
                                TT_LOG(TT_LOG_WARN, msg,
                                       TT_KV_S("topic", t->topic),
                                       TT_KV_I("partition", t->partition),
                                       TT_KV_I("committed_offset", k->offset));
                        else
                                TT_LOG(TT_LOG_WARN, msg,
                                       TT_KV_S("topic", t->topic),
                                       TT_KV_I("partition", t->partition),
                                       TT_KV_S("committed", "unknown"));
                        continue;
                }
                rd_kafka_topic_partition_list_add(l, t->topic, t->partition)
                    ->offset = c->from_beginning ? RD_KAFKA_OFFSET_BEGINNING
                                                 : c->from_timestamp;
        }
        if (l->cnt && !start_positions_resolve(st, l)) {
                for (int i = 0; i < l->cnt; i++) {
                        const rd_kafka_topic_partition_t *e = &l->elems[i];
                        rd_kafka_topic_partition_list_find(parts, e->topic,
                                                           e->partition)
                            ->offset = e->offset;
                        st->parts[e->partition].next_offset = e->offset;
                        TT_LOG(TT_LOG_INFO, "partition starts",
                               TT_KV_S("topic", e->topic),
                               TT_KV_I("partition", e->partition),
                               TT_KV_I("offset", e->offset),
                               TT_KV_S("from", c->from_beginning
                                                   ? "--from-beginning"
                                                   : "--from-timestamp"));
                }
        }
        rd_kafka_topic_partition_list_destroy(l);
}

static void on_assign(stage *st, rd_kafka_topic_partition_list_t *parts) {
        int64_t now = tt_wall_ms();
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *t = &parts->elems[i];
                if (is_partials(st, t)) {
                        if (!atomic_load(&st->err)) /* else: rerunning */
                                tt_stage_merger_start(st);
                        continue;
                }
                if (t->partition < 0 || t->partition >= st->nparts)
                        continue;
                rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(
                    st->rk, t->topic, t->partition);
                if (pq) {
                        rd_kafka_queue_forward(pq,
                                               st->w[t->partition % st->nw].q);
                        rd_kafka_queue_destroy(pq);
                }
                ppart *pp = &st->parts[t->partition];
                pp->assigned = true;
                pp->next_offset = -1;
                pp->replay_end = -1;
                pp->want_seek = -1;
                pp->seeks_seen = atomic_load(&pp->seeks);
                pp->gap_from = pp->gap_first = -1;
                pp->gap_count = 0;
                pp->newest_event_ms = INT64_MIN;
                pp->nweeks = 0;
                atomic_store(&pp->eof, false);
                tt_engine_partition_add(st->e, t->partition, now);
                /* Until its first end-of-partition event. */
                tt_engine_partition_behind(st->e, t->partition, true);
        }
        /* Where an earlier run's committed weeks end (see stage.h). */
        rd_kafka_topic_partition_list_t *c =
            rd_kafka_topic_partition_list_copy(parts);
        bool have_c = false;
        bool reset = st->conf->from_beginning || st->conf->has_from_timestamp;
        if (st->eos && atomic_load(&st->err)) {
                /* Failing (a transaction failed, say in the revoke just
                 * before): the stage reruns from the commits anyway. Do not
                 * wait for committed offsets, which our own failed
                 * transaction keeps unstable until the next producer
                 * aborts it (it held this callback 10-24 s). */
        } else if (st->eos) {
                if ((have_c = !eos_start_offsets(st, parts, c)))
                        restore_watermarks(st, c, now);
        } else if (!reset && !rd_kafka_committed(st->rk, c, 10000)) {
                bool resume = false;
                for (int i = 0; i < c->cnt; i++)
                        resume |= restore_replay_line(st, &c->elems[i]);
                int32_t skip = atomic_load(&st->skip_below);
                if (resume && skip != INT32_MIN) {
                        tt_engine_resume(st->e, skip - 1, st->resume_closed,
                                         st->resume_rev + 1);
                        const tt_commit_meta *r = &st->resume_meta;
                        for (size_t i = 0; i < r->nstreaks; i++)
                                if (tt_engine_resume_streak(
                                        st->e, r->streaks[i].rule,
                                        r->streaks[i].holder,
                                        r->streaks[i].holder_len,
                                        r->streaks[i].length))
                                        tt_stage_fail(st, TT_ERR_NOMEM, "%s",
                                                      "out of memory");
                }
        }
        if (reset && (st->eos ? have_c : !st->first_assign_done))
                start_positions(st, parts, st->eos ? c : NULL);
        rd_kafka_topic_partition_list_destroy(c);
        st->first_assign_done = true;
        st->assigned_any = true;
        if (st->eos)
                tt_stage_update_bound(st, now);
        log_parts("partitions assigned", st, parts);
}

static void on_revoke(stage *st, rd_kafka_topic_partition_list_t *parts) {
        tt_stage_pause_workers(st);
        if (st->eos) {
                /* Everything of the revoked partitions commits before a new
                 * owner may read them (KIP-447: still our generation). */
                if (!atomic_load(&st->err) && st->txn_open)
                        tt_stage_eos_cycle(st, tt_wall_ms(), false);
        } else {
                tt_engine_tick(st->e, tt_wall_ms());
                rd_kafka_topic_partition_list_t *l =
                    tt_stage_commit_offsets(st, parts);
                tt_stage_commit(st, l);
        }
        for (int i = 0; i < parts->cnt; i++) {
                if (is_partials(st, &parts->elems[i])) {
                        tt_stage_merger_stop(st);
                        continue;
                }
                int32_t p = parts->elems[i].partition;
                if (p < 0 || p >= st->nparts)
                        continue;
                st->parts[p].assigned = false;
                /* Undo the forwarding of on_assign (librdkafka's advice for
                 * forwarded partition queues: unforward on revoke). */
                rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(
                    st->rk, parts->elems[i].topic, p);
                if (pq) {
                        rd_kafka_queue_forward(pq, NULL);
                        rd_kafka_queue_destroy(pq);
                }
                /* The front never closes weeks (the merger does), so its
                 * partitions stay registered: removing one would let it
                 * advance its watermark. */
                if (!st->eos)
                        tt_engine_partition_remove(st->e, p, tt_wall_ms());
        }
        tt_stage_publish(st);
        tt_stage_resume_workers(st);
        log_parts("partitions revoked", st, parts);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
        stage *st = opaque;
        /* NULL once the member has left the group: the revoke that
         * rd_kafka_consumer_close() serves after a failed transaction (a
         * fenced or rebalanced member) came with none, and strcmp(NULL)
         * crashed the stage on its way out (SIGSEGV, exit 139, in
         * it_kafka_eos multi: the core showed this line). */
        const char *proto = rd_kafka_rebalance_protocol(rk);
        bool coop = proto && !strcmp(proto, "COOPERATIVE");
        atomic_fetch_add(&st->live->rebalances, 1);
        bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if (assign)
                on_assign(st, parts);
        else
                on_revoke(st, parts);
        if (coop)
                rd_kafka_error_destroy(
                    assign ? rd_kafka_incremental_assign(rk, parts)
                           : rd_kafka_incremental_unassign(rk, parts));
        else
                rd_kafka_assign(rk, assign ? parts : NULL);
}

/* ---- set-up ----------------------------------------------------------- */

rd_kafka_t *tt_stage_make_consumer(stage *st, char *errstr, size_t errsize) {
        const tt_stage_conf *c = st->conf;
        /* queued.min.messages: librdkafka 2.0.2 takes a partition off the
         * fetch list for up to a second once the local queue reaches it
         * (librdkafka issue 3662). With partition queues forwarded to a
         * worker's queue, both thresholds count that whole queue: at the
         * defaults (100000 messages) one worker on 6 partitions spent
         * 10.9 s of a 13.4 s run off the fetch list (bench/kafka.sh). A deep
         * queue keeps fetching continuous; it costs memory only when a
         * worker falls behind (up to ~350 MiB seen with one worker). Do
         * not lower the kbytes cap to save memory: it trips the same
         * back-off. */
        const tt_kafka_prop defaults[] = {
            {"bootstrap.servers", c->brokers},
            {"group.id", c->group},
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"auto.offset.reset", "earliest"},
            {"enable.partition.eof", "true"},
            {"partition.assignment.strategy", "cooperative-sticky"},
            /* Exactly-once pauses the workers at every commit, and
             * librdkafka prefetches meanwhile: at 1000000 a 10 M event
             * backlog peaked at 750 MiB RSS; at 100000, 162 MiB for 15%
             * more wall time (bench/kafka.sh sizes). */
            {"queued.min.messages", st->eos ? "100000" : "1000000"},
            {"queued.max.messages.kbytes", "65536"},
            {"fetch.wait.max.ms", "100"},
            {"client.id", "tokentally"},
            /* The merger reads only committed partials. */
            {"isolation.level", st->eos ? "read_committed" : NULL},
            {"group.instance.id", c->instance_id},
        };
        rd_kafka_conf_t *kc =
            tt_kafka_conf_new(defaults, sizeof(defaults) / sizeof(defaults[0]),
                              c->props, c->nprops, errstr, errsize);
        if (!kc)
                return NULL;
        rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
        rd_kafka_conf_set_log_cb(kc, tt_log_rdkafka);
        rd_kafka_conf_set_opaque(kc, st);
        char why[512];
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof(why));
        if (!rk) {
                snprintf(errstr, errsize, "%s", why);
                return NULL;
        }
        rd_kafka_poll_set_consumer(rk);
        return rk;
}
