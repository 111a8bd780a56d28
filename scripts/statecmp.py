#!/usr/bin/env python3
"""Compare what /proc shows of a process tree before a checkpoint and after the restore.

    scripts/statecmp.py snapshot PID > before.json
    stasis dump -t PID -D img && stasis restore -D img -d
    scripts/statecmp.py compare before.json PID       # or: compare before.json after.json

`snapshot` records the task PID, its descendants and their threads: maps and VmFlags, fds
and fdinfo, /proc/locks, status, stat, limits, cgroup, mountinfo of the namespaces the
tree created, environ, cmdline, links, namespaces and their sharing (tests/lib/statecmp.py
has the list). `compare` prints one line per field that differs, naming the task, and
exits 1 if any is not in the allow-list (tests/lib/statecmp_allow.py: what a restore
changes legitimately, and the known stasis bugs, each with its reason); 0 otherwise.
--all shows the allowed differences too (with the reason), --strict counts them as
differences. Run it as root (or as the tasks' owner: some files then read as empty on
both sides). Standard library only."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from lib import statecmp  # noqa: E402
from lib.statecmp_allow import ALLOW  # noqa: E402


def load(arg):
    """A snapshot file, or a live snapshot of a pid."""
    if arg.isdigit():
        return statecmp.snapshot(int(arg))
    with open(arg) as f:
        data = json.load(f)
    return data["state"] if "state" in data else data


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("snapshot", help="print the snapshot of PID's tree as JSON")
    sp.add_argument("pid", type=int)
    sp.add_argument("-o", "--output", help="write it to this file instead of stdout")
    cp = sub.add_parser("compare", help="compare a snapshot with a PID (or another snapshot)")
    cp.add_argument("before", help="a snapshot file")
    cp.add_argument("after", help="a PID (snapshot now) or a snapshot file")
    cp.add_argument("--all", action="store_true",
                    help="show the allowed differences too, with the reason")
    cp.add_argument("--strict", action="store_true",
                    help="ignore the allow-list: every difference counts")
    cp.add_argument("--test", default="", help="allow-list context: the test's name")
    cp.add_argument("--flavor", default="", help="allow-list context: the flavor")
    cp.add_argument("--mode", default="normal", help="allow-list context: the test's mode")
    a = ap.parse_args()
    if a.cmd == "snapshot":
        if not os.path.isdir("/proc/%d" % a.pid):
            ap.error("no process %d" % a.pid)
        text = json.dumps({"statecmp": 1, "pid": a.pid, "state": statecmp.snapshot(a.pid)},
                          indent=0, sort_keys=True)
        if a.output:
            with open(a.output, "w") as f:
                f.write(text + "\n")
        else:
            print(text)
        return 0
    if a.after.isdigit() and not os.path.isdir("/proc/" + a.after):
        ap.error("no process %s" % a.after)
    before, after = load(a.before), load(a.after)
    ctx = {"test": a.test, "flavor": a.flavor, "mode": a.mode, "stage": "restore"}
    diffs = statecmp.compare(before, after, () if a.strict else ALLOW, ctx)
    bad = 0
    for d in diffs:
        entry = d[5]
        if entry is None:
            bad += 1
            print(statecmp.describe(d, width=400))
        elif a.all:
            print("%s  (allowed: %s)" % (statecmp.describe(d, width=400), entry["reason"]))
    nallowed = len(diffs) - bad
    print("%d difference%s%s" % (bad, "" if bad == 1 else "s",
                                  ", %d allowed" % nallowed if nallowed else ""),
          file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
