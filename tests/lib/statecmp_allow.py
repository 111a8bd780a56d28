"""The one list of /proc fields that may differ between the snapshot taken just before a
dump and the one taken just after the restore (tests/lib/statecmp.py), each with the
reason. Entries whose reason starts with "BUG:" are state stasis should keep and does not
today: they are allowed so that the suite stays green while they are open, and listed here
so that nobody forgets them.

An entry allows a difference when everything it says matches:
- "field": a glob (or a list of globs) over the field class, e.g. "fdinfo.pos", "status.Sig*";
- "test", "flavor", "mode", "stage": globs (or lists) over the context: the test's name,
  default/nonroot/rootless/ns, normal/leave-running/exit-status, and "restore" (or
  "leave-running": the original compared after dump --leave-running);
- "where": a glob over the task ("pid 12", "pid 12 tid 13", "tree", "mnt ns new#1");
- "item": a glob over the item (the fd, the mapping, the mount, ...);
- "absent": True: one snapshot lacks the key; "added": True: the first one lacks it;
- "zombie": True: the task was a zombie at the first snapshot;
- "both": a regex both values match; "values": a function (before, after) -> bool;
- "reason": why; "BUG: ..." for state stasis should keep and does not yet.
A user of scripts/statecmp.py has no test context: entries with "test", "flavor" or
"mode" do not apply there."""
import re


def _but(text, key):
    """The "k=v k=v" words of text but key's."""
    return [w for w in text.split() if not w.startswith(key + "=")]


_TMPFILE = re.compile(r"#[0-9]+(?= \(deleted\)$)")
_TIMER_SIGS = (1 << 13) | (1 << 25) | (1 << 26)  # SIGALRM, SIGVTALRM, SIGPROF


