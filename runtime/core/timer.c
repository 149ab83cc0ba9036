/*
 * Timers and sleeping.
 *
 * What: one 4-ary min-heap per process of gx_tnode records, keyed by
 * (when, seq), the keys copied into the heap slots. Records live with their owners (a sleeper's record is on its
 * stack); the heap holds pointers. The root context asks gx_theap_next() for
 * the loop's wait deadline and calls gx_theap_fire(now) after every wait.
 *
 * Invariants:
 * - t->idx == 0 iff t is not in the heap; otherwise heap[t->idx - 1].t == t
 *   and the slot's (when, seq) equal t's (a record's `when` is not changed
 *   while it is armed);
 * - heap[i] <= each of its four children by (when, seq);
 * - a timer fires only when gx_now() >= when, so a sleep never ends early,
 *   and fires earliest (when, seq) first, so wake-ups keep deadline order.
 *
 * Rejected: a timer wheel (O(1) but coarse; deadline order within a slot is
 * lost and sleeps could end early); one io_uring TIMEOUT per sleeper (a CQE
 * and a kernel hrtimer each, and no ordering guarantee between CQEs).
 */
#include "core/timer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "core/sched.h"
#include "core/wait.h"

#include <gonex/time.h>

/* A heap slot keeps the key beside the pointer, so sifting compares keys in
 * the array and touches a record only to update its index: the records are
 * on other coroutines' stacks, one cache miss each. 4-ary: half the levels
 * of a binary heap, and the four children share a cache line or two. */
typedef struct {
	int64_t when;
	uint64_t seq;
	gx_tnode *t;
} gx_tslot;

#define GX_TARY 4

static struct {
	gx_tslot *heap;
	uint32_t n, cap;
	uint64_t seq;
	int64_t now; /* the last gx_theap_fire's time */
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

static inline int gx_tslot_less(const gx_tslot *a, const gx_tslot *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void gx_tslot_set(uint32_t i, gx_tslot s)
{
	T.heap[i] = s;
	s.t->idx = i + 1;
}

static void gx_tslot_up(uint32_t i)
{
	gx_tslot s = T.heap[i];
	while (i > 0) {
		uint32_t p = (i - 1) / GX_TARY;
		if (!gx_tslot_less(&s, &T.heap[p]))
			break;
		gx_tslot_set(i, T.heap[p]);
		i = p;
	}
	gx_tslot_set(i, s);
}

static void gx_tslot_down(uint32_t i)
{
	gx_tslot s = T.heap[i];
	for (;;) {
		uint32_t c = GX_TARY * i + 1;
		if (c >= T.n)
			break;
		uint32_t last = c + GX_TARY < T.n ? c + GX_TARY : T.n, m = c;
		for (uint32_t k = c + 1; k < last; k++)
			if (gx_tslot_less(&T.heap[k], &T.heap[m]))
				m = k;
		if (!gx_tslot_less(&T.heap[m], &s))
			break;
		gx_tslot_set(i, T.heap[m]);
		i = m;
	}
	gx_tslot_set(i, s);
}

uint64_t gx_theap_seq(void)
{
	return T.seq++;
}

int64_t gx_theap_last_now(void)
{
	return T.now;
}

int gx_theap_add(gx_tnode *t)
{
	return gx_theap_add_seq(t, T.seq++);
}

int gx_theap_add_seq(gx_tnode *t, uint64_t seq)
{
	if (T.n == T.cap) {
		uint32_t cap = T.cap ? T.cap * 2 : 64;
		gx_tslot *h = realloc(T.heap, cap * sizeof *h);
		if (!h)
			return -ENOMEM;
		T.heap = h;
		T.cap = cap;
	}
	t->seq = seq;
	T.heap[T.n] = (gx_tslot){.when = t->when, .seq = t->seq, .t = t};
	T.n++;
	gx_tslot_up(T.n - 1);
	return 0;
}

int gx_theap_del(gx_tnode *t)
{
	/* also false for a node left armed when its gx_run ended (the heap
	 * it was in is gone): deleting it later is harmless */
	if (t->idx == 0 || t->idx > T.n || T.heap[t->idx - 1].t != t)
		return 0;
	uint32_t i = t->idx - 1;
	t->idx = 0;
	T.n--;
	if (i != T.n) {
		gx_tslot moved = T.heap[T.n];
		T.heap[i] = moved;
		if (i > 0 && gx_tslot_less(&moved, &T.heap[(i - 1) / GX_TARY]))
			gx_tslot_up(i);
		else
			gx_tslot_down(i);
	}
	return 1;
}

int64_t gx_theap_next(void)
{
	return T.n ? T.heap[0].when : -1;
}

unsigned gx_theap_fire(int64_t now)
{
	unsigned fired = 0;
	T.now = now;
	while (T.n && T.heap[0].when <= now) {
		gx_tnode *t = T.heap[0].t;
		gx_theap_del(t);
		t->fn(t);
		fired++;
	}
	return fired;
}

uint32_t gx_theap_count(void)
{
	return T.n;
}

void gx_theap_fini(void)
{
	free(T.heap);
	T.heap = NULL;
	T.n = T.cap = 0;
	T.seq = 0;
	T.now = 0;
}

/* ---- sleeping ---- */

int gx_sleep_for(int64_t ns, gx_until u)
{
	if (!gx_co_current())
		return -EPERM;
	if (ns <= 0)
		return 0;
	int64_t end = gx_time_after(ns);
	bool mine = u.deadline < 0 || end < u.deadline;
	if (mine)
		u.deadline = end;
	int rc = gx_wait_until(u, "sleep");
	/* -ETIMEDOUT is ours (a full sleep) only once `end` has passed: a
	 * context past its deadline reports -ETIMEDOUT too */
	return rc == -ETIMEDOUT && mine && gx_clock_now() >= end ? 0 : rc;
}

int gx_sleep_until(int64_t deadline)
{
	if (!gx_co_current())
		return -EPERM;
	if (deadline <= gx_clock_now())
		return 0;
	int rc = gx_wait_until(gx_deadline(deadline), "sleep");
	return rc == -ETIMEDOUT ? 0 : rc;
}

int gx_sleep(int64_t ns)
{
	if (!gx_co_current())
		return -EPERM;
	if (ns <= 0)
		return 0;
	return gx_sleep_until(gx_time_after(ns));
}
