/*
 * The cross-process channel workloads, on the harness of xp.c (one worker,
 * the main process and worker 0 on two CPUs, XP_SLICES slices each after a
 * floor):
 *   chanxproc  the main process sends 1..N over a distributed channel
 *              (capacity XP_CHAN_CAP) to a task on worker 0, which returns
 *              their count, sum and sum of squares; timed from before the
 *              first send to the task's last receive (gx_now, one clock
 *              for all processes)
 *   xpingpong  the main process sends 2k+1 on one distributed channel, the
 *              task answers 2k+2 on another; N round trips a slice
 *   wake       xpingpong with spin_ns 0: both sides sleep every round
 *   xselect    xpingpong, but the task receives with gx_select over ping
 *              and a third distributed channel that never gets a value
 *   xselectwake  xselect with spin_ns 0, as wake
 *
 * Sleeps: xpingpong and wake count the voluntary context switches of the
 * main process and the worker during a slice (getrusage ru_nvcsw, warm-up
 * included): a receive that sleeps on the futex (through io_uring in a
 * coroutine) is one. sleeps_per_round is their sum over the round trips:
 * ~0 when the receives spin, 2 when both sides sleep every round.
 *
 * Either side that fails closes the channel the other one waits on, so
 * neither blocks forever (see xp.c, Hygiene).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <gonex/gonex.h>

#include "bench.h"

#define XP_CHAN_CAP 1024

static int64_t vol_switches(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? (int64_t)ru.ru_nvcsw : 0;
}

/* -- chanxproc: N values from the main process to a task on worker 0 -- */

typedef struct cx_arg {
	gx_chan *ch;
	long n;
} cx_arg;

typedef struct cx_res {
	uint64_t count, sum, sq;
	int64_t t_last; /* gx_now() at the last value (one clock for all processes) */
} cx_res;

/* On the worker: receive a.n values, return their count, sum and sum of
 * squares (mod 2^64). */
static int cx_consume(const void *arg, size_t len, gx_task_result *res)
{
	cx_arg a;
	if (len != sizeof a)
		return -EINVAL;
	memcpy(&a, arg, sizeof a);
	cx_res r = {0};
	int rc = 0;
	for (long i = 0; i < a.n; i++) {
		uint64_t v;
		bool ok;
		if ((rc = gx_chan_recv(a.ch, &v, &ok, GX_FOREVER)) < 0 || (!ok && (rc = -EPIPE)))
			break;
		r.count++;
		r.sum += v;
		r.sq += v * v;
	}
	r.t_last = gx_now();
	if (rc < 0) {
		gx_chan_close(a.ch); /* the sender must not block forever */
		return rc;
	}
	return gx_task_return(res, &r, sizeof r);
}

typedef struct cx_state {
	long n, warm;
	int64_t ns; /* this slice */
} cx_state;

/* One slice: start the consumer, send 1..n, check what it got. *ns: from
 * before the first send to the consumer's last value. */
static int cx_slice(gx_chan *ch, long n, int64_t *ns)
{
	cx_arg a = {ch, n};
	gx_future f;
	int rc = gx_go_parallel(&f, cx_consume, &a, sizeof a, NULL);
	if (rc < 0)
		return xp_fail("gx_go_parallel", rc);
	int64_t t0 = gx_now();
	for (uint64_t v = 1; v <= (uint64_t)n; v++)
		if ((rc = gx_chan_send(ch, &v, GX_FOREVER)) < 0)
			break;
	cx_res r = {0};
	size_t len = 0;
	int frc = gx_future_get(f, &r, sizeof r, &len, GX_FOREVER);
	if (rc < 0)
		return xp_fail("gx_chan_send", rc);
	if (frc < 0)
		return xp_fail("the consumer task", frc);
	uint64_t want = (uint64_t)n, want_sq = 0;
	for (uint64_t v = 1; v <= want; v++)
		want_sq += v * v;
	if (len != sizeof r || r.count != want || r.sum != want * (want + 1) / 2 || r.sq != want_sq) {
		fprintf(stderr, "gx-bench: chanxproc: received %llu values, sum %llu, sum of squares %llu; expected %llu, "
				"%llu, %llu\n",
			(unsigned long long)r.count, (unsigned long long)r.sum, (unsigned long long)r.sq,
			(unsigned long long)want, (unsigned long long)(want * (want + 1) / 2),
			(unsigned long long)want_sq);
		return 1;
	}
	*ns = r.t_last - t0;
	return 0;
}

