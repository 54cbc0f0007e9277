/* Avro Object Container Files (Avro 1.11 spec, "Object Container Files"):
 * a reader that hands out whole compressed blocks and survives damaged ones
 * by rescanning for the sync marker, block decompression (null, deflate,
 * snappy + CRC-32), and a writer for the generator and the tests. */
#include "tokentally/ocf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libdeflate.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "tokentally/avro_event.h"
#include "tokentally/err.h"
#include "tokentally/mem.h"

#define SYNC_LEN 16
#define READ_CHUNK (256u << 10)
/* Header metadata values (the schema) and keys: generous, but capped. */
#define MAX_META (16u << 20)
/* The reader's buffer holds one whole block plus its header and marker. */
#define RBUF_MAX (TT_OCF_MAX_BLOCK + 64u)

static const uint8_t magic[4] = {'O', 'b', 'j', 1};

struct tt_ocf_reader {
        tt_input *in;
        tt_buf rb; /* unread bytes are rb.data[pos..rb.len) */
        size_t pos;
        int64_t base; /* file offset of rb.data[0] */
        bool in_eof;  /* the input has no more bytes */
        bool dead;    /* after truncation: nothing more to read */
        int64_t blockno;
        char *schema;
        tt_ocf_codec codec;
        uint8_t sync[SYNC_LEN];
};

/* Makes at least need bytes available at pos (fewer only at end of input).
 * Returns the number available, or -1 on an I/O error. */
static int64_t fill(tt_ocf_reader *r, size_t need, char *errstr,
                    size_t errsize) {
        size_t avail = r->rb.len - r->pos;
        if (avail >= need || r->in_eof)
                return (int64_t)avail;
        if (r->pos) {
                memmove(r->rb.data, r->rb.data + r->pos, avail);
                r->base += (int64_t)r->pos;
                r->rb.len = avail;
                r->pos = 0;
        }
        /* Callers never need more than one block plus its framing; the
         * cap also keeps a zero-length read from looking like EOF. */
        if (need > r->rb.max)
                need = r->rb.max;
        while (r->rb.len < need && !r->in_eof) {
                size_t want = need - r->rb.len;
                if (want < READ_CHUNK)
                        want = READ_CHUNK;
                if (want > r->rb.max - r->rb.len)
                        want = r->rb.max - r->rb.len;
                int err = tt_buf_reserve(&r->rb, want);
                if (err) {
                        snprintf(errstr, errsize, "%s: %s",
                                 tt_input_name(r->in), tt_err2str(err));
                        return -1;
                }
                ssize_t n = tt_input_read(r->in, r->rb.data + r->rb.len, want,
                                          errstr, errsize);
                if (n < 0 && !tt_input_corrupt(r->in))
                        return -1;
                /* Corrupt gzip around the file: the readable part ends
                 * here, and a block cut by it is a truncated block (one
                 * dead letter), as in a truncated plain file. */
                if (n <= 0) {
                        n = 0;
                        r->in_eof = true;
                }
                r->rb.len += (size_t)n;
        }
        return (int64_t)(r->rb.len - r->pos);
}

/* Zig-zag varint from p[0..avail). Returns its length, 0 if more bytes are
 * needed, -1 if it is longer than 10 bytes. */
static int parse_long(const uint8_t *p, size_t avail, int64_t *v) {
        uint64_t u = 0;
        for (size_t k = 0; k < 10; k++) {
                if (k >= avail)
                        return 0;
                u |= (uint64_t)(p[k] & 0x7f) << (7 * k);
                if (p[k] < 0x80) {
                        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
                        return (int)k + 1;
                }
        }
        return -1;
}

/* ---- header ----------------------------------------------------------- */

static int read_long(tt_ocf_reader *r, int64_t *v, char *errstr,
                     size_t errsize) {
        int64_t avail = fill(r, 10, errstr, errsize);
        if (avail < 0)
                return TT_ERR_IO;
        int n = parse_long(r->rb.data + r->pos, (size_t)avail, v);
        if (n <= 0) {
                snprintf(errstr, errsize, "%s: %s in the header",
                         tt_input_name(r->in),
                         n == 0 ? "truncated" : "bad varint");
                return TT_ERR_FORMAT;
        }
        r->pos += (size_t)n;
        return TT_ERR_OK;
}

