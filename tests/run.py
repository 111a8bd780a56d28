#!/usr/bin/env python3
"""stasis test runner: unit tests, self-checking checkpoint tests, checks.

    python3 tests/run.py [--build DIR]... [--flavor NAME[:BUILD]]... [--only NAME...]
                         [--no-cr] [--sabotage] [--keep] [--list] [-j1]

The tests are found, not listed here: BUILD/tests/unit/test_*, tests/ckpt/NAME.c and
tests/checks/NAME.py; what each needs is in its own header (tests/lib/meta.py). See
tests/README.md. Standard library only. Every wait is bounded; processes are only ever
killed by PID, never by name.
"""
import argparse
import importlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from lib.checks import CHECK_TIMEOUT, Checks
from lib.ckpt import CkptRun
from lib.meta import REPO, check_meta, checks, ckpt_meta, ckpt_tests, unit_meta, unit_tests
from lib.proc import (TAIL_LINES, Failure, Skip, as_user, describe_status_rc, hugepages_release,
                      hugepages_reserve,
                      in_rootless_container, kill_pid, reap_all, run_cmd, set_subreaper)
from lib.users import NONROOT_USER, ensure_subids, ensure_user

DEFAULT_TIMEOUT = 60
FLAVORS = ("default", "nonroot", "rootless", "ns", "uns")
ROOTLESS_TIMEOUT = 1500
NEEDS_ROOT = ("needs root: the test makes namespaces, mounts, cgroups or ids of the host's "
              "user namespace, which a non-root user can neither create nor restore "
              "(CAP_SYS_ADMIN/CAP_SETUID there); the rootless flavor runs it in a user "
              "namespace")
# a check's needs=: who may run it (the header's why= is added to the skip reason)
CHECK_NEEDS = {"root": "needs root", "host-root": "needs the host's root"}


