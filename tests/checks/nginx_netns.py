# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(a network namespace of the tree, made with unshare --net)
"""A pre-forking server in a network namespace of its own, as in a container: Debian's
nginx (master and two workers sharing the listening socket, each worker with its own
epoll and a socketpair to the master) started under `unshare --net`, serving on
127.0.0.1:8080 there. The tree is dumped (killed) and restored, twice (every socket must
be made in the tree's namespace for the second dump to find it); after each restore 20
requests made inside the namespace (nsenter) must each be answered by one of the two
workers, which name themselves ($pid), and the master must still be their parent."""
import os
import shutil
import subprocess
import sys
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_children, reap_all, run_cmd, \
    wait_gone

CONF = """worker_processes 2;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  server { listen 127.0.0.1:8080; location / { return 200 "$pid\\n"; } }
}
"""

GET = r"""
import sys, urllib.request
for _ in range(int(sys.argv[1])):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:8080/", timeout=5).read().decode().strip())
    except Exception as e:
        print("error %s" % e)
"""


def ask(pid, n):
    """@n requests inside the network namespace of @pid: the answers."""
    out = subprocess.run(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", GET, str(n)],
                         capture_output=True, text=True, timeout=60).stdout
    return out.split("\n")[:n]


def check(c):
    nginx = shutil.which("nginx")
    if not nginx:
        raise Skip("nginx not installed (package nginx, scripts/deps.sh)")
    d = os.path.join(c.tmp, "nginx")
    os.makedirs(d)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(CONF % {"d": d})
    p = subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up && exec %s -g "
                          "'daemon off;' -c %s" % (nginx, conf)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid, workers = p.pid, []
    try:
        deadline = time.monotonic() + 20
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = proc_children(pid)
            time.sleep(0.05)
        if len(workers) != 2:
            raise Failure("nginx did not start its two workers (%s)" % workers)
        first = ask(pid, 4)
        if any(a not in ["%d" % w for w in workers] for a in first):
            raise Failure("nginx before the dump answered %s" % first)
        for rnd in range(2):
            img = os.path.join(d, "img%d" % rnd)
            rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "-o",
                                  img + "-dump.log", "-v"], c.timeout / 5)
            if rc != 0:
                raise Failure("dump %d failed: %s" % (rnd + 1, err.strip()[-300:]))
            if rnd == 0:
                p.wait(timeout=10)
            wait_gone([pid] + workers, time.monotonic() + 10)
            rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "-o",
                                  img + "-restore.log", "-v"], c.timeout / 5)
            if rc != 0:
                raise Failure("restore %d failed: %s" % (rnd + 1, err.strip()[-300:]))
            answers = ask(pid, 20)
            bad = [a for a in answers if a not in ["%d" % w for w in workers]]
            if bad or len(answers) != 20:
                raise Failure("after restore %d, requests answered %s" %
                              (rnd + 1, (bad or answers)[:3]))
            if sorted(proc_children(pid)) != sorted(workers):
                raise Failure("the master's children after restore %d: %s (were %s)" %
                              (rnd + 1, proc_children(pid), workers))
        return "nginx (master %d, workers %s) in its own network namespace, dumped and " \
            "restored twice: 20 requests answered by its workers after each" % (pid, workers)
    finally:
        for w in workers + proc_children(pid):
            kill_pid(w)
        if pid_alive(pid):
            kill_pid(pid)
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        reap_all()
