# stasis-check: timeout=30
"""stasis dumping itself (`sh -c 'exec stasis dump -t $$ ...'`) must fail."""
import os


def check(c):
    d = os.path.join(c.tmp, "self")
    os.makedirs(d, exist_ok=True)
    c.expect_failure(["sh", "-c", 'exec "$0" dump -t $$ -D "$1"', c.stasis, d],
                     "stasis dumping itself")