static int cx_main(void *arg)
{
	cx_state *s = arg;
	gx_chan *ch;
	int rc = gx_chan_make(&ch, sizeof(uint64_t), XP_CHAN_CAP, GX_CHAN_DISTRIBUTED);
	if (rc < 0)
		return xp_fail("gx_chan_make", rc);
	int ret = 1;
	int64_t warm_ns;
	if (s->warm && cx_slice(ch, s->warm, &warm_ns))
		goto err_free;
	if (cx_slice(ch, s->n, &s->ns))
		goto err_free;
	ret = 0;
err_free:
	gx_chan_free(ch);
	return ret;
}

int bench_chanxproc(long n)
{
	cx_state s = {.n = n, .warm = n / 10};
	xp_job j = {.name = "chanxproc", .spin_ns = -1, .fl = ring_rounds(XP_FLOOR_ROUNDS), .fn = cx_main, .arg = &s,
		    .ns = &s.ns, .budget = xp_budget((double)(s.n + s.warm), 1000)};
	int e = xp_measure(&j);
	if (e)
		return e;
	double best = (double)n / ring_min(j.t, XP_SLICES) * 1e3; /* per ns * 1e9 / 1e6 */
	double med = (double)n / median_i64(j.t, XP_SLICES) * 1e3;
	printf("RESULT xcore_chan_throughput %.2f Mmsg/s msgs=%ld slices=%d stat=best median=%.2f capacity=%d "
	       "floor_cacheline_rtt=%.1f spin_ns=%lld cpus=%d,%d\n",
	       best, n, XP_SLICES, med, XP_CHAN_CAP, ring_min(j.t_fl, XP_SLICES) / (double)j.fl.n,
	       (long long)j.cfg.spin_ns, j.pin.worker_cpu, j.pin.main_cpu);
	return 0;
}

/* -- xpingpong and wake: round trips between the main process and a task -- */

typedef struct xpp_arg {
	gx_chan *ping, *pong;
	gx_chan *idle; /* xselect: the select's second case, never sent on; else NULL */
	long rounds;
	long warm; /* the first `warm` rounds are not timed */
} xpp_arg;

typedef struct xpp_res {
	int64_t switches; /* the worker's voluntary context switches */
	int64_t cpu_ns;   /* the worker's CPU time over the timed rounds */
} xpp_res;

/* CPU time this process used so far (every thread, the kernel's share
 * included), in ns. */
static int64_t cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One receive of the echo task: from ping, or (xselect) whichever of
 * ping and idle gx_select picks; a value on idle is an error. */
static int xpp_recv(const xpp_arg *a, uint64_t *v, bool *ok)
{
	if (!a->idle)
		return gx_chan_recv(a->ping, v, ok, GX_FOREVER);
	gx_case cases[2] = {{.chan = a->ping, .op = GX_RECV, .elem = v},
			    {.chan = a->idle, .op = GX_RECV, .elem = v}};
	int i = gx_select(cases, 2, GX_FOREVER);
	if (i < 0)
		return i;
	if (i != 0)
		return -EPROTO; /* nothing is ever sent on idle, nor is it closed */
	*ok = cases[0].ok;
	return 0;
}

