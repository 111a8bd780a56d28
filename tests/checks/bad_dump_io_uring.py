# stasis-check: timeout=60
"""io_uring states stasis cannot carry are refused at dump with one line naming them, and
the program runs on: a polled request in flight, a timeout in flight (the dump waits up
to a second for requests to complete first), a registered eventfd, a ring of 8 entries
without an SQ array (its SQE size cannot be told), a ring held by two processes, a ring
registered in its thread's own table (IORING_REGISTER_RING_FDS), a ring made disabled and
not enabled yet (its restrictions cannot be read)."""
import os
import subprocess
import time

from lib.proc import Failure, kill_pid, proc_children, wait_pid

CASES = (("poll", "polled requests in flight"),
         ("timeout", "requests in flight"),
         ("eventfd", "registered eventfd"),
         ("small", "SQE size cannot be told"),
         ("shared", "holds too"),
         ("ringfd", "registered at index 3"),
         ("disabled", "disabled io_uring"))


def check(c):
    tool = os.path.join(os.path.dirname(c.stasis), "tests", "tools", "uring_refused")
    said = []
    for mode, want in CASES:
        p = subprocess.Popen([tool, mode], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            line = p.stdout.readline()
            if not line.strip().isdigit():
                raise Failure("uring_refused %s did not start: %s" % (
                    mode, p.stderr.read(300)))
            err = c.expect_dump_refused(p.pid, "uring-" + mode, ["io_uring", want])
            said.append("%s: %s" % (mode, err.split(": ", 1)[-1][:80]))
        finally:
            for k in proc_children(p.pid):
                kill_pid(k)
            kill_pid(p.pid)
            wait_pid(p.pid, time.monotonic() + 5)
    return "; ".join(said)
