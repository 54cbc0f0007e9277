/* tokentally gen: writes a synthetic scenario (core/gen.c) to a file or
 * standard output as an Avro Object Container File, JSON Lines, or gzipped
 * JSON Lines. The format comes from --format or the file extension; "-" is
 * JSON Lines on standard output unless --format avro says otherwise.
 * A progress line while stderr is a terminal and a one-line summary at the
 * end; one line and exit 2 for a bad option, 1 for I/O. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "tokentally/avro_event.h"
#include "tokentally/buf.h"
#include "tokentally/cli.h"
#include "tokentally/clock.h"
#include "tokentally/err.h"
#include "tokentally/gen.h"
#include "tokentally/gen_kafka.h"
#include "tokentally/json_event.h"
#include "tokentally/log.h"
#include "tokentally/ocf.h"
#include "tokentally/options.h"
#include "tokentally/schema_registry.h"
#include "tokentally/week.h"

#define FLUSH_BYTES (1u << 20)     /* JSON text is written in 1 MiB pieces */
#define STDIO_BUF_BYTES (1u << 20) /* stdio buffer under the OCF writer */
#define OCF_BLOCK_RECORDS 4096
#define AVRO_RECORD_MAX 4096  /* far above any generated record */
#define PROGRESS_EVERY 4096   /* records between two looks at the clock */
#define PROGRESS_SECONDS 0.25 /* at most four progress lines a second */

typedef enum out_kind { OUT_JSONL, OUT_JSONL_GZ, OUT_AVRO } out_kind;

typedef struct gen_out {
        out_kind kind;
        const char *path; /* for messages */
        FILE *f;          /* JSONL, Avro */
        gzFile gz;        /* JSONL_GZ */
        tt_ocf_writer *ocf;
        tt_buf text; /* pending JSON lines */
        int io_errno;
        /* Summary and progress. */
        uint64_t records;
        uint64_t text_bytes;       /* JSON text written (before gzip) */
        int64_t first_ms, span_ms; /* the scenario's weeks */
        int64_t newest_ms;         /* newest event time within them */
        bool progress;             /* stderr is a terminal */
        double t0, last_progress;
        uint8_t rec[AVRO_RECORD_MAX];
} gen_out;

static const char usage[] =
    "tokentally gen --scenario april-2026 [--scale S] [--seed N] "
    "[--invalid-rate R] [--format avro|jsonl] [--codec null|deflate|snappy] "
    "--out FILE|-";

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int flush_text(gen_out *o) {
        if (o->text.len == 0)
                return TT_ERR_OK;
        if (o->kind == OUT_JSONL_GZ) {
                if (gzwrite(o->gz, o->text.data, (unsigned)o->text.len) !=
                    (int)o->text.len) {
                        o->io_errno = errno;
                        return TT_ERR_IO;
                }
        } else if (fwrite(o->text.data, 1, o->text.len, o->f) != o->text.len) {
                o->io_errno = errno;
                return TT_ERR_IO;
        }
        o->text_bytes += o->text.len;
        tt_buf_reset(&o->text);
        return TT_ERR_OK;
}

static int end_line(gen_out *o) {
        int err = tt_buf_putc(&o->text, '\n');
        if (!err && o->text.len >= FLUSH_BYTES)
                err = flush_text(o);
        return err;
}

/* "\r   123456 records  2026-W07  23% of the weeks  1.2 s", overwritten
 * in place; only on a terminal, and only a few times a second. */
static void count_record(gen_out *o) {
        if (++o->records % PROGRESS_EVERY || !o->progress)
                return;
        double t = tt_mono_s();
        if (t - o->last_progress < PROGRESS_SECONDS)
                return;
        o->last_progress = t;
        char week[16] = "";
        if (o->newest_ms)
                tt_week_name(tt_week_of(o->newest_ms), week, sizeof(week));
        double pct = o->newest_ms
                         ? 100.0 * (double)(o->newest_ms - o->first_ms) /
                               (double)o->span_ms
                         : 0;
        fprintf(stderr, "\r%12llu records  %s  %3.0f%% of the weeks  %.1f s ",
                (unsigned long long)o->records, week, pct, t - o->t0);
        fflush(stderr);
}

