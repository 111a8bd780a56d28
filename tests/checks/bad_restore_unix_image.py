# stasis-check: timeout=30
"""Bad unix socket images (a dump of sock_unix_listen_queue, edited with imgedit): a socket
in an impossible state (5, SYN_RECV), a peek offset past the bytes its queue holds, and
more queued connections than the listener's backlog lets the kernel queue. Each restore
fails with one line naming the socket and what is wrong, leaves no process with the
dumped pid, and no socket file made or removed in the test's directory."""
import os
import shutil

from lib.proc import Failure, run_cmd

CASES = (
    ("state", "5", "bad state 5"),
    ("peek-off", "4096", "peek offset 4096 past its queue"),
    ("backlog", "1", "past its backlog of 1"),
)


def check(c):
    run = c.start_test("sock_unix_listen_queue")
    try:
        run.dump()
        run.check_original_gone()
    finally:
        run.cleanup()
    sockdir = run.cwd  # the test's socket files
    lines = []
    try:
        before = sorted(os.listdir(sockdir)) if os.path.isdir(sockdir) else []
        for field, value, want in CASES:
            d = os.path.join(c.tmp, "unix-" + field)
            shutil.copytree(run.img, d)
            rc, _, err = run_cmd([os.path.join(c.build, "tests", "tools", "imgedit"), d,
                                  str(run.pid), "unix-sk", field, value], 30)
            if rc != 0:
                raise Failure("imgedit unix-sk %s %s failed: %s" % (field, value, err.strip()))
            line = c.expect_failure(c.restore_argv(d), "restore with a unix socket's %s %s"
                                    % (field, value), pid=run.pid)
            if want not in line or "unix socket" not in line:
                raise Failure("the error does not say what is wrong (%s): %r" % (want, line))
            after = sorted(os.listdir(sockdir)) if os.path.isdir(sockdir) else []
            if after != before:
                raise Failure("the failed restore changed %s: %s -> %s" % (sockdir, before,
                                                                          after))
            lines.append(line.split(": ", 2)[-1])
        return "; ".join(lines)
    finally:
        shutil.rmtree(run.tmp, ignore_errors=True)
