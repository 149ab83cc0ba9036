/*
 * Pools: size classes 64 B << 0..14 per NUMA node, in slabs of the arena.
 * Repair after a death is in pool_repair.c.
 *
 * What: each (node, class) has a lock-free free list (Treiber stack) whose
 * head is a tagged 64-bit word (chunk id + 1, change counter: no ABA).
 * Chunks carry a header (in their slab's header array, never in the chunk)
 * whose state word says who holds the chunk: FREE, OWNED|slot, CACHED|slot
 * (in that process's cache), RING|slot (handed to a ring) or SHARED (a
 * ring or channel: no owner). Every change of hands is a CAS on that word,
 * so a double free, a free of a chunk in a ring or of something that is
 * not a chunk fails with -EINVAL and changes nothing.
 *
 * Invariants (checkable with the arena quiet):
 *  - a chunk is on its pool's list iff its state is FREE, and at most once;
 *  - a chunk id on a list, in a cache or in a journal names a chunk of a
 *    live slab of that pool, or it is garbage and treated as such;
 *  - the bounds of every slab, node part and chunk index come from this
 *    process's copy of the geometry (gx_geo), never from the header.
 *
 * Who writes what: any process pushes and pops (head: CAS, acq_rel) and
 * moves chunk states (CAS); a process writes only its own slot's journal
 * and cache; a repairer writes `repairing` and the list of the pool it
 * repairs (pool_repair.c).
 *
 * Ordering. Push: the chunk's state (FREE) and its `next` are stored, then
 * the head CAS publishes them (release); pop reads head (acquire), then
 * `next`, then CASes head. The journal (pj_pool, pj_chunk, pj_kind) is
 * stored before the head CAS it covers; gx_journal_open checks `repairing`
 * after opening (seq_cst on both sides: the repairer, gx_repair_lock in
 * pool_repair.c, sets the flag, then reads every journal; the allocator
 * sets its journal, then reads the flag; one of them sees the other). An
 * allocator that finds the flag set backs off and waits, boundedly, as
 * every wait on another process's word does (pool_repair.c).
 *
 * Untrusted input: chunk ids and offsets read from shared memory (list
 * links, cache entries, slab headers) are bounds-checked before use; a bad
 * link truncates the list (counted as garbage), never a wild access.
 *
 * Rejected: bitmaps per slab (repair needs the same quiescence, and a
 * bitmap word is a hot line shared by every allocator of the class).
 */
#include "shm/pool.h"

#include "core/testpoint.h"

#include <string.h>

static inline int gx_class_of(size_t len)
{
	int c = 0;
	while (((size_t)64 << c) < len)
		c++;
	return c;
}

/* Resolve a chunk's data offset (as handed to users). 0 or -EINVAL. */
static int gx_chunk_by_off(const gx_arena_geo *g, gx_off off, gx_chunk_ref *r)
{
	if (off < g->slab_first || off >= g->slab_first + g->nslabs * GX_SLAB)
		return -EINVAL;
	uint64_t si = (off - g->slab_first) / GX_SLAB;
	gx_slab_v s;
	if (gx_slab_at(g, si, &s) < 0)
		return -EINVAL;
	/* a test rewrites the header here: nothing below may read it again */
	GX_TEST_POINT("pool.slab.read", s.s);
	uint64_t in = off - g->slab_first - si * GX_SLAB;
	if (in < s.data || (in - s.data) % s.size)
		return -EINVAL;
	uint64_t i = (in - s.data) / s.size;
	if (i >= s.nchunks)
		return -EINVAL;
	return gx_chunk_by_id(g, (uint32_t)((si << GX_ID_SHIFT) | i) + 1, r);
}

/* ---- journal and the repairing word ---- */

/* Wait while `repairing` names an owner worth waiting for; clear it (take
 * over) otherwise. */
static void gx_repair_wait(gx_arena *a, gx_pool_cls *pc)
{
	gx_spin sp = GX_SPIN_INIT;
	uint32_t tag;
	/* acquire: pairs with the repairer's release of repairing = 0 */
	while ((tag = atomic_load_explicit(&pc->repairing, memory_order_acquire)) != 0) {
		if (gx_spin_pause(&sp) && gx_owner_take_over(a, &sp, tag))
			atomic_compare_exchange_strong(&pc->repairing, &tag, 0);
	}
}

