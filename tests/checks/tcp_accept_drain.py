# stasis-check: timeout=90 needs=root
# stasis-check: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
"""A server caught with clients waiting in its accept queue, the clients outside the tree
and their requests already sent: a python server that accepts one connection every 80
ms (a thread answers each request line with its double), and bursts of 6 clients of the
check's own that connect and send a request at once, just before the dump. Such a
connection cannot be made again as it waits (its handshake and its data are the
client's), so the dump lets the tree run on until it accepted them (new connections held
back), then dumps them as established connections. Twice: with --leave-running (the
server answers the burst and runs on, nothing lost) and dumped, killed and restored
(every client gets its answer after the restore, and the next ones; a new client is
served). Before the accept queues were drained this dump was refused."""
import os
import socket
import subprocess
import sys
import time

from lib.proc import Failure, end_started, free_port, run_cmd

SERVER = r'''
import os, socket, sys, threading, time
port, ready = int(sys.argv[1]), sys.argv[2]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(64)
open(ready, "w").close()
def serve(c):
    for line in c.makefile("rb"):
        c.sendall(b"%d\n" % (2 * int(line)))
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
    time.sleep(0.08)
'''

BURST = 6


def burst(port, base):
    """BURST clients, each connected with its request sent."""
    out = []
    for k in range(BURST):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"%d\n" % (base + k))
        out.append(s)
    return out


def answer(s, want, what):
    s.settimeout(15)
    b = b""
    try:
        while not b.endswith(b"\n"):
            d = s.recv(64)
            if not d:
                raise Failure("%s: EOF instead of %d" % (what, want))
            b += d
    except OSError as e:
        raise Failure("%s: %s instead of %d" % (what, e, want))
    if int(b) != want:
        raise Failure("%s: answered %s, expected %d" % (what, b.strip(), want))


def dump(c, pid, img, log, *extra):
    rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "-o", log, "-v"] +
                         list(extra), c.timeout)
    if rc != 0:
        raise Failure("dump%s: %s" % ("".join(" " + e for e in extra), err.strip()[-300:]))
    with open(log) as f:
        text = f.read()
    if "waiting in the accept queues" not in text:
        raise Failure("dump: the burst was not waiting in the accept queue (%s)" % log)


def check(c):
    port = free_port()
    ready = os.path.join(c.tmp, "drain-ready")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), ready],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    restored, socks = False, []
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise Failure("the server did not start (status %s)" % proc.poll())
            time.sleep(0.02)
        # --leave-running: the server answers the burst and runs on
        socks = burst(port, 100)
        dump(c, proc.pid, os.path.join(c.tmp, "drain-lr"), os.path.join(c.tmp, "drain-lr.log"),
             "--leave-running")
        for k, s in enumerate(socks):
            answer(s, 2 * (100 + k), "client %d after --leave-running" % k)
        # dumped (killed) and restored
        socks += burst(port, 200)
        dump(c, proc.pid, os.path.join(c.tmp, "drain"), os.path.join(c.tmp, "drain.log"))
        proc.wait(timeout=10)
        rc, _, err = run_cmd(c.restore_argv(os.path.join(c.tmp, "drain")), c.timeout)
        if rc != 0:
            raise Failure("restore: %s" % err.strip()[-300:])
        restored = True
        for k, s in enumerate(socks[BURST:]):
            answer(s, 2 * (200 + k), "client %d of the burst after the restore" % k)
        for k, s in enumerate(socks):
            s.sendall(b"%d\n" % (300 + k))
            answer(s, 2 * (300 + k), "client %d, next request" % k)
        t = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(t)
        t.sendall(b"21\n")
        answer(t, 42, "a new client")
        return "2 bursts of %d clients waiting in the accept queue: answered, restored" % BURST
    finally:
        for s in socks:
            s.close()
        end_started(proc, restored)
