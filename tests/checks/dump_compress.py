# stasis-check: timeout=120 needs=root
# stasis-check: why=lazy restore needs CAP_SYS_PTRACE (userfaultfd); pre-dump tracks writes
"""dump --compress (zstd pages files, src/mem/pagez.c).

A python process holding 64 MiB (32 MiB of compressible text, 32 MiB of os.urandom;
commands read from a file, the workload of incr_chain) is pre-dumped with --compress,
writes 1 MiB and is dumped with --compress against it (--prev-images-dir): the chain of
two compressed images restores exactly (the sha256 of its buffers, asked of the restored
process). The restored process is dumped again with --compress alone: its pages file
must be much smaller than the uncompressed stream it holds (the header's stream_len, by
`stasis show`: measured 0.47, asserted at most 0.57), `stasis show --pages` must read the
text back out of it, a flipped byte inside a compressed frame must make the restore fail
with one line naming the corrupted frame and leave no process, and restore --lazy-pages
of the good image must restore it exactly. Last, the checkpoint test tree_cow (pages
shared copy-on-write between processes of a tree) dumped with --compress must pass."""
import json
import os
import shutil
import subprocess
import sys
import time

from checks.incr_chain import WORKLOAD as INCR_WORKLOAD
from checks.incr_chain import Work, keepers, must
from lib.proc import Failure, kill_pid, my_children, reap_all, run_cmd, wait_pid

MIB = 1 << 20
MAX_RATIO = 0.57

# incr_chain's workload, its 64 MiB filled half with text and half at random, its
# address written to `addr` (for show --pages)
FILL = r"""
import ctypes
text = b"".join(b"line %08d: the quick brown fox jumps over the lazy dog\n" % i
                for i in range(N // 2 // 64 + 1))
buf.write(text[:N // 2])
buf.write(os.urandom(N // 2))
del text
with open("addr", "w") as f:
    f.write("%x\n" % ctypes.addressof(ctypes.c_char.from_buffer(buf)))
"""
WORKLOAD = INCR_WORKLOAD.replace("buf.write(os.urandom(N))\n", FILL)


def show_pages(c, d, pid):
    rc, out, err = run_cmd([c.stasis, "show", c.image_file(d, "pages", pid)], c.timeout)
    if rc != 0:
        raise Failure("show pages-%d.img: %s" % (pid, err.strip()[:200]))
    return json.loads(out)


def restore_check(c, w, wd, d, want, extra=()):
    """Restores @d (with @extra options), asks the process for its hash, kills it."""
    os.unlink(os.path.join(wd, "done"))
    rc, _, err = run_cmd(c.restore_argv(d) + list(extra), c.timeout, cwd=c.tmp)
    if rc != 0 and "CAP_SYS_PTRACE" in err and extra:
        return "lazy restore refused here"  # one line, as it must be (rootless)
    if rc != 0:
        raise Failure("restore %s %s: %s" % (d, " ".join(extra), err.strip()[:400]))
    got = w.cmd("hash")
    if got != want:
        raise Failure("restored memory of %s %s differs: %s, want %s" % (
            d, " ".join(extra), got, want))


def cow_tree(c):
    """The checkpoint test tree_cow dumped with --compress: runs a child shares with
    its parent (src_pid) are checksummed from the parent's compressed stream at dump and
    read from it at restore."""
    run = c.start_test("tree_cow")
    try:
        run.meta["dump-opts"] = "--compress"
        run.dump()
        run.check_original_gone()
        run.restore_detached()
        run.finish_restored(0)
    finally:
        run.cleanup()


def check(c):
    if FILL not in WORKLOAD:
        raise Failure("incr_chain's workload no longer fills its buffer as this check expects")
    wd = os.path.join(c.tmp, "compress-work")
    os.makedirs(wd, exist_ok=True)
    before_keepers = set(keepers())
    p = subprocess.Popen([sys.executable, "-c", WORKLOAD], cwd=wd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = p.pid
    w = Work(c, wd)
    try:
        w.wait(0)
        d1, d2, d3 = (os.path.join(c.tmp, "compress-d%d" % i) for i in (1, 2, 3))
        must(c, "pre-dump --compress", "pre-dump", "-t", str(pid), "-D", d1, "--no-sync",
             "--compress")
        want = w.cmd("write 100 256")
        must(c, "dump --compress --prev-images-dir", "dump", "-t", str(pid), "-D", d2,
             "--no-sync", "--compress=3", "--prev-images-dir", "../compress-d1")
        p.wait(timeout=c.timeout)
        if not show_pages(c, d1, pid)["flags"] & 1:
            raise Failure("pages-%d.img of the pre-dump is not marked compressed" % pid)
        restore_check(c, w, wd, d2, want)                      # the chain of two

        must(c, "dump --compress", "dump", "-t", str(pid), "-D", d3, "--no-sync",
             "--compress")
        wait_pid(pid, time.monotonic() + c.timeout)
        hdr = show_pages(c, d3, pid)
        size = os.path.getsize(c.image_file(d3, "pages", pid))
        stream = hdr.get("stream_len", 0)
        ratio = size / stream if stream else 1
        if stream < 64 * MIB or ratio > MAX_RATIO:
            raise Failure("pages file %.1f MiB for a stream of %.1f MiB (ratio %.2f, want "
                          "<= %.2f)" % (size / MIB, stream / MIB, ratio, MAX_RATIO))
        with open(os.path.join(wd, "addr")) as f:
            addr = int(f.read(), 16)
        rc, out, err = run_cmd([c.stasis, "show", "--pid", str(pid), "--pages",
                                "%x+4096" % (addr + 5 * MIB), d3], c.timeout)
        if rc != 0 or "quick brown fox" not in out:
            raise Failure("show --pages of the compressed image: %s %s" % (
                err.strip()[:200], out[:200]))

        bad = os.path.join(c.tmp, "compress-bad")
        shutil.copytree(d3, bad)
        c.flip(c.image_file(bad, "pages", pid), 4096 + 1000)   # inside frame 0
        line = c.expect_failure(c.restore_argv(bad), "restore of a corrupted frame", pid=pid)
        if "frame 0" not in line or "corrupted" not in line:
            raise Failure("corrupted frame: the error does not say so: %s" % line)

        lazy = restore_check(c, w, wd, d3, want, ["--lazy-pages"]) or "lazy restore exact"
        cow_tree(c)
        return "pages file %.1f MiB for %.1f MiB of stream (ratio %.2f); chain, plain " \
               "restores exact; %s" % (size / MIB, stream / MIB, ratio, lazy)
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 10)
        for k in set(keepers()) - before_keepers:
            kill_pid(k)
        for s in [q for q in my_children() if q not in before_keepers]:
            try:
                with open("/proc/%d/comm" % s) as f:
                    if f.read().strip() == "stasis-lazy":
                        kill_pid(s)
            except OSError:
                pass
        reap_all()
        shutil.rmtree(wd, ignore_errors=True)
