#!/usr/bin/env bash
# Install missing packages, build, and run every test. CI calls this via .ci/run.
#   1. the normal build in build/: every test
#   2. a clang build in build-asan/ with ASan+UBSan (DLNC_SANITIZE) and the
#      fuzzers (DLNC_FUZZ): every test but the torch ones, the slow
#      source-warnings check and the installation test (sanitizers change
#      nothing there), the ONNX export (it builds its own --debug ASan and
#      UBSan trainer for the writer, and under a sanitized dlnc it took
#      130 s), the language models' training (label slow: minutes
#      each) and the MPI tests (label mpi: they build plain trainers, whose
#      sanitized runs e2e_sanitizers has, lanes and all), then the
#      fuzz tests (label fuzz: corpus replay and 20 s of fuzzing per harness)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A failing stage does not stop the later ones; the exit status is 1 if any failed.
status=0
scripts/setup.sh build
echo "test: running ctest"
ctest --test-dir build --output-on-failure -j2 || status=1

echo "test: sanitizer and fuzzer build in build-asan/"
cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DDLNC_SANITIZE=ON -DDLNC_FUZZ=ON
cmake --build build-asan -j"$(nproc)"
echo "test: running ctest under ASan+UBSan"
ctest --test-dir build-asan --output-on-failure -j2 -LE 'torch|fuzz|slow|install|onnx|mpi' -E '^e2e_source_warnings$' || status=1
echo "test: running the fuzz tests"
ctest --test-dir build-asan --output-on-failure -j2 -L fuzz || status=1
exit $status
