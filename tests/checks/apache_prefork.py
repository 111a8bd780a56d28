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

from lib.netns_server import ask, dump_restore_twice, start, stop, workers_of
from lib.proc import Failure, Skip

URL = "http://127.0.0.1:8081/"
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
    p = start("%s -D FOREGROUND -f %s" % (apache, conf))
    workers = []
    try:
        workers = workers_of(p.pid, 2)
        if len(workers) < 2 or any(a != "stasis-apache" for a in ask(p.pid, URL, 2)):
            raise Failure("apache did not start its workers (%s)" % workers)
        workers = workers_of(p.pid, 2)

        def after(rnd):
            answers = ask(p.pid, URL, 20)
            if any(a != "stasis-apache" for a in answers) or len(answers) != 20:
                raise Failure("after restore %d, requests answered %s" %
                              (rnd, [a for a in answers if a != "stasis-apache"][:3]))

        dump_restore_twice(c, p, workers, d, after)
        return "apache2 prefork (root %d, workers %s) in its own network namespace, dumped " \
            "and restored twice: 20 requests answered after each" % (p.pid, workers)
    finally:
        stop(p, workers)
