/*
 * Timers and sleeping.
 *
 * What: one binary min-heap per process of gx_timer records, keyed by
 * (when, seq). Records live with their owners (a sleeper's record is on its
 * stack); the heap holds pointers. The root context asks gx_timer_next() for
 * the loop's wait deadline and calls gx_timer_fire(now) after every wait.
 *
 * Invariants:
 * - t->idx == 0 iff t is not in the heap; otherwise heap[t->idx - 1] == t;
 * - heap[i] <= both children by (when, seq);
 * - a timer fires only when gx_now() >= when, so a sleep never ends early,
 *   and fires earliest (when, seq) first, so wake-ups keep deadline order.
 *
 * Rejected: a timer wheel (O(1) but coarse; deadline order within a slot is
 * lost and sleeps could end early); one io_uring TIMEOUT per sleeper (a CQE
 * and a kernel hrtimer each, and no ordering guarantee between CQEs).
 */
#include "core/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "core/sched.h"

#include <gonex/time.h>

static struct {
	gx_timer **heap;
	uint32_t n, cap;
	uint64_t seq;
} T;

int64_t gx_clock_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * GX_SECOND + ts.tv_nsec;
}

int64_t gx_now(void)
{
	return gx_clock_now();
}

static inline int gx_timer_less(const gx_timer *a, const gx_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void gx_timer_set(uint32_t i, gx_timer *t)
{
	T.heap[i] = t;
	t->idx = i + 1;
}

static void gx_timer_up(uint32_t i)
{
	gx_timer *t = T.heap[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!gx_timer_less(t, T.heap[p]))
			break;
		gx_timer_set(i, T.heap[p]);
		i = p;
	}
	gx_timer_set(i, t);
}

static void gx_timer_down(uint32_t i)
{
	gx_timer *t = T.heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= T.n)
			break;
		if (c + 1 < T.n && gx_timer_less(T.heap[c + 1], T.heap[c]))
			c++;
		if (!gx_timer_less(T.heap[c], t))
			break;
		gx_timer_set(i, T.heap[c]);
		i = c;
	}
	gx_timer_set(i, t);
}

int gx_timer_add(gx_timer *t)
{
	if (T.n == T.cap) {
		uint32_t cap = T.cap ? T.cap * 2 : 64;
		gx_timer **h = realloc(T.heap, cap * sizeof *h);
		if (!h)
			return -ENOMEM;
		T.heap = h;
		T.cap = cap;
	}
	t->seq = T.seq++;
	T.heap[T.n] = t;
	T.n++;
	gx_timer_up(T.n - 1);
	return 0;
}

int gx_timer_del(gx_timer *t)
{
	if (t->idx == 0)
		return 0;
	uint32_t i = t->idx - 1;
	t->idx = 0;
	T.n--;
	if (i != T.n) {
		gx_timer_set(i, T.heap[T.n]);
		gx_timer_down(i);
		gx_timer_up(T.heap[i]->idx - 1);
	}
	return 1;
}

int64_t gx_timer_next(void)
{
	return T.n ? T.heap[0]->when : -1;
}

unsigned gx_timer_fire(int64_t now)
{
	unsigned fired = 0;
	while (T.n && T.heap[0]->when <= now) {
		gx_timer *t = T.heap[0];
		gx_timer_del(t);
		t->fn(t);
		fired++;
	}
	return fired;
}

uint32_t gx_timer_count(void)
{
	return T.n;
}

void gx_timer_fini(void)
{
	free(T.heap);
	T.heap = NULL;
	T.n = T.cap = 0;
	T.seq = 0;
}

/* ---- sleeping ---- */

static void gx_sleep_fire(gx_timer *t)
{
	gx_ready(t->data);
}

int gx_sleep_until(int64_t deadline)
{
	gx_co *self = gx_co_current();
	if (!self)
		return -EPERM;
	if (deadline <= gx_clock_now())
		return 0;
	gx_timer t = {.when = deadline, .fn = gx_sleep_fire, .data = self};
	int rc = gx_timer_add(&t);
	if (rc < 0)
		return rc;
	gx_park("sleep");
	return 0;
}

int gx_sleep(int64_t ns)
{
	if (!gx_co_current())
		return -EPERM;
	if (ns <= 0)
		return 0;
	return gx_sleep_until(gx_clock_now() + ns);
}
