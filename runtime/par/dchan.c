/*
 * Distributed channels: gx_chan_make(..., GX_CHAN_DISTRIBUTED) in the
 * parallel runtime's arena, usable from the main process and every worker
 * (the pointer is the same everywhere: pass it in a task's argument).
 *
 * What: a channel header in a pool chunk, a shared MPMC ring (the queue
 * every receiver takes from) and one small ring per worker slot (what
 * broadcast, scatter and balance address to one worker). Messages carry an
 * 8-byte header (the sender's worker id) and the value inline when it fits
 * a ring slot (elem_size <= 112), else a pool chunk handed over.
 *
 * Go's rules: the capacity is exact (a credit counter, not the ring's
 * power-of-two size); cap 0 is a rendezvous (a send returns once a
 * receiver took its value); close makes sends fail with -EPIPE and
 * receivers drain, then get ok == false. Sleeping: eventcounts `data`
 * (receivers) and `space` (senders) in the header. Messages sent by
 * broadcast and scatter go to the workers' own rings and do not count
 * against the capacity.
 *
 * Limits: a rendezvous sender may be released by a receiver that took
 * another sender's value when several send at once (each still returns
 * only after as many values were taken as were sent before it); a sender
 * blocked at close returns -EPIPE though its value may still be received.
 */
#include "par/par.h"

#include "gx_build_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/sched.h"
#include "sync/chan.h"

#include <gonex/chan.h>
#include <gonex/coro.h>
#include <gonex/fanout.h>
#include <gonex/parallel.h>

#if GX_HAVE_LZ4
#include <lz4.h>
#endif

#define GX_DCH_HDR 8u
#define GX_DCH_INLINE (GX_RING_INLINE_MAX - GX_DCH_HDR) /* 112 */
#define GX_DCH_WRING 64u

typedef struct gx_dch {
	uint32_t magic; /* GX_DCHAN_MAGIC: first, as gx_chan_is_d reads it */
	uint32_t elem_size;
	uint32_t cap;
	uint32_t nw;
	uint32_t flags; /* GX_CHAN_COMPRESS */
	uint32_t pad;
	gx_off self;
	gx_off main;
	_Atomic uint32_t closed;
	_Atomic int32_t route;
	gx_off w[GX_MAX_WORKERS];
	/* each on a line of its own: senders and receivers touch them */
	_Alignas(64) _Atomic int64_t credits; /* unless the ring is the cap */
	_Alignas(64) _Atomic uint64_t sent;   /* cap 0 only */
	_Alignas(64) _Atomic uint64_t taken;  /* cap 0 only */
	_Alignas(64) _Atomic uint32_t rwait;  /* receivers blocked (cap 0 try sends) */
	_Alignas(64) gx_ec data;
	_Alignas(64) gx_ec space;
} gx_dch;

/* d->flags: the shared ring's power-of-two size is the capacity, so the
 * ring itself keeps it exact and no credit counter is needed */
#define GX_DCH_RINGCAP 0x100u

/* A receiver took a value from the shared queue. */
static inline void gx_dch_took(gx_dch *d)
{
	if (!(d->flags & GX_DCH_RINGCAP))
		atomic_fetch_add(&d->credits, 1);
	if (d->cap == 0)
		atomic_fetch_add(&d->taken, 1);
	gx_ec_notify(&d->space, NULL);
}


static inline gx_dch *gx_dch_of(const gx_chan *c)
{
	return (gx_dch *)c;
}

static inline int64_t gx_dspin(gx_arena *a)
{
	return gx_ah(a)->spin_ns;
}

static int gx_dch_take(gx_arena *a, gx_dch *d, gx_ring *r, void *v, int32_t *from);