static int on_event(void *opaque, const tt_event *ev) {
        gen_out *o = opaque;
        /* Invalid records may carry any time: only the scenario's weeks
         * say how far it has come. */
        if (ev->event_time_ms > o->newest_ms &&
            ev->event_time_ms < o->first_ms + o->span_ms &&
            ev->event_time_ms >= o->first_ms)
                o->newest_ms = ev->event_time_ms;
        count_record(o);
        if (o->kind == OUT_AVRO) {
                size_t n = tt_avro_encode_event(ev, o->rec, sizeof(o->rec));
                if (n == 0)
                        return TT_ERR_LIMIT;
                int err = tt_ocf_writer_append(o->ocf, o->rec, n);
                if (err == TT_ERR_IO)
                        o->io_errno = errno;
                return err;
        }
        int err = tt_json_encode_event(&o->text, ev);
        return err ? err : end_line(o);
}

static int on_raw(void *opaque, const uint8_t *p, size_t n) {
        gen_out *o = opaque;
        count_record(o);
        int err = tt_buf_append(&o->text, p, n);
        return err ? err : end_line(o);
}

/* Output kind from --format and the path; NULL or a reason. */
static const char *pick_kind(const char *format, const char *path,
                             out_kind *kind) {
        bool gz = ends_with(path, ".gz");
        if (format && !strcmp(format, "avro")) {
                if (gz)
                        return "Avro container files are compressed with "
                               "--codec, not gzip";
                *kind = OUT_AVRO;
                return NULL;
        }
        if (format) { /* jsonl */
                *kind = gz && strcmp(path, "-") ? OUT_JSONL_GZ : OUT_JSONL;
                return NULL;
        }
        if (!strcmp(path, "-") || ends_with(path, ".jsonl") ||
            ends_with(path, ".json") || ends_with(path, ".ndjson")) {
                *kind = OUT_JSONL;
                return NULL;
        }
        if (ends_with(path, ".jsonl.gz") || ends_with(path, ".json.gz") ||
            ends_with(path, ".ndjson.gz")) {
                *kind = OUT_JSONL_GZ;
                return NULL;
        }
        if (ends_with(path, ".avro")) {
                *kind = OUT_AVRO;
                return NULL;
        }
        return "cannot tell the format from the file name (.avro, .jsonl, "
               ".jsonl.gz); use --format avro|jsonl";
}

static tt_ocf_codec codec_of(const char *name) {
        if (!strcmp(name, "null"))
                return TT_OCF_NULL;
        if (!strcmp(name, "snappy"))
                return TT_OCF_SNAPPY;
        return TT_OCF_DEFLATE;
}

/* Opens the output; 0, or 1 with a message printed. */
static int open_out(gen_out *o, tt_ocf_codec codec) {
        bool std = !strcmp(o->path, "-");
        if (o->kind == OUT_JSONL_GZ) {
                /* Level 1: gen output is bulk test data, where speed matters
                 * more than the last 20% of size. */
                o->gz = gzopen(o->path, "wb1");
                if (!o->gz || gzbuffer(o->gz, STDIO_BUF_BYTES) != 0) {
                        fprintf(stderr, "tokentally gen: %s: %s\n", o->path,
                                errno ? strerror(errno) : "cannot open");
                        if (o->gz)
                                gzclose(o->gz);
                        o->gz = NULL;
                        return 1;
                }
                return 0;
        }
        o->f = std ? stdout : fopen(o->path, "wb");
        if (!o->f) {
                fprintf(stderr, "tokentally gen: %s: %s\n", o->path,
                        strerror(errno));
                return 1;
        }
        setvbuf(o->f, NULL, _IOFBF, STDIO_BUF_BYTES);
        if (o->kind == OUT_AVRO) {
                char errstr[256];
                o->ocf = tt_ocf_writer_new(o->f, tt_token_event_schema_json,
                                           codec, OCF_BLOCK_RECORDS, errstr,
                                           sizeof(errstr));
                if (!o->ocf) {
                        fprintf(stderr, "tokentally gen: %s: %s\n", o->path,
                                errstr);
                        return 1;
                }
        }
        return 0;
}

