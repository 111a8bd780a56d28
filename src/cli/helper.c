/* `stasis helper ARGS`: runs the privileged helper, which is a program of its own
 * (`stasis-helper`, src/helper/main.c: linked without the checkpoint code). It is
 * looked for next to this stasis binary (the directory of /proc/self/exe), and exec'd
 * with the same arguments; nothing privileged happens here before the exec. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/util.h"

#define HELPER_PROG "stasis-helper"

int cmd_helper(int argc, char **argv)
{
	char exe[PATH_MAX], path[PATH_MAX + sizeof(HELPER_PROG)];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0 || !(slash = memrchr(exe, '/', (size_t)n))) {
		fprintf(stderr,
			"stasis helper: cannot find the stasis binary's directory "
			"(/proc/self/exe): %s\n",
			n < 0 ? strerror(errno) : "no path");
		return 1;
	}
	*slash = '\0';
	snprintf(path, sizeof(path), "%s/" HELPER_PROG, exe);
	/* argv[0] is "helper": the helper's own argv[0] is its path, the rest as given */
	(void)argc;
	argv[0] = path;
	execv(path, argv);
	int e = errno;
	fprintf(stderr,
		"stasis helper: cannot run %s: %s (the helper is a separate program, "
		"built and installed next to stasis)\n",
		path, strerror(e));
	return e == ENOENT ? 127 : 126;
}
