/* The one table of command-line options (librdkafka's rd_kafka_properties[]
 * idea): name, type, default, bounds, help, the commands that take it. The
 * parser, --help, environment variables (TOKENTALLY_<NAME>) and the README
 * option list all come from it. Unknown options are errors. */
#ifndef TT_OPTIONS_H
#define TT_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tokentally/duration.h"

enum {
        TT_CMD_RUN = 1u << 0,
        TT_CMD_REPLAY = 1u << 1,
        TT_CMD_GEN = 1u << 2,
        TT_CMD_DEMO = 1u << 3,
        TT_CMD_TAIL = 1u << 4,
        TT_CMD_SERVE = 1u << 5,
        TT_CMD_REPORT = 1u << 6,
};

typedef enum tt_opt_type {
        TT_OPT_STR,      /* free text, or one of choices */
        TT_OPT_INT,      /* integer within [min, max] */
        TT_OPT_DOUBLE,   /* number within [min, max] */
        TT_OPT_DURATION, /* "500ms", "30s", "10m", "1h", "2d"; bare = s */
        TT_OPT_FLAG,     /* no value; env: 1/true/yes or 0/false/no */
        TT_OPT_LIST,     /* repeatable; each occurrence adds a value */
} tt_opt_type;

typedef struct tt_opt_def {
        const char *name; /* long name without "--" */
        char short_name;  /* e.g. 'X', or 0 */
        tt_opt_type type;
        const char *def;     /* default as text, NULL = none */
        const char *choices; /* "revise|dlq", or NULL */
        double min, max;     /* bounds for INT/DOUBLE/DURATION (ms) */
        unsigned cmds;       /* TT_CMD_* bits */
        const char *help;
        /* Extra check of a given value (not of the default): 0, or -1 with
         * what the option accepts in why ("is not HOST:PORT ..."). */
        int (*check)(const char *v, char *why, size_t whysize);
} tt_opt_def;

/* A name may have several rows with disjoint cmds when the commands take
 * different values (gen --format avro|jsonl, tail --format json|table):
 * each command sees only its row, in its errors and its --help. */

extern const tt_opt_def tt_opt_defs[];
extern const size_t tt_opt_ndefs;

typedef struct tt_opts tt_opts;

/* Parses argv[0..argc) (argv[0] is the first argument after the command
 * name) for command cmd, then fills unset options from the environment.
 * "--name value", "--name=value", "-X k=v"; "--" ends options; a lone "-"
 * is a positional argument. NULL on error with a one-line reason. *help is
 * set when --help/-h was given. */
tt_opts *tt_opts_parse(unsigned cmd, int argc, char **argv, bool *help,
                       char *errstr, size_t errsize);
void tt_opts_destroy(tt_opts *o);

/* Typed getters: the given value, else the environment, else the default.
 * Asking for an option not in the table or of another type aborts (a
 * programming error, not an input error). */
const char *tt_opts_str(const tt_opts *o, const char *name); /* NULL: unset */
int64_t tt_opts_int(const tt_opts *o, const char *name);
double tt_opts_double(const tt_opts *o, const char *name);
int64_t tt_opts_duration_ms(const tt_opts *o, const char *name);
bool tt_opts_flag(const tt_opts *o, const char *name);
/* True when the option was given on the command line or in the env. */
bool tt_opts_given(const tt_opts *o, const char *name);
/* Values of a LIST option in order; *n is 0 when none was given (then the
 * caller applies the documented default). */
const char *const *tt_opts_list(const tt_opts *o, const char *name, size_t *n);
size_t tt_opts_npos(const tt_opts *o);
const char *tt_opts_pos(const tt_opts *o, size_t i);

/* Prints usage and every option of cmd with its default and env name. */
void tt_opts_help(FILE *f, unsigned cmd, const char *usage);

/* Value checks of the table (tt_opt_def.check). */
int tt_check_nonempty(const char *v, char *why, size_t whysize);
/* HOST:PORT, port 0..65535 (0: any free port); "off" or "" (none). */
int tt_check_listen_addr(const char *v, char *why, size_t whysize);
/* [SCHEME://]HOST[:PORT], comma-separated; port 1..65535. */
int tt_check_brokers(const char *v, char *why, size_t whysize);
/* A Kafka topic name: 1..249 of [A-Za-z0-9._-], not "." or "..". */
int tt_check_topic(const char *v, char *why, size_t whysize);
int tt_check_topic_or_empty(const char *v, char *why, size_t whysize);
/* http://HOST... or https://HOST... */
int tt_check_url(const char *v, char *why, size_t whysize);
/* Comma-separated topic names. */
int tt_check_topic_list(const char *v, char *why, size_t whysize);

#endif
