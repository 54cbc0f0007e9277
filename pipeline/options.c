/* The option table and its parser. Every option of every command is listed
 * once here; --help, environment variables and validation derive from it. */
#include "tokentally/options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/mem.h"

#define R TT_CMD_RUN
#define P TT_CMD_REPLAY
#define G TT_CMD_GEN
#define D TT_CMD_DEMO
#define T TT_CMD_TAIL
#define DAY_MS 86400000.0

const tt_opt_def tt_opt_defs[] = {
    /* Engine semantics, shared by run and replay (SPEC §3). */
    {"grace", 0, TT_OPT_DURATION, "10m", NULL, 0, 28 * DAY_MS, R | P | D,
     "how long after a week ends it stays open for out-of-order events"},
    {"late", 0, TT_OPT_STR, "revise", "revise|dlq", 0, 0, R | P | D,
     "events for a closed week: revise its rows, or dead-letter them"},
    {"retain-weeks", 0, TT_OPT_INT, "12", NULL, 1, 520, R | P | D,
     "closed weeks kept for revisions; older events are too_late"},
    {"max-keys", 0, TT_OPT_INT, "0", NULL, 0, 4294967294.0, R | P | D,
     "distinct models one week may hold per counting shard (worker); "
     "events of further models are dead letters key_limit (0 = unbounded: "
     "memory follows the distinct (week, model) cells retained)"},
    {"streak", 0, TT_OPT_LIST, NULL, NULL, 0, 0, R | P | D,
     "streak rule, repeatable (default: leader:origin, leader:model, "
     "leader:origin:CN,US)"},
    {"origin-map", 0, TT_OPT_STR, NULL, NULL, 0, 0, R | P | D,
     "JSON object author -> origin code (default: schemas/origins.json, "
     "compiled in)"},
    {"input-format", 0, TT_OPT_STR, NULL, "avro|avro-raw|json|ocf|jsonl", 0, 0,
     R | P, "input encoding (run: avro; replay: from the file extension)"},
    {"idle-timeout", 0, TT_OPT_DURATION, "30s", NULL, 0, 365 * DAY_MS, R | D,
     "a partition with no event for this long stops holding the watermark"},
    {"max-future", 0, TT_OPT_DURATION, "1h", NULL, 0, 365 * DAY_MS, R | D,
     "events further ahead of the wall clock are future_time"},
    {"emit-interval", 0, TT_OPT_DURATION, "60s", NULL, 0, DAY_MS, R | P | D,
     "PROVISIONAL rollups of open weeks this often (0 = never)"},
    {"emit-provisional", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, P,
     "replay: emit PROVISIONAL rollups (by event time, every "
     "--emit-interval of watermark progress)"},
    {"close-at-eof", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, R,
     "close all open weeks and exit when every partition is at its end"},
    {"keep", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, D,
     "demo: keep the embedded Kafka cluster up after the leaderboard, and "
     "print its address, until SIGINT/SIGTERM (Ctrl-C)"},
    {"max-record-bytes", 0, TT_OPT_INT, "1048576", NULL, 1024, 64 << 20, P,
     "replay: longest JSON line; a longer one is one dead letter malformed "
     "(payload: its first bytes) and the rest of it is skipped"},
    {"allow-all-dead", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, P,
     "replay: exit 0 and write the outputs even when every record read was "
     "a dead letter (by default such a run fails, exit 1)"},
    {"workers", 0, TT_OPT_INT, "0", NULL, 0, 256, R | P | D,
     "worker threads (0 = number of cores)"},
    {"out", 0, TT_OPT_STR, NULL, NULL, 0, 0, P | G,
     "replay: output directory; gen: output file or - for stdout"},
    /* Kafka (SPEC §7). */
    {"brokers", 0, TT_OPT_STR, "localhost:9092", NULL, 0, 0, R | P | G | T,
     "Kafka bootstrap servers"},
    {"group", 0, TT_OPT_STR, "tokentally", NULL, 0, 0, R, "consumer group"},
    {"input-topic", 0, TT_OPT_STR, "token-usage.events", NULL, 0, 0, R | G | D,
     "topic of TokenEvents"},
    {"rollups-topic", 0, TT_OPT_STR, "token-usage.rollups", NULL, 0, 0,
     R | P | D, "topic of WeeklyRollups"},
    {"streaks-topic", 0, TT_OPT_STR, "token-usage.streaks", NULL, 0, 0,
     R | P | D, "topic of StreakChanges"},
    {"dlq-topic", 0, TT_OPT_STR, "token-usage.dead-letters", NULL, 0, 0,
     R | P | D, "topic of dead letters"},
    {"output-format", 0, TT_OPT_STR, "avro", "avro|json", 0, 0, R | P | D,
     "encoding of the output topics (avro: Confluent framing)"},
    {"schema-registry", 0, TT_OPT_STR, NULL, NULL, 0, 0, R | G,
     "URL of a Confluent-compatible Schema Registry: output (and gen's) "
     "Avro schemas are registered under <topic>-value (BACKWARD) and "
     "framed with its ids; run reads input writer schemas by id"},
    {"from-timestamp", 0, TT_OPT_INT, NULL, NULL, 0, 9.2e18, R,
     "start a new group at the first message whose Kafka message "
     "timestamp is at or after this (epoch ms)"},
    {"from-beginning", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, R | T,
     "run: reset the group to the earliest offsets; tail: read the topic "
     "from its earliest offsets (default: new records only)"},
    {"guarantee", 0, TT_OPT_STR, "exactly-once", "exactly-once|at-least-once",
     0, 0, R, "delivery guarantee"},
    {"state-topic", 0, TT_OPT_STR, "token-usage.state", NULL, 0, 0, R,
     "exactly-once: compacted changelog of the merged counters (created "
     "if missing; keys are prefixed with the group)"},
    {"partials-topic", 0, TT_OPT_STR, "", NULL, 0, 0, R,
     "exactly-once: internal topic from the instances to the merger "
     "(default GROUP.partials; created if missing)"},
    {"instance-id", 0, TT_OPT_STR, "", NULL, 0, 0, R,
     "exactly-once: this instance's stable name: transactional.id "
     "GROUP-ID, and when given, group.instance.id ID (static membership; "
     "default: the host name, dynamic membership)"},
    {"commit-interval", 0, TT_OPT_DURATION, "", NULL, 1, 3600 * 1000, R,
     "how often offsets (and, exactly-once, transactions) commit "
     "(default 200ms exactly-once, 5s at-least-once)"},
    /* Operations. */
    {"metrics-addr", 0, TT_OPT_STR, "0.0.0.0:9464", NULL, 0, 0, R,
     "HOST:PORT serving /metrics, /healthz, /readyz (off or \"\" = none; "
     "port 0 = any free port)"},
    {"log-level", 0, TT_OPT_STR, "info", "error|warn|info|debug", 0, 0, R,
     "JSON log lines on stderr at this level and above"},
    {"X", 'X', TT_OPT_LIST, NULL, NULL, 0, 0, R | P | G | D | T,
     "key=value passed to librdkafka, repeatable"},
    /* gen (SPEC §8, §9). */
    {"scenario", 0, TT_OPT_STR, "april-2026", "april-2026", 0, 0, G,
     "scenario to generate"},
    {"scale", 0, TT_OPT_DOUBLE, "1e-4", NULL, 1e-9, 1, G,
     "token volume relative to the real headline"},
    {"seed", 0, TT_OPT_INT, "1", NULL, 0, 9.2e18, G, "random seed"},
    {"invalid-rate", 0, TT_OPT_DOUBLE, "0", NULL, 0, 1, G,
     "extra invalid records per valid one"},
    {"format", 0, TT_OPT_STR, NULL, "avro|jsonl|json|table", 0, 0, G | T,
     "gen: avro|jsonl (default: from the --out extension); tail: json "
     "(one object per record, the default) or table (a leaderboard)"},
    /* tail (README "Consuming the outputs"). */
    {"topic", 0, TT_OPT_LIST, NULL, NULL, 0, 0, T,
     "output topic to read (rollups, streaks or dead letters); repeatable, "
     "or comma-separated"},
    {"exit-at-eof", 0, TT_OPT_FLAG, NULL, NULL, 0, 0, T,
     "exit when every partition is at its end (default: follow until "
     "SIGINT/SIGTERM)"},
    {"codec", 0, TT_OPT_STR, "deflate", "null|deflate|snappy", 0, 0, G,
     "Avro container codec"},
    {"rate", 0, TT_OPT_DOUBLE, "0", NULL, 0, 1e9, G,
     "with --brokers: events per second (0 = as fast as the broker takes "
     "them)"},
};
const size_t tt_opt_ndefs = sizeof(tt_opt_defs) / sizeof(tt_opt_defs[0]);

