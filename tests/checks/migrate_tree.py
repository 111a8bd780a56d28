# stasis-check: timeout=120 needs=root
# stasis-check: why=(userfaultfd of another process: pidfd_getfd, ptrace)
"""`stasis migrate` of a busy tree. The soak workload (tests/soak/workload, SOAK_MB=64):
4 threads rewriting random pages with (index, generation) and checking every page they
touch, a child streaming numbered records through a pipe, a second child echoing
checksummed blocks over a socketpair. It is migrated while it runs to a `stasis
page-server` on loopback (pre-copy passes copying while the tree runs, then the dump,
the children's copy-on-write pages stored again on the server side), restored from the
server's directory: the state comparison of every task finds nothing changed, the tree
has its three processes, and on SIGTERM the workload's own check of all its memory, the
pipe's records and the socket's blocks says PASS."""
import os
import re
import shutil

from checks.page_server import Server
from lib.ckpt import CkptRun
from lib.proc import Failure, proc_descendants, run_cmd


def check(c):
    os.environ["SOAK_MB"] = "64"
    run = CkptRun(c.r, c.build, "soak", {"timeout": c.timeout})
    run.binary = os.path.abspath(os.path.join(c.build, "tests", "soak", "workload"))
    srv = os.path.join(run.tmp, "server")
    os.mkdir(srv)
    s = None
    try:
        run.start()
        run.wait_ready()
        run.snapshot_state()
        run.tree = [run.pid] + proc_descendants(run.pid)
        s = Server(c, srv)
        rc, out, err = run_cmd([c.stasis, "migrate", "-t", str(run.pid), "-D",
                                os.path.join(run.tmp, "local"), "--address", "127.0.0.1",
                                "--port", s.port, "--no-sync", "-v", "-o",
                                run.dump_log], c.timeout)
        if rc != 0:
            raise Failure("migrate: %s" % (err.strip()[-400:] if err else "rc %s" % rc))
        src, sout, serr = s.finish()
        images = re.findall(r"^image (\S+)$", sout, re.M)
        if src != 0 or not images:
            raise Failure("page-server: exit %s: %s" % (src, serr[-300:]))
        run.check_original_gone()
        run.img = images[-1]
        run.restore_detached()
        run.compare_state("restore")
        kids = proc_descendants(run.pid)
        if len(kids) != 2:
            raise Failure("the restored tree has %d children, not 2" % len(kids))
        run.finish_restored(0)
        passes = [ln for ln in out.splitlines() if ln.startswith(("pre-dump", "dump"))]
        return "%s; restored from the server, state unchanged, the workload's check PASS" \
               % "; ".join(passes)
    finally:
        os.environ.pop("SOAK_MB", None)
        if s:
            s.stop()
        run.cleanup()
        shutil.rmtree(run.tmp, ignore_errors=True)
