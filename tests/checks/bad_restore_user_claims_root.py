# stasis-check: timeout=30 needs=host-root
# stasis-check: why=to run a test as stasis-test
"""Escalation: pid_same of stasis-test, its credentials edited to uid/gid 0, restored by
the user with only CAP_CHECKPOINT_RESTORE: must fail naming the id."""
from lib.proc import Failure


def check(c):
    argv, pid = c.user_variant("claims-root", "creds-root")
    line = c.expect_failure(argv, "a user restoring an image edited to uid 0", pid=pid)
    if "uid 0" not in line and "gid 0" not in line:
        raise Failure("the error does not name the refused id: %s" % line)
    return line