/* A length-prefixed byte string, returned as a pointer into rb valid until
 * the next read. */
static int read_bytes(tt_ocf_reader *r, const uint8_t **p, size_t *len,
                      char *errstr, size_t errsize) {
        int64_t n;
        int err = read_long(r, &n, errstr, errsize);
        if (err)
                return err;
        if (n < 0 || n > MAX_META) {
                snprintf(errstr, errsize,
                         "%s: header metadata entry of %" PRId64 " bytes",
                         tt_input_name(r->in), n);
                return TT_ERR_FORMAT;
        }
        int64_t avail = fill(r, (size_t)n, errstr, errsize);
        if (avail < 0)
                return TT_ERR_IO;
        if (avail < n) {
                snprintf(errstr, errsize, "%s: truncated in the header",
                         tt_input_name(r->in));
                return TT_ERR_FORMAT;
        }
        *p = r->rb.data + r->pos;
        *len = (size_t)n;
        r->pos += (size_t)n;
        return TT_ERR_OK;
}

static int read_header(tt_ocf_reader *r, char *errstr, size_t errsize) {
        const char *name = tt_input_name(r->in);
        int64_t avail = fill(r, sizeof(magic), errstr, errsize);
        if (avail < 0)
                return TT_ERR_IO;
        if (avail < (int64_t)sizeof(magic) ||
            memcmp(r->rb.data + r->pos, magic, sizeof(magic)) != 0) {
                snprintf(errstr, errsize,
                         "%s: not an Avro object container file (bad magic)",
                         name);
                return TT_ERR_FORMAT;
        }
        r->pos += sizeof(magic);
        bool have_codec = false;
        for (;;) {
                int64_t count;
                int err = read_long(r, &count, errstr, errsize);
                if (err)
                        return err;
                if (count == 0)
                        break;
                if (count < 0) {
                        int64_t size;
                        if (count == INT64_MIN) {
                                snprintf(errstr, errsize,
                                         "%s: bad metadata count", name);
                                return TT_ERR_FORMAT;
                        }
                        count = -count;
                        err = read_long(r, &size, errstr, errsize);
                        if (err)
                                return err;
                }
                for (int64_t k = 0; k < count; k++) {
                        const uint8_t *key, *val;
                        size_t klen, vlen;
                        err = read_bytes(r, &key, &klen, errstr, errsize);
                        if (err)
                                return err;
                        /* Copy the key: reading the value may move rb. */
                        char kbuf[32];
                        size_t kl = klen < sizeof(kbuf) - 1 ? klen : 0;
                        memcpy(kbuf, key, kl);
                        kbuf[kl] = '\0';
                        err = read_bytes(r, &val, &vlen, errstr, errsize);
                        if (err)
                                return err;
                        if (strcmp(kbuf, "avro.schema") == 0) {
                                tt_free(r->schema);
                                r->schema = tt_strndup((const char *)val, vlen);
                                if (!r->schema) {
                                        snprintf(errstr, errsize,
                                                 "out of memory");
                                        return TT_ERR_NOMEM;
                                }
                        } else if (strcmp(kbuf, "avro.codec") == 0) {
                                have_codec = true;
                                if (vlen == 4 && memcmp(val, "null", 4) == 0) {
                                        r->codec = TT_OCF_NULL;
                                } else if (vlen == 7 &&
                                           memcmp(val, "deflate", 7) == 0) {
                                        r->codec = TT_OCF_DEFLATE;
                                } else if (vlen == 6 &&
                                           memcmp(val, "snappy", 6) == 0) {
                                        r->codec = TT_OCF_SNAPPY;
                                } else {
                                        snprintf(errstr, errsize,
                                                 "%s: unsupported codec "
                                                 "'%.*s'",
                                                 name,
                                                 (int)(vlen < 40 ? vlen : 40),
                                                 (const char *)val);
                                        return TT_ERR_UNSUPPORTED;
                                }
                        }
                }
        }
        (void)have_codec; /* absent means null (spec) */
        if (!r->schema) {
                snprintf(errstr, errsize, "%s: header has no avro.schema",
                         name);
                return TT_ERR_FORMAT;
        }
        avail = fill(r, SYNC_LEN, errstr, errsize);
        if (avail < 0)
                return TT_ERR_IO;
        if (avail < SYNC_LEN) {
                snprintf(errstr, errsize, "%s: truncated in the header", name);
                return TT_ERR_FORMAT;
        }
        memcpy(r->sync, r->rb.data + r->pos, SYNC_LEN);
        r->pos += SYNC_LEN;
        return TT_ERR_OK;
}

