/*
 * gonex/time.h: clocks and sleeping.
 *
 * Times are int64_t nanoseconds on CLOCK_MONOTONIC. A sleeping coroutine is
 * parked on the process's timer heap; the loop waits (in io_uring, or epoll)
 * only until the nearest deadline, so sleepers cost no CPU. A sleep never
 * ends before its deadline; sleepers with earlier deadlines wake first, and
 * equal deadlines wake in the order they were set.
 */
#ifndef GONEX_TIME_H
#define GONEX_TIME_H

#include <stdint.h>

#include <gonex/api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GX_NANOSECOND ((int64_t)1)
#define GX_MICROSECOND ((int64_t)1000)
#define GX_MILLISECOND ((int64_t)1000000)
#define GX_SECOND ((int64_t)1000000000)

struct gx_ctx;

/*
 * How long a blocking call may wait: until an absolute deadline, until a
 * context ends, both, or forever. Passed by value (two registers).
 *   GX_FOREVER               no limit
 *   gx_deadline(t)           until gx_now() >= t: then -ETIMEDOUT
 *   gx_timeout(ns)           gx_deadline(gx_now() + ns), saturating
 *   gx_ctx_until(ctx)        until ctx ends: then gx_ctx_err(ctx), i.e.
 *                            -ECANCELED or -ETIMEDOUT
 * A deadline already past or a context already ended makes a call that
 * would block return its error at once; a call that can complete without
 * blocking completes.
 */
typedef struct gx_until {
	int64_t deadline; /* CLOCK_MONOTONIC ns, -1 for none */
	struct gx_ctx *ctx; /* NULL for none */
} gx_until;

#ifdef __cplusplus
#define GX_FOREVER (gx_until{-1, 0}) /* C++ has no compound literals */
#else
#define GX_FOREVER ((gx_until){.deadline = -1, .ctx = 0})
#endif

/* Now on CLOCK_MONOTONIC, in nanoseconds. Valid anywhere. */
GX_API int64_t gx_now(void);

/* Park the running coroutine for at least ns nanoseconds (ns <= 0 returns
 * at once). Returns 0, -EPERM outside a coroutine, -ENOMEM when the timer
 * heap cannot grow. */
GX_API int gx_sleep(int64_t ns);

/* Park the running coroutine until gx_now() >= deadline. Same errors. */
GX_API int gx_sleep_until(int64_t deadline);

/* Sleep for ns unless u ends first: 0 after the full sleep, otherwise u's
 * error (-ETIMEDOUT when u's deadline comes first, the context's error). */
GX_API int gx_sleep_for(int64_t ns, gx_until u);

static inline gx_until gx_deadline(int64_t deadline)
{
	gx_until u = {deadline, 0};
	return u;
}

/* now + ns for ns >= 0, saturating at INT64_MAX (a far-future time). */
static inline int64_t gx_time_after(int64_t ns)
{
	int64_t now = gx_now();
	if (ns <= 0)
		return now;
	return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

static inline gx_until gx_timeout(int64_t ns)
{
	gx_until u = {gx_time_after(ns), 0};
	return u;
}

static inline gx_until gx_ctx_until(struct gx_ctx *ctx)
{
	gx_until u = {-1, ctx};
	return u;
}

#ifdef __cplusplus
}
#endif

#endif
