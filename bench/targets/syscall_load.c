/*
 * A syscall-heavy process for bench/syscall-cost.ts: one-byte writes and
 * reads on a pipe, in one thread, never blocking. Commands on stdin, one
 * per line, answers on stdout:
 *
 *   run SECONDS SPIN  ->  SYSCALLS WALL_NS CPU_NS
 *
 * Each iteration spins SPIN rounds of a loop the compiler cannot remove
 * (user-space work), then writes one byte and reads it back: 2 syscalls.
 * CPU_NS is this thread's CPU time, user and system (where the BPF programs
 * run), so time the machine gave to other processes does not count: on a
 * busy machine, syscalls per CPU second is the steadier measure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(void)
{
	char line[128], byte = 'x';
	volatile unsigned long sink = 0;
	int fds[2];

	if (pipe(fds))
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("{\"pid\": %d}\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin)) {
		double seconds;
		long long spin, start, end, cpu0, syscalls = 0;

		if (sscanf(line, "run %lf %lld", &seconds, &spin) != 2)
			return 2;
		cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		start = clock_ns(CLOCK_MONOTONIC);
		end = start + (long long)(seconds * 1e9);
		for (;;) {
			/* The vDSO clock (no syscall), once every 64 iterations. */
			if ((syscalls & 127) == 0 && clock_ns(CLOCK_MONOTONIC) >= end)
				break;
			for (long long i = 0; i < spin; i++)
				sink += i;
			if (write(fds[1], &byte, 1) != 1 || read(fds[0], &byte, 1) != 1)
				return 3;
			syscalls += 2;
		}
		printf("%lld %lld %lld\n", syscalls, clock_ns(CLOCK_MONOTONIC) - start,
		       clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0);
	}
	return 0;
}
