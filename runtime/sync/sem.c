/*
 * Weighted semaphore, as golang.org/x/sync/semaphore: FIFO, no barging (a
 * large request at the head blocks smaller ones behind it, so it cannot
 * starve). A waiter is granted its weight before it is woken; one that
 * leaves by timeout re-runs the grant loop, since its leaving may let the
 * next ones in.
 */
#include <errno.h>

#include "core/wait.h"

#include <gonex/sync.h>

typedef struct {
	int64_t size;
	int64_t cur;
	gx_waitq waiters; /* node->n = weight */
} gx_sem_impl;
_Static_assert(sizeof(gx_sem_impl) <= sizeof(gx_sem), "gx_sem storage");

int gx_sem_init(gx_sem *sem, int64_t size)
{
	if (!sem || size < 1)
		return -EINVAL;
	gx_sem_impl *s = (gx_sem_impl *)sem;
	s->size = size;
	s->cur = 0;
	s->waiters.head = s->waiters.tail = NULL;
	return 0;
}

static void gx_sem_grant(gx_sem_impl *s)
{
	gx_wq_node *n;
	while ((n = gx_waitq_first(&s->waiters)) != NULL && s->size - s->cur >= (int64_t)n->n) {
		s->cur += (int64_t)n->n;
		gx_waitq_unlink(&s->waiters, n);
		gx_wake(n);
	}
}

int gx_sem_try_acquire(gx_sem *sem, int64_t n)
{
	gx_sem_impl *s = (gx_sem_impl *)sem;
	if (!sem || s->size < 1 || n < 1 || n > s->size)
		return -EINVAL;
	if (s->size - s->cur < n || !gx_waitq_empty(&s->waiters))
		return -EAGAIN;
	s->cur += n;
	return 0;
}

int gx_sem_acquire(gx_sem *sem, int64_t n, gx_until u)
{
	int rc = gx_sem_try_acquire(sem, n);
	if (rc != -EAGAIN)
		return rc;
	gx_sem_impl *s = (gx_sem_impl *)sem;
	gx_wq_node node;
	node.n = (uint64_t)n;
	rc = gx_wait_in(&s->waiters, &node, u, "semaphore");
	if (rc < 0)
		gx_sem_grant(s);
	return rc;
}

int gx_sem_release(gx_sem *sem, int64_t n)
{
	gx_sem_impl *s = (gx_sem_impl *)sem;
	if (!sem || n < 1 || n > s->cur)
		return -EINVAL;
	s->cur -= n;
	gx_sem_grant(s);
	return 0;
}