static void gx_journal_open(gx_arena *a, int slot, int node, int c, uint32_t kind)
{
	gx_proc *p = &gx_ah(a)->proc[slot];
	gx_pool_cls *pc = gx_pcls(a, node, c);
	for (;;) {
		atomic_store(&p->pj_pool, (uint32_t)(node * GX_POOL_CLASSES + c));
		atomic_store(&p->pj_chunk, 0);
		atomic_store(&p->pj_kind, kind); /* seq_cst: before the flag's load (Dekker with relink) */
		if (!atomic_load(&pc->repairing))
			return;
		atomic_store(&p->pj_kind, GX_J_NONE);
		gx_repair_wait(a, pc);
	}
}

static inline void gx_journal_close(gx_arena *a, int slot)
{
	/* release: the list and state stores it covered come first (a
	 * repairer that sees it closed, acquire, sees them) */
	atomic_store_explicit(&gx_ah(a)->proc[slot].pj_kind, GX_J_NONE, memory_order_release);
}

/* ---- the free lists ---- */

/* Push the chain first..last (linked through next, states FREE). */
static void gx_list_push(gx_pool_cls *pc, gx_chunk_ref *first, gx_chunk_hdr *last)
{
	uint64_t h = atomic_load_explicit(&pc->head, memory_order_relaxed);
	for (;;) {
		atomic_store_explicit(&last->next, GX_TAG_IDX(h), memory_order_relaxed);
		uint64_t nh = GX_TAG_MAKE(gx_ref_id(first), GX_TAG_CNT(h) + 1);
		/* release: the chain's next links and FREE states, for the
		 * pop that acquires this head */
		if (atomic_compare_exchange_weak_explicit(&pc->head, &h, nh, memory_order_acq_rel, memory_order_relaxed))
			return;
	}
}

/* Room for one more slab in the pools' budget (GONEX_POOL_SIZE). */
static int gx_carve_budget(gx_arena *a, const gx_arena_geo *g)
{
	gx_arena_hdr *h = gx_ah(a);
	if (g->pool_limit &&
	    atomic_fetch_add_explicit(&h->pool_used, GX_SLAB, memory_order_relaxed) + GX_SLAB > g->pool_limit) {
		atomic_fetch_sub_explicit(&h->pool_used, GX_SLAB, memory_order_relaxed);
		return -ENOMEM;
	}
	return 0;
}

/* Lay out a fresh slab at soff for class c of node: chunk 0 OWNED by slot,
 * the rest FREE and linked in order. Returns the chunk count. */
static uint32_t gx_slab_init(const gx_arena_geo *g, uint64_t soff, int slot, int node, int c)
{
	uint64_t size = (uint64_t)64 << c;
	uint64_t align = size < 4096 ? (size < 64 ? 64 : size) : 4096;
	uint32_t n = (uint32_t)((GX_SLAB - GX_SLAB_HDR) / (size + sizeof(gx_chunk_hdr)));
	if (n > GX_ID_MAX_IN_SLAB)
		n = GX_ID_MAX_IN_SLAB;
	uint64_t data;
	for (;;) {
		data = (GX_SLAB_HDR + (uint64_t)n * sizeof(gx_chunk_hdr) + align - 1) & ~(align - 1);
		if (data + (uint64_t)n * size <= GX_SLAB)
			break;
		n--;
	}
	gx_slab_hdr *s = (gx_slab_hdr *)(g->base + soff);
	s->cls = (uint16_t)c;
	s->node = (uint16_t)node;
	s->nchunks = n;
	s->data = (uint32_t)data;
	s->size = size;
	gx_chunk_hdr *ch = (gx_chunk_hdr *)((char *)s + GX_SLAB_HDR);
	uint64_t si = (soff - g->slab_first) / GX_SLAB;
	for (uint32_t i = 0; i < n; i++) {
		atomic_store_explicit(&ch[i].state, i ? GX_CHUNK_FREE : GX_CHUNK_OWNED | (uint32_t)slot,
				      memory_order_relaxed);
		uint32_t next = i + 1 < n ? (uint32_t)((si << GX_ID_SHIFT) | (i + 1)) + 1 : 0;
		atomic_store_explicit(&ch[i].next, next, memory_order_relaxed);
		ch[i].len = 0;
	}
	/* release: pairs with gx_slab_at's acquire; the fields above first */
	atomic_store_explicit(&s->magic, GX_SLAB_MAGIC, memory_order_release);
	return n;
}

