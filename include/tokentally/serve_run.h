/* `serve`'s main loop, shared by `tokentally serve` and `demo --serve`:
 * follow the output topics into a view and serve it on an address until
 * *stop. Prints "serving http://HOST:PORT/ ..." once listening and "ready:
 * ..." once caught up (stdout, flushed). */
#ifndef TT_SERVE_RUN_H
#define TT_SERVE_RUN_H

#include <signal.h>
#include <stddef.h>

#include "tokentally/serve_follow.h"

/* 0 when stopped, -1 with a reason (no broker, topic, address in use). */
int tt_serve_run(const tt_follow_conf *fc, const char *listen,
                 volatile sig_atomic_t *stop, char *errstr, size_t errsize);

#endif
