#!/usr/bin/env python3
"""Regenerates the committed seed corpus tests/fuzz/corpus/TARGET/ (run from the
repository root after tests/fuzz/build.sh, which writes the generated seeds):

    tests/fuzz/mkcorpus.py IMGDIR...

- every target but fuzz_proc: the seeds the build generated (build/fuzz/seeds-TARGET:
  mkseeds, mkseeds_helper; fuzz_proc's are tests/fixtures/proc, read from there);
- fuzz_image: every metadata file of the image directories IMGDIR (real dumps, e.g. kept
  by `tests/run.py --keep --only pid_same ns_mnt fd_epoll tree_sessions`), each as a
  whole file (selector byte = kind) and as a payload (selector | 0x80), at most 60 KiB;
- fuzz_proc: this process's own /proc files (smaps, stat, status, mountinfo, cgroup,
  auxv, timers, fdinfo of an eventfd, an epoll, a pidfd and a pipe);
- fuzz_pidreq: well-formed exchanges (tests/fuzz/fuzz_pidreq.c says the input layout).
Standard library only. Files are named after what they hold; existing ones are replaced."""
import os
import select
import shutil
import struct
import sys

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "tests", "fuzz", "corpus")
GEN = os.path.join(REPO, "build", "fuzz")
TARGETS = ["fuzz_proc", "fuzz_image", "fuzz_blob", "fuzz_helper", "fuzz_pidreq"]
KINDS = ["inventory", "core", "mm", "files", "ns"]  # fuzz_image.c's kinds[] order
MAX = 60 << 10


def put(target, name, data):
    if len(data) > MAX:
        return
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def images(tag, d):
    for name in sorted(os.listdir(d)):
        kind = name.split("-")[0].split(".")[0]
        if kind not in KINDS:
            continue
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        idx = KINDS.index(kind)
        base = "real-%s-%s" % (tag, name.replace(".img", ""))
        put("fuzz_image", base + "-file", bytes([idx]) + data)
        put("fuzz_image", base + "-payload", bytes([idx | 0x80]) + data[40:])


def proc_self():
    efd = os.eventfd(3)
    ep = select.epoll()
    ep.register(efd, select.EPOLLIN)
    pidfd = os.pidfd_open(os.getpid())
    r, w = os.pipe()
    for name in ("smaps", "stat", "status", "mountinfo", "cgroup", "auxv", "timers",
                 "uid_map"):
        with open("/proc/self/" + name, "rb") as f:
            put("fuzz_proc", "self-" + name, f.read())
    for what, fd in (("eventfd", efd), ("epoll", ep.fileno()), ("pidfd", pidfd),
                     ("pipe", r)):
        with open("/proc/self/fdinfo/%d" % fd, "rb") as f:
            put("fuzz_proc", "self-fdinfo-" + what, f.read())
    for fd in (efd, pidfd, r, w):
        os.close(fd)
    ep.close()


def pidreq():
    def msg(*v):
        return struct.pack("<%di" % len(v), *v)

    def seed(name, mode, first, follow=b""):
        put("fuzz_pidreq", name, bytes([mode, len(first)]) + first + follow)

    seed("recv-answer", 0x00, msg(0, 0, 0))
    seed("recv-answer-fd", 0x01, msg(0, 5, 0))
    seed("recv-answer-2fds", 0x02, msg(0, 5, 0))
    seed("recv-last-pid", 0x00, msg(1, 42, 2))
    seed("recv-expect-answer", 0x08, msg(1, 42, 2))
    seed("recv-short", 0x00, msg(0, 0))
    seed("serve-last-pid", 0x45, msg(1, 43, 1), msg(0, 0, 0))
    seed("serve-last-pid-fail", 0x05, msg(1, 42, 1), msg(0, -11, 0))
    seed("serve-id-maps", 0x05, msg(2, 43, 0))
    seed("serve-open-files", 0x05, msg(3, 43, 0))
    seed("serve-bad-op", 0x05, msg(9, 43, 0))
    seed("serve-no-priv", 0x04, msg(1, 43, 1))


def main():
    for t in TARGETS:
        os.makedirs(os.path.join(OUT, t), exist_ok=True)
        gen = os.path.join(GEN, "seeds-" + t)
        if os.path.isdir(gen) and t != "fuzz_proc":  # those are tests/fixtures/proc
            for name in sorted(os.listdir(gen)):
                if not name.startswith("capture"):
                    shutil.copy(os.path.join(gen, name), os.path.join(OUT, t, name))
    for i, d in enumerate(sys.argv[1:]):
        images(os.path.basename(os.path.dirname(os.path.abspath(d))).split("-")[1]
               if "stasis-" in d else str(i), d)
    proc_self()
    pidreq()


if __name__ == "__main__":
    main()
