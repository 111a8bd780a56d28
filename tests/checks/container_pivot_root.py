# stasis-check: timeout=30 needs=host-root
# stasis-check: why=(mounts, pivot_root)
"""A container with a root of its own: a pid and mount namespace (unshare), its root
a bind of a directory with /usr bound read-only, a tmpfs /tmp and its own /proc,
pivot_root'ed into with the old root detached; a shell counter writes /data/log
(fd 3, the container's root) and /tmp/cur (its tmpfs), stdout/stderr are files of
the host (opened before). Dumped by the init's pid and restored: same pid, the fds
name the same files as before (the container's view and the host's), both
counters go on from where they were."""
import os
import subprocess
import tempfile
import time

from lib.proc import Failure, kill_pid, pid_alive, proc_children, reap_all, run_cmd


CONTAINER_SH = r"""
set -e
R="$1"
mount --bind "$R" "$R"
mount --bind -o ro /usr "$R/usr"
mount -t tmpfs ctr-tmp "$R/tmp"
cd "$R"
pivot_root . old
mount -t proc proc /proc
umount -l /old
cd /data
if [ "$2" = single ]; then exec 3>>/data/log; echo 1 >&3; echo 1 >&3; echo 1 > /tmp/cur; exec sleep 60; fi
exec /bin/sh -c 'i=0; exec 3>>/data/log; while :; do i=$((i+1)); echo $i >&3; echo $i > /tmp/cur; sleep 0.05; done'
"""


def container(c, single=False):
    d = tempfile.mkdtemp(prefix="ctr-", dir=c.tmp)
    root = os.path.join(d, "rootfs")
    for sub in ("usr", "proc", "tmp", "data", "old", "dev"):
        os.makedirs(os.path.join(root, sub))
    for name in ("bin", "lib", "lib64", "sbin"):
        if os.path.exists("/usr/" + name):
            os.symlink("usr/" + name, os.path.join(root, name))
    out = os.path.join(d, "out.log")
    logf = os.path.join(root, "data", "log")
    u = restored = None
    init = None
    try:
        with open(out, "w") as o:
            u = subprocess.Popen(["unshare", "-m", "--propagation", "private", "--pid",
                                  "--fork", "sh", "-c", CONTAINER_SH, "sh", root,
                                  "single" if single else "loop"],
                                 stdin=subprocess.DEVNULL, stdout=o, stderr=o, cwd=d)

        def sleeping(upid):
            kids = proc_children(upid)
            try:
                with open("/proc/%d/comm" % kids[0]) as f:
                    return len(kids) == 1 and f.read().strip() == "sleep"
            except (OSError, IndexError):
                return False

        def count():
            try:
                with open(logf) as f:
                    lines = f.read().split()
                return int(lines[-1]) if lines else 0
            except (OSError, ValueError):
                return 0

        deadline = time.monotonic() + 10
        while count() < (1 if single else 3) or (single and not sleeping(u.pid)):
            if time.monotonic() > deadline or u.poll() is not None:
                with open(out) as f:
                    raise Failure("the container did not start: %s" % f.read()[-300:])
            time.sleep(0.02)
        kids = proc_children(u.pid)
        if len(kids) != 1:
            raise Failure("unshare has %d children" % len(kids))
        init = kids[0]

        def links(pid):
            res = {}
            for fd in ("0", "1", "2", "3"):
                try:
                    res[fd] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    res[fd] = None
            return res

        before = links(init)
        img = os.path.join(d, "img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(init), "-D", img], c.timeout,
                             cwd=d)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        u.wait(timeout=10)
        at_dump = count()
        rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "--pidfile",
                              os.path.join(d, "pidfile")], c.timeout, cwd=d)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        restored = init
        after = links(init)
        if after != before:
            raise Failure("the fds changed: %s -> %s" % (before, after))
        if single:
            with open("/proc/%d/root/tmp/cur" % init) as f:
                if f.read().strip() != "1":
                    raise Failure("/tmp/cur of the container's tmpfs was not restored")
            return "pid %d, one process: fds %s" % (init, " ".join(v or "-" for v in
                                                                   after.values()))
        deadline = time.monotonic() + 10
        while count() < at_dump + 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        if count() < at_dump + 5:
            raise Failure("the counter in /data/log stopped at %d" % count())
        with open("/proc/%d/root/tmp/cur" % init) as f:
            cur = int(f.read().strip() or "0")
        if cur < at_dump:
            raise Failure("/tmp/cur of the container's tmpfs is %d, below %d" % (cur, at_dump))
        return "pid %d: /data/log %d -> %d, fds %s" % (init, at_dump, count(),
                                                       " ".join(v or "-" for v in after.values()))
    finally:
        for p in (restored, init, u.pid if u else None):
            if p and pid_alive(p):
                kill_pid(p)
        if u:
            try:
                u.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        reap_all()


def check(c):
    return container(c)
