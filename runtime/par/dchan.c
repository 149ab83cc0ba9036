/*
 * Distributed channels: gx_chan_make(..., GX_CHAN_DISTRIBUTED) in the
 * parallel runtime's arena, usable from the main process and every worker
 * (the pointer is the same everywhere: pass it in a task's argument). This
 * file makes, frees and closes them and keeps their registry; dmsg.c
 * carries the messages, dchan_io.c sends and receives, fanout.c does
 * broadcast, scatter, gather, route and balance.
 *
 * What: a channel header in a pool chunk, a shared MPMC ring (the queue
 * every receiver takes from) and one small ring per worker slot (what
 * broadcast, scatter and balance address to one worker). Messages carry an
 * 8-byte header (the sender's worker id) and the value inline when it fits
 * a ring slot (elem_size <= 112), else a pool chunk handed over.
 *
 * Invariants (Go's rules):
 *  - the capacity is exact, and it is the ring's own: the shared ring holds
 *    at most max(cap, 1) messages (gx_ring_create_lcap), whatever its
 *    power-of-two size, so there is no credit counter beside it to lose
 *    when a process dies between taking a message and giving a credit back;
 *  - cap 0 is a rendezvous: a send returns once a receiver took its value
 *    (the ring position it was sent at was released), one value in flight
 *    at a time;
 *  - close makes sends fail with -EPIPE; receivers drain, then get
 *    ok == false;
 *  - the count of blocked receivers (rwait) is one word per process, each
 *    written by its own process, and a dead worker's is zeroed by the
 *    supervisor (gx_dch_forget_worker): after repair it is exact.
 *
 * Ordering: the values travel through the ring (its release/acquire
 * pairs); a send looks for sleeping receivers (`data`) after its claim,
 * a seq_cst CAS on the ring's head that receivers count as ready (the
 * ring's depth), so without a fence (gx_ec_notify_claimed); a receive
 * looks for sleeping senders (`space`) after its claim the same way (a
 * seq_cst CAS on tail, or on the slot for a rendezvous take), which
 * senders count as room (gx_dch_room) or as taken; `closed` is set by CAS
 * and read relaxed
 * before each attempt (a send racing a close may still land, as in Go).
 * The magic word is stored last with release (gx_chan_is_d and the
 * registry read it with acquire).
 *
 * Messages sent by broadcast and scatter go to the workers' own rings and
 * do not count against the capacity.
 *
 * A rendezvous send that gives up (deadline, context, close) withdraws
 * its value: the shared ring of a cap-0 channel is a TAKE ring, where the
 * receiver's release and the sender's withdraw are CASes on the slot's
 * word and exactly one wins (ring.c). Its error then means the value was
 * never received; 0 means it was.
 *
 * Limits: a buffered sender blocked at close returns -EPIPE though its
 * value may still be received; a receiver killed between its claim and
 * its take of a rendezvous value loses it (repair counts it lost) and the
 * send returns 0; a rendezvous sender killed after its put leaves its
 * value in the ring, and a later receiver gets it (a task run again after
 * that death sends it once more).
 *
 * Rejected: a credit counter for capacities that are not a power of two
 * (a death between the take and the give-back lost a place for good);
 * sent/taken ticket counters for the rendezvous (a receiver that took
 * another sender's value released the wrong sender).
 */
#include "par/dchan.h"

#include "gx_build_config.h"

#include <stdlib.h>
#include <string.h>

#include "core/rand.h"
#include "core/sched.h"

#include <gonex/chan.h>
#include <gonex/coro.h>

/* ---- the registry (the supervisor walks it after a death) ---- */

static int gx_dch_register(gx_dch *d)
{
	for (uint32_t i = 0; i < GX_DCH_MAX; i++) {
		uint64_t z = 0;
		if (atomic_compare_exchange_strong(&gx_pl.p->dchans[i], &z, d->self)) {
			d->reg = i;
			return 0;
		}
	}
	return -ENOMEM;
}

static void gx_dch_unregister(gx_dch *d)
{
	uint64_t self = d->self;
	if (d->reg < GX_DCH_MAX)
		atomic_compare_exchange_strong(&gx_pl.p->dchans[d->reg], &self, 0);
}

