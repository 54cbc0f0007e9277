/* The option table and its parser. Every option of every command is listed
 * once here; --help, environment variables and validation derive from it. */
#include "tokentally/options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/kafka_conf.h"
#include "tokentally/mem.h"

#define R TT_CMD_RUN
#define P TT_CMD_REPLAY
#define G TT_CMD_GEN
#define D TT_CMD_DEMO
#define T TT_CMD_TAIL
#define S TT_CMD_SERVE
#define O TT_CMD_REPORT
#define DAY_MS 86400000.0

const tt_opt_def tt_opt_defs[] = {
    /* Engine semantics, shared by run and replay (SPEC §3). */
    {"grace", 0, TT_OPT_DURATION, "10m", NULL, 0, 28 * DAY_MS, R | P | D,
     "how long after a week ends it stays open for out-of-order events", NULL},
    {"late", 0, TT_OPT_STR, "revise", "revise|dlq", 0, 0, R | P | D,
     "events for a closed week: revise its rows, or dead-letter them", NULL},
    {"retain-weeks", 0, TT_OPT_INT, "12", NULL, 1, 520, R | P | D,
     "closed weeks kept for revisions; older events are too_late", NULL},
    {"max-keys", 0, TT_OPT_INT, "0", NULL, 0, 4294967294.0, R | P | D,
     "distinct models one week may hold per counting shard (worker); "
     "events of further models are dead letters key_limit (0 = unbounded: "
     "memory follows the distinct (week, model) cells retained)",
     NULL},
    {"streak", 0, TT_OPT_LIST, NULL, NULL, 0, 0, R | P | D,
     "streak rule, repeatable (default: leader:origin, leader:model, "
     "leader:origin:CN,US)",
     NULL},
    {"origin-map", 0, TT_OPT_STR, NULL, NULL, 0, 0, R | P | D,
     "JSON object author -> origin code (default: schemas/origins.json, "
     "compiled in)",
     NULL},
    /* One row per command where the accepted values differ, so that each
     * command's error lists exactly what that command takes. */
    {"input-format", 0, TT_OPT_STR, "avro", "avro|avro-raw|json", 0, 0, R,
     "encoding of the input messages (avro: Confluent framing; avro-raw: "
     "the Avro body alone; json: one object per message)",
     NULL},
    {"input-format", 0, TT_OPT_STR, NULL, "avro|ocf|json|jsonl", 0, 0, P,
     "file encoding: avro (= ocf, Object Container Files) or json (= "
     "jsonl, JSON Lines) (default: from the extension or first bytes)",
     NULL},
    {"idle-timeout", 0, TT_OPT_DURATION, "30s", NULL, 0, 365 * DAY_MS, R | D,
     "a partition with no event for this long stops holding the watermark",
     NULL},
    {"max-future", 0, TT_OPT_DURATION, "1h", NULL, 0, 365 * DAY_MS, R | D,
     "events further ahead of the wall clock are future_time", NULL},
    {"emit-interval", 0, TT_OPT_DURATION, "60s", NULL, 0, DAY_MS, R | P | D,
     "PROVISIONAL rollups of open weeks this often (0 = never)", NULL},
    {"emit-provisional", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, P,
     "emit PROVISIONAL rollups (by event time, every --emit-interval of "
     "watermark progress)",
     NULL},
    {"close-at-eof", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, R,
     "close all open weeks and exit when every partition is at its end", NULL},
    {"keep", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, D,
     "keep the embedded Kafka cluster up after the leaderboard, and "
     "print its address, until SIGINT/SIGTERM (Ctrl-C)",
     NULL},
    {"max-record-bytes", 0, TT_OPT_INT, "1048576", NULL, 1024, 64 << 20, P,
     "longest JSON line; a longer one is one dead letter malformed "
     "(payload: its first bytes) and the rest of it is skipped",
     NULL},
    {"allow-all-dead", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, P,
     "exit 0 and write the outputs even when every record read was "
     "a dead letter (by default such a run fails, exit 1)",
     NULL},
    {"workers", 0, TT_OPT_INT, "0", NULL, 0, 256, R | P | D,
     "worker threads (0 = number of cores)", NULL},
    {"out", 0, TT_OPT_STR, NULL, NULL, 0, 0, P, "output directory",
     tt_check_nonempty},
    {"out", 0, TT_OPT_STR, NULL, NULL, 0, 0, G,
     "output file (.avro, .jsonl, .jsonl.gz) or - for standard output",
     tt_check_nonempty},
    /* Kafka (SPEC §7). */
    {"brokers", 0, TT_OPT_STR, "localhost:9092", NULL, 0, 0, R | T | S,
     "Kafka bootstrap servers, HOST[:PORT][,HOST[:PORT]...]", tt_check_brokers},
    {"brokers", 0, TT_OPT_STR, NULL, NULL, 0, 0, P,
     "write the outputs to these Kafka bootstrap servers (the topics "
     "below) instead of --out",
     tt_check_brokers},
    {"brokers", 0, TT_OPT_STR, NULL, NULL, 0, 0, G,
     "produce to --input-topic on these Kafka bootstrap servers instead "
     "of writing --out",
     tt_check_brokers},
    {"brokers", 0, TT_OPT_STR, NULL, NULL, 0, 0, O,
     "read the output topics on these Kafka bootstrap servers (instead "
     "of --in)",
     tt_check_brokers},
    {"connect-timeout", 0, TT_OPT_DURATION, "30s", NULL, 0, DAY_MS,
     R | P | G | T | S | O,
     "give up (exit 1) when no broker of the cluster answers within this "
     "long at start (0 = keep trying)",
     NULL},
    {"shutdown-timeout", 0, TT_OPT_DURATION, "30s", NULL, 0, DAY_MS, R,
     "after SIGTERM/SIGINT, a stop still running this long (a cluster "
     "that stopped answering) logs the step it is in and exits 1 (0 = "
     "wait as long as it takes)",
     NULL},
    {"group", 0, TT_OPT_STR, "tokentally", NULL, 0, 0, R, "consumer group",
     tt_check_nonempty},
    {"input-topic", 0, TT_OPT_STR, "token-usage.events", NULL, 0, 0, R | G | D,
     "topic of TokenEvents", tt_check_topic},
    {"rollups-topic", 0, TT_OPT_STR, "token-usage.rollups", NULL, 0, 0,
     R | P | D | S | O, "topic of WeeklyRollups", tt_check_topic},
    {"streaks-topic", 0, TT_OPT_STR, "token-usage.streaks", NULL, 0, 0,
     R | P | D | S | O, "topic of StreakChanges", tt_check_topic},
    {"dlq-topic", 0, TT_OPT_STR, "token-usage.dead-letters", NULL, 0, 0,
     R | P | D, "topic of dead letters", tt_check_topic},
    {"output-format", 0, TT_OPT_STR, "avro", "avro|json", 0, 0, R | P | D,
     "encoding of the output topics (avro: Confluent framing)", NULL},
    {"schema-registry", 0, TT_OPT_STR, NULL, NULL, 0, 0, R | G,
     "URL of a Confluent-compatible Schema Registry: output (and gen's) "
     "Avro schemas are registered under <topic>-value (BACKWARD) and "
     "framed with its ids; run reads input writer schemas by id",
     tt_check_url},
    {"from-timestamp", 0, TT_OPT_INT, NULL, NULL, 0, 9.2e18, R,
     "start a new group at the first message whose Kafka message "
     "timestamp is at or after this (epoch ms)",
     NULL},
    {"from-beginning", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, R,
     "start a new group at the earliest offsets", NULL},
    {"from-beginning", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, T,
     "read the topics from their earliest offsets (default: new records "
     "only)",
     NULL},
    {"guarantee", 0, TT_OPT_STR, "exactly-once", "exactly-once|at-least-once",
     0, 0, R, "delivery guarantee", NULL},
    {"state-topic", 0, TT_OPT_STR, "token-usage.state", NULL, 0, 0, R,
     "exactly-once: compacted changelog of the merged counters (created "
     "if missing; keys are prefixed with the group)",
     tt_check_topic},
    {"partials-topic", 0, TT_OPT_STR, "", NULL, 0, 0, R,
     "exactly-once: internal topic from the instances to the merger "
     "(default GROUP.partials; created if missing)",
     tt_check_topic_or_empty},
    {"instance-id", 0, TT_OPT_STR, "", NULL, 0, 0, R,
     "exactly-once: this instance's stable name: transactional.id "
     "GROUP-ID, and when given, group.instance.id ID (static membership; "
     "default: the host name, dynamic membership)",
     NULL},
    {"commit-interval", 0, TT_OPT_DURATION, "", NULL, 1, 3600 * 1000, R,
     "how often offsets (and, exactly-once, transactions) commit "
     "(default 200ms exactly-once, 5s at-least-once)",
     NULL},
    /* Operations. */
    {"metrics-addr", 0, TT_OPT_STR, "0.0.0.0:9464", NULL, 0, 0, R,
     "HOST:PORT serving /metrics, /healthz, /readyz; port 0..65535, 0 = "
     "any free port (logged); off or \"\" = none",
     tt_check_listen_addr},
    {"log-level", 0, TT_OPT_STR, "info", "error|warn|info|debug", 0, 0, R,
     "JSON log lines on stderr at this level and above (librdkafka's "
     "included)",
     NULL},
    {"log-level", 0, TT_OPT_STR, "info", "error|warn|info|debug", 0, 0,
     P | G | T | S | O,
     "debug: also librdkafka's log lines (JSON on stderr); errors are one "
     "plain line at any level",
     NULL},
    {"X", 'X', TT_OPT_LIST, NULL, NULL, 0, 0, R | P | G | D | T | S | O,
     "key=value passed to librdkafka, repeatable", tt_kafka_prop_check},
    /* gen (SPEC §8, §9). */
    {"scenario", 0, TT_OPT_STR, "april-2026", "april-2026", 0, 0, G,
     "scenario to generate", NULL},
    {"scale", 0, TT_OPT_DOUBLE, "1e-4", NULL, 1e-9, 1, G,
     "token volume relative to the real headline", NULL},
    {"seed", 0, TT_OPT_INT, "1", NULL, 0, 9.2e18, G, "random seed", NULL},
    {"invalid-rate", 0, TT_OPT_DOUBLE, "0", NULL, 0, 1, G,
     "extra invalid records per valid one", NULL},
    {"format", 0, TT_OPT_STR, NULL, "avro|jsonl", 0, 0, G,
     "output encoding (default: from the --out extension; - and --brokers: "
     "jsonl and avro)",
     NULL},
    {"format", 0, TT_OPT_STR, "json", "json|table", 0, 0, T,
     "json: one object per record; table: a leaderboard of the latest "
     "record of every key",
     NULL},
    /* tail (README "Consuming the outputs"). */
    {"topic", 0, TT_OPT_LIST, NULL, NULL, 0, 0, T,
     "output topic to read (rollups, streaks or dead letters); repeatable, "
     "or comma-separated",
     tt_check_topic_list},
    {"exit-at-eof", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, T,
     "exit when every partition is at its end (default: follow until "
     "SIGINT/SIGTERM)",
     NULL},
    /* serve and report (docs/serve.md). */
    {"listen", 0, TT_OPT_STR, "127.0.0.1:8080", NULL, 0, 0, S,
     "HOST:PORT of the page and the JSON API; port 0 = any free port "
     "(printed)",
     tt_check_listen_addr},
    {"in", 0, TT_OPT_STR, NULL, NULL, 0, 0, O,
     "a replay's output folder (rollups.jsonl, streaks.jsonl)",
     tt_check_nonempty},
    {"out", 0, TT_OPT_STR, NULL, NULL, 0, 0, O,
     "the HTML file to write (- for standard output)", tt_check_nonempty},
    {"serve", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, D,
     "after the leaderboard, serve the page and the JSON API of the "
     "output topics on --listen until SIGINT/SIGTERM (Ctrl-C)",
     NULL},
    {"listen", 0, TT_OPT_STR, "127.0.0.1:8080", NULL, 0, 0, D,
     "HOST:PORT of the page that --serve starts (port 0 = any free port)",
     tt_check_listen_addr},
    {"codec", 0, TT_OPT_STR, "deflate", "null|deflate|snappy", 0, 0, G,
     "Avro container codec", NULL},
    {"rate", 0, TT_OPT_DOUBLE, "0", NULL, 0, 1e9, G,
     "with --brokers: events per second (0 = as fast as the broker takes "
     "them)",
     NULL},
};
const size_t tt_opt_ndefs = sizeof(tt_opt_defs) / sizeof(tt_opt_defs[0]);

