#!/usr/bin/env bash
# Install missing packages, build, and run every test. CI calls this via .ci/run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh build
echo "test: running ctest"
exec ctest --test-dir build --output-on-failure -j2
