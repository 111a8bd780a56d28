"""What /proc shows of a process tree that a restore must keep: a snapshot (plain data, JSON
friendly) and a comparison of two snapshots naming every field that differs.

    snap = snapshot(pid)          # the task, its descendants and their threads
    diffs = compare(before, after, allow=statecmp_allow.ALLOW, ctx={...})

A snapshot is a flat dict "WHERE|FIELD|ITEM" -> value string. WHERE is the task ("pid N",
"pid N tid T"), "tree", or a namespace that is not the comparing process's own ("mnt ns
new#1", "user ns new#2", ...); FIELD the class of what differs ("status.SigBlk",
"fdinfo.pos", "maps.prot", ...: the allow-list matches on it); ITEM which one (the fd, the
mapping, the mount). Identities the kernel hands out anew on a restore (pipe, socket and
file inodes, devices of anonymous filesystems, mount ids, peer groups, eventfd ids) are
named by where the walk of the tree meets them first ("pipe@pid 5 fd 3"): two snapshots
agree when the same fds, mappings and tasks point to the same objects, whatever their
numbers. Open file descriptions (shared offsets), fd tables, fs structs, address spaces
and signal handlers shared between processes are grouped with kcmp(2). Namespaces are
"self" when they are the comparing process's own and "new#K" otherwise, K in the order the
walk meets them (the same sharing structure across the tree). Standard library only; what
may differ is in tests/lib/statecmp_allow.py. Kernel io workers (an io_uring's SQPOLL
thread, io-wq workers: PF_IO_WORKER) are left out of thread lists and counts: the kernel
makes them for the rings, new ones after a restore."""
import ctypes
import fcntl
import fnmatch
import functools
import json
import os
import re
import stat

SYS_KCMP = 312  # x86_64
KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM = range(7)
# what processes may share (CLONE_VM, CLONE_FILES, CLONE_FS, CLONE_SIGHAND); not the io
# context or the SysV undo list: kcmp compares their pointers, NULL (none yet) included
KCMP_NAMES = {KCMP_VM: "vm", KCMP_FILES: "files", KCMP_FS: "fs", KCMP_SIGHAND: "sighand"}
# status lines that are counters or the task's run state, never compared (the allow-list
# is for what should be kept but is not; these are not state a restore restores)
STATUS_SKIP = {"State", "VmPeak", "VmSize", "VmLck", "VmPin", "VmHWM", "VmRSS", "RssAnon",
               "RssFile", "RssShmem", "VmData", "VmStk", "VmExe", "VmLib", "VmPTE", "VmSwap",
               "HugetlbPages", "SigQ", "voluntary_ctxt_switches",
               "nonvoluntary_ctxt_switches", "FDSize", "Mems_allowed", "Mems_allowed_list",
               "Cpus_allowed_list", "Name"}
# /proc/PID/stat fields (1-based, man 5 proc) compared; the others are counters and times
STAT_FIELDS = {4: "ppid", 5: "pgrp", 6: "session", 7: "tty_nr", 8: "tpgid", 9: "flags",
               18: "priority", 19: "nice", 20: "num_threads", 38: "exit_signal",
               40: "rt_priority", 41: "policy", 26: "startcode", 27: "endcode",
               28: "startstack", 45: "start_data", 46: "end_data", 47: "start_brk",
               48: "arg_start", 49: "arg_end", 50: "env_start", 51: "env_end",
               52: "exit_code"}
THREAD_STAT_FIELDS = (9, 18, 19, 38, 40, 41)
# PF_* flags of stat worth comparing (the rest are the kernel's bookkeeping), each its own
# field "stat.flags.NAME"
PF_FLAGS = {"PF_FORKNOEXEC": 0x40, "PF_MCE_PROCESS": 0x80, "PF_NPROC_EXCEEDED": 0x1000,
            "PF_RANDOMIZE": 0x400000, "PF_NO_SETAFFINITY": 0x4000000,
            "PF_MCE_EARLY": 0x8000000}
PROC_FILES = ("oom_score_adj", "loginuid", "sessionid", "personality", "timerslack_ns",
              "coredump_filter", "comm")
NS_TYPES = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
            "time_for_children", "user", "uts")
ID_RE = re.compile(r"^(\w+):\[(\d+)\]$")

_libc = None


def _kcmp(pid1, pid2, kind, a=0, b=0):
    """kcmp(2): 0 equal, 1/2 ordered, None when it fails (no permission, gone)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    r = _libc.syscall(ctypes.c_long(SYS_KCMP), ctypes.c_long(pid1), ctypes.c_long(pid2),
                      ctypes.c_long(kind), ctypes.c_ulong(a), ctypes.c_ulong(b))
    return None if r < 0 else r


def _read(path, binary=False):
    """The whole file (text, or bytes), None if it cannot be read. Raw reads: a snapshot
    reads thousands of small /proc files."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    chunks = []
    try:
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
    except OSError:
        return None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    return data if binary else data.decode(errors="replace")


