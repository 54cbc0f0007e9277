/* Avro Object Container Files, checked against an independent implementation
 * (python3-avro's DataFileWriter/Reader) for every codec in both directions,
 * then damaged files: truncation, a bad sync marker or block header in the
 * middle (later blocks still read), CRC mismatch, bad headers. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "tokentally/avro_event.h"
#include "tokentally/err.h"
#include "tokentally/ocf.h"

#define ERR 512
#define NREC 1000

static char dir[64];
static const char *const codec_names[] = {"null", "deflate", "snappy"};

static void setup(void) {
        strcpy(dir, "/tmp/tt_ocf_XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
}

/* ---- the records both sides agree on ---------------------------------- */

static const char *const models[] = {"deepseek/deepseek-chat-v3",
                                     "openai/gpt-4o", "qwen/qwen3-235b",
                                     "mistralai/mistral-large"};
static const char *const origins[] = {NULL, "CN", "US"};

/* Record i; strings live in the caller's buffers. */
static tt_event expected(int i, char *rid, char *prov) {
        tt_event ev = {0};
        sprintf(rid, "req-%d", i);
        ev.request_id = (tt_str){rid, strlen(rid)};
        ev.event_time_ms = INT64_C(1775044800000) + i * INT64_C(1000) + i % 7;
        ev.model = (tt_str){models[i % 4], strlen(models[i % 4])};
        const char *o = origins[i % 3];
        ev.origin = o ? (tt_str){o, 2} : TT_STR_NULL;
        ev.prompt_tokens = (int64_t)i * 3 % 5000;
        ev.completion_tokens = (int64_t)i * 7 % 3000;
        if (i % 2 == 0) {
                sprintf(prov, "prov-%d", i % 5);
                ev.provider = (tt_str){prov, strlen(prov)};
        } else {
                ev.provider = TT_STR_NULL;
        }
        return ev;
}

/* The same in python, and a snappy module for python3-avro when
 * python3-snappy is not installed: a literal-only compressor and a full
 * decompressor, written from the format description, independent of the
 * C library our reader and writer use. */
static const char py_prelude[] =
    "import sys, types, datetime, json\n"
    "try:\n"
    "    import snappy\n"
    "except ImportError:\n"
    "    m = types.ModuleType('snappy')\n"
    "    def _varint(n):\n"
    "        out = bytearray()\n"
    "        while n >= 0x80:\n"
    "            out.append(n & 0x7f | 0x80); n >>= 7\n"
    "        out.append(n); return bytes(out)\n"
    "    def compress(data):\n"
    "        out = bytearray(_varint(len(data)))\n"
    "        for k in range(0, len(data), 65536):\n"
    "            chunk = data[k:k + 65536]; n = len(chunk) - 1\n"
    "            if n < 60: out.append(n << 2)\n"
    "            else: out += bytes([61 << 2, n & 0xff, n >> 8])\n"
    "            out += chunk\n"
    "        return bytes(out)\n"
    "    def decompress(data):\n"
    "        n = shift = p = 0\n"
    "        while True:\n"
    "            b = data[p]; p += 1; n |= (b & 0x7f) << shift; shift += 7\n"
    "            if b < 0x80: break\n"
    "        out = bytearray()\n"
    "        while p < len(data):\n"
    "            tag = data[p]; p += 1; kind = tag & 3\n"
    "            if kind == 0:\n"
    "                ln = tag >> 2\n"
    "                if ln >= 60:\n"
    "                    nb = ln - 59\n"
    "                    ln = int.from_bytes(data[p:p + nb], 'little'); p += "
    "nb\n"
    "                ln += 1; out += data[p:p + ln]; p += ln; continue\n"
    "            if kind == 1:\n"
    "                ln = 4 + ((tag >> 2) & 7); off = ((tag >> 5) << 8) | "
    "data[p]; p += 1\n"
    "            elif kind == 2:\n"
    "                ln = 1 + (tag >> 2); off = int.from_bytes(data[p:p + 2], "
    "'little'); p += 2\n"
    "            else:\n"
    "                ln = 1 + (tag >> 2); off = int.from_bytes(data[p:p + 4], "
    "'little'); p += 4\n"
    "            if off == 0 or off > len(out): raise ValueError('bad copy')\n"
    "            for _ in range(ln): out.append(out[-off])\n"
    "        if len(out) != n: raise ValueError('bad length')\n"
    "        return bytes(out)\n"
    "    m.compress = compress; m.decompress = decompress\n"
    "    sys.modules['snappy'] = m\n"
    "import avro.schema, avro.io, avro.datafile\n"
    "EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)\n"
    "MODELS = ['deepseek/deepseek-chat-v3', 'openai/gpt-4o', "
    "'qwen/qwen3-235b', 'mistralai/mistral-large']\n"
    "ORIGINS = [None, 'CN', 'US']\n"
    "def rec(i):\n"
    "    return {'request_id': 'req-%d' % i,\n"
    "            'event_time': 1775044800000 + i * 1000 + i % 7,\n"
    "            'model': MODELS[i % 4], 'origin': ORIGINS[i % 3],\n"
    "            'prompt_tokens': i * 3 % 5000,\n"
    "            'completion_tokens': i * 7 % 3000,\n"
    "            'provider': 'prov-%d' % (i % 5) if i % 2 == 0 else None}\n"
    "def ms(t): return (t - EPOCH) // datetime.timedelta(milliseconds=1)\n";

