/* `tokentally tail`: reads output topics (WeeklyRollups, StreakChanges or
 * dead letters; --topic is repeatable and takes comma-separated names) and
 * prints them for people. Each message is recognised by
 * itself: Confluent framing with schema id 2 (WeeklyRollup) or 3
 * (StreakChange) -- or another id whose body decodes as exactly one of the
 * two, as with a schema registry --, a JSON object of --output-format json
 * (told by its field names), or a dead letter (tokentally.* headers).
 *
 * No consumer group: all partitions are assigned, from the end (new records
 * only, as tail -f) or with --from-beginning from the earliest offset; no
 * offsets are committed. It follows the topic until SIGINT/SIGTERM, or with
 * --exit-at-eof until every partition is at its end.
 *
 * --format json: one JSON object per record, {"topic", "partition",
 * "offset", "timestamp", "key", "type", "value"}, value with the Avro field
 * names (enums as strings, unions as plain values or null).
 * --format table: keeps the latest record of every key and prints the
 * leaderboard whenever every partition is at its end and something
 * changed. */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/avro_read.h"
#include "tokentally/b64.h"
#include "tokentally/buf.h"
#include "tokentally/cli.h"
#include "tokentally/json_out.h"
#include "tokentally/kafka_conf.h"
#include "tokentally/kafka_out.h"
#include "tokentally/leaderboard.h"
#include "tokentally/log.h"
#include "tokentally/mem.h"
#include "tokentally/options.h"
#include "tokentally/output_read.h"

static const char usage[] =
    "tokentally tail --topic T[,T...] [--from-beginning] [--exit-at-eof] "
    "[--format json|table] [--brokers B] [-X key=value ...]";

#define LIT(b, s) tt_buf_append((b), (s), sizeof(s) - 1)

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
        (void)sig;
        stop_flag = 1;
}

typedef enum rec_type { REC_ROLLUP, REC_STREAK, REC_DLQ, REC_UNKNOWN } rec_type;

static const char *const type_names[] = {"WeeklyRollup", "StreakChange",
                                         "DeadLetter", "Unknown"};

typedef struct tail {
        bool table;
        tt_buf line, scratch;
        tt_board board;
        uint64_t n[4];
        bool changed;
        char *reasons[32];
        uint64_t reason_count[32];
        size_t nreasons;
} tail;

