/* The fuzzed entry points, one function per decoder of outside bytes. Each
 * libFuzzer harness (fuzz_<name>.c) is a one-line wrapper, and the unit
 * test tests/unit_fuzz_regress.c replays the kept corpus and every crash
 * input through the same functions, so a regression input fails the plain
 * gcc suite too, not only the clang fuzz build. */
#ifndef TT_FUZZ_TARGETS_H
#define TT_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

typedef int (*tt_fuzz_fn)(const uint8_t *data, size_t size);

int tt_fuzz_json_event(const uint8_t *data, size_t size);
int tt_fuzz_avro_event(const uint8_t *data, size_t size);
int tt_fuzz_writer_schema(const uint8_t *data, size_t size);
int tt_fuzz_ocf(const uint8_t *data, size_t size);
int tt_fuzz_jsonl(const uint8_t *data, size_t size);
int tt_fuzz_partials(const uint8_t *data, size_t size);
int tt_fuzz_state(const uint8_t *data, size_t size);
int tt_fuzz_offset_meta(const uint8_t *data, size_t size);
int tt_fuzz_registry_answer(const uint8_t *data, size_t size);
int tt_fuzz_engine(const uint8_t *data, size_t size);

typedef struct tt_fuzz_target {
        const char *name; /* tests/fuzz/{corpus,regressions}/<name>/ */
        tt_fuzz_fn fn;
} tt_fuzz_target;

extern const tt_fuzz_target tt_fuzz_targets[];
extern const size_t tt_fuzz_ntargets;

#endif
