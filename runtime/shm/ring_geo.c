/*
 * The ring's geometry in this process, and the ring's life: create, find,
 * destroy.
 *
 * What: a ring's geometry (capacity, stride, message size, flags, logical
 * capacity, spin budget) is read from its header once per process, when
 * the ring is made or first found here, checked against the arena's bounds
 * and kept in a process-local table keyed by the ring's address and its
 * nonce (a ring made anew at the same place has another), so a peer that
 * rewrites the header afterwards changes no bound this process uses: a
 * batch receive never writes more than n times the message size this
 * process knows. The table is an open-addressing hash keyed by the ring's
 * address (rings sit on 128 bytes), grown at half full, never evicting:
 * once this process has a ring's geometry, it keeps it. A ring destroyed
 * elsewhere and made again at the same address has a new nonce: its entry
 * is taken anew, unless its message size changed; then only gx_ring_at
 * (the caller asks for the ring as it is now) takes it, as every other
 * call's caller sized its buffers for the ring it knew, and a peer that
 * rewrites a header with a fresh nonce must not change that. A call that
 * waits copies the geometry before it yields (the table may grow and move
 * meanwhile, or an entry be taken anew) and, after each wait, checks that
 * the ring still carries the nonce of its copy. A caller with a hot path
 * (a distributed channel's view, par/dchan.h) may keep its own copy
 * (gx_ring_geo) and pass it to the _g calls, which check it against the
 * ring's nonce as the table's lookup would, without the table's probe.
 *
 * Invariants:
 *  - slot addresses depend only on the position and on this process's copy
 *    of the geometry (gx_rgeo), never on the header in shared memory;
 *  - a live ring's offset is in the arena's registry (h->rings, which
 *    repair walks) and its pool chunk is SHARED (its creator's death does
 *    not return it to the pool); destroy undoes both, an arena reset
 *    forgets them all.
 *
 * Who writes what: only the creator writes the header's geometry, once,
 * and the slots' first sequence words; create CASes a free registry entry
 * to the ring's offset and destroy CASes it back to 0; destroy and
 * gx_ring_forget_all (arena reset) wipe the magic and the nonce. The table
 * is this process's own.
 *
 * Ordering: the header and the slots' sequence words, then the magic with
 * release in gx_ring_create; gx_rg_take loads the magic with acquire
 * before it reads the geometry.
 *
 * Rejected: re-reading and re-validating the header on every call (a
 * header rewritten between the check and the use still steers a copy); a
 * process-local ring handle in the API (every caller holds the shared
 * pointer; the copies above are an option for the runtime's own callers).
 */
#include "shm/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/rand.h"

/* ---- this process's copy of each ring's geometry ---- */

gx_rg_table gx_rg_tab;

static int gx_rg_grow(void)
{
	size_t n = gx_rg_tab.n ? gx_rg_tab.n * 2 : 256;
	gx_rgeo *old = gx_rg_tab.v, *v = calloc(n, sizeof *v);
	size_t oldn = gx_rg_tab.n;
	if (!v)
		return -ENOMEM;
	gx_rg_tab.v = v;
	gx_rg_tab.n = n;
	gx_rg_tab.used = 0;
	for (size_t i = 0; i < oldn; i++)
		if (old[i].r && old[i].r != GX_RG_DEAD) {
			*gx_rg_find(old[i].r) = old[i];
			gx_rg_tab.used++;
		}
	free(old);
	return 0;
}

const gx_rgeo *gx_rg_take(gx_arena *a, gx_ring *r, bool found)
{
	const gx_arena_geo *g = gx_geo(a);
	gx_off off = gx_arena_off(a, r);
	if (!g || !off || off % 128 || !gx_gptr(g, off, GX_RING_HDR))
		return NULL;
	/* acquire: pairs with gx_ring_create's release of the magic */
	if (atomic_load_explicit(&r->magic, memory_order_acquire) != GX_RING_MAGIC)
		return NULL;
	gx_rgeo e = {.r = r, .a = a, .self = off, .slots = r->slots};
	e.nonce = atomic_load_explicit(&r->nonce, memory_order_relaxed);
	e.cap = *(volatile uint32_t *)&r->cap;
	e.stride = *(volatile uint32_t *)&r->stride;
	e.msg_size = *(volatile uint32_t *)&r->msg_size;
	e.flags = *(volatile uint32_t *)&r->flags & (GX_RING_NOWAKE | GX_RING_TAKE);
	e.spin_ns = *(volatile int64_t *)&r->spin_ns;
	e.lcap = *(volatile uint32_t *)&r->lcap;
	if (e.cap < 2 || e.cap > (1u << 24) || (e.cap & (e.cap - 1)) || e.stride < 16 || e.stride > 128 ||
	    (e.stride & (e.stride - 1)) || e.msg_size < 1 || e.msg_size > e.stride - 8 ||
	    !gx_gptr(g, off, GX_RING_HDR + e.cap * e.stride) || *(volatile gx_off *)&r->self != off)
		return NULL;
	if (e.lcap == 0 || e.lcap > e.cap)
		return NULL;
	e.shift = (uint32_t)__builtin_ctz(e.stride); /* a power of two, checked above */
	if (e.spin_ns < 0 || e.spin_ns > GX_SECOND)
		e.spin_ns = g->spin_ns; /* garbage: the arena's budget */
	gx_rgeo *known = gx_rg_find(r);
	if (!found && known && known->r == r && known->msg_size != e.msg_size)
		return NULL; /* not the ring this process's callers size buffers for */
	if ((gx_rg_tab.used + 1) * 2 > gx_rg_tab.n && gx_rg_grow() < 0)
		return NULL;
	gx_rgeo *slot = gx_rg_find(r);
	if (!slot->r || slot->r == GX_RG_DEAD)
		gx_rg_tab.used += !slot->r;
	*slot = e;
	return slot;
}

