# stasis-check: timeout=60 needs=host-root
# stasis-check: why=(TCP repair mode and the network lock)
"""A TCP connection (both ends in one process, 127.0.0.1) whose reader has urgent data
before it (MSG_OOB: "abc", the urgent byte, "def"), taken out of line, inline
(SO_OOBINLINE), or already taken with recv(MSG_OOB) (its mark still splits the stream):
repair mode cannot set an urgent mark again, so the dump fails at once with one line
naming urgent data (before, the first was restored as plain data, the urgent byte in the
stream, and the others were retried for 10 s and blamed on traffic), the process runs on
and its reader still finds the mark, the urgent byte and the stream around it. The same
connection without the urgent byte dumps (--leave-running)."""
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

PROG = r"""
import socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); s, _ = l.accept(); l.close()
mode = sys.argv[1]
if mode == "inline":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
c.send(b"abc")
if mode != "plain":
    c.send(b"X", socket.MSG_OOB)
c.send(b"def")
import time; time.sleep(0.05)
if mode == "taken":
    assert s.recv(1, socket.MSG_OOB) == b"X"
sys.stdout.write("%d\n" % s.fileno()); sys.stdout.flush()
sys.stdin.readline()
out = [s.recv(16)]
if mode == "urgent":
    out.append(s.recv(1, socket.MSG_OOB))
if mode != "plain":
    out.append(s.recv(16))
sys.stdout.write(b"|".join(out).decode() + "\n"); sys.stdout.flush()
"""


def check(c):
    err = None
    want = {"urgent": "abc|X|def", "inline": "abc|Xdef", "taken": "abc|def", "plain": "abcdef"}
    for mode in ("urgent", "inline", "taken", "plain"):
        p = subprocess.Popen([sys.executable, "-c", PROG, mode], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            fd = p.stdout.readline().decode().strip()
            argv = [c.stasis, "dump", "-R", "-t", str(p.pid), "-D", c.tmp + "/img-" + mode]
            t0 = time.monotonic()
            if mode != "plain":
                err = c.expect_failure(argv, "dump of a connection with urgent data (%s)"
                                       % mode, allowed=(p.pid,))
                if "fd %s " % fd not in err or "urgent data" not in err:
                    raise Failure("the error does not name fd %s and urgent data: %r"
                                  % (fd, err))
                if time.monotonic() - t0 > 5:
                    raise Failure("the refusal took %.1f s" % (time.monotonic() - t0))
            else:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=c.timeout)
                if r.returncode != 0:
                    raise Failure("the connection without urgent data was refused: %s"
                                  % r.stderr.strip())
            p.stdin.write(b"\n")
            p.stdin.flush()
            got = p.stdout.readline().decode().strip()
            if got != want[mode]:
                raise Failure("after the %s dump the reader got %r, expected %r"
                              % (mode, got, want[mode]))
        finally:
            kill_pid(p.pid)
            wait_pid(p.pid, time.monotonic() + 5)
    return err
