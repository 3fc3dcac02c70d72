/*
 * Runs a command and reports its wall time and peak resident set size (getrusage's ru_maxrss
 * of the child, via wait4), so that bench/flights/run.sh needs no /usr/bin/time.
 *
 * Usage: bench_peak_rss [-o REPORT] COMMAND [ARG...]
 * Writes "wall_s=X peak_rss_kib=N" (one line) to REPORT, or to stderr without -o, and exits
 * with the command's exit status (128 + signal number if it was killed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *report = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "+o:")) != -1) {
		if (opt != 'o')
			goto usage;
		report = optarg;
	}
	if (optind >= argc)
		goto usage;

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench_peak_rss: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "bench_peak_rss: %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("bench_peak_rss: wait4");
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	FILE *f = report ? fopen(report, "w") : stderr;
	if (!f) {
		perror(report);
		return 1;
	}
	fprintf(f, "wall_s=%.6f peak_rss_kib=%ld\n", wall, ru.ru_maxrss);
	if (report)
		fclose(f);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
usage:
	fprintf(stderr, "usage: bench_peak_rss [-o REPORT] COMMAND [ARG...]\n");
	return 2;
}
