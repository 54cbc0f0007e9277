/* Replays every kept fuzz input through the fuzzed entry points
 * (tests/fuzz/fuzz_targets.c) in the ordinary build: the corpus of each
 * harness (tests/fuzz/corpus/<name>/) and every input that once crashed
 * one (tests/fuzz/regressions/<name>/). Under the ASan/UBSan build of
 * tests/run.sh a memory error in any of them fails this test; in the gcc
 * build the harnesses' own checks (a row whose tokens are not prompt plus
 * completion, a negative count) abort it. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "fuzz_targets.h"

/* Runs fn on every file of dir; the number of files, -1 if dir is
 * missing. */
static int replay_dir(const char *dir, tt_fuzz_fn fn) {
        DIR *d = opendir(dir);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                FILE *f = fopen(path, "rb");
                ck_assert_msg(f != NULL, "cannot open %s", path);
                fseek(f, 0, SEEK_END);
                long len = ftell(f);
                fseek(f, 0, SEEK_SET);
                uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
                ck_assert_ptr_nonnull(buf);
                ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
                fclose(f);
                ck_assert_int_eq(fn(buf, (size_t)len), 0);
                free(buf);
                n++;
        }
        closedir(d);
        return n;
}

START_TEST(replay_target) {
        const tt_fuzz_target *t = &tt_fuzz_targets[_i];
        const char *src = getenv("TT_SOURCE_DIR");
        ck_assert_msg(src != NULL, "TT_SOURCE_DIR is not set");
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", src, t->name);
        int ncorpus = replay_dir(dir, t->fn);
        /* Every harness keeps a corpus: a missing one means the fuzz step
         * would start from nothing. */
        ck_assert_msg(ncorpus > 0, "%s: no corpus in %s", t->name, dir);
        snprintf(dir, sizeof(dir), "%s/tests/fuzz/regressions/%s", src,
                 t->name);
        replay_dir(dir, t->fn);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("fuzz_regress");
        TCase *tc = tcase_create("replay");
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, replay_target, 0, (int)tt_fuzz_ntargets);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(suite());
}
