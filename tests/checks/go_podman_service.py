# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(podman as root)
"""A Go program, not written here: Podman's REST API service (`podman system service`:
the Go runtime's threads, goroutines, its netpoller on epoll, its signal handling and
garbage collector), listening on a unix socket of the check's own, with podman's state
all under the check's directory (lib/podman.py: nothing of the host's is made or
mounted). Dumped while idle between requests, restored: it answers _ping and 30 info
requests again (each one allocating: the collector runs), with as many threads as
before."""
import http.client
import os
import shutil
import socket
import subprocess
import time

from lib.podman import Podman
from lib.proc import Failure, Skip, end_started, proc_descendants, run_cmd


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def get(path, url):
    c = UnixHTTP(path, 10)
    try:
        c.request("GET", url)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def check(c):
    podman = shutil.which("podman")
    if not podman:
        raise Skip("no podman (scripts/deps.sh installs it)")
    pm = Podman(os.path.join(c.tmp, "go-podman"), c.stasis)
    sock = os.path.join(c.tmp, "go-api.sock")
    proc = subprocess.Popen(pm.argv + ["system", "service", "--time=0", "unix://" + sock],
                            env=pm.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(c.tmp, "go-podman.err"), "w"),
                            start_new_session=True)
    restored = False
    try:
        deadline = time.monotonic() + c.timeout
        while True:
            try:
                if get(sock, "/v1.0.0/libpod/_ping") == (200, b"OK"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise Failure("the service did not answer")
            time.sleep(0.1)
        for _ in range(5):
            if get(sock, "/v1.0.0/libpod/info")[0] != 200:
                raise Failure("info failed before the dump")
        time.sleep(0.5)  # idle: its goroutines parked
        before = threads(proc.pid)
        if proc_descendants(proc.pid):
            raise Failure("the service has children: %s" % proc_descendants(proc.pid))
        img = os.path.join(c.tmp, "go-img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(proc.pid), "-D", img], c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        proc.wait(timeout=10)
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        restored = True
        if get(sock, "/v1.0.0/libpod/_ping") != (200, b"OK"):
            raise Failure("no _ping answer after the restore")
        for i in range(30):
            st, body = get(sock, "/v1.0.0/libpod/info")
            if st != 200 or not body.startswith(b'{"host":'):
                raise Failure("info request %d after the restore: %d %r" % (i, st, body[:80]))
        after = threads(proc.pid)
        if after < before:
            raise Failure("%d threads after the restore, %d before" % (after, before))
        return "%d threads; _ping and 30 info requests answered after the restore" % before
    finally:
        end_started(proc, restored)
