# stasis-check: timeout=30
"""A restore from an empty directory must fail."""
import os


def check(c):
    d = os.path.join(c.tmp, "empty")
    os.makedirs(d, exist_ok=True)
    c.expect_failure(c.restore_argv(d), "restore from an empty dir")
