/*
 * The MPMC ring's internals, shared by ring.c (send and receive: the slot
 * protocol), ring_geo.c (this process's geometry table; create, find,
 * destroy) and ring_repair.c (salvage and repair after a death). Not for
 * other files: everyone else goes through shm.h and gonex/shm.h.
 *
 * struct gx_ring is the header in the arena, the slots after it; gx_rgeo
 * is this process's copy of a ring's geometry, and every slot address
 * below is computed from it, never from the header (ring_geo.c says why).
 */
#ifndef GX_SHM_RING_H
#define GX_SHM_RING_H

#include <stdbool.h>
#include <stddef.h>

#include "shm/shm.h"

#define GX_RING_MAGIC 0x676e6972u
#define GX_POS_MASK ((UINT64_C(1) << 56) - 1)
#define GX_TAG_CHUNK 0x7eu
#define GX_TAG_SKIP 0x7fu
#define GX_TAG_BAD 0xfeu /* never written: a garbage slot being consumed */

struct gx_ring {
	_Atomic uint32_t magic; /* stored last (release) by gx_ring_create */
	uint32_t cap;
	uint32_t msg_size;
	uint32_t stride;
	uint32_t flags;
	uint32_t lcap; /* messages it may hold (<= cap; a channel's exact capacity) */
	int64_t spin_ns;
	gx_off self;
	_Atomic uint64_t nonce; /* this ring's identity (gx_rgeo) */
	_Alignas(128) _Atomic uint64_t head; /* position, | GX_HEAD_CLOSED once closed */
	_Alignas(128) _Atomic uint64_t tail;
	_Alignas(128) gx_ec not_empty;
	_Alignas(64) gx_ec not_full;
	_Alignas(64) _Atomic uint32_t closed;
	_Atomic uint64_t skipped, lost, corrupt, sleeps, wakes;
	_Alignas(128) char slots[];
};

_Static_assert(offsetof(struct gx_ring, slots) <= GX_RING_HDR, "ring header too big");

/* head's top bit: the ring is closed. gx_ring_close sets it, so a
 * producer's claim, a CAS from an open head, fails once it is set: every
 * claim came before the close or fails with -EPIPE, and a consumer that
 * finds the bit set and tail at head's position knows the ring is empty
 * for good. The position is the other 63 bits (gx_head_pos). */
#define GX_HEAD_CLOSED (1ull << 63)

static inline uint64_t gx_head_pos(uint64_t h)
{
	return h & ~GX_HEAD_CLOSED;
}

/* ring.c: a close's second half (the closed word, the wake-ups), for
 * repair to finish the close of a closer that died after the first. */
void gx_ring_close_finish(gx_ring *r);

/* gx_rgeo, this process's copy of one ring's geometry, is in shm.h. */
#define GX_RG_DEAD ((gx_ring *)1)

/* The table itself, an open-addressing hash keyed by the ring's address
 * (ring_geo.c); the lookup is here so that every call finds its geometry
 * without leaving its file. */
typedef struct gx_rg_table {
	gx_rgeo *v;
	size_t n, used; /* n a power of two; used counts live and dead keys */
} gx_rg_table;

extern gx_rg_table gx_rg_tab;

static inline size_t gx_rg_hash(const gx_ring *r)
{
	uint64_t x = (uint64_t)(uintptr_t)r >> 7;
	return (size_t)((x * 0x9e3779b97f4a7c15ull) >> 20);
}

/* The entry of r (or the free one its probe ends at), NULL when the table
 * is empty. */
static inline gx_rgeo *gx_rg_find(const gx_ring *r)
{
	if (!gx_rg_tab.v)
		return NULL;
	gx_rgeo *dead = NULL;
	for (size_t i = gx_rg_hash(r) & (gx_rg_tab.n - 1);; i = (i + 1) & (gx_rg_tab.n - 1)) {
		gx_rgeo *e = &gx_rg_tab.v[i];
		if (e->r == r)
			return e;
		if (e->r == GX_RG_DEAD && !dead)
			dead = e;
		if (!e->r)
			return dead ? dead : e;
	}
}

/* Read r's geometry from its header (in arena a), check it against a's
 * bounds, and keep it. NULL when it is not a ring of a. Unless found (a
 * caller that asked for the ring anew: create, gx_ring_at), a ring this
 * process knows whose header now gives another message size is refused:
 * the message size bounds what a receive writes into the caller's
 * buffer, and the caller sized that buffer for the ring it knew. */
const gx_rgeo *gx_rg_take(gx_arena *a, gx_ring *r, bool found);

/* r's geometry: the kept one while r still carries the same nonce, else
 * taken anew (r made again at the same place), refused when its message
 * size changed. NULL: not a ring. The pointer is into this process's
 * table, which may grow (and move) or be taken anew when the coroutine
 * yields: a call that waits keeps a copy (gx_rg_hold). */
static inline const gx_rgeo *gx_rg(gx_ring *r)
{
	gx_rgeo *e = gx_rg_find(r);
	if (e && e->r == r && e->nonce == atomic_load_explicit(&r->nonce, memory_order_relaxed))
		return e;
	gx_arena *a = gx_arena_of(r);
	return a ? gx_rg_take(a, r, false) : NULL;
}

/* After a wait: r still carries the ring a call's copy g was taken from
 * (destroyed or made anew meanwhile: the call ends with -EINVAL). */
static inline bool gx_rg_same(const gx_ring *r, const gx_rgeo *g)
{
	return atomic_load_explicit(&r->magic, memory_order_relaxed) == GX_RING_MAGIC &&
	       atomic_load_explicit(&r->nonce, memory_order_relaxed) == g->nonce;
}

/* The geometry of r for a call, or NULL for a bad pointer or a ring whose
 * magic was wiped (destroyed, or garbage). */
static inline const gx_rgeo *gx_ring_v(gx_ring *r)
{
	if (!r || ((uintptr_t)r & 127))
		return NULL;
	return gx_rg(r);
}

static inline _Atomic uint64_t *gx_seq(const gx_rgeo *v, uint64_t pos)
{
	return (_Atomic uint64_t *)(v->slots + ((size_t)(pos & (v->cap - 1)) << v->shift));
}

static inline char *gx_payload(const gx_rgeo *v, uint64_t pos)
{
	return v->slots + ((size_t)(pos & (v->cap - 1)) << v->shift) + 8;
}

/* seq's position minus want, as a signed 56-bit difference */
static inline int64_t gx_pdiff(uint64_t seq, uint64_t want)
{
	return (int64_t)(((seq & GX_POS_MASK) - (want & GX_POS_MASK)) << 8) >> 8;
}

/* The sequence word of position pos published with tag. */
static inline uint64_t gx_pub(uint64_t pos, uint32_t tag)
{
	return ((pos + 1) & GX_POS_MASK) | (uint64_t)tag << 56;
}

/* ring.c: pass over the skipped slots at tail (a withdrawn message, a
 * dead sender's repaired claim), claimed and released as a consumer
 * would, each claim in journal p (kind RECV on r, set by the caller: the
 * caller's own, or a dead slot's under repair): a skip holds a place of
 * the logical capacity until a consumer comes by, and a rendezvous or a
 * full channel may have none coming. */
void gx_ring_pass_skips(gx_ring *r, const gx_rgeo *v, gx_proc *p);

#endif
