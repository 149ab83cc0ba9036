/*
 * The gx_go_parallel workloads, on the harness of xp.c:
 *   parallel  T tasks of U units of the xorshift work of BENCHMARKS.md on P
 *             workers, at most PAR_WINDOW futures in flight (the oldest
 *             awaited first); every task's result is checked. With B > 1,
 *             submitted B at a time through gx_go_parallel_n. When P > 1
 *             each slice alternates with a 1-worker run of the same tasks,
 *             the baseline. No floor: the figure is a rate, compared with
 *             the 1-worker run.
 *   dispatch  N gx_go_parallel calls on one idle (spinning) worker, each
 *             awaited before the next, next to the cache-line floor.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <gonex/gonex.h>

#include "bench.h"

#define PAR_WINDOW 4096 /* futures in flight (the table holds 65536) */

/* -- parallel: T tasks of U xorshift units on P workers -- */

/* The work function of BENCHMARKS.md. */
static uint64_t xorshift_units(uint64_t units)
{
	uint64_t x = 88172645463325252ull;
	for (uint64_t i = 0; i < units; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static int par_work(const void *arg, size_t len, gx_task_result *res)
{
	uint64_t units;
	if (len != sizeof units)
		return -EINVAL;
	memcpy(&units, arg, sizeof units);
	uint64_t x = xorshift_units(units);
	return gx_task_return(res, &x, sizeof x);
}

typedef struct par_state {
	long tasks, warm, batch;
	uint64_t units, want;
	int64_t ns;       /* this run's timed batch */
	int workers_seen; /* gx_workers() in main_fn */
	int main_cpu;     /* where par_main pinned the main process, or -1 */
} par_state;

static gx_future par_win[PAR_WINDOW];

static int par_wait(gx_future f, uint64_t want)
{
	uint64_t x = 0;
	size_t len = 0;
	int rc = gx_future_get(f, &x, sizeof x, &len, GX_FOREVER);
	if (rc < 0)
		return xp_fail("a parallel task", rc);
	if (len != sizeof x || x != want) {
		fprintf(stderr, "gx-bench: parallel: a task returned %zu bytes, %#llx; expected 8, %#llx\n", len,
			(unsigned long long)x, (unsigned long long)want);
		return 1;
	}
	return 0;
}

/* count tasks, at most PAR_WINDOW in flight: the oldest is awaited first.
 * With p->batch > 1 they go through gx_go_parallel_n, that many a call. */
static int par_batch(const par_state *p, long count)
{
	static uint64_t args[PAR_WINDOW];
	long head = 0, b = p->batch > 1 ? p->batch : 1;
	for (long i = 0; i < PAR_WINDOW; i++)
		args[i] = p->units;
	for (long i = 0; i < count;) {
		long k = count - i < b ? count - i : b;
		if (k > PAR_WINDOW - i % PAR_WINDOW)
			k = PAR_WINDOW - i % PAR_WINDOW; /* the window's end: the rest next call */
		while (i + k - head > PAR_WINDOW)
			if (par_wait(par_win[head++ % PAR_WINDOW], p->want))
				return 1;
		int rc = b == 1 ? gx_go_parallel(&par_win[i % PAR_WINDOW], par_work, &p->units, sizeof p->units, NULL)
				: gx_go_parallel_n(&par_win[i % PAR_WINDOW], (size_t)k, par_work, args, sizeof args[0], NULL);
		if (rc < 0 || (b > 1 && rc == 0))
			return xp_fail(b == 1 ? "gx_go_parallel" : "gx_go_parallel_n", rc ? rc : -EIO);
		i += b == 1 ? 1 : rc;
	}
	while (head < count)
		if (par_wait(par_win[head++ % PAR_WINDOW], p->want))
			return 1;
	return 0;
}

/* The main process to the first CPU of its mask that no worker is pinned
 * to; p->main_cpu -1 when there is none (or pinning failed: said). */
static void par_pin_main(par_state *p, cpu_set_t *old)
{
	p->main_cpu = -1;
	if (sched_getaffinity(0, sizeof *old, old) != 0)
		return;
	cpu_set_t free_cpus = *old;
	for (int i = 0; i < GX_MAX_WORKERS; i++) {
		gx_stats_worker st;
		if (xp_worker(i, &st) == 0 && st.cpu >= 0 && st.cpu < CPU_SETSIZE)
			CPU_CLR(st.cpu, &free_cpus);
	}
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &free_cpus))
			continue;
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(c, &set);
		if (sched_setaffinity(0, sizeof set, &set) == 0)
			p->main_cpu = c;
		else
			fprintf(stderr, "gx-bench: parallel: pinning the main process to CPU %d: %s\n", c,
				strerror(errno));
		return;
	}
}

static int par_main(void *arg)
{
	par_state *p = arg;
	p->workers_seen = gx_workers();
	cpu_set_t old;
	par_pin_main(p, &old);
	int ret = 1;
	if (p->warm && par_batch(p, p->warm))
		goto out;
	int64_t t0 = gx_now();
	if (par_batch(p, p->tasks))
		goto out;
	p->ns = gx_now() - t0;
	ret = 0;
out:
	if (p->main_cpu >= 0)
		sched_setaffinity(0, sizeof old, &old);
	return ret;
}

