# stasis-check: timeout=200
"""libFuzzer target fuzz_helper (tests/fuzz/fuzz_helper.c) for 20 s on the ASan build: the
privileged helper's request and reply decoders and its policy parsers
(src/helper/proto.c, policy.c). Fails on a crash, a leak or a timeout
(tests/checks/_fuzz.py)."""
from checks._fuzz import run_target


def check(c):
    return run_target(c, "fuzz_helper")
