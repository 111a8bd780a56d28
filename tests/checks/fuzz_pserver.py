# stasis-check: timeout=200
"""libFuzzer target fuzz_pserver (tests/fuzz/fuzz_pserver.c) for 20 s on the ASan build: the
page server's side of a connection (src/image/pserver.c), which writes files from what a
remote client sends. Fails on a crash, a leak, a timeout or a file written outside the
image or left by a refused one (tests/checks/_fuzz.py)."""
from checks._fuzz import run_target


def check(c):
    return run_target(c, "fuzz_pserver")