static void run_python(const char *body, char *out, size_t outsize) {
        char path[128];
        snprintf(path, sizeof(path), "%s/script.py", dir);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(py_prelude, f);
        fputs(body, f);
        fclose(f);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s 2>&1", path);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        size_t n = fread(out, 1, outsize - 1, p);
        out[n] = '\0';
        ck_assert_msg(pclose(p) == 0, "python failed: %s", out);
}

/* ---- reading a whole file with our reader ----------------------------- */

typedef struct result {
        int records; /* decoded and equal to expected(index) */
        int blocks;  /* read OK */
        int errors;  /* FORMAT returns */
        char first_err[ERR];
        size_t skipped[8];
        int first_index; /* record numbering to compare against */
        tt_ocf_codec codec;
} result;

/* Reads path, decoding every record and comparing it with expected(i) for
 * the running i, or with the records listed in `lost` skipped. */
static void read_ocf(const char *path, result *res, const int *lost_from,
                     int lost_count) {
        char err[ERR], detail[128];
        memset(res, 0, sizeof(*res));
        tt_input *in = tt_input_open(path, err, ERR);
        ck_assert_msg(in != NULL, "%s", err);
        tt_ocf_reader *r = tt_ocf_reader_new(in, err, ERR);
        ck_assert_msg(r != NULL, "%s", err);
        res->codec = tt_ocf_reader_codec(r);
        tt_avro_dec *dec = tt_avro_dec_new(tt_ocf_reader_schema(r), err, ERR);
        ck_assert_msg(dec != NULL, "%s", err);
        tt_buf block, raw;
        tt_buf_init(&block, TT_OCF_MAX_BLOCK);
        tt_buf_init(&raw, TT_OCF_MAX_BLOCK);
        int i = 0;
        for (;;) {
                int64_t count;
                size_t skipped;
                int rc =
                    tt_ocf_reader_next(r, &count, &block, &skipped, err, ERR);
                if (rc == TT_ERR_EOF)
                        break;
                if (rc == TT_ERR_FORMAT) {
                        if (res->errors == 0)
                                strcpy(res->first_err, err);
                        if (res->errors < 8)
                                res->skipped[res->errors] = skipped;
                        res->errors++;
                        if (lost_from && res->errors == 1)
                                i = *lost_from + lost_count;
                        continue;
                }
                ck_assert_msg(rc == TT_ERR_OK, "%d %s", rc, err);
                res->blocks++;
                ck_assert_int_eq(tt_ocf_decompress(res->codec, block.data,
                                                   block.len, &raw, err, ERR),
                                 TT_ERR_OK);
                size_t off = 0;
                for (int64_t k = 0; k < count; k++, i++) {
                        tt_event ev;
                        size_t used;
                        ck_assert_int_eq(
                            tt_avro_decode_event(dec, raw.data + off,
                                                 raw.len - off, &used, &ev,
                                                 detail, sizeof(detail)),
                            TT_REASON_NONE);
                        off += used;
                        char rid[32], prov[32];
                        tt_event want = expected(i, rid, prov);
                        ck_assert_int_eq(ev.request_id.len,
                                         want.request_id.len);
                        ck_assert_mem_eq(ev.request_id.ptr, want.request_id.ptr,
                                         want.request_id.len);
                        ck_assert_int_eq(ev.event_time_ms, want.event_time_ms);
                        ck_assert_int_eq(ev.model.len, want.model.len);
                        ck_assert_mem_eq(ev.model.ptr, want.model.ptr,
                                         want.model.len);
                        ck_assert_int_eq(ev.origin.ptr == NULL,
                                         want.origin.ptr == NULL);
                        if (want.origin.ptr)
                                ck_assert_mem_eq(ev.origin.ptr, want.origin.ptr,
                                                 2);
                        ck_assert_int_eq(ev.prompt_tokens, want.prompt_tokens);
                        ck_assert_int_eq(ev.completion_tokens,
                                         want.completion_tokens);
                        ck_assert_int_eq(ev.provider.ptr == NULL,
                                         want.provider.ptr == NULL);
                        if (want.provider.ptr)
                                ck_assert_mem_eq(ev.provider.ptr,
                                                 want.provider.ptr,
                                                 want.provider.len);
                        res->records++;
                }
                /* A block holds exactly its records. */
                ck_assert_uint_eq(off, raw.len);
        }
        /* EOF is sticky. */
        int64_t count;
        size_t skipped;
        ck_assert_int_eq(
            tt_ocf_reader_next(r, &count, &block, &skipped, err, ERR),
            TT_ERR_EOF);
        tt_buf_free(&block);
        tt_buf_free(&raw);
        tt_avro_dec_destroy(dec);
        tt_ocf_reader_destroy(r);
        tt_input_close(in);
}

