/*
 * The pools' internals, shared by pool.c (the pools: alloc, free, the
 * free lists, the ring hand-over) and pool_repair.c (relink and reclaim
 * after a death). Not for other files: everyone else goes through shm.h
 * and gonex/shm.h.
 *
 * A slab (GX_SLAB bytes) serves one (node, class): a GX_SLAB_HDR-byte
 * header, then its chunk headers, then the chunks. A chunk id is its
 * global index + 1: slab index << GX_ID_SHIFT | index in the slab. Every
 * helper here checks slabs and ids against this process's geometry
 * (gx_geo), never against the header in shared memory.
 */
#ifndef GX_SHM_POOL_H
#define GX_SHM_POOL_H

#include <errno.h>

#include "shm/shm.h"

#define GX_SLAB_HDR 64u
#define GX_ID_SHIFT 15 /* chunks per slab < 32768 */
#define GX_ID_MAX_IN_SLAB ((1u << GX_ID_SHIFT) - 1)

static inline gx_pool_cls *gx_pcls(gx_arena *a, int node, int c)
{
	return &gx_ah(a)->cls[node][c];
}

/* A slab's layout as read once from its header: every bound below comes
 * from this copy, so a peer that rewrites the header between the check
 * and the use (a size of 0 under a division, a bigger nchunks under a
 * loop) changes nothing this process computes. */
typedef struct gx_slab_v {
	gx_slab_hdr *s;
	uint64_t size, data;
	uint32_t nchunks;
	uint16_t cls, node;
} gx_slab_v;

/* The slab at slab index si, read once and validated into *v: 0, or
 * -EINVAL when it is not a live slab (never carved, or corrupt). */
static inline int gx_slab_at(const gx_arena_geo *g, uint64_t si, gx_slab_v *v)
{
	if (si >= g->nslabs)
		return -EINVAL;
	gx_slab_hdr *s = (gx_slab_hdr *)(g->base + g->slab_first + si * GX_SLAB);
	/* acquire: pairs with gx_carve's release of the magic */
	if (atomic_load_explicit(&s->magic, memory_order_acquire) != GX_SLAB_MAGIC)
		return -EINVAL;
	const volatile gx_slab_hdr *h = s;
	*v = (gx_slab_v){.s = s, .size = h->size, .data = h->data, .nchunks = h->nchunks, .cls = h->cls,
			 .node = h->node};
	if (v->cls >= GX_POOL_CLASSES || v->node >= g->nodes || v->size != (uint64_t)64 << v->cls ||
	    v->nchunks == 0 || v->nchunks > GX_ID_MAX_IN_SLAB)
		return -EINVAL;
	if (v->data < GX_SLAB_HDR + (uint64_t)v->nchunks * sizeof(gx_chunk_hdr) || v->data > GX_SLAB ||
	    (uint64_t)v->nchunks * v->size > GX_SLAB - v->data)
		return -EINVAL;
	return 0;
}

/* Chunk header i of slab v (i < v->nchunks). */
static inline gx_chunk_hdr *gx_slab_chunk(const gx_slab_v *v, uint32_t i)
{
	return (gx_chunk_hdr *)((char *)v->s + GX_SLAB_HDR) + i;
}

/* End of the slabs carved so far in node's part (the bump pointer runs past
 * the part's end when a carve fails, and a peer may have written anything
 * there: it is clamped to the part). */
static inline uint64_t gx_carved_end(gx_arena *a, const gx_arena_geo *g, uint32_t node)
{
	uint64_t end = atomic_load_explicit(&gx_ah(a)->part[node].next_slab, memory_order_acquire);
	if (end < g->part_base[node])
		return g->part_base[node];
	return end > g->part_end[node] ? g->part_end[node] : end;
}

/* One chunk, resolved: its slab, its header, where its data is. */
typedef struct {
	gx_slab_v slab; /* as read once (gx_slab_at) */
	gx_chunk_hdr *hdr;
	uint64_t off; /* chunk data offset */
	uint64_t si;
	uint32_t i;
} gx_chunk_ref;

/* Resolve chunk id (global index + 1). 0 or -EINVAL. */
static inline int gx_chunk_by_id(const gx_arena_geo *g, uint32_t id, gx_chunk_ref *r)
{
	if (id == 0)
		return -EINVAL;
	uint32_t x = id - 1;
	uint64_t si = x >> GX_ID_SHIFT;
	uint32_t i = x & GX_ID_MAX_IN_SLAB;
	if (gx_slab_at(g, si, &r->slab) < 0 || i >= r->slab.nchunks)
		return -EINVAL;
	r->hdr = gx_slab_chunk(&r->slab, i);
	r->off = g->slab_first + si * GX_SLAB + r->slab.data + (uint64_t)i * r->slab.size;
	r->si = si;
	r->i = i;
	return 0;
}

static inline uint32_t gx_ref_id(const gx_chunk_ref *r)
{
	return (uint32_t)((r->si << GX_ID_SHIFT) | r->i) + 1;
}

/* The slab of chunk r is a slab of pool (node, c). */
static inline bool gx_ref_in(const gx_chunk_ref *r, int node, int c)
{
	return r->slab.cls == c && r->slab.node == node;
}

/* Put r (state already FREE, journal open on its pool) on its list. */
void gx_push_one(gx_arena *a, gx_chunk_ref *r);

/* Move r from state expect to FREE and onto its list; count a free unless
 * it was a cached chunk (counted when it was cached). 1 when it moved. */
int gx_free_to_list(gx_arena *a, int slot, gx_chunk_ref *r, uint32_t expect);

#endif