/* On the worker: answer every value v on ping with v + 1 on pong. */
static int xpp_echo(const void *arg, size_t len, gx_task_result *res)
{
	xpp_arg a;
	if (len != sizeof a)
		return -EINVAL;
	memcpy(&a, arg, sizeof a);
	int64_t s0 = vol_switches(), c0 = 0;
	int rc = 0;
	for (long i = 0; i < a.rounds; i++) {
		uint64_t v;
		bool ok;
		if (i == a.warm)
			c0 = cpu_now(); /* the timed rounds start (within one round) */
		if ((rc = xpp_recv(&a, &v, &ok)) < 0 || (!ok && (rc = -EPIPE)))
			break;
		v++;
		if ((rc = gx_chan_send(a.pong, &v, GX_FOREVER)) < 0)
			break;
	}
	if (rc < 0) {
		gx_chan_close(a.pong);
		return rc;
	}
	xpp_res r = {vol_switches() - s0, cpu_now() - c0};
	return gx_task_return(res, &r, sizeof r);
}

typedef struct xpp_state {
	size_t cap;
	int sel;                     /* xselect: the task receives with gx_select */
	ring_count c;
	int64_t ns;                  /* this slice */
	int64_t cpu[XP_SLICES];      /* both sides' CPU time over each slice's timed rounds */
	int slice;
	int64_t switches, rounds_all; /* all slices so far, warm-ups included */
} xpp_state;

/* The main side: send 2k+1 on ping, expect 2k+2 on pong. */
static int xpp_rounds(const xpp_arg *a, uint64_t *k, long count)
{
	for (long i = 0; i < count; i++, ++*k) {
		uint64_t v = 2 * *k + 1;
		bool ok;
		int rc = gx_chan_send(a->ping, &v, GX_FOREVER);
		if (rc < 0)
			return xp_fail("gx_chan_send", rc);
		rc = gx_chan_recv(a->pong, &v, &ok, GX_FOREVER);
		if (rc < 0)
			return xp_fail("gx_chan_recv", rc);
		if (!ok || v != 2 * *k + 2) {
			fprintf(stderr, "gx-bench: received %llu (ok %d), expected %llu\n", (unsigned long long)v, ok,
				(unsigned long long)(2 * *k + 2));
			return 1;
		}
	}
	return 0;
}

static int xpp_main(void *arg)
{
	xpp_state *s = arg;
	int ret = 1, rc;
	xpp_arg a = {.rounds = s->c.warm + s->c.n, .warm = s->c.warm};
	if ((rc = gx_chan_make(&a.ping, sizeof(uint64_t), s->cap, GX_CHAN_DISTRIBUTED)) < 0)
		return xp_fail("gx_chan_make", rc);
	if ((rc = gx_chan_make(&a.pong, sizeof(uint64_t), s->cap, GX_CHAN_DISTRIBUTED)) < 0) {
		xp_fail("gx_chan_make", rc);
		goto err_ping;
	}
	if (s->sel && (rc = gx_chan_make(&a.idle, sizeof(uint64_t), s->cap, GX_CHAN_DISTRIBUTED)) < 0) {
		xp_fail("gx_chan_make", rc);
		goto err_pong;
	}
	gx_future f;
	if ((rc = gx_go_parallel(&f, xpp_echo, &a, sizeof a, NULL)) < 0) {
		xp_fail("gx_go_parallel", rc);
		goto err_idle;
	}
	int64_t s0 = vol_switches();
	uint64_t k = 0;
	int failed = xpp_rounds(&a, &k, s->c.warm);
	int64_t t0 = gx_now(), c0 = cpu_now();
	failed = failed || xpp_rounds(&a, &k, s->c.n);
	s->ns = gx_now() - t0;
	int64_t cpu_main = cpu_now() - c0;
	int64_t sw = vol_switches() - s0;
	if (failed)
		gx_chan_close(a.ping); /* the echo task ends */
	xpp_res r = {0};
	size_t len = 0;
	rc = gx_future_get(f, &r, sizeof r, &len, GX_FOREVER);
	if (!failed && rc < 0)
		xp_fail("the echo task", rc);
	else if (!failed && len == sizeof r) {
		s->switches += sw + r.switches;
		s->rounds_all += a.rounds;
		if (s->slice < XP_SLICES)
			s->cpu[s->slice++] = cpu_main + r.cpu_ns;
		ret = 0;
	}
err_idle:
	if (a.idle)
		gx_chan_free(a.idle);
err_pong:
	gx_chan_free(a.pong);
err_ping:
	gx_chan_free(a.ping);
	return ret;
}

