/*
 * Pools: size classes 64 B << 0..14 per NUMA node, in slabs of the arena.
 *
 * What: each (node, class) has a lock-free free list (Treiber stack) whose
 * head is a tagged 64-bit word (chunk id + 1, change counter: no ABA).
 * Chunks carry a header (in their slab's header array, never in the chunk)
 * whose state word says who holds the chunk: FREE, OWNED|slot, CACHED|slot
 * (in that process's cache) or RING|slot (handed to a ring). Every change of
 * hands is a CAS on that word, so a double free, a free of a chunk in a
 * ring or of something that is not a chunk fails with -EINVAL and changes
 * nothing.
 *
 * Crash safety: before a process pops or pushes, it records the pool and
 * the chunk in its slot's journal. A process killed between the head CAS
 * and the state CAS (or the other way round) leaves a FREE chunk outside
 * the list. Repair of its slot sets the pool's `repairing` flag, waits until
 * no live process has a journal open on that pool (they check the flag
 * after opening the journal and back off), walks the list and puts back
 * every FREE chunk of the pool's slabs that the list does not reach. Then
 * every chunk OWNED or CACHED by the dead slot goes back.
 *
 * Untrusted input: chunk ids and offsets read from shared memory (list
 * links, cache entries, slab headers) are bounds-checked before use; a bad
 * link truncates the list (counted as garbage), never a wild access.
 *
 * Rejected: bitmaps per slab (repair needs the same quiescence, and a
 * bitmap word is a hot line shared by every allocator of the class).
 */
#include "shm/shm.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define GX_SLAB_HDR 64u
#define GX_ID_SHIFT 15 /* chunks per slab < 32768 */
#define GX_ID_MAX_IN_SLAB ((1u << GX_ID_SHIFT) - 1)

static inline void gx_cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

static inline int gx_class_of(size_t len)
{
	int c = 0;
	while (((size_t)64 << c) < len)
		c++;
	return c;
}

static inline gx_pool_cls *gx_pcls(gx_arena *a, int node, int c)
{
	return &gx_ah(a)->cls[node][c];
}

/* The slab header at slab index si, validated; NULL when it is not a live
 * slab (never carved, or corrupt). */
static gx_slab_hdr *gx_slab_at(const gx_arena *a, uint64_t si)
{
	const gx_arena_hdr *h = &a->h;
	if (si >= h->nslabs)
		return NULL;
	gx_slab_hdr *s = (gx_slab_hdr *)(gx_abase(a) + h->slab_first + si * GX_SLAB);
	if (s->magic != GX_SLAB_MAGIC || s->cls >= GX_POOL_CLASSES || s->node >= h->nodes)
		return NULL;
	uint64_t size = (uint64_t)64 << s->cls;
	if (s->size != size || s->nchunks == 0 || s->nchunks > GX_ID_MAX_IN_SLAB)
		return NULL;
	if (s->data < GX_SLAB_HDR + (uint64_t)s->nchunks * sizeof(gx_chunk_hdr) || s->data > GX_SLAB ||
	    (uint64_t)s->nchunks * size > GX_SLAB - s->data)
		return NULL;
	return s;
}

/* End of the slabs carved so far in node's part (the bump pointer runs past
 * the part's end when a carve fails). */
static uint64_t gx_carved_end(const gx_arena_hdr *h, uint32_t node)
{
	uint64_t end = atomic_load(&((gx_arena_hdr *)h)->part[node].next_slab);
	return end > h->part[node].end ? h->part[node].end : end;
}

typedef struct {
	gx_slab_hdr *slab;
	gx_chunk_hdr *hdr;
	uint64_t off; /* chunk data offset */
	uint64_t si;
	uint32_t i;
} gx_chunk_ref;

/* Resolve chunk id (global index + 1). 0 or -EINVAL. */
static int gx_chunk_by_id(const gx_arena *a, uint32_t id, gx_chunk_ref *r)
{
	if (id == 0)
		return -EINVAL;
	uint32_t g = id - 1;
	uint64_t si = g >> GX_ID_SHIFT;
	uint32_t i = g & GX_ID_MAX_IN_SLAB;
	gx_slab_hdr *s = gx_slab_at(a, si);
	if (!s || i >= s->nchunks)
		return -EINVAL;
	uint64_t soff = a->h.slab_first + si * GX_SLAB;
	r->slab = s;
	r->hdr = (gx_chunk_hdr *)((char *)s + GX_SLAB_HDR) + i;
	r->off = soff + s->data + (uint64_t)i * s->size;
	r->si = si;
	r->i = i;
	return 0;
}

