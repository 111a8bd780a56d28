# stasis-check: timeout=60 needs=root
# stasis-check: why=(makes a network namespace with an nftables ruleset)
# stasis-check: rootless-known=the tree's network namespace is made by the check as root
"""The nftables ruleset of a tree's network namespace is carried. A process in a network
namespace of its own loads two tables (an inet filter with a named set, a chain on the
input hook, a counter and a drop rule; an ip6 table with a regular chain jumped to) and
is dumped and restored: `nft list ruleset` in its namespace prints the same text after
the restore as before, and the rules act (a connection to the dropped port times out,
to another port it is refused)."""
import os
import subprocess
import time

from lib.proc import Failure, kill_pid, run_cmd, wait_pid

RULES = """
table inet stasis_check {
	set blocked {
		type ipv4_addr
		elements = { 10.1.2.3, 10.9.9.9 }
	}
	chain input {
		type filter hook input priority filter; policy accept;
		ip saddr @blocked drop
		tcp dport 9999 counter drop
	}
}
table ip6 stasis_check6 {
	chain helper {
		udp dport 5353 accept
	}
	chain output {
		type filter hook output priority filter; policy accept;
		meta l4proto udp jump helper
	}
}
"""


def ruleset(pid):
    r = subprocess.run(["nsenter", "-t", str(pid), "-n", "nft", "list", "ruleset"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise Failure("nft list ruleset in pid %d's namespace: %s" % (pid, r.stderr.strip()))
    return "\n".join(ln for ln in r.stdout.splitlines()
                     if "stasis-lock" not in ln)


def probe(pid, port):
    """What a connection to 127.0.0.1:@port from inside the namespace meets."""
    code = ("import socket\ns = socket.socket(); s.settimeout(0.5)\ntry:\n"
            "    s.connect(('127.0.0.1', %d)); print('open')\n"
            "except ConnectionRefusedError:\n    print('refused')\n"
            "except socket.timeout:\n    print('timeout')\n" % port)
    r = subprocess.run(["nsenter", "-t", str(pid), "-n", "python3", "-c", code],
                       capture_output=True, text=True, timeout=10)
    return r.stdout.strip()


def check(c):
    rules = os.path.join(c.tmp, "rules.nft")
    with open(rules, "w") as f:
        f.write(RULES)
    ready = os.path.join(c.tmp, "nft-ready")
    p = subprocess.Popen(["unshare", "--net", "--", "sh", "-c",
                          "ip link set lo up && nft -f %s && touch %s && exec sleep 60"
                          % (rules, ready)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = p.pid
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(ready) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(ready):
            raise Failure("the process did not start (nft or unshare missing?)")
        before = ruleset(pid)
        if "stasis_check6" not in before or "@blocked" not in before:
            raise Failure("the ruleset was not loaded: %s" % before[:300])
        img = os.path.join(c.tmp, "nft-img")
        r = subprocess.run([c.stasis, "dump", "-t", str(pid), "-D", img],
                           capture_output=True, text=True, timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("dump: %s" % r.stderr.strip())
        p.wait(timeout=10)
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        if rc != 0:
            raise Failure("restore: %s" % err.strip())
        after = ruleset(pid)
        if after != before:
            raise Failure("the ruleset differs after the restore:\n%s\n---\n%s"
                          % (before, after))
        dropped, refused = probe(pid, 9999), probe(pid, 9998)
        if (dropped, refused) != ("timeout", "refused"):
            raise Failure("after the restore port 9999: %s, port 9998: %s" % (dropped,
                                                                              refused))
        return "%d lines of ruleset carried; port 9999 dropped, 9998 refused" % len(
            before.splitlines())
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 5)