/* Flushes and closes; 0, or TT_ERR_IO. Safe on a half-opened output. */
static int close_out(gen_out *o, int err) {
        if (!err && o->kind != OUT_AVRO)
                err = flush_text(o);
        if (o->ocf) {
                int e = tt_ocf_writer_close(o->ocf);
                if (e == TT_ERR_IO && !o->io_errno)
                        o->io_errno = errno;
                if (!err)
                        err = e;
                o->ocf = NULL;
        }
        if (o->gz) {
                if (gzclose(o->gz) != Z_OK && !err)
                        err = TT_ERR_IO;
                o->gz = NULL;
        }
        if (o->f) {
                if (o->f == stdout) {
                        if (fflush(stdout) != 0 && !err) {
                                o->io_errno = errno;
                                err = TT_ERR_IO;
                        }
                } else if (fclose(o->f) != 0 && !err) {
                        o->io_errno = errno;
                        err = TT_ERR_IO;
                }
                o->f = NULL;
        }
        tt_buf_free(&o->text);
        return err;
}

/* "gen: 598727 records written to s.avro: 10 weeks (2026-W05..2026-W14),
 * 11493712 bytes, 0.9 s". Bytes: the file's size on disk (compressed ones
 * compressed); on standard output the JSON text written, or for Avro the
 * size of a regular file it was redirected to (unknown on a pipe). */
static void summary(const gen_out *o, const char *weeks) {
        struct stat st;
        bool std = !strcmp(o->path, "-");
        char bytes[64] = "size unknown (a pipe)";
        if (std && o->kind == OUT_JSONL)
                snprintf(bytes, sizeof(bytes), "%llu bytes",
                         (unsigned long long)o->text_bytes);
        else if (std ? !fstat(STDOUT_FILENO, &st) && S_ISREG(st.st_mode)
                     : !stat(o->path, &st))
                snprintf(bytes, sizeof(bytes), "%lld bytes",
                         (long long)st.st_size);
        fprintf(stderr, "gen: %llu records written to %s: %s, %s, %.1f s\n",
                (unsigned long long)o->records,
                std ? "standard output" : o->path, weeks, bytes,
                tt_mono_s() - o->t0);
}

