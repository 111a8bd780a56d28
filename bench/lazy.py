#!/usr/bin/env python3
"""Lazy restore: restore-to-running and restore-to-all-memory-in, with and without
`restore --lazy-pages`, in the same run.

    python3 bench/lazy.py [--sizes 64,512,2048] [--repeat 3] [--dir /dev/shm]

Run as root from the repository after `make`. Each round starts `lazy_workload` (SIZE MiB
of private anonymous memory with a pattern, answering requests on a FIFO pair), dumps it
(`--no-sync`), then for a full and for a lazy restore (`restore -d`, alternating which
goes first) measures from the exec of `stasis restore`:
  running: until the restored process answers a request that reads 16 words spread over
           its memory (the request is queued in the FIFO before the restore starts);
  all in:  until it answers a second request that checks every word of its memory (for
           the lazy restore: pages it faults plus what the page server streams in);
and, for the lazy restore, when the page server (stasis-lazy) has exited. Medians over
the rounds; the ratios lazy/full are printed. Targets: running under 20 ms at every
size; all-in no slower than the full restore. With --incremental the image restored is a
dump made against a pre-dump taken just before (nearly every page in the parent image):
the case of a tree checkpointed at intervals. With --page-server both restores read the
pages from `stasis page-server --serve` on loopback (the metadata copied to a directory
of its own): the post-copy case, pages fetched over a connection."""
import argparse
import ctypes
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PR_SET_CHILD_SUBREAPER = 36
EXITS = {}  # kind -> when `stasis restore -d` exited (s), every round, for the note


