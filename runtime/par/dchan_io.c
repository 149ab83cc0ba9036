/*
 * Distributed channels: send and receive (dchan.c has the design).
 *
 * A send puts its message into the shared ring, which holds at most the
 * channel's capacity (one for a rendezvous), or waits on `space` until it
 * can. A rendezvous send then waits until the ring position it sent at has
 * been released by a receiver: that receiver took this value, no other.
 * A receive takes from its own worker ring first (broadcast, scatter,
 * balance), then from the shared queue unless the channel is routed to
 * another worker; with nothing there it counts itself in its process's
 * rwait word and sleeps on `data`.
 *
 * A rendezvous send that gives up withdraws its value (gx_ring_withdraw)
 * unless a receiver won it: an error means never received.
 *
 * A try send on a rendezvous channel goes ahead only when a receiver waits
 * (the sum of the processes' rwait words) that no value is already on its
 * way to (the values in the ring), as Go's select-with-default sends only
 * to a waiting receiver; it then waits up to GX_DCH_TRY_RDV for that
 * receiver to take the value, and withdraws it otherwise (-EAGAIN).
 *
 * Deaths: a receiver killed while blocked leaves its count in its own
 * process's word, which the supervisor zeroes; a receiver killed holding a
 * value it took had released the ring slot already (or repair releases
 * its claim): no place is lost.
 */
#include "par/dchan.h"

#include <string.h>

#include "arch/relax.h"
#include "core/testpoint.h"

#include <gonex/chan.h>
#include <gonex/coro.h>

/* Receivers blocked on d, in every process. */
static uint64_t gx_dch_rwaiting(gx_dch *d)
{
	uint64_t n = 0;
	for (int i = 0; i <= GX_MAX_WORKERS; i++)
		n += atomic_load_explicit(&d->rwait[i], memory_order_relaxed);
	return n;
}

/* ---- send ---- */

/* The spinner's look for room: the slot at head, not head - tail: the
 * consumers' tail line is theirs, and reading it while they CAS it slowed
 * them down. */
static bool gx_dch_room_spin(void *arg)
{
	const gx_dview *v = arg;
	gx_ring *r = gx_dch_main(v);
	return atomic_load_explicit(&v->d->closed, memory_order_relaxed) || !r || gx_ring_has_room(r);
}

bool gx_dch_room(void *arg)
{
	const gx_dview *v = arg;
	gx_ring *r = gx_dch_main(v);
	/* a place a receiver claimed counts: its wake-up has no fence
	 * (gx_dch_took), so a sleeper must see the claim */
	return atomic_load_explicit(&v->d->closed, memory_order_relaxed) || !r || gx_ring_room_claimed(r);
}

typedef struct {
	const gx_dview *v;
	gx_ring *r;
	uint64_t pos;
} gx_dch_rv;

static bool gx_dch_taken(void *arg)
{
	gx_dch_rv *t = arg;
	return atomic_load_explicit(&t->v->d->closed, memory_order_relaxed) || gx_ring_taken(t->r, t->pos);
}

/* A receiver that waits takes a rendezvous value within a few looks: look
 * GX_RING_LOOKS times on the view's own geometry copy, a pause between
 * two, before the wait. The call has not yielded since its put, so the
 * view is still the table's entry, and the channel is still there (a free
 * waits for the swait word this send is counted in). */
static bool gx_dch_taken_soon(const gx_dview *v, gx_ring *r, uint64_t pos)
{
	const gx_rgeo *g = gx_dch_geo(v, r);
	if (!g || gx_dspin(v->a) <= 0)
		return false;
	for (int i = 0; i < GX_RING_LOOKS; i++) {
		if (gx_ring_taken_g(g, pos))
			return true;
		gx_cpu_relax();
	}
	return false;
}

/* A rendezvous: wait until the value sent at pos was taken. When the wait
 * ends first (u, or the channel closed), the value is withdrawn unless a
 * receiver won it meanwhile: then the send went through after all (0).
 * `fail` is what a withdrawn send returns instead of the wait's error. */
static int gx_dch_rendezvous_wait(const gx_dview *v, gx_ring *r, uint64_t pos, gx_until u, int fail)
{
	gx_dch_rv t = {v, r, pos};
	int rc = gx_ec_wait(&v->d->space, gx_dch_taken, &t, gx_dspin(v->a), u, NULL);
	if (!gx_dch_same(v))
		return -EINVAL; /* freed under us (a peer's free: ours waits) */
	if (gx_ring_taken(r, pos))
		return 0;
	GX_TEST_POINT("dchan.send.withdraw", (void *)v->d);
	gx_off ck = 0;
	int w = gx_ring_withdraw(r, pos, &ck);
	if (w <= 0)
		return 0; /* a receiver took it first: delivered */
	if (ck)
		gx_pool_free(v->a, ck);
	/* its place is free again (gx_ring_withdraw passed it over) */
	gx_ec_notify(&v->d->space, NULL);
	if (fail)
		return fail;
	return rc < 0 ? rc : -EPIPE;
}

