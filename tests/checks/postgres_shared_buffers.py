# stasis-check: timeout=180 needs=host-root
# stasis-check: why=(runs Debian's postgres as its own user, on loopback)
"""A real database (Debian's PostgreSQL) checkpointed and restored: the postmaster and its
background processes share 32 MiB of buffers (MAP_SHARED anonymous memory) whose pages
were read in and written by client backends that exited before the dump, so that no
process of the tree has them in its page tables (the object holds them: before this was
caught, the restored server read zero pages where its buffers said an index was —
"index contains unexpected zero page" — and wrote them back at its next checkpoint).
A table of 20000 rows with an index is filled and read by short-lived connections; the
server is dumped and restored; then every B-tree index of the database is verified
(amcheck's bt_index_check), the table's count, sum and digest are those before the dump,
a transaction commits and a checkpoint runs; the server is stopped and started again from
its data directory, and the data (with the new rows) is still right."""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import time

from lib.proc import Failure, Skip, as_user, free_port, kill_pid, pid_alive, \
    proc_descendants, reap_all, run_cmd, wait_pid

QUERY = "select count(*), sum(a), md5(string_agg(b, ',' order by a)) from t"


class Pg:
    def __init__(self, c, bindir, d, user):
        self.c, self.bindir, self.d, self.user = c, bindir, d, user
        self.port = str(free_port())
        self.p = None

    def psql(self, sql, what):
        rc, out, err = run_cmd(["psql", "-X", "-h", "127.0.0.1", "-p", self.port, "-U",
                                "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                                "-Atc", sql], self.c.timeout / 6)
        if rc != 0:
            raise Failure("%s: psql rc %s: %s" % (what, rc, err.strip()[-300:]))
        return out.strip()

    def start(self):
        log = open(os.path.join(self.d, "pg.log"), "a")
        try:
            self.p = subprocess.Popen(
                [os.path.join(self.bindir, "postgres"), "-D", os.path.join(self.d, "data"),
                 "-k", self.d, "-p", self.port, "-c", "listen_addresses=127.0.0.1",
                 "-c", "shared_buffers=32MB", "-c", "huge_pages=off", "-c", "fsync=off"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=as_user(self.user))
        finally:
            log.close()
        self.wait_ready("the server did not start")
        return self.p.pid

    def wait_ready(self, what):
        deadline = time.monotonic() + self.c.timeout / 4
        while time.monotonic() < deadline:
            rc, _, _ = run_cmd(["psql", "-X", "-h", "127.0.0.1", "-p", self.port, "-U",
                                "postgres", "-d", "postgres", "-Atc", "select 1"], 10)
            if rc == 0:
                return
            time.sleep(0.1)
        raise Failure("%s; the end of its log: %s" % (what, self.log_tail()))

    def log_tail(self):
        try:
            with open(os.path.join(self.d, "pg.log"), errors="replace") as f:
                return " | ".join(f.read().splitlines()[-6:])
        except OSError:
            return ""

    def stop(self, pid):
        """Fast shutdown of postmaster @pid, bounded; every process it had killed after."""
        kids = proc_descendants(pid)
        if pid_alive(pid):
            os.kill(pid, signal.SIGINT)
            wait_pid(pid, time.monotonic() + self.c.timeout / 6)
        for k in [pid] + kids:
            if pid_alive(k):
                kill_pid(k)
        reap_all()
        if self.p is not None and self.p.pid == pid:
            self.p.wait(timeout=10)


def check(c):
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not bins or not shutil.which("psql"):
        raise Skip("postgresql not installed (package postgresql, scripts/deps.sh)")
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise Skip("no postgres user (package postgresql)") from None
    user = (pw.pw_uid, pw.pw_gid)
    bindir = os.path.dirname(bins[-1])
    d = os.path.join(c.tmp, "pg")
    os.makedirs(d)
    os.chmod(c.tmp, 0o755)
    os.chown(d, *user)
    rc, _, err = run_cmd([os.path.join(bindir, "initdb"), "-D", os.path.join(d, "data"),
                          "-A", "trust", "-U", "postgres", "--no-sync"], c.timeout / 3,
                         user=user, files=[os.path.join(d, "initdb.out"),
                                           os.path.join(d, "initdb.err")])
    if rc != 0:
        raise Failure("initdb rc %s: %s" % (rc, err.strip()[-300:]))
    pg = Pg(c, bindir, d, user)
    pid = pg.start()
    restored = None
    try:
        pg.psql("create extension amcheck; create table t (a int primary key, b text); "
                "insert into t select i, md5(i::text) from generate_series(1, 20000) i; "
                "create index t_b on t (b)", "fill")
        for k in range(6):  # short-lived backends read pages into the shared buffers
            pg.psql("select count(*) from t where b > '%x'; select * from pg_class limit 5"
                    % k, "read")
        want = pg.psql(QUERY, "the table before the dump")
        img = os.path.join(d, "img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "-v", "-o",
                              os.path.join(d, "dump.log")], c.timeout / 3)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[-300:])
        pg.p.wait(timeout=10)
        reap_all()
        rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "-v", "-o",
                              os.path.join(d, "restore.log")], c.timeout / 3)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[-300:])
        restored = pid
        pg.wait_ready("the restored server does not answer")
        pg.psql("select bt_index_check(c.oid) from pg_index i join pg_class c on "
                "c.oid = i.indexrelid where c.relam = 403", "amcheck of every B-tree index")
        got = pg.psql(QUERY, "the table after the restore")
        if got != want:
            raise Failure("the table after the restore: %s, before: %s" % (got, want))
        pg.psql("insert into t select i, 'new' from generate_series(20001, 20100) i; "
                "checkpoint", "write after the restore")
        pg.stop(pid)
        restored = None
        pid = pg.start()
        pg.psql("select bt_index_check(c.oid) from pg_index i join pg_class c on "
                "c.oid = i.indexrelid where c.relam = 403", "amcheck after a restart")
        n = pg.psql("select count(*) from t where b = 'new'", "the rows written after")
        if n != "100" or pg.psql(QUERY.replace("from t", "from t where a <= 20000"),
                                 "the table after a restart") != want:
            raise Failure("after a restart from the data directory: %s new rows, table %s"
                          % (n, pg.psql(QUERY, "the table")))
        return "postgres restored with buffers only exited backends had mapped: indexes " \
            "verified, %s rows intact, written and restarted cleanly" % want.split("|")[0]
    finally:
        pg.stop(restored or pid)