/* The channel at registry offset off, NULL when it is not one. */
static gx_dch *gx_dch_at(gx_arena *a, uint64_t off)
{
	gx_dch *d = off && off % _Alignof(gx_dch) == 0 ? gx_arena_ptr(a, off, sizeof(gx_dch)) : NULL;
	/* acquire: pairs with gx_dch_make's release of the magic */
	if (!d || atomic_load_explicit(&d->magic, memory_order_acquire) != GX_DCHAN_MAGIC || d->self != off)
		return NULL;
	return d;
}

void gx_dch_forget_worker(int i)
{
	if (!gx_pl.p || i < 0 || i >= GX_MAX_WORKERS)
		return;
	for (uint32_t k = 0; k < GX_DCH_MAX; k++) {
		gx_dch *d = gx_dch_at(gx_pl.a, atomic_load(&gx_pl.p->dchans[k]));
		if (!d)
			continue;
		/* its blocked receivers (and rendezvous senders) died with it */
		atomic_store(&d->rwait[i + 1], 0);
		atomic_store(&d->swait[i + 1].n, 0);
		gx_ec_notify(&d->data, NULL);
		gx_ec_notify(&d->space, NULL);
	}
}

/* ---- this process's views ---- */

gx_dent gx_dviews[GX_DVIEWS];
uint64_t gx_dview_gen = 1;

void gx_dch_forget_views(void)
{
	gx_dview_gen++;
}

/* An entry whose channel is gone (freed, made anew elsewhere, or of an
 * arena gone since: its header is not read then). */
static bool gx_dview_stale(const gx_dview *e)
{
	return !e->d || e->gen != gx_dview_gen ||
	       atomic_load_explicit(&e->d->magic, memory_order_relaxed) != GX_DCHAN_MAGIC ||
	       atomic_load_explicit(&e->d->nonce, memory_order_relaxed) != e->nonce;
}

/* The tag of a channel header: a MAC under the run's key of what bounds
 * this process's copies and where the channel is. */
static uint64_t gx_dch_mac(uint64_t self, uint64_t nonce, uint32_t elem_size, uint32_t cap, uint32_t flags,
			   uint32_t nw, uint64_t main)
{
	uint64_t w[5] = {self, nonce, (uint64_t)elem_size << 32 | cap, (uint64_t)flags << 32 | nw, main};
	return gx_seal_mac(w, 5);
}

/* Take d's geometry from its header: each field read once, checked
 * against the arena and the tag; its rings found anew (a channel made
 * anew may sit where this process knew rings of another size). */
static const gx_dview *gx_dview_take(gx_arena *a, gx_dch *d)
{
	gx_dview e = {.d = d, .a = a, .gen = gx_dview_gen, .me = gx_worker_id()};
	/* acquire: pairs with gx_dch_make's release of the magic */
	if (atomic_load_explicit(&d->magic, memory_order_acquire) != GX_DCHAN_MAGIC)
		return NULL;
	const volatile gx_dch *h = d;
	uint64_t self = h->self, tag = h->tag, main = h->main;
	uint32_t flags = h->flags;
	e.nonce = atomic_load_explicit(&d->nonce, memory_order_relaxed);
	e.elem_size = h->elem_size;
	e.cap = h->cap;
	e.flags = flags & GX_CHAN_COMPRESS;
	e.nw = h->nw;
	if (self != gx_arena_off(a, d) || (uint64_t)e.elem_size + GX_DCH_HDR > GX_POOL_MAX_CHUNK ||
	    e.cap > (1u << 24) || e.nw > GX_MAX_WORKERS ||
	    tag != gx_dch_mac(self, e.nonce, e.elem_size, e.cap, flags, e.nw, main))
		return NULL;
	struct {
		gx_rgeo main, mine;
	} g = {0};
	e.main = gx_ring_at(a, main);
	if (!e.main || !gx_ring_geo(e.main, &g.main))
		return NULL;
	for (uint32_t i = 0; i < e.nw; i++) {
		gx_ring *w = gx_ring_at(a, h->w[i]);
		if ((int32_t)i == e.me && w && gx_ring_geo(w, &g.mine))
			e.mine = w;
	}
	size_t i = gx_dview_hash(d);
	for (size_t k = 0; k < GX_DVIEWS; k++, i = (i + 1) & (GX_DVIEWS - 1))
		if (gx_dviews[i].v.d == d || gx_dview_stale(&gx_dviews[i].v)) {
			gx_dviews[i] = (gx_dent){e, g.main, g.mine};
			return &gx_dviews[i].v;
		}
	return NULL;
}

