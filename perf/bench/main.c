/*
 * gx-bench: one binary, one workload per subcommand (docs/benchmarks.md,
 * and the README's table). Each workload prints, last, one line per figure:
 *     RESULT <name> <value> <unit> [key=value ...]
 * Argument errors print usage and exit 2.
 *
 * This file holds the usage text, the argument checks and the choice of
 * workload; the workloads are in the other files of perf/bench/ (bench.h
 * lists them). `gx-bench --check WORKLOAD [ARGS]` runs the checks only
 * (perf/lab asks it before it changes anything).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gonex/gonex.h>

#include "bench.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: gx-bench WORKLOAD [ARGS]\n"
		"  yield N    two coroutines yield to each other N times each\n"
		"  spawn N    spawn N coroutines (batches of 1024) that mark a WaitGroup done\n"
		"  idle N     N coroutines parked on a channel; resident memory per coroutine\n"
		"  pingpong N two coroutines exchange a value N times over two unbuffered channels\n"
		"  select N   as pingpong, the receiver selects over two channels\n"
		"  ring N [B] the MPMC ring between two processes on two CPUs: N values in\n"
		"             batches of B (default 256), a ping-pong of N/10, the same\n"
		"             sleeping (N/100, at least 1000), and the cache-line and\n"
		"             futex round-trip floors\n"
		"  chanxproc N  N 8-byte values over a distributed channel (capacity 1024)\n"
		"             from the main process to a task on a worker, on two CPUs\n"
		"  xpingpong N [CAP]  N round trips of a value between the main process and\n"
		"             a worker over two distributed channels (capacity CAP, default\n"
		"             1), next to the cache-line round trip\n"
		"  wake N [CAP]  as xpingpong with spin_ns 0 (both sides sleep every round),\n"
		"             next to the raw futex round trip\n"
		"  xselect N [CAP]  as xpingpong, but the worker receives with gx_select\n"
		"             over ping and a distributed channel nobody sends on\n"
		"  xselectwake N [CAP]  as xselect with spin_ns 0, next to the raw futex\n"
		"             round trip\n"
		"  parallel T U P [B]  T tasks of U xorshift units through gx_go_parallel\n"
		"             on P workers (and, when P > 1, on 1 worker as the baseline);\n"
		"             with B > 1, B tasks a call of gx_go_parallel_n\n"
		"  dispatch N N gx_go_parallel calls, each awaited before the next, on one\n"
		"             idle worker\n"
		"  restart N  SIGKILL worker 0 N times; each time, the time until its\n"
		"             replacement has run a task pinned to it\n"
		"  quiet S P  a runtime with P workers left idle for S seconds: the CPU\n"
		"             time and wake-ups of all its processes\n"
		"  config     print what the runtime chose\n"
		"gx-bench --check WORKLOAD [ARGS]: check the arguments only (exit 0, or 2)\n"
		"GONEX_* variables tune the runtime (see README.md).\n");
	exit(2);
}

static long parse_count(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v <= 0) {
		fprintf(stderr, "gx-bench: '%s' is not a positive count\n", s);
		usage();
	}
	return v;
}
/* --check: the arguments are checked, nothing runs */
static int check_only;
#define RUN(call) return check_only ? 0 : (call)

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "--check")) {
		check_only = 1;
		argv++;
		argc--;
	}
	if (argc < 2)
		usage();
	const char *w = argv[1];
	if (!strcmp(w, "ring")) { /* plain processes, no gx_run */
		if (argc != 3 && argc != 4)
			usage();
		long n = parse_count(argv[2]);
		long b = argc == 4 ? parse_count(argv[3]) : RING_BATCH;
		if (b > RING_BATCH_MAX) {
			fprintf(stderr, "gx-bench: batch %ld is over %d\n", b, RING_BATCH_MAX);
			usage();
		}
		RUN(bench_ring(n, (size_t)b));
	}
	if (!strcmp(w, "chanxproc") || !strcmp(w, "dispatch")) {
		if (argc != 3)
			usage();
		long n = parse_count(argv[2]);
		RUN(w[0] == 'c' ? bench_chanxproc(n) : bench_dispatch(n));
	}
	int sel = !strcmp(w, "xselect") || !strcmp(w, "xselectwake");
	if (!strcmp(w, "xpingpong") || !strcmp(w, "wake") || sel) {
		if (argc != 3 && argc != 4)
			usage();
		long n = parse_count(argv[2]);
		long cap = 1;
		if (argc == 4) {
			char *end;
			errno = 0;
			cap = strtol(argv[3], &end, 10);
			if (errno || *end || cap < 0 || cap > 4096) {
				fprintf(stderr, "gx-bench: capacity '%s' is not 0..4096\n", argv[3]);
				usage();
			}
		}
		int wake = !strcmp(w, "wake") || !strcmp(w, "xselectwake");
		RUN(bench_xpp(n, (size_t)cap, wake, sel));
	}
	if (!strcmp(w, "restart")) {
		if (argc != 3)
			usage();
		long r = parse_count(argv[2]);
		RUN(bench_restart(r));
	}
	if (!strcmp(w, "quiet")) {
		if (argc != 4)
			usage();
		long sec = parse_count(argv[2]), p = parse_count(argv[3]);
		if (p > GX_MAX_WORKERS || sec > 3600) {
			fprintf(stderr, "gx-bench: quiet takes at most 3600 s and %d workers\n", GX_MAX_WORKERS);
			usage();
		}
		RUN(bench_quiet(sec, p));
	}
	if (!strcmp(w, "parallel")) {
		if (argc != 5 && argc != 6)
			usage();
		long t = parse_count(argv[2]), u = parse_count(argv[3]), p = parse_count(argv[4]);
		long b = argc == 6 ? parse_count(argv[5]) : 1;
		if (p > GX_MAX_WORKERS) {
			fprintf(stderr, "gx-bench: %ld workers is over %d\n", p, GX_MAX_WORKERS);
			usage();
		}
		RUN(bench_parallel(t, u, p, b));
	}
	gx_main_fn fn = NULL;
	long n = 0; /* the count for fn, but for config */
	if (!strcmp(w, "yield"))
		fn = bench_yield;
	else if (!strcmp(w, "spawn"))
		fn = bench_spawn;
	else if (!strcmp(w, "idle"))
		fn = bench_idle;
	else if (!strcmp(w, "pingpong"))
		fn = bench_pingpong;
	else if (!strcmp(w, "select"))
		fn = bench_select;
	else if (!strcmp(w, "config"))
		fn = bench_config;
	else
		usage();
	if (fn != bench_config) {
		if (argc != 3)
			usage();
		n = parse_count(argv[2]);
	} else if (argc != 2) {
		usage();
	}
	if (check_only)
		return 0;
	int rc = gx_run(NULL, fn, &n);
	if (rc == -EINVAL)
		return 2; /* configuration refused; the message is printed */
	if (rc < 0) {
		fprintf(stderr, "gx-bench: gx_run: %s\n", strerror(-rc));
		return 1;
	}
	return rc;
}
