/* The eddy command: run and check YAML jobs, the debug shell, the built-in demo; `node`
 * and `savepoint` come later (see README.md). */
#include "../examples/flights_count.h"
#include "nexmark_cli.h"
#include "run.h"
#include "shell.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EDDY_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: eddy COMMAND [ARGS]\n"
	        "\n"
	        "commands:\n"
	        "  run JOB.yaml [--set K=V ...]  run a job in this process (eddy run --help)\n"
	        "  check JOB.yaml [--set K=V]    validate a job and print its physical plan\n"
	        "  shell [ADDRESS] [-c CMD]   the debug shell of a job run with --control\n"
	        "                             (eddy shell --help)\n"
	        "  demo [--workers N] [FILE]  count flights and total delay per origin in a\n"
	        "                             flights CSV (plain or .gz) with a supervised actor\n"
	        "                             pipeline; prints origin,flights,total_delay\n"
	        "                             (default FILE: examples/data/flights-sample.csv,\n"
	        "                             relative to the current directory)\n"
	        "  nexmark-gen --events N --out DIR [--seed S]   write Nexmark events as CSV\n"
	        "                             files (eddy nexmark-gen --help)\n"
	        "  version                    print the version\n"
	        "  help                       this text\n"
	        "\n"
	        "Not available yet: node, savepoint.\n"
	        "exit codes: 0 done, 1 job failed, 2 bad usage\n");
}

static int cmd_demo(int argc, char **argv)
{
	const char *path = "examples/data/flights-sample.csv";
	unsigned workers = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			char *end;
			long n = strtol(argv[++i], &end, 10);
			if (*end != '\0' || n < 1 || n > 1024) {
				fprintf(stderr,
				        "eddy demo: --workers takes a number from 1 to 1024\n");
				return 2;
			}
			workers = (unsigned)n;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "eddy demo: unknown option %s\n", argv[i]);
			return 2;
		} else {
			path = argv[i];
		}
	}
	return flights_count(path, workers, stdout, stderr);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc - 2, argv + 2);
	if (strcmp(cmd, "shell") == 0)
		return cmd_shell(argc - 2, argv + 2);
	if (strcmp(cmd, "nexmark-gen") == 0)
		return cmd_nexmark_gen(argc - 2, argv + 2);
	if (strcmp(cmd, "demo") == 0)
		return cmd_demo(argc - 2, argv + 2);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("eddy %s\n", EDDY_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "eddy: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
