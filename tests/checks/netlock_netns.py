# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(makes a net namespace and a veth to the host, inspects nftables)
"""The network lock of a tree with its own net namespace (issue 11): a 64 MiB process in a
net namespace the check makes (`unshare -n`), connected through a veth to a peer the
check holds on the host side, is dumped into an 8 MiB tmpfs (the dump fails). The lock is
made inside the tree's namespace, by a child of stasis that entered it (the shim stops
that child right after): `inet stasis-lock-PID` is there and not in the host's
namespace, the peer's data stays unacknowledged and its socket ESTABLISHED. After the
failed dump no table is left in either namespace and the connection works both ways."""
import os
import socket
import subprocess
import sys
import time

from checks._failsafe import mount_tmpfs, umount
from checks.netlock_tcp import echo, expect, locked_dump
from lib.proc import Failure, Skip, kill_pid, run_cmd

HOST_IP, TREE_IP = "10.213.77.1", "10.213.77.2"

# the tree: waits for the file ARGV[2] (its veth is up; it holds the peer's port), then
# like netlock_tcp's tree
TREE = """
import os, socket, sys, time
b = bytearray(os.urandom(1 << 20)) * int(sys.argv[1])
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
time.sleep(0.05)
with open(sys.argv[2]) as f:
    port = int(f.read())
s = socket.create_connection((sys.argv[3], port))
with open(sys.argv[4], "w") as f:
    f.write("ready\\n")
while True:
    d = s.recv(4096)
    if not d:
        break
    s.sendall(d.upper())
"""


def sh(argv, what):
    rc, _, err = run_cmd(argv, 10)
    if rc != 0:
        raise Failure("%s: %s" % (what, err.strip()[:200]))


def check(c):
    if run_cmd(["nft", "list", "tables"], 10)[0] != 0:
        raise Skip("nftables cannot be used here (scripts/deps.sh installs nft)")
    veth = "nlk%d" % (os.getpid() % 100000)
    mnt = mount_tmpfs(c, "netlock-ns", "size=8m")
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tree = peer = None
    go, ready = os.path.join(c.tmp, "netns.go"), os.path.join(c.tmp, "netns.ready")
    try:
        tree = subprocess.Popen(["unshare", "-n", "--", sys.executable, "-c", TREE, "64",
                                 go, HOST_IP, ready], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # unshare execs python: same pid; wait until it is in its own net namespace
        deadline = time.monotonic() + 10
        while os.readlink("/proc/%d/ns/net" % tree.pid) == os.readlink("/proc/self/ns/net"):
            if time.monotonic() > deadline or tree.poll() is not None:
                raise Failure("the tree did not get its own net namespace")
            time.sleep(0.01)
        sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns",
            str(tree.pid)], "veth")
        sh(["ip", "addr", "add", HOST_IP + "/24", "dev", veth], "host address")
        sh(["ip", "link", "set", veth, "up"], "host link up")
        into = ["nsenter", "-t", str(tree.pid), "-n", "ip"]
        sh(into + ["addr", "add", TREE_IP + "/24", "dev", "eth0"], "tree address")
        sh(into + ["link", "set", "eth0", "up"], "tree link up")
        sh(into + ["link", "set", "lo", "up"], "tree lo up")
        lsn.bind((HOST_IP, 0))
        lsn.listen(1)
        with open(go + ".tmp", "w") as f:
            f.write(str(lsn.getsockname()[1]))
        os.rename(go + ".tmp", go)
        lsn.settimeout(10)
        peer, _ = lsn.accept()
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            if time.monotonic() > deadline or tree.poll() is not None:
                raise Failure("the tree did not get ready")
            time.sleep(0.02)
        echo(peer, b"before the dump", "before the dump")
        locked_dump(c, mnt, tree, peer, [], None, in_ns=True)
        expect(peer, b"PING WHILE FROZEN", "after the failed dump (retransmitted)")
        echo(peer, b"after the failed dump", "after the failed dump")
        return "locked inside the tree's net namespace; the connection works again"
    finally:
        for s in (peer, lsn):
            if s:
                s.close()
        if tree:
            kill_pid(tree.pid)
            tree.wait(timeout=10)
        run_cmd(["ip", "link", "del", veth], 10)
        umount(c, mnt)
