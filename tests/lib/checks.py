"""The context of the checks (tests/checks/NAME.py): one per build and run, handed to each
check's check(c). It holds what checks share: a scratch directory, a reference dump of
pid_same and its damaged copies, a dump of ns_mnt (tmpfs contents in blobs.img) and its
damaged copies, a dump of pid_same run as NONROOT_USER, and the helpers
every check uses (expect_failure, restore_argv, pins, overlays)."""
import os
import shutil
import subprocess
import tempfile
import time

from lib.ckpt import CkptRun
from lib.nsfs import CLONE_FLAG, mounts_under, nsfs_type, umount_under
from lib.proc import (Failure, Skip, check_untouched, in_rootless_container, kill_pid,
                      my_children, pid_alive, proc_stat, reap_all, run_cmd, wait_pid)
from lib.users import NONROOT_USER, ensure_user

# the default bound of every command and wait of a check (its header may say timeout=)
CHECK_TIMEOUT = 30


class Checks:
    """Bad-input checks must fail with a non-zero exit, one non-empty stderr line,
    and leave no process behind; the other checks say what they saw."""

    def __init__(self, runner, build):
        self.r = runner
        self.build = build
        self.stasis = os.path.join(build, "stasis")
        self.tmp = tempfile.mkdtemp(prefix="stasis-bad-", dir="/tmp")
        self.timeout = CHECK_TIMEOUT  # the running check's (set by the runner)
        self.ref = None        # (image dir, pid) of a reference dump of pid_same
        self.ref_error = None
        self.ref_run = None    # its CkptRun (the directory holding the images)
        self.blob_ref = None   # (image dir, pid) of a dump of ns_mnt, with blobs.img
        self.blob_run = None   # its CkptRun
        self.uref = None       # (image dir, pid, uid, gid) of pid_same run as the user
        self.urun = None       # its CkptRun
        self.started = []      # CkptRuns of the running check (end_check removes them)

    def dump_restore(self, pid, d, proc=None):
        """Dumps the program @pid into @d/img (its log @d/dump.log) and, once it is gone
        (@proc, its Popen, waited for), restores it with -d (@d/restore.log)."""
        img = os.path.join(d, "img")
        rc, _, err = run_cmd([self.stasis, "dump", "-t", str(pid), "-D", img, "-o",
                              os.path.join(d, "dump.log"), "-v"], self.timeout)
        if rc != 0:
            raise Failure("dump: %s" % err.strip()[-300:])
        if proc is not None:
            proc.wait(timeout=10)
        rc, _, err = run_cmd([self.stasis, "restore", "-D", img, "-d", "-o",
                              os.path.join(d, "restore.log"), "-v"], self.timeout)
        if rc != 0:
            raise Failure("restore: %s" % err.strip()[-300:])

    def expect_failure(self, argv, what, pid=None, allowed=()):
        """Runs @argv, which must fail: a non-zero exit, exactly one non-empty line on
        stderr (returned), no new child left (but @allowed) and no process with @pid (the
        dumped pid a failed restore must not leave). What it left is killed by PID."""
        before = set(my_children())
        rc, out, err = run_cmd(argv, self.timeout, cwd=self.tmp)
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

    def expect_dump_refused(self, pid, tag, want):
        """A dump of the running task @pid into a directory @tag must be refused with one
        line holding every string of @want; the task runs on untouched. The line."""
        before = proc_stat(pid)
        err = self.expect_failure([self.stasis, "dump", "-t", str(pid), "-D",
                                   os.path.join(self.tmp, tag)],
                                  "dump of a task holding %s" % tag, allowed=(pid,))
        for w in want:
            if w not in err:
                raise Failure("the refusal does not say '%s': %s" % (w, err))
        check_untouched(pid, before)
        return err

    def start_test(self, name, shared=False):
        """Checkpoint test @name started and ready (a CkptRun: cleanup() is the caller's;
        its directory is removed when the check ends (kept, without big files, when it
        failed), or, @shared (a reference several checks use), by close())."""
        run = CkptRun(self.r, self.build, name, {"timeout": self.timeout})
        if not shared:
            self.started.append(run)
        run.start()
        run.wait_ready()
        return run

    def end_check(self, ok):
        """The check is over: the directories of the tests it started go (a failed one's
        are kept, without the big files, as a failed checkpoint test's)."""
        for run in self.started:
            run.remove(keep=not ok)
            if not ok:
                print("    (files kept in %s)" % run.tmp)
        self.started = []

    def reference(self):
        """(image dir, pid) of a dump of pid_same made once per run (the original gone)."""
        if self.ref is None and self.ref_error is None:
            run = None
            try:
                run = self.start_test("pid_same", shared=True)
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
        """A copy of the reference dump in TMP/@tag, to damage: (dir, pid)."""
        img, pid = self.reference()
        dst = os.path.join(self.tmp, tag)
        shutil.copytree(img, dst)
        return dst, pid

    def blob_reference(self):
        """(image dir, pid) of a dump of ns_mnt made once per run (the original gone):
        its tmpfs files' contents are in blobs.img."""
        if self.blob_ref is None:
            run = None
            try:
                run = self.start_test("ns_mnt", shared=True)
                run.dump()
                run.check_original_gone()
                self.blob_ref = (run.img, run.pid)
            finally:
                if run:
                    run.cleanup()
                    self.blob_run = run
        return self.blob_ref

    def blob_variant(self, tag):
        """A copy of the ns_mnt dump in TMP/@tag, to damage: (dir, pid, its blobs.img)."""
        img, pid = self.blob_reference()
        dst = os.path.join(self.tmp, tag)
        shutil.copytree(img, dst)
        path = os.path.join(dst, "blobs.img")
        if not os.path.exists(path) or os.path.getsize(path) <= 4096 + 64 * 1024:
            raise Failure("the dump of ns_mnt has no blobs.img with its 96 KiB file "
                          "(files: %s)" % " ".join(sorted(os.listdir(dst))))
        return dst, pid, path

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

    @staticmethod
    def flip(path, off):
        """Inverts the byte at @off of the file @path."""
        with open(path, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            if not b:
                raise Failure("%s has no byte at offset %d" % (path, off))
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))

    def user_reference(self):
        """(image dir, pid, uid, gid) of pid_same run and dumped as NONROOT_USER in a
        directory the user owns (dumped by root: the images are then given to the user)."""
        if self.uref:
            return self.uref
        if os.geteuid() != 0 or in_rootless_container():
            raise Skip("needs the host's root to run a test as %s" % NONROOT_USER)
        if not shutil.which("setpriv"):
            raise Skip("setpriv not found (package util-linux)")
        pw, reason = ensure_user()
        if reason:
            raise Skip(reason)
        saved = (self.r.user, self.r.user_dir, self.r.user_stasis)
        os.chmod(self.tmp, 0o755)  # the user runs its copy of the test from here
        self.r.user, self.r.user_dir = (pw.pw_uid, pw.pw_gid), self.tmp
        self.r.user_stasis = self.stasis
        try:
            run = CkptRun(self.r, self.build, "pid_same", {"timeout": self.timeout})
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
        """A copy of the user's dump edited by tests/tools/imgedit @edit, and the argv of
        its restore by the user with only CAP_CHECKPOINT_RESTORE: (argv, pid)."""
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
        run = CkptRun(self.r, self.build, name, {"timeout": self.timeout})
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
        deadline = time.monotonic() + self.timeout
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

    @staticmethod
    def stop_overlay(p):
        kill_pid(p.pid)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self):
        if self.urun:
            shutil.rmtree(self.urun.tmp, ignore_errors=True)
        if self.ref_run:
            shutil.rmtree(self.ref_run.tmp, ignore_errors=True)
        if self.blob_run:
            shutil.rmtree(self.blob_run.tmp, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        reap_all()
