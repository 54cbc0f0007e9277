/* Exactly-once, the front side: every commit interval one Kafka
 * transaction carries the partial records and the input offsets
 * (eos_cycle); offset gaps are re-read (repair_gaps); --close-at-eof waits
 * for the merger (eos_finished). See stage.h for what this promises. */
#include "stage_impl.h"

/* The watermark our own partitions allow (as the engine computes it:
 * the minimum over the active ones, the newest if all are idle), or the
 * local merger's if higher. The merger's watermark when it merges the
 * counts of the coming interval comes from reports no newer than the ones
 * just made, and every instance's own minimum bounds the global one, so
 * events at or below this bound are the only ones whose week can be closed
 * by then. (An idle partition of another instance waking up is the
 * exception: its late events reach the merger counted, and are revisions.)
 * With the workers paused or before they see the partitions. */
void tt_stage_update_bound(stage *st, int64_t now) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        bool active = false;
        for (int32_t p = 0; p < st->nparts; p++) {
                if (!st->parts[p].assigned)
                        continue;
                int64_t mt;
                bool idle;
                tt_engine_partition_state(st->e, p, now, &mt, &idle);
                if (mt > hi)
                        hi = mt;
                if (idle)
                        continue;
                active = true;
                if (mt < lo)
                        lo = mt;
        }
        int64_t b = active ? lo : hi;
        if (st->merger) {
                int64_t mw = tt_engine_watermark(tt_merger_engine(st->merger));
                if (mw > b)
                        b = mw;
        }
        atomic_store(&st->fwd_bound, b);
}

/* Seeks the partitions whose workers found a gap back to where they
 * expect to continue (see in_sequence). */
void tt_stage_repair_gaps(stage *st) {
        rd_kafka_topic_partition_list_t *l = NULL;
        for (int32_t p = 0; p < st->nparts; p++) {
                ppart *pp = &st->parts[p];
                int64_t off = atomic_load(&pp->want_seek);
                if (off < 0 || !pp->assigned)
                        continue;
                if (!l)
                        l = rd_kafka_topic_partition_list_new(4);
                rd_kafka_topic_partition_list_add(l, st->conf->topic, p)
                    ->offset = off;
                TT_LOG(TT_LOG_WARN, "offset gap: re-reading the partition",
                       TT_KV_S("topic", st->conf->topic),
                       TT_KV_I("partition", p), TT_KV_I("offset", off));
        }
        if (!l)
                return;
        rd_kafka_error_t *e = rd_kafka_seek_partitions(st->rk, l, 10000);
        if (e) {
                TT_LOG(TT_LOG_WARN, "seek failed",
                       TT_KV_S("reason", rd_kafka_error_string(e)));
                rd_kafka_error_destroy(e);
        }
        /* Only now may a worker read the next message as the seek's. */
        for (int i = 0; i < l->cnt; i++) {
                ppart *pp = &st->parts[l->elems[i].partition];
                atomic_store(&pp->want_seek, -1);
                atomic_fetch_add(&pp->seeks, 1);
        }
        rd_kafka_topic_partition_list_destroy(l);
}

#define PARTIAL_CHUNK (4u << 20)

static int partial_flush(void *opaque, const void *rec, size_t len) {
        stage *st = opaque;
        const char *g = st->conf->group;
        return tt_kafka_out_raw(st->conf->out, st->partials, 0, g, strlen(g),
                                rec, len);
}

/* The partial record of this interval (each owned partition's report and
 * what the workers counted), written into the open transaction, and the
 * input offsets to commit with it, each with its watermark as metadata.
 * NULL after a failure (reported). */
