/* The byte order of a key table's strings, as a rank per id, kept up to
 * date as keys arrive.
 *
 * Rows of equal tokens are ranked by slug (SPEC §4). With many models on
 * few token counts, sorting a week compared slugs through the key table for
 * most pairs: a cache miss per side, a quarter of the applying thread's
 * time in a replay of 12 weeks x 100,000 models, paid again every week for
 * the same slugs. A slug's place among all slugs changes only when new ones
 * arrive, so it is computed once and updated by merging the new ones in;
 * a week's sort then compares integers and never reads a slug. */
#ifndef TT_KEYORDER_H
#define TT_KEYORDER_H

#include <stddef.h>
#include <stdint.h>

#include "tokentally/keytab.h"

/* Bytes [from, from + 8) of s as a big-endian word, zero past its end:
 * integer order of such words is byte order of the strings (a shorter one,
 * zero padded, first). */
static inline uint64_t tt_str_word(tt_str s, size_t from) {
        uint64_t w = 0;
        for (size_t i = from; i < from + 8; i++)
                w = w << 8 | (i < s.len ? (uint8_t)s.ptr[i] : 0);
        return w;
}

typedef struct tt_keyorder tt_keyorder;

tt_keyorder *tt_keyorder_new(void);
void tt_keyorder_destroy(tt_keyorder *o);

/* rank[id] for every id < tt_keytab_count(t): 0-based, dense, in byte
 * order of the strings (a prefix first). The ids ranked by an earlier call
 * must still be t's with the same strings (a table only grows; after one
 * is replaced, reset first). k keys added since the last call cost
 * O(k log k) string comparisons and O(n) integer work; none, O(1). The
 * array is o's, valid until the next call or reset. NULL when out of
 * memory (o is then as before). */
const uint32_t *tt_keyorder_ranks(tt_keyorder *o, const tt_keytab *t);

/* Bytes held, for memory accounting (8 a key). */
size_t tt_keyorder_bytes(const tt_keyorder *o);

/* Forgets every rank (the table was replaced). */
void tt_keyorder_reset(tt_keyorder *o);

#endif