/* Writes NREC records with our writer. */
static void write_ours(const char *path, tt_ocf_codec codec,
                       size_t block_records) {
        char err[ERR];
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        tt_ocf_writer *w = tt_ocf_writer_new(f, tt_token_event_schema_json,
                                             codec, block_records, err, ERR);
        ck_assert_msg(w != NULL, "%s", err);
        for (int i = 0; i < NREC; i++) {
                char rid[32], prov[32];
                tt_event ev = expected(i, rid, prov);
                uint8_t buf[256];
                size_t n = tt_avro_encode_event(&ev, buf, sizeof(buf));
                ck_assert_int_eq(tt_ocf_writer_append(w, buf, n), TT_ERR_OK);
        }
        ck_assert_int_eq(tt_ocf_writer_close(w), TT_ERR_OK);
        ck_assert_int_eq(fclose(f), 0);
}

static uint8_t *slurp(const char *path, size_t *len) {
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        fseek(f, 0, SEEK_END);
        *len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *p = malloc(*len + 1);
        ck_assert_uint_eq(fread(p, 1, *len, f), *len);
        fclose(f);
        return p;
}

static void spit(const char *path, const uint8_t *p, size_t len) {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(p, 1, len, f), len);
        fclose(f);
}

/* Block boundaries of a well-formed file: offsets of each block's header
 * and the end of its sync marker. Parses the layout on its own terms. */
static int parse_long(const uint8_t *p, int64_t *v) {
        uint64_t u = 0;
        int k = 0;
        do {
                u |= (uint64_t)(p[k] & 0x7f) << (7 * k);
        } while (p[k++] & 0x80);
        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        return k;
}

static int block_layout(const uint8_t *file, size_t len, size_t *starts,
                        int64_t *counts, int max) {
        /* Header: magic, map of 2 entries, 0, sync (our writer's shape). */
        size_t p = 4;
        int64_t v;
        p += (size_t)parse_long(file + p, &v);
        ck_assert_int_eq(v, 2);
        for (int k = 0; k < 4; k++) {
                p += (size_t)parse_long(file + p, &v);
                p += (size_t)v;
        }
        p += (size_t)parse_long(file + p, &v);
        ck_assert_int_eq(v, 0);
        p += 16;
        int n = 0;
        while (p < len && n < max) {
                starts[n] = p;
                p += (size_t)parse_long(file + p, &counts[n]);
                int64_t size;
                p += (size_t)parse_long(file + p, &size);
                p += (size_t)size + 16;
                n++;
        }
        starts[n] = p;
        ck_assert_uint_eq(p, len);
        return n;
}

/* ---- independent implementation, both directions ---------------------- */