/* Resolve a chunk's data offset (as handed to users). 0 or -EINVAL. */
static int gx_chunk_by_off(const gx_arena *a, gx_off off, gx_chunk_ref *r)
{
	const gx_arena_hdr *h = &a->h;
	if (off < h->slab_first || off >= h->slab_first + h->nslabs * GX_SLAB)
		return -EINVAL;
	uint64_t si = (off - h->slab_first) / GX_SLAB;
	gx_slab_hdr *s = gx_slab_at(a, si);
	if (!s)
		return -EINVAL;
	uint64_t in = off - h->slab_first - si * GX_SLAB;
	if (in < s->data || (in - s->data) % s->size)
		return -EINVAL;
	uint64_t i = (in - s->data) / s->size;
	if (i >= s->nchunks)
		return -EINVAL;
	return gx_chunk_by_id(a, (uint32_t)((si << GX_ID_SHIFT) | i) + 1, r);
}

static inline uint32_t gx_ref_id(const gx_chunk_ref *r)
{
	return (uint32_t)((r->si << GX_ID_SHIFT) | r->i) + 1;
}

/* ---- journal ---- */

static void gx_journal_open(gx_arena *a, int slot, int node, int c, uint32_t kind)
{
	gx_proc *p = &gx_ah(a)->proc[slot];
	gx_pool_cls *pc = gx_pcls(a, node, c);
	for (;;) {
		atomic_store(&p->pj_pool, (uint32_t)(node * GX_POOL_CLASSES + c));
		atomic_store(&p->pj_chunk, 0);
		atomic_store(&p->pj_kind, kind);
		if (!atomic_load(&pc->repairing))
			return;
		atomic_store(&p->pj_kind, GX_J_NONE);
		while (atomic_load(&pc->repairing))
			sched_yield();
	}
}

static inline void gx_journal_close(gx_arena *a, int slot)
{
	atomic_store_explicit(&gx_ah(a)->proc[slot].pj_kind, GX_J_NONE, memory_order_release);
}

/* ---- the free lists ---- */

/* Push the chain first..last (linked through next, states FREE). */
static void gx_list_push(gx_pool_cls *pc, gx_chunk_ref *first, gx_chunk_hdr *last)
{
	uint64_t h = atomic_load(&pc->head);
	for (;;) {
		atomic_store_explicit(&last->next, GX_TAG_IDX(h), memory_order_relaxed);
		uint64_t nh = GX_TAG_MAKE(gx_ref_id(first), GX_TAG_CNT(h) + 1);
		if (atomic_compare_exchange_weak(&pc->head, &h, nh))
			return;
	}
}

/* Carve a new slab for (node, c): chunk 0 goes to the caller (OWNED by
 * slot), the rest onto the free list. 0 or -ENOMEM. */
