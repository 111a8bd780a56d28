# stasis-check: timeout=200
"""libFuzzer target fuzz_rpc (tests/fuzz/fuzz_rpc.c) for 20 s on the ASan build: the RPC
decoder and option check of `stasis swrk` (src/rpc/proto.c), what every packet of a
runtime goes through. Fails on a crash, a leak or a timeout (tests/checks/_fuzz.py)."""
from checks._fuzz import run_target


def check(c):
    return run_target(c, "fuzz_rpc")
