/* String interning with open addressing over (hash, id) slots; see keytab.h.
 * Slots keep the full hash so that probing rarely touches the strings. */
#include "tokentally/keytab.h"

#include <string.h>

#include "tokentally/mem.h"

#define ARENA_CHUNK (64u * 1024)

typedef struct slot {
        uint64_t hash;
        uint32_t id; /* TT_KEY_NONE = empty */
} slot;

typedef struct chunk {
        struct chunk *next;
        size_t used, cap;
        char data[];
} chunk;

struct tt_keytab {
        slot *slots;
        size_t mask;
        tt_str *strs; /* by id */
        uint64_t *hashes;
        uint32_t n, cap, max;
        chunk *arena;
        size_t bytes;
};

uint64_t tt_hash(const void *s, size_t len) {
        /* 8 bytes at a time, multiply-xorshift mixing; good enough for
         * slugs, and keys are not attacker-chosen for collisions beyond
         * what the key cap bounds. */
        const unsigned char *p = s;
        uint64_t h = 0x9E3779B97F4A7C15ULL ^ (len * 0xFF51AFD7ED558CCDULL);
        while (len >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
                h ^= h >> 29;
                p += 8;
                len -= 8;
        }
        if (len) {
                uint64_t w = 0;
                memcpy(&w, p, len);
                h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
        }
        h ^= h >> 32;
        h *= 0xFF51AFD7ED558CCDULL;
        h ^= h >> 29;
        return h;
}

tt_keytab *tt_keytab_new(uint32_t max_keys) {
        tt_keytab *t = tt_calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->max = max_keys;
        t->mask = 63;
        t->slots = tt_malloc(64 * sizeof(slot));
        if (!t->slots) {
                tt_free(t);
                return NULL;
        }
        for (size_t i = 0; i < 64; i++)
                t->slots[i].id = TT_KEY_NONE;
        return t;
}

void tt_keytab_destroy(tt_keytab *t) {
        if (!t)
                return;
        for (chunk *c = t->arena, *next; c; c = next) {
                next = c->next;
                tt_free(c);
        }
        tt_free(t->slots);
        tt_free(t->strs);
        tt_free(t->hashes);
        tt_free(t);
}

static slot *probe(const tt_keytab *t, const char *s, size_t len, uint64_t h) {
        for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
                slot *sl = &t->slots[i];
                if (sl->id == TT_KEY_NONE)
                        return sl;
                if (sl->hash == h && t->strs[sl->id].len == len &&
                    !memcmp(t->strs[sl->id].ptr, s, len))
                        return sl;
        }
}

uint32_t tt_keytab_find(const tt_keytab *t, const char *s, size_t len) {
        return probe(t, s, len, tt_hash(s, len))->id;
}

static int rehash(tt_keytab *t) {
        size_t ncap = (t->mask + 1) * 2;
        slot *ns = tt_malloc(ncap * sizeof(slot));
        if (!ns)
                return -1;
        for (size_t i = 0; i < ncap; i++)
                ns[i].id = TT_KEY_NONE;
        for (uint32_t id = 0; id < t->n; id++) {
                size_t i = t->hashes[id] & (ncap - 1);
                while (ns[i].id != TT_KEY_NONE)
                        i = (i + 1) & (ncap - 1);
                ns[i].hash = t->hashes[id];
                ns[i].id = id;
        }
        tt_free(t->slots);
        t->slots = ns;
        t->mask = ncap - 1;
        return 0;
}

static const char *arena_copy(tt_keytab *t, const char *s, size_t len) {
        chunk *c = t->arena;
        if (!c || c->cap - c->used < len) {
                size_t cap = len > ARENA_CHUNK ? len : ARENA_CHUNK;
                chunk *nc = tt_malloc(sizeof(chunk) + cap);
                if (!nc)
                        return NULL;
                nc->next = c;
                nc->used = 0;
                nc->cap = cap;
                t->arena = c = nc;
                t->bytes += sizeof(chunk) + cap;
        }
        char *p = c->data + c->used;
        memcpy(p, s, len);
        c->used += len;
        return p;
}

uint32_t tt_keytab_intern(tt_keytab *t, const char *s, size_t len,
                          int *is_new) {
        uint64_t h = tt_hash(s, len);
        slot *sl = probe(t, s, len, h);
        if (is_new)
                *is_new = 0;
        if (sl->id != TT_KEY_NONE)
                return sl->id;
        if (t->n >= t->max)
                return TT_KEY_NONE;
        if (t->n == t->cap) {
                uint32_t ncap = t->cap ? t->cap * 2 : 64;
                tt_str *ns = tt_realloc(t->strs, ncap * sizeof(*ns));
                if (!ns)
                        return TT_KEY_NONE;
                t->strs = ns;
                uint64_t *nh = tt_realloc(t->hashes, ncap * sizeof(*nh));
                if (!nh)
                        return TT_KEY_NONE;
                t->hashes = nh;
                t->cap = ncap;
        }
        const char *copy = arena_copy(t, s, len);
        if (!copy)
                return TT_KEY_NONE;
        uint32_t id = t->n++;
        t->strs[id] = (tt_str){copy, len};
        t->hashes[id] = h;
        if ((size_t)t->n * 2 > t->mask + 1) {
                if (rehash(t)) {
                        t->n--;
                        return TT_KEY_NONE;
                }
        } else {
                sl->hash = h;
                sl->id = id;
        }
        if (is_new)
                *is_new = 1;
        return id;
}

tt_str tt_keytab_str(const tt_keytab *t, uint32_t id) {
        return t->strs[id];
}

uint32_t tt_keytab_count(const tt_keytab *t) {
        return t->n;
}

size_t tt_keytab_bytes(const tt_keytab *t) {
        return t->bytes + (t->mask + 1) * sizeof(slot) +
               t->cap * (sizeof(tt_str) + sizeof(uint64_t));
}
