/*
 * Channels (local to a process).
 *
 * What: Go's hchan without the lock: one thread per process runs
 * coroutines, so a channel operation is never interrupted. A buffered
 * channel is a ring of cap slots; blocked senders and receivers wait in two
 * FIFO queues of wait-core nodes that live on their stacks (see
 * core/wait.h).
 *
 * Invariants (between operations):
 * - count <= cap; the buffered values are slots head .. head+count-1;
 * - a live receiver waits only while count == 0 and no live sender waits;
 *   a live sender waits only while count == cap and no live receiver waits;
 * - a value is handed over exactly once: by the operation that pops the
 *   peer's node (gx_waitq_pop skips nodes whose waiter already fired by a
 *   timeout, a context or another select case, so those neither deliver
 *   nor consume anything);
 * - closed never goes back to 0; after close both queues are empty and
 *   stay empty (new operations return at once).
 *
 * Hand-offs copy straight between the two coroutines' buffers (the
 * sender's value and the receiver's destination); when a receiver takes
 * from a full buffer with a sender waiting, the sender's value goes into
 * the freed slot, which keeps FIFO order (as Go's recv does).
 *
 * Rejected: a lock per channel (nothing to exclude within one thread; the
 * distributed channel of the parallel runtime is a separate implementation
 * behind the same calls).
 */
#include "sync/chan.h"

#include <errno.h>
#include <stdlib.h>

const gx_dchan_hooks *gx_dchan;

void gx_chan_set_dchan_hooks(const gx_dchan_hooks *h)
{
	gx_dchan = h;
}

static int gx_chan_setup(gx_chan_impl *c, size_t elem_size, size_t cap, void *buf, unsigned flags)
{
	if (elem_size > GX_CHAN_ELEM_MAX || cap > GX_CHAN_CAP_MAX || (flags & ~(GX_CHAN_DISTRIBUTED | GX_CHAN_COMPRESS)))
		return -EINVAL;
	if (flags & (GX_CHAN_DISTRIBUTED | GX_CHAN_COMPRESS))
		return -ENOTSUP;
	memset(c, 0, sizeof *c);
	atomic_store_explicit(&c->magic, GX_CHAN_MAGIC, memory_order_relaxed);
	c->elem_size = (uint32_t)elem_size;
	c->cap = (uint32_t)cap;
	c->buf = buf;
	return 0;
}

int gx_chan_make(gx_chan **out, size_t elem_size, size_t cap, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (elem_size > GX_CHAN_ELEM_MAX || cap > GX_CHAN_CAP_MAX || (flags & ~(GX_CHAN_DISTRIBUTED | GX_CHAN_COMPRESS)))
		return -EINVAL;
	if ((flags & GX_CHAN_COMPRESS) && !(flags & GX_CHAN_DISTRIBUTED))
		return -EINVAL;
	if (flags & GX_CHAN_DISTRIBUTED)
		return gx_dchan ? gx_dchan->make(out, elem_size, cap, flags) : -EPERM; /* needs gx_run */
	size_t bytes = elem_size * cap;
	gx_chan *c = malloc(sizeof(gx_chan) + bytes);
	if (!c)
		return -ENOMEM;
	int rc = gx_chan_setup(gx_chan_impl_of(c), elem_size, cap, bytes ? (char *)(c + 1) : NULL, flags);
	if (rc < 0) {
		free(c);
		return rc;
	}
	gx_chan_impl_of(c)->flags |= GX_CHAN_F_HEAP;
	*out = c;
	return 0;
}

int gx_chan_init(gx_chan *c, size_t elem_size, size_t cap, void *buf, unsigned flags)
{
	if (!c || (elem_size * cap != 0 && !buf))
		return -EINVAL;
	return gx_chan_setup(gx_chan_impl_of(c), elem_size, cap, buf, flags);
}

int gx_chan_free(gx_chan *ch)
{
	if (!ch)
		return 0;
	gx_chan_impl *c = gx_chan_impl_of(ch);
	if (gx_chan_is_d(ch))
		return gx_dchan->free(ch);
	if (!gx_chan_valid(c) || !(c->flags & GX_CHAN_F_HEAP))
		return -EINVAL;
	if (!gx_waitq_empty(&c->sendq) || !gx_waitq_empty(&c->recvq))
		return -EBUSY;
	atomic_store_explicit(&c->magic, 0, memory_order_relaxed);
	free(ch);
	return 0;
}

