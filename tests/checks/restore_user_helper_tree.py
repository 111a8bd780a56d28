# stasis-check: timeout=30 needs=host-root
# stasis-check: why=to run a test as stasis-test
"""restore_user_helper with `unshare` itself as the root of the dump: its restored copy
creates the container, and asks stasis (pidreq channel) for the maps, which
stasis has the helper write."""
from checks.restore_user_helper import user_helper


def check(c):
    return user_helper(c, True)
