# stasis-check: timeout=60
"""A syslog client whose daemon restarted (Python's logging.handlers.SysLogHandler, not
written here, logging to a datagram socket served by socat): after its first message the
daemon is killed and a new one binds the same path, so the client's socket is connected to
a closed peer with that name, the path held by a live socket outside the tree. Dumped and
restored: the client's next message fails to its old peer (ECONNREFUSED), so the handler
connects again and the new daemon gets it; nothing of the new daemon's is disturbed."""
import os
import shutil
import subprocess
import sys
import time

from lib.proc import Failure, Skip, kill_pid, run_cmd, wait_pid

CLIENT = r"""
import logging, logging.handlers, os, sys, time
d = sys.argv[1]
log = logging.getLogger("stasis")
log.addHandler(logging.handlers.SysLogHandler(address=os.path.join(d, "log")))
log.setLevel(logging.INFO)
n = 1
while True:
    if os.path.exists(os.path.join(d, "go-%d" % n)):
        log.info("message %d", n)
        open(os.path.join(d, "done-%d" % n), "w").close()
        n += 1
    time.sleep(0.02)
"""


def daemon(socat, d, name):
    return subprocess.Popen([socat, "-u", "UNIX-RECV:%s,unlink-early" % os.path.join(d, "log"),
                             "OPEN:%s,creat,append" % os.path.join(d, name)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for(path, text, deadline):
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                if text in f.read():
                    return
        time.sleep(0.02)
    raise Failure("%s does not hold %r" % (os.path.basename(path), text))


def log_one(d, n, out, deadline):
    open(os.path.join(d, "go-%d" % n), "w").close()
    wait_for(out, "message %d" % n, deadline)


def check(c):
    socat = shutil.which("socat")
    if not socat:
        raise Skip("no socat (scripts/deps.sh installs it)")
    d = os.path.join(c.tmp, "syslog")
    os.mkdir(d)
    d1 = daemon(socat, d, "d1.out")
    d2 = client = None
    restored = False
    try:
        deadline = time.monotonic() + c.timeout
        while not os.path.exists(os.path.join(d, "log")) and time.monotonic() < deadline:
            time.sleep(0.01)
        client = subprocess.Popen([sys.executable, "-c", CLIENT, d], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        log_one(d, 1, os.path.join(d, "d1.out"), deadline)
        kill_pid(d1.pid)
        d1.wait(timeout=10)
        os.unlink(os.path.join(d, "log"))
        d2 = daemon(socat, d, "d2.out")
        while not os.path.exists(os.path.join(d, "log")) and time.monotonic() < deadline:
            time.sleep(0.01)
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(client.pid), "-D",
                              os.path.join(c.tmp, "syslog-img")], c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        client.wait(timeout=10)
        rc, _, err = run_cmd(c.restore_argv(os.path.join(c.tmp, "syslog-img")), c.timeout)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        restored = True
        log_one(d, 2, os.path.join(d, "d2.out"), deadline)
        log_one(d, 3, os.path.join(d, "d2.out"), deadline)
        if d2.poll() is not None:
            raise Failure("the new daemon exited")
        return "messages 2 and 3 reached the restarted daemon after the restore"
    finally:
        for p in (d1, d2, client):
            if p and p.poll() is None:
                kill_pid(p.pid)
                p.wait(timeout=10)
        if restored:
            kill_pid(client.pid)
            wait_pid(client.pid, time.monotonic() + 5)
