# stasis-check: timeout=30 needs=root
# stasis-check: why=(unshare -U maps root, --pin-ns mounts)
"""The demo counter (demo/counter.c, printing `pid N: count M` every 200 ms) as the init of
`unshare -Urpfui --mount-proc` (hostname ctr-test), dumped by the host pid of unshare's
child (the init of the new pid namespace) and restored with --pin-ns (see
unshare_counter). First a restore with --pin-ns into a directory on a shared tmpfs must
fail saying the mount is shared and leave no pin. The other unshare_urpfui checks use
unshare_counter too."""
import os
import shutil
import subprocess
import tempfile
import time

from lib.nsfs import cpu_with_older_mntns_ids, mounts_under, umount_under
from lib.proc import (Failure, Skip, as_user, describe_status_rc, in_rootless_container,
                      kill_pid, my_children, pid_alive, proc_children, proc_stat, reap_all,
                      run_cmd, tail, user_file, wait_pid)
from lib.users import NONROOT_USER


# `unshare -Urpfui --mount-proc` with a counter as the init of its pid namespace
UNSHARE_CTR = ["unshare", "-Urpfui", "--mount-proc", "sh", "-c",
               'hostname ctr-test && exec "$0"']


def counter_lines(path):
    """(pid, count) of every complete line the demo counter wrote to @path."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    out = []
    for ln in text.split("\n")[:-1]:
        parts = ln.split()
        if len(parts) == 4 and parts[0] == "pid" and parts[2] == "count":
            out.append((int(parts[1].rstrip(":")), int(parts[3])))
    return out


def unshare_counter(c, user=None, whole=False):
    """The counter (demo/counter.c) as the init of `unshare -Urpfui --mount-proc` with
    hostname ctr-test, dumped by the host pid of unshare's child (the init of the pid
    namespace), or with @whole by unshare's pid (unshare, in the new user, mount, UTS
    and IPC namespaces but not in the pid namespace, with the counter as its child),
    and restored (as root with --pin-ns). The count goes on from where it was, the
    counter is pid 1 of its pid namespace with its own /proc (mounted by unshare's
    child in a mount namespace unshare created), its hostname and uid/gid maps are the
    same; the pins hold the user, pid, mnt, uts and ipc namespaces. With @user =
    (uid, gid, name): the same run entirely as that user, with a copy of stasis holding
    cap_checkpoint_restore (file capability) and nothing else."""
    counter = os.path.join(c.build, "demo", "counter")
    stasis = c.stasis
    if not os.access(counter, os.X_OK):
        raise Failure("%s not built" % counter)
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        raise Skip("unshare or nsenter not found (package util-linux)")
    tmp = tempfile.mkdtemp(prefix="stasis-unshare-", dir="/tmp")
    priv = ids = None
    if user is not None:
        ids = (user[0], user[1])
        priv, stasis, counter = user_copies(user, stasis, counter, tmp)
    out = os.path.join(tmp, "counter.out")
    img = os.path.join(tmp, "img")
    pidfile = os.path.join(tmp, "pidfile")
    pins = os.path.join(tmp, "pins")
    os.mkdir(img)
    if user is not None:
        os.chown(img, user[0], user[1])
    else:
        os.mkdir(pins, 0o700)
    fd = user_file(out, ids)
    efd = user_file(os.path.join(tmp, "unshare.err"), ids)
    try:
        p = subprocess.Popen(UNSHARE_CTR + [counter], cwd=tmp,
                             stdin=subprocess.DEVNULL, stdout=fd, stderr=efd,
                             start_new_session=True, preexec_fn=as_user(ids))
    finally:
        os.close(fd)
        os.close(efd)
    child = None
    n = 0

    def stasis_run(argv, what):
        nonlocal n
        n += 1
        files = [os.path.join(tmp, "%s-%d.%s" % (what, n, e)) for e in ("out", "err")]
        rc, _, err = run_cmd([stasis] + argv, c.timeout, cwd=tmp, user=ids,
                             files=files)
        if rc != 0:
            raise Failure("%s: %s: %s" % (what, describe_status_rc(rc),
                                          (err.strip().splitlines() or [""])[-1]))

    try:
        deadline = time.monotonic() + c.timeout
        while True:
            kids = proc_children(p.pid)
            child = kids[0] if kids else None
            try:
                comm = child and open("/proc/%d/comm" % child).read().strip()
            except OSError:
                comm = None
            if comm == "counter" and len(counter_lines(out)) >= 3:
                break
            if p.poll() is not None:
                raise Failure("unshare exited (%s): %s" % (
                    describe_status_rc(p.returncode),
                    " ".join(tail(os.path.join(tmp, "unshare.err"), 2) or [])))
            if time.monotonic() > deadline:
                raise Failure("the counter did not start under unshare")
            time.sleep(0.05)
        maps = [open("/proc/%d/%s" % (child, m)).read() for m in ("uid_map", "gid_map")]
        if user is None:
            # a namespace pinned on the host meanwhile (an nsfs mount in stasis's
            # mountinfo at dump, in the copy the restore gets): no obstacle
            hostpin = os.path.join(tmp, "hostpin")
            open(hostpin, "w").close()
            rc, _, err = run_cmd(["mount", "--bind", "/proc/self/ns/uts", hostpin], 10)
            if rc != 0:
                raise Failure("bind of an nsfs file: %s" % err.strip()[:100])
        target = p.pid if whole else child
        dump_counter(stasis_run, p, child, target, img, tmp)
        before = counter_lines(out)
        last = before[-1][1]
        if user is None and not whole:
            pin_shared_refused(c, tmp, img, child)
        if user is not None:
            refusal = pin_nonroot_refused(c, stasis, tmp, img, ids, child)
        low = restore_counter(c, stasis_run, stasis, tmp, img, pidfile,
                              None if user else pins)
        check_pids(pidfile, target, child, whole)
        after = check_restored(child, out, before, maps)
        said = "count %d -> %d as pid 1, hostname ctr-test, own /proc, maps %s" % (
            last, after[0][1], " ".join(maps[0].split()))
        if user is None:
            c.pin_check(pins, {"%s-%d" % (k, target if k != "pid" else child):
                               (k, child) for k in ("user", "pid", "mnt", "uts", "ipc")})
        kill_pid(child)
        if wait_pid(child, time.monotonic() + 10) is None:
            raise Failure("the restored counter did not die on SIGKILL")
        if whole and wait_pid(target, time.monotonic() + 10) is None:
            raise Failure("the restored unshare did not exit after its child")
        if user is None:
            rc, hostname, err = run_cmd(["nsenter", "--uts=%s/uts-%d" % (pins, target),
                                         "hostname"], 10)
            if rc != 0 or hostname.strip() != "ctr-test":
                raise Failure("the pinned UTS namespace after the counter exited: %s %r"
                              % (describe_status_rc(rc), (hostname + err).strip()[:100]))
            said += ", 5 namespaces pinned"
        if low is not None:
            said += " (restored on CPU %d: mount namespace copied again to be pinnable)" % low
        if user is not None:
            said += "; --pin-ns refused: %s" % refusal
        return ("unshare and its child: " if whole else "") + said
    finally:
        for x in (child, p.pid):
            if x and pid_alive(x):
                kill_pid(x)
                wait_pid(x, time.monotonic() + 5)
        if p.poll() is None:
            kill_pid(p.pid)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        reap_all()
        umount_under(tmp)
        if mounts_under(tmp):
            print("    warning: still mounted: %s" % mounts_under(tmp), flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if priv:
            shutil.rmtree(priv, ignore_errors=True)


def user_copies(user, stasis, counter, tmp):
    """Copies of stasis (holding cap_checkpoint_restore, file capability) and of the
    counter in a private directory the user = (uid, gid, name) may enter; @tmp made the
    user's. Returns (directory, stasis, counter); on a setcap failure @tmp is removed
    and the check skipped."""
    setcap = shutil.which("setcap") or "/usr/sbin/setcap"
    priv = tempfile.mkdtemp(prefix="stasis-unshare-bin-", dir="/tmp")
    os.chown(priv, 0, user[1])
    os.chmod(priv, 0o750)
    for src in (stasis, counter):
        shutil.copy(src, priv)
        os.chmod(os.path.join(priv, os.path.basename(src)), 0o755)
    stasis = os.path.join(priv, "stasis")
    counter = os.path.join(priv, "counter")
    rc, _, err = run_cmd([setcap, "cap_checkpoint_restore+ep", stasis], 30)
    if rc != 0:
        shutil.rmtree(priv, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise Skip("setcap cap_checkpoint_restore+ep failed: %s" % err.strip()[:100])
    os.chown(tmp, user[0], user[1])
    return priv, stasis, counter


def dump_counter(stasis_run, p, child, target, img, tmp):
    """Dumps @target (unshare @p or its child, the counter @child): unshare exits and
    the counter is gone (reaped) after it."""
    stasis_run(["dump", "-t", str(target), "-D", img, "--no-sync", "-v", "-o",
                os.path.join(tmp, "dump.log")], "dump")
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise Failure("unshare still runs after its child was dumped") from None
    deadline = time.monotonic() + 10
    while proc_stat(child) is not None and time.monotonic() < deadline:
        reap_all()
        time.sleep(0.01)
    if proc_stat(child) is not None:
        raise Failure("the dumped counter %d is still there" % child)


def check_pids(pidfile, target, child, whole):
    """The restore wrote @target's pid; it and the counter @child run (with @whole the
    counter is the restored unshare's only child)."""
    try:
        rpid = int(open(pidfile).read())
    except (OSError, ValueError) as e:
        raise Failure("bad pidfile: %s" % e) from None
    if rpid != target or not pid_alive(target) or not pid_alive(child):
        raise Failure("restored pid %d, dumped %d (alive: %s, counter %s)" % (
            rpid, target, pid_alive(target), pid_alive(child)))
    if whole and proc_children(target) != [child]:
        raise Failure("the restored unshare %d has children %s, not the counter %d" %
                      (target, proc_children(target), child))


