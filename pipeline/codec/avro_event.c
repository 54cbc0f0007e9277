/* Avro binary TokenEvent codec. The writer schema is parsed once with Avro C
 * and compiled into a small array of instructions that the decoder runs over
 * the bytes; the bundled schema gets a fixed straight-line decoder instead.
 * Strings in the decoded event point into the input: no allocation per record.
 */
#include "tokentally/avro_event.h"

#include <avro.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/mem.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Skipping nested values recurses; hostile data (a deep recursive record)
 * must not be able to exhaust the stack. */
#define MAX_DEPTH 64
/* Same for schemas handed to us by a registry. */
#define MAX_SCHEMA_DEPTH 64

/* TokenEvent's fields, in schema order. */
enum {
        FID_REQUEST_ID,
        FID_EVENT_TIME,
        FID_MODEL,
        FID_ORIGIN,
        FID_PROMPT,
        FID_COMPLETION,
        FID_PROVIDER,
        FID__COUNT
};

enum ftype { FT_STRING, FT_LONG, FT_OPT_STRING };

static const struct {
        const char *name;
        enum ftype type;
        uint32_t bit;
} fields[FID__COUNT] = {
    [FID_REQUEST_ID] = {"request_id", FT_STRING, TT_F_REQUEST_ID},
    [FID_EVENT_TIME] = {"event_time", FT_LONG, TT_F_EVENT_TIME},
    [FID_MODEL] = {"model", FT_STRING, TT_F_MODEL},
    [FID_ORIGIN] = {"origin", FT_OPT_STRING, TT_F_ORIGIN},
    [FID_PROMPT] = {"prompt_tokens", FT_LONG, TT_F_PROMPT},
    [FID_COMPLETION] = {"completion_tokens", FT_LONG, TT_F_COMPLETION},
    [FID_PROVIDER] = {"provider", FT_OPT_STRING, TT_F_PROVIDER},
};

/* Instructions. S_* skip a writer value; F_* store into a TokenEvent field.
 * Children of a record/array/map/union follow their parent contiguously;
 * `size` is the length of the subtree so siblings can be stepped over. */
enum opkind {
        S_NULL,
        S_BOOL,
        S_VARINT, /* int, long */
        S_FLOAT,
        S_DOUBLE,
        S_BYTES,  /* bytes, string */
        S_FIXED,  /* n = size */
        S_ENUM,   /* n = number of symbols */
        S_RECORD, /* n = fields */
        S_ARRAY,
        S_MAP,
        S_UNION, /* n = branches */
        S_REF,   /* n = index of the named type's op (recursive types) */
        F_STRING,
        F_LONG,
        F_INT,   /* writer int promoted to long */
        F_NULL,  /* null: absent for required fields, null for optional ones */
        F_UNION, /* n = branches, each an F_* op or F_BAD */
        F_BAD,   /* a union branch that does not resolve */
};

typedef struct op {
        uint8_t kind;
        uint8_t fid;
        uint8_t zero; /* encoding is always zero bytes (null, fixed 0...) */
        uint32_t n;
        uint32_t size;
} op;

typedef struct field {
        uint32_t op;
        const char *name; /* into dec->names */
} field;

struct tt_avro_dec {
        bool fast; /* writer schema is the bundled one: straight-line path */
        uint32_t nfields, nops;
        field *fields;
        op *ops;
        char *names;
};

/* ---- primitives ------------------------------------------------------- */

enum derr {
        E_OK,
        E_TRUNC,
        E_VARINT,
        E_NEGLEN,
        E_UNION,
        E_ENUM,
        E_INTRANGE,
        E_DEPTH,
        E_BRANCH,
};

typedef struct cur {
        const uint8_t *p, *end;
        enum derr err;
        int64_t val; /* the offending value for the detail */
} cur;

