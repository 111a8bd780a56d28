# stasis-check: timeout=30 needs=host-root
# stasis-check: why=to run a test as stasis-test
"""Escalation: pid_same of stasis-test, its images edited (tests/tools/imgedit) to hold every
capability the kernel knows, restored by the user with only CAP_CHECKPOINT_RESTORE: must
fail naming the capabilities the restorer lacks (`cap_chown,...`) and the mask."""
from lib.proc import Failure


def check(c):
    argv, pid = c.user_variant("caps-full", "caps-full")
    line = c.expect_failure(argv, "a user restoring an image edited to hold every "
                            "capability", pid=pid)
    if "cap_chown" not in line or "does not hold" not in line or "0xffffffffff" not in line:
        raise Failure("the error does not name the missing capabilities: %s" % line)
    return line
