/* rusage: runs a command and reports its wall time, CPU time and peak RSS precisely.
 *
 *   rusage OUTFILE COMMAND [ARG...]
 *
 * Writes "wall_s user_s sys_s maxrss_kib exit_status" to OUTFILE and exits 0 (or 127
 * when COMMAND cannot be run). bench/compare.py compiles and uses it instead of
 * /usr/bin/time, which prints CPU times in 10 ms steps, and instead of measuring from
 * Python, whose own RSS a child started by it inherits in ru_maxrss (the kernel carries
 * the peak RSS of the memory image an exec replaces). Started from this small process,
 * the command's ru_maxrss is its own. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: rusage OUTFILE COMMAND [ARG...]\n");
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("rusage: fork");
		return 127;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror("rusage: exec");
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("rusage: wait4");
		return 127;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	FILE *out = fopen(argv[1], "w");
	if (!out) {
		perror("rusage: OUTFILE");
		return 127;
	}
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	fprintf(out, "%.6f %ld.%06ld %ld.%06ld %ld %d\n",
		(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
		(long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
		(long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, ru.ru_maxrss, code);
	fclose(out);
	return code == 127 ? 127 : 0;
}
