# stasis-check: timeout=30 needs=root
# stasis-check: why=(mounts)
"""`restore --pin-ns DIR` of ns_uts (the root's UTS namespace and its child's):
DIR/uts-ROOT and DIR/uts-CHILD are the restored tasks' namespaces (nsfs, same
inodes); they outlive the tasks (nsenter reads their hostnames); a restore into the
same DIR is refused naming the existing pin; a restore with `--join-ns
uts:DIR/uts-ROOT --pin-ns DIR2` puts the root back in the pinned namespace and pins
only the child's new one. Every pin is unmounted at the end, whatever happened."""
import os
import shutil
import stat
import time

from lib.nsfs import mounts_under, umount_under
from lib.proc import Failure, Skip, describe_status_rc, pid_alive, reap_all, run_cmd


def check(c):
    if not shutil.which("nsenter"):
        raise Skip("nsenter not found (package util-linux)")
    run, pins = c.pin_start("ns_uts")
    try:
        if len(run.tree) != 2:
            raise Failure("ns_uts should be two processes, was %s" % run.tree)
        root, child = run.tree
        c.pin_restore(run, pins)
        rpin, cpin = "uts-%d" % root, "uts-%d" % child
        inos = c.pin_check(pins, {rpin: ("uts", root), cpin: ("uts", child)})
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
        line = c.expect_failure([c.stasis, "restore", "-D", run.img, "-d",
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
        c.pin_check(pins2, {cpin: ("uts", child)})
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
        c.pin_done(run)
