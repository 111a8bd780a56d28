/* The command line: one file per command. Each cmd_* gets the arguments after the
 * command name (argv[0] is the command name) and returns the process exit status. */
#ifndef STASIS_CLI_CLI_H
#define STASIS_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

int cmd_dump(int argc, char **argv);
int cmd_pre_dump(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_helper(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_swrk(int argc, char **argv);
/* stasis invoked as `criu`: CRIU's command line (src/cli/criu.c); @argv[0] is "criu". */
int cmd_criu(int argc, char **argv);
int cmd_unlock_network(int argc, char **argv);
int cmd_page_server(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

/* Open the log for a command: -o FILE or stderr; -v info, -vv debug. Without -v or -o,
 * stderr gets only the one-line summary of a failure. 0, or -1 after saying why. */
int cli_log_init(const char *cmd, const char *logfile, int verbose);

/* Check one --external value (mnt[...] of src/ns/mnt.c, veth[...] of src/net/netns.c) in its
 * dump (@at_dump) or restore form: 0 or -errno. */
int cli_parse_external(const char *arg, bool at_dump);
/* --compress[=LEVEL] of command @cmd: the zstd level (1 without one) in *@level. 0, or -1
 * said on stderr. */
int cli_parse_compress(const char *arg, const char *cmd, int *level);

/* `stasis --version` */
void cli_print_version(FILE *f);

/* Print the one-line failure summary for a failed command: "stasis <cmd>: <first error>". */
void cli_report_failure(const char *cmd);

#endif
