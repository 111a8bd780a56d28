# stasis-check: timeout=30 needs=host-root
# stasis-check: why=to run a test as stasis-test
"""Escalation: pid_same of stasis-test, a regular file's path edited to a root-only file
(0600), restored by the user with only CAP_CHECKPOINT_RESTORE: must fail naming the file
and the refusal."""
import os

from lib.proc import Failure


def check(c):
    secret = os.path.join(c.tmp, "root-only")
    with open(secret, "w") as f:
        f.write("secret\n")
    os.chmod(secret, 0o600)
    os.chmod(c.tmp, 0o755)
    argv, pid = c.user_variant("root-file", "file-path", secret)
    line = c.expect_failure(argv, "a user restoring an image edited to open a "
                            "root-only file", pid=pid)
    if secret not in line or "ermission" not in line:
        raise Failure("the error does not name the file and the refusal: %s" % line)
    return line
