# stasis-check: timeout=60
"""A dump killed midway (SIGKILL while it writes the pages of a 256 MiB process) leaves its
temporary directory DIR.stasis-tmp.PID; its lock (flock on the directory, held by the
live dumper) is gone with it. `stasis gc DIR DIR2`, run while another dump into DIR2 is
writing, removes the stale directory and says so ("removed PATH") and keeps the live
one ("kept PATH: a dump in progress holds it"); that dump completes. A second dump
killed midway while a dump of 512 MiB writes into DIR too, then the next dump into DIR
removes the stale directory itself (its -v log says so); neither touches the live one,
which completes as well."""
import os

from checks._failsafe import (finish, kill_dump, start_dump, start_mem, stop, tmp_dirs,
                              tmp_size, wait_tmp)
from lib.proc import Failure, run_cmd


def killed_dump(c, img, tag):
    """A 256 MiB process whose dump into @img was killed midway: its temporary dir."""
    p = start_mem(c, 256, tag)
    try:
        d = start_dump(c, p.pid, img, os.path.join(c.tmp, tag + ".log"))
        tmp = wait_tmp(c, d, img, 32 << 20)
        kill_dump(d)
    finally:
        # the dumper died with the task frozen (signals blocked): it goes too
        stop(p)
    if not os.path.isdir(tmp) or tmp_size(tmp) < (32 << 20):
        raise Failure("the killed dump left no temporary directory of 32 MiB or more (%s)"
                      % tmp_dirs(img))
    return tmp


def completed(c, d, img, what):
    rc, err = finish(c, d)
    if rc != 0:
        raise Failure("%s failed (status %s): %s" % (what, rc, err.strip()[:300]))
    if not os.path.isfile(os.path.join(img, "inventory.img")):
        raise Failure("%s left no image set in %s" % (what, img))


def check(c):
    img = os.path.join(c.tmp, "gc-img")
    procs = []
    try:
        tmp_a = killed_dump(c, img, "gc-a")
        mib_a = tmp_size(tmp_a) >> 20

        # stasis gc while a live dump writes into the same place
        b = start_mem(c, 256, "gc-b")
        procs.append(b)
        img2 = os.path.join(c.tmp, "gc-img2")
        db = start_dump(c, b.pid, img2, os.path.join(c.tmp, "gc-b.log"))
        tmp_b = wait_tmp(c, db, img2, 8 << 20)
        rc, out, err = run_cmd([c.stasis, "gc", img, img2], c.timeout)
        if rc != 0:
            raise Failure("stasis gc exited %s: %s" % (rc, (err or out).strip()[:300]))
        if "removed %s " % tmp_a not in out or os.path.exists(tmp_a):
            raise Failure("stasis gc did not remove the stale %s: %r" % (tmp_a, out))
        if "kept %s: a dump in progress" % tmp_b not in out:
            raise Failure("stasis gc did not report the live %s as kept: %r" % (tmp_b, out))
        completed(c, db, img2, "the dump running during stasis gc")
        stop(b)

        # the next dump removes a stale directory by itself, never a live one: a dump
        # of 512 MiB writing into DIR while another is killed midway and the next runs
        e = start_mem(c, 512, "gc-e")
        procs.append(e)
        victim = start_mem(c, 256, "gc-c")
        procs.append(victim)
        small = start_mem(c, 16, "gc-d")
        procs.append(small)
        de = start_dump(c, e.pid, img, os.path.join(c.tmp, "gc-e.log"))
        tmp_e = wait_tmp(c, de, img, 8 << 20)
        dc = start_dump(c, victim.pid, img, os.path.join(c.tmp, "gc-c.log"))
        tmp_c = wait_tmp(c, dc, img, 32 << 20)
        kill_dump(dc)
        stop(victim)
        if not os.path.isdir(tmp_c):
            raise Failure("the killed dump left no temporary directory")
        live = de.poll() is None
        log_d = os.path.join(c.tmp, "gc-d.log")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(small.pid), "-D", img,
                              "--leave-running", "-v", "-o", log_d], c.timeout)
        if rc != 0:
            raise Failure("the dump after the killed one failed: %s" % err.strip()[:300])
        with open(log_d) as f:
            log = f.read()
        if os.path.exists(tmp_c) or "removed %s " % tmp_c not in log:
            raise Failure("the next dump did not remove the stale %s (still there: %s; "
                          "log: %s)" % (tmp_c, os.path.exists(tmp_c), log[-500:]))
        for name in ("gc-c.log", "gc-d.log"):
            with open(os.path.join(c.tmp, name)) as f:
                if "removed %s " % tmp_e in f.read():
                    raise Failure("%s: the live %s was removed" % (name, tmp_e))
        completed(c, de, img, "the dump running during the next dump")
        if tmp_dirs(img) or tmp_dirs(img2):
            raise Failure("temporary directories left at the end: %s" % (
                tmp_dirs(img) + tmp_dirs(img2)))
        return ("%s (%d MiB) removed by stasis gc, %s by the next dump, live ones kept "
                "(the 512 MiB dump %s during the next dump)" % (
                    os.path.basename(tmp_a), mib_a, os.path.basename(tmp_c),
                    "still ran" if live else "had ended"))
    finally:
        for p in procs:
            stop(p)
