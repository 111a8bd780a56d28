# stasis-check: timeout=60
"""A dump reads an io_uring by moving the program's CQ head and the SQ head back for a
moment, hiding the unreaped CQEs for a 1 ns wait, asking io_uring_register and
io_uring_enter in each thread: none of it may show. The io_uring checkpoint test dumped
with --leave-running goes on untouched: its seven rings' counters, CQEs and pending SQEs
are what they were, and everything it checks after SIGTERM passes."""
from lib.proc import Failure


def check(c):
    run = c.start_test("io_uring")
    run.dump(["--leave-running"])
    if not run.proc or run.proc.poll() is not None:
        raise Failure("the test exited with the dump")
    run.finish_original(0)
    return "the io_uring test passed after a --leave-running dump"
