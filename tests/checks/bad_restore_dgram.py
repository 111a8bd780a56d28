# stasis-check: timeout=60
"""Hostile datagram socket images (a dump of sock_udp_queue edited by tests/tools/imgedit):
a queued datagram longer than any datagram can be (70000 bytes), and an IPv4 socket
whose bound address is 16 bytes long. Each restore fails with one line naming the
socket and what is wrong, before any socket is made; no process is left."""
import os
import shutil

from lib.proc import Failure, run_cmd


def edited(c, run, tag):
    d = os.path.join(c.tmp, "dgram-" + tag)
    shutil.copytree(run.img, d)
    rc, _, err = run_cmd([os.path.join(c.build, "tests", "tools", "imgedit"), d,
                          str(run.pid), "dgram-" + tag], timeout=c.timeout)
    if rc != 0:
        raise Failure("imgedit dgram-%s failed: %s" % (tag, err.strip()[:200]))
    return d


def check(c):
    run = c.start_test("sock_udp_queue")
    try:
        run.dump()
        run.check_original_gone()
    finally:
        run.cleanup()
    try:
        lines = []
        for tag, want in (("long", "longer than a datagram"),
                          ("family", "address of the wrong family")):
            d = edited(c, run, tag)
            line = c.expect_failure(c.restore_argv(d), "restore with a bad datagram "
                                    "socket (%s)" % tag, pid=run.pid)
            if "inet datagram socket" not in line or want not in line:
                raise Failure("the error does not say what is wrong (%s): %r" % (want, line))
            lines.append(line)
        return " / ".join(lines)
    finally:
        shutil.rmtree(run.tmp, ignore_errors=True)
