#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds with
# warnings as errors, runs every test with ctest (the Docker image and
# compose tests of tests/docker among them, label docker), then builds again with
# AddressSanitizer + UBSan and runs the unit tests under them, fuzzes every
# decoder briefly, and checks formatting.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

# tests/build.sh installs what is missing and builds (Release); the Docker
# image's build stage runs the same script.
BUILD_DIR=build bash tests/build.sh -DTT_WERROR=ON
(cd build && ctest --output-on-failure -j "$jobs")

# Sanitizers: a report aborts the test (-fno-sanitize-recover=all and
# halt_on_error), so it fails the run.
cmake -S . -B build-asan -G Ninja -DTT_WERROR=ON -DTT_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
supp=$PWD/tests/lsan.supp # libavro's own leak on a bad schema: see the file
(cd build-asan &&
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  LSAN_OPTIONS=suppressions=$supp:print_suppressions=0 \
  ctest --output-on-failure -j "$jobs" -L "unit|mock")

# Fuzzing, short and bounded: every libFuzzer harness of tests/fuzz for
# 12 s (clang, ASan + UBSan; under 3 minutes in all with the build). A
# crash fails the run and keeps its input under tests/fuzz/regressions/,
# which unit_fuzz_regress replays from then on. Long runs: see docs/operations.md
# ("Hostile input").
bash tests/fuzz/run.sh --seconds 12

# Formatting is part of the build's contract.
if ! git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror; then
  echo "clang-format: files need formatting (clang-format -i ...)" >&2
  exit 1
fi