def _readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def _children(pid):
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        text = _read("/proc/%d/task/%s/children" % (pid, tid))
        if text:
            out += [int(x) for x in text.split()]
    return sorted(set(out))


def tree_pids(pid):
    """pid and its descendants, parents before children, siblings by pid."""
    out, todo, seen = [], [pid], set()
    while todo:
        p = todo.pop(0)
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
        todo += _children(p)
    return out


class Canon:
    """Names for identities that change across a restore, one space per kind ("pipe",
    "dev", "file", ...): "KIND@WHERE", where the walk met it first (e.g. "pipe@pid 5 fd 3"),
    or without a place "KIND#N", the N-th met. Naming by place keeps one change from
    renaming everything met after it."""

    def __init__(self):
        self.ids = {}

    def __call__(self, kind, key, at=None):
        d = self.ids.setdefault(kind, {})
        if key not in d:
            d[key] = "%s@%s" % (kind, at) if at else "%s#%d" % (kind, len(d) + 1)
        return d[key]


class Snap:
    """A snapshot being built: the values and the names given to identities."""

    def __init__(self):
        self.v = {}
        self.canon = Canon()

    def put(self, where, field, item, value):
        self.v["%s|%s|%s" % (where, field, item)] = "" if value is None else str(value)


def _status(text):
    out = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(":")
        out[k] = " ".join(v.split())
    return out


def _stat_fields(text):
    if not text:
        return None
    rest = text[text.rfind(")") + 2:].split()
    # rest[0] is field 3 (state)
    return {i: rest[i - 3] for i in range(3, len(rest) + 3)}


def _dev_canon(s, dev, at):
    """Real block devices are kept (the same disk), anonymous ones (major 0: tmpfs, proc,
    pipefs, ...) are named by where they were met first: a recreated tmpfs gets a new
    number."""
    maj, _, mnr = dev.partition(":")
    try:
        if int(maj, 16) != 0:
            return dev
    except ValueError:
        return dev
    return s.canon("dev", dev, at)


def _mountinfo(s, where, text, put=True):
    """The mount tree: each mount keyed by its mount point and its level in a stack of
    mounts on one point ("/dev/pts@1" is on top of "/dev/pts@0"); parent, root, options,
    type, source, propagation (peer groups by where they are met first), device. Returns
    {mount id: key} (fdinfo's mnt_id is compared as the key)."""
    mounts = {}
    for line in (text or "").splitlines():
        pre, _, post = line.partition(" - ")
        f = pre.split()
        g = post.split()
        if len(f) < 6 or len(g) < 3:
            continue
        mounts[f[0]] = {"parent": f[1], "dev": f[2], "root": f[3], "point": f[4],
                        "opts": f[5], "optional": f[6:], "type": g[0], "source": g[1],
                        "super": g[2]}
    keys = {}

    def key(mid, depth=0):
        if mid in keys:
            return keys[mid]
        m = mounts.get(mid)
        if m is None or depth > 64:
            return "(outside)"
        level = 0
        p = mounts.get(m["parent"])
        if p is not None and p["point"] == m["point"] and m["parent"] != mid:
            level = int(key(m["parent"], depth + 1).rpartition("@")[2]) + 1
        keys[mid] = "%s@%d" % (m["point"], level)
        return keys[mid]
    for mid in mounts:
        key(mid)
    all_keys = set(keys.values())
    for mid in sorted(mounts, key=lambda x: keys[x]) if put else ():
        m = mounts[mid]
        k = keys[mid]
        prop = []
        for o in m["optional"]:
            tag, _, val = o.partition(":")
            if tag in ("shared", "master", "propagate_from"):
                prop.append("%s:%s" % (tag, s.canon("peer", val, "%s %s" % (where, k))))
            else:
                prop.append(o)
        s.put(where, "mountinfo.mount", k, "present")
        s.put(where, "mountinfo.parent", k, key(m["parent"]))
        s.put(where, "mountinfo.root", k, m["root"])
        s.put(where, "mountinfo.opts", k, m["opts"])
        s.put(where, "mountinfo.propagation", k, " ".join(prop))
        s.put(where, "mountinfo.type", k, m["type"])
        s.put(where, "mountinfo.source", k, m["source"])
        s.put(where, "mountinfo.super", k, m["super"])
        level = k.rpartition("@")
        hidden = "%s@%d" % (level[0], int(level[2]) + 1) in all_keys
        # a mount under another on the same point is hidden: its device is compared apart
        s.put(where, "mountinfo.hidden_dev" if hidden else "mountinfo.dev", k,
              _dev_canon(s, m["dev"], "%s %s" % (where, k)))
    return {mid: keys[mid] for mid in mounts}


