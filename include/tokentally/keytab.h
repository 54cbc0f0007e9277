/* String interning: model slug -> dense id. Ids let the counters use arrays
 * instead of string maps on the per-event path. Strings are copied into
 * arena chunks that never move, so tt_keytab_str() pointers stay valid for
 * the table's life. Growth happens only when a new key arrives, never per
 * event, and the number of keys is capped. */
#ifndef TT_KEYTAB_H
#define TT_KEYTAB_H

#include <stddef.h>
#include <stdint.h>

#include "tokentally/event.h"

typedef struct tt_keytab tt_keytab;

#define TT_KEY_NONE UINT32_MAX

/* max_keys caps the table; tt_keytab_intern returns TT_KEY_NONE past it. */
tt_keytab *tt_keytab_new(uint32_t max_keys);
void tt_keytab_destroy(tt_keytab *t);

/* Fast 64-bit hash of s[0..len). */
uint64_t tt_hash(const void *s, size_t len);

/* Id of s, adding it if new. TT_KEY_NONE when full or out of memory;
 * *is_new tells whether it was added (may be NULL). */
uint32_t tt_keytab_intern(tt_keytab *t, const char *s, size_t len, int *is_new);
/* Id of s, or TT_KEY_NONE. */
uint32_t tt_keytab_find(const tt_keytab *t, const char *s, size_t len);
/* The string of id (valid for the table's life). */
tt_str tt_keytab_str(const tt_keytab *t, uint32_t id);
/* Hints the cache about key id, for loops that walk keys in an order the
 * hardware cannot guess (a week's rows by rank). Stage 0 fetches the id
 * table's entry, stage 1 (a few keys later, once that entry is in cache)
 * the string itself. No effect on results. */
void tt_keytab_prefetch(const tt_keytab *t, uint32_t id, int stage);
/* s's hash, with the index slot it starts probing at prefetched: a caller
 * interning many keys computes it a few keys ahead of
 * tt_keytab_intern_hashed, which then finds the slot in cache. */
uint64_t tt_keytab_prefetch_str(const tt_keytab *t, const char *s, size_t len);
/* tt_keytab_intern with hash = tt_hash(s, len) computed by the caller. */
uint32_t tt_keytab_intern_hashed(tt_keytab *t, const char *s, size_t len,
                                 uint64_t hash, int *is_new);
uint32_t tt_keytab_count(const tt_keytab *t);
/* Bytes held, for memory accounting. */
size_t tt_keytab_bytes(const tt_keytab *t);

#endif