def where(e):
    """The innermost file:line of exception @e: a runner error names where it happened."""
    tb = e.__traceback__
    while tb and tb.tb_next:
        tb = tb.tb_next
    if not tb:
        return "?"
    return "%s:%d" % (os.path.relpath(tb.tb_frame.f_code.co_filename, REPO), tb.tb_lineno)


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

    def known(self, meta):
        """The reason to skip a test whose header says it cannot pass in this flavor."""
        if "rootless-known" in meta and in_rootless_container():
            return "known rootless limitation: " + meta["rootless-known"]
        if self.user is not None and "nonroot-known" in meta:
            return "known non-root limitation: " + meta["nonroot-known"]
        if self.flavor == "ns" and "ns-known" in meta:
            return "cannot run as a namespace init: " + meta["ns-known"]
        if self.flavor == "uns" and "uns-known" in meta:
            return "known limitation in a user-namespace container: " + meta["uns-known"]
        return None

    def run_units(self, build):
        env = dict(os.environ, STASIS_SRCDIR=REPO)
        for name in unit_tests(build):
            if not self.wanted(name):
                continue
            known = self.known(unit_meta(name))
            if known:
                self.report("SKIP", name, known)
                continue
            b = os.path.join(build, "tests", "unit", name)
            # a process group of its own: on a timeout the test and the children it
            # forked (which hold its output pipe) are killed by that group's id
            p = subprocess.Popen([b], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 errors="replace", process_group=0)
            try:
                out, _ = p.communicate(timeout=DEFAULT_TIMEOUT)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    p.kill()
                try:
                    out, _ = p.communicate(timeout=10)
                except subprocess.TimeoutExpired:  # a child in another group holds the pipe
                    p.kill()
                    p.stdout.close()
                    p.wait(timeout=10)
                    out = ""
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
            meta = ckpt_meta(name)
            if "skip" in meta:
                self.report("SKIP", name, meta["skip"] or "skip")
                continue
            if meta.get("needs") == "root" and (os.geteuid() != 0 or self.user is not None):
                self.report("SKIP", name, NEEDS_ROOT)
                continue
            known = self.known(meta)
            if known:
                self.report("SKIP", name, known)
                continue
            if self.args.sabotage and meta.get("sabotage") == "no":
                self.report("SKIP", name, "no sabotage support")
                continue
            run = CkptRun(self, build, name, meta)
            ok = False
            t0 = time.monotonic()
            skipped = None
            pool = None
            try:
                if "hugepages" in meta:
                    pool = hugepages_reserve(int(meta["hugepages"]))
                run.run()
                ok = True
            except Skip as e:
                skipped = str(e)
            except Failure as e:
                reason = str(e)
            except Exception as e:  # a runner bug must not leave processes behind
                reason = "runner error: %r (%s)" % (e, where(e))
            finally:
                run.cleanup()
                hugepages_release(pool)
            if skipped is not None:
                self.report("SKIP", name, skipped)
                run.remove(keep=False)
                continue
            if ok:
                extra = "%.1fs" % (time.monotonic() - t0)
                if run.before is not None:
                    extra += ", statecmp %.2fs" % run.statecmp_time
                if run.known_bugs():
                    extra += ", known bugs: " + " ".join(run.known_bugs())
                if self.args.sabotage:
                    extra = "sabotage detected: %s" % run.sabotage_reason
                self.report("PASS", name, extra)
            else:
                self.report("FAIL", name, reason)
                run.show_logs()
                print("    (files kept in %s)" % run.tmp)
            run.remove(keep=not ok or self.args.keep)

    def check_skip(self, meta):
        """The reason a check's header gives not to run it here, or None."""
        if "skip" in meta:
            return meta["skip"] or "skip"
        known = self.known(meta)
        if known:
            return known
        needs = meta.get("needs")
        if needs and (os.geteuid() != 0 or needs == "host-root" and in_rootless_container()):
            return CHECK_NEEDS[needs] + (" " + meta["why"] if meta.get("why") else "")
        return None

    def run_checks(self, build):
        """Every tests/checks/NAME.py, by name: check(c) with one Checks context per
        build (what the checks share), c.timeout from the header."""
        c = Checks(self, build)
        try:
            for name in checks():
                if not self.wanted(name):
                    continue
                meta = check_meta(name)
                reason = self.check_skip(meta)
                if reason:
                    self.report("SKIP", name, reason)
                    continue
                c.timeout = float(meta.get("timeout", CHECK_TIMEOUT))
                ok = False
                try:
                    said = importlib.import_module("checks." + name).check(c)
                    self.report("PASS", name, said if isinstance(said, str) else None)
                    ok = True
                except Failure as e:
                    self.report("FAIL", name, str(e))
                except Skip as e:
                    self.report("SKIP", name, str(e))
                    ok = True
                except Exception as e:  # a bug in a check must not stop the others
                    self.report("FAIL", name, "runner error: %r (%s)" % (e, where(e)))
                finally:
                    reap_all()
                    c.end_check(ok and not self.args.keep)
        finally:
            c.close()

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
        pw, reason = ensure_user()
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
        pw, reason = ensure_user()
        if reason:
            self.report("SKIP", "flavor", reason)
            return
        ensure_subids(NONROOT_USER)
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

    def list_build(self, build):
        """--list: the names a run of this flavor and build would report, not run."""
        names = ckpt_tests()
        if self.flavor in ("default", "rootless"):
            if not self.args.sabotage:
                names = unit_tests(build) + names
            if not self.args.no_cr and not self.args.sabotage:
                names += checks()
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
        if self.flavor == "uns":
            # only the checkpoint tests, each in a user-namespace container of its own
            if os.geteuid() != 0 or in_rootless_container():
                self.report("SKIP", "flavor", "the uns flavor needs root of the initial "
                            "user namespace (it maps ids 20000..39999)")
                return
            self.run_ckpt(build)
            return
        if self.flavor == "nonroot":
            # only the checkpoint tests; the unit tests and the checks stay root-only
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
                if ensure_user()[0] is not None:
                    ensure_subids(NONROOT_USER)
            self.run_units(build)
        if not self.args.no_cr and not os.access(os.path.join(build, "stasis"), os.X_OK):
            print("warning: %s/stasis not built: checkpoint tests will fail" % build,
                  flush=True)
        self.run_ckpt(build)
        if not self.args.no_cr and not self.args.sabotage:
            self.run_checks(build)


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
                    help="run only these tests (unit, checkpoint or check names)")
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
