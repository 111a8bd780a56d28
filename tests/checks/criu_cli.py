# stasis-check: timeout=60 needs=root
"""stasis invoked as `criu` (a symlink): `criu --version` / `-V` and `stasis --version`
answer; an unknown option and an option stasis cannot honour (dump --lazy-pages: a
post-copy dump from the live tree) are one clear line and a failure; `criu check` says
"Looks good."; `criu dump -t PID -D DIR -o dump.log -v4` and `criu restore -D DIR -d
--pidfile restore.pid -o restore.log` (the log and pid files in the images directory,
CRIU's convention) checkpoint and restore a process with its pid; then again with CRIU's
lazy restore: `criu lazy-pages -D DIR` (nothing to run: stasis's lazy restore serves the
pages itself) and `criu restore --lazy-pages`."""
import os
import subprocess
import time

from lib.proc import Failure, in_rootless_container, kill_pid, run_cmd, wait_pid


def check(c):
    d = os.path.join(c.tmp, "criu-cli")
    os.makedirs(d)
    criu = os.path.join(d, "criu")
    os.symlink(os.path.abspath(c.stasis), criu)
    rc, out, _ = run_cmd([criu, "--version"], 10)
    if rc != 0 or not out.startswith("Version: ") or "stasis" not in out:
        raise Failure("criu --version: rc %d, %r" % (rc, out))
    rc, out2, _ = run_cmd([criu, "-V"], 10)
    rc3, out3, _ = run_cmd([c.stasis, "--version"], 10)
    if rc != 0 or out2 != out or rc3 != 0 or not out3.startswith("stasis "):
        raise Failure("-V / stasis --version: %r %r" % (out2, out3))
    for bad, want in ((["dump", "--no-such-option", "-t", "1", "-D", d], "--no-such-option"),
                      (["dump", "--lazy-pages", "-t", "1", "-D", d], "--lazy-pages"),
                      (["frobnicate"], "frobnicate")):
        rc, _, err = run_cmd([criu] + bad, 10)
        lines = err.strip().splitlines()
        if rc == 0 or len(lines) != 1 or want not in lines[0]:
            raise Failure("criu %s: rc %d, stderr %r" % (" ".join(bad), rc, err))
    rc, out, err = run_cmd([criu, "check"], 60)
    if rc != 0 or "Looks good." not in out:
        raise Failure("criu check: rc %d: %s %s" % (rc, out, err))

    img = os.path.join(d, "img")
    os.makedirs(img)
    p = subprocess.Popen(["setsid", "sleep", "100"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = p.pid
    try:
        deadline = time.monotonic() + 10
        while open("/proc/%d/comm" % pid).read().strip() != "sleep":
            if time.monotonic() > deadline:
                raise Failure("sleep did not start")
            time.sleep(0.01)
        rc, _, err = run_cmd([criu, "dump", "--tcp-established", "-t", str(pid), "-D", img,
                              "-o", "dump.log",
                              "-v4"], c.timeout)
        if rc != 0:
            raise Failure("criu dump: %s" % err.strip()[-200:])
        p.wait(timeout=10)
        if not os.path.exists(os.path.join(img, "dump.log")):
            raise Failure("criu dump -o dump.log: no log in the images directory")
        rc, _, err = run_cmd([criu, "restore", "-D", img, "-d", "--pidfile", "restore.pid",
                              "-o", "restore.log"], c.timeout)
        if rc != 0:
            raise Failure("criu restore: %s" % err.strip()[-200:])
        with open(os.path.join(img, "restore.pid")) as f:
            got = int(f.read())
        if got != pid or open("/proc/%d/comm" % pid).read().strip() != "sleep":
            raise Failure("restored pid %d, not %d" % (got, pid))
        img2 = os.path.join(d, "img2")
        os.makedirs(img2)
        rc, _, err = run_cmd([criu, "dump", "-t", str(pid), "-D", img2], c.timeout)
        if rc != 0:
            raise Failure("criu dump (2): %s" % err.strip()[-200:])
        wait_pid(pid, time.monotonic() + 10)
        rc, _, err = run_cmd([criu, "lazy-pages", "-D", img2], 10)
        if rc != 0:
            raise Failure("criu lazy-pages: rc %d: %s" % (rc, err.strip()[-200:]))
        rc, _, err = run_cmd([criu, "restore", "--lazy-pages", "-D", img2, "-d", "-v4",
                              "-o", "restore.log"], c.timeout)
        if rc != 0 and in_rootless_container() and "--lazy-pages" in err and \
                len(err.strip().splitlines()) == 1:
            # (userfaultfd for kernel-mode faults needs CAP_SYS_PTRACE: refused in one line)
            rc, _, err = run_cmd([criu, "restore", "-D", img2, "-d"], c.timeout)
            if rc != 0:
                raise Failure("criu restore (2): %s" % err.strip()[-200:])
            return "criu dump/restore of pid %d through the criu-named command line " \
                "(restore --lazy-pages refused in one line here: rootless)" % pid
        if rc != 0:
            raise Failure("criu restore --lazy-pages: %s" % err.strip()[-200:])
        deadline = time.monotonic() + 10  # (the lazy server logs once all memory is in)
        while True:
            with open(os.path.join(img2, "restore.log")) as f:
                if "faults served" in f.read():
                    break
            if time.monotonic() > deadline:
                raise Failure("criu restore --lazy-pages: no lazy page server in the log")
            time.sleep(0.05)
        if open("/proc/%d/comm" % pid).read().strip() != "sleep":
            raise Failure("criu restore --lazy-pages: pid %d is not sleep" % pid)
        return "criu dump/restore of pid %d through the criu-named command line, and " \
            "restore --lazy-pages" % pid
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 10)
        if p.poll() is None:
            p.wait(timeout=10)
