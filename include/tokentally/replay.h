/* File replay: reads event files (Avro OCF, JSON Lines, gzip JSON Lines, or
 * standard input), decodes them on worker threads and applies the events to
 * an engine in one deterministic order, so that 1 or N workers give the
 * same outputs byte for byte.
 *
 * Each file is one input partition. Files are read round-robin, one chunk
 * (about 1 MiB of JSON Lines, or one OCF block) at a time; chunk boundaries
 * depend only on the input, never on thread timing. */
#ifndef TT_REPLAY_H
#define TT_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/engine.h"

typedef enum tt_file_format {
        TT_FMT_AUTO,  /* by extension, then by magic bytes (stdin too) */
        TT_FMT_OCF,   /* Avro Object Container File */
        TT_FMT_JSONL, /* JSON Lines, plain or gzip */
} tt_file_format;

typedef struct tt_replay_progress {
        uint64_t events; /* records read so far */
        uint64_t dead_letters;
        int64_t bytes_read;  /* of the files on disk */
        int64_t bytes_total; /* -1 when unknown (pipe) */
        double seconds;
} tt_replay_progress;

typedef struct tt_replay_conf {
        const char *const *files; /* "-" = stdin */
        size_t nfiles;
        tt_file_format format;
        int workers;       /* decode threads, >= 1 */
        tt_engine *engine; /* borrowed */
        /* Every dead letter, decode failures and engine rejections alike.
         * detail and source are NUL-terminated; payload is the record's
         * original bytes. Non-zero return stops the replay. */
        int (*dead_letter)(void *opaque, tt_reason reason, const char *detail,
                           const char *source, int64_t offset,
                           const uint8_t *payload, size_t len);
        /* Called about every 250 ms from the applying thread; may be NULL. */
        void (*progress)(void *opaque, const tt_replay_progress *p);
        void *opaque;
        /* PROVISIONAL rows each time the watermark moved this far. */
        bool emit_provisional;
        int64_t emit_interval_ms;
        /* The longest JSON line (without its line end) decoded: a longer
         * line is one dead letter malformed at its own line index, whose
         * payload is its first max_record_bytes bytes, and the rest of it
         * is read past without being held, so memory stays bounded and
         * later offsets stay exact. 0: TT_REPLAY_RECORD_DEFAULT; at most
         * TT_REPLAY_RECORD_MAX. */
        size_t max_record_bytes;
        /* Processing-time clock for emitted_at (ms); NULL = wall clock. */
        int64_t (*clock)(void *opaque);
} tt_replay_conf;

#define TT_REPLAY_RECORD_DEFAULT (1u << 20)
#define TT_REPLAY_RECORD_MAX (64u << 20)

typedef struct tt_replay_stats {
        uint64_t records; /* valid + invalid records read */
        uint64_t accepted;
        uint64_t dead_letters;
        int64_t bytes;
        double seconds;
        /* How the files were read (format given, by extension or by their
         * first bytes): for telling a user who fed the wrong format. */
        uint32_t files_ocf, files_jsonl;
} tt_replay_stats;

/* Runs the replay to the end of every file and closes all open weeks.
 * Returns 0, or a tt_err with a one-line reason (unreadable file, bad
 * format, a sink error). Invalid records are never an error. */
int tt_replay_run(const tt_replay_conf *conf, tt_replay_stats *stats,
                  char *errstr, size_t errsize);

/* The format of path by its extension, else TT_FMT_AUTO. */
tt_file_format tt_file_format_of(const char *path);

#endif
