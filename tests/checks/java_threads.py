# stasis-check: timeout=120
"""OpenJDK, not written here: a JVM (its GC, JIT compiler and signal threads, the perf
data file it maps, some 20 threads in all) running a pool of 6 worker threads that
update a 200k-entry HashMap under a lock and count their rounds, while the main thread
writes the total and the map's checksum to a status file every 50 ms. Dumped and
restored with -d: the same pid and thread count, the map's checksum at the dump found
again (the workers stop to let it be read), and every worker carries on counting."""
import os
import shutil
import subprocess
import time

from lib.proc import Failure, end_started, pid_alive, reap_all

PROG = r"""
import java.nio.file.*;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

public class Work {
    static final Map<Integer, Long> map = new HashMap<>();
    static final AtomicLongArray rounds = new AtomicLongArray(6);
    static volatile boolean hold;

    static long sum() {
        long s = 0;
        for (Map.Entry<Integer, Long> e : map.entrySet())
            s = (s * 31 + e.getKey() * 7 + e.getValue()) % 1000000007L;
        return s;
    }

    public static void main(String[] a) throws Exception {
        for (int i = 0; i < 200000; i++) map.put(i, (long) i);
        ExecutorService pool = Executors.newFixedThreadPool(6);
        for (int w = 0; w < 6; w++) {
            final int id = w;
            pool.submit(() -> {
                Random r = new Random(id);
                while (true) {
                    if (hold) { Thread.sleep(1); continue; }
                    synchronized (map) { int k = r.nextInt(200000); map.put(k, map.get(k) + 1); }
                    rounds.incrementAndGet(id);
                    if ((rounds.get(id) & 1023) == 0) Thread.sleep(1);
                }
            });
        }
        Path out = Paths.get(a[0]), tmp = Paths.get(a[0] + ".tmp"), ask = Paths.get(a[1]);
        long seq = 0, s = -1;
        while (true) {
            if (Files.exists(ask)) {  // "sum": hold the workers, give the checksum; "go"
                String q = new String(Files.readAllBytes(ask)).trim();
                Files.delete(ask);
                if (q.equals("sum")) {
                    hold = true;
                    Thread.sleep(20);
                    synchronized (map) { s = sum(); }
                } else {
                    hold = false;
                    s = -1;
                }
            }
            StringBuilder b = new StringBuilder().append(++seq).append(' ');
            for (int w = 0; w < 6; w++) b.append(rounds.get(w)).append(' ');
            b.append(hold ? "held " + s : "run");
            Files.write(tmp, b.toString().getBytes());
            Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
            Thread.sleep(50);
        }
    }
}
"""


def status(path):
    try:
        return open(path).read().split()
    except OSError:
        return []


def wait_status(path, p, pred, what, secs=30):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        s = status(path)
        if s and pred(s):
            return s
        if p is not None and p.poll() is not None:
            raise Failure("java exited (%s) waiting for %s" % (p.returncode, what))
        time.sleep(0.05)
    raise Failure("java: no %s (status %r)" % (what, status(path)))


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def ask_for(path, what):
    with open(path + ".tmp", "w") as f:
        f.write(what)
    os.rename(path + ".tmp", path)


def check(c):
    java = shutil.which("java")
    if not java:
        raise Failure("java is not installed (scripts/deps.sh installs openjdk-17-jdk-headless)")
    d = os.path.join(c.tmp, "java")
    os.makedirs(d)
    src, st, ask = (os.path.join(d, n) for n in ("Work.java", "status", "ask"))
    with open(src, "w") as f:
        f.write(PROG)
    # (the source launcher compiles it in memory: the JDK, not only the JRE)
    p = subprocess.Popen([java, "-Xmx256m", "-XX:+UseSerialGC", src, st, ask], cwd=d,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    pid = p.pid
    try:
        wait_status(st, p, lambda s: s[-1] == "run" and min(map(int, s[1:7])) > 1000,
                    "running workers", 60)
        ask_for(ask, "sum")
        held = wait_status(st, p, lambda s: s[-2] == "held" and s[-1] != "-1", "checksum")
        n_threads = threads(pid)
        c.dump_restore(pid, d, p)
        if not pid_alive(pid) or threads(pid) != n_threads:
            raise Failure("restored with %s threads, were %d" % (
                threads(pid) if pid_alive(pid) else "no", n_threads))
        # the map as it was at the dump (the workers were held), computed again
        seq = int(status(st)[0])
        ask_for(ask, "sum")
        again = wait_status(st, None, lambda s: int(s[0]) > seq + 1 and s[-2] == "held",
                            "checksum again")
        if again[-1] != held[-1] or again[1:7] != held[1:7]:
            raise Failure("after the restore: %r, at the dump: %r" % (again, held))
        ask_for(ask, "go")
        on = wait_status(st, None, lambda s: s[-1] == "run" and all(
            int(a) > int(b) + 1000 for a, b in zip(s[1:7], held[1:7])), "workers going on")
        return "java %d (%d threads) restored: map checksum %s kept, every worker went " \
               "on (rounds %s -> %s)" % (pid, n_threads, held[-1], " ".join(held[1:7]),
                                         " ".join(on[1:7]))
    finally:
        end_started(p, True)
        reap_all()