def restore_counter(c, stasis_run, stasis, tmp, img, pidfile, pins):
    """Restores the dumped counter (with --pin-ns @pins unless None). In the rootless
    flavor, if new mount namespaces get ids below ours on some CPU, the restore runs
    there (taskset) and must copy the mount namespace again to pin it: returns that CPU
    (None otherwise)."""
    argv = ["restore", "-D", img, "-d", "--pidfile", pidfile, "-v", "-o",
            os.path.join(tmp, "restore.log")]
    low = None
    if pins and in_rootless_container() and shutil.which("taskset"):
        # the restore on a CPU whose new namespaces get ids below ours: the
        # restored mount namespace must be copied again to be pinnable
        low = cpu_with_older_mntns_ids()
    if low is not None:
        rc, _, err = run_cmd(["taskset", "-c", str(low), stasis] + argv +
                             ["--pin-ns", pins], c.timeout, cwd=tmp)
        if rc != 0:
            raise Failure("restore on CPU %d: %s: %s" % (
                low, describe_status_rc(rc), (err.strip().splitlines() or [""])[-1]))
        with open(os.path.join(tmp, "restore.log"), errors="replace") as f:
            if "copied again" not in f.read():
                raise Failure("restored on CPU %d (new mount namespaces get ids below "
                              "stasis's there) without copying the mount namespace "
                              "again" % low)
    else:
        stasis_run(argv + (["--pin-ns", pins] if pins else []), "restore")
    return low


