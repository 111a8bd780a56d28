# stasis-check: timeout=60 needs=root
# stasis-check: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
"""A TCP connection with one end outside the tree: the check keeps the peer (a socket of
its own on 127.0.0.1), the tree is a python process talking to it in rounds (the peer
sends 256 KiB, the client sleeps, then reads them and answers with their hash and 64 KiB
of its own). Right after a round the peer sends the next one while the client sleeps:
the data waits in the client's receive queue when the client is dumped (and killed),
then restored. The peer must see only a pause: no reset, no EOF, every answer right for
20 more rounds. Until the network lock lands the peer keeps quiet (and its ACKs are
flushed with TCP_QUICKACK) from its last send until the restore: with no socket on the
client's port the kernel would answer any segment with a reset."""
import hashlib
import os
import random
import socket
import struct
import subprocess
import sys
import time

from lib.proc import Failure, end_started, run_cmd

CLIENT = r'''
import hashlib, random, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def full(n):
    b = bytearray()
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            sys.exit("EOF from the peer after %d of %d bytes" % (len(b), n))
        b += d
    return bytes(b)
while True:
    k = int.from_bytes(full(4), "big")
    time.sleep(0.3)
    data = full(256 * 1024)
    s.sendall(hashlib.sha256(data).digest() + random.Random(1000 + k).randbytes(65536))
'''

ROUND = 256 * 1024


def send_round(p, k):
    p.sendall(struct.pack(">I", k) + random.Random(k).randbytes(ROUND))


def recv_full(p, n, what):
    b = bytearray()
    while len(b) < n:
        d = p.recv(n - len(b))
        if not d:
            raise Failure("%s: EOF from the client after %d of %d bytes" % (what, len(b), n))
        b += d
    return bytes(b)


def answer(p, k):
    got = recv_full(p, 32 + 65536, "round %d" % k)
    want = hashlib.sha256(random.Random(k).randbytes(ROUND)).digest()
    if got[:32] != want:
        raise Failure("round %d: the client read other bytes than the peer sent" % k)
    if got[32:] != random.Random(1000 + k).randbytes(65536):
        raise Failure("round %d: the client's answer differs" % k)


def check(c):
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    lsn.settimeout(c.timeout)
    img = os.path.join(c.tmp, "tcp-outside")
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, str(lsn.getsockname()[1])],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(c.tmp, "tcp-outside.log"), "w"))
    pid, restored = proc.pid, False
    try:
        p, _ = lsn.accept()
        p.settimeout(c.timeout)
        for k in range(3):
            send_round(p, k)
            answer(p, k)
        send_round(p, 3)  # waits in the client's receive queue at the dump
        p.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        time.sleep(0.1)
        t0 = time.monotonic()
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "--no-sync"],
                             c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        proc.wait(timeout=10)
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        pause = time.monotonic() - t0
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        restored = True
        for k in range(3, 24):
            answer(p, k)
            if k < 23:
                send_round(p, k + 1)
        err = p.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        state = p.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        if err or state != 1:
            raise Failure("the peer's socket: error %d, state %d" % (err, state))
        p.close()
        return "the peer saw a pause of %.0f ms, then 21 rounds, no reset" % (pause * 1000)
    finally:
        lsn.close()
        end_started(proc, restored)
