/* Replay of JSON Lines files that are too long or broken: an oversize line
 * is one dead letter at its true line index and later offsets stay exact
 * (before: a 100 MB line became two dead letters, 64 MiB + 36 MiB, and
 * every later offset was one too high); a truncated or corrupt .jsonl.gz
 * counts every whole line before the damage and dead-letters the rest
 * once, exit 0 (before: exit 1, nothing counted, nothing dead-lettered). */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check_main.h"
#include "recorder.h"
#include "tokentally/engine.h"
#include "tokentally/err.h"
#include "tokentally/replay.h"

#define W14 INT64_C(1774828800000)

typedef struct dl {
        tt_reason reason;
        int64_t offset;
        size_t len;
        char detail[256];
} dl;

typedef struct dls {
        dl v[16];
        int n;
} dls;

static int on_dead(void *opaque, tt_reason reason, const char *detail,
                   const char *source, int64_t offset, const uint8_t *payload,
                   size_t len) {
        dls *d = opaque;
        (void)source;
        (void)payload;
        ck_assert_int_lt(d->n, 16);
        dl *x = &d->v[d->n++];
        x->reason = reason;
        x->offset = offset;
        x->len = len;
        snprintf(x->detail, sizeof(x->detail), "%s", detail);
        return 0;
}

static int64_t fixed_clock(void *opaque) {
        (void)opaque;
        return W14 + 30 * INT64_C(86400000);
}

/* Replays path with max_record_bytes; the stats, dead letters in d. */
static int replay(const char *path, size_t max_record, dls *d,
                  tt_replay_stats *st, char *err, size_t errsize) {
        tt_origin_map *map = default_origins();
        tt_engine_conf c;
        tt_engine_conf_defaults(&c);
        c.origins = map;
        c.max_future_ms = -1;
        recorder rc = {0};
        tt_engine *e = tt_engine_new(&c, &recorder_sink, &rc, err, errsize);
        ck_assert_ptr_nonnull(e);
        const char *files[] = {path};
        tt_replay_conf rcf = {.files = files,
                              .nfiles = 1,
                              .format = TT_FMT_JSONL,
                              .workers = 2,
                              .engine = e,
                              .dead_letter = on_dead,
                              .opaque = d,
                              .max_record_bytes = max_record,
                              .clock = fixed_clock};
        int r = tt_replay_run(&rcf, st, err, errsize);
        tt_engine_destroy(e);
        recorder_free(&rc);
        tt_origin_map_destroy(map);
        return r;
}

static void put_event(FILE *f, int i) {
        fprintf(
            f,
            "{\"request_id\":\"r%d\",\"event_time\":%lld,\"model\":"
            "\"deepseek/x\",\"prompt_tokens\":%d,\"completion_tokens\":1}\n",
            i, (long long)(W14 + i), i);
}

/* A line of n bytes that is valid JSON whatever its length (a long
 * ignored field), so only its length can make it a dead letter. */
static void put_long(FILE *f, size_t n) {
        static const char head[] =
            "{\"request_id\":\"big\",\"event_time\":1774828800000,\"model\":"
            "\"a/b\",\"prompt_tokens\":1,\"completion_tokens\":1,\"pad\":\"";
        fputs(head, f);
        for (size_t i = sizeof(head) - 1; i + 2 < n; i++)
                fputc('x', f);
        fputs("\"}\n", f);
}

static const struct {
        size_t max_record;
        size_t long_len; /* the long line's length */
        size_t before;   /* short lines before it (it may start mid-chunk) */
} long_cases[] = {
    /* The report: a 100 MB line with the largest cap. */
    {TT_REPLAY_RECORD_MAX, 100u << 20, 3},
    /* The default cap, a line over several reads and chunks. */
    {0, 3u << 20, 0},
    /* A line inside a chunk, after other lines. */
    {4096, 200000, 50},
    /* Exactly at the cap: decoded (and accepted). */
    {4096, 4096, 1},
};