def check_restored(child, out, before, maps):
    """The restored counter @child goes on counting from the last of the lines @before
    as pid 1 of its pid namespace, with hostname ctr-test, a /proc of its own and the
    uid/gid @maps it had. Returns its lines since the restore."""
    last = before[-1][1]
    deadline = time.monotonic() + 10
    while len(counter_lines(out)) < len(before) + 3:
        if time.monotonic() > deadline or not pid_alive(child):
            raise Failure("the restored counter does not count (%d lines after the "
                          "restore)" % (len(counter_lines(out)) - len(before)))
        time.sleep(0.05)
    after = counter_lines(out)[len(before):]
    want = [(1, last + 1 + k) for k in range(len(after))]
    if after != want:
        raise Failure("the count did not go on from %d as pid 1: %s" % (
            last, after[:4]))
    with open("/proc/%d/status" % child) as f:
        nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")]
    if nspid != [[str(child), "1"]]:
        raise Failure("NSpid of the restored counter: %s" % nspid)
    rc, hostname, err = run_cmd(["nsenter", "-t", str(child), "-u", "hostname"], 10)
    if rc != 0 or hostname.strip() != "ctr-test":
        raise Failure("hostname inside: %s %r" % (describe_status_rc(rc),
                                                  (hostname + err).strip()[:100]))
    inner = os.path.join("/proc/%d/root/proc" % child)
    listed = sorted(x for x in os.listdir(inner) if x.isdigit())
    with open(os.path.join(inner, "1", "status")) as f:
        st = dict(ln.split(":", 1) for ln in f if ":" in ln)
    if listed != ["1"] or st.get("Name", "").strip() != "counter" or \
            st.get("NSpid", "").split() != ["1"]:
        raise Failure("/proc inside is not its own: pids %s, pid 1 is %r (NSpid %r)" %
                      (listed[:5], st.get("Name", "").strip(),
                       st.get("NSpid", "").strip()))
    now = [open("/proc/%d/%s" % (child, m)).read() for m in ("uid_map", "gid_map")]
    if now != maps:
        raise Failure("uid/gid maps %r, were %r" % (now, maps))
    return after


