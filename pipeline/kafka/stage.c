/* The Kafka stage: a consumer group member whose partitions are spread over
 * worker threads (partition p -> worker p % N, through librdkafka's
 * per-partition queues forwarded to one queue per worker). Workers decode,
 * check and count their own partitions' events into their own shard with no
 * lock. The coordinator (the caller's thread) serves rebalances, and pauses
 * the workers between their batches whenever shards must be read: to close
 * weeks, emit PROVISIONAL rows, or compute what to commit. See stage.h for
 * what a commit promises. */
#include "tokentally/stage.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokentally/avro_event.h"
#include "tokentally/clock.h"
#include "tokentally/commit_meta.h"
#include "tokentally/err.h"
#include "tokentally/framing.h"
#include "tokentally/json_event.h"
#include "tokentally/kafka_conf.h"
#include "tokentally/log.h"
#include "tokentally/mem.h"
#include "tokentally/merger.h"
#include "tokentally/offset_meta.h"
#include "tokentally/partials.h"
#include "tokentally/schema_registry.h"
#include "tokentally/week.h"

#define BATCH 1024
#define TRACKED_WEEKS 32
#define DETAIL_MAX 200

/* Per input partition; fields marked (w) belong to the owning worker and
 * are read by the coordinator only while workers are paused. */
typedef struct wkoff {
        int32_t week;
        int64_t off; /* smallest offset of an event counted in week */
} wkoff;

typedef struct ppart {
        _Atomic bool assigned;           /* coordinator */
        _Atomic int64_t next_offset;     /* (w) -1: nothing consumed yet */
        _Atomic int64_t newest_event_ms; /* (w) for /metrics */
        _Atomic bool eof;                /* (w) at the end of the partition */
        wkoff weeks[TRACKED_WEEKS];      /* (w) */
        int nweeks;                      /* (w) */
        /* At-least-once, after a restart: the offset where the last
         * committed run had read to (-1: unknown). Below it, an event of a
         * week already final was counted then; from it on, such an event is
         * new and too old: a dead letter too_late, never dropped. */
        int64_t replay_end;
        /* Exactly-once gap repair: the offset a worker asks the
         * coordinator to seek back to (-1: none), and the last offset the
         * coordinator did seek to. */
        _Atomic int64_t want_seek;
        _Atomic uint64_t seeks; /* completed seeks (coordinator) */
        /* (w) what the first message after each completed seek showed */
        uint64_t seeks_seen;
        int64_t gap_from, gap_first;
        int gap_count;
} ppart;

typedef struct worker {
        struct stage *st;
        int id;
        pthread_t th;
        bool started;
        rd_kafka_queue_t *q;
        tt_json_dec *jd;
        tt_buf fwd; /* exactly-once: a forwarded event's record */
        /* Counters: written by this worker only (bump), read by the
         * coordinator and by metrics scrapes at any time. */
        _Atomic uint64_t messages, accepted, skipped, late_queued, forwarded,
            gaps, duplicates, dead[TT_REASON__COUNT];
} worker;