static bool header(rd_kafka_message_t *m, const char *name, const void **v,
                   size_t *len) {
        rd_kafka_headers_t *h = NULL;
        if (rd_kafka_message_headers(m, &h) || !h)
                return false;
        return rd_kafka_header_get_last(h, name, v, len) ==
               RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Classifies and decodes m into r or s. */
static rec_type classify(tail *t, rd_kafka_message_t *m, tt_rollup *r,
                         tt_streak_change *s) {
        const void *hv;
        size_t hl;
        if (header(m, "tokentally.reason", &hv, &hl))
                return REC_DLQ;
        switch (tt_output_decode(m->payload, m->len, &t->scratch, r, s)) {
        case TT_OUT_ROLLUP:
                return REC_ROLLUP;
        case TT_OUT_STREAK:
                return REC_STREAK;
        case TT_OUT_UNKNOWN:
                break;
        }
        return REC_UNKNOWN;
}

static int put_key_and_type(tt_buf *b, rd_kafka_message_t *m, rec_type type) {
        int err = LIT(b, "{\"topic\":");
        err = err ? err
                  : tt_json_string(b, rd_kafka_topic_name(m->rkt),
                                   strlen(rd_kafka_topic_name(m->rkt)));
        rd_kafka_timestamp_type_t tst;
        int64_t ts = rd_kafka_message_timestamp(m, &tst);
        err = err ? err
                  : tt_buf_printf(b,
                                  ",\"partition\":%d,\"offset\":%lld,"
                                  "\"timestamp\":%lld,\"key\":",
                                  (int)m->partition, (long long)m->offset,
                                  (long long)ts);
        if (!err)
                err = m->key ? tt_json_string(b, m->key, m->key_len)
                             : tt_buf_append(b, "null", 4);
        if (!err)
                err = tt_buf_printf(
                    b, ",\"type\":\"%s\",\"value\":", type_names[type]);
        return err;
}

static int put_header_str(tt_buf *b, rd_kafka_message_t *m, const char *name) {
        const void *v;
        size_t len;
        if (!header(m, name, &v, &len) || !v)
                return tt_buf_append(b, "null", 4);
        return tt_json_string(b, v, len);
}

static int put_header_int(tt_buf *b, rd_kafka_message_t *m, const char *name) {
        const void *v;
        size_t len;
        char tmp[32], *end;
        if (!header(m, name, &v, &len) || !v || !len || len >= sizeof(tmp))
                return tt_buf_append(b, "null", 4);
        memcpy(tmp, v, len);
        tmp[len] = '\0';
        long long x = strtoll(tmp, &end, 10);
        if (*end)
                return tt_json_string(b, v, len);
        return tt_buf_printf(b, "%lld", x);
}

static int json_record(tail *t, rd_kafka_message_t *m, rec_type type,
                       const tt_rollup *r, const tt_streak_change *s) {
        tt_buf *b = &t->line;
        tt_buf_reset(b);
        int err = put_key_and_type(b, m, type);
        if (err)
                return err;
        switch (type) {
        case REC_ROLLUP:
        case REC_STREAK:
                err = type == REC_ROLLUP ? tt_json_rollup(b, r)
                                         : tt_json_streak(b, s);
                if (!err)
                        b->len--; /* the encoder's '\n' */
                break;
        case REC_DLQ:
                err = LIT(b, "{\"reason\":");
                err = err ? err : put_header_str(b, m, "tokentally.reason");
                err = err ? err : LIT(b, ",\"detail\":");
                err = err ? err : put_header_str(b, m, "tokentally.detail");
                err = err ? err : LIT(b, ",\"topic\":");
                err = err ? err : put_header_str(b, m, "tokentally.topic");
                err = err ? err : LIT(b, ",\"partition\":");
                err = err ? err : put_header_int(b, m, "tokentally.partition");
                err = err ? err : LIT(b, ",\"offset\":");
                err = err ? err : put_header_int(b, m, "tokentally.offset");
                err = err ? err : LIT(b, ",\"payload_base64\":");
                if (!err && m->payload) {
                        err = tt_buf_putc(b, '"');
                        err = err ? err : tt_b64_encode(b, m->payload, m->len);
                        err = err ? err : tt_buf_putc(b, '"');
                } else if (!err) {
                        err = tt_buf_append(b, "null", 4);
                }
                err = err ? err : tt_buf_putc(b, '}');
                break;
        case REC_UNKNOWN:
                err = LIT(b, "{\"payload_base64\":");
                if (!err && m->payload) {
                        err = tt_buf_putc(b, '"');
                        err = err ? err : tt_b64_encode(b, m->payload, m->len);
                        err = err ? err : tt_buf_putc(b, '"');
                } else if (!err) {
                        err = tt_buf_append(b, "null", 4);
                }
                err = err ? err : tt_buf_putc(b, '}');
                break;
        }
        err = err ? err : tt_buf_append(b, "}\n", 2);
        if (!err)
                fwrite(b->data, 1, b->len, stdout);
        return err;
}

static void count_reason(tail *t, rd_kafka_message_t *m) {
        const void *v;
        size_t len;
        if (!header(m, "tokentally.reason", &v, &len) || !v)
                len = 0;
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(len < 63 ? len : 63),
                 len ? (const char *)v : "");
        for (size_t i = 0; i < t->nreasons; i++)
                if (!strcmp(t->reasons[i], name)) {
                        t->reason_count[i]++;
                        return;
                }
        if (t->nreasons < 32 &&
            (t->reasons[t->nreasons] = tt_strndup(name, strlen(name))))
                t->reason_count[t->nreasons++] = 1;
}

