/* From parsed options to an engine configuration: the part that `run`,
 * `replay` and `demo` share, so that an option means the same in each. */
#ifndef TT_SETUP_H
#define TT_SETUP_H

#include <stddef.h>

#include "tokentally/engine.h"
#include "tokentally/options.h"

typedef struct tt_setup {
        tt_engine_conf conf;
        tt_origin_map *origins; /* owned */
        const char *rules[64];
        int workers; /* resolved: >= 1 */
} tt_setup;

/* Fills su from o (grace, late, retain-weeks, streak, origin-map, workers,
 * idle-timeout and max-future where cmd has them). 0, or -1 with a reason.
 * su must be released with tt_setup_free even on failure. */
int tt_setup_engine(tt_setup *su, const tt_opts *o, unsigned cmd, char *errstr,
                    size_t errsize);
void tt_setup_free(tt_setup *su);

#endif
