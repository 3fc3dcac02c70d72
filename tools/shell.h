/* `eddy shell` (tools/shell.c): the interactive debug shell, a client of the control
 * endpoint of `eddy run --control URL` (protocol: actors/control.h). */
#ifndef EDDY_TOOLS_SHELL_H
#define EDDY_TOOLS_SHELL_H

/* cmd_shell runs `eddy shell [ADDRESS] [-c COMMAND] [--json] [--secret-file F]
 * [--timeout MS]` with the arguments after "shell" and returns the process exit code:
 * 0 success; 1 the server replied an error (or a malformed reply); 2 bad usage (an
 * unknown option or command, bad arguments, an unreadable secret file); 3 the server
 * could not be reached or did not reply in time. Interactive (line editing, history in
 * $HOME/.eddy_history, completion) when stdin is a terminal and there is no -c; reads
 * commands line by line from stdin otherwise. Prints on stdout, errors on stderr.
 * Main thread only: it installs signal handlers and changes the terminal's mode while
 * `watch` runs (both restored). */
int cmd_shell(int argc, char **argv);

#endif
