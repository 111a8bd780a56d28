# stasis-check: timeout=200
"""libFuzzer target fuzz_blob (tests/fuzz/fuzz_blob.c) for 20 s on the ASan build: the blob
store's reader (src/image/blob.c: blobs.img and BlobRefs). Fails on a crash, a leak or a
timeout (tests/checks/_fuzz.py)."""
from checks._fuzz import run_target


def check(c):
    return run_target(c, "fuzz_blob")
