# stasis-check: timeout=90 needs=root
# stasis-check: why=(inspects and changes nftables)
"""The restore side of the network lock (issue 11), on copies of the reference dump of
pid_same given a netlock.img by tests/tools/imgedit (a dump cannot hold a TCP connection
until TCP sockets are supported):
- a restore locks the recorded connection again (`nft monitor` sees the table and its
  element added) and removes the table once the tree runs;
- `--network-lock none` touches no table;
- a netlock.img naming a table that is not a stasis lock (`filter`) is refused with one
  line, and no table is touched;
- a restore that fails (a flipped page) keeps the lock, and `stasis unlock-network -D
  DIR` removes it (a second call says it is not there)."""
import os
import time

from checks.netlock_tcp import Monitor, lock_tables
from lib.proc import Failure, Skip, kill_pid, run_cmd, wait_pid


def with_lock(c, tag, table):
    d, pid = c.variant(tag)
    rc, _, err = run_cmd([os.path.join(c.build, "tests", "tools", "imgedit"), d, "0",
                          "netlock", table, "127.0.0.1", "4001", "127.0.0.1", "4002"], 30)
    if rc != 0:
        raise Failure("imgedit netlock failed: %s" % err.strip()[:200])
    return d, pid


def restore_ok(c, d, pid, extra=()):
    pidfile = os.path.join(c.tmp, "pidfile")
    rc, _, err = run_cmd(c.restore_argv(d) + list(extra), c.timeout, cwd=c.tmp)
    kill_pid(pid)
    wait_pid(pid, time.monotonic() + 10)
    if rc != 0:
        raise Failure("restore of %s failed: %s" % (d, err.strip()[:300]))
    if os.path.exists(pidfile):
        os.unlink(pidfile)


def events(mon, first, table):
    mon.sync()
    return [ln for ln in mon.lines[first:] if table in ln]


def check(c):
    if run_cmd(["nft", "list", "tables"], 10)[0] != 0:
        raise Skip("nftables cannot be used here (scripts/deps.sh installs nft)")
    table = "stasis-lock-%d-9" % os.getpid()
    mon = Monitor(c, [])
    try:
        mon.sync()
        # 1. locked again, then unlocked once the tree runs
        d, pid = with_lock(c, "netlock-ok", table)
        first = len(mon.lines)
        restore_ok(c, d, pid)
        seen = events(mon, first, table)
        if not any(ln.startswith("add element") and "127.0.0.1 . 4001 . 127.0.0.1 . 4002" in ln
                   for ln in seen) or not seen[-1].startswith("delete table"):
            raise Failure("the restore's lock: nft monitor saw %s" % seen)
        if lock_tables():
            raise Failure("the restore left the lock table(s) %s" % lock_tables())
        # 2. --network-lock none
        first = len(mon.lines)
        restore_ok(c, d, pid, ["--network-lock", "none"])
        if events(mon, first, table):
            raise Failure("--network-lock none changed tables: %s" % events(mon, first, table))
        # 3. a table that is not stasis's
        bad, _ = with_lock(c, "netlock-bad", "filter")
        first = len(mon.lines)
        line = c.expect_failure(c.restore_argv(bad), "restore naming table filter", pid=pid)
        if "not a stasis lock table" not in line:
            raise Failure("the refusal of table filter says: %s" % line)
        mon.sync()
        if any("filter" in ln for ln in mon.lines[first:]):
            raise Failure("a restore naming table filter changed it: %s" % mon.lines[first:])
        # 4. a failed restore keeps the lock; unlock-network removes it
        d, pid = with_lock(c, "netlock-fail", table)
        c.flip(c.image_file(d, "pages", pid), 4096 + 1234)
        c.expect_failure(c.restore_argv(d), "restore with a flipped page", pid=pid)
        if table not in lock_tables():
            raise Failure("the failed restore did not keep its lock (tables %s)" % lock_tables())
        rc, out, err = run_cmd([c.stasis, "unlock-network", "-D", d], c.timeout)
        if rc != 0 or table not in out or lock_tables():
            raise Failure("unlock-network: exit %s, %r %r, tables left %s" % (
                rc, out.strip(), err.strip(), lock_tables()))
        rc, out, err = run_cmd([c.stasis, "unlock-network", "-D", d], c.timeout)
        if rc != 0 or "not there" not in out:
            raise Failure("a second unlock-network: exit %s, %r %r" % (rc, out, err))
        return "restore locks and unlocks; none, a foreign table, a failed restore and " \
               "unlock-network behave"
    finally:
        mon.stop()
        run_cmd(["nft", "delete", "table", "inet", table], 10)
