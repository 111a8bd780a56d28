#!/usr/bin/env python3
"""The size rules of docs/ARCHITECTURE.md ("Layout"): no C file under src/ over 1,500
lines, no function over 120 lines unless a comment right above it says why it is long
("long: REASON"). Prints each breach; exits 1 if any. Standard library only.

    python3 scripts/sizes.py [--list N]   (--list N: also print the N longest functions)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FILE = 1500
MAX_FUNC = 120
# a top-level function definition: starts at column 0, is not a declaration
FUNC_START = re.compile(r"^[A-Za-z_][\w \t\*\(\),]*?\b(\w+)\s*\([^;]*$")


def functions(lines):
    """(name, first line, length, reason) of every top-level function body."""
    out = []
    i = 0
    n = len(lines)
    while i < n:
        m = FUNC_START.match(lines[i])
        if not m or lines[i].startswith(("static const", "struct", "typedef", "#")) and "(" not in lines[i]:
            i += 1
            continue
        # the body's opening brace at column 0 within a few lines (multi-line signatures)
        j = i
        while j < n and j < i + 8 and not lines[j].startswith("{") and not lines[j].rstrip().endswith(";"):
            j += 1
        if j >= n or not lines[j].startswith("{"):
            i += 1
            continue
        k = j + 1
        while k < n and not lines[k].startswith("}"):
            k += 1
        reason = None
        p = i - 1
        while p >= 0 and (lines[p].startswith(("/*", " *", "//"))):
            r = re.search(r"long: (.+)", lines[p])
            if r:
                reason = r.group(1)
            p -= 1
        names = [x for x in re.findall(r"(\w+)\s*\(", lines[i]) if not x.startswith("__")]
        out.append((names[0] if names else m.group(1), i + 1, k - i + 1, reason))
        i = k + 1
    return out


def main():
    listn = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "--list" else 0
    bad = 0
    allf = []
    for d, _, files in os.walk(os.path.join(ROOT, "src")):
        for f in sorted(files):
            if not f.endswith(".c"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, ROOT)
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
            if len(lines) - 1 > MAX_FILE:
                print("%s: %d lines (over %d)" % (rel, len(lines) - 1, MAX_FILE))
                bad += 1
            for name, line, length, reason in functions(lines):
                allf.append((length, rel, line, name, reason))
                if length > MAX_FUNC and not reason:
                    print("%s:%d: %s is %d lines (over %d, no 'long:' reason above it)" % (
                        rel, line, name, length, MAX_FUNC))
                    bad += 1
    for length, rel, line, name, reason in sorted(allf, reverse=True)[:listn]:
        print("%5d %s:%d %s%s" % (length, rel, line, name, " (long: %s)" % reason if reason else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
