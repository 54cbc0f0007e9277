/* The one allocator interface, over jemalloc. Nothing here logs: callers get
 * NULL and return TT_ERR_NOMEM. A test hook fails the Nth allocation so that
 * out-of-memory paths can be exercised (curl's "torture" idea). */
#ifndef TT_MEM_H
#define TT_MEM_H

#include <stddef.h>

void *tt_malloc(size_t size);
void *tt_calloc(size_t n, size_t size);
void *tt_realloc(void *ptr, size_t size);
void tt_free(void *ptr);
/* Copy of s[0..len) plus a NUL. Caller owns the result (tt_free). */
char *tt_strndup(const char *s, size_t len);

/* Test hook: the nth allocation from now (1 = the next) fails, and every
 * one after it succeeds again. 0 disables. Not thread-safe; tests only. */
void tt_mem_fail_nth(unsigned long nth);
/* Number of allocations made since start (for the no-per-event-allocation
 * checks in tests). Counted with a relaxed atomic. */
unsigned long tt_mem_allocs(void);

#endif
