# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(redis-server's listening TCP socket and its client connection)
"""redis-server checkpointed while it saves in the background: BGSAVE forks a child that
writes the database to temp-PID.rdb while the parent serves clients, both using the
event loop's epoll, which the child inherited (one epoll shared by two processes whose fd
tables differ: the child closed the listening socket and reused its number). 20000 keys are
written, the save slowed (rdb-key-save-delay) so the child is caught mid-save; the tree is
dumped (killed) and restored. The child must finish its save and exit, the parent must see
it succeed (rdb_last_bgsave_status:ok), the file must pass redis-check-rdb with 20000 keys,
and the server must still answer, its keys intact."""
import os
import re
import shutil
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_children, reap_all, run_cmd, \
    wait_gone
from lib.resp import cmd, connect, start

KEYS = 20000


def info(sk, rd):
    sk.sendall(cmd("INFO", "persistence"))
    return rd.reply().decode()


def check(c):
    checker = shutil.which("redis-check-rdb")
    if not checker:
        raise Skip("redis-check-rdb not installed (package redis-tools, scripts/deps.sh)")
    d = os.path.join(c.tmp, "redis-bgsave")
    os.makedirs(d)
    p, port = start(d, "--rdb-key-save-delay", "250", "--enable-debug-command", "yes")
    pid, kids = p.pid, []
    try:
        sk, rd = connect(port)
        sk.sendall(cmd("DEBUG", "POPULATE", KEYS) + cmd("BGSAVE"))
        if rd.reply() != b"OK" or not rd.reply().startswith(b"Background saving"):
            raise Failure("DEBUG POPULATE / BGSAVE failed")
        deadline = time.monotonic() + 10
        while not kids and time.monotonic() < deadline:
            kids = proc_children(pid)
            time.sleep(0.01)
        if len(kids) != 1:
            raise Failure("no saving child (children: %s)" % kids)
        time.sleep(0.5)
        img = os.path.join(d, "img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "-o",
                              os.path.join(d, "dump.log"), "-v"], c.timeout / 3)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[-300:])
        p.wait(timeout=10)
        wait_gone(kids, time.monotonic() + 10)
        tmp = os.path.join(d, "temp-%d.rdb" % kids[0])
        if not os.path.exists(tmp):
            raise Failure("no %s at the dump: the save was not in progress" % tmp)
        rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "-o",
                              os.path.join(d, "restore.log"), "-v"], c.timeout / 3)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[-300:])
        deadline = time.monotonic() + 30
        while "rdb_bgsave_in_progress:0" not in info(sk, rd):
            if time.monotonic() > deadline:
                raise Failure("the save did not finish within 30 s of the restore")
            time.sleep(0.1)
        status = re.search(r"rdb_last_bgsave_status:(\w+)", info(sk, rd))
        if not status or status.group(1) != "ok":
            raise Failure("the background save after the restore: %s" %
                          (status.group(1) if status else "?"))
        out = subprocess.run([checker, os.path.join(d, "dump.rdb")], capture_output=True,
                             text=True, timeout=60).stdout
        if "RDB looks OK" not in out or "%d keys read" % KEYS not in out:
            raise Failure("redis-check-rdb: %s" % out.strip()[-300:])
        sk.sendall(cmd("DBSIZE") + cmd("GET", "key:%d" % (KEYS - 1)))
        if int(rd.reply()) != KEYS or rd.reply() != b"value:%d" % (KEYS - 1):
            raise Failure("the keys after the restore do not match")
        sk.close()
        return "redis-server caught saving %d keys in the background (child %d): the save " \
            "finished after the restore, its file checked OK" % (KEYS, kids[0])
    finally:
        for k in kids:
            kill_pid(k)
        if pid_alive(pid):
            kill_pid(pid)
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        reap_all()