START_TEST(python_writes_we_read) {
        char path[128], body[4096], out[4096];
        snprintf(path, sizeof(path), "%s/py-%s.avro", dir, codec_names[_i]);
        snprintf(body, sizeof(body),
                 "s = avro.schema.parse(r'''%s''')\n"
                 "w = avro.datafile.DataFileWriter(open('%s', 'wb'), "
                 "avro.io.DatumWriter(), s, codec='%s')\n"
                 "for i in range(%d):\n"
                 "    r = rec(i)\n"
                 "    r['event_time'] = EPOCH + datetime.timedelta("
                 "milliseconds=r['event_time'])\n"
                 "    w.append(r)\n"
                 "    if i %% 100 == 99: w.sync()\n"
                 "w.close()\n",
                 tt_token_event_schema_json, path, codec_names[_i], NREC);
        run_python(body, out, sizeof(out));
        result res;
        read_ocf(path, &res, NULL, 0);
        ck_assert_int_eq(res.codec, (tt_ocf_codec)_i);
        ck_assert_int_eq(res.records, NREC);
        ck_assert_int_eq(res.blocks, 10);
        ck_assert_int_eq(res.errors, 0);
}
END_TEST

START_TEST(we_write_python_reads) {
        char path[128], body[4096], out[4096];
        snprintf(path, sizeof(path), "%s/ours-%s.avro", dir, codec_names[_i]);
        write_ours(path, (tt_ocf_codec)_i, 64);
        snprintf(body, sizeof(body),
                 "r = avro.datafile.DataFileReader(open('%s', 'rb'), "
                 "avro.io.DatumReader())\n"
                 "assert r.codec == '%s', r.codec\n"
                 "n = 0\n"
                 "for i, got in enumerate(r):\n"
                 "    got['event_time'] = ms(got['event_time'])\n"
                 "    if got != rec(i):\n"
                 "        print('MISMATCH', i, got, rec(i)); sys.exit(1)\n"
                 "    n += 1\n"
                 "print('OK', n)\n",
                 path, codec_names[_i]);
        run_python(body, out, sizeof(out));
        char want[32];
        snprintf(want, sizeof(want), "OK %d\n", NREC);
        ck_assert_str_eq(out, want);
        result res;
        read_ocf(path, &res, NULL, 0);
        ck_assert_int_eq(res.records, NREC);
        ck_assert_int_eq(res.blocks, (NREC + 63) / 64);
}
END_TEST

/* ---- damage ----------------------------------------------------------- */

START_TEST(truncated_last_block) {
        char path[128], cut[128], want[256];
        snprintf(path, sizeof(path), "%s/t.avro", dir);
        snprintf(cut, sizeof(cut), "%s/cut.avro", dir);
        write_ours(path, TT_OCF_NULL, 100);
        size_t len, starts[32];
        int64_t counts[32];
        uint8_t *file = slurp(path, &len);
        int nb = block_layout(file, len, starts, counts, 31);
        ck_assert_int_eq(nb, 10);
        /* Cut inside the last block's data, inside its marker, and inside
         * its header. */
        const size_t cuts[] = {starts[9] + 40, len - 5, starts[9] + 1};
        const char *const why[] = {"truncated (", "truncated (",
                                   "truncated block header"};
        for (int c = 0; c < 3; c++) {
                spit(cut, file, cuts[c]);
                result res;
                read_ocf(cut, &res, NULL, 0);
                ck_assert_int_eq(res.records, NREC - 100);
                ck_assert_int_eq(res.blocks, 9);
                ck_assert_int_eq(res.errors, 1);
                snprintf(want, sizeof(want), "%s: block 9 at offset %zu: %s",
                         cut, starts[9], why[c]);
                ck_assert_msg(strncmp(res.first_err, want, strlen(want)) == 0,
                              "%s", res.first_err);
                ck_assert_uint_eq(res.skipped[0], cuts[c] - starts[9]);
        }
        /* Cut at a block boundary: a shorter, valid file. */
        spit(cut, file, starts[5]);
        result res;
        read_ocf(cut, &res, NULL, 0);
        ck_assert_int_eq(res.records, 500);
        ck_assert_int_eq(res.errors, 0);
        /* Cut inside the header: not readable at all. */
        spit(cut, file, starts[0] - 3);
        char err[ERR];
        tt_input *in = tt_input_open(cut, err, ERR);
        ck_assert_ptr_null(tt_ocf_reader_new(in, err, ERR));
        snprintf(want, sizeof(want), "%s: truncated in the header", cut);
        ck_assert_str_eq(err, want);
        tt_input_close(in);
        free(file);
}
END_TEST

/* A damaged block in the middle is reported once and skipped; every later
 * block is still read. */
