#!/usr/bin/env python3
"""The soak test (`make soak`; not part of ./test.sh): tests/soak/workload — 4 threads
rewriting SOAK_MB MiB of memory and checking it, a child streaming numbered records through
a pipe, a child echoing checksummed blocks over a socketpair — is checkpointed CYCLES times
in a row, alternating a `--leave-running` dump (the tree must run on) and a full cycle
(dump, the tree killed, restore). After every cycle: the state comparison finds nothing,
the tree has its three processes and its fds (no leak), no temporary image directory and
no mount is left; at the end SIGTERM, and the workload's own check must PASS. Bounded by
--seconds. Prints the counts and the time; exit 0 only if every cycle passed.

    python3 tests/soak.py [--build build] [--cycles 100] [--seconds 1800] [--mb 512]
"""
import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))

from lib.ckpt import CkptRun  # noqa: E402
from lib.proc import Failure, kill_pid, pid_alive, proc_descendants, reap_all, \
    set_subreaper  # noqa: E402


class Stub:
    """What CkptRun asks of the runner: the default flavor, as root."""
    flavor = "default"
    user = None
    user_dir = None
    user_stasis = None

    class args:
        sabotage = False
        no_cr = False


def fds(pid):
    return sorted(os.listdir("/proc/%d/fd" % pid), key=int)


def mounts(under):
    with open("/proc/self/mountinfo") as f:
        return sorted(ln.split()[4] for ln in f if ln.split()[4].startswith(under))


def litter(tmp):
    return [n for n in os.listdir(tmp) if "stasis-tmp" in n]


def one_cycle(run, k, full, base_fds, base_mounts):
    what = "cycle %d (%s)" % (k, "full" if full else "leave-running")
    shutil.rmtree(run.img, ignore_errors=True)
    run.snapshot_state()
    if full:
        run.dump()
        run.check_original_gone()
        run.restore_detached()
        run.compare_state("restore")
    else:
        run.dump(["--leave-running"])
        run.compare_state("dump")
    if not pid_alive(run.pid):
        raise Failure("%s: the root is gone" % what)
    kids = proc_descendants(run.pid)
    if len(kids) != 2:
        raise Failure("%s: the tree has %d children, not 2: %s" % (what, len(kids), kids))
    if fds(run.pid) != base_fds:
        raise Failure("%s: the root's fds are %s, were %s" % (what, fds(run.pid), base_fds))
    if litter(run.tmp):
        raise Failure("%s: left %s" % (what, litter(run.tmp)))
    if mounts(run.tmp) != base_mounts:
        raise Failure("%s: mounts under the test's directory: %s" % (what, mounts(run.tmp)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=1800.0)
    ap.add_argument("--mb", type=int, default=512)
    a = ap.parse_args()
    set_subreaper()
    os.environ["SOAK_MB"] = str(a.mb)
    build = os.path.abspath(a.build)
    run = CkptRun(Stub(), build, "soak", {"timeout": a.seconds + 120})
    run.binary = os.path.join(build, "tests", "soak", "workload")
    t0 = time.monotonic()
    done = [0, 0]
    ok = False
    try:
        run.start()
        run.wait_ready()
        base_fds, base_mounts = fds(run.pid), mounts(run.tmp)
        for k in range(a.cycles):
            if time.monotonic() - t0 > a.seconds:
                break
            full = k % 2 == 1
            one_cycle(run, k, full, base_fds, base_mounts)
            done[full] += 1
            print("soak: cycle %d (%s) ok, %.1f s" % (
                k, "full" if full else "leave-running", time.monotonic() - t0), flush=True)
        if done[1]:
            run.finish_restored(0)
        else:
            run.finish_original(0)
        ok = True
    except Failure as e:
        print("soak: FAIL after %d cycles: %s (files kept in %s)" % (sum(done), e, run.tmp))
    finally:
        for p in [run.pid] + (proc_descendants(run.pid) if run.pid and pid_alive(run.pid)
                              else []):
            if p and pid_alive(p):
                kill_pid(p)
        reap_all()
        if ok:
            shutil.rmtree(run.tmp, ignore_errors=True)
    took = time.monotonic() - t0
    print("soak: %s: %d cycles (%d leave-running, %d full) of a %d MiB tree in %.1f s, "
          "no leaked process, fd, mount or temporary directory" % (
              "PASS" if ok else "FAIL", sum(done), done[0], done[1], a.mb, took)
          if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
