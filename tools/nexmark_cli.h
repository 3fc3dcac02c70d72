/* `eddy nexmark-gen` (tools/nexmark_cli.c). */
#ifndef EDDY_TOOLS_NEXMARK_CLI_H
#define EDDY_TOOLS_NEXMARK_CLI_H

/* cmd_nexmark_gen runs `eddy nexmark-gen ARGS` (argv without the command words): writes
 * DIR/persons.csv, auctions.csv and bids.csv for --events N --seed S. Returns the exit
 * code: 0 done, 1 I/O error (message on stderr naming the file), 2 bad usage. Blocks on
 * the file system; the main thread. */
int cmd_nexmark_gen(int argc, char **argv);

#endif
