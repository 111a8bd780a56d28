"""A redis-server of the check's own, and a minimal client of its protocol (RESP), for the
checks that drive Debian's redis-server."""
import os
import shutil
import socket
import subprocess
import time

from lib.proc import Failure, Skip, free_port


def cmd(*args):
    """One command, encoded."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Reader:
    """The replies on one connection, in order."""

    def __init__(self, sk):
        self.sk = sk
        self.buf = b""

    def _more(self):
        d = self.sk.recv(65536)
        if not d:
            raise Failure("the server closed the connection")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._more()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def reply(self):
        ln = self.line()
        if ln[:1] in (b":", b"+"):
            return ln[1:]
        if ln[:1] == b"$":
            n = int(ln[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._more()
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        raise Failure("unexpected reply %r" % ln[:80])


def start(d, *args):
    """redis-server on a free loopback port, in directory @d (its log redis.log there),
    with @args; returns (Popen, port) once it accepts connections."""
    server = shutil.which("redis-server")
    if not server:
        raise Skip("redis-server not installed (package redis-server, scripts/deps.sh)")
    port = free_port()
    with open(os.path.join(d, "redis.log"), "w") as log:
        p = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save",
                              "", "--appendonly", "no", "--dir", d, "--daemonize", "no"] +
                             list(args), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             cwd=d)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return p, port
        except OSError:
            if time.monotonic() > deadline or p.poll() is not None:
                p.kill()
                p.wait(timeout=10)
                raise Failure("redis-server did not start") from None
            time.sleep(0.05)


def connect(port):
    """A connection to the server on @port (30 s timeout) and its Reader."""
    sk = socket.create_connection(("127.0.0.1", port), timeout=2)
    sk.settimeout(30)
    return sk, Reader(sk)
