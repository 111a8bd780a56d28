# stasis-check: timeout=120 needs=root
# stasis-check: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
"""A real server dumped under load: redis-server, and 24 client threads of the check's own
each opening a connection per request (connect, PING, PONG, close) as fast as it can. It
is dumped 8 times with --leave-running: every dump must succeed (connections completed by
the kernel while the server is frozen would wait in its accept queue, their clients
outside the tree: new ones are held back from the freeze on, and what waited is accepted
by the server before the dump), every request must be answered right, none refused or
reset (a held-back client sends its SYN again: a pause). Before the listeners were held
and drained, nearly every such dump was refused."""
import os
import socket
import subprocess
import threading
import time

from lib.proc import Failure, Skip, end_started, run_cmd

CLIENTS = 24
DUMPS = 8


def low_port():
    """A free port of 127.0.0.1 below the ephemeral range the clients' own ports come from
    (a server on an ephemeral port may find it taken by a client's TIME_WAIT)."""
    for port in range(7300 + os.getpid() % 500, 7900):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise Skip("no free port in 7300-7899")


def check(c):
    exe = "/usr/bin/redis-server"
    if not os.path.exists(exe):
        raise Skip("no redis-server (scripts/deps.sh installs it)")
    port = low_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save",
                             "", "--appendonly", "no", "--daemonize", "no"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    stop, errors, done = threading.Event(), [], [0] * CLIENTS

    def client(k):
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
                    s.sendall(b"PING\r\n")
                    b = b""
                    while not b.endswith(b"\r\n"):
                        d = s.recv(16)
                        if not d:
                            break
                        b += d
                    if b != b"+PONG\r\n":
                        errors.append("client %d: %r" % (k, b))
                        return
                done[k] += 1
            except OSError as e:
                errors.append("client %d: %s" % (k, e))
                return

    threads = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise Failure("redis-server did not start (status %s)" % proc.poll())
                time.sleep(0.02)
        threads = [threading.Thread(target=client, args=(k,), daemon=True)
                   for k in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        drained = 0
        for i in range(DUMPS):
            log = os.path.join(c.tmp, "load-%d.log" % i)
            img = os.path.join(c.tmp, "load-img-%d" % i)
            rc, _, err = run_cmd([c.stasis, "dump", "-t", str(proc.pid), "-D", img,
                                  "--leave-running", "-o", log, "-v"], c.timeout)
            if rc != 0:
                raise Failure("dump %d under load: %s" % (i, err.strip()[-300:]))
            with open(log) as f:
                drained += "waiting in the accept queues" in f.read()
            run_cmd(["rm", "-rf", img], 30)
            if errors:
                raise Failure("after dump %d: %s" % (i, errors[0]))
            time.sleep(0.1)
        # (a client whose SYN was held back sends it again 1, 3, 7 s later)
        before, until = sum(done), time.monotonic() + 20
        while sum(done) < before + CLIENTS and time.monotonic() < until:
            time.sleep(0.1)
        if sum(done) < before + CLIENTS or errors:
            raise Failure("the clients were not served after the dumps (%d requests in 20 "
                          "s; %s)" % (sum(done) - before, errors[:1]))
        return "%d dumps under load taken (%d drained an accept queue), %d requests " \
               "answered" % (DUMPS, drained, sum(done))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        end_started(proc, False)