/* The wait above, counted in this process's swait word from before the
 * put (the caller's) until the return: gx_chan_free is -EBUSY meanwhile. */
static int gx_dch_rendezvous(const gx_dview *v, gx_ring *r, uint64_t pos, gx_until u, int fail)
{
	int rc = gx_dch_rendezvous_wait(v, r, pos, u, fail);
	gx_dch_count(gx_dch_swait_mine(v->d), -1);
	return rc;
}

/* A try send on a rendezvous: only to a receiver that waits and that no
 * value is on its way to already (`mine`: the caller's own receive
 * cases among the waiting, a select's, which must not meet itself). */
static bool gx_dch_receiver_free(const gx_dview *v, gx_ring *r, uint32_t mine)
{
	return gx_dch_rwaiting(v->d) > gx_ring_depth(r) + mine;
}

int gx_dch_send(gx_chan *c, const void *val, gx_until u, bool try_only)
{
	return gx_dch_send_opt(c, val, u, try_only, GX_DCH_TRY_RDV, 0);
}

int gx_dch_send_opt(gx_chan *c, const void *val, gx_until u, bool try_only, int64_t rdv_wait, uint32_t mine)
{
	gx_dview view; /* this call's own copy, once it waits (dchan.h) */
	const gx_dview *v;
	if (!gx_dch_view_ref(c, &v, &view) || (!val && v->elem_size))
		return -EINVAL;
	if (!try_only && !gx_co_current())
		return -EPERM;
	gx_dch *d = v->d;
	gx_ring *r = gx_dch_main(v);
	if (!r)
		return -EBADMSG;
	for (unsigned misses = 0;;) {
		if (atomic_load_explicit(&d->closed, memory_order_relaxed))
			return -EPIPE;
		if (v->cap == 0 && try_only && !gx_dch_receiver_free(v, r, mine))
			return -EAGAIN;
		uint64_t pos;
		if (v->cap == 0) /* counted before the value is out: a free sees it */
			gx_dch_count(gx_dch_swait_mine(d), 1);
		int rc = gx_dch_put(v, r, val, &pos);
		if (rc != 0 && v->cap == 0)
			gx_dch_count(gx_dch_swait_mine(d), -1);
		if (rc == 0) {
			/* its claim was a seq_cst CAS, and receivers count a
			 * claimed head as ready (gx_dch_ready: the depth) */
			gx_ec_notify_claimed(&d->data, NULL);
			if (v->cap)
				return 0;
			if (!try_only && gx_dch_taken_soon(v, r, pos)) {
				gx_dch_count(gx_dch_swait_mine(d), -1);
				return 0;
			}
			gx_dch_view_own(&v, &view);
			if (!try_only)
				return gx_dch_rendezvous(v, r, pos, u, 0);
			/* try: a waiting receiver takes it within rdv_wait (or
			 * before u ends), or it is taken back */
			gx_until rdv = gx_timeout(rdv_wait);
			if (u.deadline >= 0 && u.deadline < rdv.deadline)
				rdv.deadline = u.deadline;
			rdv.ctx = u.ctx;
			return gx_dch_rendezvous(v, r, pos, rdv, -EAGAIN);
		}
		if (rc != -EAGAIN || try_only)
			return rc;
		gx_dch_view_own(&v, &view);
		rc = gx_ec_wait_spin(&d->space, gx_dch_room, gx_dch_room_spin, (void *)v, gx_dspin(v->a), u, NULL);
		if (rc < 0 || (rc = gx_ec_pause(&misses, u)) < 0)
			return rc;
		if (!gx_dch_same(v))
			return -EINVAL; /* freed (or made anew) while we waited */
	}
}

/* ---- receive ---- */

bool gx_dch_ready(void *arg)
{
	const gx_dview *v = arg;
	gx_dch *d = v->d;
	if (atomic_load_explicit(&d->closed, memory_order_relaxed))
		return true;
	if (atomic_load_explicit(&d->magic, memory_order_relaxed) != GX_DCHAN_MAGIC)
		return true; /* freed under us: the call reports it */
	gx_ring *m = gx_dch_mine(v);
	if (m && gx_ring_depth(m))
		return true;
	gx_ring *r = gx_dch_main(v);
	return !r || (gx_dch_main_mine(v) && gx_ring_depth(r));
}

