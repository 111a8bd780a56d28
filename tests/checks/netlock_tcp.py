# stasis-check: timeout=90 needs=root
# stasis-check: why=(mounts a tmpfs, inspects nftables)
"""The network lock (issue 11). A process holding 64 MiB and a TCP connection to a peer
the check holds (on loopback) is dumped into an 8 MiB tmpfs, a dump that fails whatever
stasis thinks of TCP sockets (No space left on device, or today's refusal of the socket).
An LD_PRELOAD shim (tests/tools/nft_pause.so) stops stasis right after it installed the
lock: the table `inet stasis-lock-PID` exists, and the peer's data is dropped, not
answered with a reset (its socket stays ESTABLISHED with the data unacknowledged, where
a frozen tree's kernel would acknowledge it at once). Then the dump goes on and fails:
the table is gone and the connection works again both ways (the peer's data arrives,
the answer comes back). `nft monitor` sees the table added and deleted, and a second
failing dump with `--network-lock none` changes no table at all. A third dump is killed
(SIGKILL) while it holds the lock: the tree runs on but its table stays, until `stasis
gc` removes the temporary directory and, with it, the lock it records."""
import errno
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from checks._failsafe import mount_tmpfs, umount
from lib.proc import Failure, Skip, kill_pid, proc_stat, run_cmd

TCP_ESTABLISHED = 1
SIOCOUTQ = 0x5411

# the tree: @mib MiB of memory, one connection to 127.0.0.1:PORT, echoes upper-cased
TREE = """
import os, socket, sys
b = bytearray(os.urandom(1 << 20)) * int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
with open(sys.argv[3], "w") as f:
    f.write("ready\\n")
while True:
    d = s.recv(4096)
    if not d:
        break
    s.sendall(d.upper())
"""


