# stasis-check: timeout=30
"""The size rules of the source (docs/ARCHITECTURE.md, "Modules"): no C file under src/
over 1,500 lines, no function over 120 lines without a "long: REASON" comment above it.
scripts/sizes.py prints each breach."""
import os
import subprocess
import sys

from lib.proc import Failure

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check(c):
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "sizes.py"), "--list", "1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                       universal_newlines=True)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0:
        raise Failure("; ".join(lines[:-1])[:400])
    return "longest function: %s" % (lines[-1].strip() if lines else "?")