class _Ctx:
    def __init__(self):
        self.self_ns = {t: _readlink("/proc/self/ns/" + t) for t in NS_TYPES}
        self.mnt_keys = {}     # mnt ns link -> {mount id: key}
        self.ns_done = set()
        self.sockets = {}      # net ns link -> {inode: description}


def _ns_links(s, c, pid, where):
    links = {}
    for t in NS_TYPES:
        ln = _readlink("/proc/%d/ns/%s" % (pid, t))
        if ln is None:
            continue
        links[t] = ln
        s.put(where, "ns." + t, "", _ns_label(s, c, t, ln))
    return links


def _ns_label(s, c, t, ln):
    """"self" for the comparing process's own namespace, "new#K" for the K-th other one
    of that type met in the walk."""
    t = t.replace("_for_children", "")
    if ln == c.self_ns.get(t):
        return "self"
    return s.canon("ns-" + t, ln).replace("ns-%s#" % t, "new#")


CLONE_NEWUTS, CLONE_NEWIPC = 0x04000000, 0x08000000
# what a process sees of a namespace it joins (sysctls and /proc/sysvipc show the reader's)
NS_FILES = {
    "uts": (CLONE_NEWUTS, ("/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname")),
    "ipc": (CLONE_NEWIPC, ("/proc/sysvipc/shm", "/proc/sysvipc/msg", "/proc/sysvipc/sem",
                           "/proc/sys/kernel/shmmax", "/proc/sys/kernel/shmall",
                           "/proc/sys/kernel/shmmni", "/proc/sys/kernel/shm_rmid_forced",
                           "/proc/sys/kernel/msgmax", "/proc/sys/kernel/msgmnb",
                           "/proc/sys/kernel/msgmni", "/proc/sys/kernel/sem",
                           "/proc/sys/fs/mqueue/queues_max", "/proc/sys/fs/mqueue/msg_max",
                           "/proc/sys/fs/mqueue/msgsize_max",
                           "/proc/sys/fs/mqueue/msg_default",
                           "/proc/sys/fs/mqueue/msgsize_default")),
}
# /proc/sysvipc columns that are times or memory use, not state
SYSVIPC_SKIP = {"atime", "dtime", "ctime", "stime", "rtime", "otime", "rss", "swap"}


def _ns_read(pid, t):
    """{file: text} of NS_FILES[t] as a process in pid's namespace of type t sees them (a
    forked child joins it and sends them back), None if it could not join."""
    flag, files = NS_FILES[t]
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open("/proc/%d/ns/%s" % (pid, t), os.O_RDONLY)
            if libc.setns(fd, flag) != 0:
                os._exit(1)
            data = json.dumps({f: _read(f) for f in files}).encode()
            while data:
                data = data[os.write(w, data):]
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(child, 0)
    if status != 0:
        return None
    return json.loads(b"".join(chunks).decode(errors="replace"))


def _ns_contents(s, where, pid, t):
    """What a process in the namespace sees: the UTS names, the SysV IPC objects (but
    their times) and the IPC limits."""
    files = _ns_read(pid, t)
    if files is None:
        s.put(where, "ns.unreadable", "", "yes")
        return
    for path, text in sorted(files.items()):
        name = path.rpartition("/")[2]
        if not path.startswith("/proc/sysvipc/"):
            s.put(where, "ns." + name, "", " ".join((text or "").split()))
            continue
        lines = (text or "").splitlines()
        if not lines:
            continue
        head = lines[0].split()
        for line in lines[1:]:
            f = dict(zip(head, line.split()))
            ident = f.get("shmid") or f.get("msqid") or f.get("semid")
            s.put(where, "ns.sysvipc." + name, "%s id %s" % (name, ident),
                  " ".join("%s=%s" % (k, v) for k, v in f.items() if k not in SYSVIPC_SKIP))


