/*
 * gonex/breaker.h: circuit breakers and fallbacks for gx_go_parallel.
 *
 * A breaker sits in front of task submission. It is shared by every
 * process of the runtime (it lives in the arena) and applies to the tasks
 * that name it (gx_par_opts.breaker) and, when made with opts.fn, to every
 * task of that function. With GONEX_CIRCUIT_BREAKER=1 every function
 * without a breaker of its own gets one with the default options on its
 * first submission (named after the function).
 *
 * States, as in the usual pattern:
 *   closed     tasks run; `failures` failed tasks in a row open it;
 *   open       tasks are answered at once, without dispatching, until
 *              `cooldown` has passed; then the next submission moves it to
 *   half-open  up to `probes` tasks run as trials; once that many have
 *              succeeded it closes; any failure opens it again (a new
 *              cool-down), and other submissions meanwhile are answered as
 *              if open.
 *
 * A task fails when its code is < 0 (-ECANCELED from a cancelling shutdown
 * does not count), including -ETIMEDOUT from GONEX_WORKER_TIMEOUT_MS and
 * -EOWNERDEAD after its re-runs ran out.
 *
 * Retries: a failed task runs again in the same worker, up to `retries`
 * more times, after `backoff` (doubling, up to `backoff_max`, with +-25%
 * jitter), as long as the breaker lets tasks through. Every attempt counts
 * toward opening it.
 *
 * Answers when open, or when a task failed for good:
 *   fallback   when set: fallback(arg, len, res) runs in the process that
 *              decided (the submitter when open; the worker after a
 *              failure; the main process after a timeout or a death), and
 *              its code and result bytes are the future's; it runs once,
 *              whatever it returns; after a timeout only for arguments of
 *              at most GX_TASK_INLINE bytes (the timed-out task may still
 *              use a larger argument's chunk);
 *   last_good  else, when set and there is one: the result bytes and code
 *              of the most recent task that succeeded (results of at most
 *              GX_BREAKER_LAST_MAX bytes are kept);
 *   otherwise  the future fails with -EBUSY when open, or keeps the
 *              task's own error.
 * gx_future_origin tells which of these answered.
 */
#ifndef GONEX_BREAKER_H
#define GONEX_BREAKER_H

#include <stdint.h>

#include <gonex/api.h>
#include <gonex/parallel.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GX_BREAKER_MAX 64
#define GX_BREAKER_LAST_MAX 1024

typedef enum { GX_BREAKER_CLOSED = 0, GX_BREAKER_OPEN = 1, GX_BREAKER_HALF_OPEN = 2 } gx_breaker_state;

typedef struct gx_breaker_opts {
	gx_task_fn fn;        /* every task of fn goes through it; NULL: only
			       * tasks that name it */
	uint32_t failures;    /* failed tasks in a row that open it, 1..1000000 */
	uint32_t probes;      /* half-open trial tasks, 1..1000 */
	int64_t cooldown;     /* ns open before half-open, 1 us..1 day */
	uint32_t retries;     /* re-runs of a failed task, 0..100 */
	int64_t backoff;      /* ns before the first re-run, 0..1 min */
	int64_t backoff_max;  /* ns, >= backoff, up to 1 min */
	gx_task_fn fallback;  /* NULL: none */
	int last_good;        /* answer with the last good result */
} gx_breaker_opts;

#ifdef __cplusplus
/* in field order: designated initializers need C++20 */
#define GX_BREAKER_OPTS_INIT {0, 5, 1, 1000000000, 0, 1000000, 100000000, 0, 0}
#else
#define GX_BREAKER_OPTS_INIT                                                                            \
	{.fn = 0, .failures = 5, .probes = 1, .cooldown = 1000000000, .retries = 0, .backoff = 1000000,      \
	 .backoff_max = 100000000, .fallback = 0, .last_good = 0}
#endif

typedef struct gx_breaker gx_breaker;

/*
 * Make a breaker named name (at most 31 bytes, copied) with options o
 * (NULL: the defaults). From any process of the runtime; the breaker
 * lasts until gx_run returns. Errors: -EINVAL (name NULL, empty or too
 * long, an option out of range, fn or fallback not code), -EEXIST (the
 * name, or opts.fn, has a breaker already: *out is set to it), -ENOSPC
 * (GX_BREAKER_MAX made), -EPERM outside gx_run.
 */
GX_API int gx_breaker_make(gx_breaker **out, const char *name, const gx_breaker_opts *o);

/* The breaker called name, or NULL. */
GX_API gx_breaker *gx_breaker_find(const char *name);

/* Its state now (an open one past its cool-down still reads open until
 * a submission moves it), or -EINVAL for a bogus handle. */
GX_API int gx_breaker_state_get(const gx_breaker *b);

/* Close it and forget its failures (an operator's override). 0, -EINVAL. */
GX_API int gx_breaker_reset(gx_breaker *b);

#ifdef __cplusplus
}
#endif

#endif
