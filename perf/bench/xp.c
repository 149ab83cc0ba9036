/*
 * The harness of the workloads that run gx_run with worker processes:
 * chanxproc, xpingpong and wake (xproc.c), parallel and dispatch
 * (parallel.c).
 *
 * These run gx_run with worker processes. Each builds its gx_config here
 * (workers, cpu_affinity, spin_ns, no autoscaling), so no GONEX_* variable
 * is needed; the GONEX_* overrides still apply, as gx_run applies them, and
 * xp_config applies them to its copy too so that the RESULT keys say what
 * ran (spin_ns=, workers=, cpus=).
 *
 * CPUs: ring_cpu[0] and ring_cpu[1], the first two CPUs of the affinity
 * mask. With cpu_affinity the runtime pins worker 0 to ring_cpu[0];
 * chanxproc, xpingpong, wake and dispatch (xp_measure) move the main
 * process to ring_cpu[1] inside main_fn (xp_pinned, sched_setaffinity) and
 * restore its mask before main_fn returns, so the next gx_run's workers
 * are placed from the full mask again. `parallel` moves the main process to the first CPU of
 * the mask that no worker is pinned to, and when there is none (P workers
 * on P CPUs) leaves it where the scheduler puts it, competing with the
 * workers (main_cpu=-1). Left to the scheduler with one worker, U = 10
 * gave 1.5 to 12 M tasks/s from run to run (1.3 M with the main process
 * and the worker made to share one CPU); pinned, 11.9 to 12.5 M.
 *
 * Slices: every figure is measured XP_SLICES times, each time in a gx_run
 * of its own after a warm-up there (a tenth of the count), and printed as
 * its BEST slice (stat=best), for the reason given for the ring workload;
 * median= gives the median slice. Before each slice of chanxproc,
 * xpingpong and dispatch the ring workload's cache-line floor is measured
 * (wake: its futex floor), in plain processes forked between the gx_runs,
 * so that a slow spell of the VM falls on a figure and its floor alike;
 * vs_floor is best over best. On the 2-vCPU VM the cache-line floor is
 * bimodal over minutes (~45 ns, or ~350 ns when the host places the vCPUs
 * far apart) and every cross-core figure moves with it: compare vs_floor,
 * or figures with similar floors. `parallel` alternates each slice with a
 * 1-worker run of the same tasks when P > 1 (vs_1_worker is best over
 * best).
 *
 * Hygiene: each gx_run is bounded by an alarm: 60 s plus its operations
 * at a pessimistic cost each (xp_budget: ~10x to 100x what they take on
 * the 2-vCPU VM); on SIGALRM the program says so and _exits 1, and the
 * spawner and the workers die with it (PR_SET_PDEATHSIG, see
 * gonex/parallel.h). A task that fails closes the
 * channel the main process sends on, so the main process sees -EPIPE rather
 * than blocking; a main process that fails closes the channel the task
 * receives on, so gx_run's drain does not wait forever.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gonex/gonex.h>

#include "bench.h"

static void xp_alarm(int sig)
{
	(void)sig;
	static const char m[] = "gx-bench: a gx_run went past its time limit; giving up\n";
	ssize_t w = write(2, m, sizeof m - 1);
	(void)w;
	_exit(1);
}

int xp_fail(const char *call, int rc)
{
	fprintf(stderr, "gx-bench: %s: %s\n", call, strerror(-rc));
	return 1;
}

int xp_config(gx_config *c, int workers, int64_t spin_ns)
{
	gx_config_init(c);
	c->workers = workers;
	c->workers_min = 0;
	c->workers_max = 0;
	c->autoscaling = 0;
	c->cpu_affinity = 1;
	if (spin_ns >= 0)
		c->spin_ns = spin_ns;
	return gx_config_from_env(c);
}

unsigned xp_budget(double ops, double worst_ns)
{
	double s = 60.0 + ops * worst_ns / 1e9;
	return s < 86400.0 ? (unsigned)s : 86400u;
}

int xp_run(const gx_config *c, gx_main_fn fn, void *arg, unsigned budget)
{
	struct sigaction sa = {.sa_handler = xp_alarm};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(budget);
	int rc = gx_run(c, fn, arg);
	alarm(0);
	if (rc < 0)
		return xp_fail("gx_run", rc);
	return rc ? 1 : 0;
}

/* Inside main_fn: the main process to ring_cpu[1]; worker 0's CPU noted. */
int xp_worker(int i, gx_stats_worker *out)
{
	static gx_stats *snap;
	memset(out, 0, sizeof *out);
	if (!snap && !(snap = calloc(1, sizeof *snap)))
		return -ENOMEM;
	int rc = gx_stats_snapshot(snap);
	if (rc < 0)
		return rc;
	if (i < 0 || i >= snap->nworkers)
		return -EINVAL;
	*out = snap->w[i];
	return 0;
}

