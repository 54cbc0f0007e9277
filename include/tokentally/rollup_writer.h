/* WeeklyRollups as JSON Lines into a file, encoded and written on a thread
 * of its own. A closed week of 10^5..10^6 models is that many rows; encoding
 * them (doubles in shortest form) and the write() copies were half of a
 * high-cardinality replay's time, all of it on the thread that applies
 * events. The caller's thread now only copies each row, in a compact form
 * with its strings (~30 bytes and the key), into a chunk; full chunks go to
 * the writer thread through a pool bounded in bytes (6 MiB by default,
 * chunks allocated as needed), so a week of 10^5 rows is queued without
 * waiting, memory stays bounded, and a slow disk or a bigger week holds the
 * caller back instead of growing a queue. Rows are written in the order
 * they were pushed. */
#ifndef TT_ROLLUP_WRITER_H
#define TT_ROLLUP_WRITER_H

#include <stddef.h>
#include <stdio.h>

#include "tokentally/outdir.h"
#include "tokentally/rollup.h"

typedef struct tt_rollup_writer tt_rollup_writer;

/* Writes to f (not closed here), reporting what it wrote to wb
 * (tt_outdir_writeback; NULL: none). NULL with errstr set on failure. */
tt_rollup_writer *tt_rollup_writer_new(FILE *f, tt_writeback *wb, char *errstr,
                                       size_t errsize);
/* The same with chunks handed over at chunk_bytes and at most budget_bytes
 * of them (two chunks at least): the defaults are 256 KiB and 6 MiB. For
 * tests that need many handovers and a full pool. */
tt_rollup_writer *tt_rollup_writer_new_sized(FILE *f, tt_writeback *wb,
                                             size_t chunk_bytes,
                                             size_t budget_bytes, char *errstr,
                                             size_t errsize);
/* Queues one row (its strings are copied). Returns the writer thread's
 * first error once it is known here (at the next chunk handover: up to
 * the pool's chunks of rows may be taken after it and dropped), so that the
 * engine stops; close reports it too. */
int tt_rollup_writer_push(tt_rollup_writer *w, const tt_rollup *r);
/* Writes what is queued, stops the thread and frees w (NULL is a no-op).
 * TT_ERR_OK, or the first error (TT_ERR_IO: errno is kept). */
int tt_rollup_writer_close(tt_rollup_writer *w);

#endif
