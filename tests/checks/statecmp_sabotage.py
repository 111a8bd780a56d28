# stasis-check: timeout=60 needs=root
# stasis-check: why=(ns_uts makes a UTS namespace)
"""The state comparison the runner applies around every checkpoint test fails when a
restore gets the state wrong: pid_same, tree_pipeline and thread_basic are dumped and
restored as the runner does it, the comparison passes, then a tiny outside change
stands in for a broken restore of the restored tree (pid_same: its nice value; the
first child of tree_pipeline: its oom_score_adj; a thread of thread_basic other than the
main one: its own nice value; pid_same again: RLIMIT_NOFILE; the UTS namespace of
ns_uts's child: its hostname, set by a process that joins it) and the comparison must
fail naming that field and that task (and thread). stasis itself has no way to break a
restore on purpose."""
import ctypes
import os
import resource
import shutil

from lib.proc import Failure, proc_children


def renice(pid):
    os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + 3)
    return "pid %d" % pid, "stat.nice"


def oom_child(pid):
    kids = sorted(proc_children(pid))
    if not kids:
        raise Failure("tree_pipeline has no child")
    with open("/proc/%d/oom_score_adj" % kids[0], "w") as f:
        f.write("321")
    return "pid %d" % kids[0], "oom_score_adj"


def renice_thread(pid):
    tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % pid) if int(t) != pid)
    if not tids:
        raise Failure("thread_basic has no thread")
    os.setpriority(os.PRIO_PROCESS, tids[-1], 5)
    return "pid %d tid %d" % (pid, tids[-1]), "stat.nice"


def limit(pid):
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (max(soft // 2, 16), hard))
    return "pid %d" % pid, "limits"


def hostname(pid):
    """The hostname of the UTS namespace of pid's child, changed by a forked child of ours
    that joins it."""
    kids = sorted(proc_children(pid))
    if not kids:
        raise Failure("ns_uts has no child")
    child = os.fork()
    if child == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open("/proc/%d/ns/uts" % kids[0], os.O_RDONLY)
            name = b"sabotaged"
            ok = libc.setns(fd, 0x04000000) == 0 and libc.sethostname(name, len(name)) == 0
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    if status != 0:
        raise Failure("could not set the hostname of the child's UTS namespace")
    return "uts ns new#2", "ns.hostname"


def check(c):
    said = []
    for name, breaker in (("pid_same", renice), ("tree_pipeline", oom_child),
                          ("thread_basic", renice_thread), ("pid_same", limit),
                          ("ns_uts", hostname)):
        run = c.start_test(name)
        try:
            run.snapshot_state()
            run.dump()
            run.check_original_gone()
            run.restore_detached()
            run.compare_state("restore")  # a good restore passes
            where, field = breaker(run.pid)
            try:
                run.compare_state("restore")
            except Failure as e:
                text = str(e)
                if "%s: %s" % (where, field) not in text:
                    raise Failure("%s: the comparison failed without naming %s of %s: %s" % (
                        name, field, where, text)) from None
                said.append("%s: %s" % (name, text.partition("differs: ")[2][:70]))
                continue
            raise Failure("%s: %s of %s changed after the restore and the comparison "
                          "passed" % (name, field, where))
        finally:
            run.cleanup()
            shutil.rmtree(run.tmp, ignore_errors=True)
    return "; ".join(said)
