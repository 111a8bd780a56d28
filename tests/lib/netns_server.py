"""A real server started in a network namespace of its own (`unshare --net`), as in a
container, for the checks that drive one (nginx_netns, apache_prefork): requests made
inside the namespace, and the dump/restore rounds."""
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, pid_alive, proc_children, proc_descendants, \
    reap_all, run_cmd, wait_gone

GET = r"""
import sys, urllib.request
for _ in range(int(sys.argv[2])):
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())
    except Exception as e:
        print("error %s" % e)
"""


def start(cmd):
    """`unshare --net` running @cmd (a shell command line) after bringing lo up."""
    return subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up && exec " + cmd],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def ask(pid, url, n):
    """@n GETs of @url inside the network namespace of @pid: the answers (one line each)."""
    out = subprocess.run(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", GET, url,
                          str(n)], capture_output=True, text=True, timeout=60).stdout
    return out.split("\n")[:n]


def workers_of(pid, n, timeout=20):
    """The children of @pid once there are @n of them (fewer at the timeout)."""
    deadline = time.monotonic() + timeout
    kids = proc_children(pid)
    while len(kids) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        kids = proc_children(pid)
    return kids


def dump_restore_twice(c, p, workers, d, after):
    """Dump (killing) and restore the tree of @p (its root, @workers its children) twice,
    images in @d/img0 and img1; @after(round) checks the server after each restore; the
    root must then have the same children."""
    pid = p.pid
    for rnd in range(2):
        img = "%s/img%d" % (d, rnd)
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "-o",
                              img + "-dump.log", "-v"], c.timeout / 5)
        if rc != 0:
            raise Failure("dump %d failed: %s" % (rnd + 1, err.strip()[-300:]))
        if rnd == 0:
            p.wait(timeout=10)
        wait_gone([pid] + workers, time.monotonic() + 10)
        rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "-o",
                              img + "-restore.log", "-v"], c.timeout / 5)
        if rc != 0:
            raise Failure("restore %d failed: %s" % (rnd + 1, err.strip()[-300:]))
        after(rnd + 1)
        if sorted(proc_children(pid)) != sorted(workers):
            raise Failure("the root's children after restore %d: %s (were %s)" %
                          (rnd + 1, proc_children(pid), workers))


def stop(p, workers):
    """Kill the server's processes by pid (the restored ones too) and reap them: the root
    first, which would fork a new worker for each one killed before it."""
    kids = set(workers) | set(proc_descendants(p.pid))
    if pid_alive(p.pid):
        kill_pid(p.pid)
    for w in kids:
        kill_pid(w)
    if p.poll() is None:
        p.kill()
    p.wait(timeout=10)
    reap_all()
