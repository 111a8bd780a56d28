"""What the fuzz checks (fuzz_proc, fuzz_image, fuzz_blob, fuzz_helper, fuzz_pidreq, fuzz_pserver,
fuzz_rpc)
share: each runs its libFuzzer target of tests/fuzz/ (clang, ASan+UBSan) for FUZZ_SECS
seconds from the committed corpus (tests/fuzz/corpus/TARGET) and the generated seeds;
a crash, a leak, an input slower than 10 s or over 1 GiB of memory is a FAIL naming the
reproducer. The targets are built once per run (tests/fuzz/build.sh). Fuzzing does not
depend on the build under test nor on the flavor: it runs once per suite, with the ASan
build (the last build when there is none), in the default flavor; elsewhere, and without
clang and its libFuzzer runtime, the checks are skipped with the reason. A longer run:
`tests/fuzz/build.sh --run 600` (tests/README.md)."""
import os
import re
import shutil
import tempfile

from lib.meta import REPO
from lib.proc import Failure, Skip, in_rootless_container, run_cmd

FUZZ_SECS = 20
BUILD_SH = os.path.join(REPO, "tests", "fuzz", "build.sh")
_state = {}  # "built": None (ok) or the reason it failed


def _chosen_build(c):
    builds = [b.rstrip("/") for b in (c.r.args.build or ["build"])]
    asan = [b for b in builds if os.path.basename(b) == "build-asan"]
    return (asan or builds)[-1]


def _can_link_fuzzer():
    """None, or why clang cannot build a libFuzzer target here."""
    if not shutil.which(os.environ.get("CLANG", "clang")):
        return "clang not found (the fuzz targets need clang with its libFuzzer runtime)"
    if not shutil.which("protoc-c"):
        return "protoc-c not found (package protobuf-c-compiler)"
    d = tempfile.mkdtemp(prefix="stasis-fuzzprobe-")
    try:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write("#include <stddef.h>\n#include <stdint.h>\n"
                    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
                    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                    "{ (void)d; (void)n; return 0; }\n")
        rc, _, err = run_cmd([os.environ.get("CLANG", "clang"), "-fsanitize=fuzzer,address",
                              "-o", os.path.join(d, "t"), src], 120)
        if rc != 0:
            return ("clang cannot link -fsanitize=fuzzer (the libFuzzer runtime, package "
                    "libclang-rt-NN-dev): %s" % (err.strip().splitlines() or ["?"])[-1])
        return None
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _build():
    if "built" not in _state:
        why = _can_link_fuzzer()
        if why:
            _state["built"] = ("skip", why)
        else:
            rc, out, err = run_cmd([BUILD_SH], 600, cwd=REPO)
            _state["built"] = None if rc == 0 else (
                "fail", "tests/fuzz/build.sh failed (status %s): %s" % (
                    rc, " | ".join((out + err).strip().splitlines()[-3:])))
    st = _state["built"]
    if st and st[0] == "skip":
        raise Skip(st[1])
    if st:
        raise Failure(st[1])


def run_target(c, target):
    """Runs @target for FUZZ_SECS seconds; returns what it did."""
    if in_rootless_container():
        raise Skip("fuzzing runs once per suite, in the default flavor")
    chosen = _chosen_build(c)
    if os.path.basename(c.build.rstrip("/")) != os.path.basename(chosen):
        raise Skip("fuzzing runs once per suite, with the %s build" % chosen)
    _build()
    rc, out, err = run_cmd([BUILD_SH, "--no-build", "--run", str(FUZZ_SECS), target],
                           FUZZ_SECS + 120, cwd=REPO)
    text = out + err
    if rc is None:
        raise Failure("%s did not finish in %d s" % (target, FUZZ_SECS + 120))
    if rc != 0:
        summary = [ln for ln in text.splitlines() if "SUMMARY" in ln or "ERROR:" in ln]
        crash = re.findall(r"Test unit written to (\S+)", text)
        raise Failure("%s: %s; reproducer %s (log build/fuzz/%s.log)" % (
            target, (summary or ["failed"])[0].strip(), crash[0] if crash else "none",
            target))
    runs = re.search(r"number_of_executed_units:\s+(\d+)", text)
    new = re.search(r"new_units_added:\s+(\d+)", text)
    return "%s inputs in %d s, %s new, no crash or leak" % (
        runs.group(1) if runs else "?", FUZZ_SECS, new.group(1) if new else "?")
