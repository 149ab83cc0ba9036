/*
 * gonex/parallel.h: running functions on worker processes.
 *
 * gx_run with workers >= 1 (gx_config.workers, GONEX_WORKERS) starts worker
 * processes, each with its own scheduler and event loop, all sharing one
 * arena (gonex/shm.h). gx_go_parallel(fn, arg, len, opts) copies the
 * argument bytes into a task, hands it to a worker chosen by the configured
 * strategy and returns a future; the worker runs fn in a coroutine of its
 * own (every local primitive works there, and fn may call gx_go_parallel
 * itself); the result bytes and error code come back through the future.
 *
 * Processes: the workers are forked by a small spawner process that
 * gx_run forks before anything else starts, so every worker begins from a
 * clean process image with the same code and arena addresses. Each worker
 * dies with its parent (PR_SET_PDEATHSIG), the spawner with the main
 * process; gx_run returns only after all of them were reaped. SIGINT and
 * SIGTERM to the main process stop the workers and the spawner, then the
 * main process exits with 128 + the signal.
 *
 * With workers = 0 everything runs in the calling process: gx_go_parallel
 * runs fn in a local coroutine, with the same future API.
 *
 * Function pointers: fn must point into the executable code of the program
 * or a library loaded before gx_run (the workers have the same mappings);
 * anything else is refused with -EINVAL.
 */
#ifndef GONEX_PARALLEL_H
#define GONEX_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include <gonex/api.h>
#include <gonex/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest argument and result: a pool chunk. Up to GX_TASK_INLINE bytes
 * travel inside the task record or the future, larger ones in a chunk. */
#define GX_TASK_MAX ((size_t)1 << 20)
#define GX_TASK_INLINE 64

typedef struct gx_task_result gx_task_result;

/*
 * A task: arg/len are the bytes given to gx_go_parallel (a copy, valid
 * during the call). It may set result bytes with gx_task_return; its return
 * value (>= 0, or -errno) is the future's error code.
 */
typedef int (*gx_task_fn)(const void *arg, size_t len, gx_task_result *res);

/* Set the task's result bytes (copied; at most GX_TASK_MAX). 0, -EMSGSIZE,
 * -ENOMEM (no chunk for a large result). Calling it again replaces them. */
GX_API int gx_task_return(gx_task_result *res, const void *data, size_t len);

/* A future: a handle (index and generation), so a stale one is detected. */
typedef struct gx_future {
	uint64_t h;
} gx_future;

struct gx_breaker;

typedef struct gx_par_opts {
	int worker;       /* -1: the strategy picks; otherwise queued on that
			   * worker (an idle one may still steal it when work
			   * stealing is on) */
	int64_t weight;   /* predictive strategy: cost hint, 0 = learn it */
	const char *name; /* for stats, kept as a pointer: a string in the
			   * program or a library loaded before gx_run (a
			   * literal); any other is ignored */
	struct gx_breaker *breaker; /* gonex/breaker.h; NULL: the function's
				     * own breaker, if it has one */
	gx_until until;   /* how long the call may wait for room in a full
			   * inbox (-ETIMEDOUT / the context's error after);
			   * GX_FOREVER, and an all-zero one, wait as long as
			   * it takes */
} gx_par_opts;

#ifdef __cplusplus
/* designated initializers need C++20 */
#define GX_PAR_OPTS_INIT {-1, 0, 0, 0, {-1, 0}}
#else
#define GX_PAR_OPTS_INIT {.worker = -1, .weight = 0, .name = 0, .breaker = 0, .until = {.deadline = -1, .ctx = 0}}
#endif