tt_ocf_reader *tt_ocf_reader_new(tt_input *in, char *errstr, size_t errsize) {
        tt_ocf_reader *r = tt_calloc(1, sizeof(*r));
        if (!r) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        r->in = in;
        tt_buf_init(&r->rb, RBUF_MAX);
        if (read_header(r, errstr, errsize) != TT_ERR_OK) {
                tt_ocf_reader_destroy(r);
                return NULL;
        }
        return r;
}

void tt_ocf_reader_destroy(tt_ocf_reader *r) {
        if (!r)
                return;
        tt_buf_free(&r->rb);
        tt_free(r->schema);
        tt_free(r);
}

const char *tt_ocf_reader_schema(const tt_ocf_reader *r) {
        return r->schema;
}

tt_ocf_codec tt_ocf_reader_codec(const tt_ocf_reader *r) {
        return r->codec;
}

/* ---- blocks ----------------------------------------------------------- */

/* Parses a block header at rb[at..]: needs fill() done. Returns the header
 * length, 0 if truncated, -1 if implausible (bad varint, negative count or
 * size, size over the cap). */
static int block_header(const tt_ocf_reader *r, size_t at, int64_t *count,
                        int64_t *size) {
        const uint8_t *p = r->rb.data + at;
        size_t avail = r->rb.len - at;
        int a = parse_long(p, avail, count);
        if (a <= 0)
                return a;
        int b = parse_long(p + a, avail - (size_t)a, size);
        if (b <= 0)
                return b;
        if (*count < 0 || *size < 0 || *size > (int64_t)TT_OCF_MAX_BLOCK)
                return -1;
        return a + b;
}

/* After a damaged block starting at pos: moves pos to where reading can go
 * on and returns the bytes passed over (-1 on an I/O error). The damage may
 * be in the marker only, and then the next block starts guess_rel bytes on
 * and ends with a good marker; otherwise the next good marker is searched
 * for from one byte past the damaged block's start. Offsets are kept
 * relative to pos because fill() may move the bytes. */
static int64_t resync(tt_ocf_reader *r, size_t guess_rel, char *errstr,
                      size_t errsize) {
        int64_t start = r->base + (int64_t)r->pos;
        if (guess_rel) {
                int64_t count, size;
                int64_t avail = fill(r, guess_rel + 20, errstr, errsize);
                if (avail < 0)
                        return -1;
                int h = (size_t)avail >= guess_rel
                            ? block_header(r, r->pos + guess_rel, &count, &size)
                            : 0;
                size_t end_rel =
                    h > 0 ? guess_rel + (size_t)h + (size_t)size : 0;
                /* Two blocks near the cap cannot both be buffered: then
                 * only the scan below is used. */
                if (h > 0 && end_rel + SYNC_LEN <= r->rb.max) {
                        avail = fill(r, end_rel + SYNC_LEN, errstr, errsize);
                        if (avail < 0)
                                return -1;
                        if ((size_t)avail >= end_rel + SYNC_LEN &&
                            memcmp(r->rb.data + r->pos + end_rel, r->sync,
                                   SYNC_LEN) == 0) {
                                r->pos += guess_rel;
                                return (int64_t)guess_rel;
                        }
                }
        }
        size_t from = 1;
        for (;;) {
                size_t avail = r->rb.len - r->pos;
                if (avail >= from + SYNC_LEN) {
                        const uint8_t *hit =
                            memmem(r->rb.data + r->pos + from, avail - from,
                                   r->sync, SYNC_LEN);
                        if (hit) {
                                r->pos = (size_t)(hit - r->rb.data) + SYNC_LEN;
                                return r->base + (int64_t)r->pos - start;
                        }
                        /* A marker may straddle two reads: keep its
                         * possible first SYNC_LEN - 1 bytes. */
                        r->pos += avail - (SYNC_LEN - 1);
                        from = 0;
                }
                if (r->in_eof) {
                        r->pos = r->rb.len;
                        r->dead = true;
                        return r->base + (int64_t)r->pos - start;
                }
                if (fill(r, r->rb.len - r->pos + READ_CHUNK, errstr, errsize) <
                    0)
                        return -1;
        }
}