static int gx_dch_make(gx_chan **out, size_t elem_size, size_t cap, unsigned flags)
{
#if !GX_HAVE_LZ4
	if (flags & GX_CHAN_COMPRESS)
		return -ENOTSUP;
#endif
	if (!gx_sched_active())
		return -EPERM;
	if (elem_size + GX_DCH_HDR > GX_POOL_MAX_CHUNK)
		return -EINVAL; /* a value and its header must fit one pool chunk */
	gx_arena *a = gx_par_arena(1);
	if (!a)
		return -ENOMEM;
	uint32_t rcap = 2;
	while (rcap < cap)
		rcap *= 2;
	bool ringcap = cap >= 2 && rcap == cap;
	uint32_t msg = GX_DCH_HDR + (elem_size <= GX_DCH_INLINE ? (uint32_t)elem_size : 8);
	uint32_t stride = 16;
	while (stride < 8 + msg)
		stride *= 2;
	if ((uint64_t)rcap * stride + 768 > GX_POOL_MAX_CHUNK)
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
	d->flags = (flags & GX_CHAN_COMPRESS) | (ringcap ? GX_DCH_RINGCAP : 0);
	atomic_store(&d->credits, cap ? (int64_t)cap : 1);
	atomic_store(&d->route, -1);
	gx_ring *r;
	/* NOWAKE: waiters sleep on the channel's eventcounts, never on the
	 * rings', so the rings skip their wake-up fences */
	int rc = gx_ring_create(a, &r, rcap, msg, GX_RING_NOWAKE);
	if (rc < 0)
		goto fail;
	d->main = gx_ring_off(r);
	for (uint32_t i = 0; i < d->nw; i++) {
		rc = gx_ring_create(a, &r, GX_DCH_WRING, msg, GX_RING_NOWAKE);
		if (rc < 0)
			goto fail;
		d->w[i] = gx_ring_off(r);
	}
	gx_pool_share(a, (gx_off)off); /* outlives its creator, like its rings */
	atomic_thread_fence(memory_order_release);
	d->magic = GX_DCHAN_MAGIC;
	*out = (gx_chan *)d;
	return 0;
fail:
	if (d->main)
		gx_ring_destroy(a, gx_ring_at(a, d->main));
	for (uint32_t i = 0; i < d->nw; i++)
		if (d->w[i])
			gx_ring_destroy(a, gx_ring_at(a, d->w[i]));
	gx_pool_free(a, (gx_off)off);
	return rc;
}

static gx_arena *gx_dch_arena(gx_dch *d)
{
	gx_arena *a = gx_par_arena(0);
	return a && gx_arena_off(a, d) == d->self ? a : NULL;
}

static int gx_dch_free(gx_chan *c)
{
	gx_dch *d = gx_dch_of(c);
	gx_arena *a = gx_dch_arena(d);
	if (!a)
		return -EINVAL;
	if (atomic_load(&d->data.waiters) || atomic_load(&d->space.waiters) || atomic_load(&d->rwait))
		return -EBUSY;
	/* what is still queued: chunks back to the pool */
	char *tmp = d->elem_size ? malloc(d->elem_size) : NULL;
	gx_ring *m = gx_ring_at(a, d->main);
	while (m && gx_dch_take(a, d, m, tmp, NULL) != -EAGAIN && gx_ring_depth(m))
		;
	for (uint32_t i = 0; i < d->nw; i++) {
		gx_ring *r = gx_ring_at(a, d->w[i]);
		while (r && gx_dch_take(a, d, r, tmp, NULL) != -EAGAIN && gx_ring_depth(r))
			;
	}
	free(tmp);
	d->magic = 0;
	gx_ring_destroy(a, gx_ring_at(a, d->main));
	for (uint32_t i = 0; i < d->nw; i++)
		gx_ring_destroy(a, gx_ring_at(a, d->w[i]));
	return gx_pool_free_shared(a, d->self);
}

/* ---- messages ---- */

static int gx_dch_put(gx_arena *a, gx_dch *d, gx_ring *r, const void *v)
{
	int32_t hdr[2] = {gx_worker_id(), 0};
	if (d->elem_size <= GX_DCH_INLINE) {
		char m[GX_RING_INLINE_MAX];
		memcpy(m, hdr, GX_DCH_HDR);
		if (d->elem_size)
			memcpy(m + GX_DCH_HDR, v, d->elem_size);
		return gx_ring_try_send(r, m, GX_DCH_HDR + d->elem_size);
	}
	size_t room = d->elem_size;
#if GX_HAVE_LZ4
	if (d->flags & GX_CHAN_COMPRESS)
		room = (size_t)LZ4_compressBound((int)d->elem_size);
#endif
	if (GX_DCH_HDR + room > GX_POOL_MAX_CHUNK)
		room = d->elem_size; /* no room to try: send it as it is */
	int64_t ck = gx_pool_alloc(a, GX_DCH_HDR + room, -1);
	if (ck < 0)
		return (int)ck;
	char *p = gx_arena_ptr(a, (gx_off)ck, GX_DCH_HDR + room);
	size_t len = d->elem_size;
#if GX_HAVE_LZ4
	if (room > d->elem_size) {
		int n = LZ4_compress_default(v, p + GX_DCH_HDR, (int)d->elem_size, (int)room);
		if (n > 0 && (size_t)n < d->elem_size) {
			hdr[1] = 1; /* compressed: len is the compressed size */
			len = (size_t)n;
		}
	}
#endif
	memcpy(p, hdr, GX_DCH_HDR);
	if (!hdr[1])
		memcpy(p + GX_DCH_HDR, v, d->elem_size);
	int rc = gx_ring_try_send_chunk(r, (gx_off)ck, GX_DCH_HDR + len);
	if (rc < 0)
		gx_pool_free(a, (gx_off)ck);
	return rc;
}

