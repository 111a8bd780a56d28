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

from lib.netns_server import ask, dump_restore_twice, start, stop, workers_of
from lib.proc import Failure, Skip

URL = "http://127.0.0.1:8080/"
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


def check(c):
    nginx = shutil.which("nginx")
    if not nginx:
        raise Skip("nginx not installed (package nginx, scripts/deps.sh)")
    d = os.path.join(c.tmp, "nginx")
    os.makedirs(d)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(CONF % {"d": d})
    p = start("%s -g 'daemon off;' -c %s" % (nginx, conf))
    workers = []
    try:
        workers = workers_of(p.pid, 2)
        names = ["%d" % w for w in workers]
        if len(workers) != 2:
            raise Failure("nginx did not start its two workers (%s)" % workers)
        first = ask(p.pid, URL, 4)
        if any(a not in names for a in first):
            raise Failure("nginx before the dump answered %s" % first)

        def after(rnd):
            answers = ask(p.pid, URL, 20)
            bad = [a for a in answers if a not in names]
            if bad or len(answers) != 20:
                raise Failure("after restore %d, requests answered %s" %
                              (rnd, (bad or answers)[:3]))

        dump_restore_twice(c, p, workers, d, after)
        return "nginx (master %d, workers %s) in its own network namespace, dumped and " \
            "restored twice: 20 requests answered by its workers after each" % (p.pid, workers)
    finally:
        stop(p, workers)
