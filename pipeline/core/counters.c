/* Weekly counters of one shard; see counters.h. A week slot holds an
 * open-addressing index of (32-bit hash tag, entry) pairs, a dense array of
 * model entries (slug position, cached origin, cell) and an arena of the
 * week's slugs, plus a fixed array for the 676 possible origin codes. A
 * closed week frees its four arrays; no slug outlives its week. */
#include "tokentally/counters.h"

#include <string.h>

#include "tokentally/err.h"
#include "tokentally/keytab.h"
#include "tokentally/mem.h"

typedef struct mentry {
        uint32_t off;         /* slug in the slot's arena */
        uint16_t len;         /* slugs are <= 256 bytes (SPEC §2) */
        tt_origin map_origin; /* the origin map's answer for the slug */
        tt_ccell c;
} mentry;

typedef struct wslot {
        int32_t week;
        int64_t start; /* tt_week_start(week) */
        uint64_t version;
        uint64_t *index; /* hash tag << 32 | entry + 1; 0 = empty */
        uint32_t mask;   /* index size - 1; load kept <= 1/2 */
        uint32_t n, cap; /* entries */
        mentry *models;
        char *arena;
        size_t alen, acap;
        tt_ccell *origins; /* TT_NORIGINS */
} wslot;

struct tt_shard {
        const tt_origin_map *map;
        uint32_t max_models; /* per week; 0 = unbounded */
        wslot *slots;
        size_t nslots, capslots;
        size_t last; /* index of the slot used last: most events hit it */
};

tt_shard *tt_shard_new(const tt_origin_map *map, uint32_t max_models) {
        tt_shard *s = tt_calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->map = map;
        s->max_models = max_models;
        return s;
}

static void slot_free(wslot *w) {
        tt_free(w->index);
        tt_free(w->models);
        tt_free(w->arena);
        tt_free(w->origins);
}

void tt_shard_destroy(tt_shard *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->nslots; i++)
                slot_free(&s->slots[i]);
        tt_free(s->slots);
        tt_free(s);
}

static wslot *find_slot(tt_shard *s, int32_t w) {
        if (s->last < s->nslots && s->slots[s->last].week == w)
                return &s->slots[s->last];
        for (size_t i = 0; i < s->nslots; i++)
                if (s->slots[i].week == w) {
                        s->last = i;
                        return &s->slots[i];
                }
        return NULL;
}

static const wslot *find_slot_c(const tt_shard *s, int32_t w) {
        for (size_t i = 0; i < s->nslots; i++)
                if (s->slots[i].week == w)
                        return &s->slots[i];
        return NULL;
}

static wslot *add_slot(tt_shard *s, int32_t w) {
        if (s->nslots == s->capslots) {
                size_t ncap = s->capslots ? s->capslots * 2 : 4;
                wslot *ns = tt_realloc(s->slots, ncap * sizeof(*ns));
                if (!ns)
                        return NULL;
                s->slots = ns;
                s->capslots = ncap;
        }
        wslot *sl = &s->slots[s->nslots];
        memset(sl, 0, sizeof(*sl));
        sl->week = w;
        sl->start = tt_week_start(w);
        sl->origins = tt_calloc(TT_NORIGINS, sizeof(tt_ccell));
        sl->index = tt_calloc(64, sizeof(uint64_t));
        if (!sl->origins || !sl->index) {
                slot_free(sl);
                return NULL;
        }
        sl->mask = 63;
        s->last = s->nslots++;
        return sl;
}

tt_origin tt_event_origin(const tt_origin_map *map, const tt_event *ev) {
        if (ev->origin.ptr)
                return TT_ORIGIN(ev->origin.ptr[0], ev->origin.ptr[1]);
        return tt_origin_of_model(map, ev->model.ptr, ev->model.len);
}

static int grow_index(wslot *sl) {
        uint32_t ncap = (sl->mask + 1) * 2;
        uint64_t *ni = tt_calloc_touch(ncap, sizeof(uint64_t));
        if (!ni)
                return TT_ERR_NOMEM;
        for (uint32_t i = 0; i <= sl->mask; i++) {
                uint64_t v = sl->index[i];
                if (!v)
                        continue;
                uint32_t j = (uint32_t)(v >> 32) & (ncap - 1);
                while (ni[j])
                        j = (j + 1) & (ncap - 1);
                ni[j] = v;
        }
        tt_free(sl->index);
        sl->index = ni;
        sl->mask = ncap - 1;
        return TT_ERR_OK;
}

