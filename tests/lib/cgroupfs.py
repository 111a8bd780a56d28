"""The host's cgroup hierarchies for the checks that make cgroups (cgroup_props,
cgroup_root, thread_cgroup): the files' values, and removing what a check made."""
import os
import time

ROOT = "/sys/fs/cgroup"


def write(path, value):
    with open(path, "w") as f:
        f.write(value)


def read(path):
    with open(path) as f:
        return f.read().strip()


def rmdirs(dirs):
    """Remove the cgroups @dirs (deepest first), waiting a little for tasks being reaped."""
    for d in sorted(dirs, key=len, reverse=True):
        for _ in range(100):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)
