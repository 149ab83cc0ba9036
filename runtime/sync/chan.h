/*
 * Channel internals shared by chan.c and select.c.
 */
#ifndef GX_SYNC_CHAN_H
#define GX_SYNC_CHAN_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/wait.h"

#include <gonex/chan.h>

#define GX_CHAN_MAGIC 0x67786368u /* "gxch" */
#define GX_CHAN_F_HEAP 0x100u      /* made by gx_chan_make */
#define GX_CHAN_F_DONE 0x200u      /* a context's done channel: closed only by it */

/*
 * Distributed channels live in the parallel layer (runtime/par/dchan.c),
 * above this one: it registers these hooks, and a channel whose first word
 * is GX_DCHAN_MAGIC goes to them. The try flavours never block.
 */
#define GX_DCHAN_MAGIC 0x67786463u /* "gxdc" */

typedef struct gx_dchan_hooks {
	int (*make)(gx_chan **out, size_t elem_size, size_t cap, unsigned flags);
	int (*free)(gx_chan *c);
	int (*send)(gx_chan *c, const void *v, gx_until u, bool try_only);
	int (*recv)(gx_chan *c, void *v, bool *ok, gx_until u, bool try_only);
	int (*close)(gx_chan *c);
	size_t (*len)(const gx_chan *c);
	size_t (*cap)(const gx_chan *c);
	/* a select with at least one distributed case, all of it */
	int (*select)(gx_case *cases, size_t n, bool block, gx_until u);
} gx_dchan_hooks;

extern const gx_dchan_hooks *gx_dchan;
void gx_chan_set_dchan_hooks(const gx_dchan_hooks *h);

/* Both kinds open with an _Atomic uint32_t magic word, so the first word
 * of any channel is read as one. Acquire: pairs with the release store of
 * a distributed channel's magic (its header before it). */
static inline bool gx_chan_is_d(const gx_chan *c)
{
	return gx_dchan &&
	       /* acquire: pairs with gx_dch_make's release of the magic */
	       atomic_load_explicit((const _Atomic uint32_t *)(const void *)c, memory_order_acquire) == GX_DCHAN_MAGIC;
}

typedef struct gx_chan_impl {
	_Atomic uint32_t magic; /* first: gx_chan_is_d reads it */
	uint32_t flags;
	uint32_t elem_size;
	uint32_t cap;
	uint32_t count; /* buffered values */
	uint32_t head;  /* index of the oldest buffered value */
	uint32_t closed;
	char *buf;
	gx_waitq sendq; /* blocked senders, FIFO; node->elem = their value */
	gx_waitq recvq; /* blocked receivers, FIFO; node->elem = destination */
} gx_chan_impl;

_Static_assert(sizeof(gx_chan_impl) <= sizeof(gx_chan), "gx_chan storage too small");
_Static_assert(_Alignof(gx_chan_impl) <= _Alignof(gx_chan), "gx_chan storage misaligned");

static inline gx_chan_impl *gx_chan_impl_of(const gx_chan *c)
{
	return (gx_chan_impl *)c;
}

static inline bool gx_chan_valid(const gx_chan_impl *c)
{
	return atomic_load_explicit(&c->magic, memory_order_relaxed) == GX_CHAN_MAGIC;
}

/* A send's own checks on a local channel, shared by send, try-send and
 * select: -EINVAL for a NULL value of a non-zero-size element, -EPERM on
 * a context's done channel (only the context closes it); else 0. */
static inline int gx_chan_send_check(const gx_chan_impl *c, const void *v)
{
	if (!v && c->elem_size != 0)
		return -EINVAL;
	if (c->flags & GX_CHAN_F_DONE)
		return -EPERM;
	return 0;
}

/* Close without the caller checks (a context closes its done channel). */
void gx_chan_close_now(gx_chan_impl *c);

static inline char *gx_chan_slot(gx_chan_impl *c, uint32_t i)
{
	uint32_t k = c->head + i;
	if (k >= c->cap)
		k -= c->cap;
	return c->buf + (size_t)k * c->elem_size;
}

static inline void gx_chan_copy(void *dst, const void *src, uint32_t n)
{
	if (!dst)
		return;
	switch (n) { /* constant sizes compile to a load and a store */
	case 0:
		return;
	case 4:
		memcpy(dst, src, 4);
		return;
	case 8:
		memcpy(dst, src, 8);
		return;
	case 16:
		memcpy(dst, src, 16);
		return;
	default:
		memcpy(dst, src, n);
	}
}

/* Ready now? (select's first pass; a closed channel is ready both ways) */
static inline bool gx_chan_send_ready(gx_chan_impl *c)
{
	return c->closed || c->count < c->cap || gx_waitq_first(&c->recvq) != NULL;
}

static inline bool gx_chan_recv_ready(gx_chan_impl *c)
{
	return c->count > 0 || c->closed || gx_waitq_first(&c->sendq) != NULL;
}

/* Do it now if it can be done without blocking: 0, -EPIPE (send on
 * closed), or -EAGAIN. Inline: these are the channel's hot paths. */
static inline int gx_chan_send_now(gx_chan_impl *c, const void *v)
{
	if (c->closed)
		return -EPIPE;
	gx_wq_node *r = gx_waitq_pop(&c->recvq);
	if (r) {
		gx_chan_copy(r->elem, v, c->elem_size);
		r->ok = true;
		gx_wake(r);
		return 0;
	}
	if (c->count < c->cap) {
		gx_chan_copy(gx_chan_slot(c, c->count), v, c->elem_size);
		c->count++;
		return 0;
	}
	return -EAGAIN;
}

static inline int gx_chan_recv_now(gx_chan_impl *c, void *v, bool *ok)
{
	gx_wq_node *s = gx_waitq_pop(&c->sendq);
	if (s) {
		if (c->cap == 0) {
			gx_chan_copy(v, s->elem, c->elem_size);
		} else {
			/* full buffer: take the oldest, the sender's value
			 * becomes the newest in the slot just freed */
			char *slot = gx_chan_slot(c, 0);
			gx_chan_copy(v, slot, c->elem_size);
			gx_chan_copy(slot, s->elem, c->elem_size);
			c->head = c->head + 1 == c->cap ? 0 : c->head + 1;
		}
		s->ok = true;
		gx_wake(s);
	} else if (c->count > 0) {
		gx_chan_copy(v, gx_chan_slot(c, 0), c->elem_size);
		c->head = c->head + 1 == c->cap ? 0 : c->head + 1;
		c->count--;
	} else if (c->closed) {
		if (v && c->elem_size)
			memset(v, 0, c->elem_size);
		if (ok)
			*ok = false;
		return 0;
	} else {
		return -EAGAIN;
	}
	if (ok)
		*ok = true;
	return 0;
}


#endif
