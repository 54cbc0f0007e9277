/* `tokentally replay`: event files through the engine into JSON Lines
 * files (SPEC §8). Options come from the shared table; the engine settings
 * mean the same as in `run`. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokentally/cli.h"
#include "tokentally/engine.h"
#include "tokentally/err.h"
#include "tokentally/json_out.h"
#include "tokentally/kafka_out.h"
#include "tokentally/log.h"
#include "tokentally/options.h"
#include "tokentally/outdir.h"
#include "tokentally/replay.h"
#include "tokentally/rollup_writer.h"
#include "tokentally/setup.h"

#define FLUSH_AT (1u << 20)

enum { OUT_ROLLUPS, OUT_STREAKS, OUT_DEAD, NOUT };
static const char *const out_names[NOUT] = {"rollups.jsonl", "streaks.jsonl",
                                            "dead-letters.jsonl"};

typedef struct out_file {
        FILE *f; /* the temporary of tt_outdir */
        tt_buf buf;
        int io_errno;     /* of the first failed write, 0 if none */
        tt_writeback *wb; /* the file's early sync */
        const char *path;
} out_file;

typedef struct replay_out {
        tt_outdir *dir;
        out_file file[NOUT];
        tt_rollup_writer *rw; /* rollups.jsonl's writer thread */
        tt_kafka_out *kafka;  /* --brokers: the topics instead of files */
        /* Dead letters by reason, and the first one, so that a run whose
         * every record was dead can say why (cmd_replay's thread only). */
        uint64_t dead_by[TT_REASON__COUNT];
        char first_dead[320];
} replay_out;

static int out_flush(out_file *o) {
        if (o->buf.len &&
            fwrite(o->buf.data, 1, o->buf.len, o->f) != o->buf.len) {
                if (!o->io_errno)
                        o->io_errno = errno ? errno : EIO;
                return TT_ERR_IO;
        }
        tt_writeback_wrote(o->wb, o->f, o->buf.len);
        tt_buf_reset(&o->buf);
        return TT_ERR_OK;
}

static int after_write(out_file *o, int err) {
        if (!err && o->buf.len >= FLUSH_AT)
                err = out_flush(o);
        return err;
}

static int sink_rollup(void *opaque, const tt_rollup *r) {
        replay_out *ro = opaque;
        if (ro->kafka)
                return tt_kafka_out_rollup(ro->kafka, r);
        return tt_rollup_writer_push(ro->rw, r);
}

static int sink_streak(void *opaque, const tt_streak_change *s) {
        replay_out *ro = opaque;
        if (ro->kafka)
                return tt_kafka_out_streak(ro->kafka, s);
        out_file *o = &ro->file[OUT_STREAKS];
        return after_write(o, tt_json_streak(&o->buf, s));
}

static int sink_dead(void *opaque, tt_reason reason, const char *detail,
                     const char *source, int64_t offset, const uint8_t *payload,
                     size_t len) {
        replay_out *ro = opaque;
        if ((unsigned)reason < TT_REASON__COUNT)
                ro->dead_by[reason]++;
        if (!ro->first_dead[0])
                snprintf(ro->first_dead, sizeof(ro->first_dead),
                         "%s record %lld: %s: %s", source, (long long)offset,
                         tt_reason_str(reason), detail);
        /* On Kafka a file has no partition: -1, and the record index as
         * the offset. */
        if (ro->kafka)
                return tt_kafka_out_dead_letter(ro->kafka, reason, detail,
                                                source, -1, offset, NULL, 0,
                                                payload, len);
        out_file *o = &ro->file[OUT_DEAD];
        return after_write(
            o, tt_json_dead_letter(&o->buf, tt_reason_str(reason), detail,
                                   source, offset, payload, len));
}

/* "malformed 700, bad_model 25": the reasons of the dead letters, most
 * frequent first. */
static void reasons_text(const replay_out *ro, char *out, size_t size) {
        bool used[TT_REASON__COUNT] = {false};
        size_t len = 0;
        out[0] = '\0';
        for (;;) {
                int best = -1;
                for (int r = 0; r < TT_REASON__COUNT; r++)
                        if (!used[r] && ro->dead_by[r] &&
                            (best < 0 || ro->dead_by[r] > ro->dead_by[best]))
                                best = r;
                if (best < 0 || len >= size)
                        return;
                used[best] = true;
                int k = snprintf(out + len, size - len, "%s%s %llu",
                                 len ? ", " : "", tt_reason_str(best),
                                 (unsigned long long)ro->dead_by[best]);
                if (k < 0)
                        return;
                len += (size_t)k;
        }
}

