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

/* tt_calloc for a table whose first access to a page may be a read (a hash
 * index probed before anything is stored): zeroed by writing, so that no
 * page of it is ever mapped to the kernel's shared zero page. A write to
 * such a page is a copy-on-write fault that flushes the TLB of every CPU
 * running a thread of the process (an IPI each time): 6.5% of the applying
 * thread in a replay of 12 weeks x 10^5 models, all in counting. */
void *tt_calloc_touch(size_t n, size_t size);

/* A large one-off temporary in pages of its own, given back to the system
 * by tt_unmap at once (size as mapped). Freed into jemalloc instead, its
 * pages would stay resident for the decay time (1 s, main.c) and count in
 * the peak RSS of a run shorter than that. NULL on failure (and by the
 * test hook, as an allocation). */
void *tt_map(size_t size);
void tt_unmap(void *p, size_t size);

/* Test hook: the nth allocation from now (1 = the next) fails, and every
 * one after it succeeds again. 0 disables. Not thread-safe; tests only. */
void tt_mem_fail_nth(unsigned long nth);
/* Number of allocations made since start (for the no-per-event-allocation
 * checks in tests). Counted with a relaxed atomic. */
unsigned long tt_mem_allocs(void);

#endif
