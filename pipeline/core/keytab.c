/* String interning with open addressing over (hash tag, id) slots; see
 * keytab.h. Slots keep a 32-bit hash tag so that probing rarely touches the
 * strings. */
#include "tokentally/keytab.h"

#include <string.h>

#include "tokentally/mem.h"

#define ARENA_CHUNK (64u * 1024)

/* 8 bytes a key in the index (a 32-bit hash tag, which also places it, and
 * the id) and 8 in the id table (a pointer to the string, whose length is
 * the 4 bytes before it in the arena): a table of 10^6 slugs is about 30
 * MiB with its strings, not 120. */
typedef struct chunk {
        struct chunk *next;
        size_t used, cap;
        char data[];
} chunk;

struct tt_keytab {
        uint64_t *slots;   /* tag << 32 | (id + 1); 0 = empty */
        size_t mask;       /* load kept <= 3/4 */
        const char **strs; /* by id */
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
        t->slots = tt_calloc(64, sizeof(uint64_t));
        if (!t->slots) {
                tt_free(t);
                return NULL;
        }
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
        tt_free(t);
}

static size_t len_of(const char *p) {
        uint32_t n;
        memcpy(&n, p - 4, 4);
        return n;
}

/* The slot of s (tag from its hash): its key's, or the empty one. */
static uint64_t *probe(const tt_keytab *t, const char *s, size_t len,
                       uint32_t tag) {
        for (size_t i = tag & t->mask;; i = (i + 1) & t->mask) {
                uint64_t v = t->slots[i];
                if (!v)
                        return &t->slots[i];
                if ((uint32_t)(v >> 32) != tag)
                        continue;
                const char *p = t->strs[(uint32_t)v - 1];
                if (len_of(p) == len && !memcmp(p, s, len))
                        return &t->slots[i];
        }
}

static uint32_t tag_of(const char *s, size_t len) {
        return (uint32_t)(tt_hash(s, len) >> 32);
}

uint32_t tt_keytab_find(const tt_keytab *t, const char *s, size_t len) {
        uint64_t v = *probe(t, s, len, tag_of(s, len));
        return v ? (uint32_t)v - 1 : TT_KEY_NONE;
}

static int rehash(tt_keytab *t) {
        size_t ncap = (t->mask + 1) * 2;
        uint64_t *ns = tt_calloc_touch(ncap, sizeof(uint64_t));
        if (!ns)
                return -1;
        for (size_t i = 0; i <= t->mask; i++) {
                uint64_t v = t->slots[i];
                if (!v)
                        continue;
                size_t j = (uint32_t)(v >> 32) & (ncap - 1);
                while (ns[j])
                        j = (j + 1) & (ncap - 1);
                ns[j] = v;
        }
        tt_free(t->slots);
        t->slots = ns;
        t->mask = ncap - 1;
        return 0;
}

/* A copy of s[0..len) in the arena, its length in the 4 bytes before. */
static const char *arena_copy(tt_keytab *t, const char *s, size_t len) {
        chunk *c = t->arena;
        size_t need = len + 4;
        if (!c || c->cap - c->used < need) {
                size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
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
        uint32_t n = (uint32_t)len;
        memcpy(p, &n, 4);
        memcpy(p + 4, s, len);
        c->used += need;
        return p + 4;
}

uint32_t tt_keytab_intern(tt_keytab *t, const char *s, size_t len,
                          int *is_new) {
        return tt_keytab_intern_hashed(t, s, len, tt_hash(s, len), is_new);
}

uint64_t tt_keytab_prefetch_str(const tt_keytab *t, const char *s, size_t len) {
        uint64_t h = tt_hash(s, len);
        __builtin_prefetch(&t->slots[(uint32_t)(h >> 32) & t->mask]);
        return h;
}

uint32_t tt_keytab_intern_hashed(tt_keytab *t, const char *s, size_t len,
                                 uint64_t hash, int *is_new) {
        uint32_t tag = (uint32_t)(hash >> 32);
        uint64_t *sl = probe(t, s, len, tag);
        if (is_new)
                *is_new = 0;
        if (*sl)
                return (uint32_t)*sl - 1;
        if (t->n >= t->max || len > UINT32_MAX)
                return TT_KEY_NONE;
        if (t->n == t->cap) {
                uint32_t ncap = t->cap ? t->cap * 2 : 64;
                const char **ns = tt_realloc(t->strs, ncap * sizeof(*ns));
                if (!ns)
                        return TT_KEY_NONE;
                t->strs = ns;
                t->cap = ncap;
        }
        /* Grow first, so that a failure leaves the table as it was. */
        if ((size_t)(t->n + 1) * 4 > (t->mask + 1) * 3) {
                if (rehash(t))
                        return TT_KEY_NONE;
                sl = probe(t, s, len, tag);
        }
        const char *copy = arena_copy(t, s, len);
        if (!copy)
                return TT_KEY_NONE;
        uint32_t id = t->n++;
        t->strs[id] = copy;
        *sl = (uint64_t)tag << 32 | (id + 1);
        if (is_new)
                *is_new = 1;
        return id;
}

tt_str tt_keytab_str(const tt_keytab *t, uint32_t id) {
        const char *p = t->strs[id];
        return (tt_str){p, len_of(p)};
}

void tt_keytab_prefetch(const tt_keytab *t, uint32_t id, int stage) {
        if (id >= t->n)
                return;
        if (stage == 0)
                __builtin_prefetch(&t->strs[id]);
        else
                __builtin_prefetch(t->strs[id] - 4); /* the length first */
}

uint32_t tt_keytab_count(const tt_keytab *t) {
        return t->n;
}

size_t tt_keytab_bytes(const tt_keytab *t) {
        return t->bytes + (t->mask + 1) * sizeof(uint64_t) +
               t->cap * sizeof(const char *);
}