static int gx_carve(gx_arena *a, int slot, int node, int c, gx_chunk_ref *out)
{
	gx_arena_hdr *h = gx_ah(a);
	gx_node_part *part = &h->part[node];
	if (h->pool_limit && atomic_fetch_add(&h->pool_used, GX_SLAB) + GX_SLAB > h->pool_limit) {
		atomic_fetch_sub(&h->pool_used, GX_SLAB);
		return -ENOMEM; /* GONEX_POOL_SIZE reached */
	}
	uint64_t soff = atomic_fetch_add(&part->next_slab, GX_SLAB);
	if (soff < part->base || soff >= part->end || soff + GX_SLAB > h->size)
		return -ENOMEM;
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
	gx_slab_hdr *s = (gx_slab_hdr *)(gx_abase(a) + soff);
	s->cls = (uint16_t)c;
	s->node = (uint16_t)node;
	s->nchunks = n;
	s->data = (uint32_t)data;
	s->size = size;
	gx_chunk_hdr *ch = (gx_chunk_hdr *)((char *)s + GX_SLAB_HDR);
	uint64_t si = (soff - h->slab_first) / GX_SLAB;
	for (uint32_t i = 0; i < n; i++) {
		atomic_store_explicit(&ch[i].state, i ? GX_CHUNK_FREE : GX_CHUNK_OWNED | (uint32_t)slot,
				      memory_order_relaxed);
		uint32_t next = i + 1 < n ? (uint32_t)((si << GX_ID_SHIFT) | (i + 1)) + 1 : 0;
		atomic_store_explicit(&ch[i].next, next, memory_order_relaxed);
		ch[i].len = 0;
	}
	atomic_thread_fence(memory_order_release);
	s->magic = GX_SLAB_MAGIC;
	gx_pool_cls *pc = gx_pcls(a, node, c);
	atomic_fetch_add_explicit(&pc->chunks, n, memory_order_relaxed);
	if (gx_chunk_by_id(a, (uint32_t)(si << GX_ID_SHIFT) + 1, out) < 0)
		return -ENOMEM;
	if (n > 1) {
		gx_chunk_ref first;
		gx_chunk_by_id(a, (uint32_t)((si << GX_ID_SHIFT) | 1) + 1, &first);
		atomic_store(&h->proc[slot].pj_chunk, gx_ref_id(&first));
		gx_list_push(pc, &first, &ch[n - 1]);
	}
	return 0;
}

/* Take a chunk of (node, c) for slot: OWNED|slot. 0 or -ENOMEM. */
static int gx_pop(gx_arena *a, int slot, int node, int c, gx_chunk_ref *out)
{
	gx_pool_cls *pc = gx_pcls(a, node, c);
	gx_proc *p = &gx_ah(a)->proc[slot];
	gx_journal_open(a, slot, node, c, GX_J_POP);
	uint64_t h = atomic_load(&pc->head);
	for (;;) {
		uint32_t id = GX_TAG_IDX(h);
		if (!id) {
			int rc = gx_carve(a, slot, node, c, out);
			gx_journal_close(a, slot);
			return rc;
		}
		gx_chunk_ref r;
		if (gx_chunk_by_id(a, id, &r) < 0 || r.slab->cls != c || r.slab->node != node) {
			/* corrupt head: drop the list rather than follow it */
			if (atomic_compare_exchange_strong(&pc->head, &h, GX_TAG_MAKE(0, GX_TAG_CNT(h) + 1)))
				atomic_fetch_add(&pc->bad_frees, 1);
			continue;
		}
		atomic_store(&p->pj_chunk, id);
		uint32_t next = atomic_load(&r.hdr->next);
		if (!atomic_compare_exchange_weak(&pc->head, &h, GX_TAG_MAKE(next, GX_TAG_CNT(h) + 1)))
			continue;
		uint32_t st = GX_CHUNK_FREE;
		if (!atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_OWNED | (uint32_t)slot)) {
			/* listed but not free: the list is corrupt (its links
			 * may even cycle). Drop what is left of it rather than
			 * follow it; repair's relink puts free chunks back. */
			atomic_fetch_add(&pc->bad_frees, 1);
			h = atomic_load(&pc->head);
			if (atomic_compare_exchange_strong(&pc->head, &h, GX_TAG_MAKE(0, GX_TAG_CNT(h) + 1)))
				h = GX_TAG_MAKE(0, GX_TAG_CNT(h) + 1);
			continue;
		}
		gx_journal_close(a, slot);
		*out = r;
		return 0;
	}
}

/* Put r (state already FREE, journal open on its pool) on its list. */
static void gx_push_one(gx_arena *a, gx_chunk_ref *r)
{
	gx_list_push(gx_pcls(a, r->slab->node, r->slab->cls), r, r->hdr);
}

/* ---- API ---- */