static inline int64_t unzigzag(uint64_t u) {
        return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static __attribute__((noinline)) bool get_long_slow(cur *c, int64_t *out) {
        const uint8_t *p = c->p;
        size_t avail = (size_t)(c->end - p);
        size_t lim = avail < 10 ? avail : 10;
        uint64_t u = 0;
        for (size_t i = 0; i < lim; i++) {
                uint64_t b = p[i];
                u |= (b & 0x7f) << (7 * i);
                if (b < 0x80) {
                        /* The 10th byte carries only bit 63. */
                        if (i == 9 && b > 1) {
                                c->err = E_VARINT;
                                return false;
                        }
                        c->p = p + i + 1;
                        *out = unzigzag(u);
                        return true;
                }
        }
        c->err = avail < 10 ? E_TRUNC : E_VARINT;
        return false;
}

/* Zig-zag varint. One-byte values (most token counts are not, but union
 * indexes and short lengths are) take the first branch. */
static inline bool get_long(cur *c, int64_t *out) {
        const uint8_t *p = c->p;
        if (LIKELY(p < c->end && *p < 0x80)) {
                c->p = p + 1;
                *out = unzigzag(*p);
                return true;
        }
        if (LIKELY(c->end - p >= 10)) {
                /* Enough bytes for any valid varint: no bounds checks. */
                uint64_t u = 0;
                for (int i = 0; i < 10; i++) {
                        uint64_t b = p[i];
                        u |= (b & 0x7f) << (7 * i);
                        if (b < 0x80) {
                                if (UNLIKELY(i == 9 && b > 1))
                                        break;
                                c->p = p + i + 1;
                                *out = unzigzag(u);
                                return true;
                        }
                }
                c->err = E_VARINT;
                return false;
        }
        return get_long_slow(c, out);
}

static inline bool get_bytes(cur *c, tt_str *s) {
        int64_t n;
        if (!get_long(c, &n))
                return false;
        if (UNLIKELY(n < 0)) {
                c->err = E_NEGLEN;
                c->val = n;
                return false;
        }
        if (UNLIKELY((uint64_t)n > (uint64_t)(c->end - c->p))) {
                c->err = E_TRUNC;
                return false;
        }
        s->ptr = (const char *)c->p;
        s->len = (size_t)n;
        c->p += n;
        return true;
}

static inline bool skip_n(cur *c, uint64_t n) {
        if (UNLIKELY(n > (uint64_t)(c->end - c->p))) {
                c->err = E_TRUNC;
                return false;
        }
        c->p += n;
        return true;
}

/* ---- generic interpreter ---------------------------------------------- */

static bool exec(const op *ops, uint32_t i, cur *c, tt_event *ev, int depth);

/* Array and map values: blocks of (count, items), ended by count 0; a
 * negative count is followed by the block's byte size (Avro spec). */
static bool exec_blocks(const op *ops, uint32_t item, bool is_map, cur *c,
                        int depth) {
        for (;;) {
                int64_t count;
                if (!get_long(c, &count))
                        return false;
                if (count == 0)
                        return true;
                if (count < 0) {
                        int64_t bytes;
                        if (!get_long(c, &bytes))
                                return false;
                        if (bytes < 0) {
                                c->err = E_NEGLEN;
                                c->val = bytes;
                                return false;
                        }
                        if (!skip_n(c, (uint64_t)bytes))
                                return false;
                        continue;
                }
                /* Every non-zero-width item takes at least one byte, so a
                 * count beyond what is left is truncation, found before
                 * looping. Zero-width items (map keys aside) need no work. */
                bool zero = ops[item].zero && !is_map;
                if (zero)
                        continue;
                if ((uint64_t)count > (uint64_t)(c->end - c->p)) {
                        c->err = E_TRUNC;
                        return false;
                }
                for (int64_t k = 0; k < count; k++) {
                        if (is_map) {
                                tt_str key;
                                if (!get_bytes(c, &key))
                                        return false;
                        }
                        if (!exec(ops, item, c, NULL, depth + 1))
                                return false;
                }
        }
}

static bool union_branch(const op *ops, uint32_t i, cur *c, uint32_t *child) {
        int64_t idx;
        if (!get_long(c, &idx))
                return false;
        if (idx < 0 || (uint64_t)idx >= ops[i].n) {
                c->err = E_UNION;
                c->val = idx;
                return false;
        }
        uint32_t j = i + 1;
        for (int64_t k = 0; k < idx; k++)
                j += ops[j].size;
        *child = j;
        return true;
}

static bool exec(const op *ops, uint32_t i, cur *c, tt_event *ev, int depth) {
        const op *o = &ops[i];
        if (depth > MAX_DEPTH) {
                c->err = E_DEPTH;
                return false;
        }
        int64_t v;
        tt_str s;
        switch ((enum opkind)o->kind) {
        case S_NULL:
                return true;
        case S_BOOL:
                return skip_n(c, 1);
        case S_VARINT:
                return get_long(c, &v);
        case S_FLOAT:
                return skip_n(c, 4);
        case S_DOUBLE:
                return skip_n(c, 8);
        case S_BYTES:
                return get_bytes(c, &s);
        case S_FIXED:
                return skip_n(c, o->n);
        case S_ENUM:
                if (!get_long(c, &v))
                        return false;
                if (v < 0 || (uint64_t)v >= o->n) {
                        c->err = E_ENUM;
                        c->val = v;
                        return false;
                }
                return true;
        case S_RECORD: {
                uint32_t j = i + 1;
                for (uint32_t k = 0; k < o->n; k++) {
                        if (!exec(ops, j, c, ev, depth + 1))
                                return false;
                        j += ops[j].size;
                }
                return true;
        }
        case S_ARRAY:
                return exec_blocks(ops, i + 1, false, c, depth);
        case S_MAP:
                return exec_blocks(ops, i + 1, true, c, depth);
        case S_UNION:
        case F_UNION: {
                uint32_t j;
                if (!union_branch(ops, i, c, &j))
                        return false;
                return exec(ops, j, c, ev, depth + 1);
        }
        case S_REF:
                return exec(ops, o->n, c, ev, depth + 1);
        case F_STRING:
                if (!get_bytes(c, &s))
                        return false;
                switch (o->fid) {
                case FID_REQUEST_ID:
                        ev->request_id = s;
                        break;
                case FID_MODEL:
                        ev->model = s;
                        break;
                case FID_ORIGIN:
                        ev->origin = s;
                        break;
                default:
                        ev->provider = s;
                        break;
                }
                ev->present |= fields[o->fid].bit;
                return true;
        case F_LONG:
        case F_INT:
                if (!get_long(c, &v))
                        return false;
                if (o->kind == F_INT && (v < INT32_MIN || v > INT32_MAX)) {
                        c->err = E_INTRANGE;
                        c->val = v;
                        return false;
                }
                if (o->fid == FID_EVENT_TIME)
                        ev->event_time_ms = v;
                else if (o->fid == FID_PROMPT)
                        ev->prompt_tokens = v;
                else
                        ev->completion_tokens = v;
                ev->present |= fields[o->fid].bit;
                return true;
        case F_NULL:
                /* ev was zeroed, so the optional string is already null;
                 * a required field stays absent. */
                if (fields[o->fid].type == FT_OPT_STRING)
                        ev->present |= fields[o->fid].bit;
                return true;
        case F_BAD:
                c->err = E_BRANCH;
                return false;
        }
        return false;
}

/* ---- the bundled schema: a fixed sequence ----------------------------- */

static inline bool get_opt_string(cur *c, tt_str *s) {
        const uint8_t *p = c->p;
        if (LIKELY(p < c->end)) {
                if (*p == 0) { /* branch 0: null */
                        c->p = p + 1;
                        *s = TT_STR_NULL;
                        return true;
                }
                if (*p == 2) { /* branch 1: string */
                        c->p = p + 1;
                        return get_bytes(c, s);
                }
        }
        /* Other encodings of 0 and 1 are unusual but legal varints. */
        int64_t idx;
        if (!get_long(c, &idx))
                return false;
        if (idx == 0) {
                *s = TT_STR_NULL;
                return true;
        }
        if (idx == 1)
                return get_bytes(c, s);
        c->err = E_UNION;
        c->val = idx;
        return false;
}

static int decode_bundled(cur *c, tt_event *ev) {
        int f;
        f = FID_REQUEST_ID;
        if (UNLIKELY(!get_bytes(c, &ev->request_id)))
                return f;
        f = FID_EVENT_TIME;
        if (UNLIKELY(!get_long(c, &ev->event_time_ms)))
                return f;
        f = FID_MODEL;
        if (UNLIKELY(!get_bytes(c, &ev->model)))
                return f;
        f = FID_ORIGIN;
        if (UNLIKELY(!get_opt_string(c, &ev->origin)))
                return f;
        f = FID_PROMPT;
        if (UNLIKELY(!get_long(c, &ev->prompt_tokens)))
                return f;
        f = FID_COMPLETION;
        if (UNLIKELY(!get_long(c, &ev->completion_tokens)))
                return f;
        f = FID_PROVIDER;
        if (UNLIKELY(!get_opt_string(c, &ev->provider)))
                return f;
        ev->present = TT_F_REQUEST_ID | TT_F_EVENT_TIME | TT_F_MODEL |
                      TT_F_ORIGIN | TT_F_PROMPT | TT_F_COMPLETION |
                      TT_F_PROVIDER;
        return -1;
}

static void format_detail(const cur *c, const char *fname, char *detail,
                          size_t size) {
        switch (c->err) {
        case E_TRUNC:
                snprintf(detail, size, "truncated in field %s", fname);
                break;
        case E_VARINT:
                snprintf(detail, size, "bad varint (over 10 bytes) in field %s",
                         fname);
                break;
        case E_NEGLEN:
                snprintf(detail, size,
                         "negative length %" PRId64 " in field %s", c->val,
                         fname);
                break;
        case E_UNION:
                snprintf(detail, size,
                         "union index %" PRId64 " out of range in field %s",
                         c->val, fname);
                break;
        case E_ENUM:
                snprintf(detail, size,
                         "enum index %" PRId64 " out of range in field %s",
                         c->val, fname);
                break;
        case E_INTRANGE:
                snprintf(detail, size,
                         "int value %" PRId64 " out of range in field %s",
                         c->val, fname);
                break;
        case E_DEPTH:
                snprintf(detail, size, "nesting deeper than %d in field %s",
                         MAX_DEPTH, fname);
                break;
        case E_BRANCH:
                snprintf(detail, size,
                         "union branch of field %s does not resolve to "
                         "TokenEvent's type",
                         fname);
                break;
        case E_OK:
                snprintf(detail, size, "malformed in field %s", fname);
                break;
        }
}

tt_reason tt_avro_decode_event(const tt_avro_dec *dec, const uint8_t *buf,
                               size_t len, size_t *consumed, tt_event *ev,
                               char *detail, size_t detail_size) {
        cur c = {buf, buf + len, E_OK, 0};
        *ev = (tt_event){0};
        *consumed = 0;
        if (LIKELY(dec->fast)) {
                int f = decode_bundled(&c, ev);
                if (LIKELY(f < 0)) {
                        *consumed = (size_t)(c.p - buf);
                        return TT_REASON_NONE;
                }
                ev->present = 0;
                format_detail(&c, fields[f].name, detail, detail_size);
                return TT_REASON_MALFORMED;
        }
        for (uint32_t k = 0; k < dec->nfields; k++) {
                if (!exec(dec->ops, dec->fields[k].op, &c, ev, 0)) {
                        ev->present = 0;
                        format_detail(&c, dec->fields[k].name, detail,
                                      detail_size);
                        return TT_REASON_MALFORMED;
                }
        }
        *consumed = (size_t)(c.p - buf);
        return TT_REASON_NONE;
}

/* ---- compiling the writer schema ------------------------------------- */

typedef struct named {
        avro_schema_t schema;
        uint32_t op;
} named;

typedef struct compiler {
        op *ops;
        uint32_t nops, cap;
        named *named;
        uint32_t nnamed, named_cap;
        char *errstr;
        size_t errsize;
        bool failed;
} compiler;

static int64_t emit(compiler *cc, enum opkind kind, uint8_t fid, uint32_t n) {
        if (cc->nops == cc->cap) {
                uint32_t ncap = cc->cap ? cc->cap * 2 : 32;
                if (ncap > (1u << 20)) {
                        snprintf(cc->errstr, cc->errsize,
                                 "writer schema too large");
                        return -1;
                }
                op *p = tt_realloc(cc->ops, ncap * sizeof(*p));
                if (!p) {
                        snprintf(cc->errstr, cc->errsize, "out of memory");
                        return -1;
                }
                cc->ops = p;
                cc->cap = ncap;
        }
        cc->ops[cc->nops] = (op){(uint8_t)kind, fid, 0, n, 1};
        return cc->nops++;
}

static bool remember(compiler *cc, avro_schema_t s, uint32_t at) {
        if (cc->nnamed == cc->named_cap) {
                uint32_t ncap = cc->named_cap ? cc->named_cap * 2 : 8;
                named *p = tt_realloc(cc->named, ncap * sizeof(*p));
                if (!p) {
                        snprintf(cc->errstr, cc->errsize, "out of memory");
                        return false;
                }
                cc->named = p;
                cc->named_cap = ncap;
        }
        cc->named[cc->nnamed++] = (named){s, at};
        return true;
}

static int64_t find_named(const compiler *cc, avro_schema_t s) {
        for (uint32_t k = 0; k < cc->nnamed; k++)
                if (cc->named[k].schema == s)
                        return cc->named[k].op;
        return -1;
}

/* The top-level record is compiled as a field list, not as an op; a
 * reference back to it gets this placeholder, patched once a skip version
 * of the record exists. */
#define ROOT_PENDING UINT32_MAX

static int64_t emit_ref(compiler *cc, int64_t target) {
        int64_t at = emit(cc, S_REF, 0, (uint32_t)target);
        if (at >= 0 && target != ROOT_PENDING)
                cc->ops[at].zero = cc->ops[target].zero;
        return at;
}

/* Compiles a value to skip. Returns the op index or -1. */
static int64_t compile_skip(compiler *cc, avro_schema_t s, int depth) {
        if (depth > MAX_SCHEMA_DEPTH) {
                snprintf(cc->errstr, cc->errsize,
                         "writer schema nested deeper than %d",
                         MAX_SCHEMA_DEPTH);
                return -1;
        }
        int64_t at, prev;
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                at = emit(cc, S_NULL, 0, 0);
                if (at >= 0)
                        cc->ops[at].zero = 1;
                return at;
        case AVRO_BOOLEAN:
                return emit(cc, S_BOOL, 0, 0);
        case AVRO_INT32:
        case AVRO_INT64:
                return emit(cc, S_VARINT, 0, 0);
        case AVRO_FLOAT:
                return emit(cc, S_FLOAT, 0, 0);
        case AVRO_DOUBLE:
                return emit(cc, S_DOUBLE, 0, 0);
        case AVRO_STRING:
        case AVRO_BYTES:
                return emit(cc, S_BYTES, 0, 0);
        case AVRO_FIXED: {
                int64_t n = avro_schema_fixed_size(s);
                if (n < 0 || n > INT32_MAX) {
                        snprintf(cc->errstr, cc->errsize,
                                 "fixed size %" PRId64 " out of range", n);
                        return -1;
                }
                prev = find_named(cc, s);
                if (prev >= 0)
                        return emit_ref(cc, prev);
                at = emit(cc, S_FIXED, 0, (uint32_t)n);
                if (at < 0 || !remember(cc, s, (uint32_t)at))
                        return -1;
                cc->ops[at].zero = n == 0;
                return at;
        }
        case AVRO_ENUM: {
                int n = avro_schema_enum_number_of_symbols(s);
                at = emit(cc, S_ENUM, 0, n < 0 ? 0 : (uint32_t)n);
                return at;
        }
        case AVRO_RECORD: {
                prev = find_named(cc, s);
                if (prev >= 0)
                        return emit_ref(cc, prev);
                size_t nf = avro_schema_record_size(s);
                at = emit(cc, S_RECORD, 0, (uint32_t)nf);
                if (at < 0 || !remember(cc, s, (uint32_t)at))
                        return -1;
                /* Until its fields are known a record in progress counts as
                 * non-empty: a self-reference then cannot be zero-width. */
                bool zero = true;
                for (size_t k = 0; k < nf; k++) {
                        avro_schema_t fs =
                            avro_schema_record_field_get_by_index(s, (int)k);
                        int64_t child = compile_skip(cc, fs, depth + 1);
                        if (child < 0)
                                return -1;
                        zero = zero && cc->ops[child].zero;
                }
                cc->ops[at].zero = zero;
                cc->ops[at].size = cc->nops - (uint32_t)at;
                return at;
        }
        case AVRO_ARRAY:
        case AVRO_MAP: {
                bool arr = avro_typeof(s) == AVRO_ARRAY;
                at = emit(cc, arr ? S_ARRAY : S_MAP, 0, 0);
                if (at < 0)
                        return -1;
                avro_schema_t item = arr ? avro_schema_array_items(s)
                                         : avro_schema_map_values(s);
                if (compile_skip(cc, item, depth + 1) < 0)
                        return -1;
                cc->ops[at].size = cc->nops - (uint32_t)at;
                return at;
        }
        case AVRO_UNION: {
                size_t nb = avro_schema_union_size(s);
                at = emit(cc, S_UNION, 0, (uint32_t)nb);
                if (at < 0)
                        return -1;
                for (size_t k = 0; k < nb; k++)
                        if (compile_skip(cc,
                                         avro_schema_union_branch(s, (int)k),
                                         depth + 1) < 0)
                                return -1;
                cc->ops[at].size = cc->nops - (uint32_t)at;
                return at;
        }
        case AVRO_LINK: {
                avro_schema_t t = avro_schema_link_target(s);
                prev = find_named(cc, t);
                if (prev >= 0)
                        return emit_ref(cc, prev);
                return compile_skip(cc, t, depth + 1);
        }
        }
        snprintf(cc->errstr, cc->errsize, "unknown Avro type %d",
                 (int)avro_typeof(s));
        return -1;
}