/* Appends a new entry for model (hash tag h) at index position *at. */
static mentry *add_entry(tt_shard *s, wslot *sl, tt_str model, uint32_t h,
                         uint64_t *at, int *err) {
        *err = TT_ERR_LIMIT;
        if ((s->max_models && sl->n >= s->max_models) ||
            model.len > UINT16_MAX || sl->n == UINT32_MAX - 1)
                return NULL;
        *err = TT_ERR_NOMEM;
        if (sl->n == sl->cap) {
                uint32_t ncap = sl->cap ? sl->cap * 2 : 64;
                mentry *nm = tt_realloc(sl->models, ncap * sizeof(*nm));
                if (!nm)
                        return NULL;
                sl->models = nm;
                sl->cap = ncap;
        }
        if (sl->acap - sl->alen < model.len) {
                size_t ncap = sl->acap ? sl->acap * 2 : 4096;
                while (ncap - sl->alen < model.len)
                        ncap *= 2;
                char *na = tt_realloc(sl->arena, ncap);
                if (!na)
                        return NULL;
                sl->arena = na;
                sl->acap = ncap;
        }
        mentry *m = &sl->models[sl->n];
        memset(m, 0, sizeof(*m));
        m->off = (uint32_t)sl->alen;
        m->len = (uint16_t)model.len;
        m->map_origin = tt_origin_of_model(s->map, model.ptr, model.len);
        memcpy(sl->arena + sl->alen, model.ptr, model.len);
        sl->alen += model.len;
        *at = (uint64_t)h << 32 | ++sl->n;
        if ((uint64_t)sl->n * 2 > (uint64_t)sl->mask + 1 && grow_index(sl)) {
                /* Keep the table usable: forget the entry just added. */
                sl->n--;
                sl->alen -= model.len;
                *at = 0;
                return NULL;
        }
        *err = TT_ERR_OK;
        return m;
}

/* The entry of model in sl, added when new. NULL with *err. */
/* hash: tt_hash(model), or 0 to compute it here. */
static mentry *entry_of(tt_shard *s, wslot *sl, tt_str model, uint64_t hash,
                        int *err) {
        uint64_t h64 = hash ? hash : tt_hash(model.ptr, model.len);
        uint32_t h = (uint32_t)(h64 >> 32);
        for (uint32_t i = h & sl->mask;; i = (i + 1) & sl->mask) {
                uint64_t v = sl->index[i];
                if (!v)
                        return add_entry(s, sl, model, h, &sl->index[i], err);
                if ((uint32_t)(v >> 32) != h)
                        continue;
                mentry *m = &sl->models[(uint32_t)v - 1];
                if (m->len == model.len &&
                    !memcmp(sl->arena + m->off, model.ptr, model.len))
                        return m;
        }
}

static wslot *slot_get(tt_shard *s, int32_t w) {
        wslot *sl = find_slot(s, w);
        return sl ? sl : add_slot(s, w);
}

void tt_shard_prefetch(const tt_shard *s, int32_t w, uint64_t hash) {
        const wslot *sl = s->last < s->nslots && s->slots[s->last].week == w
                              ? &s->slots[s->last]
                              : find_slot_c(s, w);
        if (sl && sl->index)
                __builtin_prefetch(
                    &sl->index[(uint32_t)(hash >> 32) & sl->mask]);
}

int tt_shard_add(tt_shard *s, int32_t w, const tt_event *ev) {
        wslot *sl = slot_get(s, w);
        if (!sl)
                return TT_ERR_NOMEM;
        int err;
        mentry *m = entry_of(s, sl, ev->model, ev->model_hash, &err);
        if (!m)
                return err;
        tt_origin o = ev->origin.ptr
                          ? TT_ORIGIN(ev->origin.ptr[0], ev->origin.ptr[1])
                          : m->map_origin;
        tt_ccell_add(&m->c, sl->start, ev, o);
        tt_ccell_add(&sl->origins[tt_origin_index(o)], sl->start, ev, o);
        sl->version++;
        return TT_ERR_OK;
}

