# stasis-check: timeout=60 needs=root
# stasis-check: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
"""Hand-edited TCP images (a dump of tcp_stream, edited with tests/tools/imgedit) must be
refused before any process exists, with one line naming the socket and what is wrong:
an impossible state (TIME_WAIT for a socket of the fd table), more unsent bytes than
the send queue holds, and an address family that is not inet (AF_UNIX)."""
import os
import shutil

from lib.proc import Failure, run_cmd

CASES = (
    ("state", "6", "impossible state 6"),
    ("unsent", "0x7fffffff", "more unsent bytes than its send queue holds"),
    ("family", "1", "address family 1"),
)


def check(c):
    run = c.start_test("tcp_stream")
    try:
        run.dump()
        run.check_original_gone()
        img, pid = run.img, run.pid
    finally:
        run.cleanup()
    tool = os.path.join(c.build, "tests", "tools", "imgedit")
    seen = []
    for field, value, want in CASES:
        d = os.path.join(c.tmp, "tcp-" + field)
        shutil.copytree(img, d)
        rc, _, err = run_cmd([tool, d, str(pid), "tcp", field, value], 30)
        if rc != 0:
            raise Failure("imgedit tcp %s failed: %s" % (field, err.strip()[:200]))
        line = c.expect_failure(c.restore_argv(d), "restore with a TCP %s of %s" % (
            field, value), pid=pid)
        if want not in line or "TCP socket" not in line:
            raise Failure("the error does not say %r: %s" % (want, line))
        seen.append(line)
    return "; ".join(seen)