def _net_contents(s, where, pid):
    """What /proc/PID/net shows of a network namespace: its interfaces (names, not
    counters), IPv6 addresses, IPv4 and IPv6 routes (not their use counters)."""
    dev = _read("/proc/%d/net/dev" % pid) or ""
    s.put(where, "net.dev", "", " ".join(sorted(
        ln.split(":")[0].strip() for ln in dev.splitlines()[2:])))
    for line in (_read("/proc/%d/net/if_inet6" % pid) or "").splitlines():
        f = line.split()
        if len(f) == 6:
            s.put(where, "net.if_inet6", "%s %s" % (f[5], f[0]), " ".join(f[1:5]))
    routes = (_read("/proc/%d/net/route" % pid) or "").splitlines()
    if routes:
        head = routes[0].split()
        for n, line in enumerate(sorted(routes[1:])):
            f = dict(zip(head, line.split()))
            s.put(where, "net.route", "#%d" % (n + 1), " ".join(
                "%s=%s" % (k, v) for k, v in f.items() if k not in ("RefCnt", "Use")))
    seen = {}
    for line in sorted((_read("/proc/%d/net/ipv6_route" % pid) or "").splitlines()):
        f = line.split()
        if len(f) == 10:  # dest plen src plen next metric refcnt use flags dev
            item = "%s/%s %s" % (f[0], f[1], f[9])
            n = seen[item] = seen.get(item, 0) + 1
            s.put(where, "net.ipv6_route", item + ("" if n == 1 else " #%d" % n),
                  " ".join(f[2:6] + f[8:9]))


NS_GET_USERNS, NS_GET_PARENT = 0xb701, 0xb702


def _ns_relative(s, c, pid, t, op):
    """The label of the owning user namespace (NS_GET_USERNS) or of the parent (pid and
    user namespaces, NS_GET_PARENT) of pid's namespace of type t; "" when the kernel does
    not tell (outside our view)."""
    try:
        fd = os.open("/proc/%d/ns/%s" % (pid, t), os.O_RDONLY)
    except OSError:
        return ""
    try:
        rel = fcntl.ioctl(fd, op)
    except OSError:
        return ""
    finally:
        os.close(fd)
    try:
        ln = os.readlink("/proc/self/fd/%d" % rel)
    finally:
        os.close(rel)
    t = ln.split(":")[0]
    return "%s %s" % (t, _ns_label(s, c, t, ln))


def _namespaces(s, c, pid, links):
    """What /proc shows of a namespace the tree has that is not ours, once per namespace:
    its owner (and parent), and per type what /proc shows of it."""
    for t in NS_TYPES:
        ln = links.get(t)
        if ln is None or ln == c.self_ns.get(t) or t.endswith("_for_children") \
                or ("rel", ln) in c.ns_done:
            continue
        c.ns_done.add(("rel", ln))
        where = "%s ns %s" % (t, _ns_label(s, c, t, ln))
        if t != "user":
            s.put(where, "ns.owner", "", _ns_relative(s, c, pid, t, NS_GET_USERNS))
        if t in ("user", "pid"):
            s.put(where, "ns.parent", "", _ns_relative(s, c, pid, t, NS_GET_PARENT))
    for t, files in (("user", ("uid_map", "gid_map", "setgroups")),
                     ("time", ("timens_offsets",))):
        ln = links.get(t)
        if ln is None or ln == c.self_ns.get(t) or (t, ln) in c.ns_done:
            continue
        c.ns_done.add((t, ln))
        where = "%s ns %s" % (t, _ns_label(s, c, t, ln))
        for fn in files:
            s.put(where, "ns." + fn, "", " | ".join(
                " ".join(x.split()) for x in (_read("/proc/%d/%s" % (pid, fn)) or "")
                .splitlines()))
    for t in ("uts", "ipc", "net"):
        ln = links.get(t)
        if ln is None or ln == c.self_ns.get(t) or (t, ln) in c.ns_done:
            continue
        c.ns_done.add((t, ln))
        where = "%s ns %s" % (t, _ns_label(s, c, t, ln))
        if t == "net":
            _net_contents(s, where, pid)
        else:
            _ns_contents(s, where, pid, t)


SMAPS_RE = re.compile(r"^(?:([0-9a-f]+-[0-9a-f]+) (\S+) (\S+) (\S+) (\d+) *(.*)|"
                      r"VmFlags: *(.*))$", re.M)


def _map_entries(text):
    """The areas of smaps text: [start, end, prot, off, dev, ino, path, vmflags], adjacent
    ones that differ only in where the kernel split them joined: it merges neighbours
    with the same attributes unless their anonymous memory came by different ways (a
    fork's copy next to a later mapping), which a restore cannot rebuild and no program
    sees but in /proc (the split point); anonymous ones, or of one file at contiguous
    offsets."""
    out, cur = [], None
    for m in SMAPS_RE.finditer(text):
        if m.group(1) is None:
            if cur is not None:
                cur[7] = " ".join(sorted(m.group(7).split()))
            continue
        lo, hi = (int(x, 16) for x in m.group(1).split("-"))
        prot, off, dev, ino, path = m.group(2, 3, 4, 5, 6)
        cur = [lo, hi, prot, off, dev, ino, path.strip(), ""]
        out.append(cur)
    joined = []
    for e in out:
        p = joined[-1] if joined else None
        if (p and p[1] == e[0] and p[2] == e[2] and p[4:8] == e[4:8] and
                (e[5] == "0" or int(e[3], 16) == int(p[3], 16) + (p[1] - p[0]))):
            p[1] = e[1]
            continue
        joined.append(e)
    return joined


