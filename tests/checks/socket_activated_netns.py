# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(the service runs in a network namespace of its own, made with unshare --net)
"""A socket-activated service in a private network namespace (systemd's PrivateNetwork=
shape), real programs end to end: systemd-socket-activate listens on 127.0.0.1:PORT in
the host's namespace and, at the first connection, execs `unshare --net`, whose shell starts socat (answering
"hi-from-inside" on 127.0.0.1:QPORT of the private namespace) and execs Debian's
systemd-socket-proxyd with the listener as fd 3 (LISTEN_FDS): the proxy holds a socket
of the namespace it left, and forwards each connection to socat inside. The tree (proxy
and socat) is dumped (killed) and restored twice (the second dump must find the listener
in the host's namespace again); after each restore three connections from the host to
PORT must be answered from inside. Before stasis carried sockets of another namespace,
the listener came back in the private namespace: connections were refused."""
import os
import shutil
import socket
import subprocess
import time

from lib.netns_server import dump_restore_twice, stop, workers_of
from lib.proc import Failure, Skip, free_port

PROXYD = ("/usr/lib/systemd/systemd-socket-proxyd", "/lib/systemd/systemd-socket-proxyd")


def ask(port, n):
    answers = []
    for _ in range(n):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.settimeout(5)
                answers.append(s.recv(64).decode().strip())
        except OSError as e:
            answers.append("error %s" % e)
    return answers


def check(c):
    activate = shutil.which("systemd-socket-activate")
    proxyd = next((p for p in PROXYD if os.access(p, os.X_OK)), None)
    if not activate or not proxyd or not shutil.which("socat"):
        raise Skip("systemd-socket-activate, systemd-socket-proxyd or socat not installed "
                   "(packages systemd, socat)")
    d = os.path.join(c.tmp, "socket-activated")
    os.makedirs(d)
    port, inner = free_port(), free_port()
    sh = ("ip link set lo up && { socat TCP-LISTEN:%d,fork,reuseaddr,bind=127.0.0.1 "
          "SYSTEM:'echo hi-from-inside' & } && sleep 0.3 && exec %s 127.0.0.1:%d"
          % (inner, proxyd, inner))
    p = subprocess.Popen([activate, "-l", "127.0.0.1:%d" % port, "unshare", "--net", "sh",
                          "-c", sh], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    workers = []
    try:
        # (the first connection starts the service: exec; until it listens, refused)
        deadline = time.monotonic() + 10
        first = ask(port, 1)
        while first != ["hi-from-inside"] and time.monotonic() < deadline:
            time.sleep(0.1)
            first = ask(port, 1)
        workers = workers_of(p.pid, 1)
        if len(workers) != 1 or first != ["hi-from-inside"]:
            raise Failure("the service did not start (children %s, answered %s)" %
                          (workers, first))

        def after(rnd):
            answers = ask(port, 3)
            if answers != ["hi-from-inside"] * 3:
                raise Failure("after restore %d, connections to the host's port were "
                              "answered %s" % (rnd, answers))

        dump_restore_twice(c, p, workers, d, after)
        return "systemd-socket-proxyd %d (listener of the host's namespace on port %d, " \
            "itself in a private one with socat %s) dumped and restored twice: 3 " \
            "connections answered from inside after each" % (p.pid, port, workers)
    finally:
        stop(p, workers)