/* One message from r into v; *from gets the sender. 0, -EAGAIN, -EPIPE. */
static int gx_dch_take(gx_arena *a, gx_dch *d, gx_ring *r, void *v, int32_t *from)
{
	char m[GX_RING_INLINE_MAX];
	gx_off ck = 0;
	ssize_t n = gx_ring_try_recv(r, m, sizeof m, &ck);
	if (n < 0)
		return (int)n;
	const char *p = m;
	int32_t hdr[2] = {0, 0};
	if (ck) {
		p = (size_t)n >= GX_DCH_HDR ? gx_arena_ptr(a, ck, (size_t)n) : NULL;
		if (p)
			memcpy(hdr, p, GX_DCH_HDR);
		if (!p || (hdr[1] == 0 && (size_t)n != GX_DCH_HDR + d->elem_size) || (uint32_t)hdr[1] > 1) {
			gx_pool_free(a, ck);
			return -EBADMSG;
		}
	} else if ((size_t)n != GX_DCH_HDR + d->elem_size) {
		return -EBADMSG;
	}
	if (from)
		memcpy(from, p, 4);
	if (hdr[1] == 1) {
#if GX_HAVE_LZ4
		char *tmp = v ? NULL : malloc(d->elem_size);
		int got = LZ4_decompress_safe(p + GX_DCH_HDR, v ? v : tmp, (int)((size_t)n - GX_DCH_HDR), (int)d->elem_size);
		free(tmp);
		if (got != (int)d->elem_size) {
			gx_pool_free(a, ck);
			return -EBADMSG;
		}
#else
		gx_pool_free(a, ck);
		return -EBADMSG;
#endif
	} else if (v && d->elem_size) {
		memcpy(v, p + GX_DCH_HDR, d->elem_size);
	}
	if (ck)
		gx_pool_free(a, ck);
	return 0;
}

static inline gx_ring *gx_dch_mine(gx_arena *a, gx_dch *d)
{
	int me = gx_worker_id();
	return me >= 0 && (uint32_t)me < d->nw ? gx_ring_at(a, d->w[me]) : NULL;
}

static inline bool gx_dch_main_mine(gx_dch *d)
{
	int32_t rt = atomic_load(&d->route);
	return rt < 0 || rt == gx_worker_id();
}

/* ---- send ---- */

static bool gx_dch_space(void *arg)
{
	gx_dch *d = arg;
	return atomic_load(&d->closed) || atomic_load(&d->credits) > 0;
}

typedef struct {
	gx_dch *d;
	uint64_t ticket;
} gx_dch_rv;

static bool gx_dch_taken(void *arg)
{
	gx_dch_rv *t = arg;
	return atomic_load(&t->d->closed) || atomic_load(&t->d->taken) >= t->ticket;
}

static bool gx_dch_room(void *arg)
{
	gx_dch *d = arg;
	gx_ring *r = gx_ring_at(gx_par_arena(0), d->main);
	/* the slot at head, not head - tail: the consumers' tail line is
	 * theirs, and reading it while they CAS it slowed them down */
	return atomic_load(&d->closed) || !r || gx_ring_has_room(r);
}

