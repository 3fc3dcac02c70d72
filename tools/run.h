/* `eddy run` and `eddy check` (tools/run.c). Each takes the arguments after the command
 * and returns the process exit code: 0 done/valid, 1 job failed, 2 bad usage or config. */
#ifndef EDDY_TOOLS_RUN_H
#define EDDY_TOOLS_RUN_H

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);

#endif
