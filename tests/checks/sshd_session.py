# stasis-check: timeout=90 needs=host-root
# stasis-check: why=(sshd's privilege separation, TCP repair mode and the network lock)
"""An ssh session, not written here: OpenSSH's sshd on 127.0.0.1 (a key of the check's
own), a client outside the tree typing into a remote shell through its pty. The session's
process (sshd's per-connection child: the encrypted TCP connection, the pty master,
the log) and the shell under it, busy in a loop, are dumped with --tcp-established while the
client stays connected, then restored: the loop counts on, the client's keystrokes sent
while the session was away arrive, ^C stops the loop and a command's output comes back
through the same connection; the listener, outside the tree, is untouched."""
import os
import shutil
import subprocess
import time

from lib.proc import (Failure, Skip, free_port, kill_pid, proc_descendants, reap_all,
                      run_cmd, wait_pid)

CONFIG = """ListenAddress 127.0.0.1:%(port)d
HostKey %(d)s/hostkey
AuthorizedKeysFile %(d)s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile %(d)s/sshd.pid
"""


def wait_text(path, text, deadline, after=0):
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            data = f.read()[after:]
        if text in data:
            return
        time.sleep(0.05)
    with open(path, "rb") as f:
        raise Failure("the client never showed %r: ...%r" % (text, f.read()[-300:]))


def count(d):
    try:
        with open(os.path.join(d, "count")) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def session_of(listener, deadline):
    """The listener's per-connection child once it runs the session (a pty child)."""
    while time.monotonic() < deadline:
        for pid in proc_descendants(listener):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if b"@pts/" in f.read():
                        return pid
            except OSError:
                pass
        time.sleep(0.05)
    raise Failure("no session process under sshd")


def check(c):
    sshd, ssh = shutil.which("sshd") or "/usr/sbin/sshd", shutil.which("ssh")
    if not os.path.exists(sshd) or not ssh or not shutil.which("ssh-keygen"):
        raise Skip("no OpenSSH (scripts/deps.sh installs openssh-server)")
    d = os.path.join(c.tmp, "ssh")
    os.mkdir(d)
    for k in ("key", "hostkey"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        os.path.join(d, k)], check=True, timeout=30)
    shutil.copy(os.path.join(d, "key.pub"), os.path.join(d, "authorized_keys"))
    port = free_port()
    with open(os.path.join(d, "sshd_config"), "w") as f:
        f.write(CONFIG % {"port": port, "d": d})
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege separation dir
    listener = subprocess.Popen([sshd, "-D", "-f", os.path.join(d, "sshd_config"), "-E",
                                 os.path.join(d, "sshd.log")], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = os.path.join(d, "out")
    client = restored = None
    try:
        deadline = time.monotonic() + c.timeout - 10
        while not os.path.exists(os.path.join(d, "sshd.pid")) and time.monotonic() < deadline:
            time.sleep(0.05)
        client = subprocess.Popen([ssh, "-tt", "-i", os.path.join(d, "key"), "-p", str(port),
                                   "-o", "StrictHostKeyChecking=no", "-o",
                                   "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                                   "root@127.0.0.1"], stdin=subprocess.PIPE,
                                  stdout=open(out, "wb"), stderr=subprocess.STDOUT)
        session = session_of(listener.pid, deadline)
        client.stdin.write(b"echo ready-$((6*7)); i=0; while true; do i=$((i+1)); "
                           b"echo $i > %s/count; sleep 0.1; done\n" % d.encode())
        client.stdin.flush()
        wait_text(out, b"ready-42", deadline)
        while count(d) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = [session] + proc_descendants(session)
        img = os.path.join(c.tmp, "ssh-img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(session), "-D", img,
                              "--tcp-established"], c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        # the shell, orphaned by the dump, is this check's to reap (a subreaper)
        end = time.monotonic() + 5
        while any(os.path.exists("/proc/%d" % p) for p in tree) and time.monotonic() < end:
            reap_all()
            time.sleep(0.02)
        n0 = count(d)
        client.stdin.write(b"echo typed-while-away\n")  # (the loop's input, dropped by ^C)
        client.stdin.flush()
        time.sleep(0.3)
        if count(d) != n0:
            raise Failure("the loop ran on while the session was dumped")
        size = os.path.getsize(out)
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        restored = session
        wait_text(out, b"typed-while-away", deadline, after=size)  # echoed by the pty
        while count(d) < n0 + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        if count(d) < n0 + 3:
            raise Failure("the loop does not count on after the restore (%d)" % count(d))
        client.stdin.write(b"\x03")
        client.stdin.flush()
        time.sleep(0.3)
        client.stdin.write(b"echo after-$((6*7))-$$\n")
        client.stdin.flush()
        wait_text(out, b"after-42-", deadline, after=size)
        if client.poll() is not None or listener.poll() is not None:
            raise Failure("the client or the listener exited")
        return "the shell counted %d -> %d across the restore; the client's input and " \
               "output went on over the same connection" % (n0, count(d))
    finally:
        if client and client.poll() is None:
            kill_pid(client.pid)
            client.wait(timeout=10)
        if restored:
            for p in reversed(proc_descendants(restored)):
                kill_pid(p)
            kill_pid(restored)
            wait_pid(restored, time.monotonic() + 5)
        for p in reversed(proc_descendants(listener.pid)):
            kill_pid(p)
        kill_pid(listener.pid)
        listener.wait(timeout=10)
