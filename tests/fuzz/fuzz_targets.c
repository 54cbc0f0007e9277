/* The fuzzed decoders (see fuzz_targets.h). Each function takes raw bytes
 * the way tokentally receives them from outside the process and drives the
 * decoder, and whatever consumes what it accepted, as the stage or replay
 * would. Invariants that a corrupt input must never break (a row's tokens
 * are its prompt plus completion tokens, counts never negative) abort, so a
 * silent miscount is a crash the fuzzer keeps. Deterministic: no clock, no
 * randomness, nothing kept between calls but decoders and the origin map. */
#include "fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tokentally/avro_event.h"
#include "tokentally/buf.h"
#include "tokentally/commit_meta.h"
#include "tokentally/engine.h"
#include "tokentally/err.h"
#include "tokentally/event.h"
#include "tokentally/framing.h"
#include "tokentally/input.h"
#include "tokentally/json_event.h"
#include "tokentally/ocf.h"
#include "tokentally/offset_meta.h"
#include "tokentally/origin_map.h"
#include "tokentally/partials.h"
#include "tokentally/schema_registry.h"
#include "tokentally/week.h"
#include "tokentally/wire.h"

extern const char tt_default_origins_json[];

/* A fixed processing time: 2026-04-06, inside the scenario's weeks. */
#define NOW_MS INT64_C(1775433600000)

static tt_origin_map *origins(void) {
        static tt_origin_map *map;
        if (!map) {
                char why[256];
                map = tt_origin_map_parse(tt_default_origins_json,
                                          strlen(tt_default_origins_json), why,
                                          sizeof(why));
                if (!map)
                        abort();
        }
        return map;
}

/* ---- a sink that checks what the engine emits --------------------------- */

static int check_rollup(void *opaque, const tt_rollup *r) {
        (void)opaque;
        if (r->tokens < 0 || r->prompt_tokens < 0 || r->completion_tokens < 0 ||
            r->requests < 0 ||
            r->tokens != r->prompt_tokens + r->completion_tokens)
                abort(); /* a corrupt count reached an output */
        return TT_ERR_OK;
}

static int check_streak(void *opaque, const tt_streak_change *s) {
        (void)opaque;
        if (s->holder_tokens < 0 || s->length_weeks < 1)
                abort();
        return TT_ERR_OK;
}

static const tt_sink checking_sink = {check_rollup, check_streak};

/* merger: the engine that takes partial cells and state records. */
static tt_engine *new_engine(bool merger) {
        tt_engine_conf c;
        tt_engine_conf_defaults(&c);
        c.origins = origins();
        c.max_models = 64;
        c.max_partitions = 64;
        if (merger) {
                c.idle_timeout_ms = 0;
                c.max_future_ms = -1;
        } else {
                c.nshards = 2;
        }
        char why[256];
        tt_engine *e =
            tt_engine_new(&c, &checking_sink, NULL, why, sizeof(why));
        if (!e)
                abort();
        return e;
}

/* ---- public decoders ------------------------------------------------------
 */

int tt_fuzz_json_event(const uint8_t *data, size_t size) {
        static tt_json_dec *dec;
        if (!dec && !(dec = tt_json_dec_new()))
                abort();
        tt_event ev;
        char detail[256];
        memset(&ev, 0, sizeof(ev));
        if (tt_json_decode_event(dec, (const char *)data, size, &ev, detail,
                                 sizeof(detail)) == TT_REASON_NONE)
                tt_event_validate(&ev, detail, sizeof(detail));
        return 0;
}

int tt_fuzz_avro_event(const uint8_t *data, size_t size) {
        static tt_avro_dec *dec;
        char detail[256];
        if (!dec && !(dec = tt_avro_dec_new(NULL, detail, sizeof(detail))))
                abort();
        tt_event ev;
        size_t used = 0;
        /* As a Confluent-framed Kafka value, then as a raw body. */
        int32_t id;
        const uint8_t *body;
        size_t blen;
        if (!tt_confluent_parse(data, size, &id, &body, &blen, detail,
                                sizeof(detail)) &&
            tt_avro_decode_event(dec, body, blen, &used, &ev, detail,
                                 sizeof(detail)) == TT_REASON_NONE) {
                if (used > blen)
                        abort();
                tt_event_validate(&ev, detail, sizeof(detail));
        }
        if (tt_avro_decode_event(dec, data, size, &used, &ev, detail,
                                 sizeof(detail)) == TT_REASON_NONE &&
            used > size)
                abort();
        return 0;
}