static const struct {
        const char *what;
        const char *reason;
} middle[] = {
    {"sync", "wrong sync marker"},
    {"count", "bad block header (count -"},
    {"size", "wrong sync marker"},
};

START_TEST(damaged_middle_block) {
        char path[128], bad[128], want[256];
        snprintf(path, sizeof(path), "%s/m.avro", dir);
        snprintf(bad, sizeof(bad), "%s/bad.avro", dir);
        write_ours(path, TT_OCF_NULL, 100);
        size_t len, starts[32];
        int64_t counts[32];
        uint8_t *file = slurp(path, &len);
        ck_assert_int_eq(block_layout(file, len, starts, counts, 31), 10);
        const char *what = middle[_i].what;
        if (strcmp(what, "sync") == 0) {
                file[starts[6] - 9] ^= 0x40; /* block 5's marker */
        } else if (strcmp(what, "count") == 0) {
                file[starts[5]] |= 1; /* zig-zag: now negative */
        } else {
                /* Block 5's size one byte larger: data runs into the
                 * marker, so the marker read is wrong. */
                int64_t c, size;
                size_t p = starts[5] + (size_t)parse_long(file + starts[5], &c);
                int n = parse_long(file + p, &size);
                ck_assert_uint_eq(
                    tt_avro_put_long(file + p, (size_t)n, size + 1), (size_t)n);
        }
        spit(bad, file, len);
        result res;
        const int lost_from = 500;
        read_ocf(bad, &res, &lost_from, 100);
        ck_assert_int_eq(res.errors, 1);
        ck_assert_int_eq(res.blocks, 9);
        ck_assert_int_eq(res.records, NREC - 100);
        snprintf(want, sizeof(want), "%s: block 5 at offset %zu: %s", bad,
                 starts[5], middle[_i].reason);
        ck_assert_msg(strncmp(res.first_err, want, strlen(want)) == 0, "%s",
                      res.first_err);
        ck_assert_uint_eq(res.skipped[0], starts[6] - starts[5]);
        free(file);
}
END_TEST

/* Garbage between two blocks: skipped by scanning, reported once. */
START_TEST(garbage_between_blocks) {
        char path[128], bad[128];
        snprintf(path, sizeof(path), "%s/g.avro", dir);
        snprintf(bad, sizeof(bad), "%s/g-bad.avro", dir);
        write_ours(path, TT_OCF_DEFLATE, 100);
        size_t len, starts[32];
        int64_t counts[32];
        uint8_t *file = slurp(path, &len);
        ck_assert_int_eq(block_layout(file, len, starts, counts, 31), 10);
        /* 300 KiB of junk after block 3: longer than one read of the
         * reader, so the scan has to carry on across reads. */
        size_t junk = 300u << 10;
        uint8_t *out = malloc(len + junk);
        memcpy(out, file, starts[4]);
        for (size_t k = 0; k < junk; k++)
                out[starts[4] + k] = (uint8_t)(k * 7 + 3) | 1;
        memcpy(out + starts[4] + junk, file + starts[4], len - starts[4]);
        spit(bad, out, len + junk);
        result res;
        const int lost_from = 400;
        read_ocf(bad, &res, &lost_from, 100);
        ck_assert_int_eq(res.errors, 1);
        /* The junk and block 4 (whose start the scan cannot know) go. */
        ck_assert_int_eq(res.records, NREC - 100);
        ck_assert_uint_eq(res.skipped[0], junk + starts[5] - starts[4]);
        free(file);
        free(out);
}
END_TEST

