/*
 * bench.h: what the files of gx-bench share (internal to perf/bench/).
 *
 *   main.c      usage, arguments, which workload runs
 *   local.c     yield, spawn, idle, pingpong, select (one process)
 *   floors.c    the two-process harness (a pair of pinned children over a
 *               shared control page) and the machine's floors on it
 *   ring.c      the bare MPMC ring between two processes
 *   xp.c        the harness of the workloads that run gx_run with workers
 *   xproc.c     chanxproc, xpingpong, wake, xselect, xselectwake
 *   parallel.c  parallel, dispatch
 *   restart.c   restart, quiet
 *   config.c    config
 *
 * Anything used by one file only stays static there.
 */
#ifndef GX_PERF_BENCH_H
#define GX_PERF_BENCH_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <gonex/gonex.h>

/* ---- the workloads (main.c dispatches to them) ---- */

/* gx_run main functions; arg points to the count N (a long). */
int bench_yield(void *arg);
int bench_spawn(void *arg);
int bench_idle(void *arg);
int bench_pingpong(void *arg);
int bench_select(void *arg);
/* gx_run main function; arg unused. */
int bench_config(void *arg);

/* The rest return the exit status (0, 1, or 2 for a refused GONEX_*). */
int bench_ring(long n, size_t batch);
int bench_chanxproc(long n);
/* xpingpong (wake 0), wake (1); sel: xselect, xselectwake */
int bench_xpp(long n, size_t cap, int wake, int sel);
int bench_parallel(long tasks, long units, long workers, long batch);
int bench_dispatch(long n);
int bench_restart(long n);
int bench_quiet(long seconds, long workers);

#define RING_BATCH 256      /* values per batch by default (see ring.c) */
#define RING_BATCH_MAX 1024 /* the most `ring N B` takes */

/* ---- the two-process harness and the floors (floors.c) ---- */

/* The control page shared with the children: what the two sides write to
 * each other sits on cache lines of its own. The parent resets it before
 * each pair. */
typedef struct ring_ctl {
	_Alignas(64) _Atomic uint64_t arrived; /* barrier arrivals */
	_Alignas(64) _Atomic uint64_t line;    /* floor_cacheline: the line */
	_Alignas(64) _Atomic uint32_t fping;   /* floor_futex: side 1 sleeps here */
	_Atomic uint32_t sping;                /* floor_futex: side 0 -> 1 value */
	_Alignas(64) _Atomic uint32_t fpong;   /* floor_futex: side 0 sleeps here */
	_Atomic uint32_t spong;                /* floor_futex: side 1 -> 0 value */
	_Alignas(64) int64_t ns;               /* the measuring side's interval */
} ring_ctl;

extern ring_ctl *rctl;  /* mapped shared by the workload before any pair */
extern int ring_cpu[2]; /* set by two_cpus */

/* ring_cpu[] gets the first two CPUs of the affinity mask; -1 (reported)
 * when there are fewer. */
int two_cpus(const char *who);

/* Rendezvous number round (1, 2, ...) of the two sides. */
void ring_barrier(uint64_t round);

typedef int (*ring_side_fn)(int side, void *arg);

/* Around a series of ring_pair calls: SIGCHLD blocked, then the mask as
 * it was before. */
void ring_block_chld(void);
void ring_unblock_chld(void);

/* fn(0, arg) and fn(1, arg) in two children pinned to ring_cpu[0] and
 * ring_cpu[1], both reaped: 0, or -1 (reported). See floors.c. */
int ring_pair(const char *what, ring_side_fn fn, void *arg);

typedef struct ring_count {
	long n, warm; /* one slice: timed rounds (values), warm-up rounds */
} ring_count;

/* n rounds (at least 1), with a tenth of them as warm-up. */
ring_count ring_rounds(long n);

/* The floors, as sides for ring_pair over a ring_count: rctl->ns gets the
 * time of c->n round trips. */
int cl_side(int side, void *arg);    /* floor_cacheline_rtt */
int futex_side(int side, void *arg); /* floor_futex_rtt */

/* The least of v[0..n-1]. */
double ring_min(const int64_t *v, int n);

/* ---- the harness of the gx_run workloads (xp.c) ---- */

#define XP_SLICES 5
#define XP_FLOOR_ROUNDS 100000 /* cache-line floor for chanxproc and dispatch */

/* "gx-bench: call: strerror(-rc)" on stderr; 1. */
int xp_fail(const char *call, int rc);

/* The configuration of one run (spin_ns < 0 keeps the default), with the
 * GONEX_* overrides applied. -EINVAL when one is refused (printed). */
int xp_config(gx_config *c, int workers, int64_t spin_ns);

/* The alarm for a gx_run of ops operations of at most worst_ns each. */
unsigned xp_budget(double ops, double worst_ns);

/* gx_run under an alarm of budget seconds. 0, or 1 (main_fn failed or
 * gx_run refused: said). */
int xp_run(const gx_config *c, gx_main_fn fn, void *arg, unsigned budget);

/* qsort's comparison of two int64_t. */
int cmp_i64(const void *a, const void *b);

/* The median of v[0..n-1], n <= XP_SLICES. */
double median_i64(const int64_t *v, int n);

typedef struct xp_pin {
	cpu_set_t old;
	int main_cpu, worker_cpu; /* -1: not pinned */
} xp_pin;

/* A cross-process workload (one worker; the main process and worker 0 on
 * two CPUs), all but its report. */
typedef struct xp_job {
	const char *name;     /* the workload, for messages */
	int64_t spin_ns;      /* the spin budget; < 0: the default */
	int futex_floor;      /* the floor before each slice: 0 cache line, 1 futex */
	ring_count fl;        /* its round trips */
	gx_main_fn fn;        /* one slice, run by gx_run's main_fn */
	void *arg;            /* for fn */
	const int64_t *ns;    /* where fn leaves the slice's time */
	unsigned budget;      /* the alarm of each gx_run (xp_budget) */
	/* set by xp_measure */
	const char *fl_name;  /* the floor's RESULT name */
	gx_config cfg;        /* the configuration that ran */
	xp_pin pin;           /* where the last slice's two sides ran */
	int64_t t_fl[XP_SLICES], t[XP_SLICES]; /* the floors' and the slices' times */
} xp_job;

/* Two CPUs, the configuration (one worker, j->spin_ns when >= 0, GONEX_*
 * applied) and the shared control page; then XP_SLICES slices, each the
 * floor then a gx_run in which main_fn pins the main process to
 * ring_cpu[1], runs j->fn and puts its mask back. 0, or the exit status:
 * 1 (no two CPUs, no page, a floor or a slice failed), 2 (bad GONEX_*). */
int xp_measure(xp_job *j);

/* Worker i as the figures show it (gx_stats_snapshot): 0, or -errno (then
 * *out is zeroed). */
int xp_worker(int i, gx_stats_worker *out);

#endif
