/* The metadata the exactly-once stage commits with its input offsets,
 * "tokentally:v2:wm=1775433600000" (the partition's watermark, epoch ms),
 * read back here so that a value another client (or a bad broker) left on
 * the group's offsets is checked before the stage trusts it. (The
 * at-least-once metadata, "tokentally:v1:oldest=...", is commit_meta.h's.)
 *
 * The parser returns TT_ERR_OK with the value, TT_ERR_EOF when the
 * metadata is not ours (absent, empty, another prefix: nothing to do), or
 * TT_ERR_FORMAT with a reason when it has our prefix but a value that
 * cannot be right (not a number, trailing bytes, a time outside
 * [2000-01-01, 2100-01-01)). */
#ifndef TT_OFFSET_META_H
#define TT_OFFSET_META_H

#include <stddef.h>
#include <stdint.h>

#define TT_OFFSET_META_WM_PREFIX "tokentally:v2:wm="

/* meta[0..len) is borrowed; it need not be NUL-terminated. */
int tt_offset_meta_wm(const void *meta, size_t len, int64_t *wm, char *errstr,
                      size_t errsize);

#endif
