# stasis-check: timeout=60 needs=host-root
# stasis-check: why=(a child unshares a network namespace)
"""A UDP socket inherited by a child that then entered a network namespace of its own:
the socket lives in the parent's namespace while one of its users is in another, and a
socket shared by processes is made once, in its users' namespace. Refused at dump with one
line naming the socket and both processes; the tree keeps running (a datagram sent to the
socket afterwards is received). Also a unix socket of a namespace no task of the tree is
in (its holder made one, made the socket there and went back with setns): sockets of the
namespace a holder left are made again there when it is the dumper's or a task's of the
tree (tests/ckpt/sock_unix_netns_left.c), this one is refused with one line; and a UDP socket
of the namespace its holder left (TCP listeners are made there again,
tests/ckpt/tcp_listen_netns_left.c; other inet sockets would be made in the holder's:
refused)."""
import os
import socket
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, pid_alive, proc_children, reap_all

HOLDER = r"""
import ctypes, os, socket, sys, time
d = sys.argv[1]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
open(os.path.join(d, "port"), "w").write(str(u.getsockname()[1]))
if os.fork() == 0:
    if ctypes.CDLL(None, use_errno=True).unshare(0x40000000) != 0:
        sys.exit(3)
    open(os.path.join(d, "ready"), "w").close()
    while True:
        time.sleep(1)
while True:
    data = u.recv(64)
    open(os.path.join(d, "got-" + data.decode()), "w").close()
"""


LEFT_HOLDER = r"""
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if sys.argv[2] == "gone":
    back = os.open("/proc/self/ns/net", os.O_RDONLY)
    if libc.unshare(0x40000000) != 0:
        sys.exit(3)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    if libc.setns(back, 0x40000000) != 0:
        sys.exit(4)
    os.close(back)
else:
    t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t.bind(("127.0.0.1", 0))
if sys.argv[2] != "gone" and libc.unshare(0x40000000) != 0:
    sys.exit(3)
open(sys.argv[1], "w").close()
while True:
    time.sleep(1)
"""


def left(c, shape, want):
    ready = os.path.join(c.tmp, "sock-netns-" + shape)
    p = subprocess.Popen([sys.executable, "-c", LEFT_HOLDER, ready, shape],
                         stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(ready):
            raise Failure("the holder did not enter its network namespace")
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "sock-netns-img-" + shape)],
                                "dump of a %s of the namespace its holder left" % shape,
                                allowed=(p.pid,))
        if "of another network namespace" not in line or want not in line:
            raise Failure("the line does not say why: %r" % line)
        if not pid_alive(p.pid):
            raise Failure("the holder does not run after the refused dump")
        return line
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def check(c):
    unix_line = left(c, "gone", "no task of the tree made") + " / " + left(c, "udp", "only unix sockets and TCP")
    d = os.path.join(c.tmp, "sock-netns")
    os.makedirs(d)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, d], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(d, "ready")) and time.monotonic() < deadline:
            time.sleep(0.02)
        kids = proc_children(p.pid)
        if not kids or not os.path.exists(os.path.join(d, "ready")):
            raise Failure("the holder's child did not enter its network namespace")
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "sock-netns-img")],
                                "dump of a socket shared across network namespaces",
                                allowed=(p.pid,))
        if "another network namespace" not in line or str(kids[0]) not in line:
            raise Failure("the line does not say why: %r" % line)
        with open(os.path.join(d, "port")) as f:
            port = int(f.read())
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"after", ("127.0.0.1", port))
        s.close()
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(d, "got-after")) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(os.path.join(d, "got-after")) or not pid_alive(kids[0]):
            raise Failure("the tree does not run as before after the refused dump")
        return line + " / " + unix_line
    finally:
        for k in proc_children(p.pid):
            kill_pid(k)
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        reap_all()
