"""Namespace files (nsfs) and mounts: what a pin is, the mounts below a directory."""
import fcntl
import os
import subprocess
import time

from lib.proc import kill_pid, run_cmd

NS_GET_NSTYPE = 0xb703  # _IO(0xb7, 0x3), linux/nsfs.h
CLONE_FLAG = {"uts": 0x04000000, "ipc": 0x08000000, "user": 0x10000000, "pid": 0x20000000,
              "net": 0x40000000, "mnt": 0x00020000, "time": 0x00000080,
              "cgroup": 0x02000000}


def nsfs_type(path):
    """The CLONE_NEW* type of an nsfs file (NS_GET_NSTYPE), or None if it is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        return None
    finally:
        os.close(fd)


NS_GET_MNTNS_ID = 0x8008b705  # _IOR(0xb7, 0x5, __u64), linux/nsfs.h (6.8)


def mntns_id(path):
    """The id of the mount namespace of an nsfs file (0 if the kernel cannot say)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        return int.from_bytes(fcntl.ioctl(fd, NS_GET_MNTNS_ID, bytes(8)), "little")
    except OSError:
        return 0
    finally:
        os.close(fd)


def cpu_with_older_mntns_ids():
    """A CPU on which a new mount namespace gets an id below ours, or None. Ids come from
    per-CPU batches on 6.18, and the kernel lets a mount namespace be pinned only from one
    with a smaller id: a restore on such a CPU must work around it."""
    mine = mntns_id("/proc/self/ns/mnt")
    for cpu in range(os.cpu_count() or 1):
        p = subprocess.Popen(["taskset", "-c", str(cpu), "unshare", "-m", "sleep", "5"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 5
            new = 0
            while time.monotonic() < deadline and p.poll() is None:
                try:
                    if open("/proc/%d/comm" % p.pid).read().strip() == "sleep":
                        new = mntns_id("/proc/%d/ns/mnt" % p.pid)
                        break
                except OSError:
                    pass
                time.sleep(0.01)
        finally:
            kill_pid(p.pid)
            p.wait(timeout=10)
        if new and mine and new < mine:
            return cpu
    return None


def mounts_under(d):
    """Mount points at or below directory d (deepest first), from our mountinfo."""
    d = os.path.realpath(d)
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for ln in f:
                mp = ln.split()[4].encode().decode("unicode_escape")
                if mp == d or mp.startswith(d + "/"):
                    out.append(mp)
    except OSError:
        pass
    return sorted(out, key=len, reverse=True)


def umount_under(d):
    """Unmounts (lazily, by path) everything mounted at or below d; returns what was."""
    found = mounts_under(d)
    for mp in found:
        run_cmd(["umount", "-l", mp], 10)
    return found

