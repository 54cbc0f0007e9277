/* Test helper: a tt_sink that keeps every output in memory, with copies of
 * the borrowed strings, and helpers to build events. Header-only so each
 * test executable stays one file. */
#ifndef TT_TEST_RECORDER_H
#define TT_TEST_RECORDER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/engine.h"
#include "tokentally/rollup.h"

typedef struct rec_row {
        tt_rollup r;
        char key[300];
        char origin[4]; /* "" = null */
} rec_row;

typedef struct rec_streak {
        tt_streak_change s;
        char rule[64], holder[300], prev[300], runner[300];
} rec_streak;

typedef struct recorder {
        rec_row *rows;
        size_t nrows, caprows;
        rec_streak *streaks;
        size_t nstreaks, capstreaks;
        /* The order of all outputs: 'R' or 'S' per record. */
        char order[1 << 16];
        size_t norder;
} recorder;

static inline void cpy(char *dst, size_t size, tt_str s) {
        size_t n = s.ptr ? (s.len < size - 1 ? s.len : size - 1) : 0;
        if (n)
                memcpy(dst, s.ptr, n);
        dst[n] = '\0';
}

static inline int rec_rollup(void *opaque, const tt_rollup *r) {
        recorder *rc = opaque;
        if (rc->nrows == rc->caprows) {
                rc->caprows = rc->caprows ? rc->caprows * 2 : 256;
                rc->rows = realloc(rc->rows, rc->caprows * sizeof(rec_row));
        }
        rec_row *x = &rc->rows[rc->nrows++];
        x->r = *r;
        cpy(x->key, sizeof(x->key), r->key);
        cpy(x->origin, sizeof(x->origin), r->origin);
        x->r.key = (tt_str){NULL, 0};
        x->r.origin = (tt_str){NULL, 0};
        if (rc->norder < sizeof(rc->order))
                rc->order[rc->norder++] = 'R';
        return 0;
}

static inline int rec_streak_fn(void *opaque, const tt_streak_change *s) {
        recorder *rc = opaque;
        if (rc->nstreaks == rc->capstreaks) {
                rc->capstreaks = rc->capstreaks ? rc->capstreaks * 2 : 64;
                rc->streaks =
                    realloc(rc->streaks, rc->capstreaks * sizeof(rec_streak));
        }
        rec_streak *x = &rc->streaks[rc->nstreaks++];
        x->s = *s;
        cpy(x->rule, sizeof(x->rule), s->rule);
        cpy(x->holder, sizeof(x->holder), s->holder);
        cpy(x->prev, sizeof(x->prev), s->previous_holder);
        cpy(x->runner, sizeof(x->runner), s->runner_up);
        if (!s->previous_holder.ptr)
                strcpy(x->prev, "-");
        if (!s->runner_up.ptr)
                strcpy(x->runner, "-");
        if (rc->norder < sizeof(rc->order))
                rc->order[rc->norder++] = 'S';
        return 0;
}

static const tt_sink recorder_sink = {rec_rollup, rec_streak_fn};

static inline void recorder_free(recorder *rc) {
        free(rc->rows);
        free(rc->streaks);
        memset(rc, 0, sizeof(*rc));
}

/* The latest row of (week, dim, key), or NULL. */
static inline const rec_row *latest(const recorder *rc, const char *week,
                                    tt_dim dim, const char *key) {
        for (size_t i = rc->nrows; i-- > 0;)
                if (!strcmp(rc->rows[i].r.week, week) &&
                    rc->rows[i].r.dimension == dim &&
                    !strcmp(rc->rows[i].key, key))
                        return &rc->rows[i];
        return NULL;
}

/* The latest streak record of (rule, week), or NULL. */
static inline const rec_streak *
latest_streak(const recorder *rc, const char *rule, const char *week) {
        for (size_t i = rc->nstreaks; i-- > 0;)
                if (!strcmp(rc->streaks[i].rule, rule) &&
                    !strcmp(rc->streaks[i].s.week, week))
                        return &rc->streaks[i];
        return NULL;
}

static inline tt_event mkev(const char *model, const char *origin, int64_t t,
                            int64_t prompt, int64_t completion) {
        tt_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.request_id = (tt_str){"r", 1};
        ev.event_time_ms = t;
        ev.model = (tt_str){model, strlen(model)};
        ev.origin = origin ? (tt_str){origin, strlen(origin)} : TT_STR_NULL;
        ev.prompt_tokens = prompt;
        ev.completion_tokens = completion;
        ev.present = TT_F_REQUIRED | (origin ? TT_F_ORIGIN : 0);
        return ev;
}

/* The bundled origin map (schemas/origins.json); NULL if it fails to
 * parse. */
static inline tt_origin_map *default_origins(void) {
        char err[256];
        return tt_origin_map_parse(tt_default_origins_json,
                                   strlen(tt_default_origins_json), err,
                                   sizeof(err));
}

#endif
