/* Avro binary bodies of the outputs, WeeklyRollup and StreakChange, written
 * field by field in the order of schemas/weekly_rollup.avsc and
 * schemas/streak_change.avsc, and the rollup's Kafka key. The worst-case
 * size is reserved up front, so an encoder appends a whole record or, on
 * failure, nothing. */
#include <string.h>

#include "tokentally/avro_event.h"
#include "tokentally/err.h"
#include "tokentally/kafka_out.h"

/* Largest zigzag varint of a long. */
#define VARINT_MAX 10

typedef struct enc {
        uint8_t *p;
        size_t cap;
        size_t n;
} enc;

/* Every put below writes into room reserved for the worst case; a 0 from a
 * primitive would mean the bound is wrong, so it is kept as an error
 * rather than trusted. */
static void put_long(enc *e, int64_t v, int *err) {
        size_t k = tt_avro_put_long(e->p + e->n, e->cap - e->n, v);
        if (!k)
                *err = TT_ERR_LIMIT;
        e->n += k;
}

static void put_double(enc *e, double v, int *err) {
        size_t k = tt_avro_put_double(e->p + e->n, e->cap - e->n, v);
        if (!k)
                *err = TT_ERR_LIMIT;
        e->n += k;
}

static void put_string(enc *e, const char *s, size_t len, int *err) {
        size_t k = tt_avro_put_bytes(e->p + e->n, e->cap - e->n, s ? s : "",
                                     s ? len : 0);
        if (!k)
                *err = TT_ERR_LIMIT;
        e->n += k;
}

/* ["null", "string"]: branch 0 is null, 1 the string. */
static void put_opt_string(enc *e, tt_str s, int *err) {
        put_long(e, s.ptr ? 1 : 0, err);
        if (s.ptr)
                put_string(e, s.ptr, s.len, err);
}

static void put_opt_long(enc *e, bool has, int64_t v, int *err) {
        put_long(e, has ? 1 : 0, err);
        if (has)
                put_long(e, v, err);
}

static void put_opt_double(enc *e, bool has, double v, int *err) {
        put_long(e, has ? 1 : 0, err);
        if (has)
                put_double(e, v, err);
}

/* Reserves fixed + the variable string bytes (each added without wrapping)
 * and points e at the free space of out. */
static int begin(tt_buf *out, enc *e, size_t fixed, const size_t *lens,
                 size_t nlens) {
        size_t need = fixed;
        for (size_t i = 0; i < nlens; i++) {
                if (lens[i] > SIZE_MAX - need)
                        return TT_ERR_LIMIT;
                need += lens[i];
        }
        int err = tt_buf_reserve(out, need);
        if (err)
                return err;
        e->p = out->data + out->len;
        e->cap = out->cap - out->len;
        e->n = 0;
        return TT_ERR_OK;
}

int tt_avro_encode_rollup(tt_buf *out, const tt_rollup *r) {
        if ((unsigned)r->dimension > TT_DIM_MODEL ||
            (unsigned)r->status > TT_STATUS_REVISED)
                return TT_ERR_INVAL;
        size_t week_len = strnlen(r->week, sizeof(r->week));
        /* 17 varints at most (lengths, union branches, longs, ints, enums)
         * plus two doubles; one spare slot. */
        const size_t lens[] = {week_len, r->key.ptr ? r->key.len : 0,
                               r->origin.ptr ? r->origin.len : 0};
        enc e;
        int err = begin(out, &e, 18 * VARINT_MAX + 16, lens, 3);
        if (err)
                return err;
        put_string(&e, r->week, week_len, &err);
        put_long(&e, r->week_start_ms, &err);
        put_long(&e, (int64_t)r->dimension, &err);
        put_string(&e, r->key.ptr, r->key.len, &err);
        put_opt_string(&e, r->origin, &err);
        put_long(&e, r->tokens, &err);
        put_long(&e, r->prompt_tokens, &err);
        put_long(&e, r->completion_tokens, &err);
        put_long(&e, r->requests, &err);
        put_opt_long(&e, r->has_prev, r->prev_tokens, &err);
        put_opt_double(&e, r->has_growth, r->wow_growth_pct, &err);
        put_double(&e, r->share_pct, &err);
        put_long(&e, r->rank, &err); /* Avro int: same zigzag varint */
        put_long(&e, (int64_t)r->status, &err);
        put_long(&e, r->revision, &err);
        put_long(&e, r->emitted_at_ms, &err);
        if (err)
                return err;
        out->len += e.n;
        return TT_ERR_OK;
}

int tt_avro_encode_streak(tt_buf *out, const tt_streak_change *s) {
        if ((unsigned)s->kind > TT_STREAK_EXTENDED)
                return TT_ERR_INVAL;
        size_t week_len = strnlen(s->week, sizeof(s->week));
        const size_t lens[] = {s->rule.ptr ? s->rule.len : 0, week_len,
                               s->holder.ptr ? s->holder.len : 0,
                               s->previous_holder.ptr ? s->previous_holder.len
                                                      : 0,
                               s->runner_up.ptr ? s->runner_up.len : 0};
        enc e;
        /* 14 varints at most plus one double; two spare slots. */
        int err = begin(out, &e, 16 * VARINT_MAX + 8, lens, 5);
        if (err)
                return err;
        put_string(&e, s->rule.ptr, s->rule.len, &err);
        put_string(&e, s->week, week_len, &err);
        put_long(&e, (int64_t)s->kind, &err);
        put_string(&e, s->holder.ptr, s->holder.len, &err);
        put_long(&e, s->length_weeks, &err);
        put_opt_string(&e, s->previous_holder, &err);
        put_long(&e, s->holder_tokens, &err);
        put_opt_string(&e, s->runner_up, &err);
        put_opt_long(&e, s->has_runner_up_tokens, s->runner_up_tokens, &err);
        put_opt_double(&e, s->has_margin, s->margin_pct, &err);
        put_long(&e, s->emitted_at_ms, &err);
        if (err)
                return err;
        out->len += e.n;
        return TT_ERR_OK;
}

int tt_rollup_key(tt_buf *out, const tt_rollup *r) {
        if ((unsigned)r->dimension > TT_DIM_MODEL)
                return TT_ERR_INVAL;
        size_t week_len = strnlen(r->week, sizeof(r->week));
        const char *dim = tt_dim_str(r->dimension);
        size_t dim_len = strlen(dim);
        size_t key_len = r->key.ptr ? r->key.len : 0;
        const size_t lens[] = {week_len, dim_len, key_len};
        enc e;
        int err = begin(out, &e, 2, lens, 3);
        if (err)
                return err;
        uint8_t *p = e.p;
        memcpy(p, r->week, week_len);
        p += week_len;
        *p++ = '/';
        memcpy(p, dim, dim_len);
        p += dim_len;
        *p++ = '/';
        if (key_len)
                memcpy(p, r->key.ptr, key_len);
        p += key_len;
        out->len += (size_t)(p - e.p);
        return TT_ERR_OK;
}
