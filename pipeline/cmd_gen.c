/* placeholder, replaced by the gen command */
#include <stdio.h>
#include "tokentally/cli.h"
int tt_cmd_gen(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 2; }
