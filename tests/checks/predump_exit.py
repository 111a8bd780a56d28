# stasis-check: timeout=90 needs=root
# stasis-check: why=(userfaultfd of another process: pidfd_getfd, ptrace)
"""A pre-dump copies the pages while the tree runs again: a process that exits meanwhile
(a shell's short-lived child, in every container that runs a loop of commands) must not
fail it. A tree of two processes (a Python parent holding 64 MiB that answers commands,
its child holding 32 MiB; the parent ignores SIGCHLD) is pre-dumped to a page server with
the fault point pre-dump:exit on the second process: the child is killed just before its
pages are copied. The pre-dump succeeds and leaves the child out (no mm or pages file of
it on either side, the inventory's pids without it); the parent writes 1 MiB and is
dumped against the pre-dump to a second page server; the image restores with the
parent's memory exact (sha256)."""
import json
import os
import shutil
import subprocess
import sys
import time

from checks.incr_chain import WORKLOAD, Work, keepers
from checks.page_server import Server
from lib.proc import Failure, kill_pid, pid_alive, reap_all, run_cmd, wait_pid

TREE = r"""
import mmap, os, signal, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
if os.fork() == 0:
    m = mmap.mmap(-1, 32 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m.write(b"\x5a" * (32 << 20))
    open("child", "w").write(str(os.getpid()))
    while True:
        time.sleep(1)
while not os.path.exists("child"):
    time.sleep(0.01)
""" + WORKLOAD


def over_server(c, d_local, d_srv, args, env=None):
    s = Server(c, d_srv)
    try:
        p = subprocess.run([c.stasis] + args + ["-D", d_local, "--no-sync", "--page-server",
                                                "--address", "127.0.0.1", "--port", s.port],
                           cwd=c.tmp, env=dict(os.environ, **(env or {})),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=c.timeout)
        if p.returncode:
            raise Failure("%s failed: %s" % (args[0], p.stderr.strip()[-400:]))
        rc, _, err = s.finish()
        if rc:
            raise Failure("page-server: exit %s: %s" % (rc, err[-300:]))
    finally:
        s.stop()


def check(c):
    wd = os.path.join(c.tmp, "pdx-work")
    loc, srv = os.path.join(c.tmp, "pdx-local"), os.path.join(c.tmp, "pdx-server")
    for d in (wd, loc, srv):
        os.makedirs(d, exist_ok=True)
    before_keepers = set(keepers())
    p = subprocess.Popen([sys.executable, "-c", TREE], cwd=wd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid, child = p.pid, None
    w = Work(c, wd)
    try:
        w.wait(0)
        child = int(open(os.path.join(wd, "child")).read())
        over_server(c, os.path.join(loc, "p1"), os.path.join(srv, "p1"),
                    ["pre-dump", "-t", str(pid)], env={"STASIS_FAULT": "pre-dump:exit:2"})
        deadline = time.monotonic() + 5
        while pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        if pid_alive(child):
            raise Failure("the fault point did not kill the child %d" % child)
        for side in (loc, srv):
            names = os.listdir(os.path.join(side, "p1"))
            left = [n for n in names if n.endswith("-%d.img" % child)]
            if left:
                raise Failure("the pre-dump kept %s of the exited child" % left)
        if "pages-%d.img" % pid not in os.listdir(os.path.join(srv, "p1")):
            raise Failure("the pre-dump holds no pages of the parent")
        rc, out, err = run_cmd([c.stasis, "show", os.path.join(loc, "p1", "inventory.img")],
                               c.timeout)
        inv = json.loads(out) if rc == 0 else {}
        inv = inv.get("inventory", inv)
        pids = [int(x) for x in inv.get("pids", [])]
        if pids != [pid]:
            raise Failure("the pre-dump's inventory lists pids %s, want [%d] (%s)" % (
                pids, pid, err.strip()[-200:]))
        want = w.cmd("write 100 256")
        over_server(c, os.path.join(loc, "d"), os.path.join(srv, "d"),
                    ["dump", "-t", str(pid), "--prev-images-dir", "../p1"])
        p.wait(timeout=c.timeout)
        os.unlink(os.path.join(wd, "done"))
        rc, _, err = run_cmd(c.restore_argv(os.path.join(srv, "d")), c.timeout, cwd=wd)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[-400:])
        got = w.cmd("hash")
        if got != want:
            raise Failure("restored memory differs: sha256 %s, want %s" % (got, want))
        return "the child killed before its copy was left out; the parent's chain " \
               "restored exactly"
    finally:
        for k in (pid, child):
            if k:
                kill_pid(k)
        wait_pid(pid, time.monotonic() + 10)
        for k in set(keepers()) - before_keepers:
            kill_pid(k)
        reap_all()
        for d in (wd, loc, srv):
            shutil.rmtree(d, ignore_errors=True)