static avro_schema_t unlink_schema(avro_schema_t s) {
        while (s && avro_typeof(s) == AVRO_LINK)
                s = avro_schema_link_target(s);
        return s;
}

/* The F_* op for a non-union writer type against TokenEvent field fid, or
 * F_BAD when it does not resolve. */
static enum opkind resolve_plain(avro_schema_t s, int fid) {
        avro_type_t t = avro_typeof(s);
        switch (fields[fid].type) {
        case FT_STRING:
                /* Avro resolution lets bytes and string stand for each
                 * other. */
                if (t == AVRO_STRING || t == AVRO_BYTES)
                        return F_STRING;
                break;
        case FT_OPT_STRING:
                if (t == AVRO_STRING || t == AVRO_BYTES)
                        return F_STRING;
                if (t == AVRO_NULL)
                        return F_NULL;
                break;
        case FT_LONG:
                if (t == AVRO_INT64)
                        return F_LONG;
                if (t == AVRO_INT32)
                        return F_INT;
                break;
        }
        return F_BAD;
}

static int64_t compile_field(compiler *cc, avro_schema_t s, int fid) {
        s = unlink_schema(s);
        if (avro_typeof(s) != AVRO_UNION) {
                enum opkind k = resolve_plain(s, fid);
                /* A lone null for a required field could never be valid. */
                if (k == F_BAD ||
                    (k == F_NULL && fields[fid].type != FT_OPT_STRING)) {
                        snprintf(cc->errstr, cc->errsize,
                                 "field %s: writer type %s does not resolve "
                                 "to TokenEvent's",
                                 fields[fid].name, avro_schema_type_name(s));
                        return -1;
                }
                return emit(cc, k, (uint8_t)fid, 0);
        }
        size_t nb = avro_schema_union_size(s);
        int64_t at = emit(cc, F_UNION, (uint8_t)fid, (uint32_t)nb);
        if (at < 0)
                return -1;
        bool any = false;
        for (size_t k = 0; k < nb; k++) {
                avro_schema_t b =
                    unlink_schema(avro_schema_union_branch(s, (int)k));
                enum opkind kind = resolve_plain(b, fid);
                if (avro_typeof(b) == AVRO_NULL)
                        kind = F_NULL; /* the null branch means absent */
                else
                        any = any || kind != F_BAD;
                if (emit(cc, kind, (uint8_t)fid, 0) < 0)
                        return -1;
        }
        if (!any && fields[fid].type != FT_OPT_STRING) {
                snprintf(cc->errstr, cc->errsize,
                         "field %s: no branch of the writer union resolves to "
                         "TokenEvent's type",
                         fields[fid].name);
                return -1;
        }
        cc->ops[at].size = cc->nops - (uint32_t)at;
        return at;
}

