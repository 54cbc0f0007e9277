/* libFuzzer entry point for tt_fuzz_engine (fuzz_targets.c). */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return tt_fuzz_engine(data, size);
}
