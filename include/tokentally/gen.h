/* Synthetic event histories. The april-2026 scenario reproduces the weekly
 * origin totals of the headline (SPEC §9) exactly at any scale. The
 * generator is deterministic for a given (scale, seed, invalid_rate). */
#ifndef TT_GEN_H
#define TT_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "tokentally/event.h"

typedef struct tt_gen_conf {
        const char *scenario; /* "april-2026" */
        double scale;         /* default 1e-4; 1e-9..1 (1 = 27 T a week) */
        uint64_t seed;        /* default 1 */
        double invalid_rate;  /* extra invalid records per valid one, 0..1,
                                 default 0. They come on top: the valid
                                 events are the same as with 0. */
        int text_output;      /* 1 when the sink writes JSON text, so
                                 malformed records can be produced as raw
                                 bytes; 0 (Avro) limits invalid records to
                                 those an Avro record can express */
} tt_gen_conf;

typedef struct tt_gen_sink {
        /* A decoded event, valid or carrying a semantic defect. */
        int (*event)(void *opaque, const tt_event *ev);
        /* Raw bytes of a malformed record (only when text_output): one
         * JSON Lines line without its '\n', never containing one. */
        int (*raw)(void *opaque, const uint8_t *p, size_t n);
} tt_gen_sink;

/* Runs the scenario, calling sink for each record in arrival order. A valid
 * event is never more than 4 minutes older than one before it, and never
 * crosses into another week; invalid records carry the current stream time
 * (except the out-of-range ones). Strings in an event are valid during the
 * callback only. Allocates nothing.
 * Returns 0, or a tt_err (unknown scenario, bad scale, a sink error) with a
 * reason in errstr. */
int tt_gen_run(const tt_gen_conf *conf, const tt_gen_sink *sink, void *opaque,
               char *errstr, size_t errsize);

/* The checks of tt_gen_run without generating anything, so that a command
 * can reject bad options before it creates its output. 0 or TT_ERR_INVAL
 * with the reason in errstr. */
int tt_gen_check(const tt_gen_conf *conf, char *errstr, size_t errsize);

/* The weeks a scenario spans: the index of its first (tt_week_of) and how
 * many, for progress and summaries. 0, or TT_ERR_INVAL for an unknown
 * scenario. */
int tt_gen_weeks(const char *scenario, int32_t *first, int *nweeks);

#endif