static int field_id(const char *name) {
        for (int k = 0; k < FID__COUNT; k++)
                if (strcmp(fields[k].name, name) == 0)
                        return k;
        return -1;
}

/* True when ops are exactly what the bundled schema compiles to. */
static bool is_bundled(const tt_avro_dec *d) {
        static const struct {
                uint8_t kind, fid;
        } want[] = {
            {F_STRING, FID_REQUEST_ID}, {F_LONG, FID_EVENT_TIME},
            {F_STRING, FID_MODEL},      {F_UNION, FID_ORIGIN},
            {F_NULL, FID_ORIGIN},       {F_STRING, FID_ORIGIN},
            {F_LONG, FID_PROMPT},       {F_LONG, FID_COMPLETION},
            {F_UNION, FID_PROVIDER},    {F_NULL, FID_PROVIDER},
            {F_STRING, FID_PROVIDER},
        };
        if (d->nfields != FID__COUNT ||
            d->nops != sizeof(want) / sizeof(want[0]))
                return false;
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
                if (d->ops[k].kind != want[k].kind ||
                    d->ops[k].fid != want[k].fid)
                        return false;
        return true;
}

tt_avro_dec *tt_avro_dec_new(const char *writer_schema_json, char *errstr,
                             size_t errsize) {
        const char *json = writer_schema_json ? writer_schema_json
                                              : tt_token_event_schema_json;
        avro_schema_t schema;
        if (avro_schema_from_json_length(json, strlen(json), &schema) != 0) {
                snprintf(errstr, errsize, "cannot parse writer schema: %s",
                         avro_strerror());
                return NULL;
        }
        compiler cc = {.errstr = errstr, .errsize = errsize};
        tt_avro_dec *d = tt_calloc(1, sizeof(*d));
        if (!d) {
                snprintf(errstr, errsize, "out of memory");
                goto fail;
        }
        avro_schema_t rec = unlink_schema(schema);
        if (avro_typeof(rec) != AVRO_RECORD) {
                snprintf(errstr, errsize, "writer schema is a %s, not a record",
                         avro_schema_type_name(rec));
                goto fail;
        }
        size_t nf = avro_schema_record_size(rec);
        size_t names_len = 0;
        for (size_t k = 0; k < nf; k++)
                names_len +=
                    strlen(avro_schema_record_field_name(rec, (int)k)) + 1;
        d->fields = tt_calloc(nf ? nf : 1, sizeof(*d->fields));
        d->names = tt_malloc(names_len + 1);
        if (!d->fields || !d->names) {
                snprintf(errstr, errsize, "out of memory");
                goto fail;
        }
        if (!remember(&cc, rec, ROOT_PENDING))
                goto fail;
        uint32_t seen = 0;
        char *np = d->names;
        for (size_t k = 0; k < nf; k++) {
                const char *name = avro_schema_record_field_name(rec, (int)k);
                avro_schema_t fs =
                    avro_schema_record_field_get_by_index(rec, (int)k);
                size_t nl = strlen(name);
                memcpy(np, name, nl + 1);
                d->fields[k].name = np;
                np += nl + 1;
                int fid = field_id(name);
                int64_t at;
                if (fid >= 0) {
                        if (seen & (1u << fid)) {
                                snprintf(errstr, errsize,
                                         "field %s appears twice in the "
                                         "writer schema",
                                         name);
                                goto fail;
                        }
                        seen |= 1u << fid;
                        at = compile_field(&cc, fs, fid);
                } else {
                        at = compile_skip(&cc, fs, 1);
                }
                if (at < 0)
                        goto fail;
                d->fields[k].op = (uint32_t)at;
        }
        /* Nested copies of a recursive top-level record are only skipped:
         * compile the record once more as a skip op and point the
         * placeholders at it. */
        uint32_t nops_fields = cc.nops;
        bool pending = false;
        for (uint32_t k = 0; k < nops_fields; k++)
                pending = pending || (cc.ops[k].kind == S_REF &&
                                      cc.ops[k].n == ROOT_PENDING);
        if (pending) {
                cc.named[0].schema = NULL;
                int64_t root = compile_skip(&cc, rec, 1);
                if (root < 0)
                        goto fail;
                for (uint32_t k = 0; k < nops_fields; k++)
                        if (cc.ops[k].kind == S_REF &&
                            cc.ops[k].n == ROOT_PENDING)
                                cc.ops[k].n = (uint32_t)root;
        }
        d->nfields = (uint32_t)nf;
        d->nops = cc.nops;
        d->ops = cc.ops;
        cc.ops = NULL;
        d->fast = writer_schema_json == NULL || is_bundled(d);
        tt_free(cc.named);
        avro_schema_decref(schema);
        if (errsize)
                errstr[0] = '\0';
        return d;
fail:
        tt_free(cc.ops);
        tt_free(cc.named);
        tt_avro_dec_destroy(d);
        avro_schema_decref(schema);
        return NULL;
}

