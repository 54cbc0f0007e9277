/* Single-thread decode throughput of the input codecs: JSON lines of about
 * 200 bytes, bundled-schema Avro records, and the whole OCF path (read,
 * decompress, decode) per codec. Not built by CMake; compile by hand:
 *   cc -O2 -Iinclude bench/micro_decode.c build/libttcodec.a
 *      build/libttcore.a build/libttutil.a $(pkg-config --libs avro-c
 *      libdeflate zlib jemalloc) -lsnappy -lpthread -lm */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokentally/avro_event.h"
#include "tokentally/input.h"
#include "tokentally/json_event.h"
#include "tokentally/ocf.h"

static double cpu_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *const models[] = {
    "deepseek/deepseek-chat-v3", "openai/gpt-4o", "qwen/qwen3-235b-a22b",
    "anthropic/claude-sonnet-4", "mistralai/mistral-large-2411"};
static const char *const origins[] = {"CN", "US", "FR"};

static tt_event make(int i, char *rid, char *prov) {
        tt_event ev = {0};
        sprintf(rid, "9f1c%08x-5b2e-4c1d-a7e3-%012x", i * 2654435761u,
                (unsigned)i);
        ev.request_id = (tt_str){rid, strlen(rid)};
        ev.event_time_ms = INT64_C(1775044800000) + (int64_t)i * 37;
        ev.model = (tt_str){models[i % 5], strlen(models[i % 5])};
        ev.origin = i % 4 ? TT_STR_NULL : (tt_str){origins[i % 3], 2};
        ev.prompt_tokens = 100 + (i * 7919) % 20000;
        ev.completion_tokens = 10 + (i * 104729) % 4000;
        sprintf(prov, "provider-%d", i % 9);
        ev.provider = (tt_str){prov, strlen(prov)};
        ev.present = TT_F_REQUIRED | TT_F_ORIGIN | TT_F_PROVIDER;
        return ev;
}

int main(int argc, char **argv) {
        int n = argc > 1 ? atoi(argv[1]) : 2000000;
        char rid[64], prov[32], detail[160], err[256];

        /* JSON lines with an unknown field to pad them to ~200 bytes. */
        tt_buf text;
        tt_buf_init(&text, (size_t)1 << 34);
        size_t *offs = malloc(sizeof(size_t) * ((size_t)n + 1));
        for (int i = 0; i < n; i++) {
                tt_event ev = make(i, rid, prov);
                offs[i] = text.len;
                tt_json_encode_event(&text, &ev);
                text.len--; /* reopen the object */
                tt_buf_printf(&text, ",\"region\":\"eu-west-%d\"}", i % 3);
        }
        offs[n] = text.len;
        tt_json_dec *jd = tt_json_dec_new();
        int64_t sum = 0;
        double t0 = cpu_now();
        for (int i = 0; i < n; i++) {
                tt_event ev;
                if (tt_json_decode_event(jd, (char *)text.data + offs[i],
                                         offs[i + 1] - offs[i], &ev, detail,
                                         sizeof(detail)) != TT_REASON_NONE) {
                        fprintf(stderr, "json: %s\n", detail);
                        return 1;
                }
                sum += ev.prompt_tokens;
        }
        double t = cpu_now() - t0;
        printf("json  : %d lines, avg %.0f B/line, %.2f M lines/s, %.0f MB/s\n",
               n, (double)text.len / n, n / t / 1e6, text.len / t / 1e6);

        /* Avro records, back to back. */
        tt_buf bin;
        tt_buf_init(&bin, (size_t)1 << 34);
        for (int i = 0; i < n; i++) {
                tt_event ev = make(i, rid, prov);
                tt_buf_reserve(&bin, 256);
                bin.len += tt_avro_encode_event(&ev, bin.data + bin.len, 256);
        }
        tt_avro_dec *ad = tt_avro_dec_new(NULL, err, sizeof(err));
        t0 = cpu_now();
        size_t off = 0;
        for (int i = 0; i < n; i++) {
                tt_event ev;
                size_t used;
                if (tt_avro_decode_event(ad, bin.data + off, bin.len - off,
                                         &used, &ev, detail,
                                         sizeof(detail)) != TT_REASON_NONE) {
                        fprintf(stderr, "avro: %s\n", detail);
                        return 1;
                }
                off += used;
                sum += ev.completion_tokens;
        }
        t = cpu_now() - t0;
        printf("avro  : %d records, avg %.0f B/record, %.2f M records/s\n", n,
               (double)bin.len / n, n / t / 1e6);

        /* Whole OCF path from a file per codec. */
        static const char *const cn[] = {"null", "deflate", "snappy"};
        for (int c = 0; c < 3; c++) {
                char path[64];
                snprintf(path, sizeof(path), "/tmp/tt_bench_%s.avro", cn[c]);
                FILE *f = fopen(path, "wb");
                tt_ocf_writer *w =
                    tt_ocf_writer_new(f, tt_token_event_schema_json,
                                      (tt_ocf_codec)c, 4000, err, sizeof(err));
                off = 0;
                for (int i = 0; i < n; i++) {
                        size_t used;
                        tt_event ev;
                        tt_avro_decode_event(ad, bin.data + off, bin.len - off,
                                             &used, &ev, detail,
                                             sizeof(detail));
                        tt_ocf_writer_append(w, bin.data + off, used);
                        off += used;
                }
                tt_ocf_writer_close(w);
                fclose(f);
                t0 = cpu_now();
                tt_input *in = tt_input_open(path, err, sizeof(err));
                tt_ocf_reader *r = tt_ocf_reader_new(in, err, sizeof(err));
                tt_avro_dec *d2 =
                    tt_avro_dec_new(tt_ocf_reader_schema(r), err, sizeof(err));
                tt_buf block, raw;
                tt_buf_init(&block, TT_OCF_MAX_BLOCK);
                tt_buf_init(&raw, TT_OCF_MAX_BLOCK);
                int64_t count, total = 0;
                size_t skipped;
                while (tt_ocf_reader_next(r, &count, &block, &skipped, err,
                                          sizeof(err)) == 0) {
                        tt_ocf_decompress((tt_ocf_codec)c, block.data,
                                          block.len, &raw, err, sizeof(err));
                        size_t o = 0;
                        for (int64_t k = 0; k < count; k++) {
                                size_t used;
                                tt_event ev;
                                tt_avro_decode_event(d2, raw.data + o,
                                                     raw.len - o, &used, &ev,
                                                     detail, sizeof(detail));
                                o += used;
                                sum += ev.prompt_tokens;
                        }
                        total += count;
                }
                t = cpu_now() - t0;
                printf("ocf %-7s: %" PRId64 " records, file %" PRId64
                       " B, %.2f M records/CPU-s\n",
                       cn[c], total, tt_input_size(in), total / t / 1e6);
                tt_buf_free(&block);
                tt_buf_free(&raw);
                tt_avro_dec_destroy(d2);
                tt_ocf_reader_destroy(r);
                tt_input_close(in);
                remove(path);
        }
        printf("(checksum %" PRId64 ")\n", sum);
        return 0;
}
