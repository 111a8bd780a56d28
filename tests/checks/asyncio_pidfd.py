# stasis-check: timeout=30
"""Python asyncio waiting for a child through its pidfd (PidfdChildWatcher: the pidfd
from pidfd_open watched by the loop's epoll), dumped while the child runs and restored:
the child is then told to exit 3, and the loop, woken by the pidfd, reaps it and reports
its status (the same process, restored, prints "exit 3" and ends 0)."""
import os
import sys
import time

from lib.proc import Failure, kill_pid, proc_descendants, run_cmd, wait_pid

PARENT = r'''
import asyncio, os, sys, warnings
go = sys.argv[1]
child = "import os, time\nwhile not os.path.exists(%r): time.sleep(0.05)\nraise SystemExit(3)" % go
warnings.simplefilter("ignore", DeprecationWarning)
async def main():
    p = await asyncio.create_subprocess_exec(sys.executable, "-c", child,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL)
    print("ready", p.pid, flush=True)
    rc = await p.wait()
    print("exit", rc, flush=True)
asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
asyncio.run(main())
'''


def log_has(path, word, deadline):
    while time.monotonic() < deadline:
        with open(path) as f:
            text = f.read()
        if word in text:
            return text
        time.sleep(0.05)
    return None


def check(c):
    log = os.path.join(c.tmp, "asyncio.log")
    go = os.path.join(c.tmp, "asyncio.go")
    img = os.path.join(c.tmp, "asyncio-img")
    with open(log, "w") as out:
        pid = os.fork()
        if pid == 0:
            os.setsid()
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            os.execv(sys.executable, [sys.executable, "-c", PARENT, go])
    restored = False
    try:
        if not log_has(log, "ready", time.monotonic() + c.timeout):
            raise Failure("the asyncio parent did not start")
        tree = [pid] + proc_descendants(pid)
        pidfds = [fd for fd in os.listdir("/proc/%d/fd" % pid)
                  if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:[pidfd]"]
        if not pidfds:
            raise Failure("the asyncio parent holds no pidfd")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "--no-sync"],
                             c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        for p in tree:  # (the child, orphaned, is ours to reap: we are a subreaper)
            if wait_pid(p, time.monotonic() + 10) is None:
                raise Failure("the original pid %d was not killed by the dump" % p)
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        restored = True
        open(go, "w").close()
        text = log_has(log, "exit", time.monotonic() + c.timeout)
        if text is None or "exit 3" not in text:
            raise Failure("the restored loop did not report the child's exit: %r" % text)
        st = wait_pid(pid, time.monotonic() + c.timeout)
        if st is None or (st != -1 and (not os.WIFEXITED(st) or os.WEXITSTATUS(st))):
            raise Failure("the restored parent did not end well (%r)" % st)
        return "the loop woke on the pidfd after the restore and reaped its child (exit 3)"
    finally:
        for p in reversed(proc_descendants(pid)):
            kill_pid(p)
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 5)