def _maps(s, where, pid):
    """Every mapping of /proc/PID/smaps (only its header line and VmFlags: the rest are
    counters)."""
    text = _read("/proc/%d/smaps" % pid)
    if text is None:
        s.put(where, "maps.unreadable", "", "yes")
        return
    v = s.v
    for lo, hi, prot, off, dev, ino, path, vmflags in _map_entries(text):
        rng = "%08x-%08x" % (lo, hi)  # (as smaps writes it)
        v["%s|maps.vmflags|%s" % (where, rng)] = vmflags
        v["%s|maps.prot|%s" % (where, rng)] = prot
        v["%s|maps.offset|%s" % (where, rng)] = off
        v["%s|maps.path|%s" % (where, rng)] = path
        # a private MAP_HUGETLB area's file is the kernel's bookkeeping of that mmap (each
        # mmap makes one, fork shares it): no program sees it but as an inode number,
        # like the anonymous memory it stands for
        if ino == "0" or (prot.endswith("p") and path == "/anon_hugepage (deleted)"):
            v["%s|maps.file|%s" % (where, rng)] = ""
            continue
        at = "%s map %s" % (where, rng)
        dev = _dev_canon(s, dev, at)
        v["%s|maps.file|%s" % (where, rng)] = s.canon("file", (dev, ino), at) + " on " + dev
        try:
            mode = os.lstat("/proc/%d/map_files/%x-%x" % (pid, lo, hi)).st_mode
            v["%s|maps.map_files_mode|%s" % (where, rng)] = "%o" % stat.S_IMODE(mode)
        except OSError:
            pass


def _fd_target(s, target, at):
    m = ID_RE.match(target or "")
    if m and m.group(1) in ("pipe", "socket"):
        return "%s:%s" % (m.group(1), s.canon(m.group(1), m.group(2), at))
    if m:
        return "%s:%s" % (m.group(1), s.canon("ns-" + m.group(1), m.group(2)))
    return target


def _fdinfo(s, c, where, fd, text, mnt_keys):
    """Every fdinfo line; mnt_id through the mount tree, inode numbers by place. Lines
    of a repeated key (epoll targets, inotify marks, locks) are compared as a sorted
    list: the kernel lists them in an order of its own."""
    at = "%s fd %s" % (where, fd)
    rep = {}
    for line in (text or "").splitlines():
        if line.startswith(("inotify ", "fanotify ")):
            k, _, v = line.partition(" ")  # "inotify wd:1 ino:.. sdev:.. mask:.."
        else:
            k, _, v = line.partition(":")
        k = k.strip()
        v = v.strip()
        if k == "mnt_id":
            v = mnt_keys.get(v, "mnt?" + s.canon("mnt", v, at))
        elif k == "ino":
            continue  # the fd's inode: fd.file has it (with the device)
        elif k == "eventfd-id":
            v = s.canon("eventfd", v, at)
        elif k in ("SqThreadCpu", "SqTotalTime", "SqWorkTime"):
            continue  # an io_uring's SQPOLL thread: where it ran, for how long
        elif k == "SqThread":
            v = "none" if v == "-1" else "a thread"  # a new one after a restore
        elif k == "lock":
            # "1: POSIX  ADVISORY  WRITE PID MAJ:MIN:INO START END"
            p = v.split()
            if len(p) >= 7:  # the first is the lock's place in /proc/locks
                p = p[1:5] + [_lock_file(s, p[5], at)] + p[6:]
            v = " ".join(p)
        elif k in ("inotify", "fanotify", "tfd"):
            v = _ino_sdev(s, v, at)
            # a fanotify mount mark: the mount (hex id) through the mount tree
            v = " ".join("mnt_id:" + mnt_keys.get(str(int(x[7:], 16)), "mnt?" + s.canon(
                "mnt", str(int(x[7:], 16)), at)) if re.match(r"mnt_id:[0-9a-f]+$", x)
                else x for x in v.split())
        rep.setdefault(k, []).append(v)
    if rep.get("it_interval", ["(0, 0)"]) != ["(0, 0)"]:
        # a periodic timerfd: the time to its next expiry is always below the interval,
        # and (0, 0) between an expiry and the read that forwards it
        rep["it_value"] = ["periodic"]
    for k, vals in rep.items():
        for n, v in enumerate(sorted(vals)):
            s.put(where, "fdinfo." + k, "fd %s%s" % (fd, "" if n == 0 else " #%d" % (n + 1)),
                  v)