int tt_cmd_gen(int argc, char **argv) {
        char errstr[512];
        bool help = false;
        tt_opts *opts = tt_opts_parse(TT_CMD_GEN, argc, argv, &help, errstr,
                                      sizeof(errstr));
        if (!opts) {
                fprintf(stderr, "tokentally gen: %s\n", errstr);
                return 2;
        }
        if (help) {
                tt_opts_help(stdout, TT_CMD_GEN, usage);
                tt_opts_destroy(opts);
                return 0;
        }
        int rc = 2;
        tt_log_set_level(
            (tt_log_level)tt_log_parse_level(tt_opts_str(opts, "log-level")));
        const char *path = tt_opts_str(opts, "out");
        const char *format = tt_opts_str(opts, "format");
        const char *why = NULL;
        out_kind kind = OUT_JSONL;
        bool to_kafka = tt_opts_given(opts, "brokers");
        if (format && strcmp(format, "avro") && strcmp(format, "jsonl"))
                why = "--format: gen writes avro or jsonl (json and table "
                      "are tail's)";
        else if (tt_opts_npos(opts) > 0)
                why = "unexpected argument (the output goes to --out FILE)";
        else if (to_kafka && path)
                why = "--out and --brokers exclude each other";
        else if (to_kafka)
                kind =
                    format && !strcmp(format, "jsonl") ? OUT_JSONL : OUT_AVRO;
        else if (!path)
                why = "--out FILE, --out - (standard output) or --brokers "
                      "HOST:PORT (the --input-topic) is required";
        else
                why = pick_kind(format, path, &kind);
        if (!why && kind != OUT_AVRO && tt_opts_given(opts, "codec"))
                why = "--codec applies to Avro output only";
        if (!why && !to_kafka && tt_opts_double(opts, "rate") > 0)
                why = "--rate applies to --brokers only";
        if (why) {
                fprintf(stderr, "tokentally gen: %s\n", why);
                goto done;
        }

        const char *scenario = tt_opts_str(opts, "scenario");
        tt_gen_conf conf = {
            .scenario = scenario ? scenario : "april-2026",
            .scale = tt_opts_double(opts, "scale"),
            .seed = (uint64_t)tt_opts_int(opts, "seed"),
            .invalid_rate = tt_opts_double(opts, "invalid-rate"),
            .text_output = kind != OUT_AVRO,
        };
        /* Bad values are option errors: find them before creating a file. */
        if (tt_gen_check(&conf, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally gen: %s\n", errstr);
                goto done;
        }

        /* "10 weeks (2026-W05..2026-W14)" for the summaries. */
        int32_t first_week = 0;
        int nweeks = 0;
        char weeks[64] = "", w0[16] = "", w1[16] = "";
        if (!tt_gen_weeks(conf.scenario, &first_week, &nweeks)) {
                tt_week_name(first_week, w0, sizeof(w0));
                tt_week_name(first_week + nweeks - 1, w1, sizeof(w1));
                snprintf(weeks, sizeof(weeks), "%d weeks (%s..%s)", nweeks, w0,
                         w1);
        }
        if (to_kafka) {
                size_t nprops;
                const char *const *props = tt_opts_list(opts, "X", &nprops);
                tt_gen_kafka_conf kc = {
                    .brokers = tt_opts_str(opts, "brokers"),
                    .topic = tt_opts_str(opts, "input-topic"),
                    .json = kind == OUT_JSONL,
                    .props = props,
                    .nprops = nprops,
                    .rate = tt_opts_double(opts, "rate"),
                    .connect_timeout_ms =
                        tt_opts_duration_ms(opts, "connect-timeout"),
                };
                /* --schema-registry: TokenEvent under <topic>-value. */
                const char *sr = tt_opts_str(opts, "schema-registry");
                if (sr && *sr && !kc.json) {
                        char subject[512];
                        snprintf(subject, sizeof(subject), "%s-value",
                                 kc.topic);
                        tt_registry *reg =
                            tt_registry_new(sr, errstr, sizeof(errstr));
                        int err =
                            reg ? tt_registry_register(
                                      reg, subject, tt_token_event_schema_json,
                                      &kc.schema_id, errstr, sizeof(errstr))
                                : TT_ERR_INVAL;
                        tt_registry_destroy(reg);
                        if (err) {
                                fprintf(stderr, "tokentally gen: %s\n", errstr);
                                rc = 1;
                                goto done;
                        }
                }
                uint64_t n;
                double t0 = tt_mono_s();
                if (tt_gen_to_kafka(&conf, &kc, &n, errstr, sizeof(errstr))) {
                        fprintf(stderr, "tokentally gen: %s\n", errstr);
                        rc = 1;
                        goto done;
                }
                /* Scripts read "gen: N records delivered" (bench/kafka.sh,
                 * it_kafka_compose.sh): keep that start. */
                fprintf(
                    stderr, "gen: %llu records delivered to %s: %s, %.1f s\n",
                    (unsigned long long)n, kc.topic, weeks, tt_mono_s() - t0);
                rc = 0;
                goto done;
        }

        gen_out out;
        memset(&out, 0, sizeof(out));
        out.kind = kind;
        out.path = path;
        out.first_ms = tt_week_start(first_week);
        out.span_ms = (int64_t)nweeks * TT_WEEK_MS;
        out.progress = nweeks > 0 && isatty(STDERR_FILENO);
        out.t0 = out.last_progress = tt_mono_s();
        tt_buf_init(&out.text, 2 * FLUSH_BYTES);
        if (open_out(&out, codec_of(tt_opts_str(opts, "codec")))) {
                close_out(&out, TT_ERR_IO);
                rc = 1;
                goto done;
        }
        static const tt_gen_sink sink = {on_event, on_raw};
        int err = tt_gen_run(&conf, &sink, &out, errstr, sizeof(errstr));
        int cerr = close_out(&out, err);
        if (out.progress && out.records >= PROGRESS_EVERY)
                fputc('\n', stderr); /* keep the last progress line */
        if (err || cerr) {
                fprintf(stderr, "tokentally gen: writing %s: %s\n",
                        strcmp(path, "-") ? path : "standard output",
                        out.io_errno ? strerror(out.io_errno)
                                     : tt_err2str(err ? err : cerr));
                rc = 1;
        } else {
                summary(&out, weeks);
                rc = 0;
        }
done:
        tt_opts_destroy(opts);
        return rc;
}