int64_t gx_pool_alloc(gx_arena *a, size_t len, int node)
{
	if (!a || a->h.magic != GX_ARENA_MAGIC || len == 0 || len > GX_POOL_MAX_CHUNK)
		return -EINVAL;
	if (node < -1 || node >= (int)a->h.nodes)
		return -EINVAL;
	int slot = gx_shm_slot(a);
	if (slot < 0)
		return slot;
	gx_proc *p = &gx_ah(a)->proc[slot];
	int c = gx_class_of(len);
	if (node < 0)
		node = p->node < a->h.nodes ? p->node : 0;
	gx_chunk_ref r;
	if (node == p->node && p->cache_n[c] > 0 && p->cache_n[c] <= GX_CACHE_PER_CLASS) {
		uint32_t id = p->cache[c][p->cache_n[c] - 1];
		p->cache_n[c]--;
		uint32_t st = GX_CHUNK_CACHED | (uint32_t)slot;
		if (gx_chunk_by_id(a, id, &r) == 0 && r.slab->cls == c &&
		    atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_OWNED | (uint32_t)slot))
			goto got;
		/* a corrupt cache entry: fall through to the list */
	}
	int rc = gx_pop(a, slot, node, c, &r);
	if (rc < 0)
		return rc;
got:
	atomic_fetch_add_explicit(&gx_pcls(a, node, c)->allocs, 1, memory_order_relaxed);
	return (int64_t)r.off;
}

int gx_pool_free(gx_arena *a, gx_off off)
{
	if (!a || a->h.magic != GX_ARENA_MAGIC)
		return -EINVAL;
	gx_chunk_ref r;
	if (gx_chunk_by_off(a, off, &r) < 0)
		return -EINVAL;
	int node = r.slab->node, c = r.slab->cls;
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
	if (node == p->node && p->cache_n[c] < GX_CACHE_PER_CLASS) {
		if (!atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_CACHED | (uint32_t)slot)) {
			atomic_fetch_add_explicit(&pc->bad_frees, 1, memory_order_relaxed);
			return -EINVAL;
		}
		p->cache[c][p->cache_n[c]++] = gx_ref_id(&r);
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
	if (!a || a->h.magic != GX_ARENA_MAGIC)
		return -EINVAL;
	gx_chunk_ref r;
	if (gx_chunk_by_off(a, off, &r) < 0)
		return -EINVAL;
	uint32_t k = GX_CHUNK_KIND(atomic_load(&r.hdr->state));
	if (k != GX_CHUNK_OWNED && k != GX_CHUNK_SHARED)
		return -EINVAL;
	return (int64_t)r.slab->size;
}

int gx_pool_stats(const gx_arena *a, int node, int cls, gx_pool_class_stats *out)
{
	if (!a || !out || a->h.magic != GX_ARENA_MAGIC || node < 0 || node >= (int)a->h.nodes || cls < 0 ||
	    cls >= GX_POOL_CLASSES)
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
	const gx_arena_hdr *h = &a->h;
	uint64_t end = gx_carved_end(h, node);
	for (uint64_t off = h->part[node].base; off < end; off += GX_SLAB) {
		gx_slab_hdr *sl = gx_slab_at(a, (off - h->slab_first) / GX_SLAB);
		if (!sl || sl->cls != cls || sl->node != node)
			continue;
		gx_chunk_hdr *ch = (gx_chunk_hdr *)((char *)sl + GX_SLAB_HDR);
		for (uint32_t i = 0; i < sl->nchunks; i++) {
			uint32_t k = GX_CHUNK_KIND(atomic_load(&ch[i].state));
			out->in_use += k == GX_CHUNK_OWNED || k == GX_CHUNK_RING || k == GX_CHUNK_SHARED;
		}
	}
	return 0;
}

/* ---- ring hand-over ---- */

int gx_pool_give(gx_arena *a, gx_off off, int to_ring, uint32_t len)
{
	(void)to_ring;
	gx_chunk_ref r;
	if (gx_chunk_by_off(a, off, &r) < 0 || len > r.slab->size)
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
	gx_chunk_ref r;
	if (gx_chunk_by_off(a, off, &r) < 0)
		return -EBADMSG;
	int slot = gx_shm_slot(a);
	if (slot < 0)
		return slot;
	uint32_t st = atomic_load(&r.hdr->state);
	if (GX_CHUNK_KIND(st) != GX_CHUNK_RING ||
	    !atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_OWNED | (uint32_t)slot))
		return -EBADMSG;
	uint32_t l = r.hdr->len;
	*len = l <= r.slab->size ? l : (uint32_t)r.slab->size;
	return 0;
}

/* Move r from state expect to FREE and onto its list; count a free unless
 * it was a cached chunk (counted when it was cached). 1 when it moved. */
