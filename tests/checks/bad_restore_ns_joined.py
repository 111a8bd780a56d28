# stasis-check: timeout=60 needs=root
# stasis-check: why=(the test makes namespaces)
"""Images are untrusted: a namespace a task entered (TaskNs.joined) must be an ancestor's.
ns_setns_ancestor dumped, then a task that entered an ancestor's namespaces made to name a
task that is not its ancestor instead: the restore is refused on load with one line, before any
process exists, and leaves nothing behind."""
import json
import os
import subprocess

from lib.proc import Failure, run_cmd


def check(c):
    run = c.start_test("ns_setns_ancestor")
    try:
        run.dump()
        run.check_original_gone()
    finally:
        run.cleanup()
    def show(*args):
        return subprocess.run([c.stasis, "show"] + list(args), capture_output=True,
                              text=True, timeout=30).stdout

    tasks = json.loads(show("--kind", "inventory", run.img))["images"]["inventory.img"]["tasks"]
    def joined(x):
        if isinstance(x, dict):
            return bool(x.get("joined")) or any(joined(v) for v in x.values())
        return isinstance(x, list) and any(joined(v) for v in x)

    joiner = next((t for t in tasks
                   if os.path.exists(os.path.join(run.img, "ns-%d.img" % t["pid"])) and
                   joined(json.loads(show(os.path.join(run.img, "ns-%d.img" % t["pid"]))))),
                  None)
    if not joiner:
        raise Failure("no task of the dump entered a namespace")
    by_pid = {t["pid"]: t for t in tasks}
    ancestors, up = set(), joiner.get("ppid", 0)
    while up in by_pid and up not in ancestors:
        ancestors.add(up)
        up = by_pid[up].get("ppid", 0)
    other = next((t for t in tasks if t["pid"] != joiner["pid"] and t["pid"] not in ancestors),
                 None)
    if not other:
        raise Failure("every other task of the dump is an ancestor of pid %d" % joiner["pid"])
    rc, _, err = run_cmd([os.path.join(c.build, "tests", "tools", "imgedit"), run.img,
                          str(joiner["pid"]), "ns-joined", str(other["pid"])], 30)
    if rc != 0:
        raise Failure("imgedit ns-joined failed: %s" % err.strip()[:200])
    line = c.expect_failure(c.restore_argv(run.img), "restore with a namespace entered that "
                            "is no ancestor's", pid=run.pid)
    if "cannot enter again" not in line or str(other["pid"]) not in line:
        raise Failure("the error does not name the namespace: %s" % line)
    return line
