# stasis-check: timeout=200
"""libFuzzer target fuzz_image (tests/fuzz/fuzz_image.c) for 20 s on the ASan build: the
image decoder (src/image/img.c: headers, checksums, every metadata kind's protobuf).
Fails on a crash, a leak or a timeout (tests/checks/_fuzz.py)."""
from checks._fuzz import run_target


def check(c):
    return run_target(c, "fuzz_image")
