/* A byte source for file replay: a path, or "-" for standard input, with
 * gzip detected by its magic bytes and inflated transparently. Sequential
 * reads only, so pipes work. */
#ifndef TT_INPUT_H
#define TT_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tt_input tt_input;

/* Opens path ("-" = stdin). NULL on failure with the reason in errstr. */
tt_input *tt_input_open(const char *path, char *errstr, size_t errsize);
/* The most bytes tt_input_peek looks ahead. */
#define TT_INPUT_PEEK_MAX 16
/* Looks at the next n (<= TT_INPUT_PEEK_MAX) decompressed bytes without
 * consuming them: the following reads return them again. For recognising a
 * format on a pipe, which cannot be reopened. Returns the count, less than
 * n only at the end of input, or -1 on error (reason in errstr; a corrupt
 * gzip stream stays an error for the reads after, see tt_input_corrupt). */
ssize_t tt_input_peek(tt_input *in, void *buf, size_t n, char *errstr,
                      size_t errsize);
/* Reads up to n decompressed bytes. Returns the count, 0 at end of input,
 * -1 on error (reason in errstr: I/O error, corrupt or truncated gzip). */
ssize_t tt_input_read(tt_input *in, void *buf, size_t n, char *errstr,
                      size_t errsize);
/* After tt_input_read returned -1: true when the data is bad (corrupt or
 * truncated gzip), false for an I/O error or out of memory. Readers treat
 * the first as the end of the readable data (what came before counts, the
 * rest is one dead letter) and the second as fatal. */
bool tt_input_corrupt(const tt_input *in);
/* Size of the underlying file in bytes, -1 when unknown (pipe). */
int64_t tt_input_size(const tt_input *in);
/* Bytes of the underlying file consumed so far (compressed bytes for gzip),
 * for progress reporting against tt_input_size(). */
int64_t tt_input_pos(const tt_input *in);
/* The path as given. Owned by in. */
const char *tt_input_name(const tt_input *in);
/* Closes the file (not stdin) and frees; NULL is fine. */
void tt_input_close(tt_input *in);

#endif
