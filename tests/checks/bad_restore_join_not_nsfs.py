# stasis-check: timeout=30
"""`restore --join-ns uts:FILE` with a plain file must fail saying it is not a namespace
file."""
import os

from lib.proc import Failure


def check(c):
    d, pid = c.variant("join-not-nsfs")
    plain = os.path.join(c.tmp, "not-a-namespace")
    open(plain, "w").close()
    line = c.expect_failure(c.restore_argv(d) + ["--join-ns", "uts:" + plain],
                            "restore --join-ns with a plain file", pid=pid)
    if "not a namespace file" not in line:
        raise Failure("the error does not say it is not a namespace file: %s" % line)
    return line