int tt_ocf_reader_next(tt_ocf_reader *r, int64_t *count, tt_buf *block,
                       size_t *skipped, char *errstr, size_t errsize) {
        const char *name = tt_input_name(r->in);
        *count = 0;
        *skipped = 0;
        tt_buf_reset(block);
        if (r->dead)
                return TT_ERR_EOF;
        int64_t avail = fill(r, 20, errstr, errsize);
        if (avail < 0)
                return TT_ERR_IO;
        if (avail == 0)
                return TT_ERR_EOF;
        int64_t blockno = r->blockno++;
        int64_t off = r->base + (int64_t)r->pos;
        int64_t n = 0, size = 0;
        int h = block_header(r, r->pos, &n, &size);
        if (h == 0) {
                snprintf(errstr, errsize,
                         "%s: block %" PRId64 " at offset %" PRId64
                         ": truncated block header",
                         name, blockno, off);
                *skipped = (size_t)avail;
                r->pos = r->rb.len;
                r->dead = true;
                return TT_ERR_FORMAT;
        }
        if (h < 0) {
                int64_t s = resync(r, 0, errstr, errsize);
                if (s < 0)
                        return TT_ERR_IO;
                *skipped = (size_t)s;
                snprintf(errstr, errsize,
                         "%s: block %" PRId64 " at offset %" PRId64
                         ": bad block header (count %" PRId64 ", size %" PRId64
                         "); skipped %" PRId64 " bytes",
                         name, blockno, off, n, size, s);
                return TT_ERR_FORMAT;
        }
        size_t total = (size_t)h + (size_t)size + SYNC_LEN;
        avail = fill(r, total, errstr, errsize);
        if (avail < 0)
                return TT_ERR_IO;
        if ((size_t)avail < total) {
                snprintf(errstr, errsize,
                         "%s: block %" PRId64 " at offset %" PRId64
                         ": truncated (%" PRId64 " of %zu bytes)",
                         name, blockno, off, avail, total);
                *skipped = (size_t)avail;
                r->pos = r->rb.len;
                r->dead = true;
                return TT_ERR_FORMAT;
        }
        const uint8_t *data = r->rb.data + r->pos + h;
        if (memcmp(data + size, r->sync, SYNC_LEN) != 0) {
                int64_t s = resync(r, total, errstr, errsize);
                if (s < 0)
                        return TT_ERR_IO;
                *skipped = (size_t)s;
                snprintf(errstr, errsize,
                         "%s: block %" PRId64 " at offset %" PRId64
                         ": wrong sync marker; skipped %" PRId64 " bytes",
                         name, blockno, off, s);
                return TT_ERR_FORMAT;
        }
        int err = tt_buf_append(block, data, (size_t)size);
        if (err) {
                snprintf(errstr, errsize, "%s: block %" PRId64 ": %s", name,
                         blockno, tt_err2str(err));
                return err;
        }
        r->pos += total;
        *count = n;
        return TT_ERR_OK;
}

/* ---- decompression ---------------------------------------------------- */

/* One libdeflate decompressor per thread, made on first use and freed when
 * the thread exits (a thread-specific key rather than a bare _Thread_local,
 * so that worker threads do not leak it). */
static pthread_key_t dec_key;
static pthread_once_t dec_once = PTHREAD_ONCE_INIT;

