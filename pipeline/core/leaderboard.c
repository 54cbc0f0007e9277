/* The leaderboard of the output records (moved out of cmd_demo.c so that
 * `tokentally tail --format table` prints the same one). */
#include "tokentally/leaderboard.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void cpy(char *dst, size_t size, tt_str s) {
        size_t n = s.ptr ? (s.len < size - 1 ? s.len : size - 1) : 0;
        if (n)
                memcpy(dst, s.ptr, n);
        dst[n] = '\0';
}

static uint64_t row_hash(const char *week, tt_dim dim, const char *key) {
        uint64_t h = 1469598103934665603u ^ (uint64_t)dim;
        for (const char *p = week; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211u;
        h = (h ^ '/') * 1099511628211u;
        for (const char *p = key; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211u;
        return h;
}

/* The slot of (week, dim, key): its row's, or the empty one to fill. */
static size_t *row_slot(const tt_board *b, const char *week, tt_dim dim,
                        const char *key) {
        size_t mask = b->nslots - 1;
        for (size_t i = (size_t)row_hash(week, dim, key) & mask;;
             i = (i + 1) & mask) {
                size_t *slot = &b->slots[i];
                if (!*slot)
                        return slot;
                const tt_board_row *x = &b->rows[*slot - 1];
                if (x->dim == dim && !strcmp(x->week, week) &&
                    !strcmp(x->key, key))
                        return slot;
        }
}

static int grow_slots(tt_board *b) {
        size_t n = b->nslots ? b->nslots * 2 : 1024;
        size_t *slots = calloc(n, sizeof(*slots));
        if (!slots)
                return -1;
        free(b->slots);
        b->slots = slots;
        b->nslots = n;
        for (size_t i = 0; i < b->nrows; i++)
                *row_slot(b, b->rows[i].week, b->rows[i].dim, b->rows[i].key) =
                    i + 1;
        return 0;
}

/* Forgets the row in *slot: backward-shift deletion in the index (no
 * tombstones), and the last row moves into its place. */
static void remove_row(tt_board *b, size_t *slot) {
        size_t mask = b->nslots - 1, idx = *slot - 1;
        size_t i = (size_t)(slot - b->slots);
        b->slots[i] = 0;
        for (size_t j = (i + 1) & mask; b->slots[j]; j = (j + 1) & mask) {
                const tt_board_row *x = &b->rows[b->slots[j] - 1];
                size_t h = (size_t)row_hash(x->week, x->dim, x->key) & mask;
                /* It stays when its home is cyclically in (i, j]. */
                bool stays = i < j ? (h > i && h <= j) : (h > i || h <= j);
                if (!stays) {
                        b->slots[i] = b->slots[j];
                        b->slots[j] = 0;
                        i = j;
                }
        }
        size_t last = b->nrows - 1;
        if (idx != last) {
                b->rows[idx] = b->rows[last];
                *row_slot(b, b->rows[idx].week, b->rows[idx].dim,
                          b->rows[idx].key) = idx + 1;
        }
        b->nrows--;
}

int tt_board_rollup(void *opaque, const tt_rollup *r) {
        tt_board *b = opaque;
        char key[260];
        cpy(key, sizeof(key), r->key);
        b->rollups++;
        /* Only the top models are printed: a week of a million models keeps
         * TT_BOARD_TOP_MODELS rows, not a million. The latest record of a
         * key carries its rank, and a revision that moves ranks re-emits
         * every row whose rank changed, so the rows kept are exactly the
         * models whose latest rank is within the top. */
        if (r->dimension == TT_DIM_MODEL && r->rank > TT_BOARD_TOP_MODELS) {
                if (b->nslots) {
                        size_t *slot = row_slot(b, r->week, r->dimension, key);
                        if (*slot)
                                remove_row(b, slot);
                }
                return 0;
        }
        if ((b->nrows + 1) * 2 > b->nslots && grow_slots(b))
                return -1;
        size_t *slot = row_slot(b, r->week, r->dimension, key);
        if (!*slot) {
                if (b->nrows == b->caprows) {
                        size_t n = b->caprows ? b->caprows * 2 : 256;
                        tt_board_row *nr = realloc(b->rows, n * sizeof(*nr));
                        if (!nr)
                                return -1;
                        b->rows = nr;
                        b->caprows = n;
                }
                *slot = ++b->nrows;
        }
        tt_board_row *x = &b->rows[*slot - 1];
        snprintf(x->week, sizeof(x->week), "%s", r->week);
        x->dim = r->dimension;
        snprintf(x->key, sizeof(x->key), "%s", key);
        cpy(x->origin, sizeof(x->origin), r->origin);
        x->tokens = r->tokens;
        x->has_prev = r->has_prev;
        x->prev = r->prev_tokens;
        x->has_growth = r->has_growth;
        x->growth = r->wow_growth_pct;
        x->share = r->share_pct;
        x->rank = r->rank;
        x->status = r->status;
        x->revision = r->revision;
        return 0;
}

int tt_board_streak(void *opaque, const tt_streak_change *s) {
        tt_board *b = opaque;
        b->streak_records++;
        char rule[64];
        cpy(rule, sizeof(rule), s->rule);
        tt_board_streak_row *x = NULL;
        for (size_t i = 0; i < b->nstreaks && !x; i++)
                if (!strcmp(b->streaks[i].rule, rule) &&
                    !strcmp(b->streaks[i].week, s->week))
                        x = &b->streaks[i];
        if (!x) {
                if (b->nstreaks == b->capstreaks) {
                        size_t n = b->capstreaks ? b->capstreaks * 2 : 64;
                        tt_board_streak_row *ns =
                            realloc(b->streaks, n * sizeof(*ns));
                        if (!ns)
                                return -1;
                        b->streaks = ns;
                        b->capstreaks = n;
                }
                x = &b->streaks[b->nstreaks++];
        }
        snprintf(x->rule, sizeof(x->rule), "%s", rule);
        snprintf(x->week, sizeof(x->week), "%s", s->week);
        cpy(x->holder, sizeof(x->holder), s->holder);
        cpy(x->runner, sizeof(x->runner), s->runner_up);
        cpy(x->previous, sizeof(x->previous), s->previous_holder);
        x->kind = s->kind;
        x->length = s->length_weeks;
        x->has_margin = s->has_margin;
        x->margin = s->margin_pct;
        return 0;
}

static int cmp_week(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_rule(const void *a, const void *b) {
        return strcmp((*(const tt_board_streak_row *const *)a)->rule,
                      (*(const tt_board_streak_row *const *)b)->rule);
}

static const tt_board_row *find(const tt_board *b, const char *week, tt_dim dim,
                                int32_t rank) {
        for (size_t i = 0; i < b->nrows; i++)
                if (b->rows[i].dim == dim && b->rows[i].rank == rank &&
                    !strcmp(b->rows[i].week, week))
                        return &b->rows[i];
        return NULL;
}

static void human(char *out, size_t size, int64_t t) {
        if (t >= 1000000000)
                snprintf(out, size, "%.3f G", (double)t / 1e9);
        else
                snprintf(out, size, "%.1f M", (double)t / 1e6);
}

/* 1296000000 -> "1,296,000,000". */
static void grouped(char *out, size_t size, int64_t t) {
        char digits[32];
        int n = snprintf(digits, sizeof(digits), "%lld", (long long)t);
        size_t o = 0;
        for (int i = 0; i < n && o + 2 < size; i++) {
                out[o++] = digits[i];
                int left = n - 1 - i;
                if (left > 0 && left % 3 == 0 && digits[i] != '-')
                        out[o++] = ',';
        }
        out[o] = '\0';
}

static void print_detail(FILE *f, const tt_board *b, const char *week) {
        fprintf(f, "\nOrigins of %s\n", week);
        fprintf(f, "  %-4s %-6s %17s %17s %9s %8s  %s\n", "rank", "origin",
                "tokens", "previous week", "growth", "share", "status");
        for (int r = 1;; r++) {
                const tt_board_row *x = find(b, week, TT_DIM_ORIGIN, r);
                if (!x)
                        break;
                char t[32], p[32] = "-", g[16] = "-";
                grouped(t, sizeof(t), x->tokens);
                if (x->has_prev)
                        grouped(p, sizeof(p), x->prev);
                if (x->has_growth)
                        snprintf(g, sizeof(g), "%+.2f%%", x->growth);
                fprintf(f, "  %4d %-6s %17s %17s %9s %7.2f%%  %s", r, x->key, t,
                        p, g, x->share, tt_status_str(x->status));
                if (x->revision)
                        fprintf(f, " rev %d", x->revision);
                fputc('\n', f);
        }
        const tt_board_row *t = find(b, week, TT_DIM_TOTAL, 1);
        if (t) {
                char tt[32], p[32] = "-", g[16] = "-";
                grouped(tt, sizeof(tt), t->tokens);
                if (t->has_prev)
                        grouped(p, sizeof(p), t->prev);
                if (t->has_growth)
                        snprintf(g, sizeof(g), "%+.2f%%", t->growth);
                fprintf(f, "  %4s %-6s %17s %17s %9s %7.2f%%  %s\n", "", "all",
                        tt, p, g, t->share, tt_status_str(t->status));
        }
}

static void print_weeks(FILE *f, const tt_board *b, const char *last,
                        unsigned flags) {
        if (flags & TT_BOARD_DETAIL)
                print_detail(f, b, last);
        fprintf(f, "\nTop models of %s\n", last);
        for (int r = 1; r <= TT_BOARD_TOP_MODELS; r++) {
                const tt_board_row *x = find(b, last, TT_DIM_MODEL, r);
                if (!x)
                        break;
                char t[32];
                human(t, sizeof(t), x->tokens);
                fprintf(f, "  %d. %-34s %s  %10s  %5.2f%%\n", r, x->key,
                        x->origin, t, x->share);
        }
}

/* Tokens by origin: the top three and the total of each week. */
static void print_origins(FILE *f, const tt_board *b, const char *const *weeks,
                          size_t nw, unsigned flags) {
        if (flags & TT_BOARD_SCENARIO_NOTE)
                fprintf(f, "\nWeekly tokens by origin (scenario scale 1e-4: 1 "
                           "G here is 10 T in the headline)\n\n");
        else
                fprintf(f, "\nWeekly tokens by origin (tokens, growth on the "
                           "week before, share of the week)\n\n");
        fprintf(f, "%-9s  %-28s %-28s %-28s %s\n", "week", "#1", "#2", "#3",
                "all");
        for (size_t i = 0; i < nw; i++) {
                fprintf(f, "%-9s ", weeks[i]);
                for (int r = 1; r <= 3; r++) {
                        const tt_board_row *x =
                            find(b, weeks[i], TT_DIM_ORIGIN, r);
                        char cell[64] = "", t[32];
                        if (x) {
                                human(t, sizeof(t), x->tokens);
                                if (x->has_growth)
                                        snprintf(cell, sizeof(cell),
                                                 "%s %s %+.2f%% %.1f%%", x->key,
                                                 t, x->growth, x->share);
                                else
                                        snprintf(cell, sizeof(cell),
                                                 "%s %s %.1f%%", x->key, t,
                                                 x->share);
                        }
                        fprintf(f, " %-28s", cell);
                }
                const tt_board_row *t = find(b, weeks[i], TT_DIM_TOTAL, 1);
                char tt[32];
                human(tt, sizeof(tt), t ? t->tokens : 0);
                fprintf(f, " %s", tt);
                if ((flags & TT_BOARD_DETAIL) && t &&
                    t->status == TT_STATUS_PROVISIONAL)
                        fprintf(f, " (open week, provisional)");
                fputc('\n', f);
        }
}

void tt_board_print(FILE *f, const tt_board *b, int nweeks, unsigned flags) {
        const char *weeks[64];
        size_t nw = 0;
        for (size_t i = 0; i < b->nrows; i++) {
                if (b->rows[i].dim != TT_DIM_TOTAL)
                        continue;
                if (nw == 64) {
                        /* Keep the newest 64. */
                        qsort(weeks, nw, sizeof(weeks[0]), cmp_week);
                        if (strcmp(b->rows[i].week, weeks[0]) <= 0)
                                continue;
                        weeks[0] = b->rows[i].week;
                        continue;
                }
                weeks[nw++] = b->rows[i].week;
        }
        qsort(weeks, nw, sizeof(weeks[0]), cmp_week);
        size_t from = nw > (size_t)nweeks ? nw - (size_t)nweeks : 0;
        if (nw) {
                print_origins(f, b, weeks + from, nw - from, flags);
                print_weeks(f, b, weeks[nw - 1], flags);
        }
        /* Streaks of the newest week that has any, by rule. */
        const char *sweek = NULL;
        for (size_t i = 0; i < b->nstreaks; i++)
                if (!sweek || strcmp(b->streaks[i].week, sweek) > 0)
                        sweek = b->streaks[i].week;
        if (!sweek)
                return;
        const tt_board_streak_row *sel[64];
        size_t ns = 0;
        for (size_t i = 0; i < b->nstreaks && ns < 64; i++)
                if (!strcmp(b->streaks[i].week, sweek))
                        sel[ns++] = &b->streaks[i];
        if (flags & TT_BOARD_DETAIL)
                qsort(sel, ns, sizeof(sel[0]), cmp_rule);
        fprintf(f, "\nStreaks after %s\n", sweek);
        for (size_t i = 0; i < ns; i++) {
                const tt_board_streak_row *s = sel[i];
                fprintf(f, "  %-22s %s has led for %d consecutive week%s",
                        s->rule, s->holder, s->length,
                        s->length == 1 ? "" : "s");
                if (s->has_margin)
                        fprintf(f, ", %.2f%% ahead of %s", s->margin,
                                s->runner);
                fprintf(f, "\n");
        }
}

void tt_board_free(tt_board *b) {
        free(b->rows);
        free(b->streaks);
        free(b->slots);
        memset(b, 0, sizeof(*b));
}
