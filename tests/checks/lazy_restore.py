# stasis-check: timeout=180 needs=root
# stasis-check: why=lazy restore needs CAP_SYS_PTRACE (userfaultfd for faults in kernel mode)
"""restore --lazy-pages of copies of the reference dump of pid_same.

Good images: the restore returns at once, the page server (a process named stasis-lazy)
serves the memory and exits by itself once all of it is in, while the tree runs on.

A byte flipped in a run the page server serves (found with `stasis show`; verified when
first used): the page server must kill the tree and
say so in one line of the log (-o: stderr is a pipe here, which the server does not keep)
naming the checksum mismatch; nothing is left behind (neither the
restored pid nor the page server).

The checkpoint test lazy_threads (1 GiB, threads using it at once) restored lazily and
stopped at once, so that the child it forks at SIGTERM comes while its memory is still
streaming in (a fork event: the child gets the pages its parent had not received yet):
it must pass, and the page server must serve that child and exit."""
import json
import os
import time

from lib.proc import Failure, Skip, kill_pid, my_children, pid_alive, reap_all, run_cmd, wait_pid


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def servers(before):
    return [p for p in my_children() if p not in before and comm(p) == "stasis-lazy"]


def wait_no_server(before, deadline):
    while time.monotonic() < deadline:
        if not servers(before):
            return True
        time.sleep(0.05)
    return False


def cleanup(before, pid):
    """Kills (by pid) what a case left: new page servers, the restored task."""
    for p in servers(before):
        kill_pid(p)
    if pid_alive(pid):
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 5)
    reap_all()


def good(c):
    d, pid = c.variant("lazy-good")
    before = set(my_children())
    rc, _, err = run_cmd(c.restore_argv(d) + ["--lazy-pages"], c.timeout, cwd=c.tmp)
    try:
        if rc != 0 and "CAP_SYS_PTRACE" in err and len(err.strip().splitlines()) == 1:
            # a rootless container's root: refused with one line, as it must be
            raise Skip("lazy restore refused here: %s" % err.strip()[:200])
        if rc != 0:
            raise Failure("restore --lazy-pages: exit %s: %s" % (rc, err.strip()[:300]))
        if not pid_alive(pid):
            raise Failure("restore --lazy-pages: pid %d does not run" % pid)
        if not wait_no_server(before, time.monotonic() + 10):
            raise Failure("the page server still runs 10 s after the restore")
        if not pid_alive(pid):
            raise Failure("pid %d died once its memory was in" % pid)
    finally:
        cleanup(before, pid)


def lazy_run_offset(c, d, pid):
    """The offset in pages-PID.img of the last run restore --lazy-pages serves lazily: in a
    private anonymous area, the process's own, not holding the arguments/environment."""
    rc, out, err = run_cmd([c.stasis, "show", c.image_file(d, "mm", pid)], c.timeout)
    if rc != 0:
        raise Failure("stasis show mm-%d.img: %s" % (pid, err.strip()[:200]))
    mm = json.loads(out)
    lo = min(int(mm["arg_start"], 16), int(mm["env_start"], 16))
    hi = max(int(mm["arg_end"], 16), int(mm["env_end"], 16))
    areas = [(int(v["start"], 16), int(v["end"], 16)) for v in mm["vmas"]
             if v["kind"] in ("VMA_ANON", "VMA_HEAP", "VMA_STACK") and not v["flags"] & 1]
    best = None
    for r in mm["pages"]:
        start = int(r["vaddr"], 16)
        end = start + int(r["nr_pages"]) * 4096
        if "src_pid" in r or "parent_depth" in r or (start < hi and end > lo):
            continue
        if any(s <= start and end <= e for s, e in areas):
            best = int(r["offset"])
    if best is None:
        raise Failure("the dump of pid_same has no run served lazily")
    return best


def corrupted(c):
    d, pid = c.variant("lazy-corrupt")
    path = c.image_file(d, "pages", pid)
    c.flip(path, lazy_run_offset(c, d, pid) + 100)
    before = set(my_children())
    log = os.path.join(c.tmp, "lazy-corrupt.log")
    rc, _, err = run_cmd(c.restore_argv(d) + ["--lazy-pages", "-o", log], c.timeout,
                         cwd=c.tmp)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline and (pid_alive(pid) or servers(before)):
            time.sleep(0.05)
        if pid_alive(pid):
            raise Failure("pid %d still runs on corrupted memory (restore exit %s)" % (
                pid, rc))
        if servers(before):
            raise Failure("the page server is left behind")
        with open(log, errors="replace") as f:
            text = f.read()
        lines = [l for l in text.splitlines() if "Error" in l]
        # the restore may also fail itself if its own remote calls met the bad page
        if len(lines) < 1 or "checksum mismatch" not in lines[-1] or \
                "killed" not in lines[-1] or (rc == 0 and err.strip()):
            raise Failure("expected the log to name the checksum mismatch and the kill, "
                          "got %r (stderr %r)" % (text[-400:], err[:200]))
    finally:
        cleanup(before, pid)


def forked(c):
    before = set(my_children())
    run = c.start_test("lazy_threads")
    try:
        run.dump()
        run.check_original_gone()
        run.meta["restore-opts"] = "--lazy-pages"
        run.restore_detached()
        run.finish_restored(0)
        if not wait_no_server(before, time.monotonic() + 20):
            raise Failure("the page server still runs 20 s after lazy_threads exited")
        with open(run.restore_log) as f:
            log = f.read()
        if "all memory in" not in log and "gone" not in log:
            raise Failure("the page server logged no end (restore.log)")
        if "a child it forked" not in log:
            print("note: the memory was all in before lazy_threads forked: %s" % " / ".join(
                l[l.find("Info"):] for l in log.splitlines() if "memory in" in l or "restored in" in l))
    finally:
        for p in servers(before):
            kill_pid(p)
        run.cleanup()


def check(c):
    good(c)
    corrupted(c)
    forked(c)