static int gx_free_to_list(gx_arena *a, int slot, gx_chunk_ref *r, uint32_t expect)
{
	int node = r->slab->node, c = r->slab->cls;
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

int gx_pool_share(gx_arena *a, gx_off off)
{
	gx_chunk_ref r;
	int slot = gx_shm_slot(a);
	if (slot < 0 || gx_chunk_by_off(a, off, &r) < 0)
		return -EINVAL;
	uint32_t st = GX_CHUNK_OWNED | (uint32_t)slot;
	return atomic_compare_exchange_strong(&r.hdr->state, &st, GX_CHUNK_SHARED) ? 0 : -EINVAL;
}

int gx_pool_free_shared(gx_arena *a, gx_off off)
{
	gx_chunk_ref r;
	int slot = gx_shm_slot(a);
	if (slot < 0 || gx_chunk_by_off(a, off, &r) < 0)
		return -EINVAL;
	return gx_free_to_list(a, slot, &r, GX_CHUNK_SHARED) ? 0 : -EINVAL;
}

void gx_pool_free_ring_chunk(gx_arena *a, gx_off off)
{
	gx_chunk_ref r;
	if (gx_chunk_by_off(a, off, &r) < 0)
		return;
	int slot = gx_shm_slot(a);
	if (slot < 0)
		return;
	uint32_t st = atomic_load(&r.hdr->state);
	if (GX_CHUNK_KIND(st) == GX_CHUNK_RING)
		gx_free_to_list(a, slot, &r, st);
}

void gx_pool_free_ring_chunk_of(gx_arena *a, gx_off off, int slot)
{
	gx_chunk_ref r;
	int me = gx_shm_slot(a);
	if (me < 0 || gx_chunk_by_off(a, off, &r) < 0)
		return;
	gx_free_to_list(a, me, &r, GX_CHUNK_RING | (uint32_t)slot);
}

void gx_pool_flush_cache(gx_arena *a, int slot)
{
	gx_proc *p = &gx_ah(a)->proc[slot];
	int me = gx_shm_slot(a);
	if (me < 0)
		return;
	for (int c = 0; c < GX_POOL_CLASSES; c++) {
		uint32_t n = p->cache_n[c] <= GX_CACHE_PER_CLASS ? p->cache_n[c] : GX_CACHE_PER_CLASS;
		for (uint32_t k = 0; k < n; k++) {
			gx_chunk_ref r;
			if (gx_chunk_by_id(a, p->cache[c][k], &r) == 0)
				gx_free_to_list(a, me, &r, GX_CHUNK_CACHED | (uint32_t)slot);
		}
		p->cache_n[c] = 0;
	}
}

/* ---- repair ---- */

/* With pool (node, c) quiet, put back every FREE chunk its list misses and
 * cut the list at the first bad link. Returns chunks put back. */
static uint64_t gx_pool_relink(gx_arena *a, int me, int node, int c, uint64_t *garbage)
{
	gx_arena_hdr *h = gx_ah(a);
	gx_pool_cls *pc = gx_pcls(a, node, c);
	uint32_t z = 0;
	while (!atomic_compare_exchange_weak(&pc->repairing, &z, 1)) {
		z = 0;
		sched_yield();
	}
	/* wait for live journals on this pool to close */
	uint32_t pool = (uint32_t)(node * GX_POOL_CLASSES + c);
	for (int s = 0; s < GX_SHM_MAX_PROCS; s++) {
		gx_proc *p = &h->proc[s];
		if (s == me)
			continue;
		while (atomic_load(&p->pj_kind) != GX_J_NONE && atomic_load(&p->pj_pool) == pool &&
		       gx_slot_alive(a, s))
			sched_yield();
	}
	size_t bits = (size_t)h->nslabs << GX_ID_SHIFT;
	uint64_t *seen = calloc((bits + 63) / 64, sizeof *seen);
	uint64_t back = 0;
	if (!seen)
		goto out;
	/* walk: at most every chunk once */
	uint64_t hd = atomic_load(&pc->head);
	uint32_t id = GX_TAG_IDX(hd);
	gx_chunk_hdr *prev = NULL;
	for (uint64_t steps = 0; id; steps++) {
		gx_chunk_ref r;
		uint32_t g = id - 1;
		if (gx_chunk_by_id(a, id, &r) < 0 || r.slab->cls != c || r.slab->node != node ||
		    (seen[g / 64] >> (g % 64) & 1) || atomic_load(&r.hdr->state) != GX_CHUNK_FREE) {
			(*garbage)++;
			if (prev)
				atomic_store(&prev->next, 0);
			else
				atomic_store(&pc->head, GX_TAG_MAKE(0, GX_TAG_CNT(hd) + 1));
			break;
		}
		seen[g / 64] |= 1ull << (g % 64);
		prev = r.hdr;
		id = atomic_load(&r.hdr->next);
	}
	/* sweep the pool's slabs */
	uint64_t end = gx_carved_end(h, node);
	for (uint64_t off = h->part[node].base; off < end; off += GX_SLAB) {
		uint64_t si = (off - h->slab_first) / GX_SLAB;
		gx_slab_hdr *sl = gx_slab_at(a, si);
		if (!sl || sl->cls != c || sl->node != node)
			continue;
		for (uint32_t i = 0; i < sl->nchunks; i++) {
			uint32_t g = (uint32_t)((si << GX_ID_SHIFT) | i);
			gx_chunk_ref r;
			if (seen[g / 64] >> (g % 64) & 1 || gx_chunk_by_id(a, g + 1, &r) < 0)
				continue;
			if (atomic_load(&r.hdr->state) == GX_CHUNK_FREE) {
				gx_push_one(a, &r);
				back++;
			}
		}
	}
	free(seen);
out:
	atomic_store(&pc->repairing, 0);
	return back;
}

uint64_t gx_pool_repair_slot(gx_arena *a, int slot, uint64_t *garbage)
{
	gx_arena_hdr *h = gx_ah(a);
	gx_proc *p = &h->proc[slot];
	int me = gx_shm_slot(a);
	if (me < 0)
		return 0;
	uint64_t back = 0;
	if (atomic_load(&p->pj_kind) != GX_J_NONE) {
		uint32_t pool = atomic_load(&p->pj_pool);
		atomic_store(&p->pj_kind, GX_J_NONE);
		if (pool < h->nodes * GX_POOL_CLASSES)
			back += gx_pool_relink(a, me, (int)(pool / GX_POOL_CLASSES), (int)(pool % GX_POOL_CLASSES),
					       garbage);
	}
	/* every chunk the dead slot owned or cached */
	for (uint32_t node = 0; node < h->nodes; node++) {
		uint64_t end = gx_carved_end(h, node);
		for (uint64_t off = h->part[node].base; off < end; off += GX_SLAB) {
			uint64_t si = (off - h->slab_first) / GX_SLAB;
			gx_slab_hdr *sl = gx_slab_at(a, si);
			if (!sl)
				continue;
			gx_chunk_hdr *ch = (gx_chunk_hdr *)((char *)sl + GX_SLAB_HDR);
			for (uint32_t i = 0; i < sl->nchunks; i++) {
				uint32_t st = atomic_load(&ch[i].state);
				uint32_t k = GX_CHUNK_KIND(st);
				if (st == GX_CHUNK_FREE || GX_CHUNK_SLOT(st) != (uint32_t)slot ||
				    (k != GX_CHUNK_OWNED && k != GX_CHUNK_CACHED))
					continue;
				gx_chunk_ref r;
				if (gx_chunk_by_id(a, (uint32_t)((si << GX_ID_SHIFT) | i) + 1, &r) == 0 &&
				    gx_free_to_list(a, me, &r, st))
					back++;
			}
		}
	}
	memset(p->cache_n, 0, sizeof p->cache_n);
	return back;
}

int64_t gx_arena_carve(gx_arena *a, size_t bytes)
{
	gx_arena_hdr *h = gx_ah(a);
	uint64_t n = (bytes + GX_SLAB - 1) / GX_SLAB;
	gx_node_part *part = &h->part[0];
	uint64_t off = atomic_fetch_add(&part->next_slab, n * GX_SLAB);
	if (off < part->base || off + n * GX_SLAB > part->end)
		return -ENOMEM;
	/* the slabs carry no slab header: pools and repair skip them */
	memset(gx_abase(a) + off, 0, 64);
	return (int64_t)off;
}