def _lock_file(s, text, at):
    """"MAJ:MIN:INO" of a lock (hex device) -> the file's name as fd.file has it."""
    p = text.split(":")
    if len(p) != 3:
        return text
    dev = _dev_canon(s, "%s:%s" % (p[0], p[1]), at)
    return s.canon("file", (dev, p[2]), at)


def _ino_sdev(s, v, at):
    """"ino:HEX sdev:HEX" (epoll targets, inotify/fanotify marks) -> the file's ordinal, as
    fd.file and maps.file name it; the file handle (it has the inode) dropped."""
    f = dict(x.split(":", 1) for x in v.split() if ":" in x)
    ino, sdev = f.get("ino"), f.get("sdev")
    rest = [x for x in v.split() if x.split(":", 1)[0] not in ("ino", "sdev", "f_handle")]
    if ino is not None and sdev is not None:
        try:
            d = int(sdev, 16)
            dev = _dev_canon(s, "%02x:%02x" % (d >> 20, d & 0xfffff), at)
            rest.append("file:" + s.canon("file", (dev, str(int(ino, 16))), at))
        except ValueError:
            pass
    return " ".join(rest)


TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def _sockets(pid):
    """{inode: description} of the sockets of pid's network namespace that /proc/PID/net
    lists: unix (type, state, flags, path), tcp/udp v4/v6 (addresses, state; not queues)."""
    out = {}
    text = _read("/proc/%d/net/unix" % pid) or ""
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 7:
            out[f[6]] = "unix type=%s state=%s flags=%s path=%s" % (
                f[4], f[5], f[3], f[7] if len(f) > 7 else "")
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        text = _read("/proc/%d/net/%s" % (pid, proto)) or ""
        for line in text.splitlines()[1:]:
            f = line.split()
            if len(f) >= 10:
                st = TCP_STATES.get(f[3], f[3]) if proto.startswith("tcp") else f[3]
                out[f[9]] = "%s local=%s remote=%s state=%s uid=%s" % (
                    proto, f[1], f[2], st, f[7])
    return out


def _fds(s, c, where, pid, mnt_keys, files, netns):
    d = "/proc/%d/fd" % pid
    try:
        fds = sorted(os.listdir(d), key=int)
    except OSError:
        s.put(where, "fd.unreadable", "", "yes")
        return
    for fd in fds:
        target = _readlink("%s/%s" % (d, fd))
        if target is None:
            continue
        at = "%s fd %s" % (where, fd)
        try:
            st = os.stat("%s/%s" % (d, fd))
            ident = (_dev_canon(s, "%02x:%02x" % (os.major(st.st_dev), os.minor(st.st_dev)),
                                at), str(st.st_ino))
        except OSError:
            st = None
            ident = None
        s.put(where, "fd", "fd " + fd, _fd_target(s, target, at))
        m = ID_RE.match(target)
        if m and m.group(1) == "socket":
            if netns not in c.sockets:
                c.sockets[netns] = _sockets(pid)
            desc = c.sockets[netns].get(m.group(2))
            if desc is None and netns != c.self_ns.get("net"):
                if "self" not in c.sockets:
                    c.sockets["self"] = _sockets(os.getpid())
                desc = c.sockets["self"].get(m.group(2))
                # a socket of another network namespace than its task's
                desc = "?" if desc is None else desc + " (in the comparing process's net ns)"
            s.put(where, "fd.socket", "fd " + fd, desc or "?")
        if ident is not None and not target.startswith(("pipe:", "socket:")):
            s.put(where, "fd.file", "fd " + fd, s.canon("file", ident, at))
        if st is not None:
            files.append((ident, pid, int(fd), where))
        _fdinfo(s, c, where, fd, _read("/proc/%d/fdinfo/%s" % (pid, fd)), mnt_keys)


def _group_by_kcmp(items, kind_cmp):
    """items sorted into groups of equal objects by kcmp; returns a list of groups, or None
    when kcmp fails."""
    failed = []

    def cmp(a, b):
        r = kind_cmp(a, b)
        if r is None:
            failed.append(1)
            return 0
        return 0 if r == 0 else (-1 if r == 1 else 1)
    items = sorted(items, key=functools.cmp_to_key(cmp))
    if failed:
        return None
    groups = []
    for it in items:
        if groups and cmp(groups[-1][0], it) == 0:
            groups[-1].append(it)
        else:
            groups.append([it])
    return groups