#undef R
#undef P
#undef G
#undef D
#undef T
#undef S
#undef O

#define MAX_ARGS 1024

struct tt_opts {
        unsigned cmd;
        const char *val[sizeof(tt_opt_defs) / sizeof(tt_opt_defs[0])];
        /* List values: all occurrences, in order, tagged by option index. */
        const char *list_val[MAX_ARGS];
        size_t list_opt[MAX_ARGS];
        size_t nlist;
        const char *tmp_list[MAX_ARGS];
        const char *pos[MAX_ARGS];
        size_t npos;
        char *env_copy[sizeof(tt_opt_defs) / sizeof(tt_opt_defs[0])];
};

/* The row of name for cmd; with cmd 0, the first row of that name. */
static int find_def(const char *name, size_t len, unsigned cmd) {
        for (size_t i = 0; i < tt_opt_ndefs; i++)
                if (strlen(tt_opt_defs[i].name) == len &&
                    !memcmp(tt_opt_defs[i].name, name, len) &&
                    (!cmd || (tt_opt_defs[i].cmds & cmd)))
                        return (int)i;
        return -1;
}

static const char *const cmd_names[] = {"run",  "replay", "gen",   "demo",
                                        "tail", "serve",  "report"};

/* "gen and tail": the commands that have an option of this name. */
static void owners(const char *name, size_t len, char *out, size_t size) {
        unsigned cmds = 0;
        for (size_t i = 0; i < tt_opt_ndefs; i++)
                if (strlen(tt_opt_defs[i].name) == len &&
                    !memcmp(tt_opt_defs[i].name, name, len))
                        cmds |= tt_opt_defs[i].cmds;
        out[0] = '\0';
        size_t n = 0;
        for (unsigned k = 0; k < 7; k++)
                if (cmds & (1u << k))
                        n += (size_t)snprintf(out + n, n < size ? size - n : 0,
                                              "%s%s", n ? ", " : "",
                                              cmd_names[k]);
}

