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
/* Removes the temporaries that were not committed, and the folder if this
 * handle created it and it is empty, then frees. NULL is fine. */
void tt_outdir_close(tt_outdir *d);

#endif
