# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(TCP repair mode and the network lock)
"""memcached, not written here: a multi-threaded server (4 worker threads, each its own
libevent loop fed through a pipe by the listener thread; a hash table resized by a
maintainer thread; an LRU crawler) on 127.0.0.1. 2000 keys stored, then dumped with a
client connected between two requests and a second client in the middle of a request
(its command sent in two parts, the dump between them), restored with -d: every key
reads back with its value, the thread count is the same, the half-sent command
completes on its connection, the kept connection goes on (incr, set, get), and new
connections are served."""
import os
import shutil
import socket
import subprocess
import time

from lib.proc import Failure, end_started, free_port, pid_alive, reap_all

N = 2000


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            b = self.s.recv(65536)
            if not b:
                raise Failure("memcached closed the connection")
            self.buf += b
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, data):
        self.send(data)
        return self.line()

    def get(self, key):
        self.send(b"get %s\r\n" % key)
        first = self.line()
        if first == b"END":
            return None
        parts = first.split()
        if parts[0] != b"VALUE" or parts[1] != key:
            raise Failure("get %s: %r" % (key.decode(), first))
        n = int(parts[3])
        while len(self.buf) < n + 2:
            b = self.s.recv(65536)
            if not b:
                raise Failure("memcached closed the connection")
            self.buf += b
        val, self.buf = self.buf[:n], self.buf[n + 2:]
        if self.line() != b"END":
            raise Failure("get %s: no END" % key.decode())
        return val

    def close(self):
        self.s.close()


def value(i):
    return (b"v%05d-" % i) * (1 + i % 7)


def check(c):
    mc = shutil.which("memcached")
    if not mc:
        raise Failure("memcached is not installed (scripts/deps.sh installs it)")
    d = os.path.join(c.tmp, "memcached")
    os.makedirs(d)
    port = free_port()
    p = subprocess.Popen([mc, "-u", "root", "-l", "127.0.0.1", "-p", str(port), "-U", "0",
                          "-t", "4", "-m", "64"], cwd=d, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    pid = p.pid
    clients = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                a = Client(port)
                break
            except OSError:
                if p.poll() is not None or time.monotonic() > deadline:
                    raise Failure("memcached did not start")
                time.sleep(0.05)
        clients.append(a)
        for i in range(N):
            v = value(i)
            if a.cmd(b"set k%d 0 0 %d\r\n%s\r\n" % (i, len(v), v)) != b"STORED":
                raise Failure("set k%d refused" % i)
        if a.cmd(b"set counter 0 0 1\r\n7\r\n") != b"STORED":
            raise Failure("set counter refused")
        b = Client(port)
        clients.append(b)
        b.send(b"set half 0 0 10\r\n01234")  # the rest after the restore
        time.sleep(0.2)
        n_threads = len(os.listdir("/proc/%d/task" % pid))
        c.dump_restore(pid, d, p)
        if not pid_alive(pid) or len(os.listdir("/proc/%d/task" % pid)) != n_threads:
            raise Failure("restored without its %d threads" % n_threads)
        if b.cmd(b"56789\r\n") != b"STORED" or b.get(b"half") != b"0123456789":
            raise Failure("the command half sent at the dump did not complete")
        for i in range(N):
            if a.get(b"k%d" % i) != value(i):
                raise Failure("k%d does not read back after the restore" % i)
        if a.cmd(b"incr counter 5\r\n") != b"12":
            raise Failure("incr after the restore")
        fresh = Client(port)
        clients.append(fresh)
        if fresh.get(b"k%d" % (N - 1)) != value(N - 1) or \
                fresh.cmd(b"set new 0 0 2\r\nok\r\n") != b"STORED" or a.get(b"new") != b"ok":
            raise Failure("a new connection after the restore")
        return "memcached %d (%d threads) restored: %d keys read back, a command half " \
               "sent at the dump completed, old and new connections served" % (
                   pid, n_threads, N)
    finally:
        for k in clients:
            k.close()
        end_started(p, True)
        reap_all()
