# stasis-check: timeout=60
"""A real database program holding its locks across a checkpoint: Debian's sqlite3 (a
rollback-journal database, POSIX record locks on the database file) reads its commands
from a FIFO and holds a write transaction (BEGIN EXCLUSIVE, a row inserted, not
committed) when it is dumped (killed) and restored. Nothing touches the database in
between (a reader would roll the hot journal back). After the restore a second sqlite3
gets "database is locked" (the exclusive lock is held again, by the restored process);
the first commits a second row and exits 0, and the table holds exactly the rows of
before the dump, of the transaction and of after the restore."""
import os
import shutil
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, reap_all, wait_pid


def sql(c, db, query):
    """A second sqlite3 that never waits for a lock: (exit code, output)."""
    r = subprocess.run(["sqlite3", "-cmd", ".timeout 0", db, query], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=c.timeout)
    return r.returncode, (r.stdout + r.stderr).strip()


def wait_locked(c, db, what):
    deadline = time.monotonic() + 10
    while True:
        rc, out = sql(c, db, "SELECT count(*) FROM t;")
        if rc != 0 and "database is locked" in out:
            return out
        if time.monotonic() > deadline:
            raise Failure("%s: the database is not locked (%d: %s)" % (what, rc, out))
        time.sleep(0.05)


def check(c):
    if not shutil.which("sqlite3"):
        raise Skip("sqlite3 is not installed (package sqlite3, scripts/deps.sh)")
    d = os.path.join(c.tmp, "sqlite")
    os.makedirs(d)
    db = os.path.join(d, "test.db")
    img = os.path.join(d, "img")
    out = os.path.join(d, "out")
    fifo = os.path.join(d, "cmds")
    rc, o = sql(c, db, "CREATE TABLE t(x INTEGER); INSERT INTO t VALUES(1);")
    if rc != 0:
        raise Failure("cannot create the database: %s" % o)
    os.mkfifo(fifo)
    fifo_rw = os.open(fifo, os.O_RDWR)  # sqlite3's stdin; never sees EOF
    p = None
    w = -1
    pid = None
    try:
        with open(out, "w") as f:
            p = subprocess.Popen(["sqlite3", db], stdin=fifo_rw, stdout=f,
                                 stderr=subprocess.STDOUT, start_new_session=True, cwd=d)
        pid = p.pid
        os.close(fifo_rw)
        fifo_rw = -1
        w = os.open(fifo, os.O_WRONLY)
        # its own statements wait for the probes' short shared locks (BEGIN EXCLUSIVE
        # refused by a probe's read would leave the INSERT to commit on its own)
        os.write(w, b".timeout 10000\nBEGIN EXCLUSIVE;\nINSERT INTO t VALUES(42);\n")
        wait_locked(c, db, "before the dump")
        r = subprocess.run([c.stasis, "dump", "-t", str(pid), "-D", img],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("dump failed: %s" % r.stderr.strip())
        p.wait(timeout=c.timeout)
        reap_all()
        pidfile = os.path.join(d, "pidfile")
        r = subprocess.run([c.stasis, "restore", "-D", img, "-d", "--pidfile", pidfile],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("restore failed: %s" % r.stderr.strip())
        with open(pidfile) as f:
            if int(f.read().strip()) != pid or not pid_alive(pid):
                raise Failure("the restored sqlite3 is not pid %d" % pid)
        locked = wait_locked(c, db, "after the restore")
        os.write(w, b"INSERT INTO t VALUES(43);\nCOMMIT;\n.exit\n")
        status = wait_pid(pid, time.monotonic() + c.timeout)
        if status is None:
            raise Failure("the restored sqlite3 did not exit")
        if status != -1 and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            raise Failure("the restored sqlite3 ended with status %#x" % status)
        pid = None
        with open(out, errors="replace") as f:
            text = f.read()
        if text.strip():
            raise Failure("sqlite3 printed: %r" % text[:300])
        rc, rows = sql(c, db, "SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x);")
        if rc != 0 or rows != "1,42,43":
            raise Failure("the table holds %r (%d), expected 1,42,43" % (rows, rc))
        return "after the restore a second sqlite3 said %r; rows %s" % (locked, rows)
    finally:
        if w >= 0:
            os.close(w)
        if fifo_rw >= 0:
            os.close(fifo_rw)
        if pid is not None and pid_alive(pid):
            kill_pid(pid)
        if p is not None and p.poll() is None:
            kill_pid(p.pid)
        reap_all()
