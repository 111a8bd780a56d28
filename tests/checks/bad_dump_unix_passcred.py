# stasis-check: timeout=30
"""A unix socket whose reader takes its senders' credentials (SO_PASSCRED) with a
message queued: a restore would queue it again from another process (the credentials the
reader gets would be the restorer's), so the dump fails with one line naming the socket;
the task runs on, and the message is still queued with its sender's credentials. The same
pair without SO_PASSCRED dumps."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

PROG = r"""
import os, socket, struct, sys, time
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
if sys.argv[1] == "on":
    b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
a.send(b"queued")
sys.stdout.write("%d\n" % os.fstat(b.fileno()).st_ino)
sys.stdout.flush()
sys.stdin.readline()
msg, anc, _, _ = b.recvmsg(64, 64)
creds = [struct.unpack("iII", d) for l, t, d in anc if t == socket.SCM_CREDENTIALS]
pid = creds[0][0] if creds else 0
sys.stdout.write("%s %d %d\n" % (msg.decode(), pid, os.getpid()))
sys.stdout.flush()
"""


def check(c):
    out = []
    for mode in ("on", "off"):
        p = subprocess.Popen([sys.executable, "-c", PROG, mode], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            ino = p.stdout.readline().decode().strip()
            img = os.path.join(c.tmp, "img-" + mode)
            argv = [c.stasis, "dump", "-R", "-t", str(p.pid), "-D", img]
            if mode == "on":
                err = c.expect_failure(argv, "dump of a queued message with SO_PASSCRED",
                                       allowed=(p.pid,))
                if "unix socket %s" % ino not in err or "SO_PASSCRED" not in err:
                    raise Failure("the error does not name socket %s and SO_PASSCRED: %r"
                                  % (ino, err))
                out.append(err)
            else:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=c.timeout)
                if r.returncode != 0:
                    raise Failure("the pair without SO_PASSCRED was refused: %s"
                                  % r.stderr.strip())
            p.stdin.write(b"\n")
            p.stdin.flush()
            got = p.stdout.readline().decode().split()
            if len(got) != 3 or got[0] != "queued" or (mode == "on" and got[1] != got[2]):
                raise Failure("after the %s dump the message reads %r" % (mode, got))
        finally:
            kill_pid(p.pid)
            wait_pid(p.pid, time.monotonic() + 5)
    return out[0]
