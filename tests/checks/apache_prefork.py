# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(a network namespace of the tree, made with unshare --net)
"""Debian's Apache 2.4 with the prefork MPM in a network namespace of its own: a root
process and its workers (switched to www-data) sharing the listening socket, serialized
by an accept mutex (an fcntl lock on a file of the check's), the scoreboard in shared
anonymous memory, the pipe of death between them. Dumped (killed) and restored twice;
after each restore 20 requests made inside the namespace are answered with the page, and
the root still has the same workers."""
import os
import shutil
import subprocess
import sys
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_children, reap_all, run_cmd, \
    wait_gone

CONF = """ServerRoot /etc/apache2
ServerName localhost
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
Listen 127.0.0.1:8081
PidFile %(d)s/apache.pid
ErrorLog %(d)s/error.log
DocumentRoot %(d)s/www
Mutex file:%(d)s default
User www-data
Group www-data
StartServers 2
MinSpareServers 2
MaxSpareServers 2
<Directory %(d)s/www>
Require all granted
</Directory>
"""

GET = r"""
import sys, urllib.request
for _ in range(int(sys.argv[1])):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:8081/", timeout=5).read().decode().strip())
    except Exception as e:
        print("error %s" % e)
"""


def ask(pid, n):
    out = subprocess.run(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", GET, str(n)],
                         capture_output=True, text=True, timeout=60).stdout
    return out.split("\n")[:n]


def check(c):
    apache = shutil.which("apache2") or "/usr/sbin/apache2"
    if not os.path.exists(apache) or \
            not os.path.exists("/usr/lib/apache2/modules/mod_mpm_prefork.so"):
        raise Skip("apache2 not installed (package apache2, scripts/deps.sh)")
    d = os.path.join(c.tmp, "apache")
    os.makedirs(os.path.join(d, "www"))
    os.chmod(c.tmp, 0o755)
    os.chmod(d, 0o755)
    os.chmod(os.path.join(d, "www"), 0o755)
    with open(os.path.join(d, "www", "index.html"), "w") as f:
        f.write("stasis-apache\n")
    os.chmod(os.path.join(d, "www", "index.html"), 0o644)
    conf = os.path.join(d, "apache.conf")
    with open(conf, "w") as f:
        f.write(CONF % {"d": d})
    p = subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up && exec %s -D "
                          "FOREGROUND -f %s" % (apache, conf)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid, workers = p.pid, []
    try:
        deadline = time.monotonic() + 20
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = proc_children(pid)
            time.sleep(0.05)
        if len(workers) < 2 or any(a != "stasis-apache" for a in ask(pid, 2)):
            raise Failure("apache did not start its workers (%s)" % workers)
        workers = proc_children(pid)
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
            if any(a != "stasis-apache" for a in answers) or len(answers) != 20:
                raise Failure("after restore %d, requests answered %s" %
                              (rnd + 1, [a for a in answers if a != "stasis-apache"][:3]))
            if sorted(proc_children(pid)) != sorted(workers):
                raise Failure("the root's children after restore %d: %s (were %s)" %
                              (rnd + 1, proc_children(pid), workers))
        return "apache2 prefork (root %d, workers %s) in its own network namespace, dumped " \
            "and restored twice: 20 requests answered after each" % (pid, workers)
    finally:
        for w in workers + proc_children(pid):
            kill_pid(w)
        if pid_alive(pid):
            kill_pid(pid)
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        reap_all()
