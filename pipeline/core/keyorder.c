/* Ranks of a key table's strings in byte order; see keyorder.h. */
#include "tokentally/keyorder.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/mem.h"
#include "tokentally/streak.h" /* tt_str_cmp */

struct tt_keyorder {
        uint32_t *order; /* ids in byte order of their strings, [0, n) */
        uint32_t *rank;  /* by id: its place in order */
        uint32_t n, cap;
};

/* A new key while the new ones are sorted: its first 24 bytes as
 * big-endian words, zero padded, so that integer order is byte order and
 * most comparisons never read the string. 32 bytes, which glibc's qsort
 * still moves directly. */
#define WORDS 3
typedef struct item {
        uint64_t w[WORDS];
        uint32_t id;
        uint32_t len;
} item;

tt_keyorder *tt_keyorder_new(void) {
        return tt_calloc(1, sizeof(tt_keyorder));
}

void tt_keyorder_destroy(tt_keyorder *o) {
        if (!o)
                return;
        tt_free(o->order);
        tt_free(o->rank);
        tt_free(o);
}

size_t tt_keyorder_bytes(const tt_keyorder *o) {
        return sizeof(*o) + (size_t)o->cap * 2 * sizeof(uint32_t);
}

void tt_keyorder_reset(tt_keyorder *o) {
        o->n = 0;
}

static int cmp_new(const void *a, const void *b, void *arg) {
        const item *x = a, *y = b;
        for (int i = 0; i < WORDS; i++)
                if (x->w[i] != y->w[i])
                        return x->w[i] < y->w[i] ? -1 : 1;
        /* Equal first 24 bytes (padding included): a string that ends
         * within them is a prefix of the other, and comes first. */
        if (x->len <= 8 * WORDS || y->len <= 8 * WORDS)
                return x->len < y->len ? -1 : x->len > y->len;
        const tt_keytab *t = arg;
        return tt_str_cmp(tt_keytab_str(t, x->id), tt_keytab_str(t, y->id));
}

static int cmp_ids(const tt_keytab *t, uint32_t a, uint32_t b) {
        return tt_str_cmp(tt_keytab_str(t, a), tt_keytab_str(t, b));
}

/* A stable bottom-up merge sort of a[0..n) by cmp_new, with tmp (n items)
 * as the other buffer; the result ends in a. Not qsort: glibc's allocates
 * its buffer from the heap, where its pages stay resident after the sort
 * (see tt_map). */
static void sort_new(item *a, item *tmp, size_t n, const tt_keytab *t) {
        item *src = a, *dst = tmp;
        for (size_t w = 1; w < n; w *= 2) {
                for (size_t lo = 0; lo < n; lo += 2 * w) {
                        size_t mid = lo + w < n ? lo + w : n;
                        size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
                        size_t i = lo, j = mid, k = lo;
                        while (i < mid && j < hi)
                                dst[k++] =
                                    cmp_new(&src[j], &src[i], (void *)t) < 0
                                        ? src[j++]
                                        : src[i++];
                        while (i < mid)
                                dst[k++] = src[i++];
                        while (j < hi)
                                dst[k++] = src[j++];
                }
                item *x = src;
                src = dst;
                dst = x;
        }
        if (src != a)
                memcpy(a, src, n * sizeof(*a));
}

/* Merges the sorted new ids nw[0..k) into order[0..m), from the back, in
 * place (order has room for m + k). Few new keys among many are placed by
 * binary search (k log m comparisons), many by a linear merge (m + k). */
static void merge_in(const tt_keytab *t, uint32_t *order, uint32_t m,
                     const item *nw, uint32_t k) {
        uint32_t log2m = 0;
        while ((1ull << log2m) <= m)
                log2m++;
        bool search = (uint64_t)k * log2m < m;
        uint32_t hi = m; /* order[0..hi) not yet moved */
        for (uint32_t j = k; j-- > 0;) {
                uint32_t id = nw[j].id, pos;
                if (search) { /* first place whose string is greater */
                        uint32_t lo = 0, h = hi;
                        while (lo < h) {
                                uint32_t mid = lo + (h - lo) / 2;
                                if (cmp_ids(t, order[mid], id) > 0)
                                        h = mid;
                                else
                                        lo = mid + 1;
                        }
                        pos = lo;
                } else {
                        pos = hi;
                        while (pos > 0 && cmp_ids(t, order[pos - 1], id) > 0)
                                pos--;
                }
                /* order[pos..hi) goes up by j + 1, then the new id. */
                memmove(&order[pos + j + 1], &order[pos],
                        (size_t)(hi - pos) * sizeof(*order));
                order[pos + j] = id;
                hi = pos;
        }
}

const uint32_t *tt_keyorder_ranks(tt_keyorder *o, const tt_keytab *t) {
        uint32_t n = tt_keytab_count(t);
        if (n < o->n)
                o->n = 0; /* not the table ranked before */
        if (n > o->cap || !o->rank) {
                uint32_t cap = o->cap ? o->cap : 64;
                while (cap < n)
                        cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
                uint32_t *no = tt_realloc(o->order, (size_t)cap * 4);
                if (!no)
                        return NULL;
                o->order = no;
                uint32_t *nr = tt_realloc(o->rank, (size_t)cap * 4);
                if (!nr)
                        return NULL;
                o->rank = nr;
                o->cap = cap;
        }
        if (n == o->n)
                return o->rank;
        uint32_t k = n - o->n;
        size_t bytes = (size_t)k * sizeof(item);
        item *nw = tt_map(2 * bytes); /* the keys, then sort_new's buffer */
        if (!nw)
                return NULL;
        for (uint32_t i = 0; i < k; i++) {
                uint32_t id = o->n + i;
                tt_str s = tt_keytab_str(t, id);
                for (int w = 0; w < WORDS; w++)
                        nw[i].w[w] = tt_str_word(s, 8 * (size_t)w);
                nw[i].id = id;
                nw[i].len = (uint32_t)s.len;
        }
        sort_new(nw, nw + k, k, t);
        merge_in(t, o->order, o->n, nw, k);
        tt_unmap(nw, 2 * bytes);
        o->n = n;
        for (uint32_t i = 0; i < n; i++)
                o->rank[o->order[i]] = i;
        return o->rank;
}