/* Carve a new slab for (node, c): chunk 0 goes to the caller (OWNED by
 * slot), the rest onto the free list. 0 or -ENOMEM. */
static int gx_carve(gx_arena *a, const gx_arena_geo *g, int slot, int node, int c, gx_chunk_ref *out)
{
	if (gx_carve_budget(a, g) < 0)
		return -ENOMEM; /* GONEX_POOL_SIZE reached */
	uint64_t soff = atomic_fetch_add_explicit(&gx_ah(a)->part[node].next_slab, GX_SLAB, memory_order_acq_rel);
	if (soff < g->part_base[node] || soff >= g->part_end[node] || (soff - g->slab_first) % GX_SLAB)
		return -ENOMEM;
	uint32_t n = gx_slab_init(g, soff, slot, node, c);
	gx_pool_cls *pc = gx_pcls(a, node, c);
	atomic_fetch_add_explicit(&pc->chunks, n, memory_order_relaxed);
	uint64_t si = (soff - g->slab_first) / GX_SLAB;
	if (gx_chunk_by_id(g, (uint32_t)(si << GX_ID_SHIFT) + 1, out) < 0)
		return -ENOMEM;
	gx_chunk_ref first;
	if (n > 1 && gx_chunk_by_id(g, (uint32_t)((si << GX_ID_SHIFT) | 1) + 1, &first) == 0) {
		atomic_store(&gx_ah(a)->proc[slot].pj_chunk, gx_ref_id(&first));
		gx_list_push(pc, &first, gx_slab_chunk(&out->slab, n - 1));
	}
	return 0;
}

/* The list of pc is corrupt: empty it (repair's relink puts the free chunks
 * back). Returns the head now. */
static uint64_t gx_list_drop(gx_pool_cls *pc, uint64_t h)
{
	atomic_fetch_add_explicit(&pc->bad_frees, 1, memory_order_relaxed);
	if (atomic_compare_exchange_strong(&pc->head, &h, GX_TAG_MAKE(0, GX_TAG_CNT(h) + 1)))
		return GX_TAG_MAKE(0, GX_TAG_CNT(h) + 1);
	return h;
}

/* Take a chunk of (node, c) for slot: OWNED|slot. 0 or -ENOMEM. */
static int gx_pop(gx_arena *a, const gx_arena_geo *g, int slot, int node, int c, gx_chunk_ref *out)
{
	gx_pool_cls *pc = gx_pcls(a, node, c);
	gx_proc *p = &gx_ah(a)->proc[slot];
	gx_journal_open(a, slot, node, c, GX_J_POP);
	/* acquire: pairs with gx_list_push's release CAS (the chunk's next link) */
	uint64_t h = atomic_load_explicit(&pc->head, memory_order_acquire);
	for (;;) {
		uint32_t id = GX_TAG_IDX(h);
		if (!id) {
			int rc = gx_carve(a, g, slot, node, c, out);
			gx_journal_close(a, slot);
			return rc;
		}
		gx_chunk_ref r;
		if (gx_chunk_by_id(g, id, &r) < 0 || !gx_ref_in(&r, node, c)) {
			h = gx_list_drop(pc, h); /* corrupt head: drop the list rather than follow it */
			continue;
		}
		atomic_store(&p->pj_chunk, id);
		uint32_t next = atomic_load_explicit(&r.hdr->next, memory_order_relaxed);
		/* acq_rel: pairs with the pushers' CAS; on failure acquire the new head */
		if (!atomic_compare_exchange_weak_explicit(&pc->head, &h, GX_TAG_MAKE(next, GX_TAG_CNT(h) + 1),
							   memory_order_acq_rel, memory_order_acquire))
			continue;
		uint32_t st = GX_CHUNK_FREE;
		if (!atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_OWNED | (uint32_t)slot)) {
			/* listed but not free: the list is corrupt (its links
			 * may even cycle). Drop what is left of it rather than
			 * follow it; repair's relink puts free chunks back. */
			h = gx_list_drop(pc, atomic_load_explicit(&pc->head, memory_order_acquire));
			continue;
		}
		gx_journal_close(a, slot);
		*out = r;
		return 0;
	}
}