bool gx_dch_view_slow(const gx_chan *c, gx_dview *out)
{
	gx_dch *d = (gx_dch *)c;
	gx_arena *a = gx_par_arena(0);
	if (!a || !d || (uintptr_t)d % _Alignof(gx_dch) || !gx_arena_off(a, d) ||
	    !gx_aptr(a, gx_arena_off(a, d), sizeof *d))
		return false;
	size_t i = gx_dview_hash(d);
	const gx_dview *e = NULL;
	for (size_t k = 0; k < 16; k++, i = (i + 1) & (GX_DVIEWS - 1)) {
		if (gx_dviews[i].v.d == d) {
			if (!gx_dview_stale(&gx_dviews[i].v) && gx_dviews[i].v.me == gx_worker_id())
				e = &gx_dviews[i].v;
			break;
		}
		if (!gx_dviews[i].v.d)
			break;
	}
	if (!e)
		e = gx_dview_take(a, d);
	if (!e)
		return false;
	*out = *e;
	return true;
}

/* ---- make, free ---- */

/* The shared ring of a channel of capacity cap for messages of msg bytes:
 * a power of two of at least max(cap, 2) slots, holding max(cap, 1). */
static int gx_dch_rings(gx_arena *a, gx_dch *d, uint32_t msg)
{
	uint32_t rcap = 2;
	while (rcap < d->cap)
		rcap *= 2;
	gx_ring *r;
	/* NOWAKE: waiters sleep on the channel's eventcounts, never on the
	 * rings', so the rings skip their wake-up fences */
	/* TAKE for a rendezvous: a send that gives up takes its value back */
	int rc = gx_ring_create_lcap(a, &r, rcap, msg, GX_RING_NOWAKE | (d->cap ? 0 : GX_RING_TAKE),
				     d->cap ? d->cap : 1);
	if (rc < 0)
		return rc;
	d->main = gx_ring_off(r);
	for (uint32_t i = 0; i < d->nw; i++) {
		rc = gx_ring_create(a, &r, GX_DCH_WRING, msg, GX_RING_NOWAKE);
		if (rc < 0)
			return rc;
		d->w[i] = gx_ring_off(r);
	}
	return 0;
}

static void gx_dch_destroy_rings(gx_arena *a, gx_dch *d)
{
	if (d->main)
		gx_ring_destroy(a, gx_ring_at(a, d->main));
	for (uint32_t i = 0; i < d->nw; i++)
		if (d->w[i])
			gx_ring_destroy(a, gx_ring_at(a, d->w[i]));
}

static int gx_dch_make(gx_chan **out, size_t elem_size, size_t cap, unsigned flags)
{
#if !GX_HAVE_LZ4
	if (flags & GX_CHAN_COMPRESS)
		return -ENOTSUP;
#endif
	if (!gx_sched_active())
		return -EPERM;
	if (elem_size > GX_POOL_MAX_CHUNK - GX_DCH_HDR || cap > (1u << 24))
		return -EINVAL; /* a value and its header must fit one pool chunk */
	gx_arena *a = gx_par_arena(1);
	if (!a)
		return -ENOMEM;
	uint32_t msg = GX_DCH_HDR + (elem_size <= GX_DCH_INLINE ? (uint32_t)elem_size : 8);
	uint32_t rcap = 2, stride = 16;
	while (rcap < cap)
		rcap *= 2;
	while (stride < 8 + msg)
		stride *= 2;
	if ((uint64_t)rcap * stride + GX_RING_HDR > GX_POOL_MAX_CHUNK)
		return -EINVAL; /* more than one ring holds */
	int64_t off = gx_pool_alloc(a, sizeof(gx_dch), -1);
	if (off < 0)
		return (int)off;
	gx_dch *d = gx_arena_ptr(a, (gx_off)off, sizeof *d);
	memset(d, 0, sizeof *d);
	d->elem_size = (uint32_t)elem_size;
	d->cap = (uint32_t)cap;
	d->self = (gx_off)off;
	d->nw = (uint32_t)gx_par_slots();
	d->flags = flags & GX_CHAN_COMPRESS;
	d->reg = GX_DCH_MAX;
	atomic_store(&d->nonce, gx_rand64() | 1);
	atomic_store(&d->route, -1);
	int rc = gx_dch_rings(a, d, msg);
	if (rc == 0)
		rc = gx_dch_register(d);
	if (rc < 0) {
		gx_dch_destroy_rings(a, d);
		gx_pool_free(a, (gx_off)off);
		return rc;
	}
	gx_pool_share(a, (gx_off)off); /* outlives its creator, like its rings */
	d->tag = gx_dch_mac(d->self, atomic_load(&d->nonce), d->elem_size, d->cap, d->flags, d->nw, d->main);
	/* release: the header and rings before the magic (gx_dch_at, gx_chan_is_d) */
	atomic_store_explicit(&d->magic, GX_DCHAN_MAGIC, memory_order_release);
	gx_dview_take(a, d);
	*out = (gx_chan *)d;
	return 0;
}