bool gx_dch_ready_look(const gx_dview *v, const gx_rgeo *g)
{
	gx_dch *d = v->d;
	if (atomic_load_explicit(&d->closed, memory_order_relaxed))
		return true;
	if (atomic_load_explicit(&d->magic, memory_order_relaxed) != GX_DCHAN_MAGIC)
		return true;
	/* the worker's own ring: its depth, as gx_dch_take_one asks it */
	gx_ring *m = gx_dch_mine(v);
	if (m && gx_ring_depth(m))
		return true;
	gx_ring *r = gx_dch_main(v);
	return !r || (gx_dch_main_mine(v) && (g ? gx_ring_peek_g(g) : gx_ring_peek(r)));
}

bool gx_dch_ready_spin(void *arg)
{
	return gx_dch_ready_look(arg, NULL);
}

/* One value for this process, if there is one: 0, or -EAGAIN, -EBADMSG. */
static int gx_dch_take_one(const gx_dview *v, void *val)
{
	gx_ring *m = gx_dch_mine(v);
	/* the worker's own ring first (broadcast, scatter, balance): mostly
	 * empty, which its depth (two loads of lines its writers rarely
	 * touch) tells for less than a receive's look */
	if (m && gx_ring_depth(m) && gx_dch_take(v, m, val, NULL) == 0)
		return 0;
	if (!gx_dch_main_mine(v))
		return -EAGAIN;
	int rc = gx_dch_take(v, gx_dch_main(v), val, NULL);
	if (rc == 0 || rc == -EBADMSG) {
		GX_TEST_POINT("dchan.recv.took", (void *)v->d);
		gx_dch_took(v);
		return rc;
	}
	return -EAGAIN;
}

/* Closed: a value published just before the close comes first, if it is
 * one this process may take. 1 when there is one. */
static int gx_dch_closing_left(const gx_dview *v)
{
	gx_ring *m = gx_dch_mine(v), *mr = gx_dch_main(v);
	return (m && gx_ring_depth(m)) || (mr && gx_dch_main_mine(v) && gx_ring_depth(mr));
}

int gx_dch_recv(gx_chan *c, void *val, bool *ok, gx_until u, bool try_only)
{
	gx_dview view; /* this call's own copy, once it waits (dchan.h) */
	const gx_dview *v;
	if (!gx_dch_view_ref(c, &v, &view))
		return -EINVAL;
	if (!try_only && !gx_co_current())
		return -EPERM;
	gx_dch *d = v->d;
	/* GX_RING_LOOKS says why only up to capacity 1. A receiver in its
	 * looks is not yet counted in rwait: a try send that comes then
	 * finds no receiver, as it would a moment earlier */
	for (unsigned misses = 0, first = 1;; first = 0) {
		int rc = gx_dch_take_one(v, val);
		if (rc == -EAGAIN && first && !try_only && v->cap <= 1 && gx_dspin(v->a) > 0) {
			for (int i = 0; i < GX_RING_LOOKS && rc == -EAGAIN; i++) {
				if (atomic_load_explicit(&d->closed, memory_order_relaxed))
					break;
				gx_cpu_relax();
				rc = gx_dch_take_one(v, val);
			}
		}
		if (rc != -EAGAIN) {
			if (rc == 0 && ok)
				*ok = true;
			return rc;
		}
		/* acquire: pairs with the close's CAS; the values published before it are seen below */
		if (atomic_load_explicit(&d->closed, memory_order_acquire)) {
			if (gx_dch_closing_left(v)) {
				/* a claim not yet published (or a dead sender's,
				 * until repair skips it; or a depth a peer
				 * scribbled): a try does not wait for it; a
				 * receive lets the supervisor run (yield), naps
				 * now and then, and ends by its deadline */
				if (try_only || !gx_co_current())
					return -EAGAIN;
				gx_dch_view_own(&v, &view);
				gx_yield();
				if ((rc = gx_ec_pause(&misses, u)) < 0)
					return rc;
				continue;
			}
			if (val && v->elem_size)
				memset(val, 0, v->elem_size);
			if (ok)
				*ok = false;
			return 0;
		}
		if (try_only)
			return -EAGAIN;
		gx_dch_view_own(&v, &view);
		_Atomic uint32_t *mine = gx_dch_rwait_mine(d);
		atomic_fetch_add(mine, 1);
		if (v->cap == 0) /* a receiver waits: a select's send case may go ahead */
			gx_ec_notify(&d->space, NULL);
		GX_TEST_POINT("dchan.recv.wait", (void *)d);
		rc = gx_ec_wait_spin(&d->data, gx_dch_ready, gx_dch_ready_spin, (void *)v, gx_dspin(v->a), u, NULL);
		atomic_fetch_sub(mine, 1);
		if (rc < 0 || (rc = gx_ec_pause(&misses, u)) < 0)
			return rc;
		if (!gx_dch_same(v))
			return -EINVAL;
	}
}
