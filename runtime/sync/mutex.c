/*
 * Mutex and Cond.
 *
 * Mutex: a locked flag and a FIFO of waiters. Unlock with waiters hands the
 * lock to the first live one (locked stays set), so the lock passes in
 * arrival order and nobody starves; a waiter whose deadline fired first is
 * stale and skipped. Rejected: Go's barging fast path with a starvation
 * mode; without preemption or other threads, hand-off is both simpler and
 * fair, and an uncontended lock is still one flag test.
 *
 * Cond: a FIFO of waiters. Wait unlocks the mutex and enlists without a
 * switch in between, so no signal can slip past it.
 */
#include <errno.h>

#include "core/wait.h"

#include <gonex/sync.h>

typedef struct {
	uint32_t locked;
	gx_waitq waiters;
} gx_mutex_impl;
_Static_assert(sizeof(gx_mutex_impl) <= sizeof(gx_mutex), "gx_mutex storage");

typedef struct {
	gx_waitq waiters;
} gx_cond_impl;
_Static_assert(sizeof(gx_cond_impl) <= sizeof(gx_cond), "gx_cond storage");

int gx_mutex_trylock(gx_mutex *mu)
{
	gx_mutex_impl *m = (gx_mutex_impl *)mu;
	if (!mu)
		return -EINVAL;
	if (m->locked)
		return -EBUSY;
	m->locked = 1;
	return 0;
}

int gx_mutex_lock(gx_mutex *mu, gx_until u)
{
	gx_mutex_impl *m = (gx_mutex_impl *)mu;
	if (!mu)
		return -EINVAL;
	if (!m->locked) {
		m->locked = 1;
		return 0;
	}
	gx_wq_node n;
	return gx_wait_in(&m->waiters, &n, u, "mutex"); /* 0: handed over */
}

int gx_mutex_unlock(gx_mutex *mu)
{
	gx_mutex_impl *m = (gx_mutex_impl *)mu;
	if (!mu)
		return -EINVAL;
	if (!m->locked)
		return -EPERM;
	gx_wq_node *n = gx_waitq_pop(&m->waiters);
	if (n)
		gx_wake(n); /* hand-off: stays locked, now by n's coroutine */
	else
		m->locked = 0;
	return 0;
}

int gx_cond_wait(gx_cond *cv, gx_mutex *mu, gx_until u)
{
	gx_cond_impl *c = (gx_cond_impl *)cv;
	if (!cv || !mu)
		return -EINVAL;
	if (!((gx_mutex_impl *)mu)->locked)
		return -EPERM;
	if (!gx_co_current())
		return -EPERM;
	/* Unlocking before enlisting cannot miss a signal: nothing else runs
	 * until this coroutine parks (unlock only readies a waiter). */
	gx_mutex_unlock(mu);
	gx_wq_node n;
	int rc = gx_wait_in(&c->waiters, &n, u, "cond");
	gx_mutex_lock(mu, GX_FOREVER);
	return rc;
}

int gx_cond_signal(gx_cond *cv)
{
	if (!cv)
		return -EINVAL;
	gx_wq_node *n = gx_waitq_pop(&((gx_cond_impl *)cv)->waiters);
	if (n)
		gx_wake(n);
	return 0;
}

int gx_cond_broadcast(gx_cond *cv)
{
	if (!cv)
		return -EINVAL;
	gx_waitq_wake_all(&((gx_cond_impl *)cv)->waiters);
	return 0;
}
