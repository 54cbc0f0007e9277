/* Entry points of the subcommands; main.c dispatches to them. Each returns
 * the process exit status and prints its own one-line errors. */
#ifndef TT_CLI_H
#define TT_CLI_H

int tt_cmd_replay(int argc, char **argv);
int tt_cmd_gen(int argc, char **argv);
int tt_cmd_run(int argc, char **argv);
int tt_cmd_demo(int argc, char **argv);
int tt_cmd_tail(int argc, char **argv);
int tt_cmd_serve(int argc, char **argv);
int tt_cmd_report(int argc, char **argv);

#endif
