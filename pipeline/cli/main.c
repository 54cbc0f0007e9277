/* tokentally: dispatch to a subcommand; --help, help and --version. Exit
 * status everywhere: 0 ok, 1 runtime failure, 2 usage error. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/cli.h"

/* jemalloc (linked in place of malloc) reads this at its start. Freed
 * pages go back to the system after 1 s instead of its default 10 s: a
 * closed week frees its tables and sort arrays at once, and with 10 s of
 * dirty pages kept the 12 x 100k replay peaked at 96.2 MiB; with 1 s,
 * 90.8-92.8 MiB at the same speed (1.5-1.8 s; three runs each). MALLOC_CONF
 * in the environment still overrides it. */
const char *malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";

static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *what;
} commands[] = {
    {"run", tt_cmd_run, "the Kafka stage"},
    {"demo", tt_cmd_demo, "the Kafka stage on an embedded cluster"},
    {"replay", tt_cmd_replay, "replay event files through the engine"},
    {"gen", tt_cmd_gen, "generate a synthetic event history"},
    {"tail", tt_cmd_tail, "print an output topic as JSON or a leaderboard"},
    {"serve", tt_cmd_serve, "the leaderboard as a live page and a JSON API"},
    {"report", tt_cmd_report, "the page as one HTML file, data inlined"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f) {
        fprintf(f, "usage: tokentally <command> [options]\n"
                   "       tokentally --version | --help | help <command>\n"
                   "\ncommands:\n");
        for (size_t i = 0; i < NCOMMANDS; i++)
                fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].what);
        fprintf(f, "  %-8s %s\n", "version", "print the versions and exit");
        fprintf(f, "\n'tokentally <command> --help' lists its options.\n"
                   "Exit status: 0 ok, 1 failure, 2 usage error.\n");
}

/* librdkafka from the loaded library; Avro C has no version call, so the
 * one pkg-config gave at build time (the -dev package's). */
static int version(void) {
        printf("tokentally %s\nlibrdkafka %s (built with %s)\n"
               "Avro C %s (built with; the library has no version call)\n",
               TT_VERSION, rd_kafka_version_str(), TT_RDKAFKA_BUILD_VERSION,
               TT_AVRO_VERSION);
        return 0;
}

static int dispatch(const char *name, int argc, char **argv) {
        for (size_t i = 0; i < NCOMMANDS; i++)
                if (!strcmp(name, commands[i].name))
                        return commands[i].fn(argc, argv);
        fprintf(stderr,
                "tokentally: unknown command '%s'; 'tokentally --help' lists "
                "the commands\n",
                name);
        return 2;
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        const char *a = argv[1];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(a, "--version") || !strcmp(a, "-V") ||
            !strcmp(a, "version")) {
                if (argc > 2) {
                        fprintf(stderr, "tokentally: %s takes no argument\n",
                                a);
                        return 2;
                }
                return version();
        }
        if (!strcmp(a, "help")) {
                if (argc == 2) {
                        usage(stdout);
                        return 0;
                }
                if (argc > 3) {
                        fprintf(stderr, "tokentally: help takes one "
                                        "command\n");
                        return 2;
                }
                char *help[] = {"--help", NULL};
                return dispatch(argv[2], 1, help);
        }
        if (a[0] == '-') {
                fprintf(stderr,
                        "tokentally: '%s' before the command; usage: "
                        "tokentally <command> [options] ('tokentally --help' "
                        "lists the commands)\n",
                        a);
                return 2;
        }
        return dispatch(a, argc - 2, argv + 2);
}
