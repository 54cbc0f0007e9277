/* The metadata an at-least-once stage commits with each input offset: what
 * a restarted run needs to count again exactly what it must (stage.h).
 *
 *   tokentally:v1:oldest=2026-W03;end=1234;closed=2026-W14;rev=2;
 *   s=<hex rule>~<hex holder>~<length>;s=...
 *
 * oldest: the oldest week the run could still change; the committed offset
 * is the first offset of the week before it (counted again only as that
 * week's previous week). end: where the run had read to in this partition.
 * closed: the newest week it closed. rev: the highest revision it emitted.
 * s: each streak rule's holder and length in the week before oldest.
 * Older stages wrote only "oldest=": the rest is then unknown. Pure: no
 * Kafka, no I/O. */
#ifndef TT_COMMIT_META_H
#define TT_COMMIT_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_COMMIT_META_PREFIX "tokentally:v1:oldest="
/* Kafka's default offset.metadata.max.bytes is 4096. */
#define TT_COMMIT_META_MAX 4000
#define TT_COMMIT_META_STREAKS 16
#define TT_COMMIT_META_KEY_MAX 512
/* Bounds far below INT32_MAX, so that the next run's "+ 1"s cannot
 * overflow: no streak is longer than the weeks of 2000-2099, and a billion
 * revisions is more than any run emits. */
#define TT_COMMIT_META_LENGTH_MAX 5300
#define TT_COMMIT_META_REVISION_MAX 1000000000

typedef struct tt_commit_streak {
        char rule[TT_COMMIT_META_KEY_MAX + 1];
        char holder[TT_COMMIT_META_KEY_MAX + 1];
        size_t holder_len;
        int32_t length;
} tt_commit_streak;

typedef struct tt_commit_meta {
        int32_t oldest;   /* a week (tt_week_of) */
        int64_t end;      /* -1: unknown */
        int32_t closed;   /* INT32_MIN: none or unknown */
        int32_t revision; /* -1: unknown */
        size_t nstreaks;
        tt_commit_streak streaks[TT_COMMIT_META_STREAKS];
} tt_commit_meta;

/* Writes m as one NUL-terminated string of at most TT_COMMIT_META_MAX
 * bytes; streaks that do not fit are left out (the next run then starts
 * those streaks at the week before oldest). Returns the length. */
size_t tt_commit_meta_format(const tt_commit_meta *m, char *out, size_t size);
/* Parses len bytes (not NUL-terminated). 0, or -1 when it is not ours or
 * any field is malformed (the caller then treats the commit as carrying no
 * metadata). */
int tt_commit_meta_parse(const void *s, size_t len, tt_commit_meta *m);

#endif