def _sharing(s, pids, files):
    """Which processes share an address space, fd table, fs struct, ...; which fds share
    one open file description (their offset and flags)."""
    for kind, name in KCMP_NAMES.items():
        if len(pids) < 2:
            break
        groups = _group_by_kcmp(pids, lambda a, b: _kcmp(a, b, kind))
        if groups is None:
            s.put("tree", "share." + name, "", "kcmp failed")
            continue
        for g in groups:
            if len(g) > 1:
                s.put("tree", "share." + name, " ".join(map(str, sorted(g))), "shared")
    by_ident = {}
    for ident, pid, fd, where in files:
        by_ident.setdefault(ident, []).append((pid, fd))
    for ident, fl in by_ident.items():
        if len(fl) < 2:
            continue
        groups = _group_by_kcmp(fl, lambda a, b: _kcmp(a[0], b[0], KCMP_FILE, a[1], b[1]))
        if groups is None:
            continue
        for g in groups:
            if len(g) > 1:
                s.put("tree", "share.file", " ".join("%d:%d" % x for x in sorted(g)),
                      "one open file")


def _locks(s, pids):
    """/proc/locks lines of the tree's pids (the lock id and the inode as ordinals)."""
    text = _read("/proc/locks") or ""
    want = set(str(p) for p in pids)
    per_pid = {}
    for line in text.splitlines():
        f = line.split()
        if "->" in f:
            continue  # a waiter
        if len(f) >= 8 and f[4] in want:
            f[5] = _lock_file(s, f[5], "locks pid %s" % f[4])
            per_pid.setdefault(int(f[4]), []).append(" ".join(f[1:4] + f[5:]))
    for pid, locks in sorted(per_pid.items()):
        for n, v in enumerate(sorted(locks)):
            s.put("tree", "locks", "pid %d #%d" % (pid, n + 1), v)


PF_IO_WORKER = 0x10


def _io_workers(pid):
    """The kernel io workers among pid's threads (an io_uring's SQPOLL thread, io-wq
    workers): made by the kernel for the rings, new ones after a restore."""
    out = set()
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tids:
        sf = _stat_fields(_read("/proc/%d/task/%s/stat" % (pid, t)))
        if sf and sf.get(9) is not None and int(sf[9]) & PF_IO_WORKER:
            out.add(int(t))
    return out


def _task(s, where, pid, tid, thread, root=False):
    """status, stat and comm of a process (thread=False) or of one of its threads. The
    root's parent is outside the tree: field "root.ppid" (allowed where the restore gives
    the root another parent). A process's thread count leaves out its io workers."""
    base = "/proc/%d/task/%d" % (pid, tid) if thread else "/proc/%d" % pid
    st = _status(_read(base + "/status"))
    iow = 0 if thread else len(_io_workers(pid))
    if iow and st.get("Threads", "").isdigit():
        st["Threads"] = str(int(st["Threads"]) - iow)
    for k, v in st.items():
        if k in STATUS_SKIP or (thread and k in ("Tgid", "PPid", "TracerPid", "Threads")):
            continue
        if k == "PPid" and root:
            s.put(where, "root.ppid", "", v)
            continue
        s.put(where, "status." + k, "", v)
    state = st.get("State", "?")[:1]
    s.put(where, "status.stopped", "", "yes" if state in ("T", "t") else "no")
    s.put(where, "status.zombie", "", "yes" if state in ("Z", "X") else "no")
    sf = _stat_fields(_read(base + "/stat"))
    if sf:
        for i in (THREAD_STAT_FIELDS if thread else STAT_FIELDS):
            if i == 4 and root:
                continue  # as status.PPid
            v = sf.get(i)
            if i == 20 and iow and v is not None:
                v = str(int(v) - iow)
            if i == 9 and v is not None:
                for name, bit in PF_FLAGS.items():
                    s.put(where, "stat.flags." + name, "", "yes" if int(v) & bit else "no")
                continue
            s.put(where, "stat." + STAT_FIELDS[i], "", v)
    s.put(where, "comm", "", (_read(base + "/comm") or "").strip())


