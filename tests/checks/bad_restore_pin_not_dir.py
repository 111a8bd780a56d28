# stasis-check: timeout=30
"""`restore --pin-ns FILE` with a plain file must fail naming FILE as not a directory."""
import os

from lib.proc import Failure


def check(c):
    d, pid = c.variant("pin-not-dir")
    plain = os.path.join(c.tmp, "pin-here-not-a-dir")
    open(plain, "w").close()
    line = c.expect_failure(c.restore_argv(d) + ["--pin-ns", plain],
                            "restore --pin-ns with a plain file", pid=pid)
    if plain not in line or "not a directory" not in line:
        raise Failure("the error does not name the path as not a directory: %s" % line)
    return line
