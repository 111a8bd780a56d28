# stasis-check: timeout=30 needs=host-root
# stasis-check: why=(mounts, cgroups)
"""`restore --pin-ns DIR` of ns_cgroup: the cgroup namespaces its child and
grandchild unshared are pinned (nsfs files of the restored tasks' namespaces, same
inodes) and stay cgroup namespace files after the tasks exit."""
import os

from lib.nsfs import CLONE_FLAG, nsfs_type
from lib.proc import Failure


def check(c):
    run, pins = c.pin_start("ns_cgroup")
    try:
        if len(run.tree) != 3:
            raise Failure("ns_cgroup should be three processes, was %s" % run.tree)
        _, child, grandchild = run.tree
        c.pin_restore(run, pins)
        expect = {"cgroup-%d" % child: ("cgroup", child),
                  "cgroup-%d" % grandchild: ("cgroup", grandchild)}
        c.pin_check(pins, expect)
        run.finish_restored(0)
        for name in expect:
            if nsfs_type(os.path.join(pins, name)) != CLONE_FLAG["cgroup"]:
                raise Failure("%s is no cgroup namespace file after the tasks exited" %
                              name)
        return "pinned %s" % " and ".join(sorted(expect))
    finally:
        c.pin_done(run)
