# stasis-check: timeout=30 needs=host-root
# stasis-check: why=to run it as stasis-test
"""unshare_urpfui entirely as stasis-test (unshare maps it to root inside) with a private
copy of stasis holding cap_checkpoint_restore+ep: the same checks without pins; first
--pin-ns must be refused at once (one line naming CAP_SYS_ADMIN), with no process
started and no file created."""
from lib.proc import Skip
from lib.users import NONROOT_USER, ensure_user

from checks.unshare_urpfui import unshare_counter


def nonroot(c, whole=False):
    pw, reason = ensure_user()
    if reason:
        raise Skip(reason)
    return unshare_counter(c, (pw.pw_uid, pw.pw_gid, NONROOT_USER), whole)


def check(c):
    return nonroot(c)
