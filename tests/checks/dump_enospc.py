# stasis-check: timeout=60 needs=root
# stasis-check: why=(mounts a tmpfs)
"""A dump of a 64 MiB process into a full filesystem (an 8 MiB tmpfs the check mounts)
fails with one line naming the image directory and "No space left on device"; the process
runs on untouched (not stopped, not traced, its blocked signals as before) and nothing is
left on the tmpfs (no temporary directory, no partial image)."""
from checks._failsafe import expect_storage_failure, mount_tmpfs, umount


def check(c):
    mnt = mount_tmpfs(c, "enospc", "size=8m")
    try:
        return expect_storage_failure(c, mnt, 64, "No space left on device")
    finally:
        umount(c, mnt)
