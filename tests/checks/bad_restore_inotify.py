# stasis-check: timeout=30
"""Bad inotify images (a dump of fd_inotify, edited with imgedit): the second watch of
each instance on the first one's file, so that the kernel cannot give it its own wd
again (a file has one watch per instance), and a wd beyond what stasis reproduces
(2000000). Each restore fails with one line naming the watch, and leaves no process with
the dumped pid."""
import os
import shutil

from lib.proc import Failure, run_cmd

CASES = (
    ("same-path", "0", "File exists"),
    ("wd", "2000000", "watch 2000000"),
)


def check(c):
    run = c.start_test("fd_inotify")
    try:
        run.dump()
        run.check_original_gone()
    finally:
        run.cleanup()
    lines = []
    try:
        for field, value, want in CASES:
            d = os.path.join(c.tmp, "inotify-" + field)
            shutil.copytree(run.img, d)
            rc, _, err = run_cmd([os.path.join(c.build, "tests", "tools", "imgedit"), d,
                                  str(run.pid), "inotify", field, value], 30)
            if rc != 0:
                raise Failure("imgedit inotify %s %s failed: %s" % (field, value, err.strip()))
            line = c.expect_failure(c.restore_argv(d), "restore with an inotify's %s %s" %
                                    (field, value), pid=run.pid)
            if want not in line or "inotify" not in line:
                raise Failure("the error does not say what is wrong (%s): %r" % (want, line))
            lines.append(line.split(": ", 1)[-1])
        return "; ".join(lines)
    finally:
        shutil.rmtree(run.tmp, ignore_errors=True)
