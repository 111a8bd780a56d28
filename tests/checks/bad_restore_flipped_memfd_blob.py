# stasis-check: timeout=30
"""A byte flipped in the middle of the contents of a memfd in blobs.img (a dump of
file_memfd): the restore child filling the new memfd finds the chunk's checksum wrong.
One line naming blobs.img, the memfd and the checksum; no process left, and no file left
in the test's directory."""
import os
import shutil

from lib.proc import Failure


def check(c):
    run = c.start_test("file_memfd")
    try:
        run.dump()
        run.check_original_gone()
    finally:
        run.cleanup()
    try:
        d = os.path.join(c.tmp, "flip-memfd-blob")
        shutil.copytree(run.img, d)
        path = os.path.join(d, "blobs.img")
        if not os.path.exists(path) or os.path.getsize(path) <= 4096 + 64 * 1024:
            raise Failure("the dump of file_memfd has no blobs.img with its 70000-byte "
                          "memfd (files: %s)" % " ".join(sorted(os.listdir(d))))
        before = sorted(os.listdir(run.cwd))
        c.flip(path, 4096 + (os.path.getsize(path) - 4096) // 2)
        line = c.expect_failure(c.restore_argv(d),
                                "restore with a corrupted memfd in blobs.img", pid=run.pid)
        if "blobs.img" not in line or "checksum" not in line or "memfd stasis-test" not in line:
            raise Failure("the error does not name the damaged memfd: %r" % line)
        after = sorted(os.listdir(run.cwd))
        if after != before:
            raise Failure("the failed restore left files behind: %s" % after)
        return line
    finally:
        shutil.rmtree(run.tmp, ignore_errors=True)
