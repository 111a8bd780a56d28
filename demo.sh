#!/usr/bin/env bash
# The demo: install missing packages, build stasis, checkpoint and restore a counter.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh </dev/null
make -j2
exec demo/run.sh "$@"