typedef struct stage {
        const tt_stage_conf *conf;
        rd_kafka_t *rk;
        tt_engine *e;
        tt_avro_dec *adec;
        worker *w;
        int nw;
        ppart *parts;
        int32_t nparts;
        tt_sink sink;

        pthread_mutex_t mu;
        pthread_cond_t cv;
        _Atomic bool pause;
        int paused;
        _Atomic bool quit;

        /* After a restart: events of weeks before this are already final
         * (but the week just before it is counted again, quietly, when its
         * commit said where it had read to: see commit_meta.h). */
        _Atomic int32_t skip_below;
        int32_t resume_closed; /* the newest week an earlier run closed */
        int32_t resume_rev;    /* the highest revision it emitted, -1 */
        /* The newest of the partitions' metadata (greatest oldest, then
         * end): its streaks seed the engine, and are handed on by commits
         * made before this run has closed that week itself. */
        tt_commit_meta resume_meta;
        bool have_resume_meta;
        bool first_assign_done;
        bool assigned_any;
        _Atomic int err;
        char errmsg[256];
        uint64_t commits;
        _Atomic uint64_t internal_rejected; /* see tt_stage_stats */
        struct tt_stage_live *live;         /* conf->live or our own */

        /* Exactly-once. */
        bool eos;
        char partials[256]; /* the partials topic */
        /* An upper bound of the merger's watermark when this interval's
         * counts reach it: events of weeks closing at or before it are
         * forwarded whole (see update_bound()). */
        _Atomic int64_t fwd_bound;
        tt_merger *merger;  /* while we own the partials partition */
        int64_t merge_next; /* next partials offset to apply */
        /* Partial records below this offset were written before this
         * merger started: their end-of-partition flags are stale. */
        int64_t eof_from;
        bool fresh;       /* the record being applied is at or past eof_from */
        bool merger_done; /* --close-at-eof: closed everything */
        tt_engine_stats merger_stats; /* of the last merger we held */
        /* The merger's figures as of its last committed transaction: what
         * read_committed consumers can see. */
        tt_engine_stats committed_stats;
        bool have_merger_stats;
        tt_json_dec *mjd; /* decodes forwarded events */
        tt_buf pbuf;      /* partial record under construction */
        int64_t last_prov;
        bool retry; /* a transaction was aborted: rerun from the commits */
        bool eof_committed; /* every own partition's end went out */
        /* --close-at-eof: the offset of our partial record that first
         * reported every own partition at its end (-1: none yet). We may
         * leave only once the merger has applied it. */
        int64_t eof_mark;
        int64_t merge_committed; /* merger: partials offset committed */
        int64_t applied_seen;    /* the group's partials offset, last read */
        int64_t applied_since;   /* when applied_seen last moved */
        bool txn_open;
        int64_t unassigned_since;
        bool closed;                 /* --close-at-eof finished its work */
        volatile sig_atomic_t *stop; /* the caller's stop request */
} stage;

/* A single writer's counter: a relaxed load and store (no locked add), so
 * counting costs what a plain ++ does while scrapes read it race-free. */