static int xp_pin_main(xp_pin *p)
{
	gx_stats_worker s;
	p->worker_cpu = xp_worker(0, &s) == 0 ? s.cpu : -1;
	p->main_cpu = -1;
	if (sched_getaffinity(0, sizeof p->old, &p->old) != 0) {
		fprintf(stderr, "gx-bench: sched_getaffinity: %s\n", strerror(errno));
		return 1;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(ring_cpu[1], &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) {
		fprintf(stderr, "gx-bench: pinning the main process to CPU %d: %s\n", ring_cpu[1], strerror(errno));
		return 1;
	}
	p->main_cpu = ring_cpu[1];
	return 0;
}

static void xp_unpin_main(const xp_pin *p)
{
	if (p->main_cpu >= 0)
		sched_setaffinity(0, sizeof p->old, &p->old);
}

int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

double median_i64(const int64_t *v, int n)
{
	int64_t s[XP_SLICES];
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, cmp_i64);
	return n % 2 ? (double)s[n / 2] : ((double)s[n / 2 - 1] + (double)s[n / 2]) / 2.0;
}

/* A floor measurement (ring_pair) outside gx_run, SIGCHLD blocked meanwhile. */
static int floor_pair(const char *what, ring_side_fn fn, void *arg)
{
	ring_block_chld();
	int rc = ring_pair(what, fn, arg);
	ring_unblock_chld();
	return rc;
}

/* gx_run's main_fn for a slice: j->fn with the main process pinned. */
static int xp_pinned(void *arg)
{
	xp_job *j = arg;
	if (xp_pin_main(&j->pin))
		return 1;
	int ret = j->fn(j->arg);
	xp_unpin_main(&j->pin);
	return ret;
}

/* XP_SLICES rounds, each the machine's floor then one slice: their times
 * go to j->t_fl[] and j->t[]. 0, or -1 when a floor or a slice failed. */
static int xp_slices(xp_job *j)
{
	for (int i = 0; i < XP_SLICES; i++) {
		if (floor_pair(j->fl_name, j->futex_floor ? futex_side : cl_side, &j->fl))
			return -1;
		j->t_fl[i] = rctl->ns;
		if (xp_run(&j->cfg, xp_pinned, j, j->budget))
			return -1;
		j->t[i] = *j->ns;
	}
	return 0;
}

static int xp_ctl_map(void)
{
	rctl = mmap(NULL, sizeof *rctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rctl == MAP_FAILED) {
		rctl = NULL;
		fprintf(stderr, "gx-bench: mmap: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int xp_measure(xp_job *j)
{
	j->fl_name = j->futex_floor ? "floor_futex_rtt" : "floor_cacheline_rtt";
	if (two_cpus(j->name) < 0)
		return 1;
	if (xp_config(&j->cfg, 1, j->spin_ns) < 0)
		return 2;
	if (xp_ctl_map() < 0)
		return 1;
	int ret = xp_slices(j) ? 1 : 0;
	munmap(rctl, sizeof *rctl);
	rctl = NULL;
	return ret;
}
