#!/usr/bin/env python3
"""stasis test runner: unit tests, self-checking checkpoint tests, bad-input tests.

    python3 tests/run.py [--build DIR]... [--flavor NAME[:BUILD]]... [--only NAME...]
                         [--no-cr] [--sabotage] [-j1]

See tests/README.md. Standard library only. Every wait is bounded; processes are only
ever killed by PID, never by name.
"""
import argparse
import ctypes
import fcntl
import glob
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CKPT_SRC = os.path.join(REPO, "tests", "ckpt")
PR_SET_CHILD_SUBREAPER = 36
DEFAULT_TIMEOUT = 60
BAD_TIMEOUT = 30
TAIL_LINES = 15
NONROOT_USER = "stasis-test"
FLAVORS = ("default", "nonroot", "rootless", "ns")
ROOTLESS_TIMEOUT = 1500
# The ns flavor: every checkpoint test runs as the init of new pid+mount+uts+ipc+net
# namespaces with its own /proc; the dumped task is unshare's child.
NS_UNSHARE = ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net",
              "--mount-proc"]

# Checkpoint tests that fail in the nonroot flavor because of a real stasis limitation for
# a non-root user (with cap_checkpoint_restore on its copy of stasis): name -> reason.
# They are reported as SKIP with the reason, so the suite stays green.
NONROOT_KNOWN = {
}

# Checkpoint tests that cannot run in the ns flavor (as a namespace init): name -> reason.
NS_KNOWN = {
}


# Checkpoint tests that cannot pass inside a rootless container (the rootless flavor):
# name -> reason, reported as SKIP.
ROOTLESS_KNOWN = {
    "cgroup_member": "the test cannot create or join a cgroup: none is delegated to the "
                     "user",
    "ns_cgroup": "same as cgroup_member (the test makes the cgroups its namespaces are "
                 "rooted in)",
    "ns_cgroup_mount": "same as cgroup_member",
    "ns_cgroup_user": "same as cgroup_member",
    "mem_deleted_map": "reading a mapped deleted file through /proc/PID/map_files needs "
                       "CAP_CHECKPOINT_RESTORE in the initial user namespace",
    "test_helper_sec": "runs helpers as the host's root and as another host user",
}


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


# ---------------------------------------------------------------------------------------
# processes


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
    return st is not None and st[0] not in ("Z", "X")


def my_children(include_zombies=False):
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st and st[1] == me and (include_zombies or st[0] not in ("Z", "X")):
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


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


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


NS_GET_NSTYPE = 0xb703  # _IO(0xb7, 0x3), linux/nsfs.h
CLONE_FLAG = {"uts": 0x04000000, "ipc": 0x08000000, "user": 0x10000000, "pid": 0x20000000,
              "net": 0x40000000, "mnt": 0x00020000, "time": 0x00000080,
              "cgroup": 0x02000000}


def nsfs_type(path):
    """The CLONE_NEW* type of an nsfs file (NS_GET_NSTYPE), or None if it is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        return None
    finally:
        os.close(fd)


NS_GET_MNTNS_ID = 0x8008b705  # _IOR(0xb7, 0x5, __u64), linux/nsfs.h (6.8)


def mntns_id(path):
    """The id of the mount namespace of an nsfs file (0 if the kernel cannot say)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        return int.from_bytes(fcntl.ioctl(fd, NS_GET_MNTNS_ID, bytes(8)), "little")
    except OSError:
        return 0
    finally:
        os.close(fd)