/*
 * Run fn(arg, len) on a worker. Returns 0 and sets *out, or: -EINVAL (fn
 * NULL or not code, out NULL, bad worker index), -EMSGSIZE (len >
 * GX_TASK_MAX), -EPERM (outside gx_run), -EAGAIN (the future table is
 * full: free some; it has an eighth of the arena, 1024 to 65536 slots),
 * -ENOMEM (no chunk for a large argument), -ESHUTDOWN
 * (the runtime is stopping), -ETIMEDOUT or the context's error (opts.until
 * ended while every inbox it tried was full).
 */
GX_API int gx_go_parallel(gx_future *out, gx_task_fn fn, const void *arg, size_t len, const gx_par_opts *opts);

/*
 * Run n tasks fn(args + i * len, len), i = 0..n-1, with out[i] the future
 * of task i: as n calls of gx_go_parallel, but dispatched in batches. The
 * tasks are shared among the active workers (or all go to opts.worker),
 * and each worker's share, up to 16 tasks, enters its inbox as one batch:
 * one publish and at most one wake-up for all of them. Each task is still
 * taken, run, re-run after a worker's death and answered on its own.
 * Returns n; or k < n when an error stopped the submission part-way
 * (tasks 0..k-1 were submitted, out[k..n-1] are zero handles, and a call
 * for the rest tells the error); or, when none was submitted, the errors
 * of gx_go_parallel (-EINVAL also for n > INT_MAX, or args NULL with n
 * and len non-zero). Tasks that need more than a record (an argument over
 * GX_TASK_INLINE bytes), a function with a breaker, the predictive
 * strategy's costs, and a runtime without workers, go one at a time: the
 * same results, without the batch.
 */
GX_API int gx_go_parallel_n(gx_future *out, size_t n, gx_task_fn fn, const void *args, size_t len,
			    const gx_par_opts *opts);

/*
 * Wait for a future as u allows. On completion returns the task's code
 * (>= 0 or its -errno), and when buf is non-NULL copies up to cap result
 * bytes there and stores the full length in *len (when len is non-NULL).
 * The future stays valid until gx_future_free. Errors: -ETIMEDOUT /
 * -ECANCELED (u ended; the task goes on), -EINVAL (a freed or bogus
 * future).
 */
GX_API int gx_future_wait(gx_future f, void *buf, size_t cap, size_t *len, gx_until u);

/* As gx_future_wait without waiting: -EAGAIN while the task runs. */
GX_API int gx_future_try(gx_future f, void *buf, size_t cap, size_t *len);

/* Release a future (done or not: a running task's result is dropped).
 * -EINVAL for a freed or bogus one. */
GX_API int gx_future_free(gx_future f);

/* Wait, copy, free in one call (the usual case). The future is freed once
 * it is done, whatever code the task gave (a task's own -ETIMEDOUT, or
 * the watchdog's, included); when the wait itself ends first (u) it
 * returns -ETIMEDOUT / -ECANCELED and the future stays, to wait again or
 * free. */
GX_API int gx_future_get(gx_future f, void *buf, size_t cap, size_t *len, gx_until u);

/* Who answered a finished future (see gonex/breaker.h). */
typedef enum {
	GX_ORIGIN_TASK = 0,      /* the task itself (or the runtime's error) */
	GX_ORIGIN_FALLBACK = 1,  /* the breaker's fallback function */
	GX_ORIGIN_LAST_GOOD = 2, /* the breaker's last good result */
	GX_ORIGIN_REJECTED = 3,  /* an open breaker, with nothing to answer:
				  * the code is -EBUSY */
} gx_origin;

/* gx_origin of a finished future, -EAGAIN while it runs, -EINVAL for a
 * freed or bogus one. */
GX_API int gx_future_origin(gx_future f);

/* This process's worker index (0..workers-1), or -1 in the main process. */
GX_API int gx_worker_id(void);

/* Number of workers running now (autoscaling changes it). */
GX_API int gx_workers(void);

/* Per-worker figures (pid, CPU, state, tasks, steals, restarts, queue):
 * gonex/stats.h, gx_stats_snapshot. */

#ifdef __cplusplus
}
#endif

#endif