ALLOW = [
    # --- legitimate changes: not state a restore can or should keep ---
    {"field": "maps.vmflags",
     "values": lambda a, b: a.split() == [w for w in b.split() if w != "um"],
     "reason": "restore --lazy-pages: an area still being streamed in is registered with "
               "userfaultfd (VmFlags um) until the page server has copied it and closed "
               "the userfaultfd (lazy_threads); nothing else may differ"},
    {"field": "maps.*", "test": "lazy_layout",
     "reason": "the test unmaps, maps again and moves pieces of its memory right after the "
               "restore (while the page server streams them in): its layout changes by "
               "itself; it checks every word of its memory itself"},
    {"field": ["status.ShdPnd", "status.SigPnd"],
     "values": lambda a, b: not ((int(a, 16) ^ int(b, 16)) & ~_TIMER_SIGS),
     "reason": "an interval timer keeps running across the checkpoint: its signal may fire "
               "while the task is frozen and be pending (or be delivered) at either "
               "snapshot (leave_running, itimer); itimer_pending checks a pending one itself"},
    {"field": ["status.ShdPnd", "status.SigPnd"], "test": "posix_timer",
     "values": lambda a, b: not ((int(a, 16) ^ int(b, 16)) & 0xffffffff),
     "reason": "posix_timer's periodic timer (a real-time signal every 50 ms) keeps firing "
               "across the checkpoint: its signal may be pending at either snapshot (the "
               "test checks the timer's id, interval and signals itself)"},
    {"field": "stat.flags.PF_FORKNOEXEC",
     "reason": "cannot be kept: the kernel sets it on fork and clears it on exec; a restored "
               "task is forked by stasis and never execs, an original usually exec'd"},
    {"field": "fdinfo.it_value", "values": lambda a, b: a != "(0, 0)",
     "reason": "an armed timerfd's remaining time runs on while the task is checkpointed, "
               "and a one-shot one may expire (fd_timerfd checks the value itself); a "
               "disarmed one must stay disarmed"},
    {"field": "fdinfo.ticks", "values": lambda a, b: int(b) >= int(a),
     "reason": "a timerfd that expires between the snapshot and the dump has more ticks "
               "(a counter the test reads itself)"},
    {"field": "root.ppid", "mode": "exit-status",
     "reason": "restore without -d: the restored root is the child of `stasis restore`, which "
               "waits for it, instead of the runner's"},
    {"field": "root.ppid", "flavor": ["ns", "uns"],
     "reason": "the ns (uns) flavor's root is the child of unshare (uns_launch), which exits "
               "when the dump kills it: the restored root is the runner's (the subreaper's) "
               "child"},
    {"field": ["net.if_inet6", "net.ipv6_route"], "added": True,
     "item": ["* fe80*", "fe80*", "ff00*"],
     "reason": "the kernel adds an interface's IPv6 link-local address (and its fe80::/64 "
               "and ff00::/8 routes) asynchronously once the link has carrier: a test that "
               "set its links up just before ready may be snapshotted before (ns_net_veth)"},
    {"field": "ns.sysvipc.shm", "values": lambda a, b: _but(a, "lpid") == _but(b, "lpid"),
     "reason": "cannot be kept: a SysV shared memory segment's lpid (last shmat/shmdt) is set "
               "by the dump's and the restore's attaches that read and fill it; no call sets "
               "it (ns_ipc)"},
    # a tree that changes by itself: threads and processes come and go during the dump
    {"field": "*", "absent": True, "test": ["thread_storm", "tree_forkstorm"],
     "reason": "the test creates and reaps threads/processes all the time: a task that "
               "exists in one snapshot only"},
    {"field": "threads", "test": ["thread_storm", "tree_forkstorm"], "reason": "as above"},
    {"field": "tree.pids", "test": ["thread_storm", "tree_forkstorm"], "reason": "as above"},
    {"field": "tree.parent", "test": ["thread_storm", "tree_forkstorm"], "reason": "as above"},
    {"field": "stat.num_threads", "test": ["thread_storm", "tree_forkstorm"],
     "reason": "as above"},
    {"field": "status.Threads", "test": ["thread_storm", "tree_forkstorm"],
     "reason": "as above"},
    {"field": "share.*", "test": ["thread_storm", "tree_forkstorm"], "reason": "as above"},
    {"field": "status.SigBlk", "test": "thread_storm", "where": "pid * tid *",
     "reason": "a thread caught by the snapshot inside pthread_create, with every signal "
               "blocked, has its own mask by the time of the dump"},
    # zombies: what a zombie's /proc shows besides its ids is what the task had at exit;
    # the restored zombie is a stasis child that exits with the status
    {"field": "status.Sig*", "zombie": True,
     "reason": "a zombie's signal dispositions and masks cannot be observed or used; the "
               "restored zombie exits by the same signal or status"},
    {"field": "status.ShdPnd", "zombie": True, "reason": "as status.Sig* of a zombie"},
    {"field": "limits", "zombie": True,
     "reason": "a zombie's limits cannot be used; the restored zombie drops RLIMIT_CORE so "
               "that its exit by a signal dumps no core"},
    {"field": ["fd", "maps.path", "exe"],
     "values": lambda a, b: _TMPFILE.sub("#", a) == _TMPFILE.sub("#", b) and a != b,
     "reason": "a file made with O_TMPFILE is named by the kernel after its inode number "
               "(\"DIR/#INO (deleted)\"); made again with O_TMPFILE, so that linkat can still "
               "name it, it is another inode (tests/ckpt/file_tmpfile.c)"},
    # --- BUG: stasis does not keep these today ---
    {"field": "mountinfo.hidden_dev",
     "reason": "BUG: a mount hidden under another one on the same mount point (the host's "
               "stacked /dev/pts and /dev/shm, copied into a nested mount namespace) is "
               "recreated as a new filesystem (a tmpfs empty) instead of the parent "
               "namespace's one; documented in docs/ARCHITECTURE.md, 'Mount namespaces: "
               "what is left out' (ns_mnt_nested, ns_cgroup_mount)"},
]
