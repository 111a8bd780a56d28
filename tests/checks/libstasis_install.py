# stasis-check: timeout=120
"""`make install PREFIX=...` into a scratch prefix (the binaries, the criu link, the man
page, libstasis.so.1 with its header and pkg-config file), then a program built against
the installed library through pkg-config (tests/libstasis/demo.c) checkpoints a counting
child with stasis_dump, restores it with stasis_restore (the same pid, its child again)
and sees it count on. The library exports only the stasis_* API."""
import os
import subprocess

from lib.meta import REPO
from lib.proc import Failure, Skip


def run(argv, c, env=None, cwd=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=c.timeout, env=env,
                       cwd=cwd)
    if r.returncode != 0:
        raise Failure("%s: %s" % (" ".join(argv), (r.stderr or r.stdout).strip()[-600:]))
    return r.stdout


def check(c):
    build = os.path.abspath(c.build)
    so = os.path.join(build, "libstasis.so.1")
    if not os.path.exists(so):
        raise Skip("this build has no libstasis.so.1")
    if "__asan_init" in run(["nm", "-D", "--undefined-only", so], c):
        raise Skip("the sanitizer build's library needs the ASan runtime loaded first")
    prefix = os.path.join(c.tmp, "prefix")
    run(["make", "-s", "BUILD=" + build, "PREFIX=" + prefix, "install"], c, cwd=REPO)
    for f in ("bin/stasis", "bin/stasis-helper", "bin/criu", "include/stasis.h",
              "share/bash-completion/completions/stasis",
              "lib/libstasis.so.1", "lib/libstasis.so", "lib/pkgconfig/stasis.pc",
              "share/man/man1/stasis.1"):
        if not os.path.exists(os.path.join(prefix, f)):
            raise Failure("make install did not install %s" % f)
    if os.readlink(os.path.join(prefix, "bin/criu")) != "stasis":
        raise Failure("bin/criu is not a link to stasis")
    # bash completion: a command's options come from its --help
    comp = os.path.join(prefix, "share/bash-completion/completions/stasis")
    words = "%s dump --lea" % os.path.join(prefix, "bin/stasis")
    out = run(["bash", "-c", 'source "$1"; COMP_WORDS=($2); COMP_CWORD=2; _stasis; '
               'echo "${COMPREPLY[@]}"', "-", comp, words], c)
    if out.split() != ["--leave-running"]:
        raise Failure("bash completion of 'stasis dump --lea' gave %r" % out)
    syms = run(["nm", "-D", "--defined-only", os.path.join(prefix, "lib/libstasis.so.1")], c)
    exported = sorted(ln.split()[-1] for ln in syms.splitlines() if " T " in ln)
    if not exported or any(not s.startswith("stasis_") for s in exported):
        raise Failure("libstasis exports %s" % exported)
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib/pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "stasis"], c, env=env).split()
    demo = os.path.join(c.tmp, "demo")
    run(["cc", "-std=gnu11", "-Wall", "-Werror", "-o", demo,
         os.path.join(REPO, "tests/libstasis/demo.c")] + flags, c)
    env["LD_LIBRARY_PATH"] = os.path.join(prefix, "lib")
    scratch = os.path.join(c.tmp, "scratch")
    os.mkdir(scratch)
    out = run([demo, scratch], c, env=env).split("\n")
    if not out[0].startswith("stasis ") or not any(ln.startswith("ok ") for ln in out):
        raise Failure("the demo says %r" % out)
    return "installed; %s; the demo program (pkg-config) counted %s" % (
        ", ".join(exported), [ln for ln in out if ln.startswith("ok ")][0][3:])