static const char *cmd_name(unsigned cmd) {
        for (unsigned k = 0; k < 7; k++)
                if (cmd == 1u << k)
                        return cmd_names[k];
        return "?";
}

static bool all_digits(const char *s, size_t n) {
        if (!n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char)s[i]))
                        return false;
        return true;
}

/* A decimal port of n bytes within [lo, 65535]. */
static bool port_ok(const char *s, size_t n, long lo) {
        if (!all_digits(s, n) || n > 5)
                return false;
        long p = strtol(s, NULL, 10);
        return p >= lo && p <= 65535;
}

int tt_check_nonempty(const char *v, char *why, size_t whysize) {
        if (*v)
                return 0;
        snprintf(why, whysize, "must not be empty");
        return -1;
}

int tt_check_listen_addr(const char *v, char *why, size_t whysize) {
        if (!*v || !strcmp(v, "off"))
                return 0;
        const char *colon = strrchr(v, ':');
        if (colon && colon > v && port_ok(colon + 1, strlen(colon + 1), 0))
                return 0;
        snprintf(why, whysize,
                 "is not HOST:PORT with a port from 0 to 65535 (0: any free "
                 "port), or off");
        return -1;
}

/* One bootstrap server: [SCHEME://]HOST[:PORT], [V6]:PORT, or a bare
 * IPv6 address (no port then). */
