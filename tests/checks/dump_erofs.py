# stasis-check: timeout=60 needs=root
# stasis-check: why=(mounts a tmpfs)
"""A dump into a read-only filesystem (a tmpfs the check mounts read-only) fails with one
line naming the image directory and "Read-only file system"; the process runs on
untouched (not stopped, not traced, its blocked signals as before) and nothing is left."""
from checks._failsafe import expect_storage_failure, mount_tmpfs, umount


def check(c):
    mnt = mount_tmpfs(c, "erofs", "ro,size=8m")
    try:
        return expect_storage_failure(c, mnt, 16, "Read-only file system")
    finally:
        umount(c, mnt)