def cpu_with_older_mntns_ids():
    """A CPU on which a new mount namespace gets an id below ours, or None. Ids come from
    per-CPU batches on 6.18, and the kernel lets a mount namespace be pinned only from one
    with a smaller id: a restore on such a CPU must work around it."""
    mine = mntns_id("/proc/self/ns/mnt")
    for cpu in range(os.cpu_count() or 1):
        p = subprocess.Popen(["taskset", "-c", str(cpu), "unshare", "-m", "sleep", "5"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 5
            new = 0
            while time.monotonic() < deadline and p.poll() is None:
                try:
                    if open("/proc/%d/comm" % p.pid).read().strip() == "sleep":
                        new = mntns_id("/proc/%d/ns/mnt" % p.pid)
                        break
                except OSError:
                    pass
                time.sleep(0.01)
        finally:
            kill_pid(p.pid)
            p.wait(timeout=10)
        if new and mine and new < mine:
            return cpu
    return None


def mounts_under(d):
    """Mount points at or below directory d (deepest first), from our mountinfo."""
    d = os.path.realpath(d)
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for ln in f:
                mp = ln.split()[4].encode().decode("unicode_escape")
                if mp == d or mp.startswith(d + "/"):
                    out.append(mp)
    except OSError:
        pass
    return sorted(out, key=len, reverse=True)


def umount_under(d):
    """Unmounts (lazily, by path) everything mounted at or below d; returns what was."""
    found = mounts_under(d)
    for mp in found:
        run_cmd(["umount", "-l", mp], 10)
    return found


def tail(path, n=TAIL_LINES):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return lines[-n:]


# ---------------------------------------------------------------------------------------
# metadata


def read_meta(src):
    meta = {}
    with open(src, errors="replace") as f:
        for _ in range(5):
            line = f.readline()
            if not line.startswith("// stasis-test:"):
                continue
            rest = line[len("// stasis-test:"):].strip()
            while rest:
                key, _, rest = rest.partition("=")
                key = key.strip()
                if key == "skip":  # the reason is the rest of the line
                    meta["skip"] = rest.strip()
                    break
                value, _, rest = rest.partition(" ")
                meta[key] = value
                rest = rest.strip()
    return meta


def ckpt_tests():
    names = []
    for src in sorted(glob.glob(os.path.join(CKPT_SRC, "*.c"))):
        name = os.path.basename(src)[:-2]
        if name != "lib":
            names.append(name)
    return names


# ---------------------------------------------------------------------------------------
# checkpoint tests


class CkptRun:
    """One run of one checkpoint test in its own temporary directory."""

    def __init__(self, runner, build, name, meta):
        self.r = runner
        self.build = build
        self.name = name
        self.meta = meta
        self.timeout = float(meta.get("timeout", DEFAULT_TIMEOUT))
        self.deadline = time.monotonic() + self.timeout
        self.user = runner.user    # (uid, gid) in the nonroot flavor, else None
        self.tmp = tempfile.mkdtemp(prefix="stasis-%s-" % name, dir="/tmp")
        self.cwd = os.path.join(self.tmp, "cwd")
        self.img = os.path.join(self.tmp, "img")
        self.status = os.path.join(self.tmp, "status")
        self.log = os.path.join(self.tmp, "test.log")
        self.dump_log = os.path.join(self.tmp, "dump.log")
        self.restore_log = os.path.join(self.tmp, "restore.log")
        self.pidfile = os.path.join(self.tmp, "pidfile")
        self.stasis_err = []
        os.mkdir(self.cwd)
        self.chown(self.tmp)
        self.chown(self.cwd)
        self.ncmd = 0
        self.proc = None       # the original test process (a Popen)
        self.pid = None
        self.bg = []           # background stasis processes (Popen)
        self.binary = os.path.join(build, "tests", "ckpt", name)
        self.stasis = os.path.join(build, "stasis")
        if self.user is not None:
            # the user's copies: the test binary beside the capable stasis (private dir)
            self.stasis = runner.user_stasis
            if os.access(self.binary, os.X_OK):
                copy = os.path.join(runner.user_dir, name)
                shutil.copy(self.binary, copy)
                os.chmod(copy, 0o755)
                self.binary = copy
        # descendants of the runner that exist before this test: never touched by it
        self.foreign = set(filter(None, (pid_key(p) for p in proc_descendants(os.getpid()))))
        self.tree = []         # pids of the original tree, recorded before the dump

    def chown(self, path):
        if self.user is not None:
            os.chown(path, self.user[0], self.user[1])

    def left(self):
        return max(self.deadline - time.monotonic(), 0.0)

    def status_text(self):
        try:
            with open(self.status, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise Failure("%s not built" % self.binary)
        env = dict(os.environ)
        env["STASIS_TEST_STATUS"] = self.status
        env.pop("STASIS_TEST_SABOTAGE", None)
        if self.r.args.sabotage:
            env["STASIS_TEST_SABOTAGE"] = "1"
        fd = user_file(self.log, self.user)
        argv = [self.binary]
        if self.r.flavor == "ns":
            argv = NS_UNSHARE + argv
        try:
            self.proc = subprocess.Popen(argv, cwd=self.cwd, env=env,
                                         stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                         preexec_fn=as_user(self.user))
        finally:
            os.close(fd)
        self.pid = self.proc.pid
        if self.r.flavor == "ns":
            self.pid = self.ns_init()

    def ns_init(self):
        """ns flavor: the test is unshare's child (the init of the new namespaces)."""
        upid = self.proc.pid
        while True:
            kids = []
            try:
                for tid in os.listdir("/proc/%d/task" % upid):
                    with open("/proc/%d/task/%s/children" % (upid, tid)) as f:
                        kids += [int(x) for x in f.read().split()]
            except (OSError, ValueError):
                pass
            if kids:
                return kids[0]
            if self.proc.poll() is not None:
                raise Failure("unshare exited (%s) before starting the test" %
                              describe_status_rc(self.proc.returncode))
            if self.left() <= 0:
                raise Failure("timeout waiting for unshare's child")
            time.sleep(0.005)

    def wait_ready(self):
        while "ready" not in self.status_text().split("\n"):
            if self.proc.poll() is not None:
                if self.proc.returncode == 77:
                    raise Skip("the test skipped itself (exit 77, see its log)")
                raise Failure("exited before ready (%s): %s" % (
                    describe_status_rc(self.proc.returncode), self.final_reason()))
            if self.left() <= 0:
                raise Failure("timeout waiting for ready")
            time.sleep(0.02)
        if self.user is not None:
            # the flavor is only meaningful if the test really runs as the user
            try:
                with open("/proc/%d/status" % self.pid) as f:
                    ids = [ln.split()[1:] for ln in f if ln.startswith(("Uid:", "Gid:"))]
            except OSError:
                ids = []
            want = [[str(self.user[0])] * 4, [str(self.user[1])] * 4]
            if ids != want:
                raise Failure("the test does not run as %s: Uid/Gid %s" % (NONROOT_USER, ids))

    def final_reason(self):
        for line in self.status_text().splitlines():
            if line.startswith("FAIL"):
                return line[len("FAIL:"):].strip()
        return "no PASS/FAIL in the status file"

    def stasis_cmd(self, argv, what):
        self.ncmd += 1
        files = [os.path.join(self.tmp, "%s-%d.%s" % (what, self.ncmd, ext))
                 for ext in ("stdout", "stderr")]
        rc, out, err = run_cmd([self.stasis] + argv, self.left(), cwd=self.tmp,
                               user=self.user, files=files)
        self.stasis_err.append("%s stderr: %s" % (what, err.strip()))
        if rc is None:
            raise Failure("%s timed out" % what)
        if rc != 0:
            raise Failure("%s exit %d: %s" % (what, rc, (err.strip().splitlines() or [""])[-1]))
        return out

    def dump(self, extra=()):
        if self.pid:
            self.tree = [self.pid] + proc_descendants(self.pid)
        opts = ["dump", "-t", str(self.pid), "-D", self.img, "--no-sync", "-v", "-o",
                self.dump_log]
        opts += [o for o in self.meta.get("dump-opts", "").split(",") if o]
        opts += list(extra)
        os.makedirs(self.img, exist_ok=True)
        self.chown(self.img)
        self.stasis_cmd(opts, "dump")

    def check_original_gone(self):
        try:
            rc = self.proc.wait(timeout=min(10.0, max(self.left(), 0.1)))
        except subprocess.TimeoutExpired:
            raise Failure("the original is still running after dump") from None
        if self.r.flavor == "ns":
            # unshare reports its child's death by a signal as a failure of its own: the
            # test was killed if it neither passed nor failed
            lines = self.status_text().splitlines()
            if rc >= 0 and any(ln == "PASS" or ln.startswith("FAIL") for ln in lines):
                raise Failure("the original exited by itself after dump: %s" %
                              self.final_reason())
        elif rc >= 0:
            raise Failure("the original exited by itself after dump (%s): %s" % (
                describe_status_rc(rc), self.final_reason()))
        self.reap_original_tree()

    def reap_original_tree(self):
        """The dump killed the original descendants too: they are our zombies now (we are
        their subreaper). Reap them so that their pids are free for the restore."""
        deadline = time.monotonic() + min(10.0, max(self.left(), 0.1))
        while True:
            reap_all()
            alive = [p for p in self.tree if p != self.pid and pid_alive(p)]
            zombies = [p for p in self.tree if p != self.pid and not pid_alive(p)
                       and proc_stat(p) is not None]
            if not alive and not zombies:
                return
            if time.monotonic() >= deadline:
                if alive:
                    raise Failure("pids of the original tree still running after dump: %s"
                                  % alive[:10])
                raise Failure("pids of the original tree still zombies after dump: %s"
                              % zombies[:10])
            time.sleep(0.01)

    def restore_detached(self):
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        opts = ["restore", "-D", self.img, "-d", "--pidfile", self.pidfile, "-v", "-o",
                self.restore_log]
        opts += [o for o in self.meta.get("restore-opts", "").split(",") if o]
        self.stasis_cmd(opts, "restore")
        self.check_pidfile()

    def check_pidfile(self):
        try:
            with open(self.pidfile) as f:
                text = f.read().strip()
            rpid = int(text)
        except (OSError, ValueError) as e:
            raise Failure("bad pidfile: %s" % e) from None
        if rpid != self.pid:
            raise Failure("restored pid %d != original pid %d" % (rpid, self.pid))
        if not pid_alive(rpid):
            raise Failure("restored task %d is not running" % rpid)

    def reset_status(self):
        with open(self.status, "w"):
            pass

    def finish_original(self, expect_code):
        """SIGTERM the original (our Popen child) and check its verdict."""
        kill_pid(self.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=max(self.left(), 0.1))
        except subprocess.TimeoutExpired:
            raise Failure("timeout after SIGTERM") from None
        self.verdict(rc, expect_code)

    def finish_restored(self, expect_code):
        """SIGTERM the restored task (our child through the subreaper) and check it."""
        kill_pid(self.pid, signal.SIGTERM)
        status = wait_pid(self.pid, self.deadline)
        if status is None:
            raise Failure("timeout after SIGTERM to the restored task")
        code = None  # unknown when the task was not our child
        if status != -1:
            if os.WIFEXITED(status):
                code = os.WEXITSTATUS(status)
            elif os.WIFSIGNALED(status):
                code = -os.WTERMSIG(status)
        self.verdict(code, expect_code, not_child=(status == -1))

    def verdict(self, code, expect_code, not_child=False):
        text = self.status_text()
        passed = "PASS" in text.splitlines()
        if self.r.args.sabotage:
            if passed:
                raise Failure("sabotage not detected (the test passed)")
            self.sabotage_reason = self.final_reason()
            return
        if not passed:
            raise Failure(self.final_reason() + (" (%s)" % describe_status_rc(code)
                                                 if code is not None else ""))
        if not not_child and code != expect_code:
            raise Failure("status PASS but %s, expected exit %d" % (
                describe_status_rc(code), expect_code))

    def run(self):
        mode = self.meta.get("mode", "normal")
        expect = 42 if mode == "exit-status" else 0
        self.sabotage_reason = None
        self.start()
        self.wait_ready()
        if self.r.args.no_cr:
            self.finish_original(expect)
            return
        if mode == "leave-running":
            self.dump(["--leave-running"])
            time.sleep(0.1)
            if self.proc.poll() is not None:
                raise Failure("the original died after dump --leave-running (%s)" %
                              describe_status_rc(self.proc.returncode))
            self.reset_status()
            self.finish_original(expect)
            self.reset_status()
            self.restore_detached()
            self.finish_restored(expect)
        elif mode == "exit-status":
            self.dump()
            self.check_original_gone()
            self.restore_waiting(expect)
        else:
            self.dump()
            self.check_original_gone()
            self.restore_detached()
            self.finish_restored(expect)

    def restore_waiting(self, expect):
        argv = [self.stasis, "restore", "-D", self.img, "--pidfile", self.pidfile, "-v", "-o",
                self.restore_log]
        errpath = os.path.join(self.tmp, "restore.stderr")
        ef = user_file(errpath, self.user, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            p = subprocess.Popen(argv, cwd=self.tmp, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=ef,
                                 preexec_fn=as_user(self.user))
        finally:
            os.close(ef)
        self.bg.append(p)
        while not os.path.exists(self.pidfile) or not open(self.pidfile).read().strip():
            if p.poll() is not None:
                raise Failure("restore exited (%s) before writing the pidfile: %s" % (
                    describe_status_rc(p.returncode), " ".join(tail(errpath, 1) or [])))
            if self.left() <= 0:
                raise Failure("timeout waiting for the pidfile")
            time.sleep(0.02)
        time.sleep(0.05)
        self.check_pidfile()
        kill_pid(self.pid, signal.SIGTERM)
        try:
            rc = p.wait(timeout=max(self.left(), 0.1))
        except subprocess.TimeoutExpired:
            raise Failure("stasis restore did not exit after the task was told to stop") \
                from None
        self.stasis_err.append("restore stderr: %s" % " ".join(tail(errpath, 3) or []))
        text = self.status_text()
        if self.r.args.sabotage:
            if "PASS" in text.splitlines():
                raise Failure("sabotage not detected (the test passed)")
            self.sabotage_reason = self.final_reason()
            return
        if "PASS" not in text.splitlines():
            raise Failure(self.final_reason() + " (restore %s)" % describe_status_rc(rc))
        if rc != expect:
            raise Failure("stasis restore exited %s, expected %d" % (describe_status_rc(rc),
                                                                      expect))

    def cleanup(self):
        """Kills what is left of this test by PID and reaps every child."""
        if self.pid and pid_alive(self.pid):
            kill_pid(self.pid)
        for p in [self.proc] + self.bg:
            if p is None:
                continue
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.pid:
            wait_pid(self.pid, time.monotonic() + 5)
        reap_all()
        self.kill_leftovers()

    def kill_leftovers(self):
        """SIGKILLs (by PID) and reaps every descendant of the runner started for this
        test: children of a tree test are reparented to us when their root exits."""
        deadline = time.monotonic() + 10
        while True:
            left = [p for p in proc_descendants(os.getpid())
                    if pid_key(p) not in self.foreign]
            live = [p for p in left if pid_alive(p)]
            for p in live:
                kill_pid(p)
            reap_all()
            if not left or time.monotonic() >= deadline:
                return
            time.sleep(0.01)

    def show_logs(self):
        for label, path in (("test log", self.log), ("dump.log", self.dump_log),
                            ("restore.log", self.restore_log)):
            lines = tail(path)
            if lines is None:
                continue
            print("    --- %s (%s), last %d lines:" % (label, path, TAIL_LINES))
            for ln in lines:
                print("    | " + ln)
        for ln in self.stasis_err:
            print("    " + ln)

    def remove(self, keep):
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        # keep logs and small images, drop big page files
        for root, _, files in os.walk(self.tmp):
            for fn in files:
                path = os.path.join(root, fn)
                try:
                    if os.path.getsize(path) > (32 << 20):
                        os.unlink(path)
                except OSError:
                    pass


def describe_status_rc(rc):
    if rc is None:
        return "no status"
    if rc < 0:
        return "killed by signal %d" % -rc
    return "exit %d" % rc


# ---------------------------------------------------------------------------------------
# bad input


class BadInput:
    """Bad-input checks: each must fail with a non-zero exit, one non-empty stderr line,
    and leave no process behind."""

    def __init__(self, runner, build):
        self.r = runner
        self.build = build
        self.stasis = os.path.join(build, "stasis")
        self.tmp = tempfile.mkdtemp(prefix="stasis-bad-", dir="/tmp")
        self.ref = None        # (image dir, pid) of a reference dump of pid_same
        self.ref_error = None

    def expect_failure(self, argv, what, pid=None, allowed=()):
        before = set(my_children())
        rc, out, err = run_cmd(argv, BAD_TIMEOUT, cwd=self.tmp)
        time.sleep(0.2)
        leftovers = [c for c in my_children() if c not in before and c not in allowed]
        restored = pid is not None and pid_alive(pid) and pid not in allowed
        for c in leftovers:
            kill_pid(c)
        if restored:
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 5)
        reap_all()
        lines = err.splitlines()
        if rc is None:
            raise Failure("%s: timed out" % what)
        if rc == 0:
            raise Failure("%s: exit 0 (stderr: %s)" % (what, err.strip()[:200]))
        if len(lines) != 1 or not lines[0].strip():
            raise Failure("%s: expected one line on stderr, got %d: %r" % (
                what, len(lines), err[:300]))
        if leftovers:
            raise Failure("%s: left processes behind: %s" % (what, leftovers))
        if restored:
            raise Failure("%s: a process with pid %d exists after the failed restore" % (
                what, pid))
        return lines[0]

    def start_test(self, name):
        run = CkptRun(self.r, self.build, name, {"timeout": BAD_TIMEOUT})
        run.start()
        run.wait_ready()
        return run

    def reference(self):
        if self.ref is None and self.ref_error is None:
            run = None
            try:
                run = self.start_test("pid_same")
                run.dump()
                run.check_original_gone()
                self.ref = (run.img, run.pid)
            except Failure as e:
                self.ref_error = "reference dump of pid_same failed: %s" % e
            finally:
                if run:
                    run.cleanup()
                    self.ref_run = run
        if self.ref_error:
            raise Failure(self.ref_error)
        return self.ref

    def variant(self, tag):
        img, pid = self.reference()
        dst = os.path.join(self.tmp, tag)
        shutil.copytree(img, dst)
        return dst, pid

    @staticmethod
    def image_file(d, prefix, pid):
        path = os.path.join(d, "%s-%d.img" % (prefix, pid))
        if not os.path.exists(path):
            raise Failure("no %s-%d.img in the dump (files: %s)" % (
                prefix, pid, " ".join(sorted(os.listdir(d)))))
        return path

    def restore_argv(self, d):
        return [self.stasis, "restore", "-D", d, "-d", "--pidfile",
                os.path.join(self.tmp, "pidfile")]

    # the checks -------------------------------------------------------------------------

    def bad_dump_nopid(self):
        pid = 0
        maxpid = int(open("/proc/sys/kernel/pid_max").read())
        for cand in range(maxpid - 1, 300, -1):
            if not os.path.exists("/proc/%d" % cand):
                pid = cand
                break
        self.expect_failure([self.stasis, "dump", "-t", str(pid), "-D",
                             os.path.join(self.tmp, "nopid")], "dump of free pid %d" % pid)

    def bad_dump_kthread(self):
        try:
            comm = open("/proc/2/comm").read().strip()
        except OSError:
            comm = ""
        if comm != "kthreadd":
            raise Skip("pid 2 is not kthreadd here")
        self.expect_failure([self.stasis, "dump", "-t", "2", "-D",
                             os.path.join(self.tmp, "kthread")], "dump of kthreadd")

    def bad_dump_self(self):
        d = os.path.join(self.tmp, "self")
        os.makedirs(d, exist_ok=True)
        self.expect_failure(["sh", "-c", 'exec "$0" dump -t $$ -D "$1"', self.stasis, d],
                            "stasis dumping itself")

    def bad_restore_empty(self):
        d = os.path.join(self.tmp, "empty")
        os.makedirs(d, exist_ok=True)
        self.expect_failure(self.restore_argv(d), "restore from an empty dir")

    def bad_restore_truncated_core(self):
        d, pid = self.variant("trunc-core")
        path = self.image_file(d, "core", pid)
        size = os.path.getsize(path)
        os.truncate(path, size // 2)
        self.expect_failure(self.restore_argv(d), "restore with a truncated core image",
                            pid=pid)

    def flip(self, path, off):
        with open(path, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            if not b:
                raise Failure("%s has no byte at offset %d" % (path, off))
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))

    def bad_restore_flipped_mm(self):
        d, pid = self.variant("flip-mm")
        path = self.image_file(d, "mm", pid)
        self.flip(path, os.path.getsize(path) // 2)
        self.expect_failure(self.restore_argv(d), "restore with a corrupted mm image",
                            pid=pid)

    def bad_restore_flipped_pages(self):
        d, pid = self.variant("flip-pages")
        path = self.image_file(d, "pages", pid)
        size = os.path.getsize(path)
        if size <= 4096:
            raise Failure("pages-%d.img has no page data (%d bytes)" % (pid, size))
        self.flip(path, 4096 + 1234)
        self.expect_failure(self.restore_argv(d), "restore with a corrupted pages image",
                            pid=pid)

    def bad_restore_cgns_root(self):
        """A cgroup namespace root climbing out of the hierarchy ("/../..") must be refused
        on load, naming it, before any process exists."""
        d, pid = self.variant("cgns-root")
        rc, _, err = run_cmd([os.path.join(self.build, "tests", "tools", "imgedit"), d,
                              str(pid), "cgns-root", "/../../etc"], 30)
        if rc != 0:
            raise Failure("imgedit cgns-root failed: %s" % err.strip()[:200])
        line = self.expect_failure(self.restore_argv(d),
                                   "restore with a cgroup namespace root outside the "
                                   "hierarchy", pid=pid)
        if "/../../etc" not in line or "cgroup namespace" not in line:
            raise Failure("the error does not name the bad root: %s" % line)
        return line

    def bad_restore_pid_taken(self):
        run = self.start_test("pid_same")
        try:
            run.dump(["--leave-running"])
            st0 = proc_stat(run.pid)
            if st0 is None or run.proc.poll() is not None:
                raise Failure("the original died after dump --leave-running")
            self.expect_failure(self.restore_argv(run.img), "restore while the pid is taken",
                                allowed=(run.pid,))
            st1 = proc_stat(run.pid)
            if st1 is None or st1[2] != st0[2] or run.proc.poll() is not None:
                raise Failure("the original was disturbed by the failed restore")
            run.finish_original(0)
        finally:
            run.cleanup()
            shutil.rmtree(run.tmp, ignore_errors=True)

    # A calls setsid() and forks B; B forks C, then B calls setsid() itself: C stays in
    # A's session, whose leader is outside the tree rooted at B.
    OUTSIDE_SESSION = r"""
import os, sys, time
os.setsid()
r, w = os.pipe()
b = os.fork()
if b == 0:
    c = os.fork()
    if c == 0:
        os.close(r); os.close(w)
        while True:
            time.sleep(1)
    os.setsid()
    os.write(w, b"%d %d\n" % (os.getpid(), c))
    os.close(r); os.close(w)
    while True:
        time.sleep(1)
os.close(w)
sys.stdout.write(os.read(r, 100).decode())
sys.stdout.flush()
while True:
    time.sleep(1)
"""

    def bad_dump_outside_session(self):
        p = subprocess.Popen([sys.executable, "-c", self.OUTSIDE_SESSION],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        pids = []
        try:
            line = ""
            ready = time.monotonic() + BAD_TIMEOUT
            os.set_blocking(p.stdout.fileno(), False)
            while "\n" not in line and time.monotonic() < ready and p.poll() is None:
                chunk = p.stdout.read()
                line += (chunk or b"").decode()
                time.sleep(0.02)
            try:
                b, c = (int(x) for x in line.split())
            except ValueError:
                raise Failure("the setsid helper did not start: %r" % line) from None
            pids = [c, b]
            before = [proc_stat(x) for x in (b, c)]
            self.expect_failure([self.stasis, "dump", "-t", str(b), "-D",
                                 os.path.join(self.tmp, "outside-session")],
                                "dump of a tree whose session leader is outside it",
                                allowed=(b, c))
            for x, st in zip((b, c), before):
                now = proc_stat(x)
                if now is None or now[2] != st[2] or now[0] not in ("S", "R"):
                    raise Failure("pid %d was disturbed by the failed dump (%s)" % (x, now))
                with open("/proc/%d/status" % x) as f:
                    tracer = [ln for ln in f if ln.startswith("TracerPid:")]
                if tracer and tracer[0].split()[1] != "0":
                    raise Failure("pid %d is still traced after the failed dump" % x)
        finally:
            for x in pids + [p.pid]:
                kill_pid(x)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            deadline = time.monotonic() + 5
            while any(proc_stat(x) is not None for x in pids) and time.monotonic() < deadline:
                reap_all()
                time.sleep(0.01)
            p.stdout.close()

    # escalation: images of a user's process, hand-edited (tests/tools/imgedit), restored
    # by that user with a stasis holding only CAP_CHECKPOINT_RESTORE (ambient, setpriv)
    def user_reference(self):
        """(image dir, pid, uid, gid) of pid_same run and dumped as NONROOT_USER in a
        directory the user owns (dumped by root: the images are then given to the user)."""
        if getattr(self, "uref", None):
            return self.uref
        if os.geteuid() != 0 or in_rootless_container():
            raise Skip("needs the host's root to run a test as %s" % NONROOT_USER)
        if not shutil.which("setpriv"):
            raise Skip("setpriv not found (package util-linux)")
        pw, reason = Runner.ensure_user()
        if reason:
            raise Skip(reason)
        saved = (self.r.user, self.r.user_dir, self.r.user_stasis)
        os.chmod(self.tmp, 0o755)  # the user runs its copy of the test from here
        self.r.user, self.r.user_dir = (pw.pw_uid, pw.pw_gid), self.tmp
        self.r.user_stasis = self.stasis
        try:
            run = CkptRun(self.r, self.build, "pid_same", {"timeout": BAD_TIMEOUT})
        finally:
            self.r.user, self.r.user_dir, self.r.user_stasis = saved
        self.urun = run
        try:
            run.start()
            run.wait_ready()
            run.user = None  # root dumps it
            run.dump()
            run.check_original_gone()
        finally:
            run.cleanup()
        for dirpath, _, files in os.walk(run.img):
            os.chown(dirpath, pw.pw_uid, pw.pw_gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), pw.pw_uid, pw.pw_gid)
        self.uref = (run.img, run.pid, pw.pw_uid, pw.pw_gid)
        return self.uref

    def user_variant(self, tag, *edit):
        img, pid, uid, gid = self.user_reference()
        dst = os.path.join(self.urun.tmp, tag)
        shutil.copytree(img, dst)
        rc, _, err = run_cmd([os.path.join(self.build, "tests", "tools", "imgedit"), dst,
                              str(pid)] + list(edit), 30)
        if rc != 0:
            raise Failure("imgedit %s failed: %s" % (" ".join(edit), err.strip()[:200]))
        for f in os.listdir(dst):
            os.chown(os.path.join(dst, f), uid, gid)
        os.chown(dst, uid, gid)
        argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
                "--inh-caps=+checkpoint_restore", "--ambient-caps=+checkpoint_restore", "--",
                self.stasis, "restore", "-D", dst, "-d", "--pidfile",
                os.path.join(self.urun.tmp, "pidfile")]
        return argv, pid

    def bad_restore_user_claims_root(self):
        argv, pid = self.user_variant("claims-root", "creds-root")
        line = self.expect_failure(argv, "a user restoring an image edited to uid 0", pid=pid)
        if "uid 0" not in line and "gid 0" not in line:
            raise Failure("the error does not name the refused id: %s" % line)
        return line

    def bad_restore_user_caps(self):
        argv, pid = self.user_variant("caps-full", "caps-full")
        line = self.expect_failure(argv, "a user restoring an image edited to hold every "
                                   "capability", pid=pid)
        if "cap_chown" not in line or "does not hold" not in line or "0xffffffffff" not in line:
            raise Failure("the error does not name the missing capabilities: %s" % line)
        return line

    def bad_restore_user_root_file(self):
        secret = os.path.join(self.tmp, "root-only")
        with open(secret, "w") as f:
            f.write("secret\n")
        os.chmod(secret, 0o600)
        os.chmod(self.tmp, 0o755)
        argv, pid = self.user_variant("root-file", "file-path", secret)
        line = self.expect_failure(argv, "a user restoring an image edited to open a "
                                   "root-only file", pid=pid)
        if secret not in line or "ermission" not in line:
            raise Failure("the error does not name the file and the refusal: %s" % line)
        return line

    def bad_restore_user_userns_map(self):
        """ns_user (root writes a map of host ids 10000..11999) dumped by root, restored
        by a user who does not own those ids: the map write is refused, named."""
        _, _, uid, gid = self.user_reference()
        run = CkptRun(self.r, self.build, "ns_user", {"timeout": BAD_TIMEOUT})
        try:
            # everything the restoring user must reach is made reachable: only the map
            # is out of its rights
            for path, mode in ((run.tmp, 0o755), (run.cwd, 0o777)):
                os.chmod(path, mode)
            for path in (run.status, run.log):
                with open(path, "a"):
                    pass
                os.chmod(path, 0o666)
            run.start()
            run.wait_ready()
            run.dump()
            run.check_original_gone()
        finally:
            run.cleanup()
        try:
            for f in os.listdir(run.img):
                os.chown(os.path.join(run.img, f), uid, gid)
            os.chown(run.img, uid, gid)
            argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
                    "--inh-caps=+checkpoint_restore", "--ambient-caps=+checkpoint_restore",
                    "--", self.stasis, "restore", "-D", run.img, "-d"]
            line = self.expect_failure(argv, "a user restoring a user namespace mapping ids "
                                       "it does not own", pid=run.pid)
        finally:
            shutil.rmtree(run.tmp, ignore_errors=True)
        if "uid_map" not in line and "gid_map" not in line:
            raise Failure("the error does not name the map: %s" % line)
        return line

    def restore_join_ns(self):
        """Restore into a pinned namespace: a UTS namespace made by a helper process,
        bind-mounted on a file (the nsfs pin), the helper gone; `--join-ns uts:FILE` puts
        the restored root in it (same inode, its hostname)."""
        if os.geteuid() != 0 or in_rootless_container():
            raise Skip("needs the host's root (bind mount of an nsfs file)")
        d, pid = self.variant("join-ns")
        pin = os.path.join(self.tmp, "uts-pin")
        open(pin, "w").close()
        holder = subprocess.Popen(["unshare", "--uts", "sh", "-c",
                                   "hostname stasis-pinned && exec sleep 30"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        mounted = False
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if open("/proc/%d/comm" % holder.pid).read().strip() == "sleep":
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or holder.poll() is not None:
                    raise Failure("the namespace holder did not start")
                time.sleep(0.02)
            want = os.stat("/proc/%d/ns/uts" % holder.pid).st_ino
            rc, _, err = run_cmd(["mount", "--bind", "/proc/%d/ns/uts" % holder.pid, pin], 10)
            if rc != 0:
                raise Skip("cannot bind-mount an nsfs file: %s" % err.strip()[:100])
            mounted = True
            kill_pid(holder.pid)
            holder.wait(timeout=10)
            argv = self.restore_argv(d) + ["--join-ns", "uts:" + pin]
            rc, _, err = run_cmd(argv, BAD_TIMEOUT, cwd=self.tmp)
            if rc != 0:
                raise Failure("restore --join-ns failed: %s" % err.strip()[:200])
            try:
                got = os.stat("/proc/%d/ns/uts" % pid).st_ino
            finally:
                kill_pid(pid)
                wait_pid(pid, time.monotonic() + 5)
            if got != want:
                raise Failure("the restored task is in UTS namespace %d, not the pinned %d"
                              % (got, want))
            return "restored into the pinned UTS namespace %d" % want
        finally:
            if holder.poll() is None:
                kill_pid(holder.pid)
                holder.wait(timeout=10)
            if mounted:
                run_cmd(["umount", pin], 10)

    ICMP_PING = r"""
import socket, struct, sys
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
sk = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sk.settimeout(3)
body = struct.pack("!BBHHH", 8, 0, 0, 0x5354, 1) + b"stasis"
sk.sendto(struct.pack("!BBHHH", 8, 0, csum(body), 0x5354, 1) + b"stasis", (sys.argv[1], 0))
while True:
    d, a = sk.recvfrom(1500)
    if a[0] == sys.argv[1] and d[(d[0] & 15) * 4] == 0:
        print("reply")
        break
"""

    def restore_veth_external(self):
        """A veth whose peer is outside the tree (the container shape: the host end on a
        bridge). Everything runs in a net namespace made by the test (N0, with a bridge
        br0 10.77.0.1/24); the task (a sleep) has its own with eth0 10.77.0.2/24, the
        pair's other end vh0 on br0. Dump without `--external veth[eth0]` must fail
        naming it; with it, dump; restore without `--external veth[eth0]:vh0@br0` must
        fail naming it; with it, the restored eth0 keeps its ifindex, MAC and address,
        vh0 is back on br0, and an ICMP echo from N0 gets its reply."""
        if os.geteuid() != 0 or in_rootless_container():
            raise Skip("needs the host's root (network namespaces, a bridge)")
        for tool in ("ip", "nsenter", "unshare"):
            if not shutil.which(tool):
                raise Skip("%s not found (packages iproute2, util-linux)" % tool)
        d = tempfile.mkdtemp(prefix="veth-", dir=self.tmp)
        img = os.path.join(d, "img")
        outer = task = restored = None
        try:
            outer = subprocess.Popen(["unshare", "--net", "sleep", "120"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            n0 = ["nsenter", "--net=/proc/%d/ns/net" % outer.pid]

            def wait_sleep(p):
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and p.poll() is None:
                    try:
                        if open("/proc/%d/comm" % p.pid).read().strip() == "sleep":
                            return
                    except OSError:
                        pass
                    time.sleep(0.02)
                raise Failure("a namespace holder did not start")

            def sh(argv, what):
                rc, out, err = run_cmd(argv, 30, cwd=d)
                if rc != 0:
                    raise Failure("%s failed: %s" % (what, err.strip()[:200]))
                return out

            wait_sleep(outer)
            sh(n0 + ["ip", "link", "add", "br0", "type", "bridge"], "ip link add br0")
            sh(n0 + ["ip", "addr", "add", "10.77.0.1/24", "dev", "br0"], "ip addr add")
            sh(n0 + ["ip", "link", "set", "br0", "up"], "ip link set br0 up")
            task = subprocess.Popen(n0 + ["unshare", "--net", "sleep", "120"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, cwd=d)
            wait_sleep(task)
            pid = task.pid
            inner = ["nsenter", "--net=/proc/%d/ns/net" % pid]
            sh(n0 + ["ip", "link", "add", "vh0", "type", "veth", "peer", "name", "eth0",
                     "netns", str(pid)], "ip link add vh0")
            sh(n0 + ["ip", "link", "set", "vh0", "master", "br0", "up"], "vh0 on br0")
            sh(inner + ["ip", "addr", "add", "10.77.0.2/24", "dev", "eth0"], "eth0 address")
            sh(inner + ["ip", "link", "set", "eth0", "up"], "eth0 up")
            before = sh(inner + ["ip", "-o", "link", "show", "eth0"], "ip link show")
            ping = n0 + ["python3", "-c", self.ICMP_PING, "10.77.0.2"]
            if "reply" not in sh(ping, "ping before the dump"):
                raise Failure("no ICMP reply before the dump")
            dump = n0 + [self.stasis, "dump", "-t", str(pid), "-D", img]
            line = self.expect_failure(dump, "dump of a veth with its peer outside, "
                                       "undeclared", allowed=(outer.pid, pid))
            if "--external veth[eth0]" not in line:
                raise Failure("the error does not name --external veth[eth0]: %s" % line)
            if not pid_alive(pid):
                raise Failure("the failed dump did not leave the task running")
            sh(dump + ["--external", "veth[eth0]"], "dump --external veth[eth0]")
            task.wait(timeout=10)
            rst = n0 + [self.stasis, "restore", "-D", img, "-d", "--pidfile",
                        os.path.join(d, "pidfile")]
            line = self.expect_failure(rst, "restore of an external veth without its "
                                       "host end", pid=pid, allowed=(outer.pid,))
            if "--external veth[eth0]:" not in line:
                raise Failure("the error does not name --external veth[eth0]: %s" % line)
            sh(rst + ["--external", "veth[eth0]:vh0@br0"], "restore --external")
            restored = pid
            after = sh(inner + ["ip", "-o", "link", "show", "eth0"], "ip link show")
            # "N: eth0@ifM: <FLAGS> ... link/ether MAC": same ifindex, name and MAC
            def key(line):
                f = line.split()
                return f[0], f[1].split("@")[0], f[f.index("link/ether") + 1]
            if key(before) != key(after):
                raise Failure("eth0 changed: %s -> %s" % (key(before), key(after)))
            if "10.77.0.2/24" not in sh(inner + ["ip", "-o", "addr", "show", "eth0"], "addr"):
                raise Failure("eth0 lost its address")
            if "master br0" not in sh(n0 + ["ip", "-o", "link", "show", "vh0"], "vh0"):
                raise Failure("the host end vh0 is not on br0")
            if "reply" not in sh(ping, "ping after the restore"):
                raise Failure("no ICMP reply after the restore")
            return "eth0 %s restored, host end vh0 on br0, ICMP echo answered" % key(after)[2]
        finally:
            for p in (restored, task.pid if task else None, outer.pid if outer else None):
                if p and pid_alive(p):
                    kill_pid(p)
            for p in (task, outer):
                if p:
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
            reap_all()

    def restore_user_helper(self):
        """A rootless container of NONROOT_USER (`unshare --map-auto --map-root-user
        --pid --fork`: its own id and its /etc/subuid range mapped) running a counter,
        dumped and restored from outside by that user with only CAP_CHECKPOINT_RESTORE:
        without a helper the map write is refused (named); with `--helper SOCKET` (a
        `stasis helper --user` run by root) the maps are written by the helper, the
        pids (both levels), the maps are the same and the counter carries on. The
        container's init is the root of the dump: stasis asks the helper itself."""
        return self.user_helper(False)

    def restore_user_helper_tree(self):
        """The same with `unshare` itself as the root of the dump: its restored copy
        creates the container, and asks stasis (pidreq channel) for the maps, which
        stasis has the helper write."""
        return self.user_helper(True)

    def user_helper(self, from_launcher):
        _, _, uid, gid = self.user_reference()
        Runner.ensure_subids(NONROOT_USER)
        d = tempfile.mkdtemp(prefix="helper-", dir=self.tmp)
        os.chmod(d, 0o755)
        os.chown(d, uid, gid)
        count, img = os.path.join(d, "count"), os.path.join(d, "img")
        user = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups"]
        caps = ["--inh-caps=+checkpoint_restore", "--ambient-caps=+checkpoint_restore", "--"]
        script = 'i=0; while :; do i=$((i+1)); echo $i > %s; sleep 0.05; done' % count
        procs, helper, restored = [], None, None

        def read_count():
            try:
                with open(count) as f:
                    return int(f.read().strip() or "0")
            except (OSError, ValueError):
                return 0

        def wait_for(cond, what, secs=10):
            deadline = time.monotonic() + secs
            while time.monotonic() < deadline:
                v = cond()
                if v:
                    return v
                time.sleep(0.02)
            raise Failure("timed out waiting for " + what)

        def ids(pid):
            with open("/proc/%d/uid_map" % pid) as f:
                um = f.read().split()
            with open("/proc/%d/gid_map" % pid) as f:
                gm = f.read().split()
            with open("/proc/%d/status" % pid) as f:
                nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")]
            return um, gm, nspid

        try:
            u = subprocess.Popen(user + ["unshare", "--map-auto", "--map-root-user", "--pid",
                                         "--fork", "sh", "-c", script], cwd=d,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            procs.append(u.pid)
            wait_for(lambda: read_count() >= 3, "the counter to start")
            kids = proc_children(u.pid)
            if len(kids) != 1:
                raise Failure("unshare has %d children" % len(kids))
            init = kids[0]
            before = ids(init)
            if len(before[0]) < 6:
                raise Failure("the container does not map a subordinate range: uid_map %s"
                              % before[0])
            root = u.pid if from_launcher else init
            rc, _, err = run_cmd(user + caps + [self.stasis, "dump", "-t", str(root), "-D",
                                                img], BAD_TIMEOUT, cwd=d)
            if rc != 0:
                raise Failure("dump as %s failed: %s" % (NONROOT_USER, err.strip()[:300]))
            wait_pid(u.pid, time.monotonic() + 5)
            at_dump = read_count()
            pidfile = os.path.join(d, "pidfile")
            argv = user + caps + [self.stasis, "restore", "-D", img, "-d", "--pidfile",
                                  pidfile]
            line = self.expect_failure(argv, "a user restoring its rootless container "
                                       "without the helper", pid=root)
            if "uid_map" not in line or "helper" not in line:
                raise Failure("the error does not name the map and the helper: %s" % line)
            sock, hlog = os.path.join(d, "helper.sock"), os.path.join(d, "helper.log")
            helper = subprocess.Popen([self.stasis, "helper", "--socket", sock, "--user",
                                       str(uid), "-v", "-o", hlog],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            wait_for(lambda: os.path.exists(sock), "the helper's socket")
            rc, _, err = run_cmd(argv + ["--helper", sock, "-v", "-o",
                                         os.path.join(d, "restore.log")], BAD_TIMEOUT, cwd=d)
            if rc != 0:
                raise Failure("restore with the helper failed: %s" % err.strip()[:300])
            with open(pidfile) as f:
                restored = int(f.read().strip())
            if restored != root:
                raise Failure("restored as pid %d, not %d" % (restored, root))
            after = ids(init)
            if after != before:
                raise Failure("ids/pids changed: %s -> %s" % (before, after))
            wait_for(lambda: read_count() > at_dump + 3, "the counter to carry on")
            with open(hlog) as f:
                hl = f.read()
            if "uid_map for pid" not in hl or "gid_map for pid" not in hl:
                raise Failure("the helper did not write the maps: %s" % hl[-300:])
            return "restored pid %d (container init NSpid %s) through the helper, " \
                "counter %d -> %d" % (restored, " ".join(after[2][0]), at_dump, read_count())
        finally:
            victims = []
            if restored:
                victims = proc_descendants(restored) + [restored]
            for p in victims + procs:
                kill_pid(p)
            if helper:
                helper.terminate()
                try:
                    helper.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    helper.kill()
                    helper.wait(timeout=5)
            reap_all()

    def bad_restore_join_not_nsfs(self):
        d, pid = self.variant("join-not-nsfs")
        plain = os.path.join(self.tmp, "not-a-namespace")
        open(plain, "w").close()
        line = self.expect_failure(self.restore_argv(d) + ["--join-ns", "uts:" + plain],
                                   "restore --join-ns with a plain file", pid=pid)
        if "not a namespace file" not in line:
            raise Failure("the error does not say it is not a namespace file: %s" % line)
        return line

    def pin_check(self, pins, expect):
        """Every file of @pins is a pin of @expect = {name: (kind, pid)}: an nsfs file of
        that kind, the namespace /proc/PID/ns/KIND of the restored task (same inode)."""
        got = sorted(os.listdir(pins))
        if got != sorted(expect):
            raise Failure("pin files %s, expected %s" % (got, sorted(expect)))
        inos = {}
        for name, (kind, pid) in expect.items():
            path = os.path.join(pins, name)
            if nsfs_type(path) != CLONE_FLAG[kind]:
                raise Failure("%s is not a %s namespace file (NS_GET_NSTYPE %s)" % (
                    path, kind, nsfs_type(path)))
            ino = os.stat(path).st_ino
            want = os.stat("/proc/%d/ns/%s" % (pid, kind)).st_ino
            if ino != want:
                raise Failure("%s is namespace %d, pid %d is in %d" % (path, ino, pid, want))
            if not any(mp == os.path.realpath(path) for mp in mounts_under(pins)):
                raise Failure("%s is not a mount point" % path)
            inos[name] = ino
        return inos

    def pin_start(self, name):
        """Checkpoint test @name started and dumped (the original gone), with an empty
        0700 pin directory in its tmp dir: (run, pins). Pair with pin_done."""
        run = CkptRun(self.r, self.build, name, {"timeout": BAD_TIMEOUT})
        pins = os.path.join(run.tmp, "pins")
        os.mkdir(pins, 0o700)
        try:
            run.start()
            run.wait_ready()
            run.dump()
            run.check_original_gone()
        except BaseException:
            self.pin_done(run)
            raise
        return run, pins

    @staticmethod
    def pin_restore(run, pins):
        run.stasis_cmd(["restore", "-D", run.img, "-d", "--pidfile", run.pidfile, "-v",
                        "-o", run.restore_log, "--pin-ns", pins], "restore")
        run.check_pidfile()

    @staticmethod
    def pin_done(run):
        """Every process of @run killed, every pin under its tmp dir unmounted, the dir
        removed (kept, with a warning, if something stays mounted)."""
        run.cleanup()
        umount_under(run.tmp)
        if mounts_under(run.tmp):
            print("    warning: still mounted: %s" % mounts_under(run.tmp), flush=True)
        else:
            shutil.rmtree(run.tmp, ignore_errors=True)

    def restore_pin_cgroupns(self):
        """`restore --pin-ns DIR` of ns_cgroup: the cgroup namespaces its child and
        grandchild unshared are pinned (nsfs files of the restored tasks' namespaces, same
        inodes) and stay cgroup namespace files after the tasks exit."""
        if os.geteuid() != 0 or in_rootless_container():
            raise Skip("needs the host's root (mounts, cgroups)")
        run, pins = self.pin_start("ns_cgroup")
        try:
            if len(run.tree) != 3:
                raise Failure("ns_cgroup should be three processes, was %s" % run.tree)
            _, child, grandchild = run.tree
            self.pin_restore(run, pins)
            expect = {"cgroup-%d" % child: ("cgroup", child),
                      "cgroup-%d" % grandchild: ("cgroup", grandchild)}
            self.pin_check(pins, expect)
            run.finish_restored(0)
            for name in expect:
                if nsfs_type(os.path.join(pins, name)) != CLONE_FLAG["cgroup"]:
                    raise Failure("%s is no cgroup namespace file after the tasks exited" %
                                  name)
            return "pinned %s" % " and ".join(sorted(expect))
        finally:
            self.pin_done(run)

    def restore_pin_ns(self):
        """`restore --pin-ns DIR` of ns_uts (the root's UTS namespace and its child's):
        DIR/uts-ROOT and DIR/uts-CHILD are the restored tasks' namespaces (nsfs, same
        inodes); they outlive the tasks (nsenter reads their hostnames); a restore into the
        same DIR is refused naming the existing pin; a restore with `--join-ns
        uts:DIR/uts-ROOT --pin-ns DIR2` puts the root back in the pinned namespace and pins
        only the child's new one. Every pin is unmounted at the end, whatever happened."""
        if os.geteuid() != 0:
            raise Skip("needs root (mounts)")
        if not shutil.which("nsenter"):
            raise Skip("nsenter not found (package util-linux)")
        run, pins = self.pin_start("ns_uts")
        try:
            if len(run.tree) != 2:
                raise Failure("ns_uts should be two processes, was %s" % run.tree)
            root, child = run.tree
            self.pin_restore(run, pins)
            rpin, cpin = "uts-%d" % root, "uts-%d" % child
            inos = self.pin_check(pins, {rpin: ("uts", root), cpin: ("uts", child)})
            run.finish_restored(0)
            deadline = time.monotonic() + 10
            while pid_alive(child) and time.monotonic() < deadline:
                reap_all()
                time.sleep(0.01)
            if pid_alive(child):
                raise Failure("the restored child %d did not exit with its parent" % child)
            # the tasks are gone, their namespaces live on in the pins
            for name, host in ((rpin, "stasis-outer"), (cpin, "stasis-inner")):
                rc, out, err = run_cmd(["nsenter", "--uts=" + os.path.join(pins, name),
                                        "hostname"], 10)
                if rc != 0 or out.strip() != host:
                    raise Failure("nsenter --uts=%s hostname: %s %r (want %s)" % (
                        name, describe_status_rc(rc), (out + err).strip()[:100], host))
            line = self.expect_failure([self.stasis, "restore", "-D", run.img, "-d",
                                        "--pin-ns", pins],
                                       "restore --pin-ns into a directory with its pins",
                                       pid=root)
            if os.path.join(pins, rpin) not in line:
                raise Failure("the refusal does not name the existing pin: %s" % line)
            if len(mounts_under(pins)) != 2:
                raise Failure("the refused restore changed the mounts under %s: %s" % (
                    pins, mounts_under(pins)))
            # a restore into the pinned namespace: the root joins it (not pinned again: not
            # created by this restore), the child makes its own (pinned)
            run.reset_status()
            pins2 = os.path.join(run.tmp, "pins2")
            os.mkdir(pins2, 0o700)
            run.stasis_cmd(["restore", "-D", run.img, "-d", "--pidfile", run.pidfile, "-v",
                            "-o", run.restore_log, "--join-ns",
                            "uts:" + os.path.join(pins, rpin), "--pin-ns", pins2], "restore")
            run.check_pidfile()
            got = os.stat("/proc/%d/ns/uts" % root).st_ino
            if got != inos[rpin]:
                raise Failure("the root is in UTS namespace %d, not the pinned %d" %
                              (got, inos[rpin]))
            self.pin_check(pins2, {cpin: ("uts", child)})
            # shared: a name set through the pin is the restored root's, and back
            for name in ("stasis-via-pin", "stasis-outer"):
                rc, _, err = run_cmd(["nsenter", "--uts=" + os.path.join(pins, rpin),
                                      "hostname", name], 10)
                rc2, seen, err2 = run_cmd(["nsenter", "-t", str(root), "-u", "hostname"], 10)
                if rc != 0 or rc2 != 0 or seen.strip() != name:
                    raise Failure("hostname %s set through the pin, the root sees %r (%s)" % (
                        name, seen.strip(), (err + err2).strip()[:100]))
            run.finish_restored(0)
            umount_under(pins2)
            # below the mounts: the files stasis created, empty, 0600
            umount_under(pins)
            for name in (rpin, cpin):
                st = os.lstat(os.path.join(pins, name))
                if not stat.S_ISREG(st.st_mode) or st.st_size or st.st_mode & 0o7777 != 0o600:
                    raise Failure("pin file %s: mode %o, %d bytes (want an empty 0600 file)"
                                  % (name, st.st_mode, st.st_size))
            return "pinned %s and %s, alive after the tasks exited, joined again" % (
                rpin, cpin)
        finally:
            self.pin_done(run)

    def bad_restore_pin_not_dir(self):
        d, pid = self.variant("pin-not-dir")
        plain = os.path.join(self.tmp, "pin-here-not-a-dir")
        open(plain, "w").close()
        line = self.expect_failure(self.restore_argv(d) + ["--pin-ns", plain],
                                   "restore --pin-ns with a plain file", pid=pid)
        if plain not in line or "not a directory" not in line:
            raise Failure("the error does not name the path as not a directory: %s" % line)
        return line

    # `unshare -Urpfui --mount-proc` with a counter as the init of its pid namespace
    UNSHARE_CTR = ["unshare", "-Urpfui", "--mount-proc", "sh", "-c",
                   'hostname ctr-test && exec "$0"']

    @staticmethod
    def counter_lines(path):
        """(pid, count) of every complete line the demo counter wrote to @path."""
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            return []
        out = []
        for ln in text.split("\n")[:-1]:
            parts = ln.split()
            if len(parts) == 4 and parts[0] == "pid" and parts[2] == "count":
                out.append((int(parts[1].rstrip(":")), int(parts[3])))
        return out

    def unshare_counter(self, user=None, whole=False):
        """The counter (demo/counter.c) as the init of `unshare -Urpfui --mount-proc` with
        hostname ctr-test, dumped by the host pid of unshare's child (the init of the pid
        namespace), or with @whole by unshare's pid (unshare, in the new user, mount, UTS
        and IPC namespaces but not in the pid namespace, with the counter as its child),
        and restored (as root with --pin-ns). The count goes on from where it was, the
        counter is pid 1 of its pid namespace with its own /proc (mounted by unshare's
        child in a mount namespace unshare created), its hostname and uid/gid maps are the
        same; the pins hold the user, pid, mnt, uts and ipc namespaces. With @user =
        (uid, gid, name): the same run entirely as that user, with a copy of stasis holding
        cap_checkpoint_restore (file capability) and nothing else."""
        counter = os.path.join(self.build, "demo", "counter")
        stasis = self.stasis
        if not os.access(counter, os.X_OK):
            raise Failure("%s not built" % counter)
        if not shutil.which("unshare") or not shutil.which("nsenter"):
            raise Skip("unshare or nsenter not found (package util-linux)")
        tmp = tempfile.mkdtemp(prefix="stasis-unshare-", dir="/tmp")
        priv = None
        ids = None
        if user is not None:
            setcap = shutil.which("setcap") or "/usr/sbin/setcap"
            ids = (user[0], user[1])
            priv = tempfile.mkdtemp(prefix="stasis-unshare-bin-", dir="/tmp")
            os.chown(priv, 0, user[1])
            os.chmod(priv, 0o750)
            for src in (stasis, counter):
                shutil.copy(src, priv)
                os.chmod(os.path.join(priv, os.path.basename(src)), 0o755)
            stasis = os.path.join(priv, "stasis")
            counter = os.path.join(priv, "counter")
            rc, _, err = run_cmd([setcap, "cap_checkpoint_restore+ep", stasis], 30)
            if rc != 0:
                shutil.rmtree(priv, ignore_errors=True)
                shutil.rmtree(tmp, ignore_errors=True)
                raise Skip("setcap cap_checkpoint_restore+ep failed: %s" % err.strip()[:100])
            os.chown(tmp, user[0], user[1])
        out = os.path.join(tmp, "counter.out")
        img = os.path.join(tmp, "img")
        pidfile = os.path.join(tmp, "pidfile")
        pins = os.path.join(tmp, "pins")
        os.mkdir(img)
        if user is not None:
            os.chown(img, user[0], user[1])
        else:
            os.mkdir(pins, 0o700)
        fd = user_file(out, ids)
        efd = user_file(os.path.join(tmp, "unshare.err"), ids)
        try:
            p = subprocess.Popen(self.UNSHARE_CTR + [counter], cwd=tmp,
                                 stdin=subprocess.DEVNULL, stdout=fd, stderr=efd,
                                 start_new_session=True, preexec_fn=as_user(ids))
        finally:
            os.close(fd)
            os.close(efd)
        child = None
        n = 0

        def stasis_run(argv, what):
            nonlocal n
            n += 1
            files = [os.path.join(tmp, "%s-%d.%s" % (what, n, e)) for e in ("out", "err")]
            rc, _, err = run_cmd([stasis] + argv, BAD_TIMEOUT, cwd=tmp, user=ids,
                                 files=files)
            if rc != 0:
                raise Failure("%s: %s: %s" % (what, describe_status_rc(rc),
                                              (err.strip().splitlines() or [""])[-1]))

        try:
            deadline = time.monotonic() + BAD_TIMEOUT
            while True:
                kids = proc_children(p.pid)
                child = kids[0] if kids else None
                try:
                    comm = child and open("/proc/%d/comm" % child).read().strip()
                except OSError:
                    comm = None
                if comm == "counter" and len(self.counter_lines(out)) >= 3:
                    break
                if p.poll() is not None:
                    raise Failure("unshare exited (%s): %s" % (
                        describe_status_rc(p.returncode),
                        " ".join(tail(os.path.join(tmp, "unshare.err"), 2) or [])))
                if time.monotonic() > deadline:
                    raise Failure("the counter did not start under unshare")
                time.sleep(0.05)
            maps = [open("/proc/%d/%s" % (child, m)).read() for m in ("uid_map", "gid_map")]
            if user is None:
                # a namespace pinned on the host meanwhile (an nsfs mount in stasis's
                # mountinfo at dump, in the copy the restore gets): no obstacle
                hostpin = os.path.join(tmp, "hostpin")
                open(hostpin, "w").close()
                rc, _, err = run_cmd(["mount", "--bind", "/proc/self/ns/uts", hostpin], 10)
                if rc != 0:
                    raise Failure("bind of an nsfs file: %s" % err.strip()[:100])
            target = p.pid if whole else child
            stasis_run(["dump", "-t", str(target), "-D", img, "--no-sync", "-v", "-o",
                        os.path.join(tmp, "dump.log")], "dump")
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                raise Failure("unshare still runs after its child was dumped") from None
            deadline = time.monotonic() + 10
            while proc_stat(child) is not None and time.monotonic() < deadline:
                reap_all()
                time.sleep(0.01)
            if proc_stat(child) is not None:
                raise Failure("the dumped counter %d is still there" % child)
            before = self.counter_lines(out)
            last = before[-1][1]
            if user is None and not whole:
                self.pin_shared_refused(tmp, img, child)
            if user is not None:
                refusal = self.pin_nonroot_refused(stasis, tmp, img, ids, child)
            argv = ["restore", "-D", img, "-d", "--pidfile", pidfile, "-v", "-o",
                    os.path.join(tmp, "restore.log")]
            low = None
            if user is None and in_rootless_container() and shutil.which("taskset"):
                # the restore on a CPU whose new namespaces get ids below ours: the
                # restored mount namespace must be copied again to be pinnable
                low = cpu_with_older_mntns_ids()
            if low is not None:
                rc, _, err = run_cmd(["taskset", "-c", str(low), stasis] + argv +
                                     ["--pin-ns", pins], BAD_TIMEOUT, cwd=tmp)
                if rc != 0:
                    raise Failure("restore on CPU %d: %s: %s" % (
                        low, describe_status_rc(rc), (err.strip().splitlines() or [""])[-1]))
                with open(os.path.join(tmp, "restore.log"), errors="replace") as f:
                    if "copied again" not in f.read():
                        raise Failure("restored on CPU %d (new mount namespaces get ids below "
                                      "stasis's there) without copying the mount namespace "
                                      "again" % low)
            else:
                stasis_run(argv + ([] if user else ["--pin-ns", pins]), "restore")
            try:
                rpid = int(open(pidfile).read())
            except (OSError, ValueError) as e:
                raise Failure("bad pidfile: %s" % e) from None
            if rpid != target or not pid_alive(target) or not pid_alive(child):
                raise Failure("restored pid %d, dumped %d (alive: %s, counter %s)" % (
                    rpid, target, pid_alive(target), pid_alive(child)))
            if whole and proc_children(target) != [child]:
                raise Failure("the restored unshare %d has children %s, not the counter %d" %
                              (target, proc_children(target), child))
            deadline = time.monotonic() + 10
            while len(self.counter_lines(out)) < len(before) + 3:
                if time.monotonic() > deadline or not pid_alive(child):
                    raise Failure("the restored counter does not count (%d lines after the "
                                  "restore)" % (len(self.counter_lines(out)) - len(before)))
                time.sleep(0.05)
            after = self.counter_lines(out)[len(before):]
            want = [(1, last + 1 + k) for k in range(len(after))]
            if after != want:
                raise Failure("the count did not go on from %d as pid 1: %s" % (
                    last, after[:4]))
            with open("/proc/%d/status" % child) as f:
                nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")]
            if nspid != [[str(child), "1"]]:
                raise Failure("NSpid of the restored counter: %s" % nspid)
            rc, hostname, err = run_cmd(["nsenter", "-t", str(child), "-u", "hostname"], 10)
            if rc != 0 or hostname.strip() != "ctr-test":
                raise Failure("hostname inside: %s %r" % (describe_status_rc(rc),
                                                          (hostname + err).strip()[:100]))
            inner = os.path.join("/proc/%d/root/proc" % child)
            listed = sorted(x for x in os.listdir(inner) if x.isdigit())
            with open(os.path.join(inner, "1", "status")) as f:
                st = dict(ln.split(":", 1) for ln in f if ":" in ln)
            if listed != ["1"] or st.get("Name", "").strip() != "counter" or \
                    st.get("NSpid", "").split() != ["1"]:
                raise Failure("/proc inside is not its own: pids %s, pid 1 is %r (NSpid %r)" %
                              (listed[:5], st.get("Name", "").strip(),
                               st.get("NSpid", "").strip()))
            now = [open("/proc/%d/%s" % (child, m)).read() for m in ("uid_map", "gid_map")]
            if now != maps:
                raise Failure("uid/gid maps %r, were %r" % (now, maps))
            said = "count %d -> %d as pid 1, hostname ctr-test, own /proc, maps %s" % (
                last, after[0][1], " ".join(maps[0].split()))
            if user is None:
                self.pin_check(pins, {"%s-%d" % (k, target if k != "pid" else child):
                                      (k, child) for k in ("user", "pid", "mnt", "uts", "ipc")})
            kill_pid(child)
            if wait_pid(child, time.monotonic() + 10) is None:
                raise Failure("the restored counter did not die on SIGKILL")
            if whole and wait_pid(target, time.monotonic() + 10) is None:
                raise Failure("the restored unshare did not exit after its child")
            if user is None:
                rc, hostname, err = run_cmd(["nsenter", "--uts=%s/uts-%d" % (pins, target),
                                             "hostname"], 10)
                if rc != 0 or hostname.strip() != "ctr-test":
                    raise Failure("the pinned UTS namespace after the counter exited: %s %r"
                                  % (describe_status_rc(rc), (hostname + err).strip()[:100]))
                said += ", 5 namespaces pinned"
            if low is not None:
                said += " (restored on CPU %d: mount namespace copied again to be pinnable)" % low
            if user is not None:
                said += "; --pin-ns refused: %s" % refusal
            return ("unshare and its child: " if whole else "") + said
        finally:
            for x in (child, p.pid):
                if x and pid_alive(x):
                    kill_pid(x)
                    wait_pid(x, time.monotonic() + 5)
            if p.poll() is None:
                kill_pid(p.pid)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            reap_all()
            umount_under(tmp)
            if mounts_under(tmp):
                print("    warning: still mounted: %s" % mounts_under(tmp), flush=True)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
            if priv:
                shutil.rmtree(priv, ignore_errors=True)

    def pin_nonroot_refused(self, stasis, tmp, img, ids, pid):
        """--pin-ns as a user without CAP_SYS_ADMIN: the pins would be mounts in its mount
        namespace (owned by the initial user namespace), which the kernel allows only with
        CAP_SYS_ADMIN there. The restore must refuse at once: one line naming the reason,
        no process started, no file created."""
        pins = os.path.join(tmp, "pins-user")
        os.mkdir(pins, 0o700)
        os.chown(pins, ids[0], ids[1])
        before = set(my_children())
        files = [os.path.join(tmp, "pin-refused.%s" % e) for e in ("out", "err")]
        rc, _, err = run_cmd([stasis, "restore", "-D", img, "-d", "--pin-ns", pins],
                             BAD_TIMEOUT, cwd=tmp, user=ids, files=files)
        lines = err.splitlines()
        if rc in (0, None) or len(lines) != 1 or "CAP_SYS_ADMIN" not in lines[0]:
            raise Failure("restore --pin-ns as %s: %s, stderr %r" % (
                NONROOT_USER, describe_status_rc(rc), err[:200]))
        left = [c for c in my_children() if c not in before]
        if pid_alive(pid) or left or os.listdir(pins):
            raise Failure("the refused --pin-ns left something: pid %d alive %s, new "
                          "processes %s, files %s" % (pid, pid_alive(pid), left,
                                                     os.listdir(pins)))
        return lines[0].split(": ", 2)[-1]

    def pin_shared_refused(self, tmp, img, pid):
        """--pin-ns on a shared mount (a tmpfs with a peer): the user namespace is pinned
        first, then the kernel refuses the mount namespace's bind (it cannot propagate);
        the restore must fail with one line saying so, kill what it restored, and undo
        the pin it made (no mount, no file left)."""
        shared, peer = os.path.join(tmp, "shared"), os.path.join(tmp, "peer")
        os.mkdir(shared)
        os.mkdir(peer)
        try:
            for argv in (["mount", "-t", "tmpfs", "-o", "size=64k", "stasis-pins", shared],
                         ["mount", "--make-shared", shared], ["mount", "--bind", shared, peer]):
                rc, _, err = run_cmd(argv, 10)
                if rc != 0:
                    raise Failure("%s: %s" % (" ".join(argv), err.strip()[:100]))
            d = os.path.join(shared, "d")
            os.mkdir(d)
            line = self.expect_failure([self.stasis, "restore", "-D", img, "-d",
                                        "--pin-ns", d], "restore --pin-ns on a shared mount",
                                       pid=pid)
            if "shared mount" not in line or "mnt-%d" % pid not in line:
                raise Failure("the refusal does not say the mount is shared: %s" % line)
            left = [m for m in mounts_under(shared) + mounts_under(peer)
                    if m not in (shared, peer)]
            if left or os.listdir(d):
                raise Failure("the failed restore left pins behind: mounts %s, files %s" % (
                    left, os.listdir(d)))
        finally:
            umount_under(peer)
            umount_under(shared)

    def unshare_urpfui(self):
        if os.geteuid() != 0:
            raise Skip("needs root (unshare -U maps root, --pin-ns mounts)")
        return self.unshare_counter()

    def unshare_urpfui_tree(self):
        if os.geteuid() != 0:
            raise Skip("needs root (unshare -U maps root, --pin-ns mounts)")
        return self.unshare_counter(whole=True)

    def unshare_urpfui_nonroot(self, whole=False):
        if os.geteuid() != 0 or in_rootless_container():
            raise Skip("needs the host's root to run it as %s" % NONROOT_USER)
        pw, reason = Runner.ensure_user()
        if reason:
            raise Skip(reason)
        return self.unshare_counter((pw.pw_uid, pw.pw_gid, NONROOT_USER), whole)

    def unshare_urpfui_tree_nonroot(self):
        return self.unshare_urpfui_nonroot(whole=True)

    def start_overlay(self, tag):
        """A sleep in a mount namespace of its own with an overlayfs mounted on
        TMP/TAG/m (stasis cannot recreate it). Returns (Popen, mount point)."""
        d = os.path.join(self.tmp, tag)
        for sub in ("l", "u", "w", "m"):
            os.makedirs(os.path.join(d, sub))
        mnt = os.path.join(d, "m")
        opts = "lowerdir=%s/l,upperdir=%s/u,workdir=%s/w" % (d, d, d)
        p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                              'mount -t overlay overlay -o "$1" "$2" && exec sleep 60',
                              "sh", opts, mnt],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd=d)
        deadline = time.monotonic() + BAD_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with open("/proc/%d/mountinfo" % p.pid) as f:
                    mounted = " - overlay " in f.read()
                with open("/proc/%d/comm" % p.pid) as f:
                    slept = f.read().strip() == "sleep"
            except OSError:
                mounted = slept = False
            if mounted and slept:
                return p, mnt
            if p.poll() is not None:
                break
            time.sleep(0.02)
        kill_pid(p.pid)
        p.wait(timeout=10)
        raise Skip("no overlayfs in a private mount namespace here")

    def stop_overlay(self, p):
        kill_pid(p.pid)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def bad_dump_mnt_undeclared(self):
        p, mnt = self.start_overlay("ovl-undeclared")
        try:
            line = self.expect_failure([self.stasis, "dump", "-t", str(p.pid), "-D",
                                        os.path.join(self.tmp, "ovl-undeclared-img")],
                                       "dump of an undeclared overlay mount",
                                       allowed=(p.pid,))
            if mnt not in line or "--external mnt[" not in line:
                raise Failure("the error does not name the mount: %r" % line)
            st = proc_stat(p.pid)
            if st is None or st[0] not in ("S", "R"):
                raise Failure("the task was disturbed by the failed dump (%s)" % (st,))
            with open("/proc/%d/status" % p.pid) as f:
                if any(ln.split()[1:2] != ["0"] for ln in f if ln.startswith("TracerPid:")):
                    raise Failure("the task is still traced after the failed dump")
        finally:
            self.stop_overlay(p)

    def bad_dump_cgns_owner(self):
        """A sleep that unshared a cgroup namespace and then a user namespace: its cgroup
        namespace is owned by the user namespace above its own, which a restore (the
        task enters its user namespace first) cannot rebuild. The dump must say so and
        leave the task untouched."""
        p = subprocess.Popen(["unshare", "-C", "unshare", "-Ur", "sleep", "60"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd=self.tmp)
        try:
            deadline = time.monotonic() + BAD_TIMEOUT
            ready = False
            while not ready and time.monotonic() < deadline and p.poll() is None:
                try:
                    with open("/proc/%d/comm" % p.pid) as f:
                        ready = f.read().strip() == "sleep"
                except OSError:
                    pass
                time.sleep(0.02)
            if not ready:
                raise Skip("cannot unshare a cgroup and a user namespace here")
            line = self.expect_failure([self.stasis, "dump", "-t", str(p.pid), "-D",
                                        os.path.join(self.tmp, "cgns-owner-img")],
                                       "dump of a cgroup namespace owned by another user "
                                       "namespace", allowed=(p.pid,))
            if "cgroup namespace is owned by" not in line:
                raise Failure("the error does not name the cause: %r" % line)
            st = proc_stat(p.pid)
            if st is None or st[0] not in ("S", "R"):
                raise Failure("the task was disturbed by the failed dump (%s)" % (st,))
            return line
        finally:
            kill_pid(p.pid)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def bad_restore_mnt_missing_external(self):
        p, mnt = self.start_overlay("ovl-external")
        img = os.path.join(self.tmp, "ovl-external-img")
        pid = p.pid
        try:
            rc, out, err = run_cmd([self.stasis, "dump", "-t", str(pid), "-D", img,
                                    "--no-sync", "--external", "mnt[%s]:ovl" % mnt],
                                   BAD_TIMEOUT, cwd=self.tmp)
            if rc != 0:
                raise Failure("dump with --external failed: %s" % err.strip()[:300])
            p.wait(timeout=10)
        finally:
            self.stop_overlay(p)
        line = self.expect_failure(self.restore_argv(img),
                                   "restore without the external mount's mapping", pid=pid)
        if "ovl" not in line or "--external" not in line:
            raise Failure("the error does not say which mapping is missing: %r" % line)
        # with the mapping, the restore works and binds the given directory there
        host = os.path.join(self.tmp, "ovl-external", "l")
        with open(os.path.join(host, "marker"), "w") as f:
            f.write("x")
        rc, out, err = run_cmd(self.restore_argv(img) + ["--external", "mnt[ovl]:%s" % host],
                               BAD_TIMEOUT, cwd=self.tmp)
        try:
            if rc != 0:
                raise Failure("restore with --external mnt[ovl]:DIR failed: %s" %
                              err.strip()[:300])
            if not os.path.exists("/proc/%d/root%s/marker" % (pid, mnt)):
                raise Failure("the external directory is not mounted at %s" % mnt)
        finally:
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 5)
            reap_all()

    def restore_mnt_root(self):
        """--root: the root mount declared external at dump (`--external mnt[/]:rootfs`);
        a restore without --root fails naming it; with `--root DIR` (an overlay of the
        host's / with a marker file on top, made by the check) the restored task's root
        is DIR: the marker is there."""
        p, mnt = self.start_overlay("ovl-root")
        img = os.path.join(self.tmp, "ovl-root-img")
        pid = p.pid
        try:
            rc, out, err = run_cmd([self.stasis, "dump", "-t", str(pid), "-D", img,
                                    "--no-sync", "--external", "mnt[/]:rootfs",
                                    "--external", "mnt[%s]:ovl" % mnt],
                                   BAD_TIMEOUT, cwd=self.tmp)
            if rc != 0:
                raise Failure("dump with --external mnt[/] failed: %s" % err.strip()[:300])
            p.wait(timeout=10)
        finally:
            self.stop_overlay(p)
        ovl = os.path.join(self.tmp, "ovl-root")
        argv = self.restore_argv(img) + ["--external", "mnt[ovl]:%s/l" % ovl]
        line = self.expect_failure(argv, "restore without --root", pid=pid)
        if "--root DIR" not in line:
            raise Failure("the error does not name --root: %r" % line)
        t, r = os.path.join(ovl, "t"), os.path.join(ovl, "r")
        os.makedirs(t)
        os.makedirs(r)
        # the overlay lives in a private mount namespace made for the restoring stasis:
        # never on the host, where concurrent dumps of copied mount trees would see it
        script = ('mount -t tmpfs stasis-root "$1" && mkdir "$1/u" "$1/w" && '
                  'echo x > "$1/u/stasis-root-marker" && '
                  'mount -t overlay overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$2" '
                  '|| exit 99; shift 2; exec "$@"')
        rc, out, err = run_cmd(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                                "sh", t, r] + argv + ["--root", r], BAD_TIMEOUT, cwd=self.tmp)
        try:
            if rc == 99:
                raise Skip("cannot make an overlay of / here: %s" % err.strip()[:100])
            if rc != 0:
                raise Failure("restore with --root failed: %s" % err.strip()[:300])
            if not os.path.exists("/proc/%d/root/stasis-root-marker" % pid):
                raise Failure("the restored root is not the --root directory")
            if os.path.exists("/stasis-root-marker"):
                raise Failure("the marker leaked into the host's root")
        finally:
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 5)
            reap_all()
        return "the restored root is %s (its marker file is at /)" % r

    CONTAINER_SH = r"""
set -e
R="$1"
mount --bind "$R" "$R"
mount --bind -o ro /usr "$R/usr"
mount -t tmpfs ctr-tmp "$R/tmp"
cd "$R"
pivot_root . old
mount -t proc proc /proc
umount -l /old
cd /data
if [ "$2" = single ]; then exec 3>>/data/log; echo 1 >&3; echo 1 >&3; echo 1 > /tmp/cur; exec sleep 60; fi
exec /bin/sh -c 'i=0; exec 3>>/data/log; while :; do i=$((i+1)); echo $i >&3; echo $i > /tmp/cur; sleep 0.05; done'
"""

    def container_pivot_root_single(self):
        """The same container with one process (the init execs a sleep holding the same
        fds): nothing is shared, each path is opened in the view it was dumped in."""
        return self.container_pivot_root(single=True)

    def container_pivot_root(self, single=False):
        """A container with a root of its own: a pid and mount namespace (unshare), its root
        a bind of a directory with /usr bound read-only, a tmpfs /tmp and its own /proc,
        pivot_root'ed into with the old root detached; a shell counter writes /data/log
        (fd 3, the container's root) and /tmp/cur (its tmpfs), stdout/stderr are files of
        the host (opened before). Dumped by the init's pid and restored: same pid, the fds
        name the same files as before (the container's view and the host's), both
        counters go on from where they were."""
        if os.geteuid() != 0 or in_rootless_container():
            raise Skip("needs the host's root (mounts, pivot_root)")
        d = tempfile.mkdtemp(prefix="ctr-", dir=self.tmp)
        root = os.path.join(d, "rootfs")
        for sub in ("usr", "proc", "tmp", "data", "old", "dev"):
            os.makedirs(os.path.join(root, sub))
        for name in ("bin", "lib", "lib64", "sbin"):
            if os.path.exists("/usr/" + name):
                os.symlink("usr/" + name, os.path.join(root, name))
        out = os.path.join(d, "out.log")
        logf = os.path.join(root, "data", "log")
        u = restored = None
        init = None
        try:
            with open(out, "w") as o:
                u = subprocess.Popen(["unshare", "-m", "--propagation", "private", "--pid",
                                      "--fork", "sh", "-c", self.CONTAINER_SH, "sh", root,
                                      "single" if single else "loop"],
                                     stdin=subprocess.DEVNULL, stdout=o, stderr=o, cwd=d)

            def sleeping(upid):
                kids = proc_children(upid)
                try:
                    with open("/proc/%d/comm" % kids[0]) as f:
                        return len(kids) == 1 and f.read().strip() == "sleep"
                except (OSError, IndexError):
                    return False

            def count():
                try:
                    with open(logf) as f:
                        lines = f.read().split()
                    return int(lines[-1]) if lines else 0
                except (OSError, ValueError):
                    return 0

            deadline = time.monotonic() + 10
            while count() < (1 if single else 3) or (single and not sleeping(u.pid)):
                if time.monotonic() > deadline or u.poll() is not None:
                    with open(out) as f:
                        raise Failure("the container did not start: %s" % f.read()[-300:])
                time.sleep(0.02)
            kids = proc_children(u.pid)
            if len(kids) != 1:
                raise Failure("unshare has %d children" % len(kids))
            init = kids[0]

            def links(pid):
                res = {}
                for fd in ("0", "1", "2", "3"):
                    try:
                        res[fd] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                    except OSError:
                        res[fd] = None
                return res

            before = links(init)
            img = os.path.join(d, "img")
            rc, _, err = run_cmd([self.stasis, "dump", "-t", str(init), "-D", img], BAD_TIMEOUT,
                                 cwd=d)
            if rc != 0:
                raise Failure("dump failed: %s" % err.strip()[:300])
            u.wait(timeout=10)
            at_dump = count()
            rc, _, err = run_cmd([self.stasis, "restore", "-D", img, "-d", "--pidfile",
                                  os.path.join(d, "pidfile")], BAD_TIMEOUT, cwd=d)
            if rc != 0:
                raise Failure("restore failed: %s" % err.strip()[:300])
            restored = init
            after = links(init)
            if after != before:
                raise Failure("the fds changed: %s -> %s" % (before, after))
            if single:
                with open("/proc/%d/root/tmp/cur" % init) as f:
                    if f.read().strip() != "1":
                        raise Failure("/tmp/cur of the container's tmpfs was not restored")
                return "pid %d, one process: fds %s" % (init, " ".join(v or "-" for v in
                                                                     after.values()))
            deadline = time.monotonic() + 10
            while count() < at_dump + 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            if count() < at_dump + 5:
                raise Failure("the counter in /data/log stopped at %d" % count())
            with open("/proc/%d/root/tmp/cur" % init) as f:
                cur = int(f.read().strip() or "0")
            if cur < at_dump:
                raise Failure("/tmp/cur of the container's tmpfs is %d, below %d" % (cur, at_dump))
            return "pid %d: /data/log %d -> %d, fds %s" % (init, at_dump, count(),
                                                          " ".join(v or "-" for v in after.values()))
        finally:
            for p in (restored, init, u.pid if u else None):
                if p and pid_alive(p):
                    kill_pid(p)
            if u:
                try:
                    u.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            reap_all()

    CHECKS = ["bad_dump_nopid", "bad_dump_kthread", "bad_dump_self", "bad_restore_empty",
              "bad_restore_truncated_core", "bad_restore_flipped_mm",
              "bad_restore_flipped_pages", "bad_restore_cgns_root", "bad_restore_pid_taken",
              "bad_dump_outside_session", "bad_restore_user_claims_root",
              "bad_restore_user_root_file", "bad_restore_user_caps",
              "bad_restore_user_userns_map",
              "restore_user_helper", "restore_user_helper_tree", "restore_veth_external",
              "restore_join_ns", "bad_restore_join_not_nsfs", "bad_dump_mnt_undeclared",
              "bad_dump_cgns_owner",
              "bad_restore_mnt_missing_external", "restore_mnt_root", "container_pivot_root",
              "container_pivot_root_single",
              "restore_pin_ns",
              "restore_pin_cgroupns", "bad_restore_pin_not_dir", "unshare_urpfui",
              "unshare_urpfui_tree",
              "unshare_urpfui_nonroot", "unshare_urpfui_tree_nonroot"]

    def close(self):
        if getattr(self, "urun", None):
            shutil.rmtree(self.urun.tmp, ignore_errors=True)
        if getattr(self, "ref_run", None):
            shutil.rmtree(self.ref_run.tmp, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        reap_all()


# ---------------------------------------------------------------------------------------
# the runner


class Runner:
    def __init__(self, args):
        self.args = args
        self.passed = self.failed = self.skipped = 0
        self.prefix = ""
        self.flavor = "default"
        self.user = None        # nonroot flavor: (uid, gid) of NONROOT_USER
        self.user_dir = None    # nonroot flavor: private dir with the capable stasis
        self.user_stasis = None

    def wanted(self, name):
        return not self.args.only or name in self.args.only

    def report(self, kind, name, reason=None):
        label = self.prefix + name
        if kind == "PASS":
            self.passed += 1
        elif kind == "FAIL":
            self.failed += 1
        else:
            self.skipped += 1
        print("%s %s%s" % (kind, label, " (%s)" % reason if reason else ""), flush=True)

    def run_units(self, build):
        bins = sorted(p for p in glob.glob(os.path.join(build, "tests", "unit", "test_*"))
                      if os.path.isfile(p) and os.access(p, os.X_OK) and "." not in
                      os.path.basename(p))
        env = dict(os.environ, STASIS_SRCDIR=REPO)
        for b in bins:
            name = os.path.basename(b)
            if not self.wanted(name):
                continue
            if name in ROOTLESS_KNOWN and in_rootless_container():
                self.report("SKIP", name, "known rootless limitation: " + ROOTLESS_KNOWN[name])
                continue
            p = subprocess.Popen([b], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 errors="replace")
            try:
                out, _ = p.communicate(timeout=DEFAULT_TIMEOUT)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate(timeout=10)
                rc = None
            reap_all()
            if rc == 0:
                self.report("PASS", name)
            elif rc == 77:
                last = (out.strip().splitlines() or ["skipped"])[-1]
                self.report("SKIP", name, last[:200])
            else:
                self.report("FAIL", name, "timeout" if rc is None else
                            describe_status_rc(rc))
                for ln in out.splitlines()[-TAIL_LINES:]:
                    print("    | " + ln)

    def run_ckpt(self, build):
        for name in ckpt_tests():
            if not self.wanted(name):
                continue
            meta = read_meta(os.path.join(CKPT_SRC, name + ".c"))
            if "skip" in meta:
                self.report("SKIP", name, meta["skip"] or "skip")
                continue
            if meta.get("needs") == "root" and (os.geteuid() != 0 or self.user is not None):
                self.report("SKIP", name, "needs root: the test makes namespaces, mounts, "
                            "cgroups or ids of the host's user namespace, which a non-root "
                            "user can neither create nor restore (CAP_SYS_ADMIN/CAP_SETUID "
                            "there); the rootless flavor runs it in a user namespace")
                continue
            if name in ROOTLESS_KNOWN and in_rootless_container():
                self.report("SKIP", name, "known rootless limitation: " + ROOTLESS_KNOWN[name])
                continue
            if self.user is not None and name in NONROOT_KNOWN:
                self.report("SKIP", name, "known non-root limitation: " + NONROOT_KNOWN[name])
                continue
            if self.flavor == "ns" and name in NS_KNOWN:
                self.report("SKIP", name, "cannot run as a namespace init: " + NS_KNOWN[name])
                continue
            if self.args.sabotage and meta.get("sabotage") == "no":
                self.report("SKIP", name, "no sabotage support")
                continue
            run = CkptRun(self, build, name, meta)
            ok = False
            t0 = time.monotonic()
            skipped = None
            try:
                run.run()
                ok = True
            except Skip as e:
                skipped = str(e)
            except Failure as e:
                reason = str(e)
            except Exception as e:  # a runner bug must not leave processes behind
                reason = "runner error: %r" % e
            finally:
                run.cleanup()
            if skipped is not None:
                self.report("SKIP", name, skipped)
                run.remove(keep=False)
                continue
            if ok:
                extra = "%.1fs" % (time.monotonic() - t0)
                if self.args.sabotage:
                    extra = "sabotage detected: %s" % run.sabotage_reason
                self.report("PASS", name, extra)
            else:
                self.report("FAIL", name, reason)
                run.show_logs()
                print("    (files kept in %s)" % run.tmp)
            run.remove(keep=not ok or self.args.keep)

    def run_bad(self, build):
        bad = BadInput(self, build)
        try:
            for check in BadInput.CHECKS:
                if not self.wanted(check):
                    continue
                if check in ROOTLESS_KNOWN and in_rootless_container():
                    self.report("SKIP", check, "known rootless limitation: " +
                                ROOTLESS_KNOWN[check])
                    continue
                try:
                    said = getattr(bad, check)()
                    self.report("PASS", check, said if isinstance(said, str) else None)
                except Failure as e:
                    self.report("FAIL", check, str(e))
                except Skip as e:
                    self.report("SKIP", check, str(e))
                finally:
                    reap_all()
        finally:
            bad.close()

    @staticmethod
    def ensure_user():
        """NONROOT_USER's passwd entry (created if missing), or the reason it cannot be."""
        try:
            return pwd.getpwnam(NONROOT_USER), None
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        rc, _, err = run_cmd([useradd, "-M", "-s", "/usr/sbin/nologin", NONROOT_USER], 30)
        try:
            return pwd.getpwnam(NONROOT_USER), None
        except KeyError:
            return None, "cannot create user %s: useradd %s: %s" % (
                NONROOT_USER, describe_status_rc(rc), err.strip()[:200])

    def setup_nonroot(self, build):
        """Creates NONROOT_USER if missing and a private copy of BUILD/stasis with
        cap_checkpoint_restore+ep. Returns None, or the reason to skip the flavor."""
        if os.geteuid() != 0:
            return "the runner must be root to set up the user and the capability"
        setcap = shutil.which("setcap") or (os.access("/usr/sbin/setcap", os.X_OK) and
                                            "/usr/sbin/setcap")
        if not setcap:
            return "setcap not found (package libcap2-bin)"
        src = os.path.join(build, "stasis")
        if not os.access(src, os.X_OK):
            return "%s not built" % src
        pw, reason = self.ensure_user()
        if reason:
            return reason
        self.user = (pw.pw_uid, pw.pw_gid)
        self.user_dir = tempfile.mkdtemp(prefix="stasis-nonroot-", dir="/tmp")
        os.chown(self.user_dir, 0, pw.pw_gid)
        os.chmod(self.user_dir, 0o750)
        self.user_stasis = os.path.join(self.user_dir, "stasis")
        shutil.copy(src, self.user_stasis)
        os.chmod(self.user_stasis, 0o755)
        rc, _, err = run_cmd([setcap, "cap_checkpoint_restore+ep", self.user_stasis], 30)
        if rc != 0:
            self.teardown_nonroot()
            return "setcap cap_checkpoint_restore+ep failed (%s): %s" % (
                describe_status_rc(rc), err.strip()[:200])
        return None

    def teardown_nonroot(self):
        if self.user_dir:
            shutil.rmtree(self.user_dir, ignore_errors=True)
        self.user = self.user_dir = self.user_stasis = None

    @staticmethod
    def ensure_subids(user):
        """An /etc/subuid and /etc/subgid range for @user (65536 ids after every range
        already given), as useradd makes them."""
        for path in ("/etc/subuid", "/etc/subgid"):
            try:
                with open(path) as f:
                    lines = [ln.strip().split(":") for ln in f if ln.strip()]
            except FileNotFoundError:
                lines = []
            if any(ln[0] == user for ln in lines):
                continue
            top = 100000
            for ln in lines:
                if len(ln) == 3 and ln[1].isdigit() and ln[2].isdigit():
                    top = max(top, int(ln[1]) + int(ln[2]))
            with open(path, "a") as f:
                f.write("%s:%d:65536\n" % (user, top))

    def run_rootless(self, build):
        """The whole default flavor again, inside a rootless container: this runner,
        as NONROOT_USER, is pid 1 of `unshare --map-auto --map-root-user --pid --fork
        --mount-proc` (root of a user namespace with the user's /etc/subuid range, no
        host privilege). Its results are folded into ours."""
        if os.geteuid() != 0:
            self.report("SKIP", "flavor", "the runner must be root to set up the user")
            return
        unshare = shutil.which("unshare")
        if not unshare or not shutil.which("newuidmap"):
            self.report("SKIP", "flavor", "unshare or newuidmap not found (packages "
                        "util-linux, uidmap)")
            return
        pw, reason = self.ensure_user()
        if reason:
            self.report("SKIP", "flavor", reason)
            return
        self.ensure_subids(NONROOT_USER)
        # the user may not reach root's interpreter (e.g. under /root/.pyenv)
        python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) \
            else sys.executable
        argv = [unshare, "--map-auto", "--map-root-user", "--pid", "--fork", "--kill-child",
                "--mount-proc", python, os.path.abspath(__file__), "--build", build,
                "--flavor", "default", "--prefix", self.prefix]
        a = self.args
        argv += (["--only"] + a.only if a.only else []) + (["--no-cr"] if a.no_cr else []) \
            + (["--sabotage"] if a.sabotage else []) + (["--keep"] if a.keep else [])
        p = subprocess.Popen(argv, cwd="/tmp", stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors="replace", preexec_fn=as_user((pw.pw_uid, pw.pw_gid)))
        deadline = time.monotonic() + ROOTLESS_TIMEOUT
        summary = None
        for line in p.stdout:
            parts = line.split()
            if len(parts) >= 6 and parts[1] == "passed," and parts[3] == "failed,":
                summary = (int(parts[0]), int(parts[2]), int(parts[4]))
                continue
            print(line, end="", flush=True)
            if time.monotonic() > deadline:
                break
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            kill_pid(p.pid)
            p.wait(timeout=30)
        reap_all()
        if summary is None:
            self.report("FAIL", "flavor", "the rootless run ended without a summary (%s)"
                        % describe_status_rc(p.returncode))
            return
        self.passed += summary[0]
        self.failed += summary[1]
        self.skipped += summary[2]

    def unit_names(self, build):
        return sorted(os.path.basename(p)
                      for p in glob.glob(os.path.join(build, "tests", "unit", "test_*"))
                      if os.path.isfile(p) and os.access(p, os.X_OK) and "." not in
                      os.path.basename(p))

    def list_build(self, build):
        """--list: the names a run of this flavor and build would report, not run."""
        names = ckpt_tests()
        if self.flavor in ("default", "rootless"):
            if not self.args.sabotage:
                names = self.unit_names(build) + names
            if not self.args.no_cr and not self.args.sabotage:
                names += BadInput.CHECKS
        for name in names:
            if self.wanted(name):
                print(self.prefix + name)

    def run_build(self, build):
        if self.args.list:
            self.list_build(build)
            return
        if self.flavor == "rootless":
            self.run_rootless(build)
            return
        if self.flavor == "ns":
            # only the checkpoint tests, each as the init of its own namespaces
            if not shutil.which("unshare"):
                self.report("SKIP", "flavor", "unshare not found (package util-linux)")
                return
            self.run_ckpt(build)
            return
        if self.flavor == "nonroot":
            # only the checkpoint tests; the unit and bad-input tests stay root-only
            reason = self.setup_nonroot(build)
            if reason:
                self.report("SKIP", "flavor", reason)
                return
            try:
                self.run_ckpt(build)
            finally:
                self.teardown_nonroot()
            return
        if not self.args.sabotage:
            if os.geteuid() == 0 and not in_rootless_container():
                # test_helper_sec needs the peer user and its subordinate ids
                if self.ensure_user()[0] is not None:
                    self.ensure_subids(NONROOT_USER)
            self.run_units(build)
        if not self.args.no_cr and not os.access(os.path.join(build, "stasis"), os.X_OK):
            print("warning: %s/stasis not built: checkpoint tests will fail" % build,
                  flush=True)
        self.run_ckpt(build)
        if not self.args.no_cr and not self.args.sabotage:
            self.run_bad(build)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", default=[],
                    help="build directory (repeatable; default: build)")
    ap.add_argument("--flavor", action="append", default=[], metavar="NAME[:BUILD]",
                    help="default (as root), nonroot (checkpoint tests as user %s with "
                    "a cap_checkpoint_restore copy of stasis), rootless (everything as "
                    "root of a user namespace of that user) or ns (checkpoint tests as "
                    "the init of new pid/mount/uts/ipc/net namespaces); repeatable, one total; "
                    ":BUILD limits the flavor to that build (default: every --build)"
                    % NONROOT_USER)
    ap.add_argument("--only", nargs="+", default=[], metavar="NAME",
                    help="run only these tests (unit, checkpoint or bad-input names)")
    ap.add_argument("--no-cr", action="store_true",
                    help="no dump/restore: ready -> SIGTERM -> PASS (validates the tests)")
    ap.add_argument("--sabotage", action="store_true",
                    help="tests corrupt their own state: every test must FAIL")
    ap.add_argument("-j", type=int, default=1, help="parallelism (only 1 is supported)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary dirs")
    ap.add_argument("--list", action="store_true",
                    help="print the names a run would report (with their prefixes), run "
                    "nothing")
    ap.add_argument("--prefix", default=None, help=argparse.SUPPRESS)  # rootless inner run
    args = ap.parse_args()
    if args.j != 1:
        print("note: checkpoint tests run sequentially (-j%d ignored)" % args.j)
    builds = args.build or ["build"]
    flavors = []
    for spec in args.flavor or ["default"]:
        name, _, only = spec.partition(":")
        if name not in FLAVORS:
            ap.error("unknown flavor %r (known: %s)" % (name, ", ".join(FLAVORS)))
        flavors.append((name, [only] if only else builds))
    if not args.list:
        set_subreaper()
    runner = Runner(args)
    for flavor, fbuilds in flavors:
        runner.flavor = flavor
        for b in fbuilds:
            bdir = b if os.path.isabs(b) else os.path.join(REPO, b)
            runner.prefix = (b.rstrip("/") + ":") if len(builds) > 1 or len(fbuilds) > 1 \
                else ""
            if flavor != "default":
                runner.prefix = flavor + ":" + runner.prefix
            if args.prefix is not None:
                runner.prefix = args.prefix
            runner.run_build(bdir)
    reap_all()
    if args.list:
        return 0
    print("%d passed, %d failed, %d skipped" % (runner.passed, runner.failed, runner.skipped))
    return 0 if runner.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
