/* The rollups' writer thread: what it writes is byte for byte what
 * tt_json_rollup writes for the same rows in the same order, across many
 * chunk handovers (rows with long keys, null and set origins and growth),
 * and a failing file turns into TT_ERR_IO at a later push or at close,
 * never into a lost row reported as success. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "tokentally/err.h"
#include "tokentally/json_out.h"
#include "tokentally/outdir.h"
#include "tokentally/rollup_writer.h"

#define NROWS 50000 /* ~16 MB of JSON: ~9 MB of compact rows, many chunks */

static tt_rollup row(int i, char *key, size_t keysize) {
        /* Keys of 1..300 bytes so rows straddle chunk ends at every offset. */
        int len = snprintf(key, keysize, "vendor/m-%d-", i);
        while (len < 1 + i % 300 && len < (int)keysize - 1) {
                key[len] = (char)('a' + len % 26);
                len++;
        }
        key[len] = '\0';
        tt_rollup r;
        memset(&r, 0, sizeof(r));
        snprintf(r.week, sizeof(r.week), "2026-W%02d", 1 + i % 52);
        r.week_start_ms = 1767571200000 + i;
        r.dimension = TT_DIM_MODEL;
        r.key = (tt_str){key, (size_t)len};
        r.origin = i % 3 ? (tt_str){"CN", 2} : (tt_str){NULL, 0};
        r.tokens = (int64_t)i * 1000003;
        r.prompt_tokens = i;
        r.completion_tokens = (int64_t)i * 7;
        r.requests = i % 11;
        r.has_prev = i % 2;
        r.prev_tokens = i * 3;
        r.has_growth = i % 4 == 1;
        r.wow_growth_pct = (double)i / 7.0;
        r.share_pct = 100.0 / (double)(i + 1);
        r.rank = i + 1;
        r.status = TT_STATUS_FINAL;
        r.revision = i % 3;
        r.emitted_at_ms = 1796084427001;
        return r;
}

/* Pushes NROWS rows to w and encodes them into direct (initialised here)
 * with tt_json_rollup, the bytes w must write. */
static void push_rows(tt_rollup_writer *w, tt_buf *direct) {
        tt_buf_init(direct, 1u << 30);
        char key[400];
        for (int i = 0; i < NROWS; i++) {
                tt_rollup r = row(i, key, sizeof(key));
                ck_assert_int_eq(tt_json_rollup(direct, &r), TT_ERR_OK);
                ck_assert_int_eq(tt_rollup_writer_push(w, &r), TT_ERR_OK);
                /* The writer copied the key: scribbling on it now must not
                 * show in the output. */
                memset(key, '#', sizeof(key));
        }
}