static bool broker_ok(const char *p, size_t n) {
        for (size_t i = 0; i + 2 < n; i++)
                if (!memcmp(p + i, "://", 3)) {
                        p += i + 3;
                        n -= i + 3;
                        break;
                }
        if (n == 0)
                return false;
        if (p[0] == '[') {
                const char *rb = memchr(p, ']', n);
                if (!rb || rb == p + 1)
                        return false;
                size_t rest = n - (size_t)(rb + 1 - p);
                return rest == 0 ||
                       (rb[1] == ':' && port_ok(rb + 2, rest - 1, 1));
        }
        const char *colon = memchr(p, ':', n);
        if (!colon)
                return true;
        if (memchr(colon + 1, ':', n - (size_t)(colon + 1 - p)))
                return true; /* bare IPv6 */
        return colon > p && port_ok(colon + 1, n - (size_t)(colon + 1 - p), 1);
}

int tt_check_brokers(const char *v, char *why, size_t whysize) {
        for (const char *p = v;;) {
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                if (!broker_ok(p, n)) {
                        snprintf(why, whysize,
                                 "is not a list of HOST[:PORT] separated by "
                                 "commas (ports 1 to 65535)");
                        return -1;
                }
                if (!end)
                        return 0;
                p = end + 1;
        }
}

