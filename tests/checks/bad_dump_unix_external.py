# stasis-check: timeout=30
"""A dump of sock_unix_external without --external unix[INODE] (or --ext-unix-sk): its
socket's peer is a server outside the tree. The dump must fail with one line naming the
socket's inode, its peer's and `--external unix[`; the test is left running, untraced,
and passes when it is then told to finish (its connection still works)."""
import os
import re
import signal
import time

from lib.proc import Failure, proc_stat, wait_pid


def check(c):
    run = c.start_test("sock_unix_external")
    try:
        line = c.expect_failure([c.stasis, "dump", "-t", str(run.pid), "-D",
                                 os.path.join(c.tmp, "unix-external-img")],
                                "dump of a socket with an undeclared peer outside the tree",
                                allowed=(run.pid,))
        m = re.search(r"socket:\[(\d+)\].*peer \(socket:\[(\d+)\]\).*--external unix\[(\d+)\]",
                      line)
        if not m or m.group(1) != m.group(3):
            raise Failure("the error does not name the socket, its peer and --external "
                          "unix[INODE]: %r" % line)
        st = proc_stat(run.pid)
        if st is None or st[0] not in ("S", "R"):
            raise Failure("the test was disturbed by the failed dump (%s)" % (st,))
        with open("/proc/%d/status" % run.pid) as f:
            if any(ln.split()[1:2] != ["0"] for ln in f if ln.startswith("TracerPid:")):
                raise Failure("the test is still traced after the failed dump")
        os.kill(run.pid, signal.SIGTERM)
        if wait_pid(run.pid, time.monotonic() + c.timeout) is None:
            raise Failure("the test did not finish after SIGTERM")
        status = run.status_text()
        if "PASS" not in status.splitlines():
            raise Failure("the test did not pass after the failed dump: %r" % status)
        return line
    finally:
        run.cleanup()
