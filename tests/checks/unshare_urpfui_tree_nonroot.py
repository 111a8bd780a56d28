# stasis-check: timeout=30 needs=host-root
# stasis-check: why=to run it as stasis-test
"""unshare_urpfui_tree entirely as stasis-test, as unshare_urpfui_nonroot does."""
from checks.unshare_urpfui_nonroot import nonroot


def check(c):
    return nonroot(c, whole=True)
