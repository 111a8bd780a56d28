"""What the tmux-driven checks (tmux_session, tmux_own_devpts, vim_buffer) share: a
detached tmux server of their own (its socket in the check's directory) running one
command in an 80x24 pane, keys sent and the pane read through tmux clients, the server's
whole tree dumped, released and restored detached, and the job-control scenario."""
import os
import shutil
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_descendants, reap_all


class Tmux:
    def __init__(self, c, command, tools=(), own_devpts=False):
        """@own_devpts: the server starts in a mount namespace of its own with a devpts
        instance of its own on /dev/pts (and its ptmx on /dev/ptmx), as in a container."""
        for tool in ("tmux",) + tuple(tools):
            if not shutil.which(tool):
                raise Skip("%s is not installed" % tool)
        self.c = c
        self.sock = os.path.join(c.tmp, "tmux.sock")
        self.env = {"PATH": "/usr/bin:/bin", "TERM": "xterm", "HOME": c.tmp,
                    "TMUX_TMPDIR": c.tmp}
        self.pids = []
        new = ["-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", command]
        if own_devpts:
            r = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts && '
                 'mount --bind /dev/pts/ptmx /dev/ptmx && exec tmux -S "$0" "$@"',
                 self.sock] + new, capture_output=True, text=True, timeout=c.timeout,
                env=self.env, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                raise Failure("tmux in a mount namespace of its own: %s" % r.stderr.strip())
        else:
            self.run(*new)
        self.server = int(self.run("display", "-p", "#{pid}"))
        self.pids.append(self.server)

    def run(self, *args, check=True):
        r = subprocess.run(["tmux", "-S", self.sock] + list(args), capture_output=True,
                           text=True, timeout=self.c.timeout, env=self.env,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise Failure("tmux %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def keys(self, *keys):
        self.run("send-keys", *keys)

    def pane(self):
        return self.run("capture-pane", "-p")

    def pane_until(self, pred, what):
        """The pane once @pred holds for it (bounded)."""
        deadline = time.monotonic() + self.c.timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.pane()
            if pred(screen):
                return screen
            time.sleep(0.05)
        raise Failure("%s did not show; the pane reads %r" % (what, screen[-400:]))

    def checkpoint(self, nmin):
        """Dump the server's tree (at least @nmin processes), wait for its pids to be
        free, restore it detached; every pid is back."""
        c = self.c
        self.pids += [p for p in proc_descendants(self.server) if p not in self.pids]
        if len(self.pids) < nmin:
            raise Failure("expected %d processes in the server's tree, found %s"
                          % (nmin, self.pids))
        img = os.path.join(c.tmp, "img")
        r = subprocess.run([c.stasis, "dump", "-t", str(self.server), "-D", img],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("dump failed: %s" % r.stderr.strip())
        deadline = time.monotonic() + c.timeout
        while any(os.path.exists("/proc/%d" % x) for x in self.pids):
            if time.monotonic() > deadline:
                raise Failure("the dumped tree's pids are not released")
            reap_all()
            time.sleep(0.02)
        r = subprocess.run([c.stasis, "restore", "-d", "-D", img], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("restore failed: %s" % r.stderr.strip())
        for x in self.pids:
            if not pid_alive(x):
                raise Failure("pid %d is not back after the restore" % x)

    def close(self):
        self.run("kill-server", check=False)
        for x in reversed(self.pids + proc_descendants(self.server)):
            kill_pid(x)
        deadline = time.monotonic() + 5
        while any(pid_alive(x) for x in self.pids) and time.monotonic() < deadline:
            reap_all()
            time.sleep(0.02)


SHELL = "env PS1='$ ' bash --norc --noprofile -i"


def job_control(t):
    """In @t running SHELL: a background `sleep 1000` and `top` in the foreground,
    checkpointed; the same screen after, `q` ends top, `fg` and ^C end the sleep, the
    shell answers."""
    t.pane_until(lambda s: s.startswith("$"), "the prompt")
    t.keys("sleep 1000 &", "Enter")
    t.pane_until(lambda s: "[1] " in s, "the background job")
    t.keys("top -d 100", "Enter")
    t.pane_until(lambda s: "PID USER" in s, "top")
    time.sleep(0.3)
    before = t.pane()
    t.checkpoint(4)  # server, bash, sleep, top
    after = t.pane()
    if after != before:
        raise Failure("the screen changed across the checkpoint:\n%s\n---\n%s"
                      % (before, after))
    t.keys("q")
    t.pane_until(lambda s: s.rstrip().endswith("$"), "the prompt after top")
    t.keys("fg", "Enter")
    t.pane_until(lambda s: "fg\nsleep 1000" in s, "the sleep in the foreground")
    t.keys("C-c")
    t.keys("echo done-$((6*7))", "Enter")
    t.pane_until(lambda s: "\ndone-42\n" in s, "the shell's answer")
