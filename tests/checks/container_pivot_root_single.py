# stasis-check: timeout=30 needs=host-root
# stasis-check: why=(mounts, pivot_root)
"""container_pivot_root with one process (the init execs a sleep holding the same
fds): nothing is shared, each path is opened in the view it was dumped in."""
from checks.container_pivot_root import container


def check(c):
    return container(c, single=True)
