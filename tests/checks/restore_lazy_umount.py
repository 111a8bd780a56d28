# stasis-check: timeout=120 needs=root
# stasis-check: why=(mounts a tmpfs)
"""A restore whose image directory's filesystem goes away in the middle: mem_1g (1 GiB,
checked word by word) dumped onto a tmpfs the check mounts, which is lazily unmounted
(umount -l) as soon as the restoring stasis has mapped the pages file. stasis holds the
image directory and its files open, so the restore goes on from the detached filesystem
and must either complete correctly (the restored mem_1g PASSes) or fail with one line,
leaving no process with the pid and no new child."""
import os
import shutil
import time

from checks._failsafe import finish, mount_tmpfs, start_restore, umount, wait_mapped
from lib.proc import Failure, kill_pid, my_children, pid_alive, reap_all


def check(c):
    mnt = mount_tmpfs(c, "lazy", "size=1200m")
    run = None
    mounted = True
    try:
        run = c.start_test("mem_1g")
        run.img = os.path.join(mnt, "img")
        run.dump()
        run.check_original_gone()
        before = set(my_children())
        r = start_restore(c, run.img, run.pidfile, run.restore_log)
        mapped = wait_mapped(c, r, "pages-%d.img" % run.pid)
        umount(c, mnt)
        mounted = False
        if os.path.ismount(mnt):
            raise Failure("%s is still mounted after umount -l" % mnt)
        rc, err = finish(c, r)
        when = "while the pages file was mapped" if mapped else "after the restore ended"
        if rc == 0:
            run.check_pidfile()
            run.finish_restored(0)
            return "unmounted %s: the restore completed from the open files, mem_1g PASS" % (
                when)
        time.sleep(0.2)
        reap_all()
        lines = err.splitlines()
        if len(lines) != 1 or not lines[0].strip():
            raise Failure("the failed restore said %r (status %s)" % (err[:400], rc))
        if pid_alive(run.pid):
            kill_pid(run.pid)
            raise Failure("pid %d is alive after the failed restore" % run.pid)
        left = [x for x in my_children() if x not in before]
        if left:
            for x in left:
                kill_pid(x)
            raise Failure("the failed restore left processes: %s" % left)
        return "unmounted %s: %s" % (when, lines[0])
    finally:
        if run:
            run.cleanup()
            shutil.rmtree(run.tmp, ignore_errors=True)
        if mounted:
            umount(c, mnt)
