/* Streak rules: parsing and the per-week decision. */
#include "tokentally/streak.h"

#include <stdio.h>
#include <string.h>

#include "tokentally/mem.h"

const char *const tt_streak_default_rules[] = {"leader:origin", "leader:model",
                                               "leader:origin:CN,US"};
const size_t tt_streak_ndefault_rules = 3;

int tt_str_cmp(tt_str a, tt_str b) {
        size_t n = a.len < b.len ? a.len : b.len;
        int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
        if (c)
                return c;
        return a.len < b.len ? -1 : a.len > b.len;
}

static bool str_eq(tt_str a, tt_str b) {
        if (!a.ptr || !b.ptr)
                return a.ptr == b.ptr;
        return a.len == b.len && !memcmp(a.ptr, b.ptr, a.len);
}

int tt_streak_rule_parse(const char *text, tt_streak_rule *out, char *errstr,
                         size_t errsize) {
        memset(out, 0, sizeof(*out));
        out->text = tt_strndup(text, strlen(text));
        if (!out->text) {
                snprintf(errstr, errsize, "out of memory");
                return -1;
        }
        const char *rest;
        if (!strncmp(text, "leader:origin", 13) &&
            (text[13] == '\0' || text[13] == ':')) {
                out->dim = TT_DIM_ORIGIN;
                rest = out->text + 13;
        } else if (!strncmp(text, "leader:model", 12) &&
                   (text[12] == '\0' || text[12] == ':')) {
                out->dim = TT_DIM_MODEL;
                rest = out->text + 12;
        } else {
                snprintf(errstr, errsize,
                         "streak rule '%s': expected leader:origin[:K,...] or "
                         "leader:model[:K,...]",
                         text);
                goto fail;
        }
        if (*rest == ':') {
                const char *p = rest + 1;
                for (;;) {
                        const char *comma = strchr(p, ',');
                        size_t n = comma ? (size_t)(comma - p) : strlen(p);
                        if (n == 0) {
                                snprintf(errstr, errsize,
                                         "streak rule '%s': empty key", text);
                                goto fail;
                        }
                        if (out->dim == TT_DIM_ORIGIN &&
                            (n != 2 || p[0] < 'A' || p[0] > 'Z' || p[1] < 'A' ||
                             p[1] > 'Z')) {
                                snprintf(errstr, errsize,
                                         "streak rule '%s': '%.*s' is not a "
                                         "two-letter origin code",
                                         text, (int)n, p);
                                goto fail;
                        }
                        if (out->ncand == TT_STREAK_MAX_CANDIDATES) {
                                snprintf(errstr, errsize,
                                         "streak rule '%s': more than %d keys",
                                         text, TT_STREAK_MAX_CANDIDATES);
                                goto fail;
                        }
                        tt_str k = {p, n};
                        for (size_t i = 0; i < out->ncand; i++)
                                if (str_eq(out->cand[i], k)) {
                                        snprintf(errstr, errsize,
                                                 "streak rule '%s': key "
                                                 "'%.*s' listed twice",
                                                 text, (int)n, p);
                                        goto fail;
                                }
                        out->cand[out->ncand++] = k;
                        if (!comma)
                                break;
                        p = comma + 1;
                }
        }
        return 0;
fail:
        tt_streak_rule_free(out);
        return -1;
}

void tt_streak_rule_free(tt_streak_rule *r) {
        tt_free(r->text);
        r->text = NULL;
}

void tt_streak_decide(tt_streak_cand *cand, size_t n,
                      const tt_streak_result *prev, tt_streak_result *out) {
        /* Top two by (tokens desc, key asc); n is small, so two passes. */
        size_t top = 0;
        for (size_t i = 1; i < n; i++)
                if (cand[i].tokens > cand[top].tokens ||
                    (cand[i].tokens == cand[top].tokens &&
                     tt_str_cmp(cand[i].key, cand[top].key) < 0))
                        top = i;
        /* The incumbent keeps a tie for the top. */
        if (prev && prev->valid)
                for (size_t i = 0; i < n; i++)
                        if (cand[i].tokens == cand[top].tokens &&
                            str_eq(cand[i].key, prev->holder)) {
                                top = i;
                                break;
                        }
        size_t second = n;
        for (size_t i = 0; i < n; i++) {
                if (i == top)
                        continue;
                if (second == n || cand[i].tokens > cand[second].tokens ||
                    (cand[i].tokens == cand[second].tokens &&
                     tt_str_cmp(cand[i].key, cand[second].key) < 0))
                        second = i;
        }
        memset(out, 0, sizeof(*out));
        out->valid = true;
        out->holder = cand[top].key;
        out->holder_tokens = cand[top].tokens;
        if (prev && prev->valid && str_eq(prev->holder, out->holder)) {
                out->kind = TT_STREAK_EXTENDED;
                out->length_weeks = prev->length_weeks + 1;
        } else {
                out->kind = TT_STREAK_STARTED;
                out->length_weeks = 1;
                if (prev && prev->valid)
                        out->previous_holder = prev->holder;
        }
        if (second < n) {
                out->runner_up = cand[second].key;
                out->runner_up_tokens = cand[second].tokens;
                if (cand[second].tokens > 0) {
                        out->has_margin = true;
                        out->margin_pct = (double)(out->holder_tokens -
                                                   out->runner_up_tokens) /
                                          (double)out->runner_up_tokens * 100.0;
                }
        }
}

bool tt_streak_result_eq(const tt_streak_result *a, const tt_streak_result *b) {
        return a->valid == b->valid && a->kind == b->kind &&
               str_eq(a->holder, b->holder) &&
               a->holder_tokens == b->holder_tokens &&
               a->length_weeks == b->length_weeks &&
               str_eq(a->previous_holder, b->previous_holder) &&
               str_eq(a->runner_up, b->runner_up) &&
               a->runner_up_tokens == b->runner_up_tokens &&
               a->has_margin == b->has_margin &&
               (!a->has_margin || a->margin_pct == b->margin_pct);
}
