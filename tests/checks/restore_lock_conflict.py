# stasis-check: timeout=60
"""A lock taken by a process outside the tree between the dump and the restore: the tree of
file_locks is dumped; an outside process takes a POSIX write lock on [0, 9] of its file
"posix" (the restored parent holds a read lock on [0, 99]): the restore fails at once
(bounded, never waiting for the lock) with one line naming the file and the holder's pid
(found through F_GETLK, or, for the flock and the OFD lock, whose pid /proc/locks does not
tell (-1 for an OFD lock), through the lock lines of the other processes' fdinfo),
and leaves no process behind. The same with an outside flock LOCK_SH on "flock" (the
tree holds LOCK_EX) and an outside OFD lock. Once the outside locks are gone the same
images restore and the test PASSes."""
import os
import shutil
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, reap_all

HOLDER = r"""
import fcntl, os, struct, sys
fd = os.open(sys.argv[2], os.O_RDWR)
if sys.argv[1] == "posix":
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
elif sys.argv[1] == "ofd":
    fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 6000, 1, 0))  # F_OFD_SETLK
else:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
sys.stdout.write("locked\n")
sys.stdout.flush()
sys.stdin.read()
"""


def hold(kind, path):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, kind, path], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if p.stdout.readline() != b"locked\n":
        release(p)
        raise Failure("the outside %s lock on %s could not be taken" % (kind, path))
    return p


def release(p):
    try:
        p.stdin.close()
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        kill_pid(p.pid)
        p.wait(timeout=10)
    p.stdout.close()


def check(c):
    run = c.start_test("file_locks")
    seen = []
    try:
        run.dump()
        run.check_original_gone()
        cases = (("posix", "posix", "POSIX read lock on %s/posix [0, 99]"),
                 ("flock", "flock", "flock write lock on %s/flock"),
                 ("ofd", "posix", "OFD write lock on %s/posix [5000, EOF]"))
        for kind, name, text in cases:
            p = hold(kind, os.path.join(run.cwd, name))
            try:
                t0 = time.monotonic()
                err = c.expect_failure(c.restore_argv(run.img),
                                       "restore with an outside %s lock" % kind, pid=run.pid)
                took = time.monotonic() - t0
                want = text % run.cwd
                holder = "held by pid %d" % p.pid
                if want not in err or holder not in err:
                    raise Failure("the refusal does not name %r and %r: %s" % (
                        want, holder, err))
                if took > 10:
                    raise Failure("the failed restore took %.1f s" % took)
                seen.append("%s: %s (%.2f s)" % (kind, err, took))
            finally:
                release(p)
        reap_all()
        run.restore_detached()
        run.finish_restored(0)
        return "; ".join(seen)
    finally:
        run.cleanup()
        shutil.rmtree(run.tmp, ignore_errors=True)
