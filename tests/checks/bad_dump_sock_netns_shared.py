# stasis-check: timeout=60 needs=host-root
# stasis-check: why=(the holder makes network namespaces)
"""Sockets of the network namespace their holder left are made again there when they can
be (unix groups, UDP, TCP listeners and unconnected TCP sockets of the dumper's namespace
or one a task of the tree made: tests/ckpt/sock_unix_netns_left.c, sock_udp_netns_left.c,
tcp_listen_netns_left.c). What cannot is refused at dump with one line, the holder left
running: a unix socketpair of a namespace no task of the tree is in (the holder made one,
made the pair there and went back with setns), and an established TCP connection of the
namespace the holder left (repair mode and the network lock would have to work there)."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, pid_alive

HOLDER = r"""
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
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(4)
    c = socket.create_connection(l.getsockname())
    s, _ = l.accept()
    l.close()
    if libc.unshare(0x40000000) != 0:
        sys.exit(3)
open(sys.argv[1], "w").close()
while True:
    time.sleep(1)
"""


def refused(c, shape, want):
    ready = os.path.join(c.tmp, "sock-netns-" + shape)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, ready, shape],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(ready):
            raise Failure("%s: the holder did not start" % shape)
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "sock-netns-img-" + shape)],
                                "dump of a %s of the namespace its holder left" % shape,
                                allowed=(p.pid,))
        if "of another network namespace" not in line or want not in line:
            raise Failure("%s: the line does not say why: %r" % (shape, line))
        if not pid_alive(p.pid):
            raise Failure("%s: the holder does not run after the refused dump" % shape)
        return line
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def check(c):
    return " / ".join([refused(c, "gone", "no task of the tree made"),
                       refused(c, "tcpconn", "TCP sockets listening")])