/* What the files were read as, for the all-dead warning. */
static void formats_text(const tt_replay_stats *st, char *out, size_t size) {
        if (!st->files_ocf)
                snprintf(out, size, "JSON Lines");
        else if (!st->files_jsonl)
                snprintf(out, size, "Avro OCF");
        else
                snprintf(out, size,
                         "Avro OCF (%u files) and JSON Lines (%u files)",
                         st->files_ocf, st->files_jsonl);
}

static void progress(void *opaque, const tt_replay_progress *p) {
        (void)opaque;
        double rate = p->seconds > 0 ? (double)p->events / p->seconds : 0;
        if (p->bytes_total > 0)
                fprintf(stderr,
                        "\r%12llu events  %8.2f M events/s  %5.1f%% read  "
                        "%llu dead letters ",
                        (unsigned long long)p->events, rate / 1e6,
                        100.0 * (double)p->bytes_read / (double)p->bytes_total,
                        (unsigned long long)p->dead_letters);
        else
                fprintf(stderr,
                        "\r%12llu events  %8.2f M events/s  %llu dead "
                        "letters ",
                        (unsigned long long)p->events, rate / 1e6,
                        (unsigned long long)p->dead_letters);
        fflush(stderr);
}

static const char usage[] =
    "tokentally replay --out DIR [options] FILE...  (FILE '-' = stdin)";

