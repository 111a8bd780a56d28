# stasis-check: timeout=40
"""Bad file lock records (a dump of file_locks, edited with imgedit): a lock of unknown
kind, a negative start, a POSIX lock without its taker's pid, and two POSIX locks of one
process overlapping on one file (the kernel would have merged them). Each restore fails
with one line naming the lock and what is wrong, and leaves no process with the dumped
pid."""
import os
import shutil

from lib.proc import Failure, run_cmd

CASES = (
    ("kind", "9", "unknown kind"),
    ("start", "-1", "bad range"),
    ("pid", "0", "bad pid"),
    ("start", "0", "overlaps another lock"),
)


def check(c):
    run = c.start_test("file_locks")
    try:
        run.dump()
        run.check_original_gone()
    finally:
        run.cleanup()
    lines = []
    try:
        for field, value, want in CASES:
            d = os.path.join(c.tmp, "lock-%s%s" % (field, value))
            shutil.copytree(run.img, d)
            rc, _, err = run_cmd([os.path.join(c.build, "tests", "tools", "imgedit"), d,
                                  str(run.pid), "lock", field, value], 30)
            if rc != 0:
                raise Failure("imgedit lock %s %s failed: %s" % (field, value, err.strip()))
            line = c.expect_failure(c.restore_argv(d), "restore with a lock's %s %s"
                                    % (field, value), pid=run.pid)
            if want not in line or "lock" not in line:
                raise Failure("the error does not say what is wrong (%s): %r" % (want, line))
            lines.append(line.split(": ", 1)[-1])
        return "; ".join(lines)
    finally:
        shutil.rmtree(run.tmp, ignore_errors=True)
