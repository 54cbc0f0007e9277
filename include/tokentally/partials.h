/* Records on the partials topic: what each instance's front sends to the
 * merger (exactly-once stage, see stage.h). One partition, so the merger
 * sees every front's records in one order; written and read inside Kafka
 * transactions, so a record counts exactly once.
 *
 *   cells:  'C' 1 | u32 nreports | nreports x (u32 partition, i64
 *           max_time, u8 flags: 1 idle, 2 at end) | u32 n | n x (u8 'm'
 *           or 'o', u32 week, bytes model or u32 origin, cell)
 *   event:  'E' 1 | u32 partition | i64 offset | u8 has_key [bytes key] |
 *           u8 has_value [bytes value]
 *
 * A cells record carries what a front counted since its last transaction
 * and then, for each partition it owns, the watermark those counts reach,
 * so the merger never learns a watermark before the counts behind it. An
 * event record forwards one input message whose week may already be closed
 * (see tt_engine_offer_forwarded) with its source position, so that the
 * merger can revise or dead-letter it with the original bytes. */
#ifndef TT_PARTIALS_H
#define TT_PARTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokentally/buf.h"
#include "tokentally/counters.h"

#define TT_PARTIAL_IDLE 1u
#define TT_PARTIAL_EOF 2u

/* Produces one finished record (chunking, below); 0 or an error. */
typedef int (*tt_partial_flush_fn)(void *opaque, const void *rec, size_t len);

/* A cells record under construction: begin, the reports, then the cells
 * (cells_mid between them), end. Counts are patched in at the end. */
typedef struct tt_partial_writer {
        tt_buf *b;
        size_t nrep_at, ncell_at;
        uint32_t nrep, ncell; /* of the record in b */
        int err;              /* sticky: the first buffer or flush error */
        /* Chunking (tt_partial_cells_chunked); max_len 0 = off. */
        size_t max_len;
        tt_partial_flush_fn flush;
        void *flush_opaque;
        tt_buf reports;   /* held back for the last record */
        uint32_t nchunks; /* records flushed before the one in b */
} tt_partial_writer;

void tt_partial_cells_begin(tt_partial_writer *w, tt_buf *b);
/* Optional, right after begin: keeps each record at most max_len bytes (a
 * front that counted 10^6 models in one interval would pass a topic's
 * max.message.bytes). Whenever the next cell would not fit, the record so
 * far goes to flush, with no reports, and a new one starts; the reports go
 * in the last record only, the one left in b at end. Produced in order in
 * one transaction, the records apply as the one would: cells add up, and
 * the watermarks come after every count behind them. The decoder needs no
 * change (a record without reports is valid). */
void tt_partial_cells_chunked(tt_partial_writer *w, size_t max_len,
                              tt_partial_flush_fn flush, void *opaque);
void tt_partial_report(tt_partial_writer *w, int32_t partition,
                       int64_t max_time, unsigned flags);
void tt_partial_cells_mid(tt_partial_writer *w);
void tt_partial_model(tt_partial_writer *w, int32_t week, tt_str model,
                      const tt_cell *c);
void tt_partial_origin(tt_partial_writer *w, int32_t week, tt_origin o,
                       const tt_cell *c);
/* 0, or the first buffer or flush error (TT_ERR_LIMIT past the buffer's
 * cap). The last record is in b (w->nrep and w->ncell are its counts). */
int tt_partial_cells_end(tt_partial_writer *w);

int tt_partial_event(tt_buf *b, int32_t partition, int64_t offset,
                     const void *key, size_t key_len, const void *value,
                     size_t value_len);

typedef struct tt_partial_visitor {
        void (*report)(void *opaque, int32_t partition, int64_t max_time,
                       unsigned flags);
        int (*model)(void *opaque, int32_t week, tt_str model,
                     const tt_cell *c);
        int (*origin)(void *opaque, int32_t week, tt_origin o,
                      const tt_cell *c);
        int (*event)(void *opaque, int32_t partition, int64_t offset,
                     const void *key, size_t key_len, const void *value,
                     size_t value_len);
} tt_partial_visitor;

/* Checks one record whole without applying anything: the layout, and
 * every field against what a front can write: weeks in
 * TT_MIN_WEEK..TT_MAX_WEEK, model slugs by the bad_model rules, origin
 * codes AA..ZZ, cells by tt_cell_check with at least one request,
 * partitions and offsets >= 0, report times null (INT64_MIN) or in
 * [2000-01-01, 2100-01-01), flags <= 3. TT_ERR_OK, or TT_ERR_FORMAT with
 * the reason in why (when why is not NULL). */
int tt_partial_check(const void *rec, size_t len, char *why, size_t whysize);

/* Decodes one record: cells first (in record order), then the reports;
 * events as one call. TT_ERR_FORMAT when tt_partial_check refuses it
 * (nothing is applied then), or the first non-zero visitor return
 * (TT_ERR_RANGE from a merge past TT_COUNT_MAX). */
int tt_partial_decode(const void *rec, size_t len, const tt_partial_visitor *v,
                      void *opaque);

/* A cell read from outside the process: counts in [0, TT_COUNT_MAX],
 * tokens = prompt + completion, at most TT_MAX_TOKENS_PER_REQUEST tokens
 * per request, and with requests a latest event time in [2000-01-01,
 * 2100-01-01) and an origin AA..ZZ. TT_ERR_FORMAT with a reason (why may
 * be NULL). Shared by the partials and the changelog decoders. */
int tt_cell_check(const tt_cell *c, char *why, size_t whysize);

#endif
