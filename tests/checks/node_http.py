# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(TCP listening socket of the tree in the host's network namespace)
"""Node.js, not written here: an HTTP server on 127.0.0.1 (libuv's epoll loop, its
eventfd and signal pipe, V8's heap and JIT code, the worker threads of its platform)
with a timer ticking every 20 ms and a 100k-entry Map whose checksum it serves. Dumped
while a keep-alive client holds a connection and between requests, restored with -d:
the same pid answers on the same port, the Map's checksum is the same, the timer ticks
on from where it was (no jump back to 0, no burst of the ticks missed while it was
gone), the kept-alive connection still answers, and new connections are accepted."""
import http.client
import json
import os
import shutil
import subprocess
import time

from lib.proc import Failure, end_started, reap_all

PROG = r"""
const http = require('http');
const fs = require('fs');
const m = new Map();
for (let i = 0; i < 100000; i++) m.set('k' + i, i * 7 + 3);
let sum = 0;
for (const [k, v] of m) sum = (sum * 31 + v + k.length) % 1000000007;
let ticks = 0;
setInterval(() => { ticks++; }, 20);
const srv = http.createServer((req, res) => {
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ ticks, sum, pid: process.pid, size: m.size }));
});
srv.keepAliveTimeout = 600000;
srv.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(process.argv[2] + '.tmp', String(srv.address().port));
  fs.renameSync(process.argv[2] + '.tmp', process.argv[2]);
});
"""


def get(conn):
    conn.request("GET", "/")
    r = conn.getresponse()
    if r.status != 200:
        raise Failure("HTTP %d" % r.status)
    return json.loads(r.read())


def check(c):
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        raise Failure("node is not installed (scripts/deps.sh installs nodejs)")
    d = os.path.join(c.tmp, "node")
    os.makedirs(d)
    script, portf = (os.path.join(d, n) for n in ("srv.js", "port"))
    with open(script, "w") as f:
        f.write(PROG)
    # (io_uring for libuv's file operations, off by default since Node 20.16, stays off:
    # stasis refuses an io_uring instance)
    env = dict(os.environ, UV_USE_IO_URING="0")
    p = subprocess.Popen([node, script, portf], cwd=d, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    pid = p.pid
    keep = None
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(portf):
            if p.poll() is not None or time.monotonic() > deadline:
                raise Failure("node did not start its server")
            time.sleep(0.05)
        port = int(open(portf).read())
        keep = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        before = get(keep)
        time.sleep(0.3)
        before = get(keep)
        if before["pid"] != pid or before["size"] != 100000:
            raise Failure("node answered %r" % before)
        # (gone for a while between the two: its timer must not make up for it)
        c.dump_restore(pid, d, p)
        after = get(keep)  # the connection kept alive across the checkpoint
        if after["pid"] != pid or after["sum"] != before["sum"] or after["size"] != 100000:
            raise Failure("after the restore node answered %r (before %r)" % (after, before))
        if not before["ticks"] <= after["ticks"] <= before["ticks"] + 15:
            raise Failure("the timer was at %d, reads %d right after the restore"
                          % (before["ticks"], after["ticks"]))
        time.sleep(0.5)
        fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        later = get(fresh)
        fresh.close()
        if later["ticks"] < after["ticks"] + 10:
            raise Failure("the timer does not tick after the restore: %d then %d"
                          % (after["ticks"], later["ticks"]))
        return "node %d restored: Map checksum %d kept, timer %d -> %d -> %d, kept-alive " \
               "and new connections answered" % (pid, after["sum"], before["ticks"],
                                                 after["ticks"], later["ticks"])
    finally:
        if keep:
            keep.close()
        end_started(p, True)
        reap_all()
