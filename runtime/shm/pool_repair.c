/*
 * The pools after a death: relink a list the dead process may have left
 * broken, and take back the chunks it held.
 *
 * Crash safety: a process killed between the head CAS and the state CAS
 * (or the other way round) leaves a FREE chunk outside the list. Repair of
 * its slot takes the pool's `repairing` word (its owner tag), waits until
 * no live process has a journal open on that pool (they back off while the
 * word is set, gx_journal_open in pool.c), walks the list and puts back
 * every FREE chunk of the pool's slabs that the list does not reach. Then
 * every chunk OWNED or CACHED by the dead slot goes back.
 *
 * Invariants: a relink runs with its pool quiet (the flag held, and no
 * journal open on it whose owner is worth waiting for), and pushes only
 * chunks whose state is FREE that its walk of the list did not reach;
 * reclaim moves a chunk only by a CAS from the state it saw (OWNED or
 * CACHED by the dead slot), so a chunk a live process took meanwhile is
 * left alone.
 *
 * Who writes what: the repairer writes `repairing` (its owner tag, then
 * 0), the list of the pool it relinks, the dead slot's journal (cleared)
 * and cache count (0), and the states of the chunks it takes back.
 *
 * Ordering: `repairing` is taken by a seq_cst CAS before the journals are
 * read (Dekker with gx_journal_open in pool.c); it is cleared with release
 * after the relink, and an allocator waiting on it (gx_repair_wait, pool.c)
 * loads it with acquire before it touches the list.
 *
 * Bounded waits: every wait on a word another process writes (`repairing`,
 * a journal) pauses with gx_spin_pause and, about once a millisecond,
 * asks whether the owner is worth waiting for: a garbage tag, a dead,
 * reused, stopped or traced owner is not, nor a tag naming this process
 * while none of its coroutines repairs, nor any owner after
 * GX_OWNER_PATIENCE (1 s; a real repair of a pool takes milliseconds), and
 * the waiter takes over (gx_owner_take_over). A
 * stopped repairer that resumes after being taken over from may list a
 * chunk twice; pop finds it listed but not FREE, drops the rest of the list
 * as corrupt, and the next repair relinks it: chunks are never handed out
 * twice, and come back.
 *
 * Rejected: a relink that runs beside live allocators (a FREE chunk between
 * its state CAS and its push cannot be told from one a dead process left).
 */
#include "shm/pool.h"

#include <stdlib.h>
#include <string.h>

/* a journal a live, running owner keeps open longer than this is garbage */
#define GX_JOURNAL_PATIENCE (100 * GX_MILLISECOND)

/* Take pool pc's repairing word for this process (taking over from an
 * owner not worth waiting for). */
static void gx_repair_lock(gx_arena *a, gx_pool_cls *pc)
{
	uint32_t me = gx_owner_tag(a);
	gx_spin sp = GX_SPIN_INIT;
	for (;;) {
		uint32_t z = 0;
		/* seq_cst: the flag before the journals are read (Dekker with
		 * gx_journal_open) */
		if (atomic_compare_exchange_strong(&pc->repairing, &z, me)) {
			gx_owner_held++;
			return;
		}
		if (gx_spin_pause(&sp) && gx_owner_take_over(a, &sp, z))
			atomic_compare_exchange_strong(&pc->repairing, &z, 0);
	}
}

/* Wait until no other process has a journal open on pool; a journal whose
 * owner is dead, stopped or past GX_JOURNAL_PATIENCE is left alone. */
static void gx_journals_quiet(gx_arena *a, int me, uint32_t pool)
{
	gx_arena_hdr *h = gx_ah(a);
	for (int s = 0; s < GX_SHM_MAX_PROCS; s++) {
		gx_proc *p = &h->proc[s];
		gx_spin sp = GX_SPIN_INIT;
		int64_t give_up = 0;
		while (s != me && atomic_load(&p->pj_kind) != GX_J_NONE && atomic_load(&p->pj_pool) == pool) {
			if (!gx_spin_pause(&sp))
				continue;
			int64_t now = gx_now();
			give_up = give_up ? give_up : now + GX_JOURNAL_PATIENCE;
			if (!gx_slot_alive(a, s) || now >= give_up ||
			    !gx_owner_waitable(a, (atomic_load(&p->gen) & 0xffffu) << 16 | (uint32_t)(s + 1)))
				break;
		}
	}
}

/* Walk pc's list, marking what it reaches in seen; cut it at the first bad
 * link (counted in garbage). */
