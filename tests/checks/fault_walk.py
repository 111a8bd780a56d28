# stasis-check: timeout=300 needs=root
"""Fault injection at every point (issue 15, src/core/fault.h). For tree_pipeline (three
processes streaming through two full pipes) and ns_mnt (a tree in mount, pid, UTS, IPC and
net namespaces of its own), a dump and a restore with STASIS_FAULT=list
name the fault points they pass. Then, for each dump point, a `--leave-running` dump with
STASIS_FAULT=POINT must fail with one line naming the point, and leave the tree exactly as
it was (the state comparison finds no difference, no thread traced or stopped) and no
image directory; for each restore point, a restore of a good image with that fault must
fail with one line naming it, and leave no process with a pid of the tree, no new mount in
stasis's mount namespace and the images as they were: the last restore, without a fault,
brings the tree back and the test PASSes."""
import hashlib
import os
import re
import shutil
import signal
import time

from lib.proc import Failure, kill_pid, pid_alive, proc_descendants, proc_stat, reap_all, \
    run_cmd

# three processes streaming through full pipes; a tree with mount, pid, UTS, IPC and net
# namespaces of its own (a tmpfs with files, binds)
TESTS = ("tree_pipeline", "ns_mnt")


def points(log):
    with open(log, errors="replace") as f:
        seen = []
        for m in re.finditer(r"fault point (\S+)", f.read()):
            if m.group(1) not in seen:
                seen.append(m.group(1))
    return seen


def tree_of(pid):
    return [pid] + proc_descendants(pid)


def untraced(pids, what):
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            raise Failure("%s: pid %d is gone" % (what, pid)) from None
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    st = dict(ln.rstrip("\n").split(":\t", 1) for ln in f if ":\t" in ln)
            except OSError:
                continue
            if st.get("TracerPid") != "0" or st.get("State", "")[:1] in ("t", "T"):
                raise Failure("%s: thread %s of %d is %s, traced by %s" % (
                    what, tid, pid, st.get("State"), st.get("TracerPid")))


def digest(img):
    h = hashlib.sha256()
    for name in sorted(os.listdir(img)):
        h.update(name.encode())
        with open(os.path.join(img, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def mounts(under):
    """The mounts of this namespace under @under (the test's directory, where the images
    are: what a restore could leave; elsewhere mounts come and go with whatever else
    runs on the machine)."""
    with open("/proc/self/mountinfo") as f:
        return sorted(ln.split()[4] for ln in f if ln.split()[4].startswith(under))


def dump_points(c, run, names):
    """Each dump point: a failed --leave-running dump, the tree as it was."""
    run.meta["mode"] = "leave-running"
    for p in names:
        pids = tree_of(run.pid)
        run.snapshot_state()
        env_argv = ["env", "STASIS_FAULT=" + p, c.stasis, "dump", "-t", str(run.pid), "-D",
                    run.img, "--leave-running", "--no-sync", "-o",
                    os.path.join(run.tmp, "fault-dump.log")]
        line = c.expect_failure(env_argv, "dump with a fault at " + p, allowed=pids)
        if p not in line:
            raise Failure("the failed dump (fault at %s) says: %s" % (p, line))
        if os.path.exists(run.img) and os.listdir(run.img):
            raise Failure("the failed dump (fault at %s) left images" % p)
        untraced(pids, "after a fault at " + p)
        run.compare_state("dump")


def restore_points(c, run, names, tree):
    """Each restore point: a failed restore, nothing left, the images intact."""
    base = mounts(run.tmp)
    sums = digest(run.img)
    for p in names:
        argv = ["env", "STASIS_FAULT=" + p, c.stasis, "restore", "-D", run.img, "-d",
                "-o", os.path.join(run.tmp, "fault-restore.log")]
        line = c.expect_failure(argv, "restore with a fault at " + p, pid=run.pid)
        if p not in line and "fault injected" not in line:
            raise Failure("the failed restore (fault at %s) says: %s" % (p, line))
        left = [q for q in tree if pid_alive(q)]
        if left:
            raise Failure("the failed restore (fault at %s) left pids %s" % (p, left))
        if mounts(run.tmp) != base:
            raise Failure("the failed restore (fault at %s) left mounts: %s (were %s)" % (
                p, mounts(run.tmp), base))
        if digest(run.img) != sums:
            raise Failure("the failed restore (fault at %s) changed the images" % p)


def walk(c, test):
    run = c.start_test(test)
    try:
        log = os.path.join(run.tmp, "list-dump.log")
        rc, _, err = run_cmd(["env", "STASIS_FAULT=list", c.stasis, "dump", "-t",
                              str(run.pid), "-D", run.img, "--leave-running", "--no-sync",
                              "-o", log], c.timeout)
        if rc != 0:
            raise Failure("the listing dump failed: %s" % err.strip()[-200:])
        dpoints = points(log)
        if len(dpoints) < 10:
            raise Failure("only %d dump fault points: %s" % (len(dpoints), dpoints))
        shutil.rmtree(run.img)
        dump_points(c, run, dpoints)
        # a good dump (the tree goes), the restore points listed by one restore
        tree = tree_of(run.pid)
        run.meta["mode"] = "normal"
        run.dump()
        run.check_original_gone()
        rlog = os.path.join(run.tmp, "list-restore.log")
        rc, _, err = run_cmd(["env", "STASIS_FAULT=list", c.stasis, "restore", "-D",
                              run.img, "-d", "-o", rlog], c.timeout)
        if rc != 0:
            raise Failure("the listing restore failed: %s" % err.strip()[-200:])
        for q in reversed(tree):
            if pid_alive(q):
                kill_pid(q, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(proc_stat(q) is not None for q in tree) and time.monotonic() < deadline:
            reap_all()  # (zombies too: their pids are the restore's)
            time.sleep(0.01)
        rpoints = points(rlog)
        if len(rpoints) < 10:
            raise Failure("only %d restore fault points: %s" % (len(rpoints), rpoints))
        restore_points(c, run, rpoints, tree)
        run.reset_status()
        run.restore_detached()
        run.finish_restored(0)
        return "%s: %d dump points, %d restore points" % (test, len(dpoints), len(rpoints))
    finally:
        run.cleanup()
        for q in [run.pid] + (proc_descendants(run.pid) if run.pid and pid_alive(run.pid)
                              else []):
            if q and pid_alive(q):
                kill_pid(q)
        reap_all()
        shutil.rmtree(run.tmp, ignore_errors=True)


def check(c):
    done = [walk(c, t) for t in TESTS]
    return "%s: after each dump fault the tree ran on as it was, after each restore fault " \
        "nothing was left and the images restored" % "; ".join(done)