static const char *balance_name(gx_balance_kind b)
{
	switch (b) {
	case GX_BALANCE_ROUND_ROBIN:
		return "round-robin";
	case GX_BALANCE_LEAST_BUSY:
		return "least-busy";
	case GX_BALANCE_WEIGHTED:
		return "weighted";
	case GX_BALANCE_PREDICTIVE:
		return "predictive";
	}
	return "?";
}

int bench_parallel(long tasks, long units, long workers, long batch)
{
	gx_config cfg, cfg1;
	if (xp_config(&cfg, (int)workers, -1) < 0 || xp_config(&cfg1, 1, -1) < 0)
		return 2;
	par_state p = {.tasks = tasks, .warm = tasks / 10, .units = (uint64_t)units, .batch = batch};
	p.want = xorshift_units(p.units);
	par_state p1 = p;
	int64_t t[XP_SLICES], t1[XP_SLICES];
	int seen = 0, seen1 = 0;
	unsigned budget = xp_budget((double)(p.tasks + p.warm), 1e4 + 10.0 * (double)units);
	for (int i = 0; i < XP_SLICES; i++) {
		if (workers > 1) {
			if (xp_run(&cfg1, par_main, &p1, budget))
				return 1;
			t1[i] = p1.ns;
			seen1 = p1.workers_seen;
		}
		if (xp_run(&cfg, par_main, &p, budget))
			return 1;
		t[i] = p.ns;
		seen = p.workers_seen;
	}
	if (workers > 1 && seen1 != 1)
		fprintf(stderr, "gx-bench: parallel: the baseline ran on %d workers, not 1 (GONEX_WORKERS?)\n", seen1);
	double best = (double)tasks / ring_min(t, XP_SLICES) * 1e9;
	double med = (double)tasks / median_i64(t, XP_SLICES) * 1e9;
	printf("RESULT parallel_tasks_per_s %.0f tasks/s tasks=%ld units=%ld workers=%d slices=%d stat=best "
	       "median=%.0f ns_per_task=%.1f",
	       best, tasks, units, seen, XP_SLICES, med, 1e9 / best);
	if (workers > 1) {
		double best1 = (double)tasks / ring_min(t1, XP_SLICES) * 1e9;
		double med1 = (double)tasks / median_i64(t1, XP_SLICES) * 1e9;
		printf(" vs_1_worker=%.2f median_vs_1_worker=%.2f one_worker=%.0f one_worker_median=%.0f baseline_workers=%d "
		       "baseline_main_cpu=%d",
		       best / best1, med / med1, best1, med1, seen1, p1.main_cpu);
	}
	printf(" main_cpu=%d window=%d batch=%ld balance=%s stealing=%d spin_ns=%lld\n", p.main_cpu, PAR_WINDOW, batch,
	       balance_name(cfg.balance), cfg.work_stealing, (long long)cfg.spin_ns);
	return 0;
}

/* -- dispatch: one task at a time on an idle (spinning) worker -- */

static int dp_task(const void *arg, size_t len, gx_task_result *res)
{
	uint64_t v;
	if (len != sizeof v)
		return -EINVAL;
	memcpy(&v, arg, sizeof v);
	v++;
	return gx_task_return(res, &v, sizeof v);
}

typedef struct dp_state {
	long n, warm;
	int64_t ns; /* this slice */
} dp_state;

static int dp_rounds(long count, int64_t *ns)
{
	int64_t t0 = gx_now();
	for (uint64_t i = 0; i < (uint64_t)count; i++) {
		gx_future f;
		uint64_t v = 0;
		size_t len = 0;
		int rc = gx_go_parallel(&f, dp_task, &i, sizeof i, NULL);
		if (rc < 0)
			return xp_fail("gx_go_parallel", rc);
		if ((rc = gx_future_get(f, &v, sizeof v, &len, GX_FOREVER)) < 0)
			return xp_fail("the task", rc);
		if (len != sizeof v || v != i + 1) {
			fprintf(stderr, "gx-bench: dispatch: the task returned %llu, expected %llu\n",
				(unsigned long long)v, (unsigned long long)(i + 1));
			return 1;
		}
	}
	*ns = gx_now() - t0;
	return 0;
}

static int dp_main(void *arg)
{
	dp_state *s = arg;
	int64_t warm_ns;
	if (s->warm && dp_rounds(s->warm, &warm_ns))
		return 1;
	return dp_rounds(s->n, &s->ns);
}

int bench_dispatch(long n)
{
	dp_state s = {.n = n, .warm = n / 10};
	xp_job j = {.name = "dispatch", .spin_ns = -1, .fl = ring_rounds(XP_FLOOR_ROUNDS), .fn = dp_main, .arg = &s,
		    .ns = &s.ns, .budget = xp_budget((double)(s.n + s.warm), 1e5)};
	int e = xp_measure(&j);
	if (e)
		return e;
	double best = ring_min(j.t, XP_SLICES) / (double)n, fl = ring_min(j.t_fl, XP_SLICES) / (double)j.fl.n;
	printf("RESULT parallel_roundtrip %.1f ns rounds=%ld slices=%d stat=best median=%.1f floor_cacheline_rtt=%.1f "
	       "vs_floor=%.2f spin_ns=%lld cpus=%d,%d\n",
	       best, n, XP_SLICES, median_i64(j.t, XP_SLICES) / (double)n, fl, best / fl, (long long)j.cfg.spin_ns,
	       j.pin.worker_cpu, j.pin.main_cpu);
	return 0;
}