void tt_avro_dec_destroy(tt_avro_dec *dec) {
        if (!dec)
                return;
        tt_free(dec->ops);
        tt_free(dec->fields);
        tt_free(dec->names);
        tt_free(dec);
}

/* ---- encoder ---------------------------------------------------------- */

size_t tt_avro_put_long(uint8_t *out, size_t cap, int64_t v) {
        uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        size_t n = 0;
        while (u >= 0x80) {
                if (n >= cap)
                        return 0;
                out[n++] = (uint8_t)(u | 0x80);
                u >>= 7;
        }
        if (n >= cap)
                return 0;
        out[n++] = (uint8_t)u;
        return n;
}

size_t tt_avro_put_bytes(uint8_t *out, size_t cap, const void *p, size_t n) {
        if (n > INT64_MAX)
                return 0;
        size_t h = tt_avro_put_long(out, cap, (int64_t)n);
        if (h == 0 || cap - h < n)
                return 0;
        if (n)
                memcpy(out + h, p, n);
        return h + n;
}

size_t tt_avro_put_double(uint8_t *out, size_t cap, double v) {
        if (cap < 8)
                return 0;
        uint64_t u;
        memcpy(&u, &v, sizeof(u));
        for (int k = 0; k < 8; k++)
                out[k] = (uint8_t)(u >> (8 * k)); /* little-endian */
        return 8;
}