static int on_message(tail *t, rd_kafka_message_t *m) {
        tt_rollup r;
        tt_streak_change s;
        rec_type type = classify(t, m, &r, &s);
        t->n[type]++;
        t->changed = true;
        if (!t->table)
                return json_record(t, m, type, &r, &s);
        switch (type) {
        case REC_ROLLUP:
                return tt_board_rollup(&t->board, &r);
        case REC_STREAK:
                return tt_board_streak(&t->board, &s);
        case REC_DLQ:
                count_reason(t, m);
                return 0;
        case REC_UNKNOWN:
                return 0;
        }
        return 0;
}

static void print_table(tail *t, const char *topics, int nparts) {
        printf("%s: %llu records in %d partition%s (%llu WeeklyRollup, %llu "
               "StreakChange, %llu dead letters, %llu not recognised); the "
               "latest record of every key:\n",
               topics,
               (unsigned long long)(t->n[0] + t->n[1] + t->n[2] + t->n[3]),
               nparts, nparts == 1 ? "" : "s", (unsigned long long)t->n[0],
               (unsigned long long)t->n[1], (unsigned long long)t->n[2],
               (unsigned long long)t->n[3]);
        if (t->board.rollups || t->board.streak_records)
                tt_board_print(stdout, &t->board, 6, TT_BOARD_DETAIL);
        if (t->nreasons) {
                printf("\nDead letters by reason\n");
                for (size_t i = 0; i < t->nreasons; i++)
                        printf("  %-20s %llu\n", t->reasons[i],
                               (unsigned long long)t->reason_count[i]);
        }
        printf("\n");
        fflush(stdout);
}

static bool same_partition(const rd_kafka_topic_partition_t *p,
                           const rd_kafka_message_t *m) {
        return p->partition == m->partition &&
               !strcmp(p->topic, rd_kafka_topic_name(m->rkt));
}

