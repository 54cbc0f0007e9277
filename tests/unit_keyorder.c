/* tt_keyorder: ranks in byte order of the strings, after each of several
 * batches of new keys (the merges by binary search and by linear merge),
 * checked against qsort with memcmp on the strings themselves. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/keyorder.h"
#include "tokentally/keytab.h"

static int cmp_bytes(const void *a, const void *b, void *arg) {
        tt_str x = tt_keytab_str(arg, *(const uint32_t *)a);
        tt_str y = tt_keytab_str(arg, *(const uint32_t *)b);
        size_t n = x.len < y.len ? x.len : y.len;
        int c = memcmp(x.ptr, y.ptr, n);
        return c ? c : x.len < y.len ? -1 : x.len > y.len;
}

/* rank must be a permutation of [0, n) equal to the places of a memcmp
 * sort. */
static void check_ranks(const tt_keytab *t, const uint32_t *rank) {
        uint32_t n = tt_keytab_count(t);
        uint32_t *ids = malloc((size_t)n * sizeof(*ids) + 1);
        ck_assert_ptr_nonnull(ids);
        for (uint32_t i = 0; i < n; i++)
                ids[i] = i;
        qsort_r(ids, n, sizeof(*ids), cmp_bytes, (void *)t);
        for (uint32_t i = 0; i < n; i++)
                ck_assert_msg(rank[ids[i]] == i, "%.*s: rank %u, want %u",
                              (int)tt_keytab_str(t, ids[i]).len,
                              tt_keytab_str(t, ids[i]).ptr, rank[ids[i]], i);
        free(ids);
}

/* Slugs that make every comparison path work: short ones and their
 * extensions (a prefix first, "x" < "x/" < "x/a"), long shared prefixes
 * that differ only past the first 24 bytes, bytes >= 0x80 (UTF-8, which
 * must compare unsigned), and a NUL-free mix of random ones. */
static int slug(uint64_t x, char *out, size_t cap) {
        static const char *const pre[] = {"x",
                                          "x/",
                                          "x/a",
                                          "averyveryverylongvendorname/model-",
                                          "averyveryverylongvendorname/model-a",
                                          "caf\xc3\xa9/",
                                          "cafe/",
                                          "qwen/m-",
                                          "deepseek/m-000"};
        const char *p = pre[x % 9];
        switch ((x >> 8) % 4) {
        case 0:
                return snprintf(out, cap, "%s", p);
        case 1:
                return snprintf(out, cap, "%s%u", p, (unsigned)(x >> 16) % 997);
        case 2:
                return snprintf(out, cap, "%s%07u", p,
                                (unsigned)(x >> 16) % 100000);
        default:
                return snprintf(out, cap, "%s\xe4\xb8\xad%u", p,
                                (unsigned)(x >> 16) % 50);
        }
}

START_TEST(test_batches) {
        tt_keytab *t = tt_keytab_new(UINT32_MAX - 1);
        tt_keyorder *o = tt_keyorder_new();
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_nonnull(o);
        /* No keys yet: an empty, valid array. */
        ck_assert_ptr_nonnull(tt_keyorder_ranks(o, t));
        /* Few after many (binary search), many after few (linear merge),
         * and a call with nothing new. */
        static const int batch[] = {1, 3000, 1, 7, 0, 20000, 2, 500, 1};
        uint64_t x = 88172645463325252u;
        for (size_t b = 0; b < sizeof(batch) / sizeof(batch[0]); b++) {
                for (int added = 0; added < batch[b];) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        char s[96];
                        int len = slug(x, s, sizeof(s));
                        int is_new = 0;
                        ck_assert_uint_ne(
                            tt_keytab_intern(t, s, (size_t)len, &is_new),
                            TT_KEY_NONE);
                        added += is_new;
                        if (tt_keytab_count(t) > 40000)
                                break; /* the generator's set is smaller */
                }
                const uint32_t *rank = tt_keyorder_ranks(o, t);
                ck_assert_ptr_nonnull(rank);
                check_ranks(t, rank);
        }
        ck_assert_uint_gt(tt_keytab_count(t), 20000);
        ck_assert_uint_ge(tt_keyorder_bytes(o), (size_t)tt_keytab_count(t) * 8);

        /* A new table after reset (the engine compacting its keys): ranked
         * from scratch, in its own ids. */
        tt_keytab *t2 = tt_keytab_new(UINT32_MAX - 1);
        ck_assert_ptr_nonnull(t2);
        static const char *const two[] = {"zz/last", "aa/first", "mm/mid"};
        for (int i = 0; i < 3; i++)
                tt_keytab_intern(t2, two[i], strlen(two[i]), NULL);
        tt_keyorder_reset(o);
        const uint32_t *rank = tt_keyorder_ranks(o, t2);
        ck_assert_ptr_nonnull(rank);
        ck_assert_uint_eq(rank[0], 2);
        ck_assert_uint_eq(rank[1], 0);
        ck_assert_uint_eq(rank[2], 1);
        tt_keyorder_destroy(o);
        tt_keytab_destroy(t);
        tt_keytab_destroy(t2);
}
END_TEST

int main(void) {
        Suite *s = suite_create("keyorder");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_batches);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
