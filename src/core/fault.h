/* Fault injection (tests): STASIS_FAULT=POINT[:N] makes the Nth pass (default: every
 * pass) of fault point POINT in a process fail with -EIO, logged as "fault injected at
 * POINT"; STASIS_FAULT=list logs every point passed ("fault point POINT") and fails
 * none. Points: "dump:ROW", "dump-tree:ROW", "restore-STAGE:ROW" for every row of the
 * resource table and stage (ROW with '-' for spaces: "dump:process-attributes"), and
 * "dump:freeze", "dump:write", "dump:commit", "restore:spawn", "restore:resume"; and
 * "restore:take-pid", which does not fail but makes a thread of stasis take, for 50 ms,
 * a pid just prepared through ns_last_pid (the race a creator without rights over a pid
 * namespace level retries); and "pre-dump:exit", which does not fail either but kills
 * (SIGKILL) the process whose pages a pre-dump is about to copy, the tree running again:
 * a process of the tree that exits at that moment. Without the variable a point costs
 * one branch. */
#ifndef STASIS_CORE_FAULT_H
#define STASIS_CORE_FAULT_H

/* 0, or -EIO when a fault is injected at @point (@detail: a row name appended after a
 * ':', or NULL). */
int fault_at(const char *point, const char *detail) __attribute__((warn_unused_result));

#endif