static size_t put_str(uint8_t *out, size_t cap, tt_str s) {
        return tt_avro_put_bytes(out, cap, s.ptr ? s.ptr : "", s.len);
}

static size_t put_opt_str(uint8_t *out, size_t cap, tt_str s) {
        if (!s.ptr)
                return tt_avro_put_long(out, cap, 0);
        size_t h = tt_avro_put_long(out, cap, 1);
        if (h == 0)
                return 0;
        size_t b = put_str(out + h, cap - h, s);
        return b ? h + b : 0;
}

size_t tt_avro_encode_event(const tt_event *ev, uint8_t *out, size_t cap) {
        size_t n = 0, k;
#define PUT(expr)                                                              \
        do {                                                                   \
                k = (expr);                                                    \
                if (k == 0)                                                    \
                        return 0;                                              \
                n += k;                                                        \
        } while (0)
        PUT(put_str(out + n, cap - n, ev->request_id));
        PUT(tt_avro_put_long(out + n, cap - n, ev->event_time_ms));
        PUT(put_str(out + n, cap - n, ev->model));
        PUT(put_opt_str(out + n, cap - n, ev->origin));
        PUT(tt_avro_put_long(out + n, cap - n, ev->prompt_tokens));
        PUT(tt_avro_put_long(out + n, cap - n, ev->completion_tokens));
        PUT(put_opt_str(out + n, cap - n, ev->provider));
#undef PUT
        return n;
}
