/* The stage's worker threads: each owns some input partitions and one
 * shard of the counters, decodes and checks its messages and counts them
 * with no lock; the coordinator pauses them between batches whenever the
 * shards must be read (stage.c). */
#include "stage_impl.h"

static void track(ppart *pp, int32_t week, int64_t off) {
        for (int i = 0; i < pp->nweeks; i++)
                if (pp->weeks[i].week == week) {
                        if (off < pp->weeks[i].off)
                                pp->weeks[i].off = off;
                        return;
                }
        if (pp->nweeks == TRACKED_WEEKS) {
                /* Full: fold the oldest week into the next oldest. The
                 * merged entry keeps the smaller offset under the newer
                 * week, so commits stay conservative. */
                int a = 0, b = -1;
                for (int i = 1; i < pp->nweeks; i++)
                        if (pp->weeks[i].week < pp->weeks[a].week)
                                a = i;
                for (int i = 0; i < pp->nweeks; i++)
                        if (i != a &&
                            (b < 0 || pp->weeks[i].week < pp->weeks[b].week))
                                b = i;
                if (pp->weeks[a].off < pp->weeks[b].off)
                        pp->weeks[b].off = pp->weeks[a].off;
                pp->weeks[a] = pp->weeks[--pp->nweeks];
        }
        pp->weeks[pp->nweeks++] = (wkoff){week, off};
}

void tt_stage_dead(worker *w, const rd_kafka_message_t *m, tt_reason why,
                   const char *detail) {
        stage *st = w->st;
        bump(&w->dead[why]);
        int err = tt_kafka_out_dead_letter(
            st->conf->out, why, detail, rd_kafka_topic_name(m->rkt),
            m->partition, m->offset, m->key, m->key_len, m->payload, m->len);
        if (err) {
                char why_s[256];
                tt_kafka_out_error(st->conf->out, why_s, sizeof(why_s));
                tt_stage_fail(st, err, "dead-letter delivery failed: %s",
                              why_s);
        }
}

/* One input message's value into ev: JSON, Confluent-framed Avro or raw
 * Avro, as configured. */
tt_reason tt_stage_decode_value(stage *st, tt_json_dec *jd, const void *payload,
                                size_t plen, tt_event *ev, char *detail,
                                size_t size) {
        const tt_stage_conf *c = st->conf;
        if (!payload) {
                snprintf(detail, size, "message has no value");
                return TT_REASON_MALFORMED;
        }
        if (c->format == TT_IN_JSON)
                return tt_json_decode_event(jd, payload, plen, ev, detail,
                                            size);
        const uint8_t *body = payload;
        size_t len = plen;
        const tt_avro_dec *dec = st->adec;
        if (c->format == TT_IN_AVRO) {
                int32_t id;
                if (tt_confluent_parse(payload, plen, &id, &body, &len, detail,
                                       size))
                        return TT_REASON_MALFORMED;
                /* With a registry, the writer schema of that id resolved
                 * against the bundled TokenEvent (cached per id). */
                if (c->registry && !(dec = tt_registry_event_decoder(
                                         c->registry, id, detail, size)))
                        return TT_REASON_MALFORMED;
        }
        size_t used = 0;
        tt_reason r =
            tt_avro_decode_event(dec, body, len, &used, ev, detail, size);
        if (r == TT_REASON_NONE && used != len) {
                snprintf(detail, size, "%zu bytes after the Avro record",
                         len - used);
                return TT_REASON_MALFORMED;
        }
        return r;
}

static tt_reason decode(worker *w, const rd_kafka_message_t *m, tt_event *ev,
                        char *detail, size_t size) {
        return tt_stage_decode_value(w->st, w->jd, m->payload, m->len, ev,
                                     detail, size);
}

void tt_stage_newest(ppart *pp, int64_t t) {
        if (t >
            atomic_load_explicit(&pp->newest_event_ms, memory_order_relaxed))
                atomic_store_explicit(&pp->newest_event_ms, t,
                                      memory_order_relaxed);
}

/* Exactly-once front: check, then count into the worker's shard, or
 * forward the message whole when its week may already be closed by the
 * time this interval's counts reach the merger (fwd_bound). */
