/* Allocator wrappers. jemalloc replaces malloc at link time (it is linked into
 * every binary), so these are thin; their value is the single place for the
 * failure hook and the allocation counter. */
#include "tokentally/mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static unsigned long fail_nth;
static atomic_ulong allocs;

static int should_fail(void) {
        atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
        if (fail_nth == 0)
                return 0;
        if (--fail_nth == 0)
                return 1;
        return 0;
}

void *tt_malloc(size_t size) {
        if (should_fail())
                return NULL;
        return malloc(size ? size : 1);
}

void *tt_calloc(size_t n, size_t size) {
        if (should_fail())
                return NULL;
        return calloc(n ? n : 1, size ? size : 1);
}

void *tt_calloc_touch(size_t n, size_t size) {
        if (size && n > SIZE_MAX / size)
                return NULL;
        /* explicit_bzero, not memset: GCC turns malloc + memset(0) into
         * calloc, which skips the writes on fresh pages (seen here: the
         * faults stayed until this). */
        void *p = tt_malloc(n * size);
        if (p)
                explicit_bzero(p, n * size);
        return p;
}

void *tt_realloc(void *ptr, size_t size) {
        if (should_fail())
                return NULL;
        return realloc(ptr, size ? size : 1);
}

void tt_free(void *ptr) {
        free(ptr);
}

void *tt_map(size_t size) {
        if (should_fail())
                return NULL;
        void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

void tt_unmap(void *p, size_t size) {
        if (p)
                munmap(p, size ? size : 1);
}

char *tt_strndup(const char *s, size_t len) {
        char *p = tt_malloc(len + 1);
        if (!p)
                return NULL;
        memcpy(p, s, len);
        p[len] = '\0';
        return p;
}

void tt_mem_fail_nth(unsigned long nth) {
        fail_nth = nth;
}

unsigned long tt_mem_allocs(void) {
        return atomic_load_explicit(&allocs, memory_order_relaxed);
}