static inline void bump(_Atomic uint64_t *c) {
        atomic_store_explicit(c,
                              atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
}

struct tt_stage_live {
        pthread_mutex_t mu;
        stage *st;           /* the attached run, or NULL */
        tt_engine_stats eng; /* published with the workers paused */
        bool merger;         /* exactly-once: this instance merges */
        int64_t watermark_ms;
        tt_stage_stats last; /* the last finished run */
        uint64_t last_late_queued;
        bool finished;
        int err; /* fatal error of the last run */
        char errmsg[128];
        char topic[256];
        _Atomic uint64_t rebalances, commits;
        tt_hist emit, commit;
};

static void fail(stage *st, int err, const char *fmt, const char *arg) {
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
        fail(opaque, TT_ERR_STATE, "%s", "bug: the front engine emitted a row");
        return TT_ERR_STATE;
}

static int front_streak(void *opaque, const tt_streak_change *s) {
        (void)s;
        fail(opaque, TT_ERR_STATE, "%s",
             "bug: the front engine emitted a streak");
        return TT_ERR_STATE;
}

/* ---- workers ---------------------------------------------------------- */

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

static void dead(worker *w, const rd_kafka_message_t *m, tt_reason why,
                 const char *detail) {
        stage *st = w->st;
        bump(&w->dead[why]);
        int err = tt_kafka_out_dead_letter(
            st->conf->out, why, detail, rd_kafka_topic_name(m->rkt),
            m->partition, m->offset, m->key, m->key_len, m->payload, m->len);
        if (err) {
                char why_s[256];
                tt_kafka_out_error(st->conf->out, why_s, sizeof(why_s));
                fail(st, err, "dead-letter delivery failed: %s", why_s);
        }
}

/* One input message's value into ev: JSON, Confluent-framed Avro or raw
 * Avro, as configured. */
static tt_reason decode_value(stage *st, tt_json_dec *jd, const void *payload,
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
        return decode_value(w->st, w->jd, m->payload, m->len, ev, detail, size);
}

static void newest(ppart *pp, int64_t t) {
        if (t >
            atomic_load_explicit(&pp->newest_event_ms, memory_order_relaxed))
                atomic_store_explicit(&pp->newest_event_ms, t,
                                      memory_order_relaxed);
}

/* Exactly-once front: check, then count into the worker's shard, or
 * forward the message whole when its week may already be closed by the
 * time this interval's counts reach the merger (fwd_bound). */
static void handle_front(worker *w, const rd_kafka_message_t *m, ppart *pp,
                         const tt_event *ev, int64_t now) {
        stage *st = w->st;
        char detail[DETAIL_MAX];
        int32_t week = 0;
        bool late = false;
        tt_reason r = tt_engine_check(st->e, ev, now, &week, &late, detail,
                                      sizeof(detail));
        if (r != TT_REASON_NONE) {
                dead(w, m, r, detail);
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
                        fail(st, err, "forwarding to the partials topic: %s",
                             tt_err2str(err));
                        return;
                }
                bump(&w->forwarded);
        } else if (tt_engine_count(st->e, (uint32_t)w->id, week, ev)) {
                dead(w, m, TT_REASON_KEY_LIMIT,
                     "more than --max-keys distinct models this week");
                return;
        } else {
                bump(&w->accepted);
        }
        tt_engine_seen(st->e, m->partition, ev->event_time_ms, now);
        newest(pp, ev->event_time_ms);
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
static bool in_sequence(worker *w, ppart *pp, const rd_kafka_message_t *m) {
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

static void handle(worker *w, const rd_kafka_message_t *m, int64_t now) {
        stage *st = w->st;
        if (m->partition < 0 || m->partition >= st->nparts)
                return;
        ppart *pp = &st->parts[m->partition];
        /* Exactly-once: a message of a partition revoked meanwhile belongs
         * to its new owner, which starts at our committed offset. */
        if (st->eos &&
            (!atomic_load_explicit(&pp->assigned, memory_order_relaxed) ||
             !in_sequence(w, pp, m)))
                return;
        if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        pp->next_offset = m->offset;
                        atomic_store(&pp->eof, true);
                }
                return;
        }
        atomic_store_explicit(&pp->eof, false, memory_order_relaxed);
        atomic_store_explicit(&pp->next_offset, m->offset + 1,
                              memory_order_relaxed);
        bump(&w->messages);
        tt_event ev;
        char detail[DETAIL_MAX];
        memset(&ev, 0, sizeof(ev));
        tt_reason r = decode(w, m, &ev, detail, sizeof(detail));
        if (r != TT_REASON_NONE) {
                dead(w, m, r, detail);
                return;
        }
        if (st->eos) {
                handle_front(w, m, pp, &ev, now);
                return;
        }
        int32_t week = 0;
        bool late = false;
        r = tt_engine_check(st->e, &ev, now, &week, &late, detail,
                            sizeof(detail));
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
                snprintf(detail, sizeof(detail),
                         "week %s is older than the retained weeks (oldest "
                         "kept %s)",
                         wn, kn);
                dead(w, m, TT_REASON_TOO_LATE, detail);
                return;
        }
count:
        if (r == TT_REASON_NONE) {
                if (late) {
                        if (tt_engine_queue_late(st->e, &ev)) {
                                snprintf(detail, sizeof(detail),
                                         "out of memory queueing a late "
                                         "event");
                                r = TT_REASON_KEY_LIMIT;
                        } else {
                                bump(&w->late_queued);
                        }
                } else if (tt_engine_count(st->e, (uint32_t)w->id, week, &ev)) {
                        snprintf(detail, sizeof(detail),
                                 "more than --max-keys distinct models this "
                                 "week");
                        r = TT_REASON_KEY_LIMIT;
                }
        }
        if (r != TT_REASON_NONE) {
                dead(w, m, r, detail);
                return;
        }
        bump(&w->accepted);
        track(pp, week, m->offset);
        tt_engine_seen(st->e, m->partition, ev.event_time_ms, now);
        newest(pp, ev.event_time_ms);
}

