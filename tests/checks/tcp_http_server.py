# stasis-check: timeout=120 needs=root
# stasis-check: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
"""A real program end to end: `python3 -m http.server` (a child of the tree's root) serves
a 48 MiB file to the root, a python client reading it slowly over 127.0.0.1. The tree is
dumped mid-transfer (the server's send queue and the client's receive queue full) and
restored: the download completes, with the file's size and SHA-256."""
import hashlib
import os
import socket
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, proc_descendants, run_cmd, wait_pid

CLIENT = r'''
import hashlib, os, socket, subprocess, sys, time, urllib.request
port, www, out, res = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
srv = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                        "127.0.0.1", "--directory", www], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for i in range(400):
    try:
        socket.create_connection(("127.0.0.1", port)).close()
        break
    except OSError:
        time.sleep(0.025)
h, n = hashlib.sha256(), 0
with urllib.request.urlopen("http://127.0.0.1:%d/big.bin" % port, timeout=60) as r, \
        open(out, "wb") as f:
    while True:
        b = r.read(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
        f.write(b)
        f.flush()
        time.sleep(0.004)
with open(res + ".tmp", "w") as f:
    f.write("%d %s\n" % (n, h.hexdigest()))
os.rename(res + ".tmp", res)
srv.kill()
srv.wait()
'''

SIZE = 48 << 20


def check(c):
    www = os.path.join(c.tmp, "www")
    os.makedirs(www, exist_ok=True)
    data = os.urandom(SIZE)
    want = "%d %s" % (SIZE, hashlib.sha256(data).hexdigest())
    with open(os.path.join(www, "big.bin"), "wb") as f:
        f.write(data)
    del data
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out, res = os.path.join(c.tmp, "download"), os.path.join(c.tmp, "result")
    img = os.path.join(c.tmp, "tcp-http")
    log = open(os.path.join(c.tmp, "tcp-http.log"), "w")
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), www, out, res],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    pid, restored, kids = proc.pid, False, []
    try:
        deadline = time.monotonic() + c.timeout
        while not os.path.exists(out) or os.path.getsize(out) < (8 << 20):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise Failure("the download did not start (client status %s)" % proc.poll())
            time.sleep(0.05)
        at = os.path.getsize(out)
        kids = proc_descendants(pid)
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "--no-sync"],
                             c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        proc.wait(timeout=10)
        for k in kids:  # the server, killed with the tree: reparented to the runner
            wait_pid(k, time.monotonic() + 10)
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        restored = True
        while not os.path.exists(res):
            if time.monotonic() > deadline:
                raise Failure("the download did not complete after the restore (%d of %d "
                              "bytes)" % (os.path.getsize(out), SIZE))
            time.sleep(0.05)
        with open(res) as f:
            got = f.read().strip()
        if got != want:
            raise Failure("the download after the restore is %s, expected %s" % (got, want))
        return "dumped at %d MiB of %d, the download completed with the right SHA-256" % (
            at >> 20, SIZE >> 20)
    finally:
        log.close()
        if proc.poll() is None:
            for p in proc_descendants(pid):
                kill_pid(p)
            kill_pid(pid)
            proc.wait(timeout=10)
        if restored:
            # the restored server has its old pid, whoever its parent is by now
            for p in set(proc_descendants(pid)) | set(kids):
                kill_pid(p)
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 5)
            for p in kids:
                wait_pid(p, time.monotonic() + 5)
