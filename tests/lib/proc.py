"""Processes and commands for the runner and the checks: outcomes (Failure, Skip), /proc
lookups, bounded waits, kills by PID only, commands run as a user. Standard library only."""
import ctypes
import glob
import os
import signal
import socket
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
TAIL_LINES = 15


def in_rootless_container():
    """True when this process is root of a user namespace that does not map the whole
    id space (not the initial namespace)."""
    try:
        with open("/proc/self/uid_map") as f:
            lines = [ln.split() for ln in f if ln.strip()]
    except OSError:
        return False
    return lines != [["0", "0", "4294967295"]]


class Failure(Exception):
    """A test failed; the message is the reason."""


class Skip(Exception):
    """A test was skipped; the message is the reason."""



def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        print("warning: PR_SET_CHILD_SUBREAPER failed: %s" % os.strerror(err), file=sys.stderr)


def proc_stat(pid):
    """(state, ppid, starttime) of a pid, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    # fields after comm: state(3) ppid(4) ... starttime(22)
    return rest[0], int(rest[1]), int(rest[19])


def pid_alive(pid):
    st = proc_stat(pid)
    if st is None:
        return False
    return st[0] not in ("Z", "X") or leader_only_dead(pid)


def leader_only_dead(pid):
    """A zombie thread-group leader: its main thread exited, another runs on."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return False
    for t in tids:
        if t == str(pid):
            continue
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    return True
        except (OSError, IndexError):
            continue
    return False


def my_children(include_zombies=False):
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st and st[1] == me and (include_zombies or st[0] not in ("Z", "X")
                                   or leader_only_dead(int(d))):
            out.append(int(d))
    return out


def proc_children(pid):
    """Direct children of pid (zombies included) from /proc/PID/task/*/children."""
    out = []
    for path in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            with open(path) as f:
                out += [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            pass
    return out


def proc_descendants(pid):
    """Every descendant of pid (zombies included), parents before children."""
    out, todo, seen = [], [pid], {pid}
    while todo:
        for c in proc_children(todo.pop(0)):
            if c not in seen:
                seen.add(c)
                out.append(c)
                todo.append(c)
    return out


def pid_key(pid):
    st = proc_stat(pid)
    return (pid, st[2]) if st else None


def reap_all():
    """Reaps every exited child; returns the pids reaped."""
    reaped = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        reaped.append(pid)
    return reaped


def wait_gone(pids, deadline):
    """Reaps exited children until none of @pids exists any more (a dumped tree: some may
    be zombies of ours); Failure at @deadline (time.monotonic())."""
    while any(os.path.exists("/proc/%d" % p) for p in pids):
        reap_all()
        if time.monotonic() > deadline:
            raise Failure("pids %s did not go" % [p for p in pids
                                                  if os.path.exists("/proc/%d" % p)])
        time.sleep(0.01)


def wait_pid(pid, deadline):
    """Waits for pid until deadline. Returns its wait status if it is our child, -1 if it
    is not our child and disappeared, None on timeout."""
    while True:
        try:
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                return status
        except ChildProcessError:
            if not pid_alive(pid):
                return -1
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def free_port():
    """A TCP port of 127.0.0.1 free now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def end_started(proc, restored):
    """The end of a check that started @proc (a Popen) and may have dumped and restored it
    (@restored: the restored copy, its old pid, may still run): both killed by pid and
    reaped, each wait bounded."""
    if proc.poll() is None:
        kill_pid(proc.pid)
        proc.wait(timeout=10)
    if restored:
        kill_pid(proc.pid)
        wait_pid(proc.pid, time.monotonic() + 5)


def check_untouched(pid, before):
    """Raises Failure unless pid runs on after a failed dump as it did (@before: its
    proc_stat then): running or sleeping, same parent, not traced."""
    now = proc_stat(pid)
    if now is None or now[0] not in ("S", "R") or now[2] != before[2]:
        raise Failure("the task was disturbed by the failed dump (%s)" % (now,))
    with open("/proc/%d/status" % pid) as f:
        if any(ln.startswith("TracerPid:") and ln.split()[1] != "0" for ln in f):
            raise Failure("the task is still traced after the failed dump")


def popen_python(script, args=()):
    """A python holder running @script (stdout a pipe, its own session) for a check."""
    return subprocess.Popen([sys.executable, "-c", script] + list(args),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop_popen(p):
    """Kills a subprocess.Popen holder (stdout a pipe) and its descendants, by pid, and
    reaps what can be reaped."""
    for d in reversed(proc_descendants(p.pid)):
        kill_pid(d)
    kill_pid(p.pid)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    p.stdout.close()
    reap_all()


def describe_status(status):
    if os.WIFEXITED(status):
        return "exit %d" % os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return "killed by signal %d" % os.WTERMSIG(status)
    return "status %#x" % status


def as_user(user):
    """preexec_fn that drops a root child to user = (uid, gid): no supplementary groups,
    real/effective/saved ids all the user's (exec then makes it dumpable again)."""
    if user is None:
        return None
    uid, gid = user

    def demote():
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    return demote


def user_file(path, user, flags=os.O_WRONLY | os.O_CREAT | os.O_APPEND):
    """Opens path (mode 0644) and, for a user = (uid, gid), makes it the user's."""
    fd = os.open(path, flags, 0o644)
    if user is not None:
        os.fchown(fd, user[0], user[1])
    return fd


def run_cmd(argv, timeout, cwd=None, user=None, files=None):
    """Runs a command with a bounded wait; returns (rc, stdout, stderr). rc is None on a
    timeout (the command was killed by its PID). With user = (uid, gid) the command runs
    as that user and its stdout/stderr go to files = (out, err) the user owns (a non-root
    stasis must not inherit anything of root's), read back afterwards."""
    if user is None:
        p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             errors="replace")
        try:
            out, err = p.communicate(timeout=max(timeout, 0.1))
            return p.returncode, out, err
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
            return None, out, err
    fds = [user_file(f, user, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) for f in files]
    try:
        p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fds[0],
                             stderr=fds[1], preexec_fn=as_user(user))
    finally:
        for fd in fds:
            os.close(fd)
    try:
        rc = p.wait(timeout=max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)
        rc = None
    texts = []
    for f in files:
        try:
            with open(f, errors="replace") as fh:
                texts.append(fh.read())
        except OSError:
            texts.append("")
    return rc, texts[0], texts[1]



def describe_status_rc(rc):
    if rc is None:
        return "no status"
    if rc < 0:
        return "killed by signal %d" % -rc
    return "exit %d" % rc


def tail(path, n=TAIL_LINES):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return lines[-n:]



HUGE_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/"


def hugepages_reserve(n):
    """At least @n free 2 MiB huge pages (a test's hugepages=N): the pool grown by what
    is missing (root). Returns the pool's size before, for hugepages_release, or None
    when it was not changed; Skip when the pages cannot be had."""
    def read(name):
        with open(HUGE_2M + name) as f:
            return int(f.read())
    try:
        total, free = read("nr_hugepages"), read("free_hugepages")
        if free >= n:
            return None
        with open(HUGE_2M + "nr_hugepages", "w") as f:
            f.write(str(total + n - free))
        free = read("free_hugepages")
    except (OSError, ValueError) as e:
        raise Skip("no huge pages to be had: %s" % e)
    if free < n:
        hugepages_release(total)
        raise Skip("only %d free huge pages of 2 MiB, %d needed" % (free, n))
    return total


def hugepages_release(total):
    if total is None:
        return
    try:
        with open(HUGE_2M + "nr_hugepages", "w") as f:
            f.write(str(total))
    except OSError:
        pass