static rd_kafka_topic_partition_list_t *partial_record(stage *st, int64_t now,
                                                       tt_partial_writer *pw,
                                                       bool *any,
                                                       bool *all_eof) {
        const tt_stage_conf *c = st->conf;
        tt_partial_cells_begin(pw, &st->pbuf);
        /* A front that counted 10^5-10^6 models in one interval would pass
         * the partials topic's max.message.bytes (16 MiB) in one record:
         * cut at 4 MiB, the reports in the last piece (partials.h). */
        tt_partial_cells_chunked(pw, PARTIAL_CHUNK, partial_flush, st);
        *any = false;
        *all_eof = true;
        /* One pass: each owned partition's report, and its offset (with
         * its watermark as metadata) for this transaction's commit. */
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(16);
        for (int32_t p = 0; p < st->nparts; p++) {
                ppart *pp = &st->parts[p];
                if (!pp->assigned)
                        continue;
                int64_t mt;
                bool idle;
                tt_engine_partition_state(st->e, p, now, &mt, &idle);
                bool eof = c->close_at_eof && atomic_load(&pp->eof);
                *any = true;
                *all_eof &= eof;
                tt_partial_report(pw, p, mt,
                                  (idle ? TT_PARTIAL_IDLE : 0) |
                                      (eof ? TT_PARTIAL_EOF : 0));
                if (pp->next_offset < 0)
                        continue;
                rd_kafka_topic_partition_t *t =
                    rd_kafka_topic_partition_list_add(l, c->topic, p);
                t->offset = pp->next_offset;
                if (mt != INT64_MIN) {
                        char meta[64];
                        snprintf(meta, sizeof(meta),
                                 TT_OFFSET_META_WM_PREFIX "%" PRId64, mt);
                        t->metadata = strdup(meta);
                        t->metadata_size = strlen(meta);
                }
        }
        tt_partial_cells_mid(pw);
        static const tt_engine_cells_visitor dv = {tt_stage_dv_model,
                                                   tt_stage_dv_origin};
        tt_engine_drain(st->e, &dv, pw);
        int err = tt_partial_cells_end(pw);
        if (!err && (pw->nrep || pw->ncell))
                err = tt_kafka_out_raw(c->out, st->partials, 0, c->group,
                                       strlen(c->group), st->pbuf.data,
                                       st->pbuf.len);
        if (err) {
                tt_stage_fail(st, err, "partial record: %s", tt_err2str(err));
                rd_kafka_topic_partition_list_destroy(l);
                return NULL;
        }
        return l;
}

/* The merger's part of a cycle, in the instance that holds it: tick,
 * PROVISIONAL rows, --close-at-eof, and the state checkpoint, all in the
 * open transaction. 0 with the seconds it took in *emit_s, or -1 after a
 * failure (reported). */
static int merger_cycle(stage *st, int64_t now, double *emit_s) {
        const tt_stage_conf *c = st->conf;
        tt_engine *me = tt_merger_engine(st->merger);
        double t_emit = tt_mono_s();
        tt_engine_tick(me, now);
        if (c->emit_interval_ms > 0 &&
            now - st->last_prov >= c->emit_interval_ms) {
                tt_engine_emit_provisional(me, now);
                st->last_prov = now;
        }
        if (c->close_at_eof && !st->merger_done && tt_engine_all_eof(me)) {
                tt_engine_close_all(me, now);
                st->merger_done = true;
        }
        if (tt_engine_error(me)) {
                tt_stage_fail(st, tt_engine_error(me), "engine: %s",
                              tt_err2str(tt_engine_error(me)));
                return -1;
        }
        int err = tt_merger_checkpoint(st->merger, tt_stage_put_state, st);
        if (err) {
                tt_stage_fail(st, err, "state checkpoint: %s", tt_err2str(err));
                return -1;
        }
        *emit_s = tt_mono_s() - t_emit;
        return 0;
}

/* After a transaction committed: its rows are visible now, so they are
 * counted; and --close-at-eof learns whether every own partition's end
 * went out with it. t0: when the commit began. */
static void txn_committed(stage *st, const tt_partial_writer *pw, double emit_s,
                          double t0, bool all_at_end) {
        const tt_stage_conf *c = st->conf;
        /* Only now are this transaction's rows visible: count them. */
        if (tt_stage_publish(st) && emit_s >= 0)
                tt_hist_observe(&st->live->emit, emit_s);
        if (st->merger && st->merge_next >= 0)
                st->merge_committed = st->merge_next;
        if (st->merger)
                tt_engine_get_stats(tt_merger_engine(st->merger),
                                    &st->committed_stats);
        double dt = tt_stage_count_commit(st, t0);
        TT_LOG(TT_LOG_DEBUG, "transaction committed",
               TT_KV_I("cells", pw->ncell),
               TT_KV_I("merger", st->merger != NULL),
               TT_KV_I("latency_us", (int64_t)(dt * 1e6)));
        st->eof_committed = all_at_end;
        if (!st->eof_committed) {
                st->eof_mark = -1;
        } else if (st->eof_mark < 0) {
                /* commit_transaction flushed: every delivery report of
                 * this transaction has been served. */
                tt_kafka_out_poll(c->out);
                st->eof_mark = tt_kafka_out_tracked(c->out);
        }
}

/* One transaction's end, with the workers paused: what the workers
 * counted goes out as a partial record, the merger (if here) runs and
 * checkpoints, and the offsets commit with all of it. final: no new
 * transaction after it. */
