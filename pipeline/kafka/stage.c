/* The Kafka stage: a consumer group member whose partitions are spread over
 * worker threads (partition p -> worker p % N, through librdkafka's
 * per-partition queues forwarded to one queue per worker). Workers decode,
 * check and count their own partitions' events into their own shard with no
 * lock. The coordinator (the caller's thread) serves rebalances, and pauses
 * the workers between their batches whenever shards must be read: to close
 * weeks, emit PROVISIONAL rows, or compute what to commit. See stage.h for
 * what a commit promises.
 *
 * This file: the coordinator (tt_stage_run): set-up, the loop, week closing
 * and emission in at-least-once mode, the wind-down. The other concerns are
 * in stage_worker.c, stage_commit.c, stage_eos.c, stage_merger.c,
 * stage_rebalance.c and stage_live.c; stage_impl.h holds what they share. */
#include "stage_impl.h"

void tt_stage_fail(stage *st, int err, const char *fmt, const char *arg) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&st->err, &expected, err))
                snprintf(st->errmsg, sizeof(st->errmsg), fmt, arg);
        atomic_store(&st->quit, true);
}

/* ---- sinks ------------------------------------------------------------ */

static int sink_rollup(void *opaque, const tt_rollup *r) {
        stage *st = opaque;
        int err = tt_kafka_out_rollup(st->conf->out, r);
        if (!err && st->conf->tee)
                err = st->conf->tee->rollup(st->conf->tee_opaque, r);
        return err;
}

static int sink_streak(void *opaque, const tt_streak_change *s) {
        stage *st = opaque;
        int err = tt_kafka_out_streak(st->conf->out, s);
        if (!err && st->conf->tee)
                err = st->conf->tee->streak(st->conf->tee_opaque, s);
        return err;
}

static int front_rollup(void *opaque, const tt_rollup *r) {
        (void)r;
        tt_stage_fail(opaque, TT_ERR_STATE, "%s",
                      "bug: the front engine emitted a row");
        return TT_ERR_STATE;
}

static int front_streak(void *opaque, const tt_streak_change *s) {
        (void)s;
        tt_stage_fail(opaque, TT_ERR_STATE, "%s",
                      "bug: the front engine emitted a streak");
        return TT_ERR_STATE;
}

static bool any_assigned(stage *st) {
        for (int32_t p = 0; p < st->nparts; p++)
                if (st->parts[p].assigned)
                        return true;
        return false;
}

static bool all_at_eof(stage *st) {
        bool any = false;
        for (int32_t p = 0; p < st->nparts; p++) {
                if (!st->parts[p].assigned)
                        continue;
                any = true;
                if (!atomic_load(&st->parts[p].eof))
                        return false;
        }
        return any;
}

static void collect(stage *st, tt_stage_stats *s) {
        for (int i = 0; i < st->nw; i++) {
                worker *w = &st->w[i];
                s->messages += w->messages;
                s->accepted += w->accepted;
                s->skipped_replayed += w->skipped;
                s->forwarded += w->forwarded;
                s->gaps += w->gaps;
                s->duplicates += w->duplicates;
                for (int r = 0; r < TT_REASON__COUNT; r++) {
                        s->dead[r] += w->dead[r];
                        s->dead_letters += w->dead[r];
                }
        }
        s->commits = st->commits;
        s->internal_rejected = atomic_load(&st->internal_rejected);
        s->closed = st->closed;
        s->merger = st->merger || st->have_merger_stats;
        s->partials_applied = st->applied_seen;
        if (st->merger)
                s->engine = st->committed_stats;
        else if (st->have_merger_stats)
                s->engine = st->merger_stats;
        else
                tt_engine_get_stats(st->e, &s->engine);
        if (st->eos) {
                /* Forwarded events the merger dead-lettered. */
                for (int r = 0; r < TT_REASON__COUNT; r++) {
                        s->dead[r] += s->engine.dead[r];
                        s->dead_letters += s->engine.dead[r];
                }
                s->accepted += s->engine.accepted;
        }
}

/* The fields of a stage before anything is opened (tt_stage_run). */
static void stage_init(stage *st, const tt_stage_conf *conf,
                       volatile sig_atomic_t *stop) {
        memset(st, 0, sizeof(*st));
        st->conf = conf;
        st->nw = conf->workers > 0 ? conf->workers : 1;
        st->nparts = conf->engine.max_partitions > 0
                         ? conf->engine.max_partitions
                         : 4096;
        atomic_init(&st->skip_below, INT32_MIN);
        st->resume_closed = INT32_MIN;
        st->resume_rev = -1;
        pthread_mutex_init(&st->mu, NULL);
        pthread_cond_init(&st->cv, NULL);
        st->sink = (tt_sink){sink_rollup, sink_streak};
        st->eos = conf->exactly_once;
        st->stop = stop;
        atomic_init(&st->fwd_bound, INT64_MIN);
        st->merge_next = -1;
        st->merge_committed = -1;
        st->eof_mark = -1;
        st->applied_seen = -2;
        st->last_prov = st->unassigned_since = st->applied_since = tt_wall_ms();
        tt_buf_init(&st->pbuf, 32u << 20);
        if (conf->partials_topic && *conf->partials_topic)
                snprintf(st->partials, sizeof(st->partials), "%s",
                         conf->partials_topic);
        else
                snprintf(st->partials, sizeof(st->partials), "%s.partials",
                         conf->group);
}

