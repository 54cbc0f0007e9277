/* File byte source: plain files read in odd chunk sizes across the internal
 * buffer, gzip (one member, several members, truncated, corrupt), positions
 * for progress, open errors with their reasons, and looking ahead (peek)
 * on files, gzip and a pipe that trickles its bytes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check_main.h"
#include "tokentally/input.h"

#define ERR 256

static char dir[64];

static void setup(void) {
        strcpy(dir, "/tmp/tt_input_XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
}

/* Deterministic bytes that compress somewhat but not trivially. */
static uint8_t *pattern(size_t n, uint32_t seed) {
        uint8_t *p = malloc(n);
        uint32_t x = seed;
        for (size_t k = 0; k < n; k++) {
                x = x * 1103515245u + 12345u;
                p[k] = (uint8_t)((x >> 16) % 37 + 'a');
        }
        return p;
}

static void write_file(const char *path, const void *p, size_t n) {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(p, 1, n, f), n);
        fclose(f);
}

/* One gzip member of p[0..n), appended to out at *len. */
static void gzip_member(const uint8_t *p, size_t n, uint8_t *out, size_t *len,
                        size_t cap) {
        z_stream zs = {0};
        ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                      Z_DEFAULT_STRATEGY),
                         Z_OK);
        zs.next_in = (Bytef *)p;
        zs.avail_in = (uInt)n;
        zs.next_out = out + *len;
        zs.avail_out = (uInt)(cap - *len);
        ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
        *len += zs.total_out;
        deflateEnd(&zs);
}

/* Reads everything with chunk-sized reads. Returns the byte count, or -1
 * with the reason in err after `got` bytes. */