def snapshot(pid, with_sharing=True):
    """The snapshot of pid's tree (see the module's docstring)."""
    s = Snap()
    c = _Ctx()
    pids = tree_pids(pid)
    s.put("tree", "tree.pids", "", " ".join(map(str, pids)))
    files = []
    for p in pids:
        where = "pid %d" % p
        if p != pid:
            s.put("tree", "tree.parent", where,
                  _status(_read("/proc/%d/status" % p)).get("PPid"))
        links = _ns_links(s, c, p, where)
        mntns = links.get("mnt")
        if mntns not in c.mnt_keys:
            # the runner's own mount namespace is the host's: others change it at will
            label = _ns_label(s, c, "mnt", mntns)
            c.mnt_keys[mntns] = _mountinfo(s, "mnt ns " + label,
                                           _read("/proc/%d/mountinfo" % p),
                                           put=(label != "self"))
        _namespaces(s, c, p, links)
        _task(s, where, p, p, False, root=(p == pid))
        try:
            tids = sorted(set(int(t) for t in os.listdir("/proc/%d/task" % p)) -
                          _io_workers(p))
        except OSError:
            tids = []
        s.put(where, "threads", "", " ".join(map(str, tids)))
        for t in tids:
            if t != p:
                _task(s, "pid %d tid %d" % (p, t), p, t, True)
        for fn in PROC_FILES[:-1]:
            s.put(where, fn, "", (_read("/proc/%d/%s" % (p, fn)) or "").strip())
        for line in (_read("/proc/%d/ksm_stat" % p) or "").splitlines():
            k, _, v = line.partition(":")
            if k in ("ksm_merge_any", "ksm_mergeable"):  # prctl PR_SET_MEMORY_MERGE, madvise
                s.put(where, k, "", v.strip())
        lim = _read("/proc/%d/limits" % p) or ""
        for line in lim.splitlines()[1:]:
            name = line[:26].strip()
            s.put(where, "limits", name, " ".join(line[26:].split()))
        s.put(where, "cgroup", "", " | ".join((_read("/proc/%d/cgroup" % p) or "")
                                              .splitlines()))
        for fn in ("environ", "cmdline", "auxv"):
            data = _read("/proc/%d/%s" % (p, fn), binary=True)
            s.put(where, fn, "", None if data is None else
                  (data.hex() if fn == "auxv" else repr(data)[2:-1]))
        for fn in ("cwd", "root", "exe"):
            s.put(where, fn, "", _readlink("/proc/%d/%s" % (p, fn)))
        s.put(where, "timers", "", " | ".join(" ".join(x.split()) for x in (
            _read("/proc/%d/timers" % p) or "").splitlines()))
        _maps(s, where, p)
        _fds(s, c, where, p, c.mnt_keys.get(mntns, {}), files, links.get("net"))
    _locks(s, pids)
    if with_sharing:
        _sharing(s, pids, files)
    return s.v


def save(path, pid, state):
    """Writes a snapshot as scripts/statecmp.py does (its `compare` reads it back)."""
    with open(path, "w") as f:
        json.dump({"statecmp": 1, "pid": pid, "state": state}, f, indent=0, sort_keys=True)
        f.write("\n")


def _split(key):
    where, field, item = key.split("|", 2)
    return where, field, item


def allowed(allow, where, field, item, a_val, b_val, ctx, zombie=False):
    """The allow-list entry (tests/lib/statecmp_allow.py) that covers this difference in
    this context (test, flavor, mode, stage), or None."""
    for a in allow:
        pats = a["field"] if isinstance(a["field"], (list, tuple)) else [a["field"]]
        if not any(fnmatch.fnmatchcase(field, p) for p in pats):
            continue
        if a.get("absent") and a_val is not None and b_val is not None:
            continue
        if a.get("added") and a_val is not None:
            continue
        if a.get("item") and not any(fnmatch.fnmatchcase(item, p) for p in (
                a["item"] if isinstance(a["item"], (list, tuple)) else [a["item"]])):
            continue
        if a.get("zombie") and not zombie:
            continue
        if a.get("where") and not fnmatch.fnmatchcase(where, a["where"]):
            continue
        if a.get("both") and not all(v is not None and re.search(a["both"], v)
                                     for v in (a_val, b_val)):
            continue
        if a.get("values") and not (a_val is not None and b_val is not None and
                                    a["values"](a_val, b_val)):
            continue
        ok = True
        for k in ("test", "flavor", "mode", "stage"):
            pat = a.get(k)
            if pat is None:
                continue
            pats = pat if isinstance(pat, (list, tuple)) else [pat]
            if not any(fnmatch.fnmatchcase(ctx.get(k, "") or "", p) for p in pats):
                ok = False
        if ok:
            return a
    return None


def compare(before, after, allow=(), ctx=None):
    """[(where, field, item, before, after, allow entry or None)] for every key whose value
    differs or that one snapshot lacks (value None)."""
    ctx = ctx or {}
    out = []
    for key in sorted(set(before) | set(after)):
        a = before.get(key)
        b = after.get(key)
        if a == b:
            continue
        where, field, item = _split(key)
        zkey = "%s|status.zombie|" % where.partition(" tid ")[0]
        zombie = before.get(zkey) == "yes"
        out.append((where, field, item, a, b, allowed(allow, where, field, item, a, b, ctx,
                                                      zombie)))
    return out


def describe(d, width=120):
    where, field, item, a, b, entry = d

    def short(v):
        if v is None:
            return "(absent)"
        return v if len(v) <= width else v[:width] + "..."
    return "%s: %s%s: %s -> %s" % (where, field, " [%s]" % item if item else "",
                                   short(a), short(b))
