# stasis-check: timeout=200
"""libFuzzer target fuzz_pidreq (tests/fuzz/fuzz_pidreq.c) for 20 s on the ASan build:
stasis's end of the pidreq channel (src/cr/pidreq.c: requests from restored tasks).
Fails on a crash, a leak or a timeout (tests/checks/_fuzz.py)."""
from checks._fuzz import run_target


def check(c):
    return run_target(c, "fuzz_pidreq")