/* Decodes records from body until it is used up or one fails. */
static void decode_all(const tt_avro_dec *dec, const uint8_t *p, size_t n) {
        for (int i = 0; i < 64 && n; i++) {
                tt_event ev;
                size_t used = 0;
                char detail[256];
                if (tt_avro_decode_event(dec, p, n, &used, &ev, detail,
                                         sizeof(detail)) != TT_REASON_NONE)
                        return;
                if (used > n)
                        abort();
                tt_event_validate(&ev, detail, sizeof(detail));
                /* A writer record of no bytes (no fields, or only empty
                 * ones) decodes from nothing: a legal Avro record, whose
                 * missing TokenEvent fields make it a dead letter
                 * missing_field. Nothing more to read after it. */
                if (used == 0)
                        return;
                p += used;
                n -= used;
        }
}

/* A writer schema (JSON, up to the first NUL byte) and Avro bodies after
 * it, as a registry's schema and a producer's messages. */
int tt_fuzz_writer_schema(const uint8_t *data, size_t size) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t slen = nul ? (size_t)(nul - data) : size;
        char *schema = malloc(slen + 1);
        if (!schema)
                return 0;
        memcpy(schema, data, slen);
        schema[slen] = '\0';
        char why[512];
        tt_avro_dec *dec = tt_avro_dec_new(schema, why, sizeof(why));
        free(schema);
        if (!dec)
                return 0;
        if (nul)
                decode_all(dec, nul + 1, size - slen - 1);
        tt_avro_dec_destroy(dec);
        return 0;
}

/* The whole file path of replay for Avro: an OCF file (plain, or gzip as
 * tt_input sees it) read block by block, decompressed and decoded. */
int tt_fuzz_ocf(const uint8_t *data, size_t size) {
        int fd = memfd_create("fuzz-ocf", MFD_CLOEXEC);
        if (fd < 0)
                abort();
        size_t done = 0;
        while (done < size) {
                ssize_t k = write(fd, data + done, size - done);
                if (k <= 0)
                        abort();
                done += (size_t)k;
        }
        lseek(fd, 0, SEEK_SET);
        char path[64], why[512];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        tt_input *in = tt_input_open(path, why, sizeof(why));
        close(fd);
        if (!in)
                return 0;
        tt_ocf_reader *r = tt_ocf_reader_new(in, why, sizeof(why));
        tt_avro_dec *dec =
            r ? tt_avro_dec_new(tt_ocf_reader_schema(r), why, sizeof(why))
              : NULL;
        tt_buf block, out;
        tt_buf_init(&block, TT_OCF_MAX_BLOCK);
        tt_buf_init(&out, TT_OCF_MAX_BLOCK);
        for (int i = 0; r && i < 256; i++) {
                int64_t count;
                size_t skipped;
                int err = tt_ocf_reader_next(r, &count, &block, &skipped, why,
                                             sizeof(why));
                if (err == TT_ERR_FORMAT)
                        continue;
                if (err)
                        break;
                if (count < 0)
                        abort(); /* the reader promises a count >= 0 */
                if (!tt_ocf_decompress(tt_ocf_reader_codec(r), block.data,
                                       block.len, &out, why, sizeof(why)) &&
                    dec)
                        decode_all(dec, out.data, out.len);
        }
        tt_buf_free(&block);
        tt_buf_free(&out);
        tt_avro_dec_destroy(dec);
        tt_ocf_reader_destroy(r);
        tt_input_close(in);
        return 0;
}

