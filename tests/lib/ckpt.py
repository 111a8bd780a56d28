"""One run of one checkpoint test (BUILD/tests/ckpt/NAME, built from tests/ckpt/NAME.c) in
its own temporary directory: start, ready, dump, restore, verdict, cleanup. The checks use
it too, for the tests they dump."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from lib import statecmp
from lib.proc import (TAIL_LINES, Failure, Skip, as_user, describe_status_rc,
                      in_rootless_container, kill_pid, pid_alive, pid_key, proc_descendants,
                      proc_stat, reap_all, run_cmd, tail, user_file, wait_pid)
from lib.statecmp_allow import ALLOW
from lib.users import NONROOT_USER

DEFAULT_TIMEOUT = 60
# The ns flavor: every checkpoint test runs as the init of new pid+mount+uts+ipc+net
# namespaces with its own /proc; the dumped task is unshare's child.
NS_UNSHARE = ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net",
              "--mount-proc"]
# The uns flavor: the test runs as root of a new user namespace (ids 0..19999 are
# 20000..39999 outside) and as the init of new pid+mount+net+ipc+uts namespaces,
# pivot_root'ed into a bind of a directory of its own holding binds of these host paths
# (and of the test's directory and build, at the same paths), a tmpfs /dev and its /proc
# (BUILD/tests/tools/uns_launch); dumped and restored (with --root) by root outside.
UNS_BASE = 20000
UNS_HOST_PATHS = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/etc")


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
        uns = runner.flavor == "uns"
        # the owner of the test's files: the nonroot user, or the uns flavor's root
        self.owner = (UNS_BASE, UNS_BASE) if uns else self.user
        self.tmp = tempfile.mkdtemp(prefix="stasis-%s-" % name, dir="/tmp")
        self.cwd = os.path.join(self.tmp, "cwd")
        self.img = os.path.join(self.tmp, "img")
        self.status = os.path.join(self.tmp, "status")
        self.log = os.path.join(self.tmp, "test.log")
        self.dump_log = os.path.join(self.tmp, "dump.log")
        self.restore_log = os.path.join(self.tmp, "restore.log")
        self.pidfile = os.path.join(self.tmp, "pidfile")
        self.root = os.path.join(self.tmp, "root") if uns else None
        self.stasis_err = []
        os.mkdir(self.cwd)
        self.chown(self.tmp)
        self.chown(self.cwd)
        self.ncmd = 0
        self.proc = None       # the original test process (a Popen)
        self.pid = None
        self.bg = []           # background stasis processes (Popen)
        self.binary = os.path.abspath(os.path.join(build, "tests", "ckpt", name))
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
        self.before = None     # statecmp snapshot of the tree just before the dump
        self.statecmp_time = 0.0
        self.allowed_diffs = []

    def chown(self, path):
        if self.owner is not None:
            os.chown(path, self.owner[0], self.owner[1])

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
        elif self.r.flavor == "uns":
            os.mkdir(self.root)
            self.chown(self.root)
            binds = [p for p in UNS_HOST_PATHS if os.path.lexists(p)]
            binds += [self.tmp, os.path.dirname(os.path.dirname(self.binary))]
            argv = [os.path.join(self.build, "tests", "tools", "uns_launch"), "-b",
                    str(UNS_BASE), "-n", str(UNS_BASE), self.root] + binds + ["--"] + argv
        try:
            self.proc = subprocess.Popen(argv, cwd=self.cwd, env=env,
                                         stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                         preexec_fn=as_user(self.user))
        finally:
            os.close(fd)
        self.pid = self.proc.pid
        if self.r.flavor in ("ns", "uns"):
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
        if self.r.flavor in ("ns", "uns"):
            # unshare (uns_launch) reports its child's death by a signal as a failure of its own: the
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
        if self.root:
            opts += ["--root", self.root]
        try:
            self.stasis_cmd(opts, "restore")
        except Failure:
            self.release_lock()
            raise
        self.check_pidfile()

    def release_lock(self):
        """A failed restore keeps the network lock of the image on purpose (its peers are
        to see no reset while it is retried): the test gives up, so it goes (else other
        tests would find the table)."""
        if not os.path.exists(os.path.join(self.img, "netlock.img")):
            return
        run_cmd([self.stasis, "unlock-network", "-D", self.img], 30, cwd=self.tmp)

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

    def status_file_closed(self):
        """Waits (bounded) until the test no longer holds its status file: the lib opens
        it for each write, and "ready" is there before the close."""
        deadline = time.monotonic() + min(2.0, max(self.left(), 0.1))
        d = "/proc/%d/fd" % self.pid
        while time.monotonic() < deadline:
            try:
                links = [os.readlink(os.path.join(d, fd)) for fd in os.listdir(d)]
            except OSError:
                return  # gone, or an fd closed under us: look again next time
            if self.status not in links:
                return
            time.sleep(0.002)

    def snapshot_state(self):
        """The state comparison's snapshot of the tree, just before the dump."""
        t0 = time.monotonic()
        self.status_file_closed()
        self.before = statecmp.snapshot(self.pid)
        self.statecmp_time += time.monotonic() - t0

    def compare_state(self, stage):
        """Fails naming every field (and task) whose /proc state differs from the snapshot
        taken before the dump, but those tests/lib/statecmp_allow.py allows."""
        t0 = time.monotonic()
        after = statecmp.snapshot(self.pid)
        flavor = "rootless" if in_rootless_container() else self.r.flavor
        ctx = {"test": self.name, "flavor": flavor, "mode": self.meta.get("mode", "normal"),
               "stage": stage}
        diffs = statecmp.compare(self.before, after, ALLOW, ctx)
        self.statecmp_time += time.monotonic() - t0
        bad = [d for d in diffs if d[5] is None]
        if self.r.args.sabotage:
            return  # the tests corrupt themselves, some before the dump: their own verdict
        self.allowed_diffs += [d for d in diffs if d[5] is not None]
        if bad:
            # kept with the test's files: `scripts/statecmp.py compare --all BEFORE AFTER`
            statecmp.save(os.path.join(self.tmp, "statecmp-before.json"), self.pid,
                          self.before)
            statecmp.save(os.path.join(self.tmp, "statecmp-after.json"), self.pid, after)
            lines = [statecmp.describe(d) for d in bad]
            more = "" if len(lines) <= 40 else " (and %d more)" % (len(lines) - 40)
            raise Failure("state after %s differs: %s%s" % (stage, "; ".join(lines[:40]),
                                                             more))

    def known_bugs(self):
        """The fields the comparison let pass only because of a BUG: entry (shown on the
        PASS line, so that they are not hidden)."""
        return sorted(set(d[1] for d in self.allowed_diffs
                          if d[5]["reason"].startswith("BUG:")))

    def run(self):
        mode = self.meta.get("mode", "normal")
        expect = 42 if mode == "exit-status" else 0
        self.sabotage_reason = None
        self.start()
        self.wait_ready()
        if self.r.args.no_cr:
            self.finish_original(expect)
            return
        self.snapshot_state()
        if mode == "leave-running":
            self.dump(["--leave-running"])
            time.sleep(0.1)
            if self.proc.poll() is not None:
                raise Failure("the original died after dump --leave-running (%s)" %
                              describe_status_rc(self.proc.returncode))
            self.compare_state("leave-running")
            self.reset_status()
            self.finish_original(expect)
            self.reset_status()
            self.restore_detached()
            self.compare_state("restore")
            self.finish_restored(expect)
        elif mode == "exit-status":
            self.dump()
            self.check_original_gone()
            self.restore_waiting(expect)
        else:
            self.dump()
            self.check_original_gone()
            self.restore_detached()
            self.compare_state("restore")
            self.finish_restored(expect)

    def restore_waiting(self, expect):
        argv = [self.stasis, "restore", "-D", self.img, "--pidfile", self.pidfile, "-v", "-o",
                self.restore_log]
        if self.root:
            argv += ["--root", self.root]
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
                self.release_lock()
                raise Failure("restore exited (%s) before writing the pidfile: %s" % (
                    describe_status_rc(p.returncode), " ".join(tail(errpath, 1) or [])))
            if self.left() <= 0:
                raise Failure("timeout waiting for the pidfile")
            time.sleep(0.02)
        time.sleep(0.05)
        self.check_pidfile()
        if self.before is not None:
            self.compare_state("restore")
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

