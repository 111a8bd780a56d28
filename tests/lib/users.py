"""The unprivileged user the tests run as (nonroot and rootless flavors, the escalation
and helper checks): created if missing, with a subordinate id range."""
import pwd
import shutil

from lib.proc import describe_status_rc, run_cmd

NONROOT_USER = "stasis-test"


def ensure_user():
    """NONROOT_USER's passwd entry (created if missing), or the reason it cannot be."""
    try:
        return pwd.getpwnam(NONROOT_USER), None
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    rc, _, err = run_cmd([useradd, "-M", "-s", "/usr/sbin/nologin", NONROOT_USER], 30)
    try:
        return pwd.getpwnam(NONROOT_USER), None
    except KeyError:
        return None, "cannot create user %s: useradd %s: %s" % (
            NONROOT_USER, describe_status_rc(rc), err.strip()[:200])


def ensure_subids(user):
    """An /etc/subuid and /etc/subgid range for @user (65536 ids after every range
    already given), as useradd makes them."""
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path) as f:
                lines = [ln.strip().split(":") for ln in f if ln.strip()]
        except FileNotFoundError:
            lines = []
        if any(ln[0] == user for ln in lines):
            continue
        top = 100000
        for ln in lines:
            if len(ln) == 3 and ln[1].isdigit() and ln[2].isdigit():
                top = max(top, int(ln[1]) + int(ln[2]))
        with open(path, "a") as f:
            f.write("%s:%d:65536\n" % (user, top))