START_TEST(snappy_crc_mismatch) {
        char path[128], err[ERR];
        snprintf(path, sizeof(path), "%s/s.avro", dir);
        write_ours(path, TT_OCF_SNAPPY, 100);
        size_t len, starts[32];
        int64_t counts[32];
        uint8_t *file = slurp(path, &len);
        ck_assert_int_eq(block_layout(file, len, starts, counts, 31), 10);
        /* The CRC is the 4 bytes before block 2's marker. */
        size_t crc_at = starts[3] - 16 - 4;
        uint32_t stored = (uint32_t)file[crc_at] << 24 |
                          (uint32_t)file[crc_at + 1] << 16 |
                          (uint32_t)file[crc_at + 2] << 8 | file[crc_at + 3];
        file[crc_at + 3] ^= 0x10;
        spit(path, file, len);
        tt_input *in = tt_input_open(path, err, ERR);
        tt_ocf_reader *r = tt_ocf_reader_new(in, err, ERR);
        ck_assert_int_eq(tt_ocf_reader_codec(r), TT_OCF_SNAPPY);
        tt_buf block, raw;
        tt_buf_init(&block, TT_OCF_MAX_BLOCK);
        tt_buf_init(&raw, TT_OCF_MAX_BLOCK);
        int64_t count;
        size_t skipped;
        for (int b = 0; b < 3; b++) {
                ck_assert_int_eq(
                    tt_ocf_reader_next(r, &count, &block, &skipped, err, ERR),
                    TT_ERR_OK);
                int rc = tt_ocf_decompress(TT_OCF_SNAPPY, block.data, block.len,
                                           &raw, err, ERR);
                if (b < 2) {
                        ck_assert_int_eq(rc, TT_ERR_OK);
                        continue;
                }
                ck_assert_int_eq(rc, TT_ERR_FORMAT);
                char want[128];
                snprintf(want, sizeof(want),
                         "snappy block CRC-32 mismatch (stored %08" PRIx32
                         ", computed %08" PRIx32 ")",
                         stored ^ 0x10, stored);
                ck_assert_str_eq(err, want);
        }
        /* Blocks after it are unaffected. */
        ck_assert_int_eq(
            tt_ocf_reader_next(r, &count, &block, &skipped, err, ERR),
            TT_ERR_OK);
        ck_assert_int_eq(tt_ocf_decompress(TT_OCF_SNAPPY, block.data, block.len,
                                           &raw, err, ERR),
                         TT_ERR_OK);
        tt_buf_free(&block);
        tt_buf_free(&raw);
        tt_ocf_reader_destroy(r);
        tt_input_close(in);
        free(file);
}
END_TEST

START_TEST(decompress_errors_and_growth) {
        char err[ERR];
        tt_buf out;
        tt_buf_init(&out, TT_OCF_MAX_BLOCK);
        /* BTYPE 11 is reserved: always invalid deflate. */
        const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
        ck_assert_int_eq(tt_ocf_decompress(TT_OCF_DEFLATE, junk, sizeof(junk),
                                           &out, err, ERR),
                         TT_ERR_FORMAT);
        ck_assert_str_eq(err, "corrupt deflate data");
        ck_assert_int_eq(
            tt_ocf_decompress(TT_OCF_SNAPPY, junk, 3, &out, err, ERR),
            TT_ERR_FORMAT);
        ck_assert_str_eq(err, "snappy block of 3 bytes has no CRC-32");
        ck_assert_int_eq(tt_ocf_decompress(TT_OCF_SNAPPY, junk, sizeof(junk),
                                           &out, err, ERR),
                         TT_ERR_FORMAT);
        ck_assert_str_eq(err, "corrupt snappy data");

        /* 12 MiB of zeros deflates to a few KiB: the first guess is far too
         * small and must grow. Written by our writer, read back. */
        char path[128];
        snprintf(path, sizeof(path), "%s/z.avro", dir);
        FILE *f = fopen(path, "wb");
        tt_ocf_writer *w =
            tt_ocf_writer_new(f, "\"bytes\"", TT_OCF_DEFLATE, 1, err, ERR);
        size_t big = 12u << 20;
        uint8_t *rec = calloc(1, big + 8);
        size_t h = tt_avro_put_long(rec, 8, (int64_t)(big - 4));
        ck_assert_int_eq(tt_ocf_writer_append(w, rec, h + big - 4), TT_ERR_OK);
        ck_assert_int_eq(tt_ocf_writer_close(w), TT_ERR_OK);
        fclose(f);
        tt_input *in = tt_input_open(path, err, ERR);
        tt_ocf_reader *r = tt_ocf_reader_new(in, err, ERR);
        ck_assert_str_eq(tt_ocf_reader_schema(r), "\"bytes\"");
        tt_buf block;
        tt_buf_init(&block, TT_OCF_MAX_BLOCK);
        int64_t count;
        size_t skipped;
        ck_assert_int_eq(
            tt_ocf_reader_next(r, &count, &block, &skipped, err, ERR),
            TT_ERR_OK);
        ck_assert_int_eq(count, 1);
        ck_assert_uint_lt(block.len, 1u << 20);
        ck_assert_int_eq(tt_ocf_decompress(TT_OCF_DEFLATE, block.data,
                                           block.len, &out, err, ERR),
                         TT_ERR_OK);
        ck_assert_uint_eq(out.len, h + big - 4);
        ck_assert_mem_eq(out.data, rec, out.len);
        /* The same into a buffer capped at 1 MiB: refused, with the cap. */
        tt_buf small;
        tt_buf_init(&small, 1u << 20);
        ck_assert_int_eq(tt_ocf_decompress(TT_OCF_DEFLATE, block.data,
                                           block.len, &small, err, ERR),
                         TT_ERR_FORMAT);
        ck_assert_str_eq(err, "deflate block inflates to over 1048576 bytes");
        tt_buf_free(&small);
        tt_buf_free(&block);
        tt_buf_free(&out);
        tt_ocf_reader_destroy(r);
        tt_input_close(in);
        free(rec);
}
END_TEST

