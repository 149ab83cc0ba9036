/*
 * RWMutex with Go's policy.
 *
 * State: `readers` holding the lock, `writer` holding it, and two FIFOs:
 * readers blocked behind a writer (rq) and writers waiting (wq).
 * - RLock succeeds at once only when no writer holds the lock and no live
 *   writer waits: a waiting writer blocks new readers, so writers do not
 *   starve.
 * - Unlock admits every blocked reader first (they were there before the
 *   next writer's turn), else hands the lock to the next writer.
 * - The last RUnlock hands the lock to the next writer.
 * - A waiter that times out re-settles the state: a writer leaving wq may
 *   unblock the readers queued behind it.
 * Hand-offs count the new holders before waking them, so a woken waiter
 * holds the lock when its wait returns 0.
 */
#include <errno.h>
#include <stdbool.h>

#include "core/wait.h"

#include <gonex/sync.h>

typedef struct {
	uint32_t readers;
	uint32_t writer;
	gx_waitq rq;
	gx_waitq wq;
} gx_rw_impl;
_Static_assert(sizeof(gx_rw_impl) <= sizeof(gx_rwmutex), "gx_rwmutex storage");

static void gx_rw_admit_readers(gx_rw_impl *m)
{
	gx_wq_node *n;
	while ((n = gx_waitq_pop(&m->rq)) != NULL) {
		m->readers++;
		gx_wake(n);
	}
}

/* Give the lock to whoever may have it now that it changed hands. */
static void gx_rw_settle(gx_rw_impl *m)
{
	if (m->writer)
		return;
	if (!gx_waitq_empty(&m->wq)) {
		if (m->readers == 0) {
			m->writer = 1;
			gx_wake(gx_waitq_pop(&m->wq));
		}
		return;
	}
	gx_rw_admit_readers(m);
}

/* Take rw now, for writing or reading, if Go's policy allows: no writer
 * holds it or waits for it, and for a writer no reader holds it either.
 * 0, -EBUSY, -EINVAL. */
static int gx_rw_try(gx_rwmutex *rw, bool write)
{
	gx_rw_impl *m = (gx_rw_impl *)rw;
	if (!rw)
		return -EINVAL;
	if (m->writer || (write && m->readers) || !gx_waitq_empty(&m->wq))
		return -EBUSY;
	if (write)
		m->writer = 1;
	else
		m->readers++;
	return 0;
}

/* gx_rw_try, else wait in line (a writer in wq, a reader in rq) until a
 * hand-off has made rw ours; a waiter that gives up re-settles. */
static int gx_rw_take(gx_rwmutex *rw, bool write, gx_until u)
{
	int rc = gx_rw_try(rw, write);
	if (rc != -EBUSY)
		return rc;
	gx_rw_impl *m = (gx_rw_impl *)rw;
	gx_wq_node n;
	rc = gx_wait_in(write ? &m->wq : &m->rq, &n, u, write ? "rwmutex lock" : "rwmutex rlock");
	if (rc < 0)
		gx_rw_settle(m);
	return rc;
}

/* Let go of rw held for writing or reading: -EPERM when it is not held
 * that way (where Go panics), -EINVAL. */
static int gx_rw_release(gx_rwmutex *rw, bool write)
{
	gx_rw_impl *m = (gx_rw_impl *)rw;
	if (!rw)
		return -EINVAL;
	if (write ? !m->writer : m->readers == 0)
		return -EPERM;
	if (!write) {
		if (--m->readers == 0)
			gx_rw_settle(m);
		return 0;
	}
	m->writer = 0;
	if (!gx_waitq_empty(&m->rq))
		gx_rw_admit_readers(m);
	else
		gx_rw_settle(m);
	return 0;
}

/* The API, by operation: each in its reader's and its writer's form. */

int gx_rwmutex_tryrlock(gx_rwmutex *rw)
{
	return gx_rw_try(rw, false);
}

int gx_rwmutex_trylock(gx_rwmutex *rw)
{
	return gx_rw_try(rw, true);
}

int gx_rwmutex_rlock(gx_rwmutex *rw, gx_until u)
{
	return gx_rw_take(rw, false, u);
}

int gx_rwmutex_lock(gx_rwmutex *rw, gx_until u)
{
	return gx_rw_take(rw, true, u);
}

int gx_rwmutex_runlock(gx_rwmutex *rw)
{
	return gx_rw_release(rw, false);
}

int gx_rwmutex_unlock(gx_rwmutex *rw)
{
	return gx_rw_release(rw, true);
}