int tt_fuzz_registry_answer(const uint8_t *data, size_t size) {
        int32_t id;
        if (!tt_registry_answer_id((const char *)data, size, &id) && id < 0)
                abort();
        tt_buf schema;
        tt_buf_init(&schema, 1u << 20);
        if (!tt_registry_answer_schema((const char *)data, size, &schema)) {
                char why[512];
                tt_avro_dec *dec = tt_avro_dec_new((const char *)schema.data,
                                                   why, sizeof(why));
                tt_avro_dec_destroy(dec);
        }
        tt_buf_free(&schema);
        return 0;
}

/* The at-least-once commit metadata: whatever parses is in range, and
 * writes back to text that parses to the same values. */
static void commit_meta(const uint8_t *data, size_t size) {
        static tt_commit_meta m, m2;
        static char text[TT_COMMIT_META_MAX + 1];
        if (tt_commit_meta_parse(data, size, &m))
                return;
        if (!tt_week_valid(m.oldest) ||
            (m.closed != INT32_MIN && !tt_week_valid(m.closed)) ||
            m.nstreaks > TT_COMMIT_META_STREAKS)
                abort();
        for (size_t i = 0; i < m.nstreaks; i++)
                if (m.streaks[i].length < 1 ||
                    m.streaks[i].holder_len > TT_COMMIT_META_KEY_MAX)
                        abort();
        size_t n = tt_commit_meta_format(&m, text, sizeof(text));
        if (tt_commit_meta_parse(text, n, &m2) || m2.oldest != m.oldest ||
            m2.end != m.end || m2.closed != m.closed ||
            m2.revision != m.revision || m2.nstreaks > m.nstreaks)
                abort();
}

int tt_fuzz_offset_meta(const uint8_t *data, size_t size) {
        commit_meta(data, size);
        int64_t wm;
        char why[256];
        if (!tt_offset_meta_wm(data, size, &wm, why, sizeof(why)) &&
            (wm < TT_MIN_EVENT_TIME_MS || wm >= TT_MAX_EVENT_TIME_MS))
                abort();
        return 0;
}

/* ---- internal topics ---------------------------------------------------- */

typedef struct merge_ctx {
        tt_engine *e;
        tt_json_dec *jd;
} merge_ctx;

static void mv_report(void *opaque, int32_t pid, int64_t max_time,
                      unsigned flags) {
        merge_ctx *m = opaque;
        tt_engine_partition_report(m->e, pid, max_time, flags & TT_PARTIAL_IDLE,
                                   flags & TT_PARTIAL_EOF);
}

static int mv_model(void *opaque, int32_t week, tt_str model,
                    const tt_cell *c) {
        merge_ctx *m = opaque;
        int err = tt_engine_merge_model(m->e, week, model, c);
        return err == TT_ERR_LIMIT ? TT_ERR_OK : err;
}

static int mv_origin(void *opaque, int32_t week, tt_origin o,
                     const tt_cell *c) {
        merge_ctx *m = opaque;
        return tt_engine_merge_origin(m->e, week, o, c);
}

static int mv_event(void *opaque, int32_t pid, int64_t off, const void *key,
                    size_t klen, const void *val, size_t vlen) {
        merge_ctx *m = opaque;
        tt_event ev;
        char detail[256];
        memset(&ev, 0, sizeof(ev));
        if (val && tt_json_decode_event(m->jd, val, vlen, &ev, detail,
                                        sizeof(detail)) == TT_REASON_NONE)
                tt_engine_offer_forwarded(m->e, &ev, NOW_MS, detail,
                                          sizeof(detail));
        return TT_ERR_OK;
}

/* Records split by a u32 length prefix, as a topic would hand them over. */
static const uint8_t *next_record(tt_rd *r, size_t *len) {
        return tt_get_bytes(r, len);
}