void gx_push_one(gx_arena *a, gx_chunk_ref *r)
{
	gx_list_push(gx_pcls(a, r->slab.node, r->slab.cls), r, r->hdr);
}

/* ---- API ---- */

/* This process's cache of class c, when it holds a usable chunk: 0 with r
 * OWNED by slot, else -1. */
static int gx_cache_take(const gx_arena_geo *g, gx_proc *p, int slot, int c, gx_chunk_ref *r)
{
	uint32_t n = p->cache_n[c];
	if (n == 0 || n > GX_CACHE_PER_CLASS)
		return -1;
	uint32_t id = p->cache[c][n - 1];
	p->cache_n[c] = n - 1;
	uint32_t st = GX_CHUNK_CACHED | (uint32_t)slot;
	if (gx_chunk_by_id(g, id, r) == 0 && r->slab.cls == c &&
	    atomic_compare_exchange_strong(&r->hdr->state, &st, GX_CHUNK_OWNED | (uint32_t)slot))
		return 0;
	return -1; /* a corrupt cache entry: the caller goes to the list */
}

int64_t gx_pool_alloc(gx_arena *a, size_t len, int node)
{
	const gx_arena_geo *g = gx_geo(a);
	if (!g || len == 0 || len > GX_POOL_MAX_CHUNK)
		return -EINVAL;
	if (node < -1 || node >= (int)g->nodes)
		return -EINVAL;
	int slot = gx_shm_slot(a);
	if (slot < 0)
		return slot;
	gx_proc *p = &gx_ah(a)->proc[slot];
	int c = gx_class_of(len);
	uint16_t mine = p->node < g->nodes ? p->node : 0;
	if (node < 0)
		node = mine;
	gx_chunk_ref r;
	if (node != mine || gx_cache_take(g, p, slot, c, &r) < 0) {
		int rc = gx_pop(a, g, slot, node, c, &r);
		if (rc < 0)
			return rc;
	}
	atomic_fetch_add_explicit(&gx_pcls(a, node, c)->allocs, 1, memory_order_relaxed);
	return (int64_t)r.off;
}

int gx_pool_free(gx_arena *a, gx_off off)
{
	const gx_arena_geo *g = gx_geo(a);
	gx_chunk_ref r;
	if (!g || gx_chunk_by_off(g, off, &r) < 0)
		return -EINVAL;
	int node = r.slab.node, c = r.slab.cls;
	gx_pool_cls *pc = gx_pcls(a, node, c);
	int slot = gx_shm_slot(a);
	if (slot < 0)
		return slot;
	uint32_t st = atomic_load(&r.hdr->state);
	if (GX_CHUNK_KIND(st) != GX_CHUNK_OWNED || st == GX_CHUNK_FREE) {
		atomic_fetch_add_explicit(&pc->bad_frees, 1, memory_order_relaxed);
		return -EINVAL;
	}
	gx_proc *p = &gx_ah(a)->proc[slot];
	uint32_t cn = p->cache_n[c];
	if (node == p->node && cn < GX_CACHE_PER_CLASS) {
		if (!atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_CACHED | (uint32_t)slot)) {
			atomic_fetch_add_explicit(&pc->bad_frees, 1, memory_order_relaxed);
			return -EINVAL;
		}
		p->cache[c][cn] = gx_ref_id(&r);
		p->cache_n[c] = cn + 1;
	} else {
		gx_journal_open(a, slot, node, c, GX_J_PUSH);
		atomic_store(&p->pj_chunk, gx_ref_id(&r));
		if (!atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_FREE)) {
			gx_journal_close(a, slot);
			atomic_fetch_add_explicit(&pc->bad_frees, 1, memory_order_relaxed);
			return -EINVAL;
		}
		gx_push_one(a, &r);
		gx_journal_close(a, slot);
	}
	atomic_fetch_add_explicit(&pc->frees, 1, memory_order_relaxed);
	return 0;
}

int64_t gx_pool_chunk_size(const gx_arena *a, gx_off off)
{
	const gx_arena_geo *g = gx_geo(a);
	gx_chunk_ref r;
	if (!g || gx_chunk_by_off(g, off, &r) < 0)
		return -EINVAL;
	uint32_t k = GX_CHUNK_KIND(atomic_load(&r.hdr->state));
	if (k != GX_CHUNK_OWNED && k != GX_CHUNK_SHARED && k != GX_CHUNK_DISOWNED)
		return -EINVAL;
	return (int64_t)r.slab.size;
}