static int gx_dch_send(gx_chan *c, const void *v, gx_until u, bool try_only)
{
	gx_dch *d = gx_dch_of(c);
	gx_arena *a = gx_dch_arena(d);
	if (!a || (!v && d->elem_size))
		return -EINVAL;
	if (!try_only && !gx_co_current())
		return -EPERM;
	if (d->flags & GX_DCH_RINGCAP) {
		gx_ring *r = gx_ring_at(a, d->main);
		if (!r)
			return -EINVAL;
		for (;;) {
			if (atomic_load_explicit(&d->closed, memory_order_relaxed))
				return -EPIPE;
			int rc = gx_dch_put(a, d, r, v);
			if (rc == 0) {
				gx_ec_notify(&d->data, NULL);
				return 0;
			}
			if (rc != -EAGAIN || try_only)
				return rc;
			rc = gx_ec_wait(&d->space, gx_dch_room, d, gx_dspin(a), u, NULL);
			if (rc < 0)
				return rc;
		}
	}
	for (;;) {
		if (atomic_load(&d->closed))
			return -EPIPE;
		int64_t cr = atomic_load(&d->credits);
		if (cr > 0 && atomic_compare_exchange_weak(&d->credits, &cr, cr - 1)) {
			if (d->cap == 0 && try_only &&
			    atomic_load(&d->rwait) <= atomic_load(&d->sent) - atomic_load(&d->taken)) {
				/* a try send on a rendezvous channel succeeds only
				 * when a receiver waits that no value is already
				 * on its way to */
				atomic_fetch_add(&d->credits, 1);
				return -EAGAIN;
			}
			gx_ring *r = gx_ring_at(a, d->main);
			int rc = r ? gx_dch_put(a, d, r, v) : -EINVAL;
			if (rc < 0) {
				atomic_fetch_add(&d->credits, 1);
				if (rc != -EAGAIN || try_only)
					return rc;
				gx_yield();
				continue;
			}
			uint64_t ticket = atomic_fetch_add(&d->sent, 1) + 1;
			gx_ec_notify(&d->data, NULL);
			if (d->cap || try_only)
				return 0; /* try: a waiting receiver takes it */
			gx_dch_rv t = {d, ticket};
			rc = gx_ec_wait(&d->space, gx_dch_taken, &t, gx_dspin(a), u, NULL);
			if (rc < 0)
				return rc;
			return atomic_load(&d->taken) >= ticket ? 0 : -EPIPE;
		}
		if (cr > 0)
			continue;
		if (try_only)
			return -EAGAIN;
		int rc = gx_ec_wait(&d->space, gx_dch_space, d, gx_dspin(a), u, NULL);
		if (rc < 0)
			return rc;
	}
}

/* ---- receive ---- */

static bool gx_dch_data(void *arg)
{
	gx_dch *d = arg;
	gx_arena *a = gx_par_arena(0);
	if (atomic_load(&d->closed))
		return true;
	if (!a || d->magic != GX_DCHAN_MAGIC)
		return true; /* freed under us: the call reports it */
	gx_ring *m = gx_dch_mine(a, d);
	if (m && gx_ring_depth(m))
		return true;
	gx_ring *r = gx_ring_at(a, d->main);
	return !r || (gx_dch_main_mine(d) && gx_ring_depth(r));
}

static int gx_dch_recv(gx_chan *c, void *v, bool *ok, gx_until u, bool try_only)
{
	gx_dch *d = gx_dch_of(c);
	gx_arena *a = gx_dch_arena(d);
	if (!a)
		return -EINVAL;
	if (!try_only && !gx_co_current())
		return -EPERM;
	for (;;) {
		gx_ring *m = gx_dch_mine(a, d);
		if (m && gx_dch_take(a, d, m, v, NULL) == 0) {
			if (ok)
				*ok = true;
			return 0;
		}
		if (gx_dch_main_mine(d)) {
			int rc = gx_dch_take(a, d, gx_ring_at(a, d->main), v, NULL);
			if (rc == 0 || rc == -EBADMSG) {
				gx_dch_took(d);
				if (rc < 0)
					return rc;
				if (ok)
					*ok = true;
				return 0;
			}
		}
		if (atomic_load(&d->closed)) {
			/* a value published just before the close comes first,
			 * if it is one this process may take */
			gx_ring *mr = gx_ring_at(a, d->main);
			if ((m && gx_ring_depth(m)) || (mr && gx_dch_main_mine(d) && gx_ring_depth(mr)))
				continue;
			if (v && d->elem_size)
				memset(v, 0, d->elem_size);
			if (ok)
				*ok = false;
			return 0;
		}
		if (try_only)
			return -EAGAIN;
		atomic_fetch_add(&d->rwait, 1);
		int rc = gx_ec_wait(&d->data, gx_dch_data, d, gx_dspin(a), u, NULL);
		atomic_fetch_sub(&d->rwait, 1);
		if (rc < 0)
			return rc;
		if (d->magic != GX_DCHAN_MAGIC)
			return -EINVAL;
	}
}