static ssize_t read_all(tt_input *in, uint8_t *out, size_t cap, size_t chunk,
                        char *err, size_t *got) {
        size_t n = 0;
        for (;;) {
                size_t want = chunk < cap - n ? chunk : cap - n;
                ssize_t k = tt_input_read(in, out + n, want, err, ERR);
                if (k < 0) {
                        *got = n;
                        return -1;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
                if (n == cap) {
                        /* One more read must say end of input. */
                        uint8_t extra;
                        ck_assert_int_eq(tt_input_read(in, &extra, 1, err, ERR),
                                         0);
                        break;
                }
        }
        *got = n;
        return (ssize_t)n;
}

static const size_t chunks[] = {1, 7, 4096, 256u << 10, 1u << 20};

START_TEST(plain_chunks) {
        size_t n = (700u << 10) + 3;
        uint8_t *data = pattern(n, 1), *back = malloc(n);
        char path[128], err[ERR];
        snprintf(path, sizeof(path), "%s/plain.jsonl", dir);
        write_file(path, data, n);
        tt_input *in = tt_input_open(path, err, ERR);
        ck_assert_ptr_nonnull(in);
        ck_assert_str_eq(tt_input_name(in), path);
        ck_assert_int_eq(tt_input_size(in), (int64_t)n);
        /* Position counts what was handed out, not what was read ahead. */
        uint8_t first[10];
        ck_assert_int_eq(tt_input_read(in, first, 10, err, ERR), 10);
        ck_assert_int_eq(tt_input_pos(in), 10);
        memcpy(back, first, 10);
        size_t got;
        ck_assert_int_eq(read_all(in, back + 10, n - 10, chunks[_i], err, &got),
                         (ssize_t)(n - 10));
        ck_assert_mem_eq(back, data, n);
        ck_assert_int_eq(tt_input_pos(in), (int64_t)n);
        uint8_t extra;
        ck_assert_int_eq(tt_input_read(in, &extra, 1, err, ERR), 0);
        tt_input_close(in);
        free(data);
        free(back);
}
END_TEST

START_TEST(gzip_single_and_concatenated) {
        size_t na = (600u << 10) + 11, nb = 5000;
        uint8_t *a = pattern(na, 2), *b = pattern(nb, 3);
        size_t cap = 2 * (na + nb) + 1024, len = 0;
        uint8_t *gz = malloc(cap), *back = malloc(na + nb);
        gzip_member(a, na, gz, &len, cap);
        size_t len_a = len;
        gzip_member(b, nb, gz, &len, cap);
        char path[128], err[ERR];
        size_t got;

        snprintf(path, sizeof(path), "%s/one.jsonl.gz", dir);
        write_file(path, gz, len_a);
        tt_input *in = tt_input_open(path, err, ERR);
        ck_assert_ptr_nonnull(in);
        ck_assert_int_eq(tt_input_size(in), (int64_t)len_a);
        ck_assert_int_eq(read_all(in, back, na, chunks[_i], err, &got),
                         (ssize_t)na);
        ck_assert_mem_eq(back, a, na);
        ck_assert_int_eq(tt_input_pos(in), (int64_t)len_a);
        tt_input_close(in);

        /* cat one.gz two.gz: both members, in order. */
        snprintf(path, sizeof(path), "%s/two.jsonl.gz", dir);
        write_file(path, gz, len);
        in = tt_input_open(path, err, ERR);
        ck_assert_ptr_nonnull(in);
        ck_assert_int_eq(read_all(in, back, na + nb, chunks[_i], err, &got),
                         (ssize_t)(na + nb));
        ck_assert_mem_eq(back, a, na);
        ck_assert_mem_eq(back + na, b, nb);
        ck_assert_int_eq(tt_input_pos(in), (int64_t)len);
        tt_input_close(in);
        free(a);
        free(b);
        free(gz);
        free(back);
}
END_TEST

/* Damaged gzip files: what is decodable comes out first, then the error. */
static const struct {
        const char *what;
        const char *err_suffix;
} damage[] = {
    {"truncated", ": truncated gzip data (unexpected end of file)"},
    {"crc", ": corrupt gzip data: incorrect data check"},
    {"garbage", ": corrupt gzip data: incorrect header check"},
    {"header-only", ": truncated gzip data (unexpected end of file)"},
};

START_TEST(gzip_damaged) {
        size_t n = 300u << 10;
        uint8_t *data = pattern(n, 4), *back = malloc(n + 64);
        size_t cap = 2 * n + 1024, len = 0;
        uint8_t *gz = malloc(cap);
        gzip_member(data, n, gz, &len, cap);
        const char *what = damage[_i].what;
        if (strcmp(what, "truncated") == 0) {
                len -= 10;
        } else if (strcmp(what, "crc") == 0) {
                gz[len - 8] ^= 0x01; /* trailer: CRC-32, then ISIZE */
        } else if (strcmp(what, "garbage") == 0) {
                memcpy(gz + len, "not gzip", 8);
                len += 8;
        } else {
                len = 5;
        }
        char path[128], err[ERR], want[ERR];
        snprintf(path, sizeof(path), "%s/bad.gz", dir);
        write_file(path, gz, len);
        tt_input *in = tt_input_open(path, err, ERR);
        ck_assert_ptr_nonnull(in);
        size_t got;
        err[0] = '\0';
        ck_assert_int_eq(read_all(in, back, n + 64, 4096, err, &got), -1);
        snprintf(want, sizeof(want), "%s%s", path, damage[_i].err_suffix);
        ck_assert_str_eq(err, want);
        /* Everything before the damage was delivered intact. */
        ck_assert_uint_le(got, n);
        ck_assert_mem_eq(back, data, got);
        if (strcmp(what, "crc") == 0 || strcmp(what, "garbage") == 0)
                ck_assert_uint_eq(got, n);
        /* The error sticks. */
        ck_assert_int_eq(tt_input_read(in, back, 16, err, ERR), -1);
        ck_assert_str_eq(err, want);
        tt_input_close(in);
        free(data);
        free(back);
        free(gz);
}
END_TEST

START_TEST(tiny_files) {
        char path[128], err[ERR];
        uint8_t buf[8];
        snprintf(path, sizeof(path), "%s/empty", dir);
        write_file(path, "", 0);
        tt_input *in = tt_input_open(path, err, ERR);
        ck_assert_ptr_nonnull(in);
        ck_assert_int_eq(tt_input_read(in, buf, sizeof(buf), err, ERR), 0);
        ck_assert_int_eq(tt_input_size(in), 0);
        ck_assert_int_eq(tt_input_pos(in), 0);
        tt_input_close(in);
        /* A lone 0x1f is not gzip. */
        snprintf(path, sizeof(path), "%s/one", dir);
        write_file(path, "\x1f", 1);
        in = tt_input_open(path, err, ERR);
        ck_assert_ptr_nonnull(in);
        ck_assert_int_eq(tt_input_read(in, buf, sizeof(buf), err, ERR), 1);
        ck_assert_uint_eq(buf[0], 0x1f);
        ck_assert_int_eq(tt_input_read(in, buf, sizeof(buf), err, ERR), 0);
        tt_input_close(in);
}
END_TEST

/* Peeked bytes come again from the reads that follow, whatever the mix of
 * peeks and reads; _i: 0 plain file, 1 gzip file, 2 a pipe on stdin fed
 * one byte at a time (replay sniffs OCF on stdin this way). */
START_TEST(peek_then_read) {
        size_t n = 5000;
        uint8_t *data = pattern(n, 3), *back = malloc(n);
        memcpy(data, "Obj\x01", 4);
        char path[128], err[ERR];
        pid_t child = -1;
        if (_i == 2) {
                int fds[2];
                ck_assert_int_eq(pipe(fds), 0);
                child = fork();
                ck_assert_int_ge(child, 0);
                if (child == 0) {
                        close(fds[0]);
                        for (size_t k = 0; k < n; k++) {
                                if (write(fds[1], data + k, 1) != 1)
                                        _exit(1);
                                if (k < 8)
                                        usleep(2000);
                        }
                        _exit(0);
                }
                close(fds[1]);
                ck_assert_int_eq(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
                close(fds[0]);
                snprintf(path, sizeof(path), "-");
        } else if (_i == 1) {
                size_t cap = n + 1024, len = 0;
                uint8_t *gz = malloc(cap);
                gzip_member(data, n, gz, &len, cap);
                snprintf(path, sizeof(path), "%s/peek.gz", dir);
                write_file(path, gz, len);
                free(gz);
        } else {
                snprintf(path, sizeof(path), "%s/peek", dir);
                write_file(path, data, n);
        }
        tt_input *in = tt_input_open(path, err, ERR);
        ck_assert_ptr_nonnull(in);
        uint8_t look[TT_INPUT_PEEK_MAX + 8];
        ck_assert_int_eq(tt_input_peek(in, look, 4, err, ERR), 4);
        ck_assert_mem_eq(look, "Obj\x01", 4);
        ck_assert_int_eq(tt_input_peek(in, look, 2, err, ERR), 2);
        ck_assert_mem_eq(look, data, 2);
        ck_assert_int_eq(tt_input_read(in, back, 3, err, ERR), 3);
        /* A longer look than before, starting after what was read; more
         * than TT_INPUT_PEEK_MAX is cut to it. */
        ck_assert_int_eq(tt_input_peek(in, look, sizeof(look), err, ERR),
                         TT_INPUT_PEEK_MAX);
        ck_assert_mem_eq(look, data + 3, TT_INPUT_PEEK_MAX);
        size_t got;
        ck_assert_int_eq(read_all(in, back + 3, n - 3, 7, err, &got),
                         (ssize_t)(n - 3));
        ck_assert_mem_eq(back, data, n);
        /* At the end a peek finds nothing. */
        ck_assert_int_eq(tt_input_peek(in, look, 4, err, ERR), 0);
        tt_input_close(in);
        if (child > 0) {
                int status;
                ck_assert_int_eq(waitpid(child, &status, 0), child);
                ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        free(data);
        free(back);
}
END_TEST

START_TEST(open_errors) {
        char err[ERR], path[128], want[ERR];
        snprintf(path, sizeof(path), "%s/missing.jsonl", dir);
        ck_assert_ptr_null(tt_input_open(path, err, ERR));
        snprintf(want, sizeof(want),
                 "cannot open %s: No such file or directory", path);
        ck_assert_str_eq(err, want);
        ck_assert_ptr_null(tt_input_open(dir, err, ERR));
        snprintf(want, sizeof(want), "cannot read %s: Is a directory", dir);
        ck_assert_str_eq(err, want);
        tt_input_close(NULL);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("input");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_loop_test(tc, plain_chunks, 0,
                            sizeof(chunks) / sizeof(chunks[0]));
        tcase_add_loop_test(tc, gzip_single_and_concatenated, 0,
                            sizeof(chunks) / sizeof(chunks[0]));
        tcase_add_loop_test(tc, gzip_damaged, 0,
                            sizeof(damage) / sizeof(damage[0]));
        tcase_add_test(tc, tiny_files);
        tcase_add_test(tc, open_errors);
        tcase_add_loop_test(tc, peek_then_read, 0, 3);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(suite());
}
