"""What tests exist and what their headers say. The runner reads what a test needs from
the test's own first lines, never from a list of its own.

A checkpoint test (tests/ckpt/NAME.c) or a unit test (tests/unit/NAME.c) starts with
`// stasis-test: KEY=VALUE ...`, a check (tests/checks/NAME.py) with
`# stasis-check: KEY=VALUE ...`. Header lines are looked for among the first ten lines and
their keys merged. Values are single words, except for the text keys, whose value is the
rest of the line (one text key per line, last). A line of the comment mark and at least
two spaces (`//   more text`, `#   more text`) right after a header line continues it."""
import glob
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CKPT_SRC = os.path.join(REPO, "tests", "ckpt")
UNIT_SRC = os.path.join(REPO, "tests", "unit")
CHECKS_SRC = os.path.join(REPO, "tests", "checks")
CKPT_MARK = "// stasis-test:"
CHECK_MARK = "# stasis-check:"
HEADER_LINES = 10

# keys whose value is free text: a skip reason, why a check needs root, and the known
# limitations of a test in one flavor (reported as SKIP with the reason)
TEXT_KEYS = ("skip", "why", "nonroot-known", "ns-known", "uns-known", "rootless-known")


def header_lines(src, mark):
    """The header lines of @src (continuations joined), without the mark."""
    comment = mark.split()[0]
    out = []
    with open(src, errors="replace") as f:
        for _ in range(HEADER_LINES):
            line = f.readline().rstrip("\n")
            if line.startswith(mark):
                out.append(line[len(mark):].strip())
            elif out and line.startswith(comment + "  ") and line.strip() != comment:
                out[-1] += " " + line[len(comment):].strip()
    return out


def read_meta(src, mark=CKPT_MARK):
    meta = {}
    for rest in header_lines(src, mark):
        while rest:
            key, _, rest = rest.partition("=")
            key = key.strip()
            if key in TEXT_KEYS:  # the value is the rest of the line
                meta[key] = rest.strip()
                break
            value, _, rest = rest.partition(" ")
            meta[key] = value
            rest = rest.strip()
    return meta


def ckpt_tests():
    """Names of the checkpoint tests: tests/ckpt/NAME.c but lib.c, by name."""
    names = []
    for src in sorted(glob.glob(os.path.join(CKPT_SRC, "*.c"))):
        name = os.path.basename(src)[:-2]
        if name != "lib":
            names.append(name)
    return names


def ckpt_meta(name):
    return read_meta(os.path.join(CKPT_SRC, name + ".c"))


def unit_tests(build):
    """Names of the built unit tests: every executable BUILD/tests/unit/test_*."""
    return sorted(os.path.basename(p)
                  for p in glob.glob(os.path.join(build, "tests", "unit", "test_*"))
                  if os.path.isfile(p) and os.access(p, os.X_OK) and "." not in
                  os.path.basename(p))


def unit_meta(name):
    src = os.path.join(UNIT_SRC, name + ".c")
    return read_meta(src) if os.path.exists(src) else {}


def checks():
    """Names of the checks: tests/checks/NAME.py but the names starting with _, by name."""
    return sorted(os.path.basename(p)[:-3]
                  for p in glob.glob(os.path.join(CHECKS_SRC, "*.py"))
                  if not os.path.basename(p).startswith("_"))


def check_meta(name):
    return read_meta(os.path.join(CHECKS_SRC, name + ".py"), CHECK_MARK)
