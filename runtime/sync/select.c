/*
 * select.
 *
 * Pass 1 looks at every case once, in order, and picks among the ready
 * ones by reservoir sampling (the k-th ready case replaces the choice with
 * probability 1/k), which is a uniform choice without Go's shuffled poll
 * order array. Only the chosen case is performed, so a case that loses
 * neither consumes nor delivers anything.
 *
 * Pass 2 (nothing ready, no default) enlists one wait-core node per non-nil
 * case on its channel's queue, all owned by one waiter, and parks once. The
 * first peer to pop one of the nodes fires the waiter; the other nodes are
 * then stale, skipped by every peer, and unlinked here after the park.
 *
 * Invariant: at most one case of a select completes, and only the case
 * whose index is returned.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/rand.h"
#include "sync/chan.h"


#define GX_SELECT_STACK_CASES 16

/* Whether a case names a distributed channel: then the whole select is
 * the parallel layer's (par/dselect.c, through the channel hooks). */
static bool gx_select_has_d(const gx_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (cases[i].chan && gx_chan_is_d(cases[i].chan))
			return true;
	return false;
}

/* Pass 1: every case checked, one ready case chosen uniformly (*chosen,
 * -1 when none is ready). 0, or -errno for a bad case. */
static int gx_select_pick(gx_case *cases, size_t n, int *chosen)
{
	uint32_t nready = 0;
	*chosen = -1;
	for (size_t i = 0; i < n; i++) {
		gx_case *k = &cases[i];
		if (k->op != GX_RECV && k->op != GX_SEND)
			return -EINVAL;
		if (!k->chan)
			continue;
		gx_chan_impl *c = gx_chan_impl_of(k->chan);
		if (!gx_chan_valid(c))
			return -EINVAL;
		int rc = k->op == GX_SEND ? gx_chan_send_check(c, k->elem) : 0;
		if (rc < 0)
			return rc;
		bool ready = k->op == GX_SEND ? gx_chan_send_ready(c) : gx_chan_recv_ready(c);
		if (ready && gx_rand_below(++nready) == 0)
			*chosen = (int)i;
	}
	return 0;
}

/* The queue a case's node waits on: its channel's senders or receivers. */
static gx_waitq *gx_case_queue(const gx_case *k)
{
	gx_chan_impl *c = gx_chan_impl_of(k->chan);
	return k->op == GX_SEND ? &c->sendq : &c->recvq;
}

/* Pass 2: a node per non-nil case on its channel's queue, one park, every
 * node unlinked after. The index of the case that fired, or -errno. */
static int gx_select_park(gx_case *cases, size_t n, gx_co *self, gx_until u)
{
	gx_wq_node stack_nodes[GX_SELECT_STACK_CASES];
	gx_wq_node *nodes = stack_nodes;
	if (n > GX_SELECT_STACK_CASES) {
		nodes = malloc(n * sizeof *nodes);
		if (!nodes)
			return -ENOMEM;
	}
	gx_waiter w;
	gx_waiter_init(&w, self);
	for (size_t i = 0; i < n; i++) {
		gx_case *k = &cases[i];
		nodes[i] = (gx_wq_node){.w = &w, .elem = k->elem, .idx = (int32_t)i};
		if (k->chan)
			gx_waitq_push(gx_case_queue(k), &nodes[i]);
	}
	int rc = gx_wait(&w, u, "select");
	for (size_t i = 0; i < n; i++)
		if (cases[i].chan)
			gx_waitq_unlink(gx_case_queue(&cases[i]), &nodes[i]);
	if (rc >= 0) {
		gx_case *k = &cases[rc];
		if (k->op == GX_SEND && !nodes[rc].ok)
			rc = -EPIPE;
		else if (k->op == GX_RECV)
			k->ok = nodes[rc].ok;
	}
	if (nodes != stack_nodes)
		free(nodes);
	return rc;
}

static int gx_select_impl(gx_case *cases, size_t n, bool block, gx_until u)
{
	if (n > 0 && !cases)
		return -EINVAL;
	if (n > INT32_MAX)
		return -EINVAL;
	if (gx_select_has_d(cases, n))
		return gx_dchan->select(cases, n, block, u);
	int chosen;
	int rc = gx_select_pick(cases, n, &chosen);
	if (rc < 0)
		return rc;
	if (chosen >= 0) {
		gx_case *k = &cases[chosen];
		gx_chan_impl *c = gx_chan_impl_of(k->chan);
		rc = k->op == GX_SEND ? gx_chan_send_now(c, k->elem) : gx_chan_recv_now(c, k->elem, &k->ok);
		return rc < 0 ? rc : chosen;
	}
	if (!block)
		return -EAGAIN;
	gx_co *self = gx_co_current();
	if (!self)
		return -EPERM;
	return gx_select_park(cases, n, self, u);
}

int gx_select(gx_case *cases, size_t n, gx_until u)
{
	return gx_select_impl(cases, n, true, u);
}

int gx_select_try(gx_case *cases, size_t n)
{
	return gx_select_impl(cases, n, false, GX_FOREVER);
}
