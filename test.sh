#!/usr/bin/env bash
# The test suite: install missing packages, build the normal and the ASan+UBSan builds,
# run unit and checkpoint tests on both, then the checkpoint tests once more as a non-root
# user (the nonroot flavor), as the init of new pid/mount/uts/ipc/net namespaces (the
# ns flavor) and as root of a user-namespace container of its own (the uns flavor), on the
# normal build only. One total line; exits with the runner's status.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh </dev/null
make -j2
make -j2 BUILD=build-asan SAN=1 all
set +e
python3 tests/run.py --build build --build build-asan --flavor default --flavor nonroot:build \
	--flavor rootless:build --flavor ns:build --flavor uns:build "$@"
exit $?
