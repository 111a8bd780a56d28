# stasis-check: timeout=60 needs=root
# stasis-check: why=(inspects nftables)
"""The network lock across a whole checkpoint (issue 11): a process with a TCP connection
to a peer the check holds on loopback is dumped (and killed). The lock stays: its table
is there, `netlock.img` records it, and what the peer sends while the tree is away is
dropped (unacknowledged, the peer's socket ESTABLISHED: no reset, where the kernel would
reset a connection whose socket is gone). The restore removes the table once the tree
runs; the data sent meanwhile then arrives and the echo comes back."""
import os
import socket
import subprocess
import sys
import time

from checks.netlock_tcp import (TCP_ESTABLISHED, TREE, echo, expect, lock_tables, outq,
                                tcp_state)
from lib.proc import Failure, Skip, kill_pid, run_cmd, wait_pid


def check(c):
    if run_cmd(["nft", "list", "tables"], 10)[0] != 0:
        raise Skip("nftables cannot be used here (scripts/deps.sh installs nft)")
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tree = peer = None
    pid = None
    img = os.path.join(c.tmp, "netlock-e2e")
    ready = os.path.join(c.tmp, "netlock-e2e.ready")
    pidfile = os.path.join(c.tmp, "netlock-e2e.pid")
    tables = []
    try:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        tree = subprocess.Popen([sys.executable, "-c", TREE, "1", str(lsn.getsockname()[1]),
                                 ready], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=c.tmp)
        pid = tree.pid
        lsn.settimeout(10)
        peer, _ = lsn.accept()
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            if time.monotonic() > deadline or tree.poll() is not None:
                raise Failure("the tree process did not get ready")
            time.sleep(0.02)
        echo(peer, b"before the dump", "before the dump")
        others = set(lock_tables())  # (another suite's, on a shared machine: not ours)
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img], c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        tree.wait(timeout=10)
        tables = [t for t in lock_tables() if t not in others]
        if len(tables) != 1 or not os.path.exists(os.path.join(img, "netlock.img")):
            raise Failure("after the dump: lock tables %s, netlock.img %s" % (
                tables, os.path.exists(os.path.join(img, "netlock.img"))))
        peer.sendall(b"while away")
        time.sleep(1.0)
        if tcp_state(peer) != TCP_ESTABLISHED or outq(peer) == 0:
            raise Failure("while the tree is away the peer's socket is in state %d with %d "
                          "bytes unacknowledged (a reset, or nothing dropped)" % (
                              tcp_state(peer), outq(peer)))
        rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "--pidfile", pidfile],
                             c.timeout)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        if set(tables) & set(lock_tables()):
            raise Failure("the restore left the lock table(s) %s" % tables)
        expect(peer, b"WHILE AWAY", "after the restore (retransmitted)")
        echo(peer, b"after the restore", "after the restore")
        return "lock kept from the dump to the restore (%s), no reset, connection resumed" % (
            tables[0])
    finally:
        for s in (peer, lsn):
            if s:
                s.close()
        if pid:
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 10)
        if tree and tree.poll() is None:
            tree.wait(timeout=10)
        for t in tables:  # the dump's, if the restore did not remove it
            if t in lock_tables():
                run_cmd(["nft", "delete", "table", "inet", t], 10)
