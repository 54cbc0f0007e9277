/* At-least-once restarts. The stage keeps no state but its commits: a
 * restarted run counts the retained weeks again from their first offsets.
 * Three things the recount alone gets wrong, mended here with what the
 * earlier run handed over in its commit metadata (kafka/stage_commit.c):
 *  - the oldest recounted week's prev_tokens: the week before it is counted
 *    again too, "quiet": it closes without any output;
 *  - streak lengths: the quiet week's streaks take the length the earlier
 *    run had for them, so the weeks after it count on from there;
 *  - revisions: weeks the earlier run closed come out as REVISED rows at a
 *    revision above every one it emitted, never as FINAL revision 0 again.
 * The engine stays pure: these are numbers and strings, no I/O. */
#include <string.h>

#include "engine_impl.h"
#include "tokentally/err.h"
#include "tokentally/mem.h"

void tt_engine_resume(tt_engine *e, int32_t quiet_through,
                      int32_t reemit_through, int32_t revision_base) {
        e->quiet_through = quiet_through;
        e->reemit_through = reemit_through;
        e->revision_base = revision_base;
}

int tt_engine_resume_streak(tt_engine *e, const char *rule, const char *holder,
                            size_t holder_len, int32_t length) {
        if (!e->seed_holder) {
                e->seed_holder = tt_calloc(e->nrules, sizeof(char *));
                e->seed_length = tt_calloc(e->nrules, sizeof(int32_t));
                if (!e->seed_holder || !e->seed_length) {
                        tt_engine_resume_free_(e);
                        return TT_ERR_NOMEM;
                }
        }
        for (size_t i = 0; i < e->nrules; i++) {
                if (strcmp(e->rules[i].text, rule))
                        continue;
                char *h = tt_malloc(holder_len + 1);
                if (!h)
                        return TT_ERR_NOMEM;
                memcpy(h, holder, holder_len);
                h[holder_len] = '\0';
                tt_free(e->seed_holder[i]);
                e->seed_holder[i] = h;
                e->seed_length[i] = length;
        }
        return TT_ERR_OK; /* a rule no longer configured: nothing to seed */
}

void tt_engine_resume_free_(tt_engine *e) {
        for (size_t i = 0; e->seed_holder && i < e->nrules; i++)
                tt_free(e->seed_holder[i]);
        tt_free(e->seed_holder);
        tt_free(e->seed_length);
        e->seed_holder = NULL;
        e->seed_length = NULL;
}

void tt_engine_resume_mark_(const tt_engine *e, tt_weekview *wv) {
        wv->quiet = wv->week <= e->quiet_through;
        wv->reemit_revision =
            !wv->quiet && wv->week <= e->reemit_through ? e->revision_base : 0;
}

int tt_engine_decide_quiet_(tt_engine *e, tt_weekview *wv) {
        /* The quiet week's own previous week is unknown: decide it as a
         * streak's start, then lengthen it as the earlier run had it. */
        size_t cap = wv->n + TT_STREAK_MAX_CANDIDATES;
        tt_streak_cand *cand = tt_malloc(cap * sizeof(*cand));
        if (!cand)
                return TT_ERR_NOMEM;
        for (size_t r = 0; r < e->nrules; r++) {
                size_t n =
                    tt_engine_candidates_(e, &e->rules[r], wv, cand, cap);
                if (n == 0)
                        continue;
                tt_streak_result res;
                tt_streak_decide(cand, n, NULL, &res);
                const char *h = e->seed_holder ? e->seed_holder[r] : NULL;
                if (h && res.holder.len == strlen(h) &&
                    !memcmp(res.holder.ptr, h, res.holder.len) &&
                    e->seed_length[r] > 0)
                        res.length_weeks = e->seed_length[r];
                wv->streaks[r] = res;
        }
        tt_free(cand);
        return TT_ERR_OK;
}

size_t tt_engine_rules(const tt_engine *e) {
        return e->nrules;
}

const char *tt_engine_rule_text(const tt_engine *e, size_t i) {
        return i < e->nrules ? e->rules[i].text : NULL;
}

bool tt_engine_streak_at(const tt_engine *e, int32_t w, size_t i,
                         tt_str *holder, int32_t *length) {
        const tt_weekview *wv = tt_engine_view_find_(e, w);
        if (!wv || i >= wv->nrules || !wv->streaks[i].valid ||
            w > atomic_load(&((tt_engine *)e)->closed_through))
                return false;
        *holder = wv->streaks[i].holder;
        *length = wv->streaks[i].length_weeks;
        return true;
}