static int gx_dch_close(gx_chan *c)
{
	gx_dch *d = gx_dch_of(c);
	gx_arena *a = gx_dch_arena(d);
	if (!a)
		return -EINVAL;
	uint32_t z = 0;
	if (!atomic_compare_exchange_strong(&d->closed, &z, 1))
		return -EALREADY;
	gx_ec_notify(&d->data, NULL);
	gx_ec_notify(&d->space, NULL);
	return 0;
}

static size_t gx_dch_len(const gx_chan *c)
{
	gx_dch *d = gx_dch_of(c);
	if (d->cap == 0)
		return 0; /* Go: an unbuffered channel holds nothing */
	gx_arena *a = gx_dch_arena(d);
	gx_ring *r = a ? gx_ring_at(a, d->main) : NULL;
	return r ? (size_t)gx_ring_depth(r) : 0;
}

static size_t gx_dch_cap(const gx_chan *c)
{
	return gx_dch_of(c)->cap;
}

static const gx_dchan_hooks gx_dch_hooks = {
	.make = gx_dch_make,
	.free = gx_dch_free,
	.send = gx_dch_send,
	.recv = gx_dch_recv,
	.close = gx_dch_close,
	.len = gx_dch_len,
	.cap = gx_dch_cap,
};

/* gx_run calls this (a constructor would not run when the static library
 * leaves this file out of a program that makes no other call into it) */
void gx_dchan_install(void)
{
	gx_chan_set_dchan_hooks(&gx_dch_hooks);
}

/* ---- broadcast, scatter, gather, route, balance ---- */

static gx_dch *gx_dch_check(gx_chan *c, gx_arena **ap)
{
	if (!c || !gx_chan_is_d(c))
		return NULL;
	gx_dch *d = gx_dch_of(c);
	*ap = gx_dch_arena(d);
	return *ap ? d : NULL;
}

/* Put v into worker i's ring, waiting as u allows while it is full. */
/* The workers of d taking tasks now, into act: their count. */
static int gx_dch_active(const gx_dch *d, int *act)
{
	int na = 0;
	for (uint32_t i = 0; i < d->nw && i < GX_MAX_WORKERS && (int)i < gx_pl.nslots; i++)
		if (gx_active((int)i))
			act[na++] = (int)i;
	return na;
}

static int gx_dch_put_worker(gx_arena *a, gx_dch *d, uint32_t i, const void *v, gx_until u)
{
	gx_ring *r = gx_ring_at(a, d->w[i]);
	if (!r)
		return -EINVAL;
	for (;;) {
		if (atomic_load(&d->closed))
			return -EPIPE;
		int rc = gx_dch_put(a, d, r, v);
		if (rc != -EAGAIN)
			return rc;
		rc = gx_sleep_for(20 * GX_MICROSECOND, u);
		if (rc < 0)
			return rc;
	}
}

int gx_chan_broadcast(gx_chan *c, const void *v, gx_until u)
{
	gx_arena *a;
	gx_dch *d = gx_dch_check(c, &a);
	if (!d || (!v && d->elem_size))
		return -EINVAL;
	if (!gx_co_current())
		return -EPERM;
	int n = 0;
	for (uint32_t i = 0; i < d->nw && (int)i < gx_pl.nslots; i++) {
		if (!gx_active((int)i))
			continue;
		int rc = gx_dch_put_worker(a, d, i, v, u);
		if (rc < 0)
			return rc;
		n++;
	}
	gx_ec_notify(&d->data, NULL);
	return n;
}

int gx_chan_scatter(gx_chan *c, const void *vals, size_t n, gx_until u)
{
	gx_arena *a;
	gx_dch *d = gx_dch_check(c, &a);
	if (!d || (n && !vals && d->elem_size))
		return -EINVAL;
	if (!gx_co_current())
		return -EPERM;
	int act[GX_MAX_WORKERS], na = gx_dch_active(d, act);
	if (!na)
		return -ESHUTDOWN;
	for (size_t k = 0; k < n; k++) {
		int rc = gx_dch_put_worker(a, d, (uint32_t)act[k % (size_t)na],
					   (const char *)vals + k * d->elem_size, u);
		if (rc < 0)
			return rc;
		if (k % 32 == 31)
			gx_ec_notify(&d->data, NULL);
	}
	gx_ec_notify(&d->data, NULL);
	return (int)n;
}