static void free_decompressor(void *p) {
        libdeflate_free_decompressor(p);
}

static void make_key(void) {
        (void)pthread_key_create(&dec_key, free_decompressor);
}

static struct libdeflate_decompressor *thread_decompressor(void) {
        pthread_once(&dec_once, make_key);
        struct libdeflate_decompressor *d = pthread_getspecific(dec_key);
        if (!d) {
                d = libdeflate_alloc_decompressor();
                if (d && pthread_setspecific(dec_key, d) != 0) {
                        libdeflate_free_decompressor(d);
                        d = NULL;
                }
        }
        return d;
}

static int inflate_block(const uint8_t *in, size_t len, tt_buf *out,
                         char *errstr, size_t errsize) {
        struct libdeflate_decompressor *d = thread_decompressor();
        if (!d) {
                snprintf(errstr, errsize, "out of memory (deflate)");
                return TT_ERR_NOMEM;
        }
        size_t max = out->max < TT_OCF_MAX_BLOCK ? out->max : TT_OCF_MAX_BLOCK;
        /* The uncompressed size is not stored: guess, and grow on
         * LIBDEFLATE_INSUFFICIENT_SPACE. Buffers are reused, so the guess
         * matters only for the first blocks. */
        size_t guess = len > max / 4 ? max : len * 4;
        if (guess < out->cap)
                guess = out->cap;
        if (guess < (64u << 10))
                guess = 64u << 10;
        if (guess > max)
                guess = max;
        for (;;) {
                int err = tt_buf_reserve(out, guess);
                if (err) {
                        snprintf(errstr, errsize,
                                 "deflate block: cannot allocate %zu bytes",
                                 guess);
                        return err;
                }
                size_t got;
                enum libdeflate_result rc = libdeflate_deflate_decompress(
                    d, in, len, out->data, guess, &got);
                if (rc == LIBDEFLATE_SUCCESS) {
                        out->len = got;
                        return TT_ERR_OK;
                }
                if (rc != LIBDEFLATE_INSUFFICIENT_SPACE) {
                        snprintf(errstr, errsize, "corrupt deflate data");
                        return TT_ERR_FORMAT;
                }
                if (guess >= max) {
                        snprintf(errstr, errsize,
                                 "deflate block inflates to over %zu bytes",
                                 max);
                        return TT_ERR_FORMAT;
                }
                guess = guess > max / 2 ? max : guess * 2;
        }
}

static int unsnappy_block(const uint8_t *in, size_t len, tt_buf *out,
                          char *errstr, size_t errsize) {
        if (len < 4) {
                snprintf(errstr, errsize,
                         "snappy block of %zu bytes has no CRC-32", len);
                return TT_ERR_FORMAT;
        }
        size_t clen = len - 4, n;
        if (snappy_uncompressed_length((const char *)in, clen, &n) !=
            SNAPPY_OK) {
                snprintf(errstr, errsize, "corrupt snappy data");
                return TT_ERR_FORMAT;
        }
        if (n > TT_OCF_MAX_BLOCK) {
                snprintf(errstr, errsize,
                         "snappy block claims %zu bytes, over the cap", n);
                return TT_ERR_FORMAT;
        }
        int err = tt_buf_reserve(out, n);
        if (err) {
                snprintf(errstr, errsize,
                         "snappy block: cannot allocate %zu bytes", n);
                return err;
        }
        if (snappy_uncompress((const char *)in, clen, (char *)out->data, &n) !=
            SNAPPY_OK) {
                snprintf(errstr, errsize, "corrupt snappy data");
                return TT_ERR_FORMAT;
        }
        const uint8_t *c = in + clen;
        uint32_t want = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 |
                        (uint32_t)c[2] << 8 | c[3];
        uint32_t got = (uint32_t)crc32(0L, out->data, (uInt)n);
        if (got != want) {
                snprintf(errstr, errsize,
                         "snappy block CRC-32 mismatch (stored %08" PRIx32
                         ", computed %08" PRIx32 ")",
                         want, got);
                return TT_ERR_FORMAT;
        }
        out->len = n;
        return TT_ERR_OK;
}

