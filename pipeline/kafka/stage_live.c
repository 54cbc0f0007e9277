/* The stage's live view: what /metrics, /healthz and /readyz read. The
 * coordinator publishes engine figures with the workers paused; counters
 * are read with relaxed loads. The metrics side reads snapshots through
 * tt_stage_live_read (stage_snapshot.h) and never calls in here. */
#include "stage_impl.h"

/* With the workers paused: hands the engine's figures to the live view
 * and logs closed weeks. True when rows or streak changes were emitted
 * since the last call. */
bool tt_stage_publish(stage *st) {
        tt_engine_stats es;
        tt_engine *pe = st->merger ? tt_merger_engine(st->merger) : st->e;
        tt_engine_get_stats(pe, &es);
        int64_t wm = tt_engine_watermark(pe);
        tt_stage_live *l = st->live;
        pthread_mutex_lock(&l->mu);
        tt_engine_stats old = l->eng;
        l->eng = es;
        l->merger = st->merger != NULL;
        l->watermark_ms = wm;
        pthread_mutex_unlock(&l->mu);
        if (es.key_limit_events > old.key_limit_events)
                /* An operator's bound, never a silent one. */
                TT_LOG(TT_LOG_WARN,
                       "--max-keys reached: events of further models are "
                       "dead letters key_limit",
                       TT_KV_I("max_keys", es.max_keys),
                       TT_KV_I("key_limit_events", es.key_limit_events));
        if (es.weeks_closed > old.weeks_closed) {
                char name[16];
                tt_week_name(tt_engine_closed_through(pe), name, sizeof(name));
                TT_LOG(TT_LOG_INFO, "week closed", TT_KV_S("week", name),
                       TT_KV_I("weeks", es.weeks_closed - old.weeks_closed),
                       TT_KV_I("rows", es.rows[TT_STATUS_FINAL] -
                                           old.rows[TT_STATUS_FINAL]));
        }
        return es.rows[0] + es.rows[1] + es.rows[2] + es.streaks !=
               old.rows[0] + old.rows[1] + old.rows[2] + old.streaks;
}

/* ---- live view: attach, detach, snapshot -------------------------------- */

tt_stage_live *tt_stage_live_new(void) {
        tt_stage_live *l = tt_calloc(1, sizeof(*l));
        if (!l)
                return NULL;
        pthread_mutex_init(&l->mu, NULL);
        l->watermark_ms = INT64_MIN;
        return l;
}

void tt_stage_live_destroy(tt_stage_live *l) {
        if (!l)
                return;
        pthread_mutex_destroy(&l->mu);
        tt_free(l);
}

/* Once the consumer and the workers exist (st->rk no longer changes). */
void tt_stage_live_attach(stage *st) {
        tt_stage_live *l = st->live;
        pthread_mutex_lock(&l->mu);
        memset(&l->eng, 0, sizeof(l->eng));
        l->watermark_ms = INT64_MIN;
        l->finished = false;
        l->err = 0;
        snprintf(l->topic, sizeof(l->topic), "%s", st->conf->topic);
        l->st = st;
        pthread_mutex_unlock(&l->mu);
}

/* Before the consumer and the workers go away. */
void tt_stage_live_detach(stage *st, const tt_stage_stats *final, int err) {
        tt_stage_live *l = st->live;
        uint64_t late = 0;
        for (int i = 0; st->w && i < st->nw; i++)
                late += st->w[i].late_queued;
        pthread_mutex_lock(&l->mu);
        if (l->st == st) {
                l->last = *final;
                l->last_late_queued = late;
                l->finished = true;
                l->err = err;
                snprintf(l->errmsg, sizeof(l->errmsg), "%s", st->errmsg);
                l->st = NULL;
        }
        pthread_mutex_unlock(&l->mu);
}

void tt_stage_live_read(void *live, tt_stage_snapshot *s) {
        tt_stage_live_snapshot(live, s);
}

/* Long (about 85 lines) on purpose: one copy, field after field, under the
 * live view's lock, either of the last finished run or of the attached
 * one; cut in pieces it would only hide which fields a scrape reads. */
void tt_stage_live_snapshot(tt_stage_live *l, tt_stage_snapshot *s) {
        tt_stage_part_snap *parts = s->parts;
        size_t cap = s->cap;
        memset(s, 0, sizeof(*s));
        s->parts = parts;
        s->cap = cap;
        pthread_mutex_lock(&l->mu);
        stage *st = l->st;
        s->topic = l->topic;
        s->watermark_ms = INT64_MIN;
        if (!st) {
                s->stats = l->last;
                s->late_queued = l->last_late_queued;
                s->healthy = !l->err;
                snprintf(s->reason, sizeof(s->reason), "%s",
                         l->err        ? l->errmsg
                         : l->finished ? "stage stopped"
                                       : "no partition assigned yet: "
                                         "connecting to the Kafka cluster");
        } else {
                for (int i = 0; i < st->nw; i++) {
                        worker *w = &st->w[i];
                        memory_order r = memory_order_relaxed;
                        s->stats.messages +=
                            atomic_load_explicit(&w->messages, r);
                        s->stats.accepted +=
                            atomic_load_explicit(&w->accepted, r);
                        s->stats.skipped_replayed +=
                            atomic_load_explicit(&w->skipped, r);
                        s->stats.forwarded +=
                            atomic_load_explicit(&w->forwarded, r);
                        s->stats.gaps += atomic_load_explicit(&w->gaps, r);
                        s->late_queued +=
                            atomic_load_explicit(&w->late_queued, r);
                        for (int k = 0; k < TT_REASON__COUNT; k++) {
                                uint64_t d =
                                    atomic_load_explicit(&w->dead[k], r);
                                s->stats.dead[k] += d;
                                s->stats.dead_letters += d;
                        }
                }
                s->stats.internal_rejected =
                    atomic_load(&st->internal_rejected);
                s->stats.engine = l->eng;
                s->watermark_ms = l->watermark_ms;
                s->merger = l->merger;
                size_t assigned = 0;
                for (int32_t p = 0; p < st->nparts; p++) {
                        ppart *pp = &st->parts[p];
                        if (!atomic_load(&pp->assigned))
                                continue;
                        assigned++;
                        if (s->nparts == s->cap)
                                continue;
                        tt_stage_part_snap *ps = &s->parts[s->nparts++];
                        ps->partition = p;
                        ps->watermark_ms = atomic_load_explicit(
                            &pp->newest_event_ms, memory_order_relaxed);
                        int64_t next = atomic_load_explicit(
                            &pp->next_offset, memory_order_relaxed);
                        int64_t lo = -1, hi = -1;
                        /* Cached from fetch responses: no broker call. */
                        ps->lag = -1;
                        if (next >= 0 &&
                            !rd_kafka_get_watermark_offsets(
                                st->rk, st->conf->topic, p, &lo, &hi) &&
                            hi >= 0)
                                ps->lag = hi > next ? hi - next : 0;
                }
                int err = atomic_load(&st->err);
                bool quit = atomic_load(&st->quit);
                s->healthy = !err;
                s->ready = !err && !quit && assigned > 0;
                snprintf(s->reason, sizeof(s->reason), "%s",
                         err    ? tt_err2str(err)
                         : quit ? "stage stopping"
                                : "no partition assigned yet: waiting for "
                                  "the group's assignment");
        }
        s->stats.commits = atomic_load(&l->commits);
        s->rebalances = atomic_load(&l->rebalances);
        tt_hist_read(&l->emit, &s->emit_latency);
        tt_hist_read(&l->commit, &s->commit_latency);
        pthread_mutex_unlock(&l->mu);
}
