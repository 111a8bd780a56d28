# stasis-check: timeout=30 needs=root
# stasis-check: why=(unshare -U maps root, --pin-ns mounts)
"""unshare_urpfui dumped by unshare's own pid (unshare in the new user/mount/UTS/IPC
namespaces, outside the pid namespace; the counter its child): the restored unshare has
the counter as its only child; pins user/mnt/uts/ipc-UNSHARE and pid-COUNTER."""
from checks.unshare_urpfui import unshare_counter


def check(c):
    return unshare_counter(c, whole=True)
