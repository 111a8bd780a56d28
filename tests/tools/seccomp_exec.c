/* seccomp_exec [--notify] PROGRAM ARG...: installs a seccomp filter under which getpid
 * kills the process (SECCOMP_RET_KILL_PROCESS: it dies by SIGSYS) and every other syscall
 * is allowed, then execs PROGRAM (a real program not written here: the seccomp_kill check
 * runs python3). With --notify the filter sends getcpu to a listener instead
 * (SECCOMP_RET_USER_NOTIF, SECCOMP_FILTER_FLAG_NEW_LISTENER; the listener fd is
 * close-on-exec). no_new_privs is set first, so it works for any user. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	unsigned int flags = 0;

	if (argc > 1 && !strcmp(argv[1], "--notify")) {
		f[4].k = SYS_getcpu;
		f[5].k = SECCOMP_RET_USER_NOTIF;
		flags = SECCOMP_FILTER_FLAG_NEW_LISTENER;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: seccomp_exec [--notify] PROGRAM ARG...\n");
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0) {
		fprintf(stderr, "seccomp_exec: install the filter: %s\n", strerror(errno));
		return 1;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "seccomp_exec: exec %s: %s\n", argv[1], strerror(errno));
	return 127;
}