int tt_ocf_decompress(tt_ocf_codec codec, const uint8_t *in, size_t len,
                      tt_buf *out, char *errstr, size_t errsize) {
        tt_buf_reset(out);
        switch (codec) {
        case TT_OCF_NULL: {
                int err = tt_buf_append(out, in, len);
                if (err)
                        snprintf(errstr, errsize, "block: %s", tt_err2str(err));
                return err;
        }
        case TT_OCF_DEFLATE:
                return inflate_block(in, len, out, errstr, errsize);
        case TT_OCF_SNAPPY:
                return unsnappy_block(in, len, out, errstr, errsize);
        }
        snprintf(errstr, errsize, "unknown codec %d", (int)codec);
        return TT_ERR_INVAL;
}

/* ---- writer ----------------------------------------------------------- */

/* Blocks are cut at block_records or at this many bytes, whichever comes
 * first, so that any reader's block cap is respected. */
#define WRITE_BLOCK_BYTES (4u << 20)
#define DEFLATE_LEVEL 5

struct tt_ocf_writer {
        FILE *f;
        tt_ocf_codec codec;
        size_t block_records;
        size_t count;
        tt_buf block, comp;
        struct libdeflate_compressor *deflater;
        uint8_t sync[SYNC_LEN];
        int err; /* sticky */
};