START_TEST(same_bytes_as_direct_encoding) {
        char *got = NULL, *want = NULL;
        size_t gotlen = 0;
        FILE *f = open_memstream(&got, &gotlen);
        ck_assert_ptr_nonnull(f);
        char errstr[128];
        tt_rollup_writer *w =
            tt_rollup_writer_new(f, NULL, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(w);
        tt_buf direct;
        push_rows(w, &direct);
        ck_assert_int_eq(tt_rollup_writer_close(w), TT_ERR_OK);
        ck_assert_int_eq(fclose(f), 0);
        want = (char *)direct.data;
        ck_assert_uint_eq(gotlen, direct.len);
        ck_assert_int_eq(memcmp(got, want, gotlen), 0);
        free(got);
        tt_buf_free(&direct);
}
END_TEST

START_TEST(write_error_is_reported) {
        FILE *f = fopen("/dev/full", "wb");
        ck_assert_ptr_nonnull(f);
        setvbuf(f, NULL, _IONBF, 0); /* every fwrite reaches the device */
        char errstr[128], key[400];
        tt_rollup_writer *w =
            tt_rollup_writer_new(f, NULL, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(w);
        int err = TT_ERR_OK;
        int i;
        for (i = 0; i < NROWS && !err; i++) {
                tt_rollup r = row(i, key, sizeof(key));
                err = tt_rollup_writer_push(w, &r);
        }
        int cerr = tt_rollup_writer_close(w);
        /* Either a push saw the writer's error (and the rows stop there)
         * or close does; success is not an answer. */
        ck_assert(err == TT_ERR_IO || cerr == TT_ERR_IO);
        ck_assert_int_eq(cerr, TT_ERR_IO);
        fclose(f);
}
END_TEST

START_TEST(close_without_rows) {
        char *got = NULL;
        size_t gotlen = 0;
        FILE *f = open_memstream(&got, &gotlen);
        char errstr[128];
        tt_rollup_writer *w =
            tt_rollup_writer_new(f, NULL, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(w);
        ck_assert_int_eq(tt_rollup_writer_close(w), TT_ERR_OK);
        fclose(f);
        ck_assert_uint_eq(gotlen, 0);
        free(got);
        ck_assert_int_eq(tt_rollup_writer_close(NULL), TT_ERR_OK);
}
END_TEST

/* Pushes n rows made by make(i) through a writer of the given chunk size
 * and budget, and checks the file is byte for byte tt_json_rollup's. */
static void through_writer(size_t chunk, size_t budget, int n,
                           tt_rollup (*make)(int i, char *key, size_t size),
                           size_t keysize) {
        char *got = NULL;
        size_t gotlen = 0;
        FILE *f = open_memstream(&got, &gotlen);
        ck_assert_ptr_nonnull(f);
        char errstr[128];
        tt_rollup_writer *w = tt_rollup_writer_new_sized(
            f, NULL, chunk, budget, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(w);
        tt_buf direct;
        tt_buf_init(&direct, 1u << 30);
        char *key = malloc(keysize);
        ck_assert_ptr_nonnull(key);
        for (int i = 0; i < n; i++) {
                tt_rollup r = make(i, key, keysize);
                ck_assert_int_eq(tt_json_rollup(&direct, &r), TT_ERR_OK);
                ck_assert_int_eq(tt_rollup_writer_push(w, &r), TT_ERR_OK);
                memset(key, '#', keysize);
        }
        ck_assert_int_eq(tt_rollup_writer_close(w), TT_ERR_OK);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_uint_eq(gotlen, direct.len);
        ck_assert_int_eq(memcmp(got, direct.data, gotlen), 0);
        free(key);
        free(got);
        tt_buf_free(&direct);
}

/* Weeks of 5,000 rows (a new week, week_start and emitted_at each), a
 * context that flips back and forth within a chunk now and then, and a
 * 20 KiB key every 997 rows: more than a 4 KiB chunk holds. */
static tt_rollup week_row(int i, char *key, size_t keysize) {
        tt_rollup r = row(i, key, keysize);
        int week = i / 5000;
        snprintf(r.week, sizeof(r.week), "2026-W%02d", 1 + week);
        r.week_start_ms = 1767571200000 + (int64_t)week * 604800000;
        r.emitted_at_ms = 1796084427001 + week + (i % 100 == 7 ? 1 : 0);
        if (i % 997 == 0) {
                size_t len = 20000 + (size_t)i % 7;
                memset(key, 'a' + i % 26, len);
                r.key = (tt_str){key, len};
        }
        return r;
}

/* A pool of three 4 KiB chunks (~100 rows) against weeks of 5,000 rows:
 * the pushing thread waits on the writer time and again, and must neither
 * deadlock nor lose, reorder or mix up a row. */
START_TEST(budget_smaller_than_a_week) {
        through_writer(4096, 3 * 4096, 20000, week_row, 20100);
}
END_TEST

/* A budget under two chunks still runs (two chunks at least). */
START_TEST(budget_below_two_chunks) {
        through_writer(4096, 1, 3000, week_row, 20100);
}
END_TEST

/* What the compact form must carry exactly: keys and weeks of escapes and
 * stray bytes, a NULL key, an empty origin and a null one, extreme
 * integers, non-finite and negative-zero doubles, unknown enum values. */
static tt_rollup edge_row(int i, char *key, size_t keysize) {
        (void)keysize;
        tt_rollup r = row(i, key, keysize);
        static const char *const keys[] = {"a\"b\\c\n\x1f",
                                           "\x80\xff\xe2\x82\xac\xce", "",
                                           "\t\r\b\f/", "plain"};
        const char *k = keys[i % 5];
        size_t klen = strlen(k);
        memcpy(key, k, klen);
        r.key = (tt_str){key, klen};
        if (i % 7 == 3)
                r.key = (tt_str){NULL, 3};
        r.origin = i % 3 == 0   ? (tt_str){"", 0}
                   : i % 3 == 1 ? (tt_str){NULL, 0}
                                : (tt_str){"\"Z\\", 3};
        if (i % 4 == 0)
                memcpy(r.week,
                       "\"2026-W14\\\x01\xff\xce\xbb"
                       "67",
                       16); /* all 16 bytes, no NUL */
        static const int64_t big[] = {INT64_MIN, INT64_MAX, -1, 0,
                                      INT64_MIN + 1};
        r.tokens = big[i % 5];
        r.prompt_tokens = big[(i + 1) % 5];
        r.completion_tokens = big[(i + 2) % 5];
        r.requests = big[(i + 3) % 5];
        r.prev_tokens = big[(i + 4) % 5];
        r.week_start_ms = big[(i + 2) % 5];
        r.emitted_at_ms = big[(i + 3) % 5];
        static const double dbl[] = {
            NAN, INFINITY, -INFINITY, -0.0, 37.1324717627143, 100.0, 5e-324};
        r.has_growth = i % 2;
        r.wow_growth_pct = dbl[i % 7];
        r.share_pct = dbl[(i + 3) % 7];
        r.rank = i % 2 ? INT32_MIN : INT32_MAX;
        r.revision = -i;
        r.dimension = (tt_dim)(i % 6 - 1);
        r.status = (tt_status)(i % 5 == 4 ? 300 : i % 5 - 1);
        return r;
}

START_TEST(edge_values) {
        through_writer(4096, 3 * 4096, 2000, edge_row, 64);
        through_writer(1u << 18, 6u << 20, 2000, edge_row, 64);
}
END_TEST

/* A row over the writer's row limit (keys are bounded far below it) is
 * refused, and the writer goes on. */
START_TEST(huge_key_is_refused) {
        char *got = NULL;
        size_t gotlen = 0;
        FILE *f = open_memstream(&got, &gotlen);
        char errstr[128];
        tt_rollup_writer *w =
            tt_rollup_writer_new(f, NULL, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(w);
        size_t n = 1u << 20;
        char *key = malloc(n);
        ck_assert_ptr_nonnull(key);
        memset(key, 'x', n);
        tt_rollup r = row(1, key, 64);
        r.key = (tt_str){key, n};
        ck_assert_int_eq(tt_rollup_writer_push(w, &r), TT_ERR_LIMIT);
        r.key = (tt_str){key, 100000};
        ck_assert_int_eq(tt_rollup_writer_push(w, &r), TT_ERR_OK);
        ck_assert_int_eq(tt_rollup_writer_close(w), TT_ERR_OK);
        fclose(f);
        ck_assert_uint_gt(gotlen, 100000);
        free(key);
        free(got);
}
END_TEST

static char *slurp(const char *path, size_t *len) {
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        char *data = NULL;
        size_t cap = 0;
        *len = 0;
        for (;;) {
                if (*len == cap) {
                        cap = cap ? cap * 2 : 1u << 20;
                        data = realloc(data, cap);
                        ck_assert_ptr_nonnull(data);
                }
                size_t got = fread(data + *len, 1, cap - *len, f);
                if (!got)
                        break;
                *len += got;
        }
        fclose(f);
        return data;
}

/* Through an output folder's file with its early sync
 * (tt_outdir_writeback), as replay writes: ~16 MB, so the sync thread
 * starts (TT_WRITEBACK_STEP is 8 MiB) and has synced at least once when
 * the commit stopped it, and the committed file is byte for byte the
 * direct encoding. A run closed without its commit while the thread runs
 * leaves the old file as it was and no temporary. */
START_TEST(early_sync_through_outdir) {
        char dir[] = "/tmp/tt-unit-rw-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        char path[256];
        snprintf(path, sizeof(path), "%s/rollups.jsonl", dir);
        FILE *old = fopen(path, "wb");
        ck_assert_ptr_nonnull(old);
        fputs("old\n", old);
        fclose(old);
        static const char *const names[] = {"rollups.jsonl"};
        for (int commit = 0; commit < 2; commit++) {
                char errstr[256];
                tt_outdir *d =
                    tt_outdir_open(dir, names, 1, errstr, sizeof(errstr));
                ck_assert_msg(d != NULL, "%s", errstr);
                tt_writeback *wb = tt_outdir_writeback(d, 0);
                ck_assert_ptr_nonnull(wb);
                tt_rollup_writer *w = tt_rollup_writer_new(
                    tt_outdir_file(d, 0), wb, errstr, sizeof(errstr));
                ck_assert_ptr_nonnull(w);
                tt_buf direct;
                push_rows(w, &direct);
                ck_assert_int_eq(tt_rollup_writer_close(w), TT_ERR_OK);
                ck_assert_uint_gt(direct.len, 2 * TT_WRITEBACK_STEP);
                size_t len;
                char *got;
                if (commit) {
                        ck_assert_int_eq(
                            tt_outdir_commit(d, errstr, sizeof(errstr)), 0);
                        ck_assert_uint_ge(tt_writeback_syncs(wb), 1);
                        tt_outdir_close(d);
                        got = slurp(path, &len);
                        ck_assert_uint_eq(len, direct.len);
                        ck_assert_int_eq(memcmp(got, direct.data, len), 0);
                } else {
                        tt_outdir_close(d); /* stops the thread */
                        got = slurp(path, &len);
                        ck_assert_uint_eq(len, 4);
                        ck_assert_int_eq(memcmp(got, "old\n", 4), 0);
                }
                free(got);
                tt_buf_free(&direct);
                /* No temporary left either way. */
                DIR *dh = opendir(dir);
                ck_assert_ptr_nonnull(dh);
                int entries = 0;
                for (struct dirent *de; (de = readdir(dh));)
                        entries += de->d_name[0] != '.';
                closedir(dh);
                ck_assert_int_eq(entries, 1);
                dh = opendir(dir);
                for (struct dirent *de; (de = readdir(dh));)
                        ck_assert_msg(strncmp(de->d_name, ".rollups", 8),
                                      "temporary left: %s", de->d_name);
                closedir(dh);
        }
        unlink(path);
        rmdir(dir);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("rollup_writer");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, same_bytes_as_direct_encoding);
        tcase_add_test(tc, write_error_is_reported);
        tcase_add_test(tc, close_without_rows);
        tcase_add_test(tc, budget_smaller_than_a_week);
        tcase_add_test(tc, budget_below_two_chunks);
        tcase_add_test(tc, edge_values);
        tcase_add_test(tc, huge_key_is_refused);
        tcase_add_test(tc, early_sync_through_outdir);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(suite());
}
