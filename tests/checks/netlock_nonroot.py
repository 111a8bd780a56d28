# stasis-check: timeout=60 needs=host-root
# stasis-check: why=(runs a tree and stasis as the test user)
"""The network lock without CAP_NET_ADMIN (issue 11): a process of the test user holding a
TCP connection to a peer the check holds on loopback, dumped by that user with only
CAP_CHECKPOINT_RESTORE, is refused with one line that says the connection cannot be
locked and names `--network-lock none`; the process and its connection go on (an echo
both ways). A restore by that user of an image with a network lock is refused likewise,
and creates nothing."""
import os
import shutil
import socket
import subprocess
import sys
import time

from checks.netlock_tcp import TREE, echo, lock_tables
from lib.proc import Failure, Skip, kill_pid, run_cmd
from lib.users import ensure_user


def check(c):
    if not shutil.which("setpriv"):
        raise Skip("setpriv not found (package util-linux)")
    if run_cmd(["nft", "list", "tables"], 10)[0] != 0:
        raise Skip("nftables cannot be used here (scripts/deps.sh installs nft)")
    pw, reason = ensure_user()
    if reason:
        raise Skip(reason)
    user = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups"]
    caps = user + ["--inh-caps=+checkpoint_restore", "--ambient-caps=+checkpoint_restore",
                   "--"]
    work = os.path.join(c.tmp, "netlock-nonroot")
    os.mkdir(work)
    os.chmod(c.tmp, 0o755)
    os.chown(work, pw.pw_uid, pw.pw_gid)
    ready = os.path.join(work, "ready")
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tree = peer = None
    try:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        tree = subprocess.Popen(user + ["--", sys.executable, "-c", TREE, "1",
                                        str(lsn.getsockname()[1]), ready],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=work)
        lsn.settimeout(10)
        peer, _ = lsn.accept()
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            if time.monotonic() > deadline or tree.poll() is not None:
                raise Failure("the test user's process did not get ready")
            time.sleep(0.02)
        echo(peer, b"before", "before the dump")
        line = c.expect_failure(caps + [c.stasis, "dump", "-t", str(tree.pid), "-D",
                                        os.path.join(work, "img"), "--leave-running"],
                                "dump by the test user", allowed=(tree.pid,))
        if "--network-lock none" not in line or "CAP_NET_ADMIN" not in line:
            raise Failure("the refusal does not name CAP_NET_ADMIN and --network-lock "
                          "none: %s" % line)
        if lock_tables():
            raise Failure("the refused dump left %s" % lock_tables())
        echo(peer, b"after the refusal", "after the refused dump")
        # the restore side: an image with a lock, restored by the user
        argv, pid = c.user_variant("netlock-user", "netlock", "stasis-lock-%d" % os.getpid(),
                                   "127.0.0.1", "4001", "127.0.0.1", "4002")
        rline = c.expect_failure(argv, "restore of a locked image by the test user", pid=pid)
        if "--network-lock none" not in rline:
            raise Failure("the restore's refusal does not name --network-lock none: %s" %
                          rline)
        return line
    finally:
        for s in (peer, lsn):
            if s:
                s.close()
        if tree:
            kill_pid(tree.pid)
            tree.wait(timeout=10)
