# stasis-check: timeout=30
"""A restore while the pid is taken: pid_same dumped with --leave-running and restored
while the original runs must fail; the original is untouched and still PASSes."""
import shutil

from lib.proc import Failure, proc_stat


def check(c):
    run = c.start_test("pid_same")
    try:
        run.dump(["--leave-running"])
        st0 = proc_stat(run.pid)
        if st0 is None or run.proc.poll() is not None:
            raise Failure("the original died after dump --leave-running")
        c.expect_failure(c.restore_argv(run.img), "restore while the pid is taken",
                         allowed=(run.pid,))
        st1 = proc_stat(run.pid)
        if st1 is None or st1[2] != st0[2] or run.proc.poll() is not None:
            raise Failure("the original was disturbed by the failed restore")
        run.finish_original(0)
    finally:
        run.cleanup()
        shutil.rmtree(run.tmp, ignore_errors=True)
