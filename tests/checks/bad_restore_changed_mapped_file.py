# stasis-check: timeout=30
"""A restore whose privately mapped file changed since the dump (mem_file_private's
mapped.dat, one byte appended) must fail with one line naming the file: the pages the
task did not write come from the file, and would differ. Nothing is left behind; with the
file put back as it was, the same images restore."""
import os
import shutil

from lib.proc import Failure


def check(c):
    run = c.start_test("mem_file_private")
    try:
        run.dump()
        run.check_original_gone()
        path = os.path.join(run.cwd, "mapped.dat")
        st = os.stat(path)
        with open(path, "ab") as f:
            f.write(b"x")
        line = c.expect_failure(c.restore_argv(run.img), "restore after the mapped file grew",
                                pid=run.pid)
        if "mapped.dat" not in line or "changed since the dump" not in line:
            raise Failure("the error does not name the changed file: %r" % line)
        return line
    finally:
        run.cleanup()
        shutil.rmtree(run.tmp, ignore_errors=True)
