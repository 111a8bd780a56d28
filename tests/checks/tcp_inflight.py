# stasis-check: timeout=150 needs=root
# stasis-check: why=(makes a network namespace with a rate-limited loopback)
# stasis-check: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
"""TCP connections that move while they are read. In a network namespace of the check's
own, loopback is slowed to 16 Mbit/s by a token bucket (tc tbf, MTU 1500, 300 ms of
queue): a tree streaming both ways over two connections between its two processes has,
when it is frozen, hundreds of kilobytes in the qdisc, delivered (and acknowledged) while
stasis reads the sockets one after the other. Each reader checks every 8-byte counter
of its stream. The tree is dumped and restored 6 times while it streams; after each
restore every stream must go on, without a gap or a duplicate, past what it had read.
The restore follows the dump at once, with segments of the killed tree still queued:
the network lock must keep them (and the resets they would draw from sockets that are
gone) from the restored connections. A dump may refuse a connection that keeps changing
(one line), never restore a stream with a hole or reset it."""
import os
import subprocess
import sys
import time

from lib.meta import REPO
from lib.proc import Failure, Skip, run_cmd

# the tree: process 1 listens, forks process 2, which connects twice; on each
# connection each end writes its counter stream and reads (and checks) the other's
TREE = r'''
import os, socket, struct, sys, threading, time
out = sys.argv[1]
def stream(s, name):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
    def writer():
        n = 0
        while True:
            b = b"".join(struct.pack(">Q", n + i) for i in range(1024))
            s.sendall(b)
            n += 1024
    def reader():
        want, got, rest = 0, 0, b""
        last = time.monotonic()
        while True:
            d = s.recv(65536)
            if not d:
                bad("%s: EOF after %d bytes" % (name, got))
            got += len(d)
            d = rest + d
            k = len(d) // 8
            for i in range(k):
                v = struct.unpack_from(">Q", d, 8 * i)[0]
                if v != want:
                    bad("%s: counter %d at byte %d, expected %d" % (name, v, 8 * want, want))
                want += 1
            rest = d[8 * k:]
            now = time.monotonic()
            if now - last > 0.05:
                last = now
                with open("%s/%s.tmp" % (out, name), "w") as f:
                    f.write("%d\n" % got)
                os.rename("%s/%s.tmp" % (out, name), "%s/%s" % (out, name))
    threading.Thread(target=writer, daemon=True).start()
    threading.Thread(target=reader, daemon=True).start()
def bad(msg):
    with open(out + "/bad.tmp", "w") as f:
        f.write(msg + "\n")
    os.rename(out + "/bad.tmp", out + "/bad")
    os._exit(3)
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(4)
port = l.getsockname()[1]
if os.fork() == 0:
    l.close()
    a = socket.create_connection(("127.0.0.1", port))
    b = socket.create_connection(("127.0.0.1", port))
    stream(a, "c1")
    stream(b, "c2")
else:
    a, _ = l.accept()
    b, _ = l.accept()
    stream(a, "s1")
    stream(b, "s2")
while True:
    time.sleep(1)
'''

# run in the check's network namespace: loopback slowed, the tree started, dumped and
# restored ROUNDS times, killed
DRIVER = r'''
import os, signal, subprocess, sys, time
sys.path.insert(0, sys.argv[5])
from nsdriver import reap, subreaper
stasis, tmp, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
tree_src = sys.argv[4]
subreaper()
def sh(*argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if r.returncode:
        sys.exit("%s: %s" % (" ".join(argv), r.stderr.strip()))
sh("ip", "link", "set", "lo", "mtu", "1500", "up")
sh("tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "16mbit", "burst", "3000",
   "latency", "300ms")
out = os.path.join(tmp, "streams")
os.mkdir(out)
tree = subprocess.Popen([sys.executable, "-c", tree_src, out], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=open(tmp + "/tree.log", "w"))
pid = tree.pid
NAMES = ("c1", "c2", "s1", "s2")
def progress():
    if os.path.exists(out + "/bad"):
        sys.exit("a stream broke: " + open(out + "/bad").read().strip())
    p = {}
    for n in NAMES:
        try:
            p[n] = int(open(os.path.join(out, n)).read())
        except (OSError, ValueError):
            p[n] = 0
    return p
def wait_past(base, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        p = progress()
        if all(p[n] > base[n] + 200000 for n in NAMES):
            return p
        time.sleep(0.05)
    ss = subprocess.run(["ss", "-tnoi"], capture_output=True, text=True, timeout=10)
    sys.stderr.write(ss.stdout)
    sys.exit("%s: the streams stopped: %s after %s" % (what, progress(), base))
refused = 0
try:
    p = wait_past({n: 0 for n in NAMES}, "start")
    for k in range(rounds):
        img = os.path.join(tmp, "img%d" % k)
        d = subprocess.run([stasis, "dump", "-t", str(pid), "-D", img, "--no-sync"],
                           capture_output=True, text=True, timeout=60)
        if d.returncode:
            lines = d.stderr.strip().splitlines()
            if len(lines) != 1 or "changing" not in lines[0]:
                sys.exit("dump %d failed: %s" % (k, d.stderr.strip()[-400:]))
            refused += 1
            p = wait_past(p, "after refused dump %d" % k)
            continue
        tree.poll()
        reap(False)  # the killed tree reaped: its pids free
        # restored at once: segments of the killed tree still in the qdisc reach
        # sockets that are gone, and only the network lock (which holds the tree's
        # connections between its own processes too) keeps their resets from the
        # restored ones
        r = subprocess.run([stasis, "restore", "-D", img, "-d"], capture_output=True,
                           text=True, timeout=60)
        if r.returncode:
            sys.exit("restore %d failed: %s" % (k, r.stderr.strip()[-400:]))
        p = wait_past(p, "after restore %d" % k)
    print("%d rounds, %d dumps refused, streams at %s" % (rounds, refused, p))
finally:
    reap(True)
'''

ROUNDS = 6

LIB = os.path.join(REPO, "tests", "lib")


def check(c):
    for tool in ("tc", "ip", "unshare"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/sbin:/usr/bin").split(":")
                   + ["/usr/sbin", "/sbin"]):
            raise Skip("%s is not installed" % tool)
    tmp = os.path.join(c.tmp, "tcp-inflight")
    os.mkdir(tmp)
    rc, out, err = run_cmd(["unshare", "--net", "--", sys.executable, "-c", DRIVER,
                            os.path.abspath(c.stasis), tmp, str(ROUNDS), TREE, LIB], c.timeout)
    if rc is None:
        raise Failure("timed out")
    if rc != 0:
        raise Failure(err.strip().splitlines()[-1] if err.strip() else "exit %s" % rc)
    return out.strip()
