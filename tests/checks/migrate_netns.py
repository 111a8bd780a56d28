# stasis-check: timeout=150 needs=root
# stasis-check: why=(makes three network namespaces joined by veth pairs)
# stasis-check: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
"""Live migration (`stasis migrate`) between two network namespaces, with a TCP client
connected throughout. Three namespaces of the check's own: the client's, the source
and the destination, each of the last two joined to the client's by a veth pair and to
each other by a third one (the migration's own link). Source and destination both carry
the service address 10.99.0.2; the client reaches it through the source's link. In the
source runs a server process holding 64 MiB that it keeps writing (a few MiB a second)
and echoing the 8-byte counters the client streams to it, checking each. `stasis
page-server` listens in the destination; `stasis migrate` in the source copies the
memory while the tree runs until a pass is small, then dumps; the client's route is
switched to the destination's link once the image is restored there. The client's stream
must carry on past the migration without a gap, a duplicate or a reset, the server must
run in the destination's namespace, every page of its memory must hold the generation
it last wrote there, and migrate must say how long the tree was frozen."""
import os
import sys

from lib.meta import REPO
from lib.proc import Failure, Skip, run_cmd

TREE = r'''
import mmap, os, random, socket, struct, sys, threading, time
N = 16384                      # 64 MiB of pages, each holding (index, generation)
buf = mmap.mmap(-1, N << 12, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
gens = [0] * N
def page(i, g):
    return struct.pack("<QQ", i, g) * 256
for i in range(N):
    buf[i << 12:(i + 1) << 12] = page(i, 0)
lock = threading.Lock()
def dirty():
    while True:
        with lock:
            for _ in range(8):
                i = random.randrange(N)
                gens[i] += 1
                buf[i << 12:(i + 1) << 12] = page(i, gens[i])
        time.sleep(0.002)
def verifier():
    while not os.path.exists(sys.argv[1] + "/verify"):
        time.sleep(0.05)
    with lock:
        bad = [i for i in range(N) if buf[i << 12:(i + 1) << 12] != page(i, gens[i])]
        res = "bad %d pages, first %s" % (len(bad), bad[:3]) if bad else \
              "ok, %d page writes" % sum(gens)
    with open(sys.argv[1] + "/verified.tmp", "w") as f:
        f.write(res)
    os.rename(sys.argv[1] + "/verified.tmp", sys.argv[1] + "/verified")
threading.Thread(target=dirty, daemon=True).start()
threading.Thread(target=verifier, daemon=True).start()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("10.99.0.2", 7777))
ls.listen(1)
open(sys.argv[1] + "/listening", "w").close()
s, _ = ls.accept()
want, rest = 0, b""
while True:
    d = s.recv(65536)
    if not d:
        break
    d = rest + d
    n = len(d) // 8
    for k in range(n):
        v = struct.unpack_from(">Q", d, 8 * k)[0]
        if v != want:
            open(sys.argv[1] + "/bad", "w").write("server: got %d, want %d" % (v, want))
            sys.exit(1)
        want += 1
    rest = d[8 * n:]
    s.sendall(d[:8 * n])
'''

CLIENT = r'''
import os, socket, struct, sys, time
out = sys.argv[1]
s = socket.create_connection(("10.99.0.2", 7777), timeout=60)
sent = got = 0
rest = b""
while True:
    s.sendall(b"".join(struct.pack(">Q", sent + i) for i in range(256)))
    sent += 256
    while got < sent - 4096:
        d = s.recv(65536)
        if not d:
            open(out + "/bad", "w").write("client: EOF after %d" % got)
            sys.exit(1)
        d = rest + d
        n = len(d) // 8
        for k in range(n):
            if struct.unpack_from(">Q", d, 8 * k)[0] != got:
                open(out + "/bad", "w").write("client: echo %d out of order" % got)
                sys.exit(1)
            got += 1
        rest = d[8 * n:]
    with open(out + "/got.tmp", "w") as f:
        f.write(str(got))
    os.rename(out + "/got.tmp", out + "/got")
    time.sleep(0.005)
'''