/* Exactly-once: the merger's decoder, the internal topics, and the
 * producer's first transaction. */
static int eos_open(stage *st, char *errstr, size_t errsize) {
        const tt_stage_conf *conf = st->conf;
        int err;
        char why[512];
        if (!(st->mjd = tt_json_dec_new())) {
                snprintf(errstr, errsize, "out of memory");
                return TT_ERR_NOMEM;
        }
        if ((err = tt_stage_ensure_topics(st, errstr, errsize)))
                return err;
        tt_kafka_out_track(conf->out, st->partials);
        if ((err = tt_kafka_out_txn_init(conf->out, 60000, why, sizeof(why))) ||
            (err = tt_kafka_out_txn_begin(conf->out, why, sizeof(why)))) {
                snprintf(errstr, errsize, "%s", why);
                return err;
        }
        st->txn_open = true;
        return TT_ERR_OK;
}

/* Engine, decoders, the consumer, the worker threads and (exactly-once)
 * the producer's first transaction, then the subscription. 0, or a tt_err
 * with errstr set; what was opened is released by stage_release. */
static int stage_open(stage *st, char *errstr, size_t errsize) {
        const tt_stage_conf *conf = st->conf;
        int err = TT_ERR_OK;
        tt_engine_conf ec = conf->engine;
        ec.nshards = (uint32_t)st->nw;
        ec.max_partitions = st->nparts;
        /* An exactly-once front only counts; if it ever tried to emit,
         * that would be a bug: fail loudly rather than publish it. */
        static const tt_sink front_sink = {front_rollup, front_streak};
        st->e = tt_engine_new(&ec, st->eos ? &front_sink : &st->sink, st,
                              errstr, errsize);
        st->adec = tt_avro_dec_new(NULL, errstr, errsize);
        st->parts = tt_calloc((size_t)st->nparts, sizeof(ppart));
        st->w = tt_calloc((size_t)st->nw, sizeof(worker));
        if (!st->e || !st->adec || !st->parts || !st->w) {
                if (!st->e || !st->adec)
                        ; /* errstr set */
                else
                        snprintf(errstr, errsize, "out of memory");
                return TT_ERR_NOMEM;
        }
        for (int32_t p = 0; p < st->nparts; p++)
                st->parts[p].next_offset = -1;
        for (int32_t p = 0; p < st->nparts; p++)
                st->parts[p].newest_event_ms = INT64_MIN;
        if (!(st->rk = tt_stage_make_consumer(st, errstr, errsize))) {
                return TT_ERR_INVAL;
        }
        for (int i = 0; i < st->nw; i++) {
                worker *w = &st->w[i];
                w->st = st;
                w->id = i;
                w->q = rd_kafka_queue_new(st->rk);
                w->jd = tt_json_dec_new();
                tt_buf_init(&w->fwd, 32u << 20);
                if (!w->jd) {
                        snprintf(errstr, errsize, "out of memory");
                        return TT_ERR_NOMEM;
                }
        }
        for (int i = 0; i < st->nw; i++) {
                if (pthread_create(&st->w[i].th, NULL, tt_stage_worker_main,
                                   &st->w[i])) {
                        snprintf(errstr, errsize, "cannot start workers");
                        return TT_ERR_NOMEM;
                }
                st->w[i].started = true;
        }
        if (st->eos && (err = eos_open(st, errstr, errsize)))
                return err;
        rd_kafka_topic_partition_list_t *sub =
            rd_kafka_topic_partition_list_new(2);
        rd_kafka_topic_partition_list_add(sub, conf->topic,
                                          RD_KAFKA_PARTITION_UA);
        if (st->eos)
                rd_kafka_topic_partition_list_add(sub, st->partials,
                                                  RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t kerr = rd_kafka_subscribe(st->rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (kerr) {
                snprintf(errstr, errsize, "subscribe %s: %s", conf->topic,
                         rd_kafka_err2str(kerr));
                return TT_ERR_KAFKA;
        }
        return TT_ERR_OK;
}

/* A message of the coordinator's own queue: a fatal consumer error, or
 * (exactly-once) a partial record for the merger; input messages arrive
 * on the workers' queues, never here. */
static void coordinator_message(stage *st, rd_kafka_message_t *m) {
        if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                /* E.g. a static member fenced after an
                 * outage longer than its session: with
                 * exactly-once a new consumer resumes from
                 * the commits, as after a restart. */
                char why[256];
                rd_kafka_fatal_error(st->rk, why, sizeof(why));
                st->retry = st->eos;
                tt_stage_fail(st, st->eos ? TT_ERR_RETRY : TT_ERR_KAFKA,
                              "consumer: %s", why);
        } else if (st->eos && !m->err && m->rkt &&
                   !strcmp(rd_kafka_topic_name(m->rkt), st->partials)) {
                tt_stage_merger_apply(st, m);
        } else if (m->rkt &&
                   strcmp(rd_kafka_topic_name(m->rkt), st->partials)) {
                TT_LOG(TT_LOG_WARN, "input message on the main queue",
                       TT_KV_I("partition", m->partition),
                       TT_KV_I("offset", m->offset), TT_KV_I("err", m->err));
        }
}

/* When the coordinator last emitted PROVISIONAL rows and committed. */
typedef struct loop_clock {
        int64_t last_prov, last_commit;
} loop_clock;

/* Exactly-once, one pass of the loop: every commit interval, one
 * transaction (eos_cycle). true: leave the loop (*finished says whether
 * --close-at-eof did all it promises). */
static bool eos_step(stage *st, loop_clock *lc, int64_t now, bool *finished) {
        const tt_stage_conf *conf = st->conf;
        if (now - lc->last_commit < conf->commit_interval_ms)
                return false;
        lc->last_commit = now;
        tt_stage_pause_workers(st);
        tt_stage_eos_cycle(st, now, false);
        /* No partition for a while: the group gave them
         * to others (not just the first, empty step of a
         * cooperative rebalance). */
        if (any_assigned(st) || !st->assigned_any)
                st->unassigned_since = now;
        *finished = conf->close_at_eof && !atomic_load(&st->err) &&
                    tt_stage_eos_finished(st, now);
        if (*finished || atomic_load(&st->quit))
                return true;
        tt_stage_resume_workers(st);
        return false;
}

/* At-least-once, one pass of the loop: the coordinator's week closing
 * and emission (ticks, PROVISIONAL rows, --close-at-eof), then the
 * periodic offset commit. true: leave the loop. */
static bool alo_step(stage *st, loop_clock *lc, int64_t now, bool *finished) {
        const tt_stage_conf *conf = st->conf;
        bool prov = conf->emit_interval_ms > 0 &&
                    now - lc->last_prov >= conf->emit_interval_ms;
        bool eof = conf->close_at_eof && all_at_eof(st);
        if (prov || eof || tt_engine_sync_due(st->e, now)) {
                double t_emit = tt_mono_s();
                tt_stage_pause_workers(st);
                if (!tt_engine_tick(st->e, now) && prov) {
                        tt_engine_emit_provisional(st->e, now);
                        lc->last_prov = now;
                }
                /* EOF re-checked with the workers still: every
                 * message before the EOF markers is counted. */
                if (eof && all_at_eof(st)) {
                        tt_engine_close_all(st->e, now);
                        *finished = true;
                }
                if (tt_engine_error(st->e))
                        tt_stage_fail(st, tt_engine_error(st->e), "engine: %s",
                                      tt_err2str(tt_engine_error(st->e)));
                if (tt_stage_publish(st))
                        tt_hist_observe(&st->live->emit, tt_mono_s() - t_emit);
                if (*finished) {
                        tt_stage_commit(st, tt_stage_commit_offsets(st, NULL));
                        return true;
                }
                tt_stage_resume_workers(st);
        }
        if (now - lc->last_commit >= conf->commit_interval_ms) {
                tt_stage_pause_workers(st);
                rd_kafka_topic_partition_list_t *l =
                    tt_stage_commit_offsets(st, NULL);
                tt_stage_publish(st);
                tt_stage_resume_workers(st);
                tt_stage_commit(st, l);
                lc->last_commit = now;
        }
        return false;
}

/* The coordinator's loop, until a stop request, a failure or (with
 * --close-at-eof) the end. true when --close-at-eof finished. */
static bool coordinate(stage *st, volatile sig_atomic_t *stop) {
        const tt_stage_conf *conf = st->conf;
        loop_clock lc;
        lc.last_prov = tt_wall_ms();
        lc.last_commit = tt_wall_ms();
        bool finished = false;
        while (!*stop && !atomic_load(&st->quit)) {
                rd_kafka_message_t *m =
                    rd_kafka_consumer_poll(st->rk, st->eos ? 20 : 100);
                if (m) {
                        coordinator_message(st, m);
                        rd_kafka_message_destroy(m);
                }
                tt_kafka_out_poll(conf->out);
                char why[256];
                if (tt_kafka_out_error(conf->out, why, sizeof(why))) {
                        /* Exactly-once: the open transaction cannot commit;
                         * a new producer aborts it and we redo it, unless
                         * another instance took our transactional.id. */
                        st->retry = st->eos &&
                                    !tt_kafka_out_fenced(conf->out) &&
                                    !tt_kafka_out_permanent(conf->out);
                        tt_stage_fail(st,
                                      st->retry ? TT_ERR_RETRY : TT_ERR_KAFKA,
                                      "output delivery failed: %s", why);
                        break;
                }
                int64_t now = tt_wall_ms();
                if (st->eos)
                        tt_stage_repair_gaps(st);
                if (st->eos ? eos_step(st, &lc, now, &finished)
                            : alo_step(st, &lc, now, &finished))
                        break;
        }
        return finished;
}

/* After the loop: what a stop by signal or the end of the input still
 * owes (the last transaction, or the last count and commit). */
static void stage_wind_down(stage *st, bool finished) {
        const tt_stage_conf *conf = st->conf;
        if (st->eos && !finished && !atomic_load(&st->err)) {
                /* Stopped by a signal: what was read commits as usual. */
                tt_deadline_phase(conf->deadline,
                                  "committing the last transaction");
                tt_stage_pause_workers(st);
                tt_stage_eos_cycle(st, tt_wall_ms(), true);
        } else if (st->eos && finished) {
                /* The last cycle began a transaction that has nothing. */
                char why[256];
                tt_deadline_phase(conf->deadline,
                                  "aborting the empty last transaction");
                tt_kafka_out_txn_abort(conf->out, why, sizeof(why));
                st->txn_open = false;
        } else if (!finished && !atomic_load(&st->err)) {
                /* Stopped by a signal: count what was read, deliver, and
                 * commit (open weeks are recounted by the next run). */
                tt_deadline_phase(conf->deadline,
                                  "delivering the outputs and committing "
                                  "offsets");
                tt_stage_pause_workers(st);
                tt_engine_tick(st->e, tt_wall_ms());
                tt_stage_publish(st);
                tt_stage_commit(st, tt_stage_commit_offsets(st, NULL));
        }
}

/* Stops the workers and frees everything stage_open opened; fills stats
 * from the shards first. */
static void stage_release(stage *st, tt_stage_stats *stats, int err) {
        atomic_store(&st->quit, true);
        pthread_mutex_lock(&st->mu);
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        for (int i = 0; st->w && i < st->nw; i++) {
                if (st->w[i].q)
                        rd_kafka_queue_yield(st->w[i].q);
                if (st->w[i].started)
                        pthread_join(st->w[i].th, NULL);
        }
        if (st->e && st->w)
                collect(st, stats);
        tt_merger_destroy(st->merger);
        st->merger = NULL;
        tt_stage_live_detach(st, stats, err);
        if (st->rk) {
                tt_deadline_phase(st->conf->deadline,
                                  "leaving the consumer group");
                rd_kafka_consumer_close(st->rk);
                for (int i = 0; st->w && i < st->nw; i++)
                        if (st->w[i].q)
                                rd_kafka_queue_destroy(st->w[i].q);
                rd_kafka_destroy(st->rk);
        }
        for (int i = 0; st->w && i < st->nw; i++) {
                tt_json_dec_destroy(st->w[i].jd);
                tt_buf_free(&st->w[i].fwd);
        }
        tt_json_dec_destroy(st->mjd);
        tt_free(st->w);
        tt_free(st->parts);
        tt_buf_free(&st->pbuf);
        tt_avro_dec_destroy(st->adec);
        tt_engine_destroy(st->e);
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
}

int tt_stage_run(const tt_stage_conf *conf, volatile sig_atomic_t *stop,
                 tt_stage_stats *stats, char *errstr, size_t errsize) {
        memset(stats, 0, sizeof(*stats));
        double t0 = tt_mono_s();
        stage st;
        stage_init(&st, conf, stop);
        int err = TT_ERR_OK;
        tt_stage_live *own_live = NULL;
        st.live = conf->live;
        if (!st.live && !(st.live = own_live = tt_stage_live_new())) {
                snprintf(errstr, errsize, "out of memory");
                return TT_ERR_NOMEM;
        }
        if (!(err = stage_open(&st, errstr, errsize))) {
                tt_stage_live_attach(&st);
                bool finished = coordinate(&st, stop);
                stage_wind_down(&st, finished);
                err = atomic_load(&st.err);
                if (err)
                        snprintf(errstr, errsize, "%s", st.errmsg);
                st.closed = finished && !err;
        }
        stage_release(&st, stats, err);
        tt_stage_live_destroy(own_live);
        stats->seconds = tt_mono_s() - t0;
        return err;
}
