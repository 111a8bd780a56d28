# stasis-check: timeout=30 needs=root
# stasis-check: why=(makes network namespaces with a qdisc, a routing rule, a route, a neighbour)
# stasis-check: rootless-known=the tree's network namespace is made by the check as root
"""Network namespace state stasis does not carry is refused, not dropped. A process in a
network namespace of its own with, in turn, a token-bucket qdisc on its loopback (`tc
qdisc add dev lo root tbf`), a policy routing rule (`ip rule add ... table 100`), a
route in another table than main and a permanent neighbour entry is refused at dump with one line naming it, and runs
on; the same process without them dumps."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

SETUP = ("ip link set lo up && %s && echo ready && exec sleep 60")

CASES = (
    ("tc qdisc add dev lo root tbf rate 1mbit burst 3000 latency 100ms",
     ("qdisc", "tbf", " lo ")),
    ("ip rule add from 10.0.0.0/8 table 100 priority 1000", ("routing rule", "1000")),
    ("ip addr add 10.5.0.1/24 dev lo && ip route add 10.6.0.0/16 dev lo table 100",
     ("table 100",)),
    ("ip link add sv0 type veth peer name sv1 && ip link set sv0 up && "
     "ip neigh add 10.7.0.2 lladdr 02:00:00:00:00:02 dev sv0 nud permanent",
     ("permanent neighbour",)),
)


def start(setup):
    p = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", SETUP % setup],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    if p.stdout.readline() != b"ready\n":
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
        raise Failure("the process did not start (%s)" % setup)
    return p


def check(c):
    lines = []
    for k, (setup, words) in enumerate(CASES):
        p = start(setup)
        try:
            line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                     os.path.join(c.tmp, "net-img-%d" % k)],
                                    "dump with %s" % setup, allowed=(p.pid,))
            if not all(w in line for w in words):
                raise Failure("the refusal does not name %s: %s" % (words, line))
            if p.poll() is not None:
                raise Failure("the process died with the failed dump")
            lines.append(line.split("net: ", 1)[-1][:60])
        finally:
            kill_pid(p.pid)
            wait_pid(p.pid, time.monotonic() + 5)
    q = start("true")
    try:
        r = subprocess.run([c.stasis, "dump", "-R", "-t", str(q.pid), "-D",
                            os.path.join(c.tmp, "net-img-plain")], capture_output=True,
                           text=True, timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("dump without them: %s" % r.stderr.strip())
    finally:
        kill_pid(q.pid)
        wait_pid(q.pid, time.monotonic() + 5)
    return "; ".join(lines)
