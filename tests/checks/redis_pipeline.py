# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(TCP repair mode and the network lock)
"""A real server (Debian's redis-server) checkpointed with a client connected from outside
the tree, pipelining commands across the checkpoint. redis-server listens on loopback; 1000
keys are set; the check's client sends batches of 50 commands (INCR ctr, RPUSH log N) on one
connection, reading the replies of each batch, while the server is dumped (killed: its
connection waits, locked) and restored. The client's connection must carry on: every INCR
reply is the previous one plus 1 (no reset, no gap, no command run twice), every RPUSH
reply the list's new length; after the restore the 1000 keys are intact and LLEN / GET
match what the client sent."""
import os
import shutil
import socket
import subprocess
import threading
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, reap_all, run_cmd


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Reader:
    def __init__(self, sk):
        self.sk = sk
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.sk.recv(65536)
            if not d:
                raise Failure("the server closed the connection")
            self.buf += d
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
                d = self.sk.recv(65536)
                if not d:
                    raise Failure("the server closed the connection")
                self.buf += d
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        raise Failure("unexpected reply %r" % ln[:80])


def check(c):
    server = shutil.which("redis-server")
    if not server:
        raise Skip("redis-server not installed (package redis-server, scripts/deps.sh)")
    d = os.path.join(c.tmp, "redis")
    os.makedirs(d)
    port = free_port()
    log = open(os.path.join(d, "redis.log"), "w")
    p = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", d, "--daemonize", "no"],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=d)
    log.close()
    pid = p.pid
    state = {"incr": 0, "push": 0, "error": None, "batches": 0}
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                sk = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise Failure("redis-server did not start") from None
                time.sleep(0.05)
        sk.settimeout(30)
        rd = Reader(sk)
        sk.sendall(b"".join(cmd("SET", "k%d" % i, "v%d" % i) for i in range(1000)))
        for _ in range(1000):
            if rd.reply() != b"OK":
                raise Failure("SET failed")

        def client():
            try:
                while not stop.is_set():
                    batch = []
                    for _ in range(25):
                        batch.append(cmd("INCR", "ctr"))
                        batch.append(cmd("RPUSH", "log", state["push"] + len(batch) // 2))
                    sk.sendall(b"".join(batch))
                    for _ in range(25):
                        v = int(rd.reply())
                        if v != state["incr"] + 1:
                            raise Failure("INCR replied %d after %d" % (v, state["incr"]))
                        state["incr"] = v
                        n = int(rd.reply())
                        if n != state["push"] + 1:
                            raise Failure("RPUSH replied length %d after %d" % (
                                n, state["push"]))
                        state["push"] = n
                    state["batches"] += 1
            except Exception as e:  # reported by the main thread
                state["error"] = e

        t = threading.Thread(target=client, daemon=True)
        t.start()
        time.sleep(0.5)
        img = os.path.join(d, "img")
        at_dump = state["incr"]
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "-o",
                              os.path.join(d, "dump.log"), "-v"], c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[-300:])
        p.wait(timeout=10)
        rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "-o",
                              os.path.join(d, "restore.log"), "-v"], c.timeout)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[-300:])
        deadline = time.monotonic() + 20
        while state["incr"] < at_dump + 2000 and state["error"] is None and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        t.join(timeout=30)
        if state["error"] is not None:
            raise Failure("the client after the restore: %s" % state["error"])
        if state["incr"] < at_dump + 2000:
            raise Failure("the client stalled at %d (dump at %d)" % (state["incr"], at_dump))
        sk.sendall(cmd("GET", "ctr") + cmd("LLEN", "log") +
                   b"".join(cmd("GET", "k%d" % i) for i in range(1000)))
        if int(rd.reply()) != state["incr"] or int(rd.reply()) != state["push"]:
            raise Failure("GET ctr / LLEN log do not match what the client sent")
        for i in range(1000):
            if rd.reply() != b"v%d" % i:
                raise Failure("key k%d lost its value" % i)
        sk.close()
        return "redis-server dumped at INCR %d with a pipelining client outside the tree; " \
            "it carried on to %d with no gap or reset, 1000 keys intact" % (at_dump,
                                                                            state["incr"])
    finally:
        stop.set()
        if pid_alive(pid):
            kill_pid(pid)
        if p.poll() is None:
            p.kill()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        reap_all()
