/* An output folder whose files are replaced all together at the end of a
 * run that succeeded, or not at all: each file is written to a temporary
 * beside it (".NAME.XXXXXX", same folder, so rename(2) replaces it
 * atomically) and renamed over the old one only by tt_outdir_commit. A run
 * that fails, or is stopped by SIGINT, SIGTERM or SIGHUP, removes its
 * temporaries and leaves the old files as they were. */
#ifndef TT_OUTDIR_H
#define TT_OUTDIR_H

#include <stddef.h>
#include <stdio.h>

#define TT_OUTDIR_MAX_FILES 4

typedef struct tt_outdir tt_outdir;

/* Creates dir if missing (one level, as mkdir(2)) and a temporary for each
 * of the n (<= TT_OUTDIR_MAX_FILES) names. NULL on failure with the reason
 * in errstr ("cannot create output folder out: Permission denied"); what
 * it created is removed again. names must outlive the handle. Only one
 * handle may be open at a time (the signal handler knows one). */
tt_outdir *tt_outdir_open(const char *dir, const char *const *names, size_t n,
                          char *errstr, size_t errsize);
/* The temporary of names[i], open for writing. Owned by d. */
FILE *tt_outdir_file(tt_outdir *d, size_t i);
/* The final path of names[i] ("DIR/NAME"), for messages. Owned by d. */
const char *tt_outdir_path(const tt_outdir *d, size_t i);
/* Flushes, syncs and closes every temporary, then renames each over its
 * final name and syncs the folder. 0, or -1 with the reason in errstr; a
 * failure before the first rename leaves every old file as it was (and
 * says so), one during the renames says which files were replaced. */
int tt_outdir_commit(tt_outdir *d, char *errstr, size_t errsize);
/* Early sync of one output file. tt_outdir_commit's fsync makes the
 * results durable before they replace the old ones. With all of a large
 * output still to write, that is when the disk (and the host's cache under
 * a VM's disk) does the work: 0.4-0.6 s of waiting at the end of a replay
 * that wrote 398 MB of rows here, and starting the writes early
 * (sync_file_range) did not shorten it, the cache flush of the fsync
 * being most of it. So once its writer has reported TT_WRITEBACK_STEP
 * bytes, a file gets a thread of its own that fdatasyncs it each time
 * another step has been written: the disk works while the run does, the
 * writer never waits for it, and the commit's fsync finds little left.
 * Failures are left to the commit's fsync, which reports them. */
#define TT_WRITEBACK_STEP (8u << 20)
typedef struct tt_writeback tt_writeback;
/* The writeback of names[i]'s temporary, for its writer. Owned by d. */
tt_writeback *tt_outdir_writeback(tt_outdir *d, size_t i);
/* n more bytes were written to f, the file of wb (with fwrite: f is
 * flushed before a sync). From the one thread that writes f; NULL wb does
 * nothing. */
void tt_writeback_wrote(tt_writeback *wb, FILE *f, size_t n);
/* Early syncs done, once tt_outdir_commit or _close has stopped them (0
 * before); for tests. */
unsigned tt_writeback_syncs(const tt_writeback *wb);

/* Removes the temporaries that were not committed, and the folder if this
 * handle created it and it is empty, then frees. NULL is fine. */
void tt_outdir_close(tt_outdir *d);

#endif
