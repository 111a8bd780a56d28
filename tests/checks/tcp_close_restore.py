# stasis-check: timeout=60 needs=root
# stasis-check: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
"""`restore --tcp-close`: a python client whose peer (the check's socket) sent it 64 KiB it
has not read yet is dumped; the peer then goes away for good, and the client is
restored with --tcp-close: its connection is closed, but what was queued for reading is
kept: the client reads the 64 KiB, then EOF, and a send fails (the peer is gone)."""
import os
import random
import socket
import subprocess
import sys
import time

from lib.proc import Failure, end_started, run_cmd

CLIENT = r'''
import random, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"ready")
time.sleep(0.5)
b = bytearray()
while True:
    d = s.recv(65536)
    if not d:
        break
    b += d
try:
    s.sendall(b"x" * 100000)
    res = "sent"
except OSError as e:
    res = "send failed: %s" % e.strerror
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("%d %d %s\n" % (len(b), b == bytes(random.Random(7).randbytes(65536)), res))
import os
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(60)
'''


def check(c):
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    lsn.settimeout(c.timeout)
    res = os.path.join(c.tmp, "tcp-close-result")
    img = os.path.join(c.tmp, "tcp-close")
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, str(lsn.getsockname()[1]), res],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(c.tmp, "tcp-close.log"), "w"))
    pid, restored = proc.pid, False
    try:
        p, _ = lsn.accept()
        p.settimeout(c.timeout)
        if p.recv(5) != b"ready":
            raise Failure("the client did not say ready")
        data = random.Random(7).randbytes(65536)
        p.sendall(data)
        time.sleep(0.1)
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "--no-sync"],
                             c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        proc.wait(timeout=10)
        p.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        p.close()  # the peer is gone
        lsn.close()
        rc, _, err = run_cmd(c.restore_argv(img) + ["--tcp-close"], c.timeout)
        if rc != 0:
            raise Failure("restore --tcp-close failed: %s" % err.strip()[:300])
        restored = True
        deadline = time.monotonic() + c.timeout
        while not os.path.exists(res):
            if time.monotonic() > deadline:
                raise Failure("the restored client did not finish")
            time.sleep(0.05)
        got = open(res).read().split(None, 2)
        if int(got[0]) != len(data) or got[1] != "1":
            raise Failure("the client read %s bytes after the restore (right: %s), expected "
                          "the %d sent" % (got[0], got[1], len(data)))
        if not got[2].startswith("send failed"):
            raise Failure("the closed connection still sends: %s" % got[2])
        return "read the %d queued bytes, then EOF; %s" % (len(data), got[2].strip())
    finally:
        lsn.close()
        end_started(proc, restored)
