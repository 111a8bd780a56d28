"""podman with a check's own configuration and state (tests/checks/podman_checkpoint.py,
go_podman_service.py): nothing of the host's podman state is touched or made — storage
(vfs, not an overlay mount of the host's), run root, tmp dir, runc's state, events, file
locks, the network configuration directory are all under the check's directory."""
import json
import os
import subprocess
import time

from lib.proc import Failure


class Podman:
    """podman with the check's own configuration and state, every call bounded."""

    def __init__(self, d, stasis):
        self.d = d
        self.cgparent = "stasis-podman-%d" % os.getpid()
        for sub in ("bin", "data", "net", "runc", "tmp", "out"):
            os.makedirs(os.path.join(d, sub))
        os.symlink(os.path.abspath(stasis), os.path.join(d, "bin", "criu"))
        with open(os.path.join(d, "storage.conf"), "w") as f:
            f.write('[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/runroot"\n'
                    % (d, d))
        # root here lacks CAP_SYS_RESOURCE: podman's default nofile limit (1048576) is
        # over the hard limit, so the limits are set below the host's
        with open(os.path.join(d, "containers.conf"), "w") as f:
            f.write('[containers]\nnetns = "none"\nlog_driver = "k8s-file"\n'
                    'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                    '[network]\nnetwork_config_dir = "%s/net"\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    'events_logfile_path = "%s/events.log"\nlock_type = "file"\n'
                    'runtime = "runc"\ntmp_dir = "%s/tmp"\nimage_copy_tmp_dir = "%s/tmp"\n'
                    'static_dir = "%s/root/libpod"\nvolume_path = "%s/root/volumes"\n'
                    % ((d,) * 6))
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(d, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(d, "storage.conf"),
                        PATH=os.path.join(d, "bin") + ":" + os.environ.get("PATH", ""))
        self.argv = ["podman", "--root", os.path.join(d, "root"), "--runroot",
                     os.path.join(d, "runroot"), "--tmpdir", os.path.join(d, "tmp"),
                     "--runtime-flag", "root=" + os.path.join(d, "runc")]
        self.n = 0

    def run(self, args, timeout=60, prefix=()):
        """(rc, stdout, stderr, seconds). The output goes to files: a container's conmon
        outlives the command and must not hold a pipe of ours."""
        self.n += 1
        base = os.path.join(self.d, "out", "%02d" % self.n)
        t0 = time.monotonic()
        with open(base + ".out", "w") as out, open(base + ".err", "w") as err:
            p = subprocess.Popen(list(prefix) + self.argv + args, env=self.env,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = None
        secs = time.monotonic() - t0
        with open(base + ".out") as out, open(base + ".err") as err:
            return rc, out.read(), err.read(), secs

    def must(self, args, what, timeout=60):
        rc, out, err, secs = self.run(args, timeout)
        if rc != 0:
            raise Failure("%s: %s" % (what, (err.strip() or "exit %s" % rc)[-300:]))
        return out, secs

    def inspect(self, name):
        rc, out, _, _ = self.run(["container", "inspect", name])
        if rc != 0:
            return None
        return json.loads(out)[0]

    def cgroup_dirs(self):
        """Our cgroup parent in every hierarchy, its subdirectories first."""
        found = []
        for h in sorted(os.listdir("/sys/fs/cgroup")) + [""]:
            top = os.path.join("/sys/fs/cgroup", h, self.cgparent)
            for root, dirs, _ in os.walk(top, topdown=False):
                found.append(root)
        return found