class Monitor:
    """`nft monitor WHAT` in the background, its lines collected; synchronized with a
    table of the check's own (added and deleted) so that no event is missed."""

    def __init__(self, c, what=("tables",)):
        self.c = c
        self.lines = []
        self.p = subprocess.Popen(["nft", "monitor"] + list(what), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        self.n = 0

    def _read(self):
        for ln in self.p.stdout:
            self.lines.append(ln.strip())

    def sync(self):
        """Every event before this call is in self.lines once it returns. A table of the
        check's own is added and deleted until the monitor reports it (the first ones
        may come before it listens)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self.n += 1
            name = "netlockcheck-sync-%d-%d" % (os.getpid(), self.n)
            nft(["add", "table", "inet", name])
            nft(["delete", "table", "inet", name])
            wait = time.monotonic() + 2
            while time.monotonic() < wait:
                if any(name in ln and ln.startswith("delete") for ln in list(self.lines)):
                    return
                time.sleep(0.01)
        raise Failure("nft monitor reported none of the check's own tables in 20 s")

    def stop(self):
        kill_pid(self.p.pid)
        self.p.wait(timeout=10)


def nft(args, pid=None):
    """nft ARGS (in the net namespace of @pid)."""
    pre = ["nsenter", "-t", str(pid), "-n"] if pid else []
    rc, out, err = run_cmd(pre + ["nft"] + args, 10)
    if rc != 0:
        raise Failure("nft %s: %s" % (" ".join(args), err.strip()[:200]))
    return out


def lock_tables(pid=None):
    """The stasis lock tables of stasis's net namespace (or that of @pid)."""
    return [ln.split()[-1] for ln in nft(["list", "tables"], pid).splitlines()
            if "stasis-lock-" in ln]


def start_tree(c, mib, port):
    ready = os.path.join(c.tmp, "netlock.ready")
    if os.path.exists(ready):
        os.unlink(ready)
    p = subprocess.Popen([sys.executable, "-c", TREE, str(mib), str(port), ready],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, cwd=c.tmp)
    deadline = time.monotonic() + c.timeout
    while not os.path.exists(ready):
        if p.poll() is not None or time.monotonic() > deadline:
            kill_pid(p.pid)
            p.wait(timeout=10)
            raise Failure("the tree process did not get ready")
        time.sleep(0.02)
    return p


def tcp_state(sk):
    return sk.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def outq(sk):
    return struct.unpack("i", fcntl.ioctl(sk.fileno(), SIOCOUTQ, b"\0" * 4))[0]


def echo(sk, data, what):
    """Sends @data and reads back its upper-cased echo (bounded)."""
    sk.sendall(data)
    return expect(sk, data.upper(), what)


def expect(sk, want, what):
    got = b""
    sk.settimeout(10)
    try:
        while len(got) < len(want):
            d = sk.recv(65536)
            if not d:
                raise Failure("%s: the tree closed the connection" % what)
            got += d
    except socket.timeout:
        raise Failure("%s: got %d of %d bytes in 10 s" % (what, len(got), len(want)))
    except OSError as e:
        raise Failure("%s: %s" % (what, e))
    if got != want:
        raise Failure("%s: the echo differs" % what)


def stopped_pid(pid):
    """@pid if it is stopped (state T), else a stopped child of it (a child stasis ran in
    a namespace), else None."""
    st = proc_stat(pid)
    if st and st[0] == "T":
        return pid
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return None
    for k in kids:
        st = proc_stat(k)
        if st and st[0] == "T":
            return k
    return None


def wait_stopped(p, timeout):
    """The pid of stasis (@p) or its child that stopped itself after locking, or None if
    stasis ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            return None
        s = stopped_pid(p.pid)
        if s:
            return s
        time.sleep(0.005)
    raise Failure("stasis neither stopped nor ended in %.0f s" % timeout)


def locked_dump(c, mnt, tree, peer, extra, mon, in_ns=False):
    """A failing dump of @tree, stopped right after its lock: checks the lock (in stasis's
    net namespace, or with @in_ns in the tree's, by a child of stasis)."""
    env = dict(os.environ, LD_PRELOAD=os.path.join(c.build, "tests/tools/nft_pause.so"),
               STASIS_NFT_PAUSE="1", ASAN_OPTIONS="verify_asan_link_order=0")
    img = os.path.join(mnt, "img")
    log = os.path.join(c.tmp, "netlock-dump.log")
    p = subprocess.Popen([c.stasis, "dump", "-t", str(tree.pid), "-D", img, "-v", "-o", log]
                         + list(extra), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        stopped = wait_stopped(p, c.timeout)
        if "none" in extra:  # --network-lock none: nothing to stop at
            if stopped:
                raise Failure("--network-lock none installed a lock")
        else:
            if not stopped:
                raise Failure("the dump ended without locking the network (status %s): %s"
                              % (p.returncode, p.stderr.read().strip()[:300]))
            want = "stasis-lock-%d" % p.pid
            have = lock_tables(tree.pid if in_ns else None)
            if want not in have:
                raise Failure("stasis stopped after its lock, but nft lists %s, not %s" % (
                    have, want))
            peer.sendall(b"ping while frozen")
            time.sleep(1.0)
            st, q = tcp_state(peer), outq(peer)
            if st != TCP_ESTABLISHED:
                raise Failure("the peer's connection is in TCP state %d while locked "
                              "(reset?)" % st)
            if q == 0:
                raise Failure("the frozen tree's kernel acknowledged the peer's data: the "
                              "lock dropped nothing")
            os.kill(stopped, signal.SIGCONT)
        _, err = p.communicate(timeout=c.timeout)
    finally:
        if p.poll() is None:
            kill_pid(p.pid)
            p.wait(timeout=10)
            # a dumper killed while it held the lock leaves it: the check's cleanup
            run_cmd(["nft", "delete", "table", "inet", "stasis-lock-%d" % p.pid], 10)
    if p.returncode == 0:
        raise Failure("the dump into the 8 MiB tmpfs succeeded")
    left = lock_tables() + (lock_tables(tree.pid) if in_ns else [])
    if left:
        raise Failure("the failed dump left the lock table(s) %s" % left)
    return err.strip()


def killed_dump(c, mnt, tree, peer):
    """A dump SIGKILLed while it holds the lock: the tree runs on (its armed engines) but
    the table stays, with its record in the temporary directory; `stasis gc` removes
    both and the connection works again."""
    env = dict(os.environ, LD_PRELOAD=os.path.join(c.build, "tests/tools/nft_pause.so"),
               STASIS_NFT_PAUSE="1", ASAN_OPTIONS="verify_asan_link_order=0")
    img = os.path.join(mnt, "img")
    p = subprocess.Popen([c.stasis, "dump", "-t", str(tree.pid), "-D", img],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    table = "stasis-lock-%d" % p.pid
    try:
        if not wait_stopped(p, c.timeout):
            raise Failure("the dump to be killed ended without locking (status %s)" %
                          p.returncode)
        peer.sendall(b"ping while frozen")
        kill_pid(p.pid)
        p.wait(timeout=10)
        if table not in lock_tables():
            raise Failure("the killed dumper's lock %s is not there (%s)" % (
                table, lock_tables()))
        rc, out, err = run_cmd([c.stasis, "gc", img], c.timeout)
        if rc != 0 or lock_tables():
            raise Failure("stasis gc %s: exit %s (%r), lock tables left %s" % (
                img, rc, (out + err).strip()[:200], lock_tables()))
    finally:
        if p.poll() is None:
            kill_pid(p.pid)
            p.wait(timeout=10)
        run_cmd(["nft", "delete", "table", "inet", table], 10)
    expect(peer, b"PING WHILE FROZEN", "after the killed dump and gc (retransmitted)")
    echo(peer, b"after gc", "after the killed dump and gc")


def check(c):
    if run_cmd(["nft", "--version"], 10)[0] != 0:
        raise Skip("nft is not installed (scripts/deps.sh)")
    rc, _, err = run_cmd(["nft", "list", "tables"], 10)
    if rc != 0:
        raise Skip("nftables cannot be used here: %s" % err.strip()[:200])
    mnt = mount_tmpfs(c, "netlock", "size=8m")
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tree = peer = mon = None
    try:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        tree = start_tree(c, 64, lsn.getsockname()[1])
        lsn.settimeout(10)
        peer, _ = lsn.accept()
        echo(peer, b"before the dump", "before the dump")
        mon = Monitor(c)
        mon.sync()
        first = len(mon.lines)
        locked_dump(c, mnt, tree, peer, [], mon)
        # the data sent while locked arrives once the lock is gone, then more both ways
        expect(peer, b"PING WHILE FROZEN", "after the failed dump (retransmitted)")
        echo(peer, b"after the failed dump", "after the failed dump")
        mon.sync()
        seen = [ln for ln in mon.lines[first:] if "stasis-lock-" in ln]
        if len(seen) != 2 or seen[0].split()[0] not in ("add", "create") or \
                not seen[1].startswith("delete table inet stasis-lock-"):
            raise Failure("nft monitor saw %s, expected the lock added then deleted" % seen)
        first = len(mon.lines)
        locked_dump(c, mnt, tree, peer, ["--network-lock", "none"], mon)
        mon.sync()
        seen = [ln for ln in mon.lines[first:] if "stasis-lock-" in ln]
        if seen:
            raise Failure("--network-lock none changed tables: %s" % seen)
        echo(peer, b"after the second dump", "after the dump with --network-lock none")
        killed_dump(c, mnt, tree, peer)
        if os.listdir(mnt):
            raise Failure("the failed dumps left %s in the tmpfs" % os.listdir(mnt))
        return "peer kept ESTABLISHED with its data unacknowledged while locked; " \
               "connection works after the failed dump; none installs nothing; a killed " \
               "dumper's lock removed by gc"
    finally:
        if mon:
            mon.stop()
        for s in (peer, lsn):
            if s:
                s.close()
        if tree:
            kill_pid(tree.pid)
            tree.wait(timeout=10)
        umount(c, mnt)