DRIVER = r'''
import os, signal, subprocess, sys, time
sys.path.insert(0, sys.argv[5])
from nsdriver import reap, subreaper
stasis, tmp, tree_src, client_src = sys.argv[1:5]
subreaper()
def sh(*argv, ns=None):
    if ns:
        argv = ("nsenter", "-t", str(ns), "-n", "--") + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if r.returncode:
        sys.exit("%s: %s" % (" ".join(argv), (r.stderr or r.stdout).strip()[-600:]))
    return r.stdout
def netns(pid):
    return os.stat("/proc/%d/ns/net" % pid).st_ino
started = []
def spawn(argv, ns=None, **kw):
    if ns:
        argv = ["nsenter", "-t", str(ns), "-n", "--"] + argv
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
    started.append(p.pid)
    return p
def anchor():
    p = spawn(["unshare", "--net", "--", "sleep", "1000"])
    deadline = time.monotonic() + 10
    while netns(p.pid) == netns(os.getpid()):
        if time.monotonic() > deadline:
            sys.exit("unshare did not make a namespace")
        time.sleep(0.01)
    return p.pid
def progress(what, base, need):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(tmp + "/bad"):
            sys.exit("%s: the stream broke: %s" % (what, open(tmp + "/bad").read()))
        try:
            g = int(open(tmp + "/got").read())
        except (OSError, ValueError):
            g = 0
        if g >= base + need:
            return g
        time.sleep(0.02)
    for ns in ([], ["nsenter", "-t", str(dst), "-n", "--"]):
        ss = subprocess.run(ns + ["ss", "-tnoi"], capture_output=True, text=True, timeout=10)
        sys.stderr.write(ss.stdout)
    try:
        st = open("/proc/%d/stat" % tree.pid).read().rsplit(")", 1)[1].split()[0]
    except OSError:
        st = "gone"
    sys.stderr.write("server %d: %s\n" % (tree.pid, st))
    sys.exit("%s: the stream stopped at %d (was %d; server %s)" % (what, g, base, st))
try:
    src, dst = anchor(), anchor()
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "cli-a", "type", "veth", "peer", "name", "eth0", "netns", str(src))
    sh("ip", "link", "add", "cli-b", "type", "veth", "peer", "name", "eth0", "netns", str(dst))
    sh("ip", "link", "add", "mg-s", "netns", str(src), "type", "veth", "peer", "name", "mg-d",
       "netns", str(dst))
    sh("ip", "addr", "add", "10.99.0.1/24", "dev", "cli-a")
    sh("ip", "link", "set", "cli-a", "up")
    sh("ip", "link", "set", "cli-b", "up")
    for ns, mg, a in ((src, "mg-s", "10.98.0.1/24"), (dst, "mg-d", "10.98.0.2/24")):
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "addr", "add", "10.99.0.2/24", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "addr", "add", a, "dev", mg, ns=ns)
        sh("ip", "link", "set", mg, "up", ns=ns)
    tree = spawn([sys.executable, "-c", tree_src, tmp], ns=src, stdout=subprocess.DEVNULL,
                 stderr=open(tmp + "/tree.log", "w"))
    deadline = time.monotonic() + 30
    while not os.path.exists(tmp + "/listening"):
        if tree.poll() is not None or time.monotonic() > deadline:
            sys.exit("the server did not start: " + open(tmp + "/tree.log").read()[-300:])
        time.sleep(0.02)
    client = spawn([sys.executable, "-c", client_src, tmp], stdout=subprocess.DEVNULL,
                   stderr=open(tmp + "/client.log", "w"))
    g = progress("start", 0, 20000)
    srv = os.path.join(tmp, "server-images")
    os.mkdir(srv)
    ps = spawn([stasis, "page-server", "-D", srv, "--address", "10.98.0.2", "--port", "7000"],
               ns=dst, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not ps.stdout.readline().startswith("listening on"):
        sys.exit("page-server: " + ps.stderr.read()[-300:])
    m = subprocess.run(["nsenter", "-t", str(src), "-n", "--", stasis, "migrate", "-t",
                        str(tree.pid), "-D", os.path.join(tmp, "local"), "--address",
                        "10.98.0.2", "--port", "7000", "--no-sync"],
                       capture_output=True, text=True, timeout=90)
    if m.returncode:
        sys.exit("migrate: " + m.stderr.strip()[-500:])
    try:
        out, err = ps.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        sys.exit("page-server did not exit after the migration")
    images = [ln.split(None, 1)[1] for ln in out.splitlines() if ln.startswith("image ")]
    if ps.returncode or not images:
        sys.exit("page-server: exit %s: %s" % (ps.returncode, err[-300:]))
    tree.wait(timeout=10)  # killed by the final dump; its pid free again
    # the address moves once the destination holds the connection: a segment reaching it
    # before would be answered with a reset
    sh(stasis, "restore", "-D", images[-1], "-d", ns=dst)
    sh("ip", "route", "replace", "10.99.0.2/32", "dev", "cli-b")
    if netns(tree.pid) != netns(dst):
        sys.exit("the restored server is not in the destination's namespace")
    g2 = progress("after the migration", g, 20000)
    open(tmp + "/verify", "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(tmp + "/verified") and time.monotonic() < deadline:
        time.sleep(0.05)
    res = open(tmp + "/verified").read() if os.path.exists(tmp + "/verified") else "no answer"
    if not res.startswith("ok"):
        sys.exit("the migrated server's memory: " + res)
    passes = [ln for ln in m.stdout.splitlines() if ln.startswith(("pre-dump", "dump"))]
    print("%s; stream at %d after, %d before; memory %s" % ("; ".join(passes), g2, g, res))
finally:
    for p in started:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    reap(True)
'''

LIB = os.path.join(REPO, "tests", "lib")


def check(c):
    for tool in ("ip", "unshare", "nsenter"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/sbin:/usr/bin").split(":")
                   + ["/usr/sbin", "/sbin"]):
            raise Skip("%s is not installed" % tool)
    tmp = os.path.join(c.tmp, "migrate-netns")
    os.mkdir(tmp)
    rc, out, err = run_cmd(["unshare", "--net", "--", sys.executable, "-c", DRIVER,
                            os.path.abspath(c.stasis), tmp, TREE, CLIENT, LIB], c.timeout)
    if rc is None:
        raise Failure("timed out")
    if rc != 0:
        raise Failure(err.strip().splitlines()[-1] if err.strip() else "exit %s" % rc)
    return out.strip()
