/*
 * gonex/stats.h: what the runtime is doing, without a debugger.
 *
 * Figures (GONEX_STATS, on by default) live in the shared arena, one shard
 * per process, so any process of the runtime, or another program of the
 * same user (perf/gonex-stat), reads everyone's without asking:
 *
 * - per function (tasks run by gx_go_parallel, keyed by function and
 *   gx_par_opts.name) and per named profiling section: count (times the
 *   function returned, retries included), errors (tasks answered with a
 *   code < 0: their own, or the runtime's -ETIMEDOUT / -EOWNERDEAD),
 *   retries (re-runs after a worker died, and breaker retries), fallbacks
 *   answered, breaker rejections, and a histogram of
 *   run times (the task function from start to return, in the process that
 *   ran it; queueing not included) with p50, p90, p99, p99.9 and max;
 * - per worker: pid, CPU, state, tasks, steals, restarts, wake-ups (times
 *   its process woke from blocking), idle time (blocked in the kernel with
 *   no coroutine to run: waiting for work, or its tasks all waiting on I/O
 *   or timers) and busy time (the rest of its life: running coroutines,
 *   and spinning before a sleep, which burns the CPU too), hence
 *   utilisation, and the age of its heartbeat;
 * - per circuit breaker (gonex/breaker.h): state and counts.
 *
 * Counts are exact. Run times are measured for every call of a function
 * whose mean is 2 us or more and for the first 64 calls of each; past
 * that, one call in 128 is timed, so the histogram of a very short task is
 * a sample (`timed` says how many went in).
 *
 * Without workers (GONEX_WORKERS=0) the figures of gx_go_parallel tasks
 * and sections run in the calling process are kept the same way.
 */
#ifndef GONEX_STATS_H
#define GONEX_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <gonex/api.h>
#include <gonex/config.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GX_STATS_FN_MAX 64
#define GX_STATS_BREAKER_MAX 64
#define GX_STATS_NAME 32

typedef enum { GX_STATS_TASK = 1, GX_STATS_SECTION = 2 } gx_stats_kind;

typedef struct gx_stats_fn {
	char name[GX_STATS_NAME]; /* gx_par_opts.name, the symbol, or 0x... */
	gx_stats_kind kind;
	uint64_t count, errors, retries, fallbacks, rejected;
	uint64_t timed; /* values in the histogram */
	int64_t mean_ns, p50_ns, p90_ns, p99_ns, p999_ns, max_ns;
} gx_stats_fn;

typedef struct gx_stats_worker {
	int pid;        /* 0 when the slot never ran */
	int cpu;        /* pinned CPU or -1 */
	int state;      /* 0 off, 1 starting, 2 ready, 3 draining, 4 dead */
	int healthy;    /* ready, and its heartbeat is recent whenever it has
			 * work (health monitoring on) */
	uint64_t tasks, steals, restarts, wakeups, queued, running;
	int64_t busy_ns, idle_ns; /* since the current process started */
	double util;    /* busy / (busy + idle), 0..1 */
	int64_t heartbeat_age_ns; /* -1 without heartbeats, or while it
				   * rests (nothing to run) */
} gx_stats_worker;

typedef struct gx_stats_breaker {
	char name[GX_STATS_NAME];
	int state;      /* gx_breaker_state */
	uint64_t successes, failures, opens, rejected, fallbacks, last_goods;
} gx_stats_breaker;

typedef struct gx_stats {
	int64_t now_ns;  /* gx_now() when taken (CLOCK_MONOTONIC) */
	int main_pid;
	int enabled;     /* GONEX_STATS was on */
	int degraded;    /* tasks run in the main process: no worker left */
	int nworkers;    /* worker slots */
	gx_stats_worker w[GX_MAX_WORKERS];
	int nfn;
	gx_stats_fn fn[GX_STATS_FN_MAX];
	int nbreaker;
	gx_stats_breaker breaker[GX_STATS_BREAKER_MAX];
	/* added later: new fields go last */
	uint64_t main_tasks; /* tasks the main process took from the inboxes
			      * and ran while it waited (GONEX_MAIN_HELPS) */
} gx_stats;

/* The figures of this runtime now. 0, -EINVAL (out NULL), -EPERM outside
 * gx_run or before anything made the arena (no gx_go_parallel yet without
 * workers). */
GX_API int gx_stats_snapshot(gx_stats *out);

/* Write s as one JSON object (and a newline) to fd. 0 or -errno. */
GX_API int gx_stats_json(const gx_stats *s, int fd);

/*
 * Reading another program's figures (what gonex-stat does): open finds
 * the gonex arena held by process pid (/proc/PID/fd, which the kernel
 * opens only for the same user or root) and maps it read-only. 0, -ENOENT
 * (no such process, or it has no arena), -EACCES / -EPERM (another user),
 * -EPROTO (not an arena of this library's layout), -ENOMEM.
 */
typedef struct gx_stats_src gx_stats_src;
GX_API int gx_stats_open(int pid, gx_stats_src **out);
/* 0, or -ESRCH once the program has ended, -EPROTO for a broken layout. */
GX_API int gx_stats_read(gx_stats_src *src, gx_stats *out);
GX_API void gx_stats_close(gx_stats_src *src);

/*
 * Named profiling sections: time a stretch of code in a coroutine.
 *
 *     gx_prof p = gx_prof_begin("parse");
 *     ...
 *     gx_prof_end(&p);
 *
 * name must outlive the program's use of it (a string literal): sections
 * are keyed by its address. Sections show in the snapshot as kind
 * GX_STATS_SECTION; every section is timed. A no-op with stats off or
 * outside gx_run. gx_prof_end(&p) with err < 0 counts an error:
 * gx_prof_end_err(&p, err).
 */
typedef struct gx_prof {
	const char *name;
	int64_t t0;
} gx_prof;

GX_API gx_prof gx_prof_begin(const char *name);
GX_API void gx_prof_end(gx_prof *p);
GX_API void gx_prof_end_err(gx_prof *p, int err);

#ifdef __cplusplus
}
#endif

#endif