static void handle_front(worker *w, const rd_kafka_message_t *m, ppart *pp,
                         const tt_event *ev, tt_reason r, int32_t week,
                         bool late, char *detail, int64_t now) {
        stage *st = w->st;
        if (r != TT_REASON_NONE) {
                tt_stage_dead(w, m, r, detail);
                return;
        }
        int64_t bound =
            atomic_load_explicit(&st->fwd_bound, memory_order_relaxed);
        if (tt_week_start(week + 1) + st->conf->engine.grace_ms <= bound) {
                const char *g = st->conf->group;
                int err =
                    tt_partial_event(&w->fwd, m->partition, m->offset, m->key,
                                     m->key_len, m->payload, m->len);
                if (!err)
                        err = tt_kafka_out_raw(st->conf->out, st->partials, 0,
                                               g, strlen(g), w->fwd.data,
                                               w->fwd.len);
                if (err) {
                        tt_stage_fail(st, err,
                                      "forwarding to the partials topic: %s",
                                      tt_err2str(err));
                        return;
                }
                bump(&w->forwarded);
        } else if (tt_engine_count(st->e, (uint32_t)w->id, week, ev)) {
                tt_stage_dead(w, m, TT_REASON_KEY_LIMIT,
                              "more than --max-keys distinct models this week");
                return;
        } else {
                bump(&w->accepted);
        }
        tt_engine_seen(st->e, m->partition, ev->event_time_ms, now);
        tt_stage_newest(pp, ev->event_time_ms);
}

/* Exactly-once: the offsets a transaction commits are the front's own
 * (next_offset), so every message below them must have been counted.
 * librdkafka 2.0.2 was seen to skip a few hundred messages of a retained
 * partition during a cooperative rebalance (tests/it_kafka_eos.sh, three
 * instances and a join). So a message (or end-of-partition event) past the
 * next expected offset is not taken: the coordinator seeks the partition
 * back. The gap is real (aborted transactions, compaction, retention) only
 * when the first message after each of three completed seeks is the same
 * offset: a message fetched before a seek and still queued shows another.
 * A message below the expected offset was counted already: dropped. */
#define GAP_CONFIRMATIONS 3
bool tt_stage_in_sequence(worker *w, ppart *pp, const rd_kafka_message_t *m) {
        int64_t exp =
            atomic_load_explicit(&pp->next_offset, memory_order_relaxed);
        bool eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (exp < 0 || (m->err && !eof) || m->offset == exp)
                return true;
        if (m->offset < exp) {
                if (!eof)
                        bump(&w->duplicates);
                return false;
        }
        /* A one-offset gap is usually a transaction marker of a
         * transactional producer upstream, but librdkafka also skipped
         * single messages: taking every one-offset gap at once lost one
         * event now and then (it_kafka_eos multi: W13 short by one
         * request, 2 of 14 runs). So it is confirmed like any gap; the
         * cost is a few seeks per upstream transaction and partition. */
        uint64_t seeks = atomic_load(&pp->seeks);
        if (seeks != pp->seeks_seen) {
                /* The first message since a seek completed. */
                pp->seeks_seen = seeks;
                if (pp->gap_from == exp && pp->gap_first == m->offset) {
                        if (++pp->gap_count >= GAP_CONFIRMATIONS) {
                                pp->gap_count = 0;
                                return true; /* a real gap */
                        }
                } else {
                        pp->gap_from = exp;
                        pp->gap_first = m->offset;
                        pp->gap_count = 1;
                }
        }
        if (atomic_load(&pp->want_seek) != exp) {
                bump(&w->gaps);
                atomic_store(&pp->want_seek, exp);
        }
        return false;
}

/* At-least-once, a valid event: checked against its week (late, too
 * old, re-read after a restart) and counted into this worker's shard, or a
 * dead letter. Out of handle() to keep each readable. r, week, late and
 * detail (DETAIL_MAX bytes) are tt_engine_check's answer. */