int tt_cmd_tail(int argc, char **argv) {
        char errstr[512];
        bool help;
        tt_opts *o = tt_opts_parse(TT_CMD_TAIL, argc, argv, &help, errstr,
                                   sizeof(errstr));
        if (!o) {
                fprintf(stderr, "tokentally tail: %s\n", errstr);
                return 2;
        }
        if (help) {
                tt_opts_help(stdout, TT_CMD_TAIL, usage);
                tt_opts_destroy(o);
                return 0;
        }
        size_t ntopic_args;
        const char *const *topic_args = tt_opts_list(o, "topic", &ntopic_args);
        /* "a,b" and --topic a --topic b alike; kept for the table title. */
        char topics[1024] = "";
        for (size_t i = 0; i < ntopic_args; i++) {
                size_t n = strlen(topics);
                snprintf(topics + n, sizeof(topics) - n, "%s%s", n ? "," : "",
                         topic_args[i]);
        }
        const char *format = tt_opts_str(o, "format");
        if (!format)
                format = "json";
        if (!topics[0] || strstr(topics, ",,") || topics[0] == ',' ||
            topics[strlen(topics) - 1] == ',') {
                fprintf(stderr, "tokentally tail: --topic is required "
                                "(comma-separated names)\n");
                tt_opts_destroy(o);
                return 2;
        }
        tt_log_set_level(
            (tt_log_level)tt_log_parse_level(tt_opts_str(o, "log-level")));
        bool from_beginning = tt_opts_flag(o, "from-beginning");
        bool exit_at_eof = tt_opts_flag(o, "exit-at-eof");
        size_t nprops;
        const char *const *props = tt_opts_list(o, "X", &nprops);
        const tt_kafka_prop defaults[] = {
            {"bootstrap.servers", tt_opts_str(o, "brokers")},
            {"group.id", "tokentally-tail"},
            {"client.id", "tokentally-tail"},
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"enable.partition.eof", "true"},
            /* The stage writes in transactions: show committed rows only. */
            {"isolation.level", "read_committed"},
            {"fetch.message.max.bytes", "16777216"},
        };
        int rc = 1;
        tail t;
        memset(&t, 0, sizeof(t));
        t.table = !strcmp(format, "table");
        tt_buf_init(&t.line, (size_t)64 << 20);
        tt_buf_init(&t.scratch, (size_t)64 << 20);
        rd_kafka_t *rk = NULL;
        rd_kafka_topic_partition_list_t *parts = NULL;
        bool *eof = NULL;
        int nparts = 0;
        rd_kafka_conf_t *conf =
            tt_kafka_conf_new(defaults, sizeof(defaults) / sizeof(defaults[0]),
                              props, nprops, errstr, sizeof(errstr));
        if (!conf) {
                fprintf(stderr, "tokentally tail: %s\n", errstr);
                rc = 2;
                goto done;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                fprintf(stderr, "tokentally tail: %s\n", errstr);
                goto done;
        }
        rd_kafka_poll_set_consumer(rk);
        if (tt_kafka_reach(rk, tt_opts_str(o, "brokers"),
                           tt_opts_duration_ms(o, "connect-timeout"), NULL,
                           errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally tail: %s\n", errstr);
                goto done;
        }
        parts = rd_kafka_topic_partition_list_new(8);
        char names[sizeof(topics)];
        memcpy(names, topics, sizeof(names));
        for (char *save = NULL, *topic = strtok_r(names, ",", &save); topic;
             topic = strtok_r(NULL, ",", &save))
                if (tt_output_add_partitions(
                        rk, topic,
                        from_beginning ? RD_KAFKA_OFFSET_BEGINNING
                                       : RD_KAFKA_OFFSET_END,
                        30000, parts, errstr, sizeof(errstr))) {
                        fprintf(stderr, "tokentally tail: %s\n", errstr);
                        goto done;
                }
        nparts = parts->cnt;
        eof = calloc((size_t)nparts, sizeof(*eof));
        if (!eof) {
                fprintf(stderr, "tokentally tail: out of memory\n");
                goto done;
        }
        rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, parts);
        if (aerr) {
                fprintf(stderr, "tokentally tail: assign: %s\n",
                        rd_kafka_err2str(aerr));
                goto done;
        }
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        int neof = 0;
        bool failed = false;
        while (!stop_flag && !failed) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (!m) {
                        fflush(stdout);
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        int idx = -1;
                        for (int i = 0; i < nparts; i++)
                                if (same_partition(&parts->elems[i], m))
                                        idx = i;
                        if (idx >= 0 && !eof[idx]) {
                                eof[idx] = true;
                                neof++;
                        }
                        rd_kafka_message_destroy(m);
                        if (neof < nparts)
                                continue;
                        if (t.table && t.changed)
                                print_table(&t, topics, nparts);
                        t.changed = false;
                        fflush(stdout);
                        if (exit_at_eof)
                                break;
                        continue;
                }
                if (m->err) {
                        bool fatal = tt_output_read_fatal(m->err);
                        fprintf(stderr, "tokentally tail: %s\n",
                                rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        if (fatal)
                                failed = true;
                        continue;
                }
                for (int i = 0; i < nparts; i++)
                        if (same_partition(&parts->elems[i], m) && eof[i]) {
                                eof[i] = false;
                                neof--;
                        }
                int err = on_message(&t, m);
                rd_kafka_message_destroy(m);
                if (err) {
                        fprintf(stderr, "tokentally tail: out of memory\n");
                        failed = true;
                }
        }
        /* Interrupted while following: show what was read. */
        if (!failed && stop_flag && t.table && t.changed)
                print_table(&t, topics, nparts);
        fflush(stdout);
        if (!failed) {
                fprintf(stderr,
                        "tail: %llu WeeklyRollup, %llu StreakChange, %llu "
                        "dead letters, %llu not recognised\n",
                        (unsigned long long)t.n[0], (unsigned long long)t.n[1],
                        (unsigned long long)t.n[2], (unsigned long long)t.n[3]);
                rc = 0;
        }
done:
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        free(eof);
        for (size_t i = 0; i < t.nreasons; i++)
                tt_free(t.reasons[i]);
        tt_board_free(&t.board);
        tt_buf_free(&t.line);
        tt_buf_free(&t.scratch);
        tt_opts_destroy(o);
        return rc;
}
