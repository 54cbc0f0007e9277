/* placeholder, replaced by the replay driver */
#include <stdio.h>
#include "tokentally/cli.h"
int tt_cmd_replay(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 2; }