static void handle_counted(worker *w, const rd_kafka_message_t *m, ppart *pp,
                           const tt_event *ev, tt_reason r, int32_t week,
                           bool late, char *detail, int64_t now) {
        stage *st = w->st;
        int32_t skip =
            atomic_load_explicit(&st->skip_below, memory_order_relaxed);
        if (r == TT_REASON_NONE && week < skip) {
                if (pp->replay_end < 0 || m->offset < pp->replay_end) {
                        /* Re-read after a restart: counted and final
                         * before. The week just before the oldest kept one
                         * is counted again, as the previous week of that
                         * one (it closes without output). */
                        if (pp->replay_end < 0 || week < skip - 1) {
                                bump(&w->skipped);
                                return;
                        }
                        goto count;
                }
                /* New since the last run, and older than what it kept
                 * (issue 9, defect 3: was skipped silently). */
                char wn[16], kn[16];
                tt_week_name(week, wn, sizeof(wn));
                tt_week_name(skip, kn, sizeof(kn));
                snprintf(detail, DETAIL_MAX,
                         "week %s is older than the retained weeks (oldest "
                         "kept %s)",
                         wn, kn);
                tt_stage_dead(w, m, TT_REASON_TOO_LATE, detail);
                return;
        }
count:
        if (r == TT_REASON_NONE) {
                if (late) {
                        if (tt_engine_queue_late(st->e, ev)) {
                                snprintf(detail, DETAIL_MAX,
                                         "out of memory queueing a late "
                                         "event");
                                r = TT_REASON_KEY_LIMIT;
                        } else {
                                bump(&w->late_queued);
                        }
                } else if (tt_engine_count(st->e, (uint32_t)w->id, week, ev)) {
                        snprintf(detail, DETAIL_MAX,
                                 "more than --max-keys distinct models this "
                                 "week");
                        r = TT_REASON_KEY_LIMIT;
                }
        }
        if (r != TT_REASON_NONE) {
                tt_stage_dead(w, m, r, detail);
                return;
        }
        bump(&w->accepted);
        track(pp, week, m->offset);
        tt_engine_seen(st->e, m->partition, ev->event_time_ms, now);
        tt_stage_newest(pp, ev->event_time_ms);
}

static void handle(worker *w, const rd_kafka_message_t *m, int64_t now) {
        stage *st = w->st;
        if (m->partition < 0 || m->partition >= st->nparts)
                return;
        ppart *pp = &st->parts[m->partition];
        /* Exactly-once: a message of a partition revoked meanwhile belongs
         * to its new owner, which starts at our committed offset. */
        if (st->eos &&
            (!atomic_load_explicit(&pp->assigned, memory_order_relaxed) ||
             !tt_stage_in_sequence(w, pp, m)))
                return;
        if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        pp->next_offset = m->offset;
                        atomic_store(&pp->eof, true);
                        tt_engine_partition_behind(st->e, m->partition, false);
                }
                return;
        }
        if (atomic_load_explicit(&pp->eof, memory_order_relaxed)) {
                atomic_store_explicit(&pp->eof, false, memory_order_relaxed);
                tt_engine_partition_behind(st->e, m->partition, true);
        }
        atomic_store_explicit(&pp->next_offset, m->offset + 1,
                              memory_order_relaxed);
        bump(&w->messages);
        tt_event ev;
        char detail[DETAIL_MAX];
        memset(&ev, 0, sizeof(ev));
        tt_reason r = decode(w, m, &ev, detail, sizeof(detail));
        if (r != TT_REASON_NONE) {
                tt_stage_dead(w, m, r, detail);
                return;
        }
        /* The week's check, for both modes (decode's detail is spent). */
        int32_t week = 0;
        bool late = false;
        r = tt_engine_check(st->e, &ev, now, &week, &late, detail,
                            sizeof(detail));
        if (st->eos) {
                handle_front(w, m, pp, &ev, r, week, late, detail, now);
                return;
        }
        handle_counted(w, m, pp, &ev, r, week, late, detail, now);
}

void *tt_stage_worker_main(void *arg) {
        worker *w = arg;
        stage *st = w->st;
        rd_kafka_message_t *msgs[BATCH];
        while (!atomic_load(&st->quit)) {
                if (atomic_load(&st->pause)) {
                        pthread_mutex_lock(&st->mu);
                        st->paused++;
                        pthread_cond_broadcast(&st->cv);
                        while (atomic_load(&st->pause) &&
                               !atomic_load(&st->quit))
                                pthread_cond_wait(&st->cv, &st->mu);
                        st->paused--;
                        pthread_mutex_unlock(&st->mu);
                        continue;
                }
                ssize_t n =
                    rd_kafka_consume_batch_queue(w->q, 100, msgs, BATCH);
                int64_t now = tt_wall_ms();
                for (ssize_t i = 0; i < n; i++) {
                        handle(w, msgs[i], now);
                        rd_kafka_message_destroy(msgs[i]);
                }
        }
        return NULL;
}

/* Stops every worker between two batches; they wait until
 * tt_stage_resume_workers(). */
void tt_stage_pause_workers(stage *st) {
        pthread_mutex_lock(&st->mu);
        atomic_store(&st->pause, true);
        for (int i = 0; i < st->nw; i++)
                rd_kafka_queue_yield(st->w[i].q);
        while (st->paused < st->nw && !atomic_load(&st->quit))
                pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
}

void tt_stage_resume_workers(stage *st) {
        pthread_mutex_lock(&st->mu);
        atomic_store(&st->pause, false);
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
}