/* The figures' names, by [sel][wake]: the round trip, its CPU time, the
 * cores it keeps busy. */
static const char *const xpp_names[2][2][3] = {
	{{"xcore_pingpong_rtt", "xcore_pingpong_cpu", "xcore_pingpong_cores"},
	 {"xproc_wake_rtt", "xproc_wake_cpu", "xproc_wake_cores"}},
	{{"xselect_rtt", "xselect_cpu", "xselect_cores"},
	 {"xselect_wake_rtt", "xselect_wake_cpu", "xselect_wake_cores"}},
};

/* n round trips per slice. */
int bench_xpp(long n, size_t cap, int wake, int sel)
{
	static const char *const workload[2][2] = {{"xpingpong", "wake"}, {"xselect", "xselectwake"}};
	const char *const *name = xpp_names[!!sel][!!wake];
	ring_count c = ring_rounds(n);
	xpp_state s = {.cap = cap, .sel = sel, .c = c};
	/* a select over a distributed channel may poll (sleeps up to 1 ms) */
	double worst = wake || sel ? 1e6 : 1e5;
	xp_job j = {.name = workload[!!sel][!!wake], .spin_ns = wake ? 0 : -1, .futex_floor = wake, .fl = c,
		    .fn = xpp_main, .arg = &s, .ns = &s.ns, .budget = xp_budget((double)(c.n + c.warm), worst)};
	int e = xp_measure(&j);
	if (e)
		return e;
	const char *fl_name = j.fl_name;
	const int64_t *t_fl = j.t_fl, *t_x = j.t;
	double fl = ring_min(t_fl, XP_SLICES) / (double)c.n;
	double best = ring_min(t_x, XP_SLICES) / (double)c.n;
	double med = median_i64(t_x, XP_SLICES) / (double)c.n;
	double spr = (double)s.switches / (double)s.rounds_all;
	if (wake && spr < 1.5)
		fprintf(stderr,
			"gx-bench: %s: the two sides slept %.2f times a round trip, not 2: %s is not a "
			"wake-up latency\n",
			j.name, spr, name[0]);
	/* what the latency costs: CPU time of both sides per round trip, and
	 * cores kept busy (CPU time over wall time), medians of the slices */
	int64_t busy[XP_SLICES];
	for (int i = 0; i < XP_SLICES; i++)
		busy[i] = t_x[i] ? s.cpu[i] * 1000 / t_x[i] : 0; /* thousandths of a core */
	double cpu_round = median_i64(s.cpu, XP_SLICES) / (double)c.n;
	double cores = median_i64(busy, XP_SLICES) / 1000.0;
	printf("RESULT %s %.1f ns rounds=%ld slices=%d stat=best median=%.1f %s=%.1f vs_floor=%.2f "
	       "sleeps_per_round=%.3f cpu_per_round=%.1f cores_busy=%.2f capacity=%zu spin_ns=%lld cpus=%d,%d%s\n",
	       name[0], best, c.n, XP_SLICES, med, fl_name, fl, best / fl, spr, cpu_round, cores, cap,
	       (long long)j.cfg.spin_ns, j.pin.worker_cpu, j.pin.main_cpu, sel ? " select=ping,idle" : "");
	printf("RESULT %s %.1f ns (CPU time of both sides per round trip, median of the slices)\n", name[1],
	       cpu_round);
	printf("RESULT %s %.2f cores (CPU time of both sides over wall time, median of the slices)\n", name[2],
	       cores);
	/* the floor on a line of its own too, so that the report lists it
	 * next to the figure it was measured for */
	printf("RESULT %s %.1f ns rounds=%ld slices=%d stat=best (measured in this program, before each slice)\n",
	       fl_name, fl, c.n, XP_SLICES);
	return 0;
}
