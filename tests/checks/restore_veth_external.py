# stasis-check: timeout=30 needs=host-root
# stasis-check: why=(network namespaces, a bridge)
"""A veth whose peer is outside the tree (the container shape: the host end on a
bridge). Everything runs in a net namespace made by the test (N0, with a bridge
br0 10.77.0.1/24); the task (a sleep) has its own with eth0 10.77.0.2/24, the
pair's other end vh0 on br0. The dump detects the peer outside the tree by itself
(as CRIU does: `--external veth[eth0]` at dump is accepted, not needed); restore
without `--external veth[eth0]:vh0@br0` must fail naming it and leave nothing; with it, the restored eth0 keeps its ifindex, MAC and address,
vh0 is back on br0, and an ICMP echo from N0 gets its reply."""
import os
import shutil
import subprocess
import tempfile
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, reap_all, run_cmd


ICMP_PING = r"""
import socket, struct, sys
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
sk = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sk.settimeout(3)
body = struct.pack("!BBHHH", 8, 0, 0, 0x5354, 1) + b"stasis"
sk.sendto(struct.pack("!BBHHH", 8, 0, csum(body), 0x5354, 1) + b"stasis", (sys.argv[1], 0))
while True:
    d, a = sk.recvfrom(1500)
    if a[0] == sys.argv[1] and d[(d[0] & 15) * 4] == 0:
        print("reply")
        break
"""


def check(c):
    for tool in ("ip", "nsenter", "unshare"):
        if not shutil.which(tool):
            raise Skip("%s not found (packages iproute2, util-linux)" % tool)
    d = tempfile.mkdtemp(prefix="veth-", dir=c.tmp)
    img = os.path.join(d, "img")
    outer = task = restored = None
    try:
        outer = subprocess.Popen(["unshare", "--net", "sleep", "120"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        n0 = ["nsenter", "--net=/proc/%d/ns/net" % outer.pid]

        def wait_sleep(p):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and p.poll() is None:
                try:
                    if open("/proc/%d/comm" % p.pid).read().strip() == "sleep":
                        return
                except OSError:
                    pass
                time.sleep(0.02)
            raise Failure("a namespace holder did not start")

        def sh(argv, what):
            rc, out, err = run_cmd(argv, 30, cwd=d)
            if rc != 0:
                raise Failure("%s failed: %s" % (what, err.strip()[:200]))
            return out

        wait_sleep(outer)
        sh(n0 + ["ip", "link", "add", "br0", "type", "bridge"], "ip link add br0")
        sh(n0 + ["ip", "addr", "add", "10.77.0.1/24", "dev", "br0"], "ip addr add")
        sh(n0 + ["ip", "link", "set", "br0", "up"], "ip link set br0 up")
        task = subprocess.Popen(n0 + ["unshare", "--net", "sleep", "120"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=d)
        wait_sleep(task)
        pid = task.pid
        inner = ["nsenter", "--net=/proc/%d/ns/net" % pid]
        sh(n0 + ["ip", "link", "add", "vh0", "type", "veth", "peer", "name", "eth0",
                 "netns", str(pid)], "ip link add vh0")
        sh(n0 + ["ip", "link", "set", "vh0", "master", "br0", "up"], "vh0 on br0")
        sh(inner + ["ip", "addr", "add", "10.77.0.2/24", "dev", "eth0"], "eth0 address")
        sh(inner + ["ip", "link", "set", "eth0", "up"], "eth0 up")
        before = sh(inner + ["ip", "-o", "link", "show", "eth0"], "ip link show")
        ping = n0 + ["python3", "-c", ICMP_PING, "10.77.0.2"]
        if "reply" not in sh(ping, "ping before the dump"):
            raise Failure("no ICMP reply before the dump")
        dump = n0 + [c.stasis, "dump", "-t", str(pid), "-D", img]
        sh(dump, "dump (the external veth found by itself)")
        task.wait(timeout=10)
        rst = n0 + [c.stasis, "restore", "-D", img, "-d", "--pidfile",
                    os.path.join(d, "pidfile")]
        line = c.expect_failure(rst, "restore of an external veth without its "
                                "host end", pid=pid, allowed=(outer.pid,))
        if "--external veth[eth0]:" not in line:
            raise Failure("the error does not name --external veth[eth0]: %s" % line)
        sh(rst + ["--external", "veth[eth0]:vh0@br0"], "restore --external")
        restored = pid
        after = sh(inner + ["ip", "-o", "link", "show", "eth0"], "ip link show")
        # "N: eth0@ifM: <FLAGS> ... link/ether MAC": same ifindex, name and MAC
        def key(line):
            f = line.split()
            return f[0], f[1].split("@")[0], f[f.index("link/ether") + 1]
        if key(before) != key(after):
            raise Failure("eth0 changed: %s -> %s" % (key(before), key(after)))
        if "10.77.0.2/24" not in sh(inner + ["ip", "-o", "addr", "show", "eth0"], "addr"):
            raise Failure("eth0 lost its address")
        if "master br0" not in sh(n0 + ["ip", "-o", "link", "show", "vh0"], "vh0"):
            raise Failure("the host end vh0 is not on br0")
        if "reply" not in sh(ping, "ping after the restore"):
            raise Failure("no ICMP reply after the restore")
        return "eth0 %s restored, host end vh0 on br0, ICMP echo answered" % key(after)[2]
    finally:
        for p in (restored, task.pid if task else None, outer.pid if outer else None):
            if p and pid_alive(p):
                kill_pid(p)
        for p in (task, outer):
            if p:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        reap_all()
