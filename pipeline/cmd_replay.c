/* `tokentally replay`: event files through the engine into JSON Lines
 * files (SPEC §8). Options come from the shared table; the engine settings
 * mean the same as in `run`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokentally/cli.h"
#include "tokentally/engine.h"
#include "tokentally/err.h"
#include "tokentally/json_out.h"
#include "tokentally/kafka_out.h"
#include "tokentally/log.h"
#include "tokentally/options.h"
#include "tokentally/replay.h"
#include "tokentally/setup.h"

#define FLUSH_AT (1u << 20)

typedef struct out_file {
        FILE *f;
        tt_buf buf;
        char path[4096];
} out_file;

typedef struct replay_out {
        out_file rollups, streaks, dead;
        tt_kafka_out *kafka; /* --brokers: the topics instead of files */
        int err;
} replay_out;

static int out_open(out_file *o, const char *dir, const char *name,
                    char *errstr, size_t errsize) {
        snprintf(o->path, sizeof(o->path), "%s/%s", dir, name);
        tt_buf_init(&o->buf, 256u << 20);
        o->f = fopen(o->path, "wb");
        if (!o->f) {
                snprintf(errstr, errsize, "%s: %s", o->path, strerror(errno));
                return -1;
        }
        return 0;
}

static int out_flush(out_file *o) {
        if (o->buf.len &&
            fwrite(o->buf.data, 1, o->buf.len, o->f) != o->buf.len)
                return TT_ERR_IO;
        tt_buf_reset(&o->buf);
        return TT_ERR_OK;
}

static int out_close(out_file *o) {
        int err = TT_ERR_OK;
        if (o->f) {
                err = out_flush(o);
                if (fclose(o->f) && !err)
                        err = TT_ERR_IO;
                o->f = NULL;
        }
        tt_buf_free(&o->buf);
        return err;
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
        return after_write(&ro->rollups, tt_json_rollup(&ro->rollups.buf, r));
}

static int sink_streak(void *opaque, const tt_streak_change *s) {
        replay_out *ro = opaque;
        if (ro->kafka)
                return tt_kafka_out_streak(ro->kafka, s);
        return after_write(&ro->streaks, tt_json_streak(&ro->streaks.buf, s));
}

static int sink_dead(void *opaque, tt_reason reason, const char *detail,
                     const char *source, int64_t offset, const uint8_t *payload,
                     size_t len) {
        replay_out *ro = opaque;
        /* On Kafka a file has no partition: -1, and the record index as
         * the offset. */
        if (ro->kafka)
                return tt_kafka_out_dead_letter(ro->kafka, reason, detail,
                                                source, -1, offset, NULL, 0,
                                                payload, len);
        return after_write(&ro->dead,
                           tt_json_dead_letter(&ro->dead.buf,
                                               tt_reason_str(reason), detail,
                                               source, offset, payload, len));
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
        int rc = 2;
        tt_log_set_level(
            (tt_log_level)tt_log_parse_level(tt_opts_str(o, "log-level")));
        tt_setup su;
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
        if (tt_setup_engine(&su, o, TT_CMD_REPLAY, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally replay: %s\n", errstr);
                goto out;
        }
        su.conf.max_future_ms = -1; /* no wall clock in replay (SPEC §3) */
        su.conf.idle_timeout_ms = 0;
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
                        rc = 1;
                        goto out;
                }
        } else {
                if (mkdir(dir, 0777) && errno != EEXIST) {
                        fprintf(stderr, "tokentally replay: %s: %s\n", dir,
                                strerror(errno));
                        goto out;
                }
                if (out_open(&ro.rollups, dir, "rollups.jsonl", errstr,
                             sizeof(errstr)) ||
                    out_open(&ro.streaks, dir, "streaks.jsonl", errstr,
                             sizeof(errstr)) ||
                    out_open(&ro.dead, dir, "dead-letters.jsonl", errstr,
                             sizeof(errstr))) {
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
        if (!err && ro.kafka &&
            (err = tt_kafka_out_flush(ro.kafka, 60000, errstr, sizeof(errstr))))
                snprintf(errstr + strlen(errstr),
                         sizeof(errstr) - strlen(errstr),
                         " (delivering to Kafka)");
        int cerr = out_close(&ro.rollups);
        int cerr2 = out_close(&ro.streaks);
        int cerr3 = out_close(&ro.dead);
        if (err) {
                fprintf(stderr, "tokentally replay: %s\n", errstr);
                rc = 1;
                goto out;
        }
        if (cerr || cerr2 || cerr3) {
                fprintf(stderr, "tokentally replay: writing %s: %s\n", dir,
                        strerror(errno));
                rc = 1;
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
        rc = 0;
out:
        out_close(&ro.rollups);
        out_close(&ro.streaks);
        out_close(&ro.dead);
        tt_engine_destroy(e);
        tt_kafka_out_destroy(ro.kafka);
        tt_setup_free(&su);
        tt_opts_destroy(o);
        return rc;
}
