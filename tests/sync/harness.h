/*
 * Shared by the sync suites. How they force interleavings: one thread runs
 * the coroutines and switches only at a yield or a park, so a coroutine that
 * bumps `arrived` just before a blocking call has parked in it by the time
 * anyone else sees the bump. Who got what, and when, is recorded in
 * `trace`. No test passes or fails on timing, except that a short deadline
 * must end in -ETIMEDOUT; a check that a waiter with a deadline is still
 * waiting is made only while before(its deadline).
 */
#ifndef GX_TEST_SYNC_HARNESS_H
#define GX_TEST_SYNC_HARNESS_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <gonex/gonex.h>

#define RUN(fn, arg) cr_expect_eq(gx_run(NULL, fn, arg), 0)

static char trace[256];
static int ntrace;
static int arrived, finished;

static inline void reset(void)
{
	memset(trace, 0, sizeof trace);
	ntrace = 0;
	arrived = finished = 0;
}

static inline void rec(char c)
{
	if (ntrace < (int)sizeof trace - 1)
		trace[ntrace++] = c;
}

static inline void go(gx_fn fn, void *arg)
{
	cr_assert_geq(gx_go(fn, arg), 1);
}

static inline void yields(int n)
{
	for (int i = 0; i < n; i++)
		gx_yield();
}

/* Yield (then sleep a little, so timers can fire) until *v >= n; false
 * after 5 s, which only a lost wake-up explains. */
static inline bool wait_for(const int *v, int n)
{
	int64_t end = gx_now() + 5 * GX_SECOND;
	for (int i = 0; *v < n; i++) {
		if (gx_now() > end)
			return false;
		if (i < 100)
			gx_yield();
		else
			gx_sleep(100 * GX_MICROSECOND);
	}
	return true;
}

/* The deadline of a waiter that a test checks on while it waits: far
 * enough ahead that the set-up (coroutines arriving, a few yields) ends
 * before it even under valgrind on a loaded machine, where 5 ms did not. */
#define WAIT_MARGIN (200 * GX_MILLISECOND)

/* Whether t is still ahead: a timer for t cannot have fired yet (timers
 * fire only once gx_now() >= t), so a waiter whose deadline is t is still
 * waiting unless something else woke it. */
static inline bool before(int64_t t)
{
	return gx_now() < t;
}

/* Spawn fn(arg) and return once it has reached its blocking call. */
static inline void go_arrive(gx_fn fn, void *arg)
{
	int want = arrived + 1;
	go(fn, arg);
	cr_assert(wait_for(&arrived, want), "the coroutine never arrived");
}

#endif