int tt_check_url(const char *v, char *why, size_t whysize) {
        const char *host = !strncmp(v, "http://", 7)    ? v + 7
                           : !strncmp(v, "https://", 8) ? v + 8
                                                        : NULL;
        if (host && *host && *host != '/' && *host != ':')
                return 0;
        snprintf(why, whysize, "is not an http:// or https:// URL");
        return -1;
}

static bool topic_ok(const char *s, size_t n) {
        if (n == 0 || n > 249 || (n == 1 && s[0] == '.') ||
            (n == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
                        return false;
        return true;
}

static const char topic_why[] =
    "is not a Kafka topic name (1 to 249 of the letters a-z, A-Z, digits, "
    "'.', '_' and '-')";

int tt_check_topic(const char *v, char *why, size_t whysize) {
        if (topic_ok(v, strlen(v)))
                return 0;
        snprintf(why, whysize, "%s", topic_why);
        return -1;
}

int tt_check_topic_or_empty(const char *v, char *why, size_t whysize) {
        return *v ? tt_check_topic(v, why, whysize) : 0;
}

int tt_check_topic_list(const char *v, char *why, size_t whysize) {
        for (const char *p = v;;) {
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                if (!topic_ok(p, n)) {
                        snprintf(why, whysize,
                                 "is not a comma-separated list of Kafka "
                                 "topic names (each 1 to 249 of a-z, A-Z, "
                                 "digits, '.', '_' and '-')");
                        return -1;
                }
                if (!end)
                        return 0;
                p = end + 1;
        }
}

/* "--grace" or "-X", for messages. */
static const char *flag_name(const tt_opt_def *d, char *out, size_t size) {
        if (d->short_name)
                snprintf(out, size, "-%c", d->short_name);
        else
                snprintf(out, size, "--%s", d->name);
        return out;
}

static void range_text(const tt_opt_def *d, char *out, size_t size) {
        char lo[32], hi[32];
        switch (d->type) {
        case TT_OPT_INT:
                snprintf(out, size, "an integer from %.0f to %.0f", d->min,
                         d->max);
                return;
        case TT_OPT_DOUBLE:
                snprintf(out, size, "a number from %g to %g", d->min, d->max);
                return;
        case TT_OPT_DURATION:
                tt_duration_format(d->min, lo, sizeof(lo));
                tt_duration_format(d->max, hi, sizeof(hi));
                snprintf(out, size,
                         "a duration from %s to %s (such as 500ms, 30s, 10m, "
                         "1h, 2d; a bare number is seconds)",
                         lo, hi);
                return;
        default:
                out[0] = '\0';
        }
}

static int check_value(const tt_opt_def *d, const char *v, char *errstr,
                       size_t errsize) {
        char *end, fl[64], range[160];
        bool bad = false;
        flag_name(d, fl, sizeof(fl));
        switch (d->type) {
        case TT_OPT_INT: {
                errno = 0;
                long long x = strtoll(v, &end, 10);
                bad = end == v || *end || errno || x < d->min || x > d->max;
                break;
        }
        case TT_OPT_DOUBLE: {
                errno = 0;
                double x = strtod(v, &end);
                bad = end == v || *end || errno || !(x >= d->min) ||
                      !(x <= d->max);
                break;
        }
        case TT_OPT_DURATION: {
                int64_t ms;
                bad = tt_duration_parse(v, &ms) || ms < d->min || ms > d->max;
                break;
        }
        case TT_OPT_FLAG:
                if (strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") &&
                    strcmp(v, "false") && strcmp(v, "yes") && strcmp(v, "no")) {
                        snprintf(errstr, errsize,
                                 "%s: '%s' is not one of 1, 0, true, false, "
                                 "yes, no",
                                 fl, v);
                        return -1;
                }
                return 0;
        case TT_OPT_STR:
        case TT_OPT_LIST:
                if (d->choices) {
                        size_t n = strlen(v);
                        const char *c = d->choices;
                        while (*c) {
                                const char *bar = strchr(c, '|');
                                size_t cl = bar ? (size_t)(bar - c) : strlen(c);
                                if (cl == n && !memcmp(c, v, n))
                                        return 0;
                                c += cl + (bar ? 1 : 0);
                        }
                        snprintf(errstr, errsize, "%s: '%s' is not one of %s",
                                 fl, v, d->choices);
                        return -1;
                }
                break;
        }
        if (bad) {
                range_text(d, range, sizeof(range));
                snprintf(errstr, errsize, "%s: '%s' is not %s", fl, v, range);
                return -1;
        }
        char why[256];
        if (d->check && d->check(v, why, sizeof(why))) {
                snprintf(errstr, errsize, "%s: '%s' %s", fl, v, why);
                return -1;
        }
        return 0;
}

static int set_value(tt_opts *o, size_t i, const char *v, char *errstr,
                     size_t errsize) {
        const tt_opt_def *d = &tt_opt_defs[i];
        if (check_value(d, v, errstr, errsize))
                return -1;
        if (d->type == TT_OPT_LIST) {
                if (o->nlist == MAX_ARGS) {
                        snprintf(errstr, errsize, "too many arguments");
                        return -1;
                }
                o->list_val[o->nlist] = v;
                o->list_opt[o->nlist++] = i;
        }
        o->val[i] = v;
        return 0;
}

static void env_name(const char *name, char *out, size_t size) {
        size_t n = (size_t)snprintf(out, size, "TOKENTALLY_");
        for (const char *p = name; *p && n + 1 < size; p++)
                out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        out[n] = '\0';
}

tt_opts *tt_opts_parse(unsigned cmd, int argc, char **argv, bool *help,
                       char *errstr, size_t errsize) {
        tt_opts *o = tt_calloc(1, sizeof(*o));
        if (!o) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        o->cmd = cmd;
        *help = false;
        bool only_pos = false;
        for (int a = 0; a < argc; a++) {
                const char *arg = argv[a];
                if (only_pos || arg[0] != '-' || !strcmp(arg, "-")) {
                        if (!(cmd & TT_CMD_REPLAY)) {
                                snprintf(errstr, errsize,
                                         "unexpected argument '%s' (%s takes "
                                         "options only)",
                                         arg, cmd_name(cmd));
                                goto fail;
                        }
                        if (o->npos == MAX_ARGS) {
                                snprintf(errstr, errsize, "too many arguments");
                                goto fail;
                        }
                        o->pos[o->npos++] = arg;
                        continue;
                }
                if (!strcmp(arg, "--")) {
                        only_pos = true;
                        continue;
                }
                if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
                        *help = true;
                        continue;
                }
                const char *name, *val = NULL;
                size_t nlen;
                int i;
                if (arg[1] != '-') {
                        /* Short options: only -X, as kcat. */
                        name = arg + 1;
                        nlen = 1;
                        if (strlen(arg) > 2)
                                val = arg + 2;
                        i = -1;
                        for (size_t k = 0; k < tt_opt_ndefs; k++)
                                if (tt_opt_defs[k].short_name == arg[1])
                                        i = (int)k;
                } else {
                        name = arg + 2;
                        const char *eq = strchr(name, '=');
                        nlen = eq ? (size_t)(eq - name) : strlen(name);
                        if (eq)
                                val = eq + 1;
                        i = find_def(name, nlen, cmd);
                }
                if (i < 0 || !(tt_opt_defs[i].cmds & cmd)) {
                        char who[64];
                        owners(name, nlen, who, sizeof(who));
                        if (who[0])
                                snprintf(errstr, errsize,
                                         "option '%.*s' is not one of %s's "
                                         "(it is %s's); 'tokentally %s "
                                         "--help' lists them",
                                         (int)(name - arg + nlen), arg,
                                         cmd_name(cmd), who, cmd_name(cmd));
                        else
                                snprintf(errstr, errsize,
                                         "unknown option '%s'; 'tokentally "
                                         "%s --help' lists the options",
                                         arg, cmd_name(cmd));
                        goto fail;
                }
                const tt_opt_def *d = &tt_opt_defs[i];
                if (d->type == TT_OPT_FLAG) {
                        if (val) {
                                snprintf(errstr, errsize,
                                         "option --%s takes no value", d->name);
                                goto fail;
                        }
                        val = "1";
                } else if (!val) {
                        if (a + 1 >= argc) {
                                snprintf(errstr, errsize,
                                         "option %s needs a value", arg);
                                goto fail;
                        }
                        val = argv[++a];
                }
                if (set_value(o, (size_t)i, val, errstr, errsize))
                        goto fail;
        }
        /* The environment fills what the command line left unset. A list
         * option from the environment is one value (use the command line
         * for several). */
        for (size_t i = 0; i < tt_opt_ndefs; i++) {
                const tt_opt_def *d = &tt_opt_defs[i];
                if (!(d->cmds & cmd) || o->val[i] || d->short_name)
                        continue;
                char en[64];
                env_name(d->name, en, sizeof(en));
                const char *v = getenv(en);
                if (!v || !*v)
                        continue;
                o->env_copy[i] = tt_strndup(v, strlen(v));
                if (!o->env_copy[i]) {
                        snprintf(errstr, errsize, "out of memory");
                        goto fail;
                }
                if (set_value(o, i, o->env_copy[i], errstr, errsize)) {
                        size_t n = strlen(errstr);
                        snprintf(errstr + n, errsize - n, " (from %s)", en);
                        goto fail;
                }
        }
        return o;
fail:
        tt_opts_destroy(o);
        return NULL;
}

void tt_opts_destroy(tt_opts *o) {
        if (!o)
                return;
        for (size_t i = 0; i < tt_opt_ndefs; i++)
                tt_free(o->env_copy[i]);
        tt_free(o);
}

static size_t lookup(const tt_opts *o, const char *name, tt_opt_type type) {
        int i = find_def(name, strlen(name), o->cmd);
        if (i < 0 || tt_opt_defs[i].type != type ||
            !(tt_opt_defs[i].cmds & o->cmd)) {
                fprintf(stderr, "tokentally: internal: option '%s'\n", name);
                abort();
        }
        return (size_t)i;
}

static const char *raw(const tt_opts *o, size_t i) {
        return o->val[i] ? o->val[i] : tt_opt_defs[i].def;
}

const char *tt_opts_str(const tt_opts *o, const char *name) {
        return raw(o, lookup(o, name, TT_OPT_STR));
}

int64_t tt_opts_int(const tt_opts *o, const char *name) {
        const char *v = raw(o, lookup(o, name, TT_OPT_INT));
        return v ? strtoll(v, NULL, 10) : 0;
}

double tt_opts_double(const tt_opts *o, const char *name) {
        const char *v = raw(o, lookup(o, name, TT_OPT_DOUBLE));
        return v ? strtod(v, NULL) : 0;
}

int64_t tt_opts_duration_ms(const tt_opts *o, const char *name) {
        const char *v = raw(o, lookup(o, name, TT_OPT_DURATION));
        int64_t ms = 0;
        if (v)
                tt_duration_parse(v, &ms);
        return ms;
}

bool tt_opts_flag(const tt_opts *o, const char *name) {
        const char *v = raw(o, lookup(o, name, TT_OPT_FLAG));
        return v &&
               (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"));
}

bool tt_opts_given(const tt_opts *o, const char *name) {
        int i = find_def(name, strlen(name), o->cmd);
        return i >= 0 && o->val[i] != NULL;
}

const char *const *tt_opts_list(const tt_opts *o, const char *name, size_t *n) {
        size_t i = lookup(o, name, TT_OPT_LIST);
        tt_opts *m = (tt_opts *)o; /* tmp_list is scratch, not state */
        *n = 0;
        for (size_t k = 0; k < o->nlist; k++)
                if (o->list_opt[k] == i)
                        m->tmp_list[(*n)++] = o->list_val[k];
        return (const char *const *)m->tmp_list;
}

size_t tt_opts_npos(const tt_opts *o) {
        return o->npos;
}

const char *tt_opts_pos(const tt_opts *o, size_t i) {
        return i < o->npos ? o->pos[i] : NULL;
}

void tt_opts_help(FILE *f, unsigned cmd, const char *usage) {
        fprintf(f, "usage: %s\n\noptions of %s:\n", usage, cmd_name(cmd));
        for (size_t i = 0; i < tt_opt_ndefs; i++) {
                const tt_opt_def *d = &tt_opt_defs[i];
                if (!(d->cmds & cmd))
                        continue;
                char left[64], range[160];
                if (d->short_name)
                        snprintf(left, sizeof(left), "-%c key=value",
                                 d->short_name);
                else
                        snprintf(left, sizeof(left), "--%s%s", d->name,
                                 d->type == TT_OPT_FLAG       ? ""
                                 : d->type == TT_OPT_INT      ? " N"
                                 : d->type == TT_OPT_DOUBLE   ? " X"
                                 : d->type == TT_OPT_DURATION ? " D"
                                                              : " V");
                fprintf(f, "  %-22s %s", left, d->help);
                if (d->choices)
                        fprintf(f, " [%s]", d->choices);
                range_text(d, range, sizeof(range));
                if (range[0] && d->type == TT_OPT_DURATION) {
                        char lo[32], hi[32];
                        tt_duration_format(d->min, lo, sizeof(lo));
                        tt_duration_format(d->max, hi, sizeof(hi));
                        fprintf(f, " [%s..%s]", lo, hi);
                } else if (range[0]) {
                        fprintf(f,
                                d->type == TT_OPT_INT ? " [%.0f..%.0f]"
                                                      : " [%g..%g]",
                                d->min, d->max);
                }
                if (d->def && *d->def)
                        fprintf(f, " (default %s)", d->def);
                if (!d->short_name) {
                        char en[64];
                        env_name(d->name, en, sizeof(en));
                        fprintf(f, " {%s}", en);
                }
                fputc('\n', f);
        }
        fprintf(f, "  %-22s %s\n", "--help", "this text");
        fprintf(f, "\nDurations: 500ms, 30s, 10m, 1h, 2d (a bare number is "
                   "seconds). Exit status: 0 ok, 1 failure, 2 usage error.\n");
}