/* Chunks of class cls on node whose state is in use (OWNED, RING, SHARED,
 * DISOWNED). */
static uint64_t gx_in_use(const gx_arena *a, const gx_arena_geo *g, int node, int cls)
{
	uint64_t n = 0, end = gx_carved_end((gx_arena *)a, g, (uint32_t)node);
	for (uint64_t off = g->part_base[node]; off < end; off += GX_SLAB) {
		gx_slab_v sl;
		if (gx_slab_at(g, (off - g->slab_first) / GX_SLAB, &sl) < 0 || sl.cls != cls || sl.node != node)
			continue;
		gx_chunk_hdr *ch = gx_slab_chunk(&sl, 0);
		for (uint32_t i = 0; i < sl.nchunks; i++) {
			uint32_t k = GX_CHUNK_KIND(atomic_load_explicit(&ch[i].state, memory_order_relaxed));
			n += k == GX_CHUNK_OWNED || k == GX_CHUNK_RING || k == GX_CHUNK_SHARED || k == GX_CHUNK_DISOWNED;
		}
	}
	return n;
}

int gx_pool_stats(const gx_arena *a, int node, int cls, gx_pool_class_stats *out)
{
	const gx_arena_geo *g = gx_geo(a);
	if (!g || !out || node < 0 || node >= (int)g->nodes || cls < 0 || cls >= GX_POOL_CLASSES)
		return -EINVAL;
	gx_pool_cls *pc = gx_pcls((gx_arena *)a, node, cls);
	memset(out, 0, sizeof *out);
	out->chunk_size = (size_t)64 << cls;
	out->allocs = atomic_load(&pc->allocs);
	out->frees = atomic_load(&pc->frees);
	out->bad_frees = atomic_load(&pc->bad_frees);
	out->chunks = atomic_load(&pc->chunks);
	/* in use: counted from the chunks' states, so it stays exact when a
	 * process died between a state change and its counter update */
	out->in_use = gx_in_use(a, g, node, cls);
	return 0;
}

/* ---- ring hand-over ---- */

int gx_pool_give(gx_arena *a, gx_off off, int to_ring, uint32_t len)
{
	(void)to_ring;
	const gx_arena_geo *g = gx_geo(a);
	gx_chunk_ref r;
	if (!g || gx_chunk_by_off(g, off, &r) < 0 || len > r.slab.size)
		return -EINVAL;
	int slot = gx_shm_slot(a);
	if (slot < 0)
		return slot;
	uint32_t st = GX_CHUNK_OWNED | (uint32_t)slot;
	if (atomic_load(&r.hdr->state) != st)
		return -EINVAL; /* not ours: leave its length alone */
	r.hdr->len = len;
	if (!atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_RING | (uint32_t)slot))
		return -EINVAL;
	return 0;
}

int gx_pool_take(gx_arena *a, gx_off off, uint32_t *len)
{
	const gx_arena_geo *g = gx_geo(a);
	gx_chunk_ref r;
	if (!g || gx_chunk_by_off(g, off, &r) < 0)
		return -EBADMSG;
	int slot = gx_shm_slot(a);
	if (slot < 0)
		return slot;
	uint32_t st = atomic_load(&r.hdr->state);
	if (GX_CHUNK_KIND(st) != GX_CHUNK_RING ||
	    !atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_OWNED | (uint32_t)slot))
		return -EBADMSG;
	uint32_t l = r.hdr->len;
	*len = l <= r.slab.size ? l : (uint32_t)r.slab.size;
	return 0;
}

int gx_free_to_list(gx_arena *a, int slot, gx_chunk_ref *r, uint32_t expect)
{
	int node = r->slab.node, c = r->slab.cls;
	gx_journal_open(a, slot, node, c, GX_J_PUSH);
	atomic_store(&gx_ah(a)->proc[slot].pj_chunk, gx_ref_id(r));
	int ok = atomic_compare_exchange_strong(&r->hdr->state, &expect, GX_CHUNK_FREE);
	if (ok)
		gx_push_one(a, r);
	gx_journal_close(a, slot);
	if (ok && GX_CHUNK_KIND(expect) != GX_CHUNK_CACHED)
		atomic_fetch_add_explicit(&gx_pcls(a, node, c)->frees, 1, memory_order_relaxed);
	return ok;
}