def pin_nonroot_refused(c, stasis, tmp, img, ids, pid):
    """--pin-ns as a user without CAP_SYS_ADMIN: the pins would be mounts in its mount
    namespace (owned by the initial user namespace), which the kernel allows only with
    CAP_SYS_ADMIN there. The restore must refuse at once: one line naming the reason,
    no process started, no file created."""
    pins = os.path.join(tmp, "pins-user")
    os.mkdir(pins, 0o700)
    os.chown(pins, ids[0], ids[1])
    before = set(my_children())
    files = [os.path.join(tmp, "pin-refused.%s" % e) for e in ("out", "err")]
    rc, _, err = run_cmd([stasis, "restore", "-D", img, "-d", "--pin-ns", pins],
                         c.timeout, cwd=tmp, user=ids, files=files)
    lines = err.splitlines()
    if rc in (0, None) or len(lines) != 1 or "CAP_SYS_ADMIN" not in lines[0]:
        raise Failure("restore --pin-ns as %s: %s, stderr %r" % (
            NONROOT_USER, describe_status_rc(rc), err[:200]))
    left = [x for x in my_children() if x not in before]
    if pid_alive(pid) or left or os.listdir(pins):
        raise Failure("the refused --pin-ns left something: pid %d alive %s, new "
                      "processes %s, files %s" % (pid, pid_alive(pid), left,
                                                  os.listdir(pins)))
    return lines[0].split(": ", 2)[-1]


def pin_shared_refused(c, tmp, img, pid):
    """--pin-ns on a shared mount (a tmpfs with a peer): the user namespace is pinned
    first, then the kernel refuses the mount namespace's bind (it cannot propagate);
    the restore must fail with one line saying so, kill what it restored, and undo
    the pin it made (no mount, no file left)."""
    shared, peer = os.path.join(tmp, "shared"), os.path.join(tmp, "peer")
    os.mkdir(shared)
    os.mkdir(peer)
    try:
        for argv in (["mount", "-t", "tmpfs", "-o", "size=64k", "stasis-pins", shared],
                     ["mount", "--make-shared", shared], ["mount", "--bind", shared, peer]):
            rc, _, err = run_cmd(argv, 10)
            if rc != 0:
                raise Failure("%s: %s" % (" ".join(argv), err.strip()[:100]))
        d = os.path.join(shared, "d")
        os.mkdir(d)
        line = c.expect_failure([c.stasis, "restore", "-D", img, "-d",
                                 "--pin-ns", d], "restore --pin-ns on a shared mount",
                                pid=pid)
        if "shared mount" not in line or "mnt-%d" % pid not in line:
            raise Failure("the refusal does not say the mount is shared: %s" % line)
        left = [m for m in mounts_under(shared) + mounts_under(peer)
                if m not in (shared, peer)]
        if left or os.listdir(d):
            raise Failure("the failed restore left pins behind: mounts %s, files %s" % (
                left, os.listdir(d)))
    finally:
        umount_under(peer)
        umount_under(shared)


def check(c):
    return unshare_counter(c)
