# stasis-check: timeout=200
"""libFuzzer target fuzz_proc (tests/fuzz/fuzz_proc.c) for 20 s on the ASan build: the
/proc parsers (src/proc/parse.c) and the mountinfo parser (src/proc/mountinfo.c). Fails
on a crash, a leak or a timeout (tests/checks/_fuzz.py)."""
from checks._fuzz import run_target


def check(c):
    return run_target(c, "fuzz_proc")