int tt_cmd_replay(int argc, char **argv) {
        char errstr[512];
        bool help;
        tt_opts *o = tt_opts_parse(TT_CMD_REPLAY, argc, argv, &help, errstr,
                                   sizeof(errstr));
        if (!o) {
                fprintf(stderr, "tokentally replay: %s\n", errstr);
                return 2;
        }
        if (help) {
                tt_opts_help(stdout, TT_CMD_REPLAY, usage);
                tt_opts_destroy(o);
                return 0;
        }
        int rc = 2; /* usage errors until the options are checked */
        tt_log_set_level(
            (tt_log_level)tt_log_parse_level(tt_opts_str(o, "log-level")));
        tt_setup su;
        memset(&su, 0, sizeof(su));
        replay_out ro;
        memset(&ro, 0, sizeof(ro));
        tt_engine *e = NULL;
        const char *dir = tt_opts_str(o, "out");
        bool kafka = tt_opts_given(o, "brokers");
        if ((!dir && !kafka) || tt_opts_npos(o) == 0) {
                fprintf(stderr, "tokentally replay: --out DIR (or --brokers) "
                                "and at least one FILE are required (see "
                                "--help)\n");
                goto out;
        }
        if (dir && kafka) {
                /* Silently honouring one of them (it used to be Kafka) left
                 * the other's reader looking at stale files. */
                const char *eb = getenv("TOKENTALLY_BROKERS");
                const char *eo = getenv("TOKENTALLY_OUT");
                fprintf(stderr,
                        "tokentally replay: --out and --brokers exclude each "
                        "other: replay writes to files in DIR or to Kafka "
                        "topics, not both (run it twice for both)%s%s\n",
                        eb && *eb ? "; TOKENTALLY_BROKERS is set in the "
                                    "environment"
                                  : "",
                        eo && *eo ? "; TOKENTALLY_OUT is set in the "
                                    "environment"
                                  : "");
                goto out;
        }
        const char *files[1024];
        size_t nfiles = tt_opts_npos(o);
        if (nfiles > 1024) {
                fprintf(stderr, "tokentally replay: at most 1024 files\n");
                goto out;
        }
        for (size_t i = 0; i < nfiles; i++)
                files[i] = tt_opts_pos(o, i);
        tt_file_format fmt = TT_FMT_AUTO;
        const char *inf = tt_opts_str(o, "input-format");
        if (inf && (!strcmp(inf, "avro") || !strcmp(inf, "ocf")))
                fmt = TT_FMT_OCF;
        else if (inf && (!strcmp(inf, "json") || !strcmp(inf, "jsonl")))
                fmt = TT_FMT_JSONL;
        else if (inf) {
                fprintf(stderr,
                        "tokentally replay: --input-format %s is for "
                        "single Kafka messages; files are avro "
                        "(OCF) or json (JSON Lines)\n",
                        inf);
                goto out;
        }
        if (tt_setup_engine(&su, o, TT_CMD_REPLAY, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally replay: %s\n", errstr);
                goto out;
        }
        su.conf.max_future_ms = -1; /* no wall clock in replay (SPEC §3) */
        su.conf.idle_timeout_ms = 0;
        rc = 1; /* from here on, failures are the run's, not the options' */
        if (kafka) {
                size_t nprops;
                const char *const *props = tt_opts_list(o, "X", &nprops);
                tt_kafka_out_conf oc = {
                    .brokers = tt_opts_str(o, "brokers"),
                    .rollups_topic = tt_opts_str(o, "rollups-topic"),
                    .streaks_topic = tt_opts_str(o, "streaks-topic"),
                    .dlq_topic = tt_opts_str(o, "dlq-topic"),
                    .json = !strcmp(tt_opts_str(o, "output-format"), "json"),
                    .props = props,
                    .nprops = nprops,
                };
                ro.kafka = tt_kafka_out_new(&oc, errstr, sizeof(errstr));
                if (!ro.kafka) {
                        fprintf(stderr, "tokentally replay: %s\n", errstr);
                        goto out;
                }
                if (tt_kafka_out_reach(
                        ro.kafka, oc.brokers,
                        tt_opts_duration_ms(o, "connect-timeout"), NULL, errstr,
                        sizeof(errstr))) {
                        fprintf(stderr, "tokentally replay: %s\n", errstr);
                        goto out;
                }
        } else {
                /* Temporaries, renamed over the old outputs only at the end
                 * of a run that succeeded. */
                ro.dir = tt_outdir_open(dir, out_names, NOUT, errstr,
                                        sizeof(errstr));
                if (!ro.dir) {
                        fprintf(stderr, "tokentally replay: %s\n", errstr);
                        goto out;
                }
                for (int i = 0; i < NOUT; i++) {
                        ro.file[i].f = tt_outdir_file(ro.dir, (size_t)i);
                        ro.file[i].path = tt_outdir_path(ro.dir, (size_t)i);
                        ro.file[i].wb = tt_outdir_writeback(ro.dir, (size_t)i);
                        tt_buf_init(&ro.file[i].buf, 256u << 20);
                }
                ro.rw = tt_rollup_writer_new(ro.file[OUT_ROLLUPS].f,
                                             ro.file[OUT_ROLLUPS].wb, errstr,
                                             sizeof(errstr));
                if (!ro.rw) {
                        fprintf(stderr, "tokentally replay: %s\n", errstr);
                        goto out;
                }
        }
        static const tt_sink sink = {sink_rollup, sink_streak};
        e = tt_engine_new(&su.conf, &sink, &ro, errstr, sizeof(errstr));
        if (!e) {
                fprintf(stderr, "tokentally replay: %s\n", errstr);
                goto out;
        }
        tt_replay_conf rc_conf = {
            .files = files,
            .nfiles = nfiles,
            .format = fmt,
            .workers = su.workers,
            .engine = e,
            .dead_letter = sink_dead,
            .progress = isatty(2) ? progress : NULL,
            .opaque = &ro,
            .emit_provisional = tt_opts_flag(o, "emit-provisional"),
            .emit_interval_ms = tt_opts_duration_ms(o, "emit-interval"),
            .max_record_bytes = (size_t)tt_opts_int(o, "max-record-bytes"),
        };
        tt_replay_stats st;
        int err = tt_replay_run(&rc_conf, &st, errstr, sizeof(errstr));
        if (rc_conf.progress)
                fputc('\n', stderr);
        /* The rows queued for the writer thread reach the file first. */
        if (ro.rw) {
                int werr = tt_rollup_writer_close(ro.rw);
                ro.rw = NULL;
                if (werr == TT_ERR_IO)
                        ro.file[OUT_ROLLUPS].io_errno = errno ? errno : EIO;
                else if (werr && !err)
                        snprintf(errstr, sizeof(errstr), "writing %s: %s",
                                 ro.file[OUT_ROLLUPS].path, tt_err2str(werr));
                if (werr && !err)
                        err = werr;
        }
        for (int i = 0; i < NOUT && !err && ro.dir; i++)
                err = out_flush(&ro.file[i]);
        /* A write error says which file and why, not the engine's "I/O
         * error" it surfaced as. */
        for (int i = 0; i < NOUT && err; i++)
                if (ro.file[i].io_errno) {
                        snprintf(errstr, sizeof(errstr), "writing %s: %s",
                                 ro.file[i].path,
                                 strerror(ro.file[i].io_errno));
                        break;
                }
        if (!err && ro.kafka &&
            (err = tt_kafka_out_flush(ro.kafka, 60000, errstr, sizeof(errstr))))
                snprintf(errstr + strlen(errstr),
                         sizeof(errstr) - strlen(errstr),
                         " (delivering to Kafka)");
        if (err) {
                fprintf(stderr, "tokentally replay: %s%s%s%s\n", errstr,
                        ro.dir ? "; nothing in " : "", ro.dir ? dir : "",
                        ro.dir ? " was replaced" : "");
                goto out;
        }
        tt_engine_stats es;
        tt_engine_get_stats(e, &es);
        fprintf(stderr,
                "replay: %llu events, %llu accepted, %llu dead letters, "
                "%llu weeks closed, %llu rollups (%llu final, %llu revised, "
                "%llu provisional), %llu streak changes, %.2f s\n",
                (unsigned long long)st.records, (unsigned long long)st.accepted,
                (unsigned long long)st.dead_letters,
                (unsigned long long)es.weeks_closed,
                (unsigned long long)(es.rows[0] + es.rows[1] + es.rows[2]),
                (unsigned long long)es.rows[TT_STATUS_FINAL],
                (unsigned long long)es.rows[TT_STATUS_REVISED],
                (unsigned long long)es.rows[TT_STATUS_PROVISIONAL],
                (unsigned long long)es.streaks, st.seconds);
        if (es.key_limit_events)
                fprintf(stderr,
                        "replay: WARNING: --max-keys %u reached: %llu valid "
                        "events of models past it were NOT counted (dead "
                        "letters key_limit)\n",
                        (unsigned)es.max_keys,
                        (unsigned long long)es.key_limit_events);
        /* Not one record counted out of many read is almost always the
         * wrong file or format, not a history that is all bad: fail, so a
         * script notices, and keep the earlier results. No record at all
         * (an empty file) is a valid, empty history. */
        bool all_dead = st.records > 0 && st.accepted == 0;
        if (all_dead) {
                char reasons[256], fmts[96];
                reasons_text(&ro, reasons, sizeof(reasons));
                formats_text(&st, fmts, sizeof(fmts));
                bool allow = tt_opts_flag(o, "allow-all-dead");
                char then[PATH_MAX + 128];
                if (allow)
                        snprintf(then, sizeof(then),
                                 "Outputs written (--allow-all-dead).");
                else if (ro.dir)
                        snprintf(then, sizeof(then),
                                 "Nothing in %s was replaced; "
                                 "--allow-all-dead writes these outputs.",
                                 dir);
                else
                        snprintf(then, sizeof(then),
                                 "--allow-all-dead exits 0 for such a run.");
                fprintf(stderr,
                        "replay: %s: all %llu records were dead letters (%s; "
                        "the first: %s). Wrong input format? They were read "
                        "as %s (--input-format avro|json chooses). %s\n",
                        allow ? "WARNING" : "FAILED",
                        (unsigned long long)st.records, reasons, ro.first_dead,
                        fmts, then);
                if (!allow)
                        goto out;
        }
        if (ro.dir && tt_outdir_commit(ro.dir, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally replay: %s\n", errstr);
                goto out;
        }
        rc = 0;
out:
        tt_rollup_writer_close(ro.rw); /* before its file goes */
        for (int i = 0; i < NOUT; i++)
                tt_buf_free(&ro.file[i].buf);
        tt_outdir_close(ro.dir); /* removes what was not committed */
        tt_engine_destroy(e);
        tt_kafka_out_destroy(ro.kafka);
        tt_setup_free(&su);
        tt_opts_destroy(o);
        return rc;
}
