/* The Schema Registry client (pipeline/kafka/schema_registry.c) against a real
 * registry; tests/it_registry.sh starts the registry and runs:
 *
 *   it_registry_client URL SUBJECT SCHEMA COMPATIBLE INCOMPATIBLE OUT
 *
 * SCHEMA, COMPATIBLE (a BACKWARD-compatible change of SCHEMA) and
 * INCOMPATIBLE (a change BACKWARD compatibility forbids) are .avsc files.
 * Checks: SCHEMA registers with an id, again with the same id; it comes back
 * by id (written to OUT for the script to compare as JSON), once from the
 * registry and then from the cache, also from several threads at once;
 * COMPATIBLE registers with another id; INCOMPATIBLE is refused with
 * TT_ERR_INVAL and the registry's reason; an unknown id and an unreachable
 * registry fail with a reason. tt_registry_event_decoder: the bundled
 * TokenEvent schema registered by the client decodes an encoded event, the
 * decoder is cached; a writer schema that cannot resolve to TokenEvent
 * fails with a reason that is remembered. Prints one line per check; exit 0
 * when all pass. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/avro_event.h"
#include "tokentally/err.h"
#include "tokentally/schema_registry.h"

static int passes, failures;

#define CHECK(cond, ...)                                                       \
        do {                                                                   \
                if (cond) {                                                    \
                        printf("ok: ");                                        \
                        passes++;                                              \
                } else {                                                       \
                        printf("FAIL: ");                                      \
                        failures++;                                            \
                }                                                              \
                printf(__VA_ARGS__);                                           \
                printf("\n");                                                  \
                fflush(stdout);                                                \
        } while (0)

static char *slurp(const char *path) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                perror(path);
                exit(2);
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *s = malloc((size_t)n + 1);
        if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) {
                perror(path);
                exit(2);
        }
        s[n] = '\0';
        fclose(f);
        return s;
}

typedef struct job {
        tt_registry *reg;
        int32_t id;
        const char *got;
        char err[256];
} job;

static void *fetch_thread(void *arg) {
        job *j = arg;
        j->got =
            tt_registry_schema_by_id(j->reg, j->id, j->err, sizeof(j->err));
        return NULL;
}

int main(int argc, char **argv) {
        if (argc != 7) {
                fprintf(stderr,
                        "usage: %s URL SUBJECT SCHEMA COMPATIBLE "
                        "INCOMPATIBLE OUT\n",
                        argv[0]);
                return 2;
        }
        const char *url = argv[1], *subject = argv[2];
        char *schema = slurp(argv[3]);
        char *compatible = slurp(argv[4]);
        char *incompatible = slurp(argv[5]);
        char err[512];

        tt_registry *reg = tt_registry_new(url, err, sizeof(err));
        if (!reg) {
                printf("FAIL: tt_registry_new: %s\n", err);
                return 1;
        }

        int32_t id = -1, id2 = -2, id3 = -3, id4 = -4;
        int rc =
            tt_registry_register(reg, subject, schema, &id, err, sizeof(err));
        CHECK(rc == TT_ERR_OK, "register %s: rc %d, id %" PRId32 "%s%s",
              subject, rc, id, rc ? ": " : "", rc ? err : "");
        rc = tt_registry_register(reg, subject, schema, &id2, err, sizeof(err));
        CHECK(rc == TT_ERR_OK && id2 == id,
              "register again: rc %d, id %" PRId32 " (first %" PRId32 ")%s%s",
              rc, id2, id, rc ? ": " : "", rc ? err : "");

        const char *got = tt_registry_schema_by_id(reg, id, err, sizeof(err));
        CHECK(got != NULL, "schema by id %" PRId32 ": %s", id,
              got ? "fetched" : err);
        if (got) {
                FILE *f = fopen(argv[6], "w");
                if (!f || fputs(got, f) < 0 || fclose(f)) {
                        perror(argv[6]);
                        return 2;
                }
        }
        const char *again = tt_registry_schema_by_id(reg, id, err, sizeof(err));
        CHECK(got && again == got, "schema by id again: from the cache");

        /* Threads, on a fresh handle so that they race for the first fetch
         * and the cache insert. */
        tt_registry *reg2 = tt_registry_new(url, err, sizeof(err));
        CHECK(reg2 != NULL, "second handle%s%s", reg2 ? "" : ": ",
              reg2 ? "" : err);
        if (reg2) {
                enum { NT = 4 };
                job jobs[NT];
                pthread_t th[NT];
                for (int i = 0; i < NT; i++) {
                        jobs[i] = (job){.reg = reg2, .id = id};
                        pthread_create(&th[i], NULL, fetch_thread, &jobs[i]);
                }
                int same = 1;
                for (int i = 0; i < NT; i++) {
                        pthread_join(th[i], NULL);
                        if (!jobs[i].got || jobs[i].got != jobs[0].got ||
                            strcmp(jobs[i].got, got ? got : "") != 0)
                                same = 0;
                }
                CHECK(same, "%d threads fetch the same cached schema", NT);
                tt_registry_destroy(reg2);
        }

        rc = tt_registry_register(reg, subject, compatible, &id3, err,
                                  sizeof(err));
        CHECK(rc == TT_ERR_OK && id3 != id,
              "compatible change: rc %d, id %" PRId32 "%s%s", rc, id3,
              rc ? ": " : "", rc ? err : "");

        err[0] = '\0';
        rc = tt_registry_register(reg, subject, incompatible, &id4, err,
                                  sizeof(err));
        CHECK(rc == TT_ERR_INVAL && strstr(err, "409") && id4 == -4,
              "incompatible change refused: rc %d: %s", rc, err);

        err[0] = '\0';
        got = tt_registry_schema_by_id(reg, 987654321, err, sizeof(err));
        CHECK(!got && strstr(err, "404"), "unknown id: %s", err);

        /* TokenEvent decoders by writer schema id. */
        int32_t eid = -1;
        rc = tt_registry_register(reg, "it-client-events-value",
                                  tt_token_event_schema_json, &eid, err,
                                  sizeof(err));
        const tt_avro_dec *dec =
            rc ? NULL : tt_registry_event_decoder(reg, eid, err, sizeof(err));
        uint8_t buf[512];
        tt_event ev = {0}, back = {0};
        ev.request_id = (tt_str){"req-1", 5};
        ev.model = (tt_str){"qwen/qwen3-coder", 16};
        ev.event_time_ms = 1775000000000;
        ev.prompt_tokens = 1200;
        ev.completion_tokens = 34;
        size_t n = tt_avro_encode_event(&ev, buf, sizeof(buf)), used = 0;
        char detail[256] = "";
        tt_reason why = dec ? tt_avro_decode_event(dec, buf, n, &used, &back,
                                                   detail, sizeof(detail))
                            : TT_REASON_MALFORMED;
        CHECK(dec && why == TT_REASON_NONE && used == n &&
                  back.prompt_tokens == 1200 && back.completion_tokens == 34,
              "TokenEvent decoder for id %" PRId32 ": %s", eid,
              dec ? (why ? detail : "decodes") : err);
        CHECK(dec &&
                  tt_registry_event_decoder(reg, eid, err, sizeof(err)) == dec,
              "the decoder again: the cached one");
        /* prompt_tokens as a string cannot resolve to TokenEvent's long. */
        int32_t bid = -1;
        rc = tt_registry_register(
            reg, "it-client-bad-events-value",
            "{\"type\":\"record\",\"name\":\"TokenEvent\",\"namespace\":"
            "\"tokentally.v1\",\"fields\":[{\"name\":\"prompt_tokens\","
            "\"type\":\"string\"}]}",
            &bid, err, sizeof(err));
        err[0] = '\0';
        const tt_avro_dec *bad =
            rc ? NULL : tt_registry_event_decoder(reg, bid, err, sizeof(err));
        char err2[512] = "";
        const tt_avro_dec *bad2 =
            rc ? NULL : tt_registry_event_decoder(reg, bid, err2, sizeof(err2));
        CHECK(!rc && !bad && !bad2 && err[0] && !strcmp(err, err2),
              "a writer schema that does not resolve (id %" PRId32
              "): %s, remembered",
              bid, err);

        tt_registry *dead =
            tt_registry_new("http://127.0.0.1:1", err, sizeof(err));
        err[0] = '\0';
        rc = dead ? tt_registry_register(dead, subject, schema, &id4, err,
                                         sizeof(err))
                  : TT_ERR_OK;
        CHECK(rc == TT_ERR_IO && err[0], "unreachable registry: rc %d: %s", rc,
              err);
        tt_registry_destroy(dead);

        tt_registry_destroy(reg);
        free(schema);
        free(compatible);
        free(incompatible);
        printf("%d passed, %d failed\n", passes, failures);
        return failures ? 1 : 0;
}
