/* Weekly counters of one shard; see counters.h. A week slot holds a dense
 * array of cells indexed by the shard's model id and a fixed array for the
 * 676 possible origin codes, so an event touches two cells by index. */
#include "tokentally/counters.h"

#include <string.h>

#include "tokentally/err.h"
#include "tokentally/keytab.h"
#include "tokentally/mem.h"

typedef struct wslot {
        int32_t week;
        uint32_t ncells; /* cells allocated in models[] */
        uint64_t version;
        tt_cell *models;
        tt_cell *origins; /* TT_NORIGINS */
} wslot;

struct tt_shard {
        const tt_origin_map *map;
        tt_keytab *models;
        uint32_t max_models;
        tt_origin *model_origin; /* by model id: the map's answer */
        uint32_t model_origin_cap;
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
        s->models = tt_keytab_new(max_models);
        if (!s->models) {
                tt_free(s);
                return NULL;
        }
        return s;
}

static void slot_free(wslot *w) {
        tt_free(w->models);
        tt_free(w->origins);
}

void tt_shard_destroy(tt_shard *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->nslots; i++)
                slot_free(&s->slots[i]);
        tt_free(s->slots);
        tt_free(s->model_origin);
        tt_keytab_destroy(s->models);
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
        sl->origins = tt_calloc(TT_NORIGINS, sizeof(tt_cell));
        if (!sl->origins)
                return NULL;
        s->last = s->nslots++;
        return sl;
}

static int grow_cells(wslot *sl, uint32_t need) {
        uint32_t ncap = sl->ncells ? sl->ncells : 64;
        while (ncap < need)
                ncap *= 2;
        tt_cell *nc = tt_realloc(sl->models, ncap * sizeof(tt_cell));
        if (!nc)
                return TT_ERR_NOMEM;
        memset(nc + sl->ncells, 0, (ncap - sl->ncells) * sizeof(tt_cell));
        sl->models = nc;
        sl->ncells = ncap;
        return TT_ERR_OK;
}

tt_origin tt_event_origin(const tt_origin_map *map, const tt_event *ev) {
        if (ev->origin.ptr)
                return TT_ORIGIN(ev->origin.ptr[0], ev->origin.ptr[1]);
        return tt_origin_of_model(map, ev->model.ptr, ev->model.len);
}

/* The shard's id of model, added (with the origin map's answer for it)
 * when new. TT_ERR_LIMIT past max_models. */
static int model_id(tt_shard *s, tt_str model, uint32_t *out) {
        int is_new;
        uint32_t id =
            tt_keytab_intern(s->models, model.ptr, model.len, &is_new);
        if (id == TT_KEY_NONE)
                return tt_keytab_count(s->models) >= s->max_models
                           ? TT_ERR_LIMIT
                           : TT_ERR_NOMEM;
        if (is_new) {
                if (id >= s->model_origin_cap) {
                        uint32_t ncap =
                            s->model_origin_cap ? s->model_origin_cap * 2 : 64;
                        tt_origin *no =
                            tt_realloc(s->model_origin, ncap * sizeof(*no));
                        if (!no)
                                return TT_ERR_NOMEM;
                        s->model_origin = no;
                        s->model_origin_cap = ncap;
                }
                s->model_origin[id] =
                    tt_origin_of_model(s->map, model.ptr, model.len);
        }
        *out = id;
        return TT_ERR_OK;
}

int tt_shard_add(tt_shard *s, int32_t w, const tt_event *ev) {
        uint32_t id;
        int err = model_id(s, ev->model, &id);
        if (err)
                return err;
        wslot *sl = find_slot(s, w);
        if (!sl && !(sl = add_slot(s, w)))
                return TT_ERR_NOMEM;
        if (id >= sl->ncells && grow_cells(sl, id + 1))
                return TT_ERR_NOMEM;
        tt_origin o = ev->origin.ptr
                          ? TT_ORIGIN(ev->origin.ptr[0], ev->origin.ptr[1])
                          : s->model_origin[id];
        tt_cell_add(&sl->models[id], ev, o);
        tt_cell_add(&sl->origins[tt_origin_index(o)], ev, o);
        sl->version++;
        return TT_ERR_OK;
}

static wslot *slot_for(tt_shard *s, int32_t w, uint32_t id) {
        wslot *sl = find_slot(s, w);
        if (!sl && !(sl = add_slot(s, w)))
                return NULL;
        if (id != TT_KEY_NONE && id >= sl->ncells && grow_cells(sl, id + 1))
                return NULL;
        return sl;
}

int tt_shard_merge_model(tt_shard *s, int32_t w, tt_str model,
                         const tt_cell *c) {
        uint32_t id;
        int err = model_id(s, model, &id);
        if (err)
                return err;
        wslot *sl = slot_for(s, w, id);
        if (!sl)
                return TT_ERR_NOMEM;
        if (!tt_cell_merge_ok(&sl->models[id], c))
                return TT_ERR_RANGE; /* would pass TT_COUNT_MAX */
        tt_cell_merge(&sl->models[id], c);
        sl->version++;
        return TT_ERR_OK;
}

int tt_shard_merge_origin(tt_shard *s, int32_t w, tt_origin o,
                          const tt_cell *c) {
        if (!tt_origin_valid(o))
                return TT_ERR_FORMAT; /* would index outside origins[] */
        wslot *sl = slot_for(s, w, TT_KEY_NONE);
        if (!sl)
                return TT_ERR_NOMEM;
        if (!tt_cell_merge_ok(&sl->origins[tt_origin_index(o)], c))
                return TT_ERR_RANGE;
        tt_cell_merge(&sl->origins[tt_origin_index(o)], c);
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
                if (sl->ncells)
                        memset(sl->models, 0, sl->ncells * sizeof(tt_cell));
                memset(sl->origins, 0, TT_NORIGINS * sizeof(tt_cell));
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
        uint32_t n = tt_keytab_count(s->models);
        if (n > sl->ncells)
                n = sl->ncells;
        for (uint32_t id = 0; v->model && id < n; id++)
                if (sl->models[id].requests)
                        v->model(opaque, tt_keytab_str(s->models, id),
                                 &sl->models[id]);
        for (unsigned i = 0; v->origin && i < TT_NORIGINS; i++)
                if (sl->origins[i].requests)
                        v->origin(opaque, tt_origin_at(i), &sl->origins[i]);
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
        size_t b = tt_keytab_bytes(s->models) +
                   s->model_origin_cap * sizeof(tt_origin);
        for (size_t i = 0; i < s->nslots; i++)
                b += (s->slots[i].ncells + TT_NORIGINS) * sizeof(tt_cell);
        return b;
}

int32_t tt_shard_week_at(const tt_shard *s, size_t i) {
        return s->slots[i].week;
}

uint64_t tt_shard_keys(const tt_shard *s) {
        uint64_t n = 0;
        for (size_t i = 0; i < s->nslots; i++) {
                const wslot *sl = &s->slots[i];
                for (uint32_t id = 0; id < sl->ncells; id++)
                        n += sl->models[id].requests > 0;
        }
        return n;
}
