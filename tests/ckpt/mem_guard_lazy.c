// stasis-test: restore-opts=--lazy-pages timeout=60
// stasis-test: nonroot-known=lazy restore needs CAP_SYS_PTRACE (userfaultfd for faults in kernel mode)
// stasis-test: rootless-known=lazy restore needs CAP_SYS_PTRACE in the initial user namespace
// stasis-test: uns-known=lazy restore needs CAP_SYS_PTRACE in the initial user namespace
/* mem_guard, restored with --lazy-pages: the page server serves the areas while the task runs
 * (a sealed area is filled before, not served: its userfaultfd registration could not be
 * dropped once it is sealed). */
#include "mem_guard.c"