static void *worker_main(void *arg) {
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

/* Stops every worker between two batches; they wait until resume(). */
static void pause_workers(stage *st) {
        pthread_mutex_lock(&st->mu);
        atomic_store(&st->pause, true);
        for (int i = 0; i < st->nw; i++)
                rd_kafka_queue_yield(st->w[i].q);
        while (st->paused < st->nw && !atomic_load(&st->quit))
                pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
}

static void resume_workers(stage *st) {
        pthread_mutex_lock(&st->mu);
        atomic_store(&st->pause, false);
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
}

/* ---- offsets ---------------------------------------------------------- */

static int32_t oldest_kept(const stage *st) {
        int64_t wm = tt_engine_watermark(st->e);
        if (wm == INT64_MIN)
                return INT32_MIN;
        return tt_week_of(wm) - st->conf->engine.retain_weeks + 1;
}

/* What an at-least-once commit hands to the next run (commit_meta.h),
 * all but the partition's end offset. */
static void commit_meta_fill(const stage *st, int32_t keep,
                             tt_commit_meta *cm) {
        tt_engine_stats es;
        tt_engine_get_stats(st->e, &es);
        memset(cm, 0, sizeof(*cm));
        cm->oldest = keep;
        int32_t ct = tt_engine_closed_through(st->e);
        cm->closed = ct > st->resume_closed ? ct : st->resume_closed;
        cm->revision =
            es.max_revision > st->resume_rev ? es.max_revision : st->resume_rev;
        if (cm->revision < 0)
                cm->revision = 0;
        if (cm->revision > TT_COMMIT_META_REVISION_MAX)
                cm->revision = TT_COMMIT_META_REVISION_MAX;
        tt_str h0;
        int32_t l0;
        const tt_commit_meta *r = &st->resume_meta;
        if (st->have_resume_meta && keep == r->oldest &&
            !tt_engine_streak_at(st->e, keep - 1, 0, &h0, &l0)) {
                /* That week not closed again yet in this run: hand on
                 * the streaks that came with it. */
                cm->nstreaks = r->nstreaks;
                memcpy(cm->streaks, r->streaks,
                       r->nstreaks * sizeof(r->streaks[0]));
                return;
        }
        for (size_t i = 0; i < tt_engine_rules(st->e) &&
                           cm->nstreaks < TT_COMMIT_META_STREAKS;
             i++) {
                tt_str h;
                int32_t len;
                const char *rule = tt_engine_rule_text(st->e, i);
                if (!tt_engine_streak_at(st->e, keep - 1, i, &h, &len) ||
                    strlen(rule) > TT_COMMIT_META_KEY_MAX ||
                    h.len > TT_COMMIT_META_KEY_MAX)
                        continue;
                tt_commit_streak *s = &cm->streaks[cm->nstreaks++];
                snprintf(s->rule, sizeof(s->rule), "%s", rule);
                memcpy(s->holder, h.ptr, h.len);
                s->holder_len = h.len;
                s->length = len < TT_COMMIT_META_LENGTH_MAX
                                ? len
                                : TT_COMMIT_META_LENGTH_MAX;
        }
}

/* The offsets to commit for the partitions in list (or every assigned
 * one when list is NULL), with workers paused. Returns a new list. */
static rd_kafka_topic_partition_list_t *
commit_offsets(stage *st, const rd_kafka_topic_partition_list_t *only) {
        int32_t keep = oldest_kept(st);
        /* A restarted run still catching up (its watermark behind where
         * the earlier one stopped, or unknown) hands on what it was
         * given, never less: the next run must skip, re-read quietly and
         * refuse exactly what this one does. */
        int32_t skip = atomic_load(&st->skip_below);
        if (skip != INT32_MIN && (keep == INT32_MIN || keep < skip))
                keep = skip;
        /* The week before the oldest kept one is read again too (see
         * commit_meta.h): the oldest needs its prev_tokens. */
        int32_t reread = keep == INT32_MIN ? INT32_MIN : keep - 1;
        tt_commit_meta cm;
        if (keep != INT32_MIN)
                commit_meta_fill(st, keep, &cm);
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(16);
        for (int32_t p = 0; p < st->nparts; p++) {
                ppart *pp = &st->parts[p];
                if (!pp->assigned || pp->next_offset < 0)
                        continue;
                if (only && !rd_kafka_topic_partition_list_find(
                                only, st->conf->topic, p))
                        continue;
                int64_t c = pp->next_offset;
                int j = 0;
                for (int i = 0; i < pp->nweeks; i++) {
                        if (pp->weeks[i].week < reread)
                                continue; /* final for good: forget it */
                        if (pp->weeks[i].off < c)
                                c = pp->weeks[i].off;
                        pp->weeks[j++] = pp->weeks[i];
                }
                pp->nweeks = j;
                rd_kafka_topic_partition_t *t =
                    rd_kafka_topic_partition_list_add(l, st->conf->topic, p);
                t->offset = c;
                if (keep != INT32_MIN) {
                        char meta[TT_COMMIT_META_MAX + 1];
                        cm.end = pp->next_offset > pp->replay_end
                                     ? pp->next_offset
                                     : pp->replay_end;
                        size_t n =
                            tt_commit_meta_format(&cm, meta, sizeof(meta));
                        if (n && (t->metadata = strdup(meta)))
                                t->metadata_size = n;
                }
        }
        return l;
}

/* Flushes every output, then commits l (owned). */
static int commit(stage *st, rd_kafka_topic_partition_list_t *l) {
        char why[256];
        int err = TT_ERR_OK;
        double t0 = tt_mono_s();
        if (l->cnt == 0)
                goto out;
        if ((err =
                 tt_kafka_out_flush(st->conf->out, 60000, why, sizeof(why)))) {
                fail(st, err, "output delivery failed: %s", why);
                goto out;
        }
        rd_kafka_resp_err_t kerr = rd_kafka_commit(st->rk, l, 0);
        if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                /* Not fatal: the next commit covers it; a restart re-reads
                 * a little more. */
                err = TT_ERR_KAFKA;
        } else {
                st->commits++;
                double dt = tt_mono_s() - t0;
                atomic_fetch_add(&st->live->commits, 1);
                tt_hist_observe(&st->live->commit, dt);
                TT_LOG(TT_LOG_DEBUG, "offsets committed",
                       TT_KV_I("partitions", l->cnt),
                       TT_KV_I("latency_us", (int64_t)(dt * 1e6)));
        }
out:
        rd_kafka_topic_partition_list_destroy(l);
        return err;
}