int gx_chan_gather(gx_chan *c, void *out, int *from, gx_until u)
{
	gx_arena *a;
	gx_dch *d = gx_dch_check(c, &a);
	if (!d || (!out && d->elem_size))
		return -EINVAL;
	if (!gx_co_current())
		return -EPERM;
	int want = gx_workers();
	bool have[GX_MAX_WORKERS] = {0};
	char *tmp = d->elem_size ? malloc(d->elem_size) : NULL;
	if (d->elem_size && !tmp)
		return -ENOMEM;
	int got = 0, rc = 0;
	while (got < want) {
		int32_t sender = -1;
		rc = gx_dch_take(a, d, gx_ring_at(a, d->main), tmp, &sender);
		if (rc == 0) {
			gx_dch_took(d);
			if (sender >= 0 && sender < GX_MAX_WORKERS && !have[sender]) {
				have[sender] = true;
				if (d->elem_size)
					memcpy((char *)out + (size_t)got * d->elem_size, tmp, d->elem_size);
				if (from)
					from[got] = sender;
				got++;
			} else {
				/* a second value from one worker (or from the main
				 * process): back in the queue for someone else */
				int rc2 = gx_dch_send(c, tmp, u, false);
				if (rc2 < 0) {
					rc = rc2;
					break;
				}
				gx_sleep_for(20 * GX_MICROSECOND, u);
			}
			continue;
		}
		if (rc != -EAGAIN)
			break;
		if (atomic_load(&d->closed)) {
			rc = -EPIPE;
			break;
		}
		rc = gx_ec_wait(&d->data, gx_dch_data, d, gx_dspin(a), u, NULL);
		if (rc < 0)
			break;
	}
	if (got < want) {
		/* ended early: what was taken goes back, so that a failed
		 * gather consumes nothing (the order among them changes) */
		gx_ring *m = gx_ring_at(a, d->main);
		for (int k = 0; k < got && m; k++) {
			const void *v = d->elem_size ? (char *)out + (size_t)k * d->elem_size : NULL;
			int32_t hdr_from = from ? from[k] : -1;
			(void)hdr_from;
			if (gx_dch_put(a, d, m, v) == 0 && !(d->flags & GX_DCH_RINGCAP))
				atomic_fetch_sub(&d->credits, 1);
		}
		gx_ec_notify(&d->data, NULL);
	}
	free(tmp);
	return got == want ? got : (rc < 0 ? rc : got);
}

int gx_chan_route(gx_chan *c, int worker)
{
	gx_arena *a;
	gx_dch *d = gx_dch_check(c, &a);
	if (!d || worker < -1 || worker >= (int)d->nw)
		return -EINVAL;
	atomic_store(&d->route, worker);
	gx_ec_notify(&d->data, NULL);
	return 0;
}

int gx_chan_balance(gx_chan *c)
{
	gx_arena *a;
	gx_dch *d = gx_dch_check(c, &a);
	if (!d)
		return -EINVAL;
	int act[GX_MAX_WORKERS], na = gx_dch_active(d, act);
	if (!na)
		return -ESHUTDOWN;
	char *tmp = d->elem_size ? malloc(d->elem_size) : NULL;
	if (d->elem_size && !tmp)
		return -ENOMEM;
	int moved = 0;
	gx_ring *m = gx_ring_at(a, d->main);
	while (gx_dch_take(a, d, m, tmp, NULL) == 0) {
		gx_ring *r = gx_ring_at(a, d->w[act[moved % na]]);
		if (!r || gx_dch_put(a, d, r, tmp) < 0) {
			/* that worker's queue is full: back to the shared queue
			 * (its credit was never given back: nothing to undo) */
			gx_dch_put(a, d, m, tmp);
			break;
		}
		gx_dch_took(d);
		moved++;
	}
	free(tmp);
	gx_ec_notify(&d->data, NULL);
	gx_ec_notify(&d->space, NULL);
	return moved;
}