int gx_chan_try_send(gx_chan *ch, const void *v)
{
	if (!ch)
		return -EAGAIN;
	gx_chan_impl *c = gx_chan_impl_of(ch);
	if (!gx_chan_valid(c))
		return gx_chan_is_d(ch) ? gx_dchan->send(ch, v, GX_FOREVER, true) : -EINVAL;
	int rc = gx_chan_send_check(c, v);
	return rc < 0 ? rc : gx_chan_send_now(c, v);
}

int gx_chan_try_recv(gx_chan *ch, void *v, bool *ok)
{
	if (!ch)
		return -EAGAIN;
	gx_chan_impl *c = gx_chan_impl_of(ch);
	if (!gx_chan_valid(c))
		return gx_chan_is_d(ch) ? gx_dchan->recv(ch, v, ok, GX_FOREVER, true) : -EINVAL;
	return gx_chan_recv_now(c, v, ok);
}

int gx_chan_send(gx_chan *ch, const void *v, gx_until u)
{
	gx_co *self = gx_co_current();
	if (!ch)
		return self ? gx_wait_until(u, "chan send (nil chan)") : -EPERM;
	gx_chan_impl *c = gx_chan_impl_of(ch);
	if (!gx_chan_valid(c))
		return gx_chan_is_d(ch) ? gx_dchan->send(ch, v, u, false) : -EINVAL;
	int rc = gx_chan_send_check(c, v);
	if (rc == 0)
		rc = gx_chan_send_now(c, v);
	if (rc != -EAGAIN)
		return rc;
	gx_wq_node n; /* only what the queue and a waker read is set */
	n.elem = (void *)v;
	rc = gx_wait_in(&c->sendq, &n, u, "chan send");
	if (rc == 0)
		return n.ok ? 0 : -EPIPE;
	return rc;
}

int gx_chan_recv(gx_chan *ch, void *v, bool *ok, gx_until u)
{
	gx_co *self = gx_co_current();
	if (!ch)
		return self ? gx_wait_until(u, "chan receive (nil chan)") : -EPERM;
	gx_chan_impl *c = gx_chan_impl_of(ch);
	if (!gx_chan_valid(c))
		return gx_chan_is_d(ch) ? gx_dchan->recv(ch, v, ok, u, false) : -EINVAL;
	int rc = gx_chan_recv_now(c, v, ok);
	if (rc != -EAGAIN)
		return rc;
	gx_wq_node n; /* only what the queue and a waker read is set */
	n.elem = v;
	rc = gx_wait_in(&c->recvq, &n, u, "chan receive");
	if (rc == 0 && ok)
		*ok = n.ok;
	return rc;
}

int gx_chan_close(gx_chan *ch)
{
	if (!ch)
		return -EINVAL;
	gx_chan_impl *c = gx_chan_impl_of(ch);
	if (!gx_chan_valid(c))
		return gx_chan_is_d(ch) ? gx_dchan->close(ch) : -EINVAL;
	if (c->flags & GX_CHAN_F_DONE)
		return -EPERM;
	if (c->closed)
		return -EALREADY;
	gx_chan_close_now(c);
	return 0;
}

void gx_chan_close_now(gx_chan_impl *c)
{
	c->closed = 1;
	gx_wq_node *n;
	while ((n = gx_waitq_pop(&c->recvq)) != NULL) {
		if (n->elem && c->elem_size)
			memset(n->elem, 0, c->elem_size);
		n->ok = false;
		gx_wake(n);
	}
	while ((n = gx_waitq_pop(&c->sendq)) != NULL) {
		n->ok = false;
		gx_wake(n);
	}
}

size_t gx_chan_len(const gx_chan *ch)
{
	const gx_chan_impl *c = ch ? gx_chan_impl_of(ch) : NULL;
	if (c && gx_chan_is_d(ch))
		return gx_dchan->len(ch);
	return c && gx_chan_valid(c) ? c->count : 0;
}

size_t gx_chan_cap(const gx_chan *ch)
{
	const gx_chan_impl *c = ch ? gx_chan_impl_of(ch) : NULL;
	if (c && gx_chan_is_d(ch))
		return gx_dchan->cap(ch);
	return c && gx_chan_valid(c) ? c->cap : 0;
}