static void random_sync(uint8_t sync[SYNC_LEN]) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t n = read(fd, sync, SYNC_LEN);
                close(fd);
                if (n == SYNC_LEN)
                        return;
        }
        /* No /dev/urandom (chroot): splitmix64 over time, pid and an
         * address is plenty for a marker that only has to be unlikely in
         * the data. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
                     (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)sync;
        for (int k = 0; k < 2; k++) {
                uint64_t z = (x += UINT64_C(0x9E3779B97F4A7C15));
                z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
                z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
                z ^= z >> 31;
                memcpy(sync + 8 * k, &z, 8);
        }
}

static int put_long_buf(tt_buf *b, int64_t v) {
        uint8_t tmp[10];
        size_t n = tt_avro_put_long(tmp, sizeof(tmp), v);
        return tt_buf_append(b, tmp, n);
}

static int put_bytes_buf(tt_buf *b, const void *p, size_t n) {
        int err = put_long_buf(b, (int64_t)n);
        return err ? err : tt_buf_append(b, p, n);
}

static const char *codec_name(tt_ocf_codec c) {
        switch (c) {
        case TT_OCF_DEFLATE:
                return "deflate";
        case TT_OCF_SNAPPY:
                return "snappy";
        case TT_OCF_NULL:
                break;
        }
        return "null";
}

tt_ocf_writer *tt_ocf_writer_new(FILE *f, const char *schema_json,
                                 tt_ocf_codec codec, size_t block_records,
                                 char *errstr, size_t errsize) {
        if (codec != TT_OCF_NULL && codec != TT_OCF_DEFLATE &&
            codec != TT_OCF_SNAPPY) {
                snprintf(errstr, errsize, "unknown codec %d", (int)codec);
                return NULL;
        }
        tt_ocf_writer *w = tt_calloc(1, sizeof(*w));
        if (!w) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        w->f = f;
        w->codec = codec;
        w->block_records = block_records ? block_records : 1;
        tt_buf_init(&w->block, TT_OCF_MAX_BLOCK);
        tt_buf_init(&w->comp, TT_OCF_MAX_BLOCK + 64);
        if (codec == TT_OCF_DEFLATE) {
                w->deflater = libdeflate_alloc_compressor(DEFLATE_LEVEL);
                if (!w->deflater) {
                        snprintf(errstr, errsize, "out of memory (deflate)");
                        goto fail;
                }
        }
        random_sync(w->sync);
        const char *cn = codec_name(codec);
        tt_buf *h = &w->comp;
        int err = tt_buf_append(h, magic, sizeof(magic));
        if (!err)
                err = put_long_buf(h, 2);
        if (!err)
                err = put_bytes_buf(h, "avro.schema", 11);
        if (!err)
                err = put_bytes_buf(h, schema_json, strlen(schema_json));
        if (!err)
                err = put_bytes_buf(h, "avro.codec", 10);
        if (!err)
                err = put_bytes_buf(h, cn, strlen(cn));
        if (!err)
                err = put_long_buf(h, 0);
        if (!err)
                err = tt_buf_append(h, w->sync, SYNC_LEN);
        if (err) {
                snprintf(errstr, errsize, "OCF header: %s", tt_err2str(err));
                goto fail;
        }
        if (fwrite(h->data, 1, h->len, f) != h->len) {
                snprintf(errstr, errsize, "cannot write OCF header: %s",
                         strerror(errno));
                goto fail;
        }
        return w;
fail:
        libdeflate_free_compressor(w->deflater);
        tt_buf_free(&w->block);
        tt_buf_free(&w->comp);
        tt_free(w);
        return NULL;
}

static int flush_block(tt_ocf_writer *w) {
        if (w->count == 0 || w->err)
                return w->err;
        const uint8_t *data = w->block.data;
        size_t len = w->block.len;
        tt_buf *c = &w->comp;
        tt_buf_reset(c);
        int err = TT_ERR_OK;
        uint8_t hdr[20];
        size_t hl = tt_avro_put_long(hdr, sizeof(hdr), (int64_t)w->count);
        if (w->codec == TT_OCF_DEFLATE) {
                size_t bound =
                    libdeflate_deflate_compress_bound(w->deflater, len);
                err = tt_buf_reserve(c, bound);
                if (!err) {
                        size_t n = libdeflate_deflate_compress(
                            w->deflater, data, len, c->data, bound);
                        if (n == 0)
                                err = TT_ERR_LIMIT;
                        c->len = n;
                }
                data = c->data;
                len = c->len;
        } else if (w->codec == TT_OCF_SNAPPY) {
                size_t bound = snappy_max_compressed_length(len);
                err = tt_buf_reserve(c, bound + 4);
                if (!err) {
                        size_t n = bound;
                        if (snappy_compress((const char *)data, len,
                                            (char *)c->data, &n) != SNAPPY_OK)
                                err = TT_ERR_LIMIT;
                        uint32_t crc = (uint32_t)crc32(0L, data, (uInt)len);
                        c->data[n] = (uint8_t)(crc >> 24);
                        c->data[n + 1] = (uint8_t)(crc >> 16);
                        c->data[n + 2] = (uint8_t)(crc >> 8);
                        c->data[n + 3] = (uint8_t)crc;
                        c->len = n + 4;
                }
                data = c->data;
                len = c->len;
        }
        if (err)
                return w->err = err;
        hl += tt_avro_put_long(hdr + hl, sizeof(hdr) - hl, (int64_t)len);
        if (fwrite(hdr, 1, hl, w->f) != hl ||
            fwrite(data, 1, len, w->f) != len ||
            fwrite(w->sync, 1, SYNC_LEN, w->f) != SYNC_LEN)
                return w->err = TT_ERR_IO;
        tt_buf_reset(&w->block);
        w->count = 0;
        return TT_ERR_OK;
}

int tt_ocf_writer_append(tt_ocf_writer *w, const uint8_t *rec, size_t len) {
        if (w->err)
                return w->err;
        if (w->block.len + len > WRITE_BLOCK_BYTES && w->count > 0) {
                int err = flush_block(w);
                if (err)
                        return err;
        }
        int err = tt_buf_append(&w->block, rec, len);
        if (err)
                return w->err = err;
        if (++w->count >= w->block_records)
                return flush_block(w);
        return TT_ERR_OK;
}

int tt_ocf_writer_close(tt_ocf_writer *w) {
        if (!w)
                return TT_ERR_OK;
        int err = flush_block(w);
        if (!err && fflush(w->f) != 0)
                err = TT_ERR_IO;
        libdeflate_free_compressor(w->deflater);
        tt_buf_free(&w->block);
        tt_buf_free(&w->comp);
        tt_free(w);
        return err;
}