int tt_shard_merge_model(tt_shard *s, int32_t w, tt_str model,
                         const tt_cell *c) {
        wslot *sl = slot_get(s, w);
        if (!sl)
                return TT_ERR_NOMEM;
        int err;
        mentry *m = entry_of(s, sl, model, 0, &err);
        if (!m)
                return err;
        tt_cell cur;
        tt_ccell_get(&m->c, sl->start, &cur);
        if (!tt_cell_merge_ok(&cur, c))
                return TT_ERR_RANGE; /* would pass TT_COUNT_MAX */
        tt_ccell_merge(&m->c, sl->start, c);

        sl->version++;
        return TT_ERR_OK;
}

int tt_shard_merge_origin(tt_shard *s, int32_t w, tt_origin o,
                          const tt_cell *c) {
        if (!tt_origin_valid(o))
                return TT_ERR_FORMAT; /* would index outside origins[] */
        wslot *sl = slot_get(s, w);
        if (!sl)
                return TT_ERR_NOMEM;
        tt_ccell *oc = &sl->origins[tt_origin_index(o)];
        tt_cell cur;
        tt_ccell_get(oc, sl->start, &cur);
        if (!tt_cell_merge_ok(&cur, c))
                return TT_ERR_RANGE;
        tt_ccell_merge(oc, sl->start, c);
        sl->version++;
        return TT_ERR_OK;
}

void tt_shard_clear(tt_shard *s) {
        size_t j = 0;
        for (size_t i = 0; i < s->nslots; i++) {
                wslot *sl = &s->slots[i];
                if (!sl->version) {
                        slot_free(sl);
                        continue;
                }
                /* Kept for reuse: the same models come back next time. */
                memset(sl->index, 0, ((size_t)sl->mask + 1) * sizeof(uint64_t));
                memset(sl->origins, 0, TT_NORIGINS * sizeof(tt_ccell));
                sl->n = 0;
                sl->alen = 0;
                sl->version = 0;
                s->slots[j++] = *sl;
        }
        s->nslots = j;
        s->last = 0;
}

void tt_shard_visit(const tt_shard *s, int32_t w, const tt_shard_visitor *v,
                    void *opaque) {
        const wslot *sl = find_slot_c(s, w);
        if (!sl)
                return;
        tt_cell c;
        for (uint32_t i = 0; v->model && i < sl->n; i++) {
                const mentry *m = &sl->models[i];
                if (!m->c.requests)
                        continue;
                tt_ccell_get(&m->c, sl->start, &c);
                v->model(opaque, (tt_str){sl->arena + m->off, m->len}, &c);
        }
        for (unsigned i = 0; v->origin && i < TT_NORIGINS; i++)
                if (sl->origins[i].requests) {
                        tt_ccell_get(&sl->origins[i], sl->start, &c);
                        v->origin(opaque, tt_origin_at(i), &c);
                }
}

void tt_shard_drop(tt_shard *s, int32_t w) {
        for (size_t i = 0; i < s->nslots; i++)
                if (s->slots[i].week == w) {
                        slot_free(&s->slots[i]);
                        s->slots[i] = s->slots[--s->nslots];
                        s->last = 0;
                        return;
                }
}

uint64_t tt_shard_version(const tt_shard *s, int32_t w) {
        const wslot *sl = find_slot_c(s, w);
        return sl ? sl->version : 0;
}

int32_t tt_shard_min_week(const tt_shard *s) {
        int32_t m = INT32_MAX;
        for (size_t i = 0; i < s->nslots; i++)
                if (s->slots[i].week < m)
                        m = s->slots[i].week;
        return m;
}

size_t tt_shard_weeks(const tt_shard *s) {
        return s->nslots;
}

size_t tt_shard_bytes(const tt_shard *s) {
        size_t b = sizeof(*s) + s->capslots * sizeof(wslot);
        for (size_t i = 0; i < s->nslots; i++) {
                const wslot *sl = &s->slots[i];
                b += ((size_t)sl->mask + 1) * sizeof(uint64_t) +
                     (size_t)sl->cap * sizeof(mentry) + sl->acap +
                     TT_NORIGINS * sizeof(tt_ccell);
        }
        return b;
}

int32_t tt_shard_week_at(const tt_shard *s, size_t i) {
        return s->slots[i].week;
}

uint64_t tt_shard_keys(const tt_shard *s) {
        uint64_t n = 0;
        for (size_t i = 0; i < s->nslots; i++)
                n += s->slots[i].n;
        return n;
}

uint32_t tt_shard_week_models(const tt_shard *s, int32_t w) {
        const wslot *sl = find_slot_c(s, w);
        return sl ? sl->n : 0;
}
