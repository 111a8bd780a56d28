# stasis-check: timeout=60 needs=host-root
# stasis-check: why=(user and pid namespaces of the host's root)
"""A pid taken in the window between stasis's ns_last_pid write and the creator's clone
(the creator, inside a user namespace, has no right to choose pids at the host's level).
STASIS_FAULT=restore:take-pid:N makes a thread of stasis take the Nth pid prepared that way
for 50 ms. ns_user_pid: A (in a user namespace) unshared a pid namespace whose init is I,
and I forked J.
  - The 1st prepared pid is I's, the init of A's pid namespace: I is made with another
    pid, killed (its namespace with it), and made again in a new namespace once the pid
    is free; A's namespace for children is I's again (was: a retry into the dead
    namespace, "clone3 ...: Cannot allocate memory").
  - The 2nd is J's: J is made with another pid, killed and made again.
Both restores succeed and say they retried; the second one's tree PASSes."""
import os
import time

from lib.proc import Failure, kill_pid, pid_alive, proc_descendants, proc_stat, reap_all

TEST = "ns_user_pid"


def restore_with(run, fault):
    os.environ["STASIS_FAULT"] = fault
    try:
        run.restore_detached()
    finally:
        del os.environ["STASIS_FAULT"]
    with open(run.restore_log, errors="replace") as f:
        if "taken meanwhile" not in f.read():
            raise Failure("%s: the restore did not meet the taken pid (no retry in %s)" % (
                fault, run.restore_log))


def check(c):
    run = c.start_test(TEST)
    try:
        tree = [run.pid] + proc_descendants(run.pid)
        run.dump()
        run.check_original_gone()
        restore_with(run, "restore:take-pid:1")
        for p in reversed(tree):
            if pid_alive(p):
                kill_pid(p)
        deadline = time.monotonic() + 10
        while any(proc_stat(p) is not None for p in tree) and time.monotonic() < deadline:
            reap_all()  # (zombies too: their pids are the restore's)
            time.sleep(0.01)
        run.reset_status()
        restore_with(run, "restore:take-pid:2")
        run.finish_restored(0)
        return "the init of a pid namespace and a member each lost their pid to a race " \
            "and were made again; the tree PASSed"
    finally:
        run.cleanup()
