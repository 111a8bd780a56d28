# stasis-check: timeout=30 needs=root
# stasis-check: why=(makes a network namespace with a qdisc on its loopback)
# stasis-check: rootless-known=the tree's network namespace is made by the check as root
"""Traffic control is not carried: a process in a network namespace of its own whose
loopback has a token-bucket qdisc (`tc qdisc add dev lo root tbf`) is refused at dump
with one line naming the interface and the qdisc, and runs on; the same process without
the qdisc dumps (and is restored)."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

SETUP = ("ip link set lo up && %s && echo ready && exec sleep 60")


def start(qdisc):
    cmd = SETUP % ("tc qdisc add dev lo root tbf rate 1mbit burst 3000 latency 100ms"
                   if qdisc else "true")
    p = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", cmd],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    if p.stdout.readline() != b"ready\n":
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
        raise Failure("the process did not start (tc or unshare missing?)")
    return p


def check(c):
    p = start(True)
    try:
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "qdisc-img")], "dump with a qdisc",
                                allowed=(p.pid,))
        if "qdisc" not in line or "tbf" not in line or " lo " not in line:
            raise Failure("the refusal does not name the qdisc: %s" % line)
        if p.poll() is not None:
            raise Failure("the process died with the failed dump")
    finally:
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
    q = start(False)
    try:
        r = subprocess.run([c.stasis, "dump", "-R", "-t", str(q.pid), "-D",
                            os.path.join(c.tmp, "noqdisc-img")], capture_output=True,
                           text=True, timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("dump without a qdisc: %s" % r.stderr.strip())
    finally:
        kill_pid(q.pid)
        wait_pid(q.pid, time.monotonic() + 5)
    return line
