/* At-least-once offset commits: which offset of each partition may be
 * committed (the oldest week still open or revisable) and the commit
 * metadata a restart resumes from (commit_meta.h). */
#include "stage_impl.h"

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
rd_kafka_topic_partition_list_t *
tt_stage_commit_offsets(stage *st,
                        const rd_kafka_topic_partition_list_t *only) {
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
int tt_stage_commit(stage *st, rd_kafka_topic_partition_list_t *l) {
        char why[256];
        int err = TT_ERR_OK;
        double t0 = tt_mono_s();
        if (l->cnt == 0)
                goto out;
        tt_deadline_phase(st->conf->deadline,
                          "delivering the outputs before a commit");
        if ((err =
                 tt_kafka_out_flush(st->conf->out, 60000, why, sizeof(why)))) {
                tt_stage_fail(st, err, "output delivery failed: %s", why);
                goto out;
        }
        tt_deadline_phase(st->conf->deadline, "committing offsets");
        rd_kafka_resp_err_t kerr = rd_kafka_commit(st->rk, l, 0);
        tt_deadline_phase(st->conf->deadline, "the coordinator's loop");
        if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                /* Not fatal: the next commit covers it; a restart re-reads
                 * a little more. */
                err = TT_ERR_KAFKA;
        } else {
                double dt = tt_stage_count_commit(st, t0);
                TT_LOG(TT_LOG_DEBUG, "offsets committed",
                       TT_KV_I("partitions", l->cnt),
                       TT_KV_I("latency_us", (int64_t)(dt * 1e6)));
        }
out:
        rd_kafka_topic_partition_list_destroy(l);
        return err;
}

double tt_stage_count_commit(stage *st, double t0) {
        st->commits++;
        double dt = tt_mono_s() - t0;
        atomic_fetch_add(&st->live->commits, 1);
        tt_hist_observe(&st->live->commit, dt);
        return dt;
}