/* ---- live view ------------------------------------------------------- */

/* With the workers paused: hands the engine's figures to the live view
 * and logs closed weeks. True when rows or streak changes were emitted
 * since the last call. */
static bool publish(stage *st) {
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

/* ---- exactly-once: merger, partial records, transactions -------------- */

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

static void merger_start(stage *st) {
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
                fail(st, TT_ERR_KAFKA, "input topic %s: no partitions known",
                     c->topic);
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
                fail(st, st->retry ? TT_ERR_RETRY : merr, "merger: %s", why);
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
                fail(st, TT_ERR_RETRY, "partials topic end: %s", why);
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

static void merger_stop(stage *st) {
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
        tt_reason r =
            decode_value(st, st->mjd, val, vlen, &ev, detail, sizeof(detail));
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
static void merger_apply(stage *st, const rd_kafka_message_t *m) {
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
                fail(st, err, "merging partials: %s", tt_err2str(err));
}

static void dv_model(void *opaque, int32_t week, tt_str model,
                     const tt_cell *c) {
        tt_partial_model(opaque, week, model, c);
}

static void dv_origin(void *opaque, int32_t week, tt_origin o,
                      const tt_cell *c) {
        tt_partial_origin(opaque, week, o, c);
}

static int put_state(void *opaque, const char *key, const void *val,
                     size_t len) {
        stage *st = opaque;
        return tt_kafka_out_raw(st->conf->out, st->conf->state_topic, 0, key,
                                strlen(key), val, len);
}

/* The watermark our own partitions allow (as the engine computes it:
 * the minimum over the active ones, the newest if all are idle), or the
 * local merger's if higher. The merger's watermark when it merges the
 * counts of the coming interval comes from reports no newer than the ones
 * just made, and every instance's own minimum bounds the global one, so
 * events at or below this bound are the only ones whose week can be closed
 * by then. (An idle partition of another instance waking up is the
 * exception: its late events reach the merger counted, and are revisions.)
 * With the workers paused or before they see the partitions. */
static void update_bound(stage *st, int64_t now) {
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
static void repair_gaps(stage *st) {
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

/* One transaction's end, with the workers paused: what the workers
 * counted goes out as a partial record, the merger (if here) runs and
 * checkpoints, and the offsets commit with all of it. final: no new
 * transaction after it. */
static void eos_cycle(stage *st, int64_t now, bool final) {
        const tt_stage_conf *c = st->conf;
        /* After a failure the transaction is gone (aborted or fatal): the
         * stage is on its way out, to be rerun from the commits. */
        if (!st->txn_open || atomic_load(&st->err))
                return;
        char why[512];
        double emit_s = -1;
        tt_partial_writer pw;
        tt_partial_cells_begin(&pw, &st->pbuf);
        /* A front that counted 10^5-10^6 models in one interval would pass
         * the partials topic's max.message.bytes (16 MiB) in one record:
         * cut at 4 MiB, the reports in the last piece (partials.h). */
        tt_partial_cells_chunked(&pw, PARTIAL_CHUNK, partial_flush, st);
        bool any = false, all_eof = true;
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
                any = true;
                all_eof &= eof;
                tt_partial_report(&pw, p, mt,
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
        tt_partial_cells_mid(&pw);
        static const tt_engine_cells_visitor dv = {dv_model, dv_origin};
        tt_engine_drain(st->e, &dv, &pw);
        int err = tt_partial_cells_end(&pw);
        if (!err && (pw.nrep || pw.ncell))
                err = tt_kafka_out_raw(c->out, st->partials, 0, c->group,
                                       strlen(c->group), st->pbuf.data,
                                       st->pbuf.len);
        if (err) {
                fail(st, err, "partial record: %s", tt_err2str(err));
                rd_kafka_topic_partition_list_destroy(l);
                return;
        }
        if (st->merger) {
                tt_engine *me = tt_merger_engine(st->merger);
                double t_emit = tt_mono_s();
                tt_engine_tick(me, now);
                if (c->emit_interval_ms > 0 &&
                    now - st->last_prov >= c->emit_interval_ms) {
                        tt_engine_emit_provisional(me, now);
                        st->last_prov = now;
                }
                if (c->close_at_eof && !st->merger_done &&
                    tt_engine_all_eof(me)) {
                        tt_engine_close_all(me, now);
                        st->merger_done = true;
                }
                if (tt_engine_error(me)) {
                        fail(st, tt_engine_error(me), "engine: %s",
                             tt_err2str(tt_engine_error(me)));
                        rd_kafka_topic_partition_list_destroy(l);
                        return;
                }
                if ((err = tt_merger_checkpoint(st->merger, put_state, st))) {
                        fail(st, err, "state checkpoint: %s", tt_err2str(err));
                        rd_kafka_topic_partition_list_destroy(l);
                        return;
                }
                emit_s = tt_mono_s() - t_emit;
        }
        update_bound(st, now);
        if (st->merger && st->merge_next >= 0)
                rd_kafka_topic_partition_list_add(l, st->partials, 0)->offset =
                    st->merge_next;
        double t0 = tt_mono_s();
        err = tt_kafka_out_txn_commit(c->out, l, st->rk, why, sizeof(why));
        rd_kafka_topic_partition_list_destroy(l);
        st->txn_open = false;
        if (err && tt_kafka_out_permanent(c->out)) {
                /* A missing output topic or a refused record: redoing the
                 * transaction would fail the same way, forever (issue 9,
                 * defect 6). Stop and say which topic. */
                tt_kafka_out_error(c->out, why, sizeof(why));
                fail(st, TT_ERR_KAFKA, "%s", why);
                return;
        }
        if (err == TT_ERR_RETRY) {
                st->retry = true;
                fail(st, err, "transaction aborted: %s", why);
                return;
        }
        if (err) {
                fail(st, err, "transaction: %s", why);
                return;
        }
        /* Only now are this transaction's rows visible: count them. */
        if (publish(st) && emit_s >= 0)
                tt_hist_observe(&st->live->emit, emit_s);
        if (st->merger && st->merge_next >= 0)
                st->merge_committed = st->merge_next;
        if (st->merger)
                tt_engine_get_stats(tt_merger_engine(st->merger),
                                    &st->committed_stats);
        st->commits++;
        double dt = tt_mono_s() - t0;
        atomic_fetch_add(&st->live->commits, 1);
        tt_hist_observe(&st->live->commit, dt);
        TT_LOG(TT_LOG_DEBUG, "transaction committed",
               TT_KV_I("cells", pw.ncell),
               TT_KV_I("merger", st->merger != NULL),
               TT_KV_I("latency_us", (int64_t)(dt * 1e6)));
        st->eof_committed = any && all_eof;
        if (!st->eof_committed) {
                st->eof_mark = -1;
        } else if (st->eof_mark < 0) {
                /* commit_transaction flushed: every delivery report of
                 * this transaction has been served. */
                tt_kafka_out_poll(c->out);
                st->eof_mark = tt_kafka_out_tracked(c->out);
        }
        if (final)
                return;
        if ((err = tt_kafka_out_txn_begin(c->out, why, sizeof(why)))) {
                st->retry = err == TT_ERR_RETRY;
                fail(st, err, "transaction: %s", why);
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
static bool eos_finished(stage *st, int64_t now) {
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
                                fail(st, TT_ERR_STATE,
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
static int ensure_topics(stage *st, char *errstr, size_t errsize) {
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

/* ---- rebalances ------------------------------------------------------- */

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
                newest(&st->parts[t->partition], wm);
        }
}

/* Exactly-once: each newly assigned input partition starts exactly at its
 * committed offset, which is also the first offset the front expects (so
 * in_sequence() catches a fetch that starts elsewhere). A committed offset
 * still covered by another instance's open transaction is "unstable" until
 * that transaction ends (at most transaction.timeout.ms): wait for it, as
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
                fail(st, TT_ERR_RETRY, "committed offsets: %s",
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
                        fail(st, TT_ERR_KAFKA,
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
                        fail(st, TT_ERR_KAFKA,
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
                                merger_start(st);
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
                                        fail(st, TT_ERR_NOMEM, "%s",
                                             "out of memory");
                }
        }
        if (reset && (st->eos ? have_c : !st->first_assign_done))
                start_positions(st, parts, st->eos ? c : NULL);
        rd_kafka_topic_partition_list_destroy(c);
        st->first_assign_done = true;
        st->assigned_any = true;
        if (st->eos)
                update_bound(st, now);
        log_parts("partitions assigned", st, parts);
}

static void on_revoke(stage *st, rd_kafka_topic_partition_list_t *parts) {
        pause_workers(st);
        if (st->eos) {
                /* Everything of the revoked partitions commits before a new
                 * owner may read them (KIP-447: still our generation). */
                if (!atomic_load(&st->err) && st->txn_open)
                        eos_cycle(st, tt_wall_ms(), false);
        } else {
                tt_engine_tick(st->e, tt_wall_ms());
                rd_kafka_topic_partition_list_t *l = commit_offsets(st, parts);
                commit(st, l);
        }
        for (int i = 0; i < parts->cnt; i++) {
                if (is_partials(st, &parts->elems[i])) {
                        merger_stop(st);
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
        publish(st);
        resume_workers(st);
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
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                on_assign(st, parts);
                if (coop)
                        rd_kafka_error_destroy(
                            rd_kafka_incremental_assign(rk, parts));
                else
                        rd_kafka_assign(rk, parts);
        } else {
                on_revoke(st, parts);
                if (coop)
                        rd_kafka_error_destroy(
                            rd_kafka_incremental_unassign(rk, parts));
                else
                        rd_kafka_assign(rk, NULL);
        }
}

/* ---- set-up ----------------------------------------------------------- */

static rd_kafka_t *make_consumer(stage *st, char *errstr, size_t errsize) {
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
static void live_attach(stage *st) {
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
static void live_detach(stage *st, const tt_stage_stats *final, int err) {
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
        if (!(st->rk = make_consumer(st, errstr, errsize))) {
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
                if (pthread_create(&st->w[i].th, NULL, worker_main,
                                   &st->w[i])) {
                        snprintf(errstr, errsize, "cannot start workers");
                        return TT_ERR_NOMEM;
                }
                st->w[i].started = true;
        }
        if (st->eos) {
                char why[512];
                if (!(st->mjd = tt_json_dec_new())) {
                        snprintf(errstr, errsize, "out of memory");
                        return TT_ERR_NOMEM;
                }
                if ((err = ensure_topics(st, errstr, errsize)))
                        return err;
                tt_kafka_out_track(conf->out, st->partials);
                if ((err = tt_kafka_out_txn_init(conf->out, 60000, why,
                                                 sizeof(why))) ||
                    (err =
                         tt_kafka_out_txn_begin(conf->out, why, sizeof(why)))) {
                        snprintf(errstr, errsize, "%s", why);
                        return err;
                }
                st->txn_open = true;
        }
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
                fail(st, st->eos ? TT_ERR_RETRY : TT_ERR_KAFKA, "consumer: %s",
                     why);
        } else if (st->eos && !m->err && m->rkt &&
                   !strcmp(rd_kafka_topic_name(m->rkt), st->partials)) {
                merger_apply(st, m);
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
        pause_workers(st);
        eos_cycle(st, now, false);
        /* No partition for a while: the group gave them
         * to others (not just the first, empty step of a
         * cooperative rebalance). */
        if (any_assigned(st) || !st->assigned_any)
                st->unassigned_since = now;
        *finished = conf->close_at_eof && !atomic_load(&st->err) &&
                    eos_finished(st, now);
        if (*finished || atomic_load(&st->quit))
                return true;
        resume_workers(st);
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
                pause_workers(st);
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
                        fail(st, tt_engine_error(st->e), "engine: %s",
                             tt_err2str(tt_engine_error(st->e)));
                if (publish(st))
                        tt_hist_observe(&st->live->emit, tt_mono_s() - t_emit);
                if (*finished) {
                        commit(st, commit_offsets(st, NULL));
                        return true;
                }
                resume_workers(st);
        }
        if (now - lc->last_commit >= conf->commit_interval_ms) {
                pause_workers(st);
                rd_kafka_topic_partition_list_t *l = commit_offsets(st, NULL);
                publish(st);
                resume_workers(st);
                commit(st, l);
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
                        fail(st, st->retry ? TT_ERR_RETRY : TT_ERR_KAFKA,
                             "output delivery failed: %s", why);
                        break;
                }
                int64_t now = tt_wall_ms();
                if (st->eos)
                        repair_gaps(st);
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
                pause_workers(st);
                eos_cycle(st, tt_wall_ms(), true);
        } else if (st->eos && finished) {
                /* The last cycle began a transaction that has nothing. */
                char why[256];
                tt_kafka_out_txn_abort(conf->out, why, sizeof(why));
                st->txn_open = false;
        } else if (!finished && !atomic_load(&st->err)) {
                /* Stopped by a signal: count what was read, deliver, and
                 * commit (open weeks are recounted by the next run). */
                pause_workers(st);
                tt_engine_tick(st->e, tt_wall_ms());
                publish(st);
                commit(st, commit_offsets(st, NULL));
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
        live_detach(st, stats, err);
        if (st->rk) {
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
        tt_buf_free(&st->pbuf);
        tt_free(st->w);
        tt_free(st->parts);
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
                live_attach(&st);
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