void tt_stage_eos_cycle(stage *st, int64_t now, bool final) {
        const tt_stage_conf *c = st->conf;
        /* After a failure the transaction is gone (aborted or fatal): the
         * stage is on its way out, to be rerun from the commits. */
        if (!st->txn_open || atomic_load(&st->err))
                return;
        char why[512];
        double emit_s = -1;
        tt_partial_writer pw;
        bool any, all_eof;
        rd_kafka_topic_partition_list_t *l =
            partial_record(st, now, &pw, &any, &all_eof);
        if (!l)
                return;
        if (st->merger && merger_cycle(st, now, &emit_s)) {
                rd_kafka_topic_partition_list_destroy(l);
                return;
        }
        tt_stage_update_bound(st, now);
        if (st->merger && st->merge_next >= 0)
                rd_kafka_topic_partition_list_add(l, st->partials, 0)->offset =
                    st->merge_next;
        double t0 = tt_mono_s();
        tt_deadline_phase(c->deadline, "committing a transaction");
        int err = tt_kafka_out_txn_commit(c->out, l, st->rk, why, sizeof(why));
        tt_deadline_phase(c->deadline, "the coordinator's loop");
        rd_kafka_topic_partition_list_destroy(l);
        st->txn_open = false;
        if (err && tt_kafka_out_permanent(c->out)) {
                /* A missing output topic or a refused record: redoing the
                 * transaction would fail the same way, forever (issue 9,
                 * defect 6). Stop and say which topic. */
                tt_kafka_out_error(c->out, why, sizeof(why));
                tt_stage_fail(st, TT_ERR_KAFKA, "%s", why);
                return;
        }
        if (err == TT_ERR_RETRY) {
                st->retry = true;
                tt_stage_fail(st, err, "transaction aborted: %s", why);
                return;
        }
        if (err) {
                tt_stage_fail(st, err, "transaction: %s", why);
                return;
        }
        txn_committed(st, &pw, emit_s, t0, any && all_eof);
        if (final)
                return;
        if ((err = tt_kafka_out_txn_begin(c->out, why, sizeof(why)))) {
                st->retry = err == TT_ERR_RETRY;
                tt_stage_fail(st, err, "transaction: %s", why);
                return;
        }
        st->txn_open = true;
}

/* Waits until every partition of topic has a leader. A topic that was
 * just created has none for a moment (the controller elects it after
 * CreateTopics returns): a member that subscribed then got an assignment
 * without the partials partition, so no instance was the merger until the
 * next metadata refresh (5 min), and a read of the state topic failed
 * with NOT_LEADER_FOR_PARTITION (issue 9, defects 1 and 4). */
static int wait_leaders(rd_kafka_t *rk, const char *topic, int timeout_ms,
                        char *errstr, size_t errsize) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (!rkt) {
                snprintf(errstr, errsize, "topic %s: %s", topic,
                         rd_kafka_err2str(rd_kafka_last_error()));
                return TT_ERR_INVAL;
        }
        char why[128] = "no answer";
        double t0 = tt_mono_s();
        bool ok = false;
        while (!ok && (tt_mono_s() - t0) * 1000 < timeout_ms) {
                const struct rd_kafka_metadata *md = NULL;
                rd_kafka_resp_err_t err =
                    rd_kafka_metadata(rk, 0, rkt, &md, 5000);
                if (!err)
                        err = md->topic_cnt == 1
                                  ? md->topics[0].err
                                  : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
                if (!err) {
                        const rd_kafka_metadata_topic_t *t = &md->topics[0];
                        ok = t->partition_cnt > 0;
                        for (int i = 0; i < t->partition_cnt; i++)
                                if (t->partitions[i].err ||
                                    t->partitions[i].leader < 0) {
                                        ok = false;
                                        err = t->partitions[i].err;
                                }
                }
                if (err)
                        snprintf(why, sizeof(why), "%s", rd_kafka_err2str(err));
                if (md)
                        rd_kafka_metadata_destroy(md);
                if (!ok) {
                        struct timespec ts = {0, 100 * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
        }
        rd_kafka_topic_destroy(rkt);
        if (!ok) {
                snprintf(errstr, errsize, "topic %s: no leader after %d s (%s)",
                         topic, timeout_ms / 1000, why);
                return TT_ERR_KAFKA;
        }
        return TT_ERR_OK;
}

/* The partials offset the group has committed, i.e. the next record the
 * merger (wherever it runs) will apply; -1 unknown. */
static int64_t group_applied(stage *st) {
        if (st->merger)
                return st->merge_committed;
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, st->partials, 0);
        int64_t off = -1;
        /* Unstable while the merger commits: asked again next cycle. */
        if (!rd_kafka_committed(st->rk, l, 2000) && !l->elems[0].err)
                off = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        return off;
}