static void gx_rg_forget(const gx_ring *r)
{
	gx_rgeo *e = gx_rg_find(r);
	if (e && e->r == r)
		e->r = GX_RG_DEAD;
}

/* ---- create, find, destroy ---- */

static uint32_t gx_ring_stride(uint32_t msg_size)
{
	uint32_t stride = 16;
	while (stride < 8 + (msg_size < 8 ? 8 : msg_size))
		stride *= 2;
	return stride;
}

/* Enter off in the arena's ring registry (repair walks it). 0, -ENOMEM. */
static int gx_ring_register(gx_arena *a, uint64_t off)
{
	gx_arena_hdr *h = gx_ah(a);
	for (int i = 0; i < GX_MAX_RINGS; i++) {
		uint64_t z = 0;
		if (atomic_compare_exchange_strong(&h->rings[i], &z, off))
			return 0;
	}
	return -ENOMEM;
}

int gx_ring_create(gx_arena *a, gx_ring **out, uint32_t capacity, uint32_t msg_size, unsigned flags)
{
	if (flags & ~GX_RING_NOWAKE) {
		if (out)
			*out = NULL;
		return -EINVAL; /* TAKE is the runtime's own */
	}
	return gx_ring_create_lcap(a, out, capacity, msg_size, flags, capacity);
}

int gx_ring_create_lcap(gx_arena *a, gx_ring **out, uint32_t capacity, uint32_t msg_size, unsigned flags,
			uint32_t lcap)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	const gx_arena_geo *g = gx_geo(a);
	if (!g || capacity < 2 || capacity > (1u << 24) || (capacity & (capacity - 1)) || msg_size < 1 ||
	    msg_size > GX_RING_INLINE_MAX || (flags & ~(GX_RING_NOWAKE | GX_RING_TAKE)) || lcap < 1 || lcap > capacity)
		return -EINVAL;
	uint32_t stride = gx_ring_stride(msg_size);
	uint64_t bytes = GX_RING_HDR + (uint64_t)capacity * stride;
	if (bytes > GX_POOL_MAX_CHUNK)
		return -EINVAL;
	int64_t off = gx_pool_alloc(a, bytes, -1);
	if (off < 0)
		return (int)off;
	gx_ring *r = gx_gptr(g, (uint64_t)off, bytes);
	memset(r, 0, GX_RING_HDR);
	r->cap = capacity;
	r->msg_size = msg_size;
	r->stride = stride;
	r->flags = flags;
	r->lcap = lcap;
	r->spin_ns = g->spin_ns;
	r->self = (gx_off)off;
	uint64_t nonce = gx_rand64() | 1;
	atomic_store_explicit(&r->nonce, nonce, memory_order_relaxed);
	for (uint32_t i = 0; i < capacity; i++)
		atomic_store_explicit((_Atomic uint64_t *)(r->slots + (size_t)i * stride), i, memory_order_relaxed);
	if (gx_ring_register(a, (uint64_t)off) < 0) {
		gx_pool_free(a, (gx_off)off);
		return -ENOMEM;
	}
	/* a shared object: its creator's death must not return it to the pool */
	gx_pool_share(a, (gx_off)off);
	/* release: pairs with gx_rg_take's acquire; the header and slots first */
	atomic_store_explicit(&r->magic, GX_RING_MAGIC, memory_order_release);
	if (!gx_rg_take(a, r, true)) {
		gx_ring_destroy(a, r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

gx_ring *gx_ring_at(gx_arena *a, gx_off off)
{
	gx_ring *r = gx_aptr(a, off, GX_RING_HDR);
	if (!r || off % 128)
		return NULL; /* rings start on a 128-byte boundary */
	gx_rgeo *e = gx_rg_find(r);
	const gx_rgeo *v = e && e->r == r && e->nonce == atomic_load_explicit(&r->nonce, memory_order_relaxed)
				   ? e
				   : gx_rg_take(a, r, true);
	return v && v->a == a ? r : NULL;
}

gx_ring *gx_ring_known(gx_arena *a, gx_ring *r)
{
	const gx_rgeo *v = gx_ring_v(r);
	return v && v->a == a ? r : NULL;
}

bool gx_ring_geo(gx_ring *r, gx_rgeo *out)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v)
		return false;
	*out = *v;
	return true;
}

gx_off gx_ring_off(const gx_ring *r)
{
	const gx_rgeo *v = gx_ring_v((gx_ring *)r);
	return v ? v->self : 0;
}

int gx_ring_destroy(gx_arena *a, gx_ring *r)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || v->a != a)
		return -EINVAL;
	gx_off self = v->self;
	gx_arena_hdr *h = gx_ah(a);
	for (int i = 0; i < GX_MAX_RINGS; i++) {
		uint64_t o = self;
		atomic_compare_exchange_strong(&h->rings[i], &o, 0);
	}
	atomic_store_explicit(&r->magic, 0, memory_order_relaxed);
	atomic_store_explicit(&r->nonce, 0, memory_order_relaxed);
	gx_rg_forget(r);
	return gx_pool_free_shared(a, self);
}

void gx_ring_forget_all(gx_arena *a)
{
	gx_arena_hdr *h = gx_ah(a);
	for (int i = 0; i < GX_MAX_RINGS; i++) {
		uint64_t off = atomic_load(&h->rings[i]);
		gx_ring *r = off % 128 ? NULL : gx_aptr(a, off, GX_RING_HDR);
		if (!r)
			continue;
		atomic_store_explicit(&r->magic, 0, memory_order_relaxed);
		atomic_store_explicit(&r->nonce, 0, memory_order_relaxed);
		gx_rg_forget(r);
	}
}
