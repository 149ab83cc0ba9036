/*
 * The command line the example servers share:
 *
 *   --port N          TCP port on 0.0.0.0 (default 8080; 0: any free one)
 *   --workers N       worker processes (default 1)
 *   --cpu N           pin worker i to CPU N+i (default: not pinned)
 *   --read-timeout MS close a client that stalls in the middle of a
 *                     request (default 10000)
 *   --idle-timeout MS close a connection idle between requests
 *                     (default 60000)
 *
 * Once every worker accepts, the master says on stderr
 * "NAME: listening on port N (W workers)". SIGINT and SIGTERM stop the
 * server cleanly; SIGHUP restarts its workers one by one.
 */
#ifndef GX_EXAMPLES_FLAGS_H
#define GX_EXAMPLES_FLAGS_H

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gonex/gonex.h>

typedef struct ex_opts {
	const char *name;
	char listen[32];
	gx_serve_config cfg;
} ex_opts;

static void ex_usage(const char *name)
{
	fprintf(stderr,
		"usage: %s [--port N] [--workers N] [--cpu N] [--read-timeout MS] [--idle-timeout MS]\n", name);
	exit(2);
}

static long ex_num(const char *name, const char *flag, const char *v, long lo, long hi)
{
	char *end;
	errno = 0;
	long n = v ? strtol(v, &end, 10) : 0;
	if (!v || errno || *end || end == v || n < lo || n > hi) {
		fprintf(stderr, "%s: %s wants a number from %ld to %ld\n", name, flag, lo, hi);
		exit(2);
	}
	return n;
}

/* A strict decimal of at most 20 characters in [lo, hi]: 0 and *v, or -1. */
static inline int ex_decimal(const char *p, size_t n, long long lo, long long hi, long long *v)
{
	long long x = 0;
	size_t i = n && p[0] == '-';
	if (i == n || n > 20)
		return -1;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || x > (LLONG_MAX - (p[i] - '0')) / 10)
			return -1;
		x = x * 10 + (p[i] - '0');
	}
	x = p[0] == '-' ? -x : x;
	if (x < lo || x > hi)
		return -1;
	*v = x;
	return 0;
}

static void ex_ready(const gx_serve_info *info, void *arg)
{
	const ex_opts *o = arg;
	fprintf(stderr, "%s: listening on port %d (%d worker%s)\n", o->name, info->port[0], info->workers,
		info->workers == 1 ? "" : "s");
}

/* Parse argv into o (exits 2 on bad usage). */
static void ex_parse(ex_opts *o, const char *name, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->name = name;
	gx_serve_config_init(&o->cfg);
	long port = 8080, workers = 1, cpu = -1;
	for (int i = 1; i < argc; i += 2) {
		const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(f, "--port"))
			port = ex_num(name, f, v, 0, 65535);
		else if (!strcmp(f, "--workers"))
			workers = ex_num(name, f, v, 1, GX_SERVE_MAX_WORKERS);
		else if (!strcmp(f, "--cpu"))
			cpu = ex_num(name, f, v, 0, CPU_SETSIZE - 1);
		else if (!strcmp(f, "--read-timeout"))
			o->cfg.read_ns = ex_num(name, f, v, 1, 3600000) * GX_MILLISECOND;
		else if (!strcmp(f, "--idle-timeout"))
			o->cfg.idle_ns = ex_num(name, f, v, 1, 3600000) * GX_MILLISECOND;
		else
			ex_usage(name);
	}
	snprintf(o->listen, sizeof o->listen, "0.0.0.0:%ld", port);
	o->cfg.listen[0] = o->listen;
	o->cfg.workers = (int)workers;
	o->cfg.pin = 0;
	if (cpu >= 0) { /* workers take the CPUs of this mask in turn */
		cpu_set_t m;
		CPU_ZERO(&m);
		for (long i = 0; i < workers && cpu + i < CPU_SETSIZE; i++)
			CPU_SET(cpu + i, &m);
		if (sched_setaffinity(0, sizeof m, &m) < 0) {
			fprintf(stderr, "%s: --cpu %ld: %s\n", name, cpu, strerror(errno));
			exit(2);
		}
		o->cfg.pin = 1;
	}
	o->cfg.on_ready = ex_ready;
	o->cfg.ready_arg = o;
}

/* Serve until SIGINT/SIGTERM: the process's exit status. */
static int ex_serve(ex_opts *o, gx_serve_fn handler, void *arg)
{
	int rc = gx_serve(&o->cfg, handler, arg);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", o->name, strerror(-rc));
		return 1;
	}
	if (rc > 0)
		fprintf(stderr, "%s: %d connection%s cancelled at the drain deadline\n", o->name, rc,
			rc == 1 ? "" : "s");
	return 0;
}

#endif
