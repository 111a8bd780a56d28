# stasis-check: timeout=90 needs=root
# stasis-check: why=(makes a network namespace; raw sockets)
# stasis-check: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
"""The network lock holds the connections between the tree's own processes too. In a
network namespace of the check's own, a tree of two processes talks over a loopback TCP
connection (ping-pong of counters). It is dumped (killed): a segment between its two ends
still in flight then would find no socket and the kernel would answer it with a reset,
which can reach the restored peer. The check sends such a segment itself (a raw socket:
an ACK from one end's address and port to the other's) and counts the resets the
namespace sent (Tcp OutRsts of /proc/net/snmp): none while the image waits for its
restore, and the lock's inner sets hold both directions of the connection. Then the
tree is restored: the ping-pong goes on, no reset, no gap; the lock is gone. As a
control, the same segment to a port nobody holds does draw a reset."""
import os
import sys

from lib.meta import REPO
from lib.proc import Failure, Skip, run_cmd

TREE = r'''
import os, socket, struct, sys, time
out = sys.argv[1]
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
port = ls.getsockname()[1]
if os.fork() == 0:
    s = socket.create_connection(("127.0.0.1", port))
    open(out + "/ports.tmp", "w").write("%d %d" % (s.getsockname()[1], port))
    os.rename(out + "/ports.tmp", out + "/ports")
    n = 0
    while True:
        s.sendall(struct.pack(">Q", n))
        d = b""
        while len(d) < 8:
            c = s.recv(8 - len(d))
            if not c:
                open(out + "/bad", "w").write("client: EOF")
                sys.exit(1)
            d += c
        if struct.unpack(">Q", d)[0] != n + 1:
            open(out + "/bad", "w").write("client: got %d after %d" % (
                struct.unpack(">Q", d)[0], n))
            sys.exit(1)
        n += 2
        with open(out + "/n.tmp", "w") as f:
            f.write(str(n))
        os.rename(out + "/n.tmp", out + "/n")
        time.sleep(0.01)
c, _ = ls.accept()
while True:
    d = b""
    while len(d) < 8:
        x = c.recv(8 - len(d))
        if not x:
            open(out + "/bad", "w").write("server: EOF")
            sys.exit(1)
        d += x
    c.sendall(struct.pack(">Q", struct.unpack(">Q", d)[0] + 1))
'''

DRIVER = r'''
import os, socket, struct, subprocess, sys, time
sys.path.insert(0, sys.argv[4])
from nsdriver import reap, subreaper
stasis, tmp, tree_src = sys.argv[1:4]
subreaper()
subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=20)
def rsts():
    lines = [ln.split() for ln in open("/proc/net/snmp") if ln.startswith("Tcp:")]
    return int(lines[1][lines[0].index("OutRsts")])
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def stale_ack(sport, dport):
    """An ACK from 127.0.0.1:sport to 127.0.0.1:dport, as one still in flight would be."""
    ip = socket.inet_aton("127.0.0.1")
    hdr = struct.pack("!HHIIBBHHH", sport, dport, 12345, 67890, 5 << 4, 0x10, 65535, 0, 0)
    c = csum(ip + ip + struct.pack("!BBH", 0, 6, len(hdr)) + hdr)
    hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    try:
        r.sendto(hdr, ("127.0.0.1", 0))
    except PermissionError:
        pass  # dropped on its way out (the lock's output chain): it never arrives
    r.close()
    time.sleep(0.2)
def progress(base, need, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if os.path.exists(tmp + "/bad"):
            sys.exit("%s: %s" % (what, open(tmp + "/bad").read()))
        try:
            n = int(open(tmp + "/n").read())
        except (OSError, ValueError):
            n = 0
        if n >= base + need:
            return n
        time.sleep(0.02)
    sys.exit("%s: the ping-pong stopped at %d" % (what, n))
try:
    tree = subprocess.Popen([sys.executable, "-c", tree_src, tmp], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(tmp + "/tree.log", "w"))
    n0 = progress(0, 20, "start")
    cport, sport = map(int, open(tmp + "/ports").read().split())
    img = os.path.join(tmp, "img")
    d = subprocess.run([stasis, "dump", "-t", str(tree.pid), "-D", img, "--no-sync"],
                       capture_output=True, text=True, timeout=60)
    if d.returncode:
        sys.exit("dump: " + d.stderr.strip()[-400:])
    tree.wait(timeout=10)
    reap(False)
    listed = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True,
                            timeout=20).stdout
    for a, b in ((cport, sport), (sport, cport)):
        if "127.0.0.1 . %d . 127.0.0.1 . %d" % (a, b) not in listed:
            sys.exit("the lock does not hold 127.0.0.1:%d -> :%d: %s" % (a, b, listed[-600:]))
    before = rsts()
    stale_ack(cport, sport)
    stale_ack(sport, cport)
    held = rsts() - before
    if held:
        sys.exit("%d resets sent for segments of the locked connection" % held)
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    fport = free.getsockname()[1]
    free.close()
    before = rsts()
    stale_ack(cport, fport)
    if rsts() - before != 1:
        sys.exit("control: a segment to a free port drew %d resets, not 1" % (rsts() - before))
    r = subprocess.run([stasis, "restore", "-D", img, "-d"], capture_output=True, text=True,
                       timeout=60)
    if r.returncode:
        sys.exit("restore: " + r.stderr.strip()[-400:])
    n1 = progress(n0, 50, "after the restore")
    if "stasis-lock" in subprocess.run(["nft", "list", "tables"], capture_output=True,
                                       text=True, timeout=20).stdout:
        sys.exit("the lock is still there after the restore")
    print("lock held both directions, 0 resets for 2 stale segments (control: 1); "
          "ping-pong at %d before, %d after the restore" % (n0, n1))
finally:
    reap(True)
'''

LIB = os.path.join(REPO, "tests", "lib")


def check(c):
    for tool in ("ip", "unshare", "nft"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/sbin:/usr/bin").split(":")
                   + ["/usr/sbin", "/sbin"]):
            raise Skip("%s is not installed" % tool)
    tmp = os.path.join(c.tmp, "netlock-inner")
    os.mkdir(tmp)
    rc, out, err = run_cmd(["unshare", "--net", "--", sys.executable, "-c", DRIVER,
                            os.path.abspath(c.stasis), tmp, TREE, LIB], c.timeout)
    if rc is None:
        raise Failure("timed out")
    if rc != 0:
        raise Failure(err.strip().splitlines()[-1] if err.strip() else "exit %s" % rc)
    return out.strip()