/* Resolve off for a call of this process: 0 with *slot and *r set. */
static int gx_ref_mine(gx_arena *a, gx_off off, int *slot, gx_chunk_ref *r)
{
	const gx_arena_geo *g = gx_geo(a);
	if (!g)
		return -EINVAL;
	*slot = gx_shm_slot(a);
	if (*slot < 0 || gx_chunk_by_off(g, off, r) < 0)
		return -EINVAL;
	return 0;
}

int gx_pool_share(gx_arena *a, gx_off off)
{
	gx_chunk_ref r;
	int slot;
	if (gx_ref_mine(a, off, &slot, &r) < 0)
		return -EINVAL;
	uint32_t st = GX_CHUNK_OWNED | (uint32_t)slot;
	return atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_SHARED) ? 0 : -EINVAL;
}

int gx_pool_disown(gx_arena *a, gx_off off)
{
	gx_chunk_ref r;
	int slot;
	if (!a || gx_ref_mine(a, off, &slot, &r) < 0)
		return -EINVAL;
	uint32_t st = GX_CHUNK_OWNED | (uint32_t)slot;
	return atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_DISOWNED) ? 0 : -EINVAL;
}

int gx_pool_own(gx_arena *a, gx_off off)
{
	gx_chunk_ref r;
	int slot;
	if (!a || gx_ref_mine(a, off, &slot, &r) < 0)
		return -EINVAL;
	uint32_t st = GX_CHUNK_DISOWNED;
	return atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_OWNED | (uint32_t)slot) ? 0 : -EINVAL;
}

int gx_pool_free_shared(gx_arena *a, gx_off off)
{
	gx_chunk_ref r;
	int slot;
	if (gx_ref_mine(a, off, &slot, &r) < 0)
		return -EINVAL;
	return gx_free_to_list(a, slot, &r, GX_CHUNK_SHARED) ? 0 : -EINVAL;
}

void gx_pool_free_ring_chunk(gx_arena *a, gx_off off)
{
	gx_chunk_ref r;
	int slot;
	if (gx_ref_mine(a, off, &slot, &r) < 0)
		return;
	uint32_t st = atomic_load(&r.hdr->state);
	if (GX_CHUNK_KIND(st) == GX_CHUNK_RING)
		gx_free_to_list(a, slot, &r, st);
}

void gx_pool_free_ring_chunk_of(gx_arena *a, gx_off off, int slot)
{
	gx_chunk_ref r;
	int me;
	if (gx_ref_mine(a, off, &me, &r) < 0)
		return;
	gx_free_to_list(a, me, &r, GX_CHUNK_RING | (uint32_t)slot);
}

void gx_pool_flush_cache(gx_arena *a, int slot)
{
	const gx_arena_geo *g = gx_geo(a);
	int me = gx_shm_slot(a);
	if (!g || me < 0 || slot < 0 || slot >= GX_SHM_MAX_PROCS)
		return;
	gx_proc *p = &gx_ah(a)->proc[slot];
	for (int c = 0; c < GX_POOL_CLASSES; c++) {
		uint32_t n = p->cache_n[c] <= GX_CACHE_PER_CLASS ? p->cache_n[c] : GX_CACHE_PER_CLASS;
		for (uint32_t k = 0; k < n; k++) {
			gx_chunk_ref r;
			if (gx_chunk_by_id(g, p->cache[c][k], &r) == 0)
				gx_free_to_list(a, me, &r, GX_CHUNK_CACHED | (uint32_t)slot);
		}
		p->cache_n[c] = 0;
	}
}

int64_t gx_arena_carve(gx_arena *a, size_t bytes)
{
	const gx_arena_geo *g = gx_geo(a);
	if (!g)
		return -EINVAL;
	uint64_t n = (bytes + GX_SLAB - 1) / GX_SLAB;
	uint64_t off = atomic_fetch_add(&gx_ah(a)->part[0].next_slab, n * GX_SLAB);
	if (off < g->part_base[0] || off + n * GX_SLAB > g->part_end[0])
		return -ENOMEM;
	/* the slabs carry no slab header: pools and repair skip them */
	memset(g->base + off, 0, 64);
	return (int64_t)off;
}
