# stasis-check: timeout=60 needs=host-root
# stasis-check: why=(user and pid namespaces of the host's root)
"""A pid taken in the window between stasis's ns_last_pid write and the creator's clone
(the creator, inside a user namespace, has no right to choose pids at the host's level).
STASIS_FAULT=restore:take-pid:N makes a thread of stasis take the Nth pid prepared that way
for 50 ms. ns_user_pid: A (in a user namespace) unshared a pid namespace whose init is I,
and I forked J.
  - The 2nd prepared pid is J's: J is made with another pid, killed and made again once
    the pid is free; the restore succeeds and the test PASSes.
  - The 1st is I's, the init of A's pending pid namespace: killing it kills the namespace,
    so the restore fails with one line saying so and leaves nothing (was: "clone3 ...:
    Cannot allocate memory" after a retry into the dead namespace); the images are intact
    and the next restore works."""
import os

from lib.proc import Failure

TEST = "ns_user_pid"


def restore_with(run, fault):
    os.environ["STASIS_FAULT"] = fault
    try:
        run.restore_detached()
    finally:
        del os.environ["STASIS_FAULT"]


def check(c):
    run = c.start_test(TEST)
    try:
        run.dump()
        run.check_original_gone()
        line = c.expect_failure(["env", "STASIS_FAULT=restore:take-pid:1", c.stasis, "restore",
                                 "-D", run.img, "-d"], "restore with I's pid taken",
                                pid=run.pid)
        if "namespace died" not in line:
            raise Failure("the failed restore says: %s" % line)
        restore_with(run, "restore:take-pid:2")
        with open(run.restore_log, errors="replace") as f:
            if "taken meanwhile" not in f.read():
                raise Failure("the restore did not meet the taken pid (no retry in %s)" %
                              run.restore_log)
        run.finish_restored(0)
        return "J's pid taken: made again and PASSed; I's (a pending namespace's init) " \
            "taken: a clear failure, nothing left, then the restore worked"
    finally:
        run.cleanup()
