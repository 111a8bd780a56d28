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
import threading
import time

from lib.proc import Failure, kill_pid, pid_alive, reap_all, run_cmd
from lib.resp import cmd, connect, start


def check(c):
    d = os.path.join(c.tmp, "redis")
    os.makedirs(d)
    p, port = start(d)
    pid = p.pid
    state = {"incr": 0, "push": 0, "error": None, "batches": 0}
    stop = threading.Event()
    try:
        sk, rd = connect(port)
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
