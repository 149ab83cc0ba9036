/*
 * The workloads of the runtime's life cycle, each one gx_run with workers:
 *   restart  two workers, work stealing off; N times: SIGKILL worker 0, then
 *            time from the kill until its replacement has run a task
 *            pinned to worker 0 (the median over N, and the max)
 *   quiet    P workers left idle for S seconds: the CPU time (each
 *            process's CPU clock) and the wake-ups (voluntary context
 *            switches in /proc/PID/status) of the main process and every
 *            worker, against the contract's idle row (0 %, no wake-ups
 *            beyond due timers)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gonex/gonex.h>

#include "bench.h"

/* -- restart: from SIGKILL to a replacement running tasks -- */

static int rs_who(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	return gx_worker_id();
}

typedef struct {
	long n;
	int64_t *ns;
	int bad;
} rs_state;

static int rs_main(void *arg)
{
	rs_state *s = arg;
	for (long k = 0; k < s->n; k++) {
		gx_stats_worker st;
		/* let the previous replacement settle, then kill it */
		for (int t = 0; t < 1000 && (xp_worker(0, &st) != 0 || st.state != 2 || st.pid <= 0); t++)
			gx_sleep(GX_MILLISECOND);
		gx_sleep(5 * GX_MILLISECOND);
		if (xp_worker(0, &st) != 0 || st.pid <= 0) /* never kill(0) or kill(-1) */
			return xp_fail("finding worker 0", -ESRCH);
		int64_t t0 = gx_now();
		kill(st.pid, SIGKILL);
		gx_par_opts o = GX_PAR_OPTS_INIT;
		o.worker = 0; /* stealing is off: only worker 0's replacement runs it */
		gx_future f;
		if (gx_go_parallel(&f, rs_who, NULL, 0, &o) != 0 ||
		    gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND)) != 0) {
			s->bad++;
			continue;
		}
		s->ns[k] = gx_now() - t0;
	}
	return 0;
}

int bench_restart(long n)
{
	gx_config cfg;
	gx_config_init(&cfg);
	cfg.workers = 2;
	cfg.work_stealing = 0;
	cfg.restart_max = 1000;
	if (gx_config_from_env(&cfg) < 0)
		return 2;
	int64_t *ns = calloc((size_t)n, sizeof *ns);
	if (!ns)
		return 1;
	rs_state s = {.n = n, .ns = ns};
	int rc = gx_run(&cfg, rs_main, &s);
	if (rc != 0 || s.bad) {
		fprintf(stderr, "gx-bench restart: gx_run %d, %d kills without a replacement running the task\n", rc, s.bad);
		free(ns);
		return 1;
	}
	qsort(ns, (size_t)n, sizeof *ns, cmp_i64);
	int64_t mx = ns[n - 1];
	double med = (n % 2 ? (double)ns[n / 2] : ((double)ns[n / 2 - 1] + (double)ns[n / 2]) / 2.0) / 1e6;
	printf("RESULT restart_to_task %.2f ms kills=%ld stat=median max=%.2f workers=%d\n", med, n, (double)mx / 1e6,
	       cfg.workers);
	free(ns);
	return 0;
}

/* -- quiet: what an idle runtime costs -- */

typedef struct qt_state {
	long seconds;
	int nproc;
	double cpu_pct, wakeups_per_s;
	int bad;
} qt_state;

/* Voluntary context switches of pid (each a wake-up after a block). */
static long qt_wakeups(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "voluntary_ctxt_switches:", 24))
			v = atol(line + 24);
	if (f)
		fclose(f);
	return v;
}

/* CPU time of pid in ns (its CPU clock: exact, unlike /proc ticks). */
static int64_t qt_cpu(int pid)
{
	clockid_t clk;
	struct timespec ts;
	if (clock_getcpuclockid(pid, &clk) != 0 || clock_gettime(clk, &ts) != 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int qt_main(void *arg)
{
	qt_state *s = arg;
	gx_sleep(500 * GX_MILLISECOND); /* let start-up settle */
	int pids[GX_MAX_WORKERS + 1];
	int n = 0;
	pids[n++] = getpid();
	for (int i = 0; i < gx_workers() && n <= GX_MAX_WORKERS; i++) {
		gx_stats_worker ws;
		if (xp_worker(i, &ws) == 0 && ws.pid > 0)
			pids[n++] = ws.pid;
	}
	long w0[GX_MAX_WORKERS + 1];
	int64_t c0[GX_MAX_WORKERS + 1];
	for (int i = 0; i < n; i++) {
		w0[i] = qt_wakeups(pids[i]);
		c0[i] = qt_cpu(pids[i]);
	}
	int64_t t0 = gx_now();
	gx_sleep(s->seconds * GX_SECOND);
	double wall = (double)(gx_now() - t0);
	long wakes = 0;
	int64_t cpu = 0;
	for (int i = 0; i < n; i++) {
		long w1 = qt_wakeups(pids[i]);
		int64_t c1 = qt_cpu(pids[i]);
		if (w0[i] < 0 || w1 < 0 || c0[i] < 0 || c1 < 0)
			s->bad = 1;
		wakes += w1 - w0[i];
		cpu += c1 - c0[i];
	}
	s->nproc = n;
	s->cpu_pct = 100.0 * (double)cpu / wall;
	s->wakeups_per_s = (double)wakes / (wall / 1e9);
	return 0;
}

int bench_quiet(long seconds, long workers)
{
	gx_config cfg;
	gx_config_init(&cfg);
	cfg.workers = (int)workers;
	if (gx_config_from_env(&cfg) < 0)
		return 2;
	qt_state s = {.seconds = seconds};
	int rc = gx_run(&cfg, qt_main, &s);
	if (rc != 0 || s.bad) {
		fprintf(stderr, "gx-bench quiet: gx_run %d%s\n", rc, s.bad ? ", a process could not be read" : "");
		return 1;
	}
	printf("RESULT idle_wakeups_per_s %.2f /s processes=%d seconds=%ld health=%d (voluntary context switches of "
	       "all processes)\n",
	       s.wakeups_per_s, s.nproc, seconds, cfg.health_monitoring);
	printf("RESULT idle_cpu_percent %.4f %% processes=%d seconds=%ld (CPU time of all processes over wall time)\n",
	       s.cpu_pct, s.nproc, seconds);
	return 0;
}
