# stasis-check: timeout=60 needs=host-root
# stasis-check: why=(cgroups of the host)
"""--cgroup-root (issue 16; CRIU's spelling, which runtimes send as the RPC's cg_root): a
tree restored into other cgroups than those it was dumped from. A shell (the root) sits in
pids OUTER (pids.max 99) and cpu OUTER (cpu.shares 333); its child, a sleep, in pids
OUTER/inner (pids.max 77) and cpu OTHER, beside OUTER. It is dumped and its cgroups are
removed; then
  - a restore moving pids to NEWPIDS and every other hierarchy to DEF (a root without
    controllers) fails with one line naming the child's cpu cgroup (OTHER is not below
    the root's OUTER: there is no place for it) and makes no cgroup;
  - a restore moving pids to NEWPIDS puts the shell in NEWPIDS, the sleep in
    NEWPIDS/inner, each made with the settings of the cgroup it replaces (99, 77); the
    cpu cgroups are made again where they were (OUTER with cpu.shares 333, OTHER), the
    other hierarchies as they were;
  - the same image restored again through the criu spelling (`criu restore
    --cgroup-root`) with pids moved to a second place.
Without --cgroup-root (stasis before this) the restore would remake OUTER."""
import os
import subprocess
import time

from lib.cgroupfs import ROOT, read, rmdirs, write
from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_stat, reap_all, run_cmd


def cgroups_of(pid):
    """{controllers: path} of /proc/PID/cgroup."""
    out = {}
    for line in read("/proc/%d/cgroup" % pid).splitlines():
        _, ctrl, path = line.split(":", 2)
        out[ctrl] = path
    return out


def children_of(pid):
    try:
        return [int(x) for x in read("/proc/%d/task/%d/children" % (pid, pid)).split()]
    except OSError:
        return []


def check(c):
    for h in ("pids", "cpu"):
        if not os.path.exists(os.path.join(ROOT, h, "cgroup.procs")):
            raise Skip("no cgroup v1 %s hierarchy at %s/%s" % (h, ROOT, h))
    tag = "stasis-cgroot-%d" % os.getpid()
    P, C = os.path.join(ROOT, "pids"), os.path.join(ROOT, "cpu")
    outer_p, outer_c = os.path.join(P, tag), os.path.join(C, tag)
    inner = os.path.join(outer_p, "inner")
    other = os.path.join(C, tag + "-other")
    newpids, newpids2 = os.path.join(P, tag + "-new"), os.path.join(P, tag + "-new2")
    made = [outer_p, inner, outer_c, other, newpids, newpids + "/inner", newpids2,
            newpids2 + "/inner"]
    img = os.path.join(c.tmp, "cgroot-img")
    root = child = None
    try:
        for d in (outer_p, inner, outer_c, other):
            os.makedirs(d, exist_ok=True)
        write(os.path.join(outer_p, "pids.max"), "99")
        write(os.path.join(inner, "pids.max"), "77")
        write(os.path.join(outer_c, "cpu.shares"), "333")

        def enter():  # the shell starts in OUTER (pids and cpu)
            for d in (outer_p, outer_c):
                write(os.path.join(d, "cgroup.procs"), str(os.getpid()))

        p = subprocess.Popen(["sh", "-c", "sleep 1000 & wait"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             preexec_fn=enter)
        root = p.pid
        deadline = time.monotonic() + 10
        while not children_of(root) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not children_of(root):
            raise Failure("the shell did not start its sleep")
        child = children_of(root)[0]
        write(os.path.join(inner, "cgroup.procs"), str(child))
        write(os.path.join(other, "cgroup.procs"), str(child))
        was_root, was_child = cgroups_of(root), cgroups_of(child)
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(root), "-D", img], c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[-300:])
        p.wait(timeout=10)
        deadline = time.monotonic() + 10
        while pid_alive(child) and time.monotonic() < deadline:
            reap_all()
            time.sleep(0.01)
        rmdirs(made)

        # every hierarchy not named moves too with a root without controllers: cpu
        # cannot, its OTHER is not below OUTER
        line = c.expect_failure([c.stasis, "restore", "-D", img, "-d", "--cgroup-root",
                                 "pids:/%s-new" % tag, "--cgroup-root", "/%s-def" % tag],
                                "restore with every hierarchy moved while the child's cpu "
                                "cgroup is not below the root's", pid=root)
        if tag + "-other" not in line or "--cgroup-root" not in line:
            raise Failure("the refusal does not name the child's cgroup: %s" % line)
        left = [d for d in made if os.path.exists(d)] + [
            d for d in (os.path.join(ROOT, h, tag + "-def") for h in os.listdir(ROOT))
            if os.path.exists(d)]
        if left:
            raise Failure("the refused restore made cgroups: %s" % left)

        def restore(argv, newp):
            rc, _, err = run_cmd(argv, c.timeout)
            if rc != 0:
                raise Failure("%s failed: %s" % (" ".join(argv[1:3]), err.strip()[-300:]))
            got_root, got_child = cgroups_of(root), cgroups_of(child)
            want_root = dict(was_root, pids="/" + os.path.basename(newp))
            want_child = dict(was_child, pids="/%s/inner" % os.path.basename(newp))
            if got_root != want_root or got_child != want_child:
                raise Failure("restored in %s and %s, want %s and %s" % (
                    got_root, got_child, want_root, want_child))
            for path, want in ((os.path.join(newp, "pids.max"), "99"),
                               (os.path.join(newp, "inner", "pids.max"), "77"),
                               (os.path.join(outer_c, "cpu.shares"), "333")):
                if read(path) != want:
                    raise Failure("%s is %s, was %s" % (path, read(path), want))
            if os.path.exists(outer_p):
                raise Failure("pids %s made again though it moved" % outer_p)

        restore([c.stasis, "restore", "-D", img, "-d", "--cgroup-root", "pids:/%s-new" % tag],
                newpids)
        kill_pid(root)
        kill_pid(child)
        deadline = time.monotonic() + 10
        while (proc_stat(root) or proc_stat(child)) and time.monotonic() < deadline:
            reap_all()  # (a zombie keeps the pid the next restore needs)
            time.sleep(0.01)
        criu = os.path.join(c.tmp, "cgroot-bin", "criu")
        os.makedirs(os.path.dirname(criu), exist_ok=True)
        if not os.path.exists(criu):
            os.symlink(os.path.abspath(c.stasis), criu)
        restore([criu, "restore", "-D", img, "-d", "--cgroup-root", "pids:/%s-new2" % tag],
                 newpids2)
        return "moved to pids %s (99) and %s/inner (77); a child outside the root's cgroup " \
            "refused in one line, nothing made; criu spelling too" % (newpids, newpids)
    finally:
        for q in (root, child):
            if q and pid_alive(q):
                kill_pid(q)
        reap_all()
        rmdirs(made + [os.path.join(ROOT, h, tag + "-def") for h in os.listdir(ROOT)])
