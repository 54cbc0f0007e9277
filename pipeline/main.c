/* tokentally: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "tokentally/cli.h"

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
};

static void usage(FILE *f) {
        fprintf(f, "usage: tokentally <command> [options]\n\ncommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].what);
        fprintf(f, "\n'tokentally <command> --help' lists its options.\n");
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                usage(stdout);
                return 0;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(argv[1], commands[i].name))
                        return commands[i].fn(argc - 2, argv + 2);
        fprintf(stderr, "tokentally: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
}
