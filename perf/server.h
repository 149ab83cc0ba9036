/*
 * What the example servers (runtime and epoll baseline alike) share: the
 * command line (--port, --workers, --cpu), CPU pinning, worker processes
 * (SO_REUSEPORT, one listener each) and a clean stop on SIGINT/SIGTERM.
 */
#ifndef GX_PERF_SERVER_H
#define GX_PERF_SERVER_H

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct gx_srv_opts {
	int port;
	int workers;
	int cpu;          /* -1: no pinning; else worker i runs on cpu + i */
	int read_timeout_ms;
	int idle_timeout_ms;
	int worker_index; /* set in each worker */
} gx_srv_opts;

static inline void gx_srv_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--port N] [--workers N] [--cpu N] [--read-timeout MS] [--idle-timeout MS]\n"
		"  --port N          TCP port on 0.0.0.0 (default 8080)\n"
		"  --workers N       processes sharing the port with SO_REUSEPORT (default 1)\n"
		"  --cpu N           pin worker i to CPU N+i\n"
		"  --read-timeout MS close a client that sends part of a request and stalls (default 10000)\n"
		"  --idle-timeout MS close an idle keep-alive connection (default 60000)\n",
		prog);
	exit(2);
}

static inline int gx_srv_int(const char *prog, const char *s, int min, int max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "%s: '%s' is not a number in %d..%d\n", prog, s, min, max);
		gx_srv_usage(prog);
	}
	return (int)v;
}

static inline gx_srv_opts gx_srv_parse(int argc, char **argv)
{
	gx_srv_opts o = {.port = 8080, .workers = 1, .cpu = -1, .read_timeout_ms = 10000,
			 .idle_timeout_ms = 60000};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			gx_srv_usage(argv[0]);
		const char *v = argv[++i];
		if (!strcmp(a, "--port"))
			o.port = gx_srv_int(argv[0], v, 0, 65535);
		else if (!strcmp(a, "--workers"))
			o.workers = gx_srv_int(argv[0], v, 1, 256);
		else if (!strcmp(a, "--cpu"))
			o.cpu = gx_srv_int(argv[0], v, 0, 4095);
		else if (!strcmp(a, "--read-timeout"))
			o.read_timeout_ms = gx_srv_int(argv[0], v, 1, 3600000);
		else if (!strcmp(a, "--idle-timeout"))
			o.idle_timeout_ms = gx_srv_int(argv[0], v, 1, 3600000);
		else
			gx_srv_usage(argv[0]);
	}
	return o;
}

/* A signalfd for SIGINT and SIGTERM (blocked from now on); SIGPIPE ignored. */
static inline int gx_srv_signalfd(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigprocmask(SIG_BLOCK, &s, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK);
}

/*
 * Run serve(opts) in opts.workers processes (this one is worker 0), each
 * pinned when asked. The parent forwards SIGINT/SIGTERM to the others and
 * reaps them; children die with the parent (PR_SET_PDEATHSIG). Returns
 * worker 0's exit status.
 */
static inline int gx_srv_run(gx_srv_opts o, int (*serve)(gx_srv_opts *))
{
	pid_t kids[256];
	int nk = 0;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigprocmask(SIG_BLOCK, &s, NULL); /* before fork: no early death */
	for (int i = 1; i < o.workers; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			o.worker_index = i;
			if (o.cpu >= 0) {
				cpu_set_t c;
				CPU_ZERO(&c);
				CPU_SET(o.cpu + i, &c);
				sched_setaffinity(0, sizeof c, &c);
			}
			_exit(serve(&o));
		}
		kids[nk++] = pid;
	}
	if (o.cpu >= 0) {
		cpu_set_t c;
		CPU_ZERO(&c);
		CPU_SET(o.cpu, &c);
		sched_setaffinity(0, sizeof c, &c);
	}
	o.worker_index = 0;
	int rc = serve(&o);
	for (int i = 0; i < nk; i++)
		kill(kids[i], SIGTERM);
	for (int i = 0; i < nk; i++)
		waitpid(kids[i], NULL, 0);
	return rc;
}

#endif
