# stasis-check: timeout=300 needs=root
# stasis-check: why=(userfaultfd of another process: pidfd_getfd, ptrace)
"""Lazy restore with the pages on a page server, of the checkpoint test lazy_threads: 1 GiB
of private anonymous memory that four threads read and write at random from the first
instant (faults all over it, some in kernel mode), 8 MiB dropped right after the restore,
a forked child checking words everywhere. The restoring side reads pieces into a few
buffers it reuses, asks for the next pieces while it copies the current ones, and reads
again a piece evicted before it was all copied: under that access pattern, every word
must still be right (the test passes), every area ends up unregistered, and the page
serving process (stasis-lazy) never holds more than a small part of the tree's memory
(it held a buffer as large as each run before: 1 GiB more for a 1 GiB process)."""
import os
import time

from checks.page_server import lazy_areas
from checks.page_server_serve import Serve, copy_meta
from lib.proc import Failure, Skip, in_rootless_container

MAX_RSS_KIB = 256 << 10


def lazy_servers():
    """pid -> VmRSS (KiB) of the stasis-lazy processes that are our children (a lazy
    server is reparented to us, the subreaper, when `restore -d` exits)."""
    out = {}
    me = str(os.getpid())
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                st = dict(ln.split(":", 1) for ln in f if ":" in ln)
        except OSError:
            continue
        if st.get("Name", "").strip() == "stasis-lazy" and st.get("PPid", "").strip() == me \
                and "VmRSS" in st:
            out[int(d)] = int(st["VmRSS"].split()[0])
    return out


def check(c):
    if in_rootless_container():
        raise Skip("lazy restore needs CAP_SYS_PTRACE in the initial user namespace")
    run = c.start_test("lazy_threads")
    srv = None
    try:
        run.dump()
        run.check_original_gone()
        meta = os.path.join(c.tmp, "lz-meta", os.path.basename(run.img))
        copy_meta(run.img, meta)
        srv = Serve(c, os.path.dirname(run.img))
        run.stasis_cmd(["restore", "-D", meta, "-d", "--pidfile", run.pidfile, "-v", "-o",
                        run.restore_log, "--lazy-pages", "--page-server", "--address",
                        "127.0.0.1", "--port", srv.port], "restore")
        run.check_pidfile()
        peak, seen = 0, set()
        deadline = time.monotonic() + c.timeout / 2
        while time.monotonic() < deadline:
            rss = lazy_servers()
            seen.update(rss)
            peak = max([peak] + list(rss.values()))
            if seen and not rss:
                break
            time.sleep(0.02)
        if not seen:
            raise Failure("no page serving process (stasis-lazy) seen after the restore")
        if lazy_servers():
            raise Failure("the page serving process did not finish in %d s" %
                          (c.timeout / 2))
        if lazy_areas(run.pid):
            raise Failure("areas still registered after the page serving process exited: "
                          "%d" % lazy_areas(run.pid))
        if peak > MAX_RSS_KIB:
            raise Failure("the page serving process held %d MiB (at most %d expected)" %
                          (peak >> 10, MAX_RSS_KIB >> 10))
        run.finish_restored(0)
        return "1 GiB used at random from the first instant, restored lazily from a " \
               "page server: right; the page serving process peaked at %d MiB" % (peak >> 10)
    finally:
        if srv:
            srv.stop()
        run.cleanup()
