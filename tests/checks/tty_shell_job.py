# stasis-check: timeout=30
"""--shell-job: a job attached to the caller's terminal. The check opens a pty and runs a
small "shell" on it (a session leader whose controlling terminal is the slave) which
starts `cat` as its foreground job (its own process group, stdio on the terminal). The job
is dumped: without --shell-job the dump fails with one line that names --shell-job and
leaves the job running; with -j it succeeds; a restore of that image without -j fails
with one line naming it. Then the shell runs `stasis restore -j` as its foreground job
(as a user would type it): the restored cat is in stasis's session, its stdio are the
terminal, its group is the foreground one: a line typed on the master comes back from
cat, and ^D ends it and the restore with status 0."""
import os
import select
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, pid_alive, reap_all

SHELL = r"""
import os, signal, sys, time
slave, img, stasis, ctl, rep = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
os.setsid()
fd = os.open(slave, os.O_RDWR)  # the controlling terminal
signal.signal(signal.SIGTTOU, signal.SIG_IGN)

def job(argv):
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(fd, os.getpid())
        for i in (0, 1, 2):
            os.dup2(fd, i)
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.execv(argv[0], argv)
    os.setpgid(pid, pid)
    os.tcsetpgrp(fd, pid)
    return pid

j = job(["/bin/cat"])
os.write(rep, b"%d\n" % j)
os.waitpid(j, 0)           # dumped (and killed)
os.tcsetpgrp(fd, os.getpgrp())
os.read(ctl, 1)            # the user types `stasis restore -j -D IMG`
r = job([stasis, "restore", "-j", "-D", img])
os.write(rep, b"%d\n" % r)
_, st = os.waitpid(r, 0)
os.write(rep, b"exit %d\n" % os.waitstatus_to_exitcode(st))
time.sleep(1000)
"""


def read_line(fd, timeout):
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise Failure("no report from the shell (got %r)" % data)
        data += os.read(fd, 1)
    return data.decode().strip()


def expect_screen(m, want, timeout):
    data = b""
    deadline = time.monotonic() + timeout
    while want not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([m], [], [], left)[0]:
            raise Failure("%r did not come from the terminal (got %r)" % (want, data))
        try:
            data += os.read(m, 4096)
        except OSError as e:
            raise Failure("read the master: %s (got %r)" % (e, data)) from None
    return data


def check(c):
    m, s = os.openpty()
    slave = os.ttyname(s)
    os.close(s)
    ctl_r, ctl_w = os.pipe()
    rep_r, rep_w = os.pipe()
    img = os.path.join(c.tmp, "shelljob")
    sh = subprocess.Popen([sys.executable, "-c", SHELL, slave, img, c.stasis, str(ctl_r),
                           str(rep_w)], pass_fds=(ctl_r, rep_w), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(ctl_r)
    os.close(rep_w)
    pids = []
    try:
        job = int(read_line(rep_r, c.timeout))
        pids.append(job)
        os.write(m, b"one\n")
        expect_screen(m, b"one\r\none\r\n", c.timeout)
        line = c.expect_failure([c.stasis, "dump", "-t", str(job), "-D", img + "-no-j"],
                                "dump of a shell job without --shell-job", allowed=(job,))
        if "--shell-job" not in line:
            raise Failure("the refusal does not name --shell-job: %s" % line)
        if not pid_alive(job):
            raise Failure("the refused dump harmed the job")
        r = subprocess.run([c.stasis, "dump", "-j", "-t", str(job), "-D", img],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("dump -j failed: %s" % r.stderr.strip())
        deadline = time.monotonic() + c.timeout
        while os.path.exists("/proc/%d" % job):
            if time.monotonic() > deadline:
                raise Failure("the dumped job's pid is not released")
            time.sleep(0.02)
        line = c.expect_failure([c.stasis, "restore", "-D", img],
                                "restore of a shell job without --shell-job")
        if "--shell-job" not in line:
            raise Failure("the refusal does not name --shell-job: %s" % line)
        os.write(ctl_w, b"r")
        pids.append(int(read_line(rep_r, c.timeout)))
        deadline = time.monotonic() + c.timeout
        while not pid_alive(job):
            if time.monotonic() > deadline:
                raise Failure("the job was not restored")
            time.sleep(0.02)
        os.write(m, b"two\n")
        expect_screen(m, b"two\r\ntwo\r\n", c.timeout)
        os.write(m, b"\x04")
        status = read_line(rep_r, c.timeout)
        if status != "exit 0":
            raise Failure("the restore ended with %s" % status)
        return "cat answers in the foreground of the restoring terminal"
    finally:
        for x in pids + [sh.pid]:
            kill_pid(x)
        try:
            sh.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 5
        while any(pid_alive(x) for x in pids) and time.monotonic() < deadline:
            reap_all()
            time.sleep(0.02)
        for fd in (m, ctl_w, rep_r):
            os.close(fd)
