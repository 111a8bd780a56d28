# stasis-check: timeout=30 needs=host-root
# stasis-check: why=to run a test as stasis-test
"""ns_user (root writes a map of host ids 10000..11999) dumped by root, restored
by a user who does not own those ids: the map write is refused, named."""
import os
import shutil

from lib.ckpt import CkptRun
from lib.proc import Failure


def check(c):
    _, _, uid, gid = c.user_reference()
    run = CkptRun(c.r, c.build, "ns_user", {"timeout": c.timeout})
    try:
        # everything the restoring user must reach is made reachable: only the map
        # is out of its rights
        for path, mode in ((run.tmp, 0o755), (run.cwd, 0o777)):
            os.chmod(path, mode)
        for path in (run.status, run.log):
            with open(path, "a"):
                pass
            os.chmod(path, 0o666)
        run.start()
        run.wait_ready()
        run.dump()
        run.check_original_gone()
    finally:
        run.cleanup()
    try:
        for f in os.listdir(run.img):
            os.chown(os.path.join(run.img, f), uid, gid)
        os.chown(run.img, uid, gid)
        argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
                "--inh-caps=+checkpoint_restore", "--ambient-caps=+checkpoint_restore",
                "--", c.stasis, "restore", "-D", run.img, "-d"]
        line = c.expect_failure(argv, "a user restoring a user namespace mapping ids "
                                "it does not own", pid=run.pid)
    finally:
        shutil.rmtree(run.tmp, ignore_errors=True)
    if "uid_map" not in line and "gid_map" not in line:
        raise Failure("the error does not name the map: %s" % line)
    return line
