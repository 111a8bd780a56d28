/* The command line: one file per command. Each cmd_* gets the arguments after the
 * command name (argv[0] is the command name) and returns the process exit status. */
#ifndef STASIS_CLI_CLI_H
#define STASIS_CLI_CLI_H

int cmd_dump(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* Print the one-line failure summary for a failed command: "stasis <cmd>: <first error>". */
void cli_report_failure(const char *cmd);

#endif