#undef R
#undef P
#undef G
#undef D
#undef T

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

int tt_duration_parse(const char *s, int64_t *ms) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || v < 0 || !isfinite(v))
                return -1;
        double mul;
        if (!*end || !strcmp(end, "s"))
                mul = 1000;
        else if (!strcmp(end, "ms"))
                mul = 1;
        else if (!strcmp(end, "m"))
                mul = 60e3;
        else if (!strcmp(end, "h"))
                mul = 3600e3;
        else if (!strcmp(end, "d"))
                mul = 86400e3;
        else
                return -1;
        if (v * mul > 9.2e18)
                return -1;
        *ms = (int64_t)llround(v * mul);
        return 0;
}

static int find_def(const char *name, size_t len) {
        for (size_t i = 0; i < tt_opt_ndefs; i++)
                if (strlen(tt_opt_defs[i].name) == len &&
                    !memcmp(tt_opt_defs[i].name, name, len))
                        return (int)i;
        return -1;
}

static int check_value(const tt_opt_def *d, const char *v, char *errstr,
                       size_t errsize) {
        char *end;
        switch (d->type) {
        case TT_OPT_INT: {
                errno = 0;
                long long x = strtoll(v, &end, 10);
                if (end == v || *end || errno || x < d->min || x > d->max) {
                        snprintf(errstr, errsize,
                                 "--%s: '%s' is not an integer in [%.0f, "
                                 "%.0f]",
                                 d->name, v, d->min, d->max);
                        return -1;
                }
                return 0;
        }
        case TT_OPT_DOUBLE: {
                errno = 0;
                double x = strtod(v, &end);
                if (end == v || *end || errno || !(x >= d->min) ||
                    !(x <= d->max)) {
                        snprintf(errstr, errsize,
                                 "--%s: '%s' is not a number in [%g, %g]",
                                 d->name, v, d->min, d->max);
                        return -1;
                }
                return 0;
        }
        case TT_OPT_DURATION: {
                int64_t ms;
                if (tt_duration_parse(v, &ms) || ms < d->min || ms > d->max) {
                        snprintf(errstr, errsize,
                                 "--%s: '%s' is not a duration such as 500ms, "
                                 "30s, 10m, 1h, 2d (at most %.0f s)",
                                 d->name, v, d->max / 1000);
                        return -1;
                }
                return 0;
        }
        case TT_OPT_FLAG:
                if (strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") &&
                    strcmp(v, "false") && strcmp(v, "yes") && strcmp(v, "no")) {
                        snprintf(errstr, errsize,
                                 "--%s: '%s' is not one of 1, 0, true, false, "
                                 "yes, no",
                                 d->name, v);
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
                        snprintf(errstr, errsize, "--%s: '%s' is not one of %s",
                                 d->name, v, d->choices);
                        return -1;
                }
                return 0;
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
                        i = find_def(name, nlen);
                }
                if (i < 0 || !(tt_opt_defs[i].cmds & cmd)) {
                        snprintf(errstr, errsize, "unknown option '%s'", arg);
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
        int i = find_def(name, strlen(name));
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
        int i = find_def(name, strlen(name));
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
        fprintf(f, "usage: %s\n\noptions:\n", usage);
        for (size_t i = 0; i < tt_opt_ndefs; i++) {
                const tt_opt_def *d = &tt_opt_defs[i];
                if (!(d->cmds & cmd))
                        continue;
                char left[64];
                if (d->short_name)
                        snprintf(left, sizeof(left), "-%c key=value",
                                 d->short_name);
                else
                        snprintf(left, sizeof(left), "--%s%s", d->name,
                                 d->type == TT_OPT_FLAG ? "" : " V");
                fprintf(f, "  %-22s %s", left, d->help);
                if (d->choices)
                        fprintf(f, " [%s]", d->choices);
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
}
