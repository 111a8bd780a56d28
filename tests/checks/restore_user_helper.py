# stasis-check: timeout=30 needs=host-root
# stasis-check: why=to run a test as stasis-test
"""A rootless container of NONROOT_USER (`unshare --map-auto --map-root-user
--pid --fork`: its own id and its /etc/subuid range mapped) running a counter,
dumped and restored from outside by that user with only CAP_CHECKPOINT_RESTORE:
without a helper the map write is refused (named); with `--helper SOCKET` (a
`stasis helper --user` run by root) the maps are written by the helper, the
pids (both levels), the maps are the same and the counter carries on. The
container's init is the root of the dump: stasis asks the helper itself."""
import os
import subprocess
import tempfile
import time

from lib.proc import (Failure, kill_pid, proc_children, proc_descendants, reap_all, run_cmd,
                      wait_pid)
from lib.users import NONROOT_USER, ensure_subids


def user_helper(c, from_launcher):
    _, _, uid, gid = c.user_reference()
    ensure_subids(NONROOT_USER)
    d = tempfile.mkdtemp(prefix="helper-", dir=c.tmp)
    os.chmod(d, 0o755)
    os.chown(d, uid, gid)
    count, img = os.path.join(d, "count"), os.path.join(d, "img")
    user = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups"]
    caps = ["--inh-caps=+checkpoint_restore", "--ambient-caps=+checkpoint_restore", "--"]
    script = 'i=0; while :; do i=$((i+1)); echo $i > %s; sleep 0.05; done' % count
    procs, helper, restored = [], None, None

    def read_count():
        try:
            with open(count) as f:
                return int(f.read().strip() or "0")
        except (OSError, ValueError):
            return 0

    def wait_for(cond, what, secs=10):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.02)
        raise Failure("timed out waiting for " + what)

    def ids(pid):
        with open("/proc/%d/uid_map" % pid) as f:
            um = f.read().split()
        with open("/proc/%d/gid_map" % pid) as f:
            gm = f.read().split()
        with open("/proc/%d/status" % pid) as f:
            nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")]
        return um, gm, nspid

    try:
        u = subprocess.Popen(user + ["unshare", "--map-auto", "--map-root-user", "--pid",
                                     "--fork", "sh", "-c", script], cwd=d,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        procs.append(u.pid)
        wait_for(lambda: read_count() >= 3, "the counter to start")
        kids = proc_children(u.pid)
        if len(kids) != 1:
            raise Failure("unshare has %d children" % len(kids))
        init = kids[0]
        before = ids(init)
        if len(before[0]) < 6:
            raise Failure("the container does not map a subordinate range: uid_map %s"
                          % before[0])
        root = u.pid if from_launcher else init
        rc, _, err = run_cmd(user + caps + [c.stasis, "dump", "-t", str(root), "-D",
                                            img], c.timeout, cwd=d)
        if rc != 0:
            raise Failure("dump as %s failed: %s" % (NONROOT_USER, err.strip()[:300]))
        wait_pid(u.pid, time.monotonic() + 5)
        at_dump = read_count()
        pidfile = os.path.join(d, "pidfile")
        argv = user + caps + [c.stasis, "restore", "-D", img, "-d", "--pidfile",
                              pidfile]
        line = c.expect_failure(argv, "a user restoring its rootless container "
                                "without the helper", pid=root)
        if "uid_map" not in line or "helper" not in line:
            raise Failure("the error does not name the map and the helper: %s" % line)
        sock, hlog = os.path.join(d, "helper.sock"), os.path.join(d, "helper.log")
        helper = subprocess.Popen([c.stasis, "helper", "--socket", sock, "--user",
                                   str(uid), "-v", "-o", hlog],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(sock), "the helper's socket")
        rc, _, err = run_cmd(argv + ["--helper", sock, "-v", "-o",
                                     os.path.join(d, "restore.log")], c.timeout, cwd=d)
        if rc != 0:
            raise Failure("restore with the helper failed: %s" % err.strip()[:300])
        with open(pidfile) as f:
            restored = int(f.read().strip())
        if restored != root:
            raise Failure("restored as pid %d, not %d" % (restored, root))
        after = ids(init)
        if after != before:
            raise Failure("ids/pids changed: %s -> %s" % (before, after))
        wait_for(lambda: read_count() > at_dump + 3, "the counter to carry on")
        with open(hlog) as f:
            hl = f.read()
        if "uid_map for pid" not in hl or "gid_map for pid" not in hl:
            raise Failure("the helper did not write the maps: %s" % hl[-300:])
        return "restored pid %d (container init NSpid %s) through the helper, " \
            "counter %d -> %d" % (restored, " ".join(after[2][0]), at_dump, read_count())
    finally:
        victims = []
        if restored:
            victims = proc_descendants(restored) + [restored]
        for p in victims + procs:
            kill_pid(p)
        if helper:
            helper.terminate()
            try:
                helper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait(timeout=5)
        reap_all()


def check(c):
    return user_helper(c, False)
