# stasis-check: timeout=60 needs=root
# stasis-check: why=(ns_net makes a net namespace)
"""The restore of a net namespace that was locked whole at dump (issue 11): ns_net dumped,
its ns-PID.img marked `locked` by tests/tools/imgedit (a dump marks it only when the
namespace held TCP connections, which cannot be dumped yet), restored: the restore child
locks the new namespace before its links exist, and stasis removes that lock once the
tree runs (its log says "network unlocked", nothing about a lock that stays or could not
be made); the restored ns_net then PASSes (its UDP datagrams arrive)."""
import os

from lib.proc import Failure, run_cmd


def check(c):
    run = c.start_test("ns_net")
    try:
        run.dump()
        run.check_original_gone()
        rc, _, err = run_cmd([os.path.join(c.build, "tests", "tools", "imgedit"), run.img,
                              str(run.pid), "netns-locked"], 30)
        if rc != 0:
            raise Failure("imgedit netns-locked failed: %s" % err.strip()[:200])
        run.restore_detached()
        with open(run.restore_log, errors="replace") as f:
            log = f.read()
        if "network unlocked" not in log or "stays" in log or "cannot lock" in log:
            raise Failure("the restore log does not show the lock of the new namespace "
                          "made and removed: %s" % [ln for ln in log.splitlines()
                                                    if "lock" in ln][:5])
        run.finish_restored(0)
        return "the restored net namespace was locked, then unlocked once the tree ran"
    finally:
        run.cleanup()
