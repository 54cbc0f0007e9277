/* The rollups' writer thread: what it writes is byte for byte what
 * tt_json_rollup writes for the same rows in the same order, across many
 * chunk handovers (rows with long keys, null and set origins and growth),
 * and a failing file turns into TT_ERR_IO at a later push or at close,
 * never into a lost row reported as success. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/err.h"
#include "tokentally/json_out.h"
#include "tokentally/rollup_writer.h"

#define NROWS                                                                  \
        50000 /* ~16 MB of JSON: many 1 MiB chunks through a pool of 4         \
               */

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

START_TEST(same_bytes_as_direct_encoding) {
        char *got = NULL, *want = NULL;
        size_t gotlen = 0;
        FILE *f = open_memstream(&got, &gotlen);
        ck_assert_ptr_nonnull(f);
        char errstr[128];
        tt_rollup_writer *w = tt_rollup_writer_new(f, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(w);
        tt_buf direct;
        tt_buf_init(&direct, 1u << 30);
        char key[400];
        for (int i = 0; i < NROWS; i++) {
                tt_rollup r = row(i, key, sizeof(key));
                ck_assert_int_eq(tt_json_rollup(&direct, &r), TT_ERR_OK);
                ck_assert_int_eq(tt_rollup_writer_push(w, &r), TT_ERR_OK);
                /* The writer copied the key: scribbling on it now must not
                 * show in the output. */
                memset(key, '#', sizeof(key));
        }
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
        tt_rollup_writer *w = tt_rollup_writer_new(f, errstr, sizeof(errstr));
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
        tt_rollup_writer *w = tt_rollup_writer_new(f, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(w);
        ck_assert_int_eq(tt_rollup_writer_close(w), TT_ERR_OK);
        fclose(f);
        ck_assert_uint_eq(gotlen, 0);
        free(got);
        ck_assert_int_eq(tt_rollup_writer_close(NULL), TT_ERR_OK);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("rollup_writer");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, same_bytes_as_direct_encoding);
        tcase_add_test(tc, write_error_is_reported);
        tcase_add_test(tc, close_without_rows);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(suite());
}