static void gx_list_walk(const gx_arena_geo *g, gx_pool_cls *pc, int node, int c, uint64_t *seen,
			 uint64_t *garbage)
{
	uint64_t hd = atomic_load(&pc->head);
	uint32_t id = GX_TAG_IDX(hd);
	gx_chunk_hdr *prev = NULL;
	while (id) {
		gx_chunk_ref r;
		uint32_t x = id - 1;
		if (gx_chunk_by_id(g, id, &r) < 0 || !gx_ref_in(&r, node, c) || (seen[x / 64] >> (x % 64) & 1) ||
		    atomic_load(&r.hdr->state) != GX_CHUNK_FREE) {
			(*garbage)++;
			if (prev)
				atomic_store(&prev->next, 0);
			else
				atomic_store(&pc->head, GX_TAG_MAKE(0, GX_TAG_CNT(hd) + 1));
			return;
		}
		seen[x / 64] |= 1ull << (x % 64);
		prev = r.hdr;
		id = atomic_load(&r.hdr->next);
	}
}

/* With pool (node, c) quiet, put back every FREE chunk its list misses and
 * cut the list at the first bad link. Returns chunks put back. */
static uint64_t gx_pool_relink(gx_arena *a, const gx_arena_geo *g, int me, int node, int c, uint64_t *garbage)
{
	gx_pool_cls *pc = gx_pcls(a, node, c);
	gx_repair_lock(a, pc);
	gx_journals_quiet(a, me, (uint32_t)(node * GX_POOL_CLASSES + c));
	size_t bits = (size_t)g->nslabs << GX_ID_SHIFT;
	uint64_t *seen = calloc((bits + 63) / 64, sizeof *seen);
	uint64_t back = 0;
	if (!seen)
		goto out;
	gx_list_walk(g, pc, node, c, seen, garbage);
	uint64_t end = gx_carved_end(a, g, (uint32_t)node);
	for (uint64_t off = g->part_base[node]; off < end; off += GX_SLAB) {
		uint64_t si = (off - g->slab_first) / GX_SLAB;
		gx_slab_v sl;
		if (gx_slab_at(g, si, &sl) < 0 || sl.cls != c || sl.node != node)
			continue;
		for (uint32_t i = 0; i < sl.nchunks; i++) {
			uint32_t x = (uint32_t)((si << GX_ID_SHIFT) | i);
			gx_chunk_ref r;
			if (seen[x / 64] >> (x % 64) & 1 || gx_chunk_by_id(g, x + 1, &r) < 0)
				continue;
			if (atomic_load(&r.hdr->state) == GX_CHUNK_FREE) {
				gx_push_one(a, &r);
				back++;
			}
		}
	}
	free(seen);
out:
	/* release: the relinked list before the allocators come back */
	atomic_store_explicit(&pc->repairing, 0, memory_order_release);
	gx_owner_held--;
	return back;
}

/* Every chunk of node's slabs OWNED or CACHED by slot, back to its list. */
static uint64_t gx_pool_reclaim(gx_arena *a, const gx_arena_geo *g, int me, int slot, uint32_t node)
{
	uint64_t back = 0, end = gx_carved_end(a, g, node);
	for (uint64_t off = g->part_base[node]; off < end; off += GX_SLAB) {
		uint64_t si = (off - g->slab_first) / GX_SLAB;
		gx_slab_v sl;
		if (gx_slab_at(g, si, &sl) < 0)
			continue;
		gx_chunk_hdr *ch = gx_slab_chunk(&sl, 0);
		for (uint32_t i = 0; i < sl.nchunks; i++) {
			uint32_t st = atomic_load(&ch[i].state);
			uint32_t k = GX_CHUNK_KIND(st);
			if (st == GX_CHUNK_FREE || GX_CHUNK_SLOT(st) != (uint32_t)slot ||
			    (k != GX_CHUNK_OWNED && k != GX_CHUNK_CACHED))
				continue;
			gx_chunk_ref r;
			if (gx_chunk_by_id(g, (uint32_t)((si << GX_ID_SHIFT) | i) + 1, &r) == 0 &&
			    gx_free_to_list(a, me, &r, st))
				back++;
		}
	}
	return back;
}

uint64_t gx_pool_repair_slot(gx_arena *a, int slot, uint64_t *garbage)
{
	const gx_arena_geo *g = gx_geo(a);
	int me = gx_shm_slot(a);
	if (!g || me < 0 || slot < 0 || slot >= GX_SHM_MAX_PROCS)
		return 0;
	gx_proc *p = &gx_ah(a)->proc[slot];
	uint64_t back = 0;
	if (atomic_load(&p->pj_kind) != GX_J_NONE) {
		uint32_t pool = atomic_load(&p->pj_pool);
		atomic_store(&p->pj_kind, GX_J_NONE);
		if (pool < g->nodes * GX_POOL_CLASSES)
			back += gx_pool_relink(a, g, me, (int)(pool / GX_POOL_CLASSES), (int)(pool % GX_POOL_CLASSES),
					       garbage);
	}
	for (uint32_t node = 0; node < g->nodes; node++)
		back += gx_pool_reclaim(a, g, me, slot, node);
	memset(p->cache_n, 0, sizeof p->cache_n);
	return back;
}
