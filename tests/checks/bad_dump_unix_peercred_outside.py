# stasis-check: timeout=30
"""A unix socket whose peer credentials (SO_PEERCRED) are those of a live process outside
the tree: a socketpair this check makes, both ends handed to a child it starts. No
restore can make a socket with the pid of a process that still exists elsewhere, so the
dump fails with one line naming the socket and that pid; the child runs on and reads the
same credentials. The same child given a socketpair it made itself dumps."""
import os
import socket
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

PROG = r"""
import os, socket, struct, sys
if sys.argv[1] == "own":
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
else:
    a = socket.socket(fileno=3)
    b = socket.socket(fileno=4)
sys.stdout.write("%d\n" % os.fstat(a.fileno()).st_ino)
sys.stdout.flush()
sys.stdin.readline()
pid = struct.unpack("iII", a.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
sys.stdout.write("%d\n" % pid)
sys.stdout.flush()
"""


def check(c):
    out = None
    for mode in ("outside", "own"):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds = {3: a.fileno(), 4: b.fileno()}

        def place():
            for want, fd in fds.items():
                os.dup2(fd, want)
        p = subprocess.Popen([sys.executable, "-c", PROG, mode], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             pass_fds=(3, 4) if mode == "outside" else (),
                             preexec_fn=place if mode == "outside" else None)
        a.close()
        b.close()
        try:
            ino = p.stdout.readline().decode().strip()
            img = os.path.join(c.tmp, "img-" + mode)
            argv = [c.stasis, "dump", "-R", "-t", str(p.pid), "-D", img]
            if mode == "outside":
                err = c.expect_failure(argv, "dump of a socket with an outside creator",
                                       allowed=(p.pid,))
                if "unix socket %s" % ino not in err or "pid %d" % os.getpid() not in err:
                    raise Failure("the error does not name socket %s and pid %d: %r"
                                  % (ino, os.getpid(), err))
                out = err
            else:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=c.timeout)
                if r.returncode != 0:
                    raise Failure("a socketpair of its own was refused: %s" % r.stderr.strip())
            p.stdin.write(b"\n")
            p.stdin.flush()
            got = p.stdout.readline().decode().strip()
            want = os.getpid() if mode == "outside" else p.pid
            if got != str(want):
                raise Failure("after the %s dump the credentials read pid %r, want %d"
                              % (mode, got, want))
        finally:
            kill_pid(p.pid)
            wait_pid(p.pid, time.monotonic() + 5)
    return out
