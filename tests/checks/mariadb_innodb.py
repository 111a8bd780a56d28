# stasis-check: timeout=180 needs=host-root
# stasis-check: why=(runs Debian's MariaDB server)
"""A real database server (Debian's MariaDB, InnoDB with native AIO: io_setup contexts,
a dozen threads, temporary files made with O_TMPFILE, its unix socket) checkpointed and
restored: a table of 5000 rows is filled through the client; the server is dumped (killed)
and restored; the table's count and checksum (CHECKSUM TABLE) are those before, a
transaction inserting more rows commits; the server is shut down cleanly (its shutdown
flushes InnoDB through the restored AIO contexts), started again from its data directory,
and every row is there. The first try found the O_TMPFILE files restored with
O_DIRECTORY (ENOTDIR)."""
import os
import shutil
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_descendants, reap_all, \
    run_cmd, wait_pid


class Maria:
    def __init__(self, c, d):
        self.c, self.d = c, d
        self.sock = os.path.join(d, "sock")
        self.p = None

    def sql(self, q, what):
        rc, out, err = run_cmd(["mariadb", "--no-defaults", "-S", self.sock, "-uroot", "-N",
                                "-B", "-e", q], self.c.timeout / 6)
        if rc != 0:
            raise Failure("%s: mariadb rc %s: %s" % (what, rc, err.strip()[-300:]))
        return out.strip()

    def start(self):
        log = open(os.path.join(self.d, "server.log"), "a")
        try:
            self.p = subprocess.Popen(
                ["mariadbd", "--no-defaults", "--datadir=" + os.path.join(self.d, "data"),
                 "--socket=" + self.sock, "--skip-networking", "--user=root",
                 "--pid-file=" + os.path.join(self.d, "pid"), "--innodb-buffer-pool-size=32M",
                 "--tmpdir=" + self.d], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        finally:
            log.close()
        self.wait_ready("the server did not start")
        return self.p.pid

    def wait_ready(self, what):
        deadline = time.monotonic() + self.c.timeout / 4
        while time.monotonic() < deadline:
            rc, _, _ = run_cmd(["mariadb", "--no-defaults", "-S", self.sock, "-uroot", "-e",
                                "select 1"], 10)
            if rc == 0:
                return
            time.sleep(0.1)
        raise Failure(what)

    def stop(self, pid):
        """Shut down cleanly; @pid (the restored server) must exit within the bound."""
        self.sql("shutdown", "shutdown")
        if wait_pid(pid, time.monotonic() + self.c.timeout / 4) is None:
            raise Failure("the server did not exit after shutdown")


def check(c):
    if not shutil.which("mariadbd") or not shutil.which("mariadb-install-db"):
        raise Skip("mariadb-server not installed (scripts/deps.sh)")
    d = os.path.join(c.tmp, "mariadb")
    os.makedirs(d)
    rc, _, err = run_cmd(["mariadb-install-db", "--no-defaults", "--datadir=" +
                          os.path.join(d, "data"), "--user=root",
                          "--auth-root-authentication-method=normal"], c.timeout / 3)
    if rc != 0:
        raise Failure("mariadb-install-db: %s" % err.strip()[-300:])
    m = Maria(c, d)
    pid = m.start()
    pids = []
    try:
        m.sql("create database s; use s; create table s.t (a int primary key, b varchar(64)) "
              "engine=innodb; insert into s.t select seq, md5(seq) from seq_1_to_5000",
              "fill")
        before = m.sql("select count(*) from s.t; checksum table s.t", "before")
        if not before.startswith("5000"):
            raise Failure("the table was not filled: %r" % before)
        pids = [pid] + proc_descendants(pid)
        img = os.path.join(d, "img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "-o",
                              img + "-dump.log", "-v"], c.timeout / 4)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[-300:])
        m.p.wait(timeout=20)
        rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "-o",
                              img + "-restore.log", "-v"], c.timeout / 4)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[-300:])
        m.wait_ready("the restored server does not answer")
        after = m.sql("select count(*) from s.t; checksum table s.t", "after")
        if after != before:
            raise Failure("after the restore the table reads %r, was %r" % (after, before))
        m.sql("use s; start transaction; insert into s.t select seq, 'new' from seq_5001_to_5100; "
              "commit", "insert")
        m.stop(pid)
        m.p = None
        pid = m.start()
        again = m.sql("select count(*), sum(b = 'new') from s.t", "after a restart")
        if again.split() != ["5100", "100"]:
            raise Failure("after a clean shutdown and a start the table reads %r" % again)
        m.stop(pid)
        return "MariaDB %d: 5000 rows dumped and restored (count and checksum kept), 100 " \
            "more committed, clean shutdown, started again: 5100 rows" % pids[0]
    finally:
        for p in [pid] + pids:
            if pid_alive(p):
                kill_pid(p)
        if m.p and m.p.poll() is None:
            m.p.kill()
            m.p.wait(timeout=10)
        reap_all()