/* --close-at-eof, exactly-once, after a committed cycle: may this
 * instance leave? Its own partitions' ends have gone out (or it has had
 * none for 5 s); the merger, here or in another instance, has applied
 * every partial record we produced up to them; and if we are the merger,
 * every partition reported its end and every week closed in a committed
 * transaction. A front that leaves earlier loses nothing (its partials
 * are in the topic) but would report a backfill done before its rows
 * exist (issue 9, defects 1 and 2). Nobody applying our records for
 * MERGER_WAIT_MS is a failure, not a silent exit. */
/* Past a merger's recovery: its session timeout (45 s by default, when a
 * static member died), the restore's wait for a stable changelog (45 s)
 * and the restore itself. */
#define MERGER_WAIT_MS 180000
bool tt_stage_eos_finished(stage *st, int64_t now) {
        bool own_done = st->eof_committed || now - st->unassigned_since >= 5000;
        if (!own_done) {
                st->applied_since = now;
                return false;
        }
        int64_t mark = st->eof_committed ? st->eof_mark
                                         : tt_kafka_out_tracked(st->conf->out);
        if (mark >= 0) {
                int64_t applied = group_applied(st);
                if (applied != st->applied_seen) {
                        st->applied_seen = applied;
                        st->applied_since = now;
                }
                if (applied <= mark) {
                        if (now - st->applied_since >= MERGER_WAIT_MS) {
                                char why[200];
                                snprintf(why, sizeof(why),
                                         "%s up to offset %" PRId64
                                         " not applied by a merger in %d s "
                                         "(applied below %" PRId64 ")",
                                         st->partials, mark,
                                         MERGER_WAIT_MS / 1000, applied);
                                tt_stage_fail(
                                    st, TT_ERR_STATE,
                                    "--close-at-eof: our partial counts on "
                                    "%s",
                                    why);
                        }
                        return false;
                }
        }
        return !st->merger || st->merger_done;
}

/* Creates the internal topics if they are missing (as Kafka Streams
 * does): partials with one partition, the state compacted and rolled
 * often so that compaction keeps a restore short. Returns once both have
 * a leader. */
int tt_stage_ensure_topics(stage *st, char *errstr, size_t errsize) {
        const char *names[2] = {st->partials, st->conf->state_topic};
        const char *cfg[2][8] = {
            {"cleanup.policy", "delete", "retention.ms", "604800000",
             "max.message.bytes", "16777216", NULL, NULL},
            {"cleanup.policy", "compact", "max.message.bytes", "16777216",
             "segment.ms", "60000", "min.cleanable.dirty.ratio", "0.1"},
        };
        rd_kafka_NewTopic_t *nt[2];
        char why[512];
        for (int i = 0; i < 2; i++) {
                nt[i] =
                    rd_kafka_NewTopic_new(names[i], 1, -1, why, sizeof(why));
                if (!nt[i]) {
                        snprintf(errstr, errsize, "topic %s: %s", names[i],
                                 why);
                        if (i)
                                rd_kafka_NewTopic_destroy(nt[0]);
                        return TT_ERR_INVAL;
                }
                for (int k = 0; k < 8 && cfg[i][k]; k += 2)
                        rd_kafka_NewTopic_set_config(nt[i], cfg[i][k],
                                                     cfg[i][k + 1]);
        }
        rd_kafka_queue_t *q = rd_kafka_queue_new(st->rk);
        rd_kafka_CreateTopics(st->rk, nt, 2, NULL, q);
        rd_kafka_NewTopic_destroy_array(nt, 2);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        int err = TT_ERR_OK;
        if (!ev) {
                snprintf(errstr, errsize, "creating %s, %s: no answer in 30 s",
                         names[0], names[1]);
                err = TT_ERR_KAFKA;
        } else if (rd_kafka_event_error(ev)) {
                snprintf(errstr, errsize, "creating %s, %s: %s", names[0],
                         names[1], rd_kafka_event_error_string(ev));
                err = TT_ERR_KAFKA;
        } else {
                size_t n;
                const rd_kafka_topic_result_t **r =
                    rd_kafka_CreateTopics_result_topics(
                        rd_kafka_event_CreateTopics_result(ev), &n);
                for (size_t i = 0; i < n && !err; i++) {
                        rd_kafka_resp_err_t e =
                            rd_kafka_topic_result_error(r[i]);
                        if (!e || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                                continue;
                        snprintf(errstr, errsize, "creating topic %s: %s",
                                 rd_kafka_topic_result_name(r[i]),
                                 rd_kafka_topic_result_error_string(r[i]));
                        err = TT_ERR_KAFKA;
                }
        }
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        for (int i = 0; i < 2 && !err; i++)
                err = wait_leaders(st->rk, names[i], 30000, errstr, errsize);
        return err;
}