int tt_fuzz_partials(const uint8_t *data, size_t size) {
        static tt_json_dec *jd;
        if (!jd && !(jd = tt_json_dec_new()))
                abort();
        merge_ctx m = {new_engine(true), jd};
        static const tt_partial_visitor v = {mv_report, mv_model, mv_origin,
                                             mv_event};
        tt_rd r = tt_rd_init(data, size);
        size_t len;
        const uint8_t *rec;
        int nrec = 0;
        while (nrec++ < 64 && (rec = next_record(&r, &len)) != NULL) {
                int err = tt_partial_decode(rec, len, &v, &m);
                if (err && err != TT_ERR_FORMAT && err != TT_ERR_LIMIT)
                        break;
                tt_engine_tick(m.e, NOW_MS);
        }
        tt_engine_close_all(m.e, NOW_MS);
        tt_engine_destroy(m.e);
        return 0;
}

static int discard_put(void *opaque, int32_t week, uint32_t part,
                       const void *rec, size_t len) {
        (void)opaque;
        (void)week;
        (void)part;
        (void)rec;
        (void)len;
        return TT_ERR_OK;
}

/* Changelog records restored into a merger, which then saves, closes
 * every week and emits. */
int tt_fuzz_state(const uint8_t *data, size_t size) {
        tt_engine *e = new_engine(true);
        tt_rd r = tt_rd_init(data, size);
        size_t len;
        const uint8_t *rec;
        int nrec = 0;
        while (nrec++ < 64 && (rec = next_record(&r, &len)) != NULL) {
                char why[256];
                tt_engine_load(e, rec, len, why, sizeof(why));
        }
        /* Small parts, so that cutting a week in parts is fuzzed too. */
        tt_engine_save(e, 256, discard_put, NULL);
        tt_engine_tick(e, NOW_MS);
        tt_engine_emit_provisional(e, NOW_MS);
        tt_engine_close_all(e, NOW_MS);
        tt_engine_destroy(e);
        return 0;
}

/* The engine fed with decoded events: JSON lines to partitions 0-3 in
 * turn; a line "t" ticks, "p" emits PROVISIONAL rows, "r" removes the
 * partition of the line. */
int tt_fuzz_engine(const uint8_t *data, size_t size) {
        static tt_json_dec *jd;
        if (!jd && !(jd = tt_json_dec_new()))
                abort();
        tt_engine *e = new_engine(false);
        const char *p = (const char *)data, *end = p + size;
        int64_t now = NOW_MS;
        for (int32_t line = 0; p < end && line < 4096; line++) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *le = nl ? nl : end;
                size_t n = (size_t)(le - p);
                int32_t pid = line % 4;
                char detail[256];
                if (n == 1 && *p == 't') {
                        now += 60000;
                        tt_engine_tick(e, now);
                } else if (n == 1 && *p == 'p') {
                        tt_engine_emit_provisional(e, now);
                } else if (n == 1 && *p == 'r') {
                        tt_engine_partition_remove(e, pid, now);
                } else {
                        tt_event ev;
                        memset(&ev, 0, sizeof(ev));
                        if (tt_json_decode_event(jd, p, n, &ev, detail,
                                                 sizeof(detail)) ==
                            TT_REASON_NONE)
                                tt_engine_offer(e, pid, &ev, now, detail,
                                                sizeof(detail));
                }
                if (tt_engine_error(e))
                        abort(); /* the checking sink refused a row */
                p = nl ? nl + 1 : end;
        }
        tt_engine_flush(e, now);
        tt_engine_close_all(e, now);
        if (tt_engine_error(e))
                abort();
        tt_engine_destroy(e);
        return 0;
}

const tt_fuzz_target tt_fuzz_targets[] = {
    {"json_event", tt_fuzz_json_event},
    {"avro_event", tt_fuzz_avro_event},
    {"writer_schema", tt_fuzz_writer_schema},
    {"ocf", tt_fuzz_ocf},
    {"registry_answer", tt_fuzz_registry_answer},
    {"offset_meta", tt_fuzz_offset_meta},
    {"partials", tt_fuzz_partials},
    {"state", tt_fuzz_state},
    {"engine", tt_fuzz_engine},
};
const size_t tt_fuzz_ntargets =
    sizeof(tt_fuzz_targets) / sizeof(tt_fuzz_targets[0]);