START_TEST(test_long_line) {
        char path[] = "/tmp/tt_replay_long_XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        FILE *f = fdopen(fd, "w");
        size_t before = long_cases[_i].before;
        int i = 0;
        for (; i < (int)before; i++)
                put_event(f, i);
        put_long(f, long_cases[_i].long_len);
        fputs("{bad\n", f);
        fputs("\n", f); /* blank: skipped, but counted as a line */
        for (int k = 0; k < 3; k++)
                put_event(f, 1000 + k);
        fputs("[]\n", f);
        fclose(f);
        dls d = {0};
        tt_replay_stats st;
        char err[256];
        ck_assert_int_eq(
            replay(path, long_cases[_i].max_record, &d, &st, err, sizeof(err)),
            0);
        unlink(path);
        size_t max = long_cases[_i].max_record ? long_cases[_i].max_record
                                               : TT_REPLAY_RECORD_DEFAULT;
        bool too_long = long_cases[_i].long_len - 1 > max; /* without \n */
        int k = 0;
        if (too_long) {
                ck_assert_int_eq(d.v[k].reason, TT_REASON_MALFORMED);
                ck_assert_int_eq(d.v[k].offset, (int64_t)before);
                ck_assert_uint_eq(d.v[k].len, max);
                ck_assert_ptr_nonnull(
                    strstr(d.v[k].detail, "max-record-bytes"));
                k++;
        }
        /* The lines after it keep their true indexes. */
        ck_assert_int_eq(d.v[k].offset, (int64_t)before + 1);
        ck_assert_int_eq(d.v[k + 1].offset, (int64_t)before + 6);
        ck_assert_int_eq(d.n, k + 2);
        ck_assert_uint_eq(st.accepted, before + 3 + !too_long);
        ck_assert_uint_eq(st.records, before + 6);
}
END_TEST

/* n events gzip-compressed to path; the compressed size after the first
 * flush_at lines (a full flush there, so that exactly those lines can be
 * read back from a file cut at that size). */
static long write_gz(const char *path, int n, int flush_at) {
        gzFile g = gzopen(path, "wb");
        ck_assert_ptr_nonnull(g);
        long at = -1;
        for (int i = 0; i < n; i++) {
                char line[256];
                int len =
                    snprintf(line, sizeof(line),
                             "{\"request_id\":\"r%d\",\"event_time\":%lld,"
                             "\"model\":\"qwen/q\",\"prompt_tokens\":%d,"
                             "\"completion_tokens\":2}\n",
                             i, (long long)(W14 + i), i);
                ck_assert_int_eq(gzwrite(g, line, (unsigned)len), len);
                if (i + 1 == flush_at) {
                        ck_assert_int_eq(gzflush(g, Z_FULL_FLUSH), Z_OK);
                        at = (long)gzoffset(g);
                }
        }
        gzclose(g);
        return at;
}

/* Cut at the flush point, or garbage from it on (a bad block header):
 * either way the 1500 lines before it count and the rest is one dead
 * letter with zlib's reason. */
static const struct {
        bool corrupt;
        const char *detail;
} damaged[] = {
    {false, "truncated gzip data"},
    {true, "corrupt gzip data"},
};

START_TEST(test_damaged_gzip) {
        char path[] = "/tmp/tt_replay_gz_XXXXXX.jsonl.gz";
        int fd = mkstemps(path, 9);
        ck_assert_int_ge(fd, 0);
        close(fd);
        long at = write_gz(path, 2000, 1500);
        ck_assert_int_gt(at, 0);
        if (damaged[_i].corrupt) {
                FILE *f = fopen(path, "r+b");
                ck_assert_ptr_nonnull(f);
                fseek(f, at, SEEK_SET);
                for (int i = 0; i < 64; i++)
                        fputc(0xff, f);
                fclose(f);
        } else {
                ck_assert_int_eq(truncate(path, at), 0);
        }
        dls d = {0};
        tt_replay_stats st;
        char err[256];
        ck_assert_msg(replay(path, 0, &d, &st, err, sizeof(err)) == 0, "%s",
                      err);
        unlink(path);
        ck_assert_uint_eq(st.accepted, 1500);
        ck_assert_int_eq(d.n, 1);
        ck_assert_int_eq(d.v[0].reason, TT_REASON_MALFORMED);
        ck_assert_int_eq(d.v[0].offset, 1500);
        ck_assert_uint_eq(d.v[0].len, 0);
        ck_assert_msg(strstr(d.v[0].detail, damaged[_i].detail) &&
                          strstr(d.v[0].detail, "rest of the file"),
                      "%s", d.v[0].detail);
}
END_TEST

int main(void) {
        Suite *s = suite_create("replay");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, test_long_line, 0,
                            sizeof(long_cases) / sizeof(long_cases[0]));
        tcase_add_loop_test(tc, test_damaged_gzip, 0,
                            sizeof(damaged) / sizeof(damaged[0]));
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
