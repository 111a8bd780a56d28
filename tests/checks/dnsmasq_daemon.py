# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(pid and network namespaces of the tree, made with unshare)
"""A daemon that detaches the classic way, as in a container: Debian's dnsmasq started
without --keep-in-foreground under `unshare --net --pid --fork --mount-proc` (`sh` as pid
1, then `exec sleep`). dnsmasq forks, its child calls setsid and forks the server, and
the child exits: the server sits in a session whose leader is gone, given to pid 1 (the
shape of any double-forking daemon). The tree (pid 1 and the server) is dumped (killed)
and restored, twice; after each restore the server is in the same session and group
(read from /proc), still pid 1's child, and answers a DNS query made inside the
namespace (nsenter) for a name it was configured with. Before, the dump was refused:
"the session cannot be rebuilt"."""
import os
import shutil
import subprocess
import sys
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_children, reap_all, run_cmd, \
    wait_gone

QUERY = r"""
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x5157, 0x0100, 1, 0, 0, 0)
for part in sys.argv[1].split("."):
    q += bytes([len(part)]) + part.encode()
q += b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(q, ("127.0.0.1", 5353))
r = s.recv(512)
# the answer's last 4 bytes: the A record's address
print(".".join(str(b) for b in r[-4:]) if struct.unpack(">H", r[6:8])[0] else "none")
"""
NAME, ADDR = "db.stasis.test", "10.1.2.3"


def ids(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[1]), int(rest[2]), int(rest[3])  # ppid, pgid, sid


def ask(pid):
    out = subprocess.run(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", QUERY, NAME],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or out.stderr.strip()[-200:]


def check(c):
    dnsmasq = shutil.which("dnsmasq")
    if not dnsmasq:
        raise Skip("dnsmasq is not installed (scripts/deps.sh installs dnsmasq-base)")
    cmd = ("ip link set lo up && %s --conf-file=/dev/null --port=5353 "
           "--listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts "
           "--address=/stasis.test/%s --pid-file= --user=root --group=root && exec sleep 100000"
           % (dnsmasq, ADDR))
    p = subprocess.Popen(["unshare", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c",
                          cmd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    root = server = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            kids = proc_children(p.pid)
            root = kids[0] if kids else None
            servers = proc_children(root) if root else []
            if servers and ask(root) == ADDR:
                server = servers[0]
                break
            time.sleep(0.1)
        if not server:
            raise Failure("dnsmasq did not start answering in its namespace")
        want = ids(server)
        if want[2] in (server, root) or pid_alive(want[2]):
            raise Failure("dnsmasq is not in a session whose leader is gone: %s" % (want,))
        for rnd in range(2):
            img = os.path.join(c.tmp, "dnsmasq-img%d" % rnd)
            rc, _, err = run_cmd([c.stasis, "dump", "-t", str(root), "-D", img, "-o",
                                  img + "-dump.log", "-v"], c.timeout / 5)
            if rc != 0:
                raise Failure("dump %d failed: %s" % (rnd + 1, err.strip()[-300:]))
            wait_gone([root, server], time.monotonic() + 10)
            rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "-o",
                                  img + "-restore.log", "-v"], c.timeout / 5)
            if rc != 0:
                raise Failure("restore %d failed: %s" % (rnd + 1, err.strip()[-300:]))
            if proc_children(root) != [server] or ids(server) != want:
                raise Failure("after restore %d the server is %s (parent, group, session "
                              "%s), was %s of pid %d" % (rnd + 1, proc_children(root),
                                                         ids(server), want, root))
            got = ask(root)
            if got != ADDR:
                raise Failure("after restore %d %s resolves to %s, not %s" % (
                    rnd + 1, NAME, got, ADDR))
        return "dnsmasq (session %d, its leader gone) dumped and restored twice, " \
            "answering %s" % (want[2], NAME)
    finally:
        for q in (root, server):
            if q and pid_alive(q):
                kill_pid(q)
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        reap_all()