def build(build_dir):
    exe = os.path.join(build_dir, "bench", "lazy_workload")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    src = os.path.join(ROOT, "bench", "lazy_workload.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe, src], check=True)
    return exe


def wait_file(path, p, timeout=300):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if p.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("lazy_workload did not create %s" % path)
        time.sleep(0.005)


def ask(req, resp, c, timeout=300):
    os.write(req, c)
    return answer(resp, timeout)


def answer(resp, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.read(resp, 1)
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise SystemExit("the restored workload did not answer")
            time.sleep(0.0002)


def tail(path, n=12):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def servers():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                if "(stasis-lazy) " in st and st[st.rfind(")") + 2] != "Z":
                    out.append(int(d))
            except OSError:
                pass
    return out


def reap():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def restore(a, img, pid, req, resp, lazy):
    """(running, all in, server gone) in seconds from the exec of stasis restore."""
    before = set(servers())
    os.write(req, b"p")  # queued: answered as soon as the process runs
    log = img + ".restore.log"
    if a.page_server:  # the metadata here, the pages on the server
        meta = os.path.join(os.path.dirname(img), "meta", os.path.basename(img))
        os.makedirs(meta)
        for e in os.listdir(img):
            if not e.startswith("pages-"):
                shutil.copy(os.path.join(img, e), meta)
        img = meta
    argv = [a.stasis, "restore", "-D", img, "-d", "-v", "-o", log] + (
        ["--lazy-pages"] if lazy else []) + (
        ["--page-server", "--address", "127.0.0.1", "--port", a.port]
        if a.page_server else [])
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        t_exit = None
        deadline = t0 + 300
        while True:
            try:
                got = os.read(resp, 1)
                break
            except BlockingIOError:
                if t_exit is None and p.poll() is not None:
                    t_exit = time.monotonic() - t0
                if time.monotonic() > deadline or (p.poll() is not None and
                                                   not os.path.exists("/proc/%d" % pid)):
                    raise SystemExit("the restored workload did not answer (%s); the end of "
                                     "%s:\n%s" % ("lazy" if lazy else "full", log,
                                                   tail(log)))
                time.sleep(0.0002)
        if got != b"p":
            raise SystemExit("the restored workload read wrong memory")
        t_run = time.monotonic() - t0
        if ask(req, resp, b"s") != b"s":
            raise SystemExit("the restored workload's memory is wrong (%s)" %
                             ("lazy" if lazy else "full"))
        t_all = time.monotonic() - t0
        if p.wait(timeout=300):
            raise SystemExit("stasis restore failed (exit %d)" % p.returncode)
        if t_exit is None:
            t_exit = time.monotonic() - t0
        EXITS.setdefault("lazy" if lazy else "full", []).append(t_exit)
        t_srv = None
        if lazy:
            while [s for s in servers() if s not in before]:
                reap()  # the server is ours once stasis exited (subreaper)
                if time.monotonic() - t0 > 300:
                    raise SystemExit("the page server does not exit")
                time.sleep(0.001)
            t_srv = time.monotonic() - t0
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
            reap()
            time.sleep(0.002)
        reap()
    return t_run, t_all, t_srv


def one_round(a, exe, scratch, size, rnd):
    res = {}
    for lazy in ((False, True) if rnd % 2 == 0 else (True, False)):
        tag = "%d.%d.%s" % (size, rnd, "lazy" if lazy else "full")
        ready = os.path.join(scratch, "ready." + tag)
        fifos = [os.path.join(scratch, "%s.%s" % (n, tag)) for n in ("req", "resp")]
        for f in fifos:
            os.mkfifo(f)
        req = os.open(fifos[0], os.O_RDWR | os.O_NONBLOCK)
        resp = os.open(fifos[1], os.O_RDWR | os.O_NONBLOCK)
        img = os.path.join(scratch, "img." + tag)
        p = subprocess.Popen([exe, str(size), ready] + fifos, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_file(ready, p)
            prev = []
            if a.incremental:
                pre = img + ".pre"
                r = subprocess.run([a.stasis, "pre-dump", "-t", str(p.pid), "-D", pre,
                                    "--no-sync"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if r.returncode:
                    raise SystemExit("pre-dump failed: %s" % r.stderr.strip()[:300])
                prev = ["--prev-images-dir", pre]
            r = subprocess.run([a.stasis, "dump", "-t", str(p.pid), "-D", img, "--no-sync"] + prev,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            if r.returncode:
                raise SystemExit("dump failed: %s" % r.stderr.strip()[:300])
            p.wait()
            res["lazy" if lazy else "full"] = restore(a, img, p.pid, req, resp, lazy)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(req)
            os.close(resp)
            shutil.rmtree(img, ignore_errors=True)
            shutil.rmtree(img + ".pre", ignore_errors=True)
            shutil.rmtree(os.path.join(scratch, "meta", os.path.basename(img)),
                          ignore_errors=True)
            for f in fifos + [ready]:
                if os.path.exists(f):
                    os.unlink(f)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,512,2048", help="MiB, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/dev/shm", help="where the images go")
    ap.add_argument("--stasis", default=os.path.join(ROOT, "build", "stasis"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--incremental", action="store_true",
                    help="restore a dump made against a pre-dump just before (almost "
                         "every page lies in the parent image)")
    ap.add_argument("--page-server", action="store_true",
                    help="restore with the pages read from `stasis page-server --serve` "
                         "on loopback (full and lazy)")
    a = ap.parse_args()
    if ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0):
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    exe = build(a.build)
    scratch = tempfile.mkdtemp(prefix="stasis-bench-lazy-", dir=a.dir)
    table = []
    server = None
    if a.page_server:
        server = subprocess.Popen([a.stasis, "page-server", "--serve", "-D", scratch,
                                "--address", "127.0.0.1", "--port", "0"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        a.port = server.stdout.readline().strip().rsplit(":", 1)[1]
    try:
        for size in [int(s) for s in a.sizes.split(",")]:
            rounds = []
            for r in range(a.repeat):
                rounds.append(one_round(a, exe, scratch, size, r))
                print("%d MiB round %d: %s" % (size, r, "; ".join(
                    "%s running %.1f ms, all in %.1f ms%s" % (
                        k, v[0] * 1e3, v[1] * 1e3,
                        ", server gone %.1f ms" % (v[2] * 1e3) if v[2] else "")
                    for k, v in sorted(rounds[-1].items()))), flush=True)
            med = {k: [statistics.median(x[k][i] for x in rounds) for i in range(2)]
                   for k in ("full", "lazy")}
            srv = statistics.median(x["lazy"][2] for x in rounds)
            table.append((size, med, srv))
    finally:
        if server:
            server.kill()
            server.wait()
        shutil.rmtree(scratch, ignore_errors=True)
    print("\nmedians of %d rounds (images in %s):" % (a.repeat, a.dir))
    print("| MiB | full: running | lazy: running | running lazy/full | full: all in "
          "| lazy: all in | all in lazy/full | lazy: server gone |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    ok = True
    for size, med, srv in table:
        f, l = med["full"], med["lazy"]
        print("| %d | %.1f ms | %.1f ms | %.3f | %.1f ms | %.1f ms | %.2f | %.1f ms |" % (
            size, f[0] * 1e3, l[0] * 1e3, l[0] / f[0], f[1] * 1e3, l[1] * 1e3, l[1] / f[1],
            srv * 1e3))
        ok &= l[0] < 0.020 and l[1] <= f[1]
    print("targets (lazy running < 20 ms; lazy all in <= full): %s" % ("ok" if ok else "MISS"))
    print("`stasis restore -d` itself exited after (medians of every round and size): "
          "full %.1f ms, lazy %.1f ms" % tuple(statistics.median(EXITS[k]) * 1e3
                                                for k in ("full", "lazy")))


if __name__ == "__main__":
    sys.exit(main())