static bool gx_dch_busy(gx_dch *d)
{
	if (atomic_load(&d->data.waiters) || atomic_load(&d->space.waiters))
		return true;
	for (int i = 0; i <= GX_MAX_WORKERS; i++)
		if (atomic_load_explicit(&d->rwait[i], memory_order_relaxed) ||
		    atomic_load_explicit(&d->swait[i].n, memory_order_relaxed))
			return true;
	return false;
}

/* Drain ring r (at most its capacity and a bit: garbage cannot keep it
 * going), giving chunks back to the pool. */
static void gx_dch_drain(const gx_dview *v, gx_ring *r, void *tmp)
{
	gx_ring_stats s;
	if (!r || gx_ring_stats_get(r, &s) < 0)
		return;
	for (uint32_t k = 0; k <= s.capacity + 1 && gx_ring_depth(r); k++)
		if (gx_dch_take(v, r, tmp, NULL) == -EAGAIN)
			break;
}

static int gx_dch_free(gx_chan *c)
{
	gx_dview v;
	if (!gx_dch_view(c, &v))
		return -EINVAL;
	if (gx_dch_busy(v.d))
		return -EBUSY;
	/* the rings as this process knows them, not as the header names
	 * them now: what is still queued goes back to the pool, then they go */
	gx_ring *rings[GX_MAX_WORKERS + 1];
	uint32_t n = 0;
	rings[n++] = gx_dch_main(&v);
	for (uint32_t i = 0; i < v.nw; i++)
		rings[n++] = gx_dch_wring(&v, i);
	char *tmp = v.elem_size ? malloc(v.elem_size) : NULL;
	for (uint32_t i = 0; i < n; i++)
		gx_dch_drain(&v, rings[i], tmp);
	free(tmp);
	atomic_store_explicit(&v.d->magic, 0, memory_order_relaxed);
	gx_dch_unregister(v.d);
	for (uint32_t i = 0; i < n; i++)
		if (rings[i])
			gx_ring_destroy(v.a, rings[i]);
	return gx_pool_free_shared(v.a, gx_arena_off(v.a, v.d));
}

static int gx_dch_close(gx_chan *c)
{
	gx_dview v;
	uint32_t z = 0;
	if (!gx_dch_view(c, &v))
		return -EINVAL;
	if (!atomic_compare_exchange_strong(&v.d->closed, &z, 1))
		return -EALREADY;
	gx_ec_notify(&v.d->data, NULL);
	gx_ec_notify(&v.d->space, NULL);
	return 0;
}

static size_t gx_dch_len(const gx_chan *c)
{
	gx_dview view;
	const gx_dview *v = &view;
	if (!gx_dch_view(c, &view) || v->cap == 0)
		return 0; /* Go: an unbuffered channel holds nothing */
	gx_ring *r = gx_dch_main(v);
	size_t n = r ? (size_t)gx_ring_depth(r) : 0;
	return n < v->cap ? n : v->cap;
}

static size_t gx_dch_cap(const gx_chan *c)
{
	gx_dview view;
	return gx_dch_view(c, &view) ? view.cap : 0;
}

/* By role: life, traffic, size. */
static const gx_dchan_hooks gx_dch_hooks = {
	.make = gx_dch_make, .free = gx_dch_free,
	.send = gx_dch_send, .recv = gx_dch_recv, .close = gx_dch_close,
	.len = gx_dch_len, .cap = gx_dch_cap,
	.select = gx_dch_select,
};

/* gx_run calls this (a constructor would not run when the static library
 * leaves this file out of a program that makes no other call into it) */
void gx_dchan_install(void)
{
	gx_chan_set_dchan_hooks(&gx_dch_hooks);
}
