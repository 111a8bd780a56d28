# stasis-check: timeout=60 needs=host-root
# stasis-check: why=(TCP repair mode and the network lock)
"""A TCP connection (both ends in one process, 127.0.0.1) reset by its peer (SO_LINGER 0,
then close) while the reader had not read the error: which error (ECONNRESET, EPIPE,
ETIMEDOUT...) cannot be read without taking it, and the replayed reset gives ECONNRESET
whatever it was, so the dump fails with one line naming the unread error (a previous
stasis restored it without the error: the program read an end of file where it was to
get ECONNRESET), the process runs on and still gets ECONNRESET. The same connection whose
error was already read dumps (--leave-running)."""
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

PROG = r"""
import socket, struct, sys, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); s, _ = l.accept(); l.close()
c.send(b"hello")
time.sleep(0.05)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
time.sleep(0.05)
def rd():
    try:
        return repr(c.recv(16))
    except OSError as e:
        return "errno%d" % e.errno
first = rd() if sys.argv[1] == "read" else ""
sys.stdout.write("%d %s\n" % (c.fileno(), first)); sys.stdout.flush()
sys.stdin.readline()
sys.stdout.write(rd() + "\n"); sys.stdout.flush()
"""


def check(c):
    err = None
    for mode in ("pending", "read"):
        p = subprocess.Popen([sys.executable, "-c", PROG, mode], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            line = p.stdout.readline().decode().split()
            fd = line[0] if line else "?"
            argv = [c.stasis, "dump", "-R", "-t", str(p.pid), "-D", c.tmp + "/img-" + mode]
            if mode == "pending":
                err = c.expect_failure(argv, "dump of a connection with an unread error",
                                       allowed=(p.pid,))
                if "fd %s " % fd not in err or "not read yet" not in err:
                    raise Failure("the error does not name fd %s and the unread error: %r"
                                  % (fd, err))
            else:
                if line[1:] != ["errno104"]:
                    raise Failure("the reset read before the dump gave %r" % line[1:])
                r = subprocess.run(argv, capture_output=True, text=True, timeout=c.timeout)
                if r.returncode != 0:
                    raise Failure("the connection whose error was read was refused: %s"
                                  % r.stderr.strip())
            p.stdin.write(b"\n")
            p.stdin.flush()
            got = p.stdout.readline().decode().strip()
            want = "errno104" if mode == "pending" else "b''"
            if got != want:
                raise Failure("after the %s dump the reader got %r, expected %r"
                              % (mode, got, want))
        finally:
            kill_pid(p.pid)
            wait_pid(p.pid, time.monotonic() + 5)
    return err
