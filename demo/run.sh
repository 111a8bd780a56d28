#!/usr/bin/env bash
# The stasis demo (./demo.sh runs it after installing deps and `make`): builds the sample
# counter into build/demo/counter, then runs demo/run.py, which checkpoints and restores it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
mkdir -p "$BUILD/demo"
if [ ! -x "$BUILD/demo/counter" ] || [ demo/counter.c -nt "$BUILD/demo/counter" ]; then
	gcc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$BUILD/demo/counter" demo/counter.c
fi
exec python3 demo/run.py --stasis "$BUILD/stasis" --counter "$BUILD/demo/counter" "$@"