/* Hand-made headers. */
static size_t header(uint8_t *p, const char *codec, bool schema) {
        size_t n = 0;
        memcpy(p, "Obj\x01", 4);
        n = 4;
        n += tt_avro_put_long(p + n, 16, (schema ? 1 : 0) + (codec ? 1 : 0));
        if (schema) {
                n += tt_avro_put_bytes(p + n, 64, "avro.schema", 11);
                n += tt_avro_put_bytes(p + n, 64, "\"long\"", 6);
        }
        if (codec) {
                n += tt_avro_put_bytes(p + n, 64, "avro.codec", 10);
                n += tt_avro_put_bytes(p + n, 64, codec, strlen(codec));
        }
        n += tt_avro_put_long(p + n, 16, 0);
        memset(p + n, 0xAB, 16);
        return n + 16;
}

START_TEST(bad_headers) {
        char path[128], err[ERR], want[ERR];
        uint8_t buf[256];
        snprintf(path, sizeof(path), "%s/h.avro", dir);
        size_t n = header(buf, "zstandard", true);
        spit(path, buf, n);
        tt_input *in = tt_input_open(path, err, ERR);
        ck_assert_ptr_null(tt_ocf_reader_new(in, err, ERR));
        snprintf(want, sizeof(want), "%s: unsupported codec 'zstandard'", path);
        ck_assert_str_eq(err, want);
        tt_input_close(in);

        n = header(buf, "null", false);
        spit(path, buf, n);
        in = tt_input_open(path, err, ERR);
        ck_assert_ptr_null(tt_ocf_reader_new(in, err, ERR));
        snprintf(want, sizeof(want), "%s: header has no avro.schema", path);
        ck_assert_str_eq(err, want);
        tt_input_close(in);

        spit(path, (const uint8_t *)"{\"model\":1}\n", 12);
        in = tt_input_open(path, err, ERR);
        ck_assert_ptr_null(tt_ocf_reader_new(in, err, ERR));
        snprintf(want, sizeof(want),
                 "%s: not an Avro object container file (bad magic)", path);
        ck_assert_str_eq(err, want);
        tt_input_close(in);

        /* No codec entry means null; no blocks is a clean EOF. */
        n = header(buf, NULL, true);
        spit(path, buf, n);
        in = tt_input_open(path, err, ERR);
        tt_ocf_reader *r = tt_ocf_reader_new(in, err, ERR);
        ck_assert_msg(r != NULL, "%s", err);
        ck_assert_int_eq(tt_ocf_reader_codec(r), TT_OCF_NULL);
        ck_assert_str_eq(tt_ocf_reader_schema(r), "\"long\"");
        tt_buf block;
        tt_buf_init(&block, 1024);
        int64_t count;
        size_t skipped;
        ck_assert_int_eq(
            tt_ocf_reader_next(r, &count, &block, &skipped, err, ERR),
            TT_ERR_EOF);
        tt_buf_free(&block);
        tt_ocf_reader_destroy(r);
        tt_input_close(in);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("ocf");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, python_writes_we_read, 0, 3);
        tcase_add_loop_test(tc, we_write_python_reads, 0, 3);
        tcase_add_test(tc, truncated_last_block);
        tcase_add_loop_test(tc, damaged_middle_block, 0,
                            sizeof(middle) / sizeof(middle[0]));
        tcase_add_test(tc, garbage_between_blocks);
        tcase_add_test(tc, snappy_crc_mismatch);
        tcase_add_test(tc, decompress_errors_and_growth);
        tcase_add_test(tc, bad_headers);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(suite());
}
