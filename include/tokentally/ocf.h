/* Avro Object Container Files: reader and writer.
 *
 * The reader hands out one block at a time, still compressed, so that callers
 * can decompress and decode blocks on several threads; tt_ocf_decompress()
 * does that part. Codecs: null, deflate (libdeflate), snappy (with its
 * CRC-32 check). */
#ifndef TT_OCF_H
#define TT_OCF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tokentally/buf.h"
#include "tokentally/input.h"

typedef enum tt_ocf_codec {
        TT_OCF_NULL,
        TT_OCF_DEFLATE,
        TT_OCF_SNAPPY,
} tt_ocf_codec;

/* Largest block (compressed or not) we accept: a cap, not a tuning knob. */
#define TT_OCF_MAX_BLOCK (64u << 20)

typedef struct tt_ocf_reader tt_ocf_reader;

/* Reads and checks the header from in (not owned; keep it open while the
 * reader lives). NULL with a reason if in is not an OCF file, the codec is
 * unknown, or the header is truncated. */
tt_ocf_reader *tt_ocf_reader_new(tt_input *in, char *errstr, size_t errsize);
void tt_ocf_reader_destroy(tt_ocf_reader *r);
/* The writer schema JSON from the header (avro.schema). Owned by r. */
const char *tt_ocf_reader_schema(const tt_ocf_reader *r);
tt_ocf_codec tt_ocf_reader_codec(const tt_ocf_reader *r);

/* Reads the next block: *count records, compressed bytes into block
 * (reset first). Returns TT_ERR_OK, TT_ERR_EOF at a clean end,
 * TT_ERR_FORMAT for a truncated block or a wrong sync marker (the reader
 * then scans forward to the next sync marker so that later blocks are still
 * read; *skipped tells how many bytes were passed over), TT_ERR_IO, or
 * TT_ERR_LIMIT/NOMEM if block cannot hold the block (give it a max of at
 * least TT_OCF_MAX_BLOCK). After a truncated block every call returns EOF. */
int tt_ocf_reader_next(tt_ocf_reader *r, int64_t *count, tt_buf *block,
                       size_t *skipped, char *errstr, size_t errsize);

/* Decompresses one block into out (reset first). TT_ERR_FORMAT on corrupt
 * data or a CRC mismatch. Thread-safe (per-call state only). */
int tt_ocf_decompress(tt_ocf_codec codec, const uint8_t *in, size_t len,
                      tt_buf *out, char *errstr, size_t errsize);

typedef struct tt_ocf_writer tt_ocf_writer;

/* Writes the header to f (not owned) with schema_json and codec; blocks hold
 * up to block_records records. */
tt_ocf_writer *tt_ocf_writer_new(FILE *f, const char *schema_json,
                                 tt_ocf_codec codec, size_t block_records,
                                 char *errstr, size_t errsize);
/* Appends one already-encoded record. */
int tt_ocf_writer_append(tt_ocf_writer *w, const uint8_t *rec, size_t len);
/* Flushes the last block and frees w (f stays open). NULL is fine. */
int tt_ocf_writer_close(tt_ocf_writer *w);

#endif
