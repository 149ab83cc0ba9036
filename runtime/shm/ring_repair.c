/*
 * The ring after a death: salvage and repair of a dead process's claims.
 *
 * What: ring.c has every producer (consumer) write the position it is
 * about to claim, and how many, into its process slot's ring journal
 * before its CAS on head (tail). After its death, repair looks at exactly
 * those positions: claimed (head/tail past them), not published (not
 * released), and not covered by a live process's journal: then they are
 * the dead one's, published as SKIP (released) and counted in skipped
 * (lost). A chunk the dead producer was handing over and did not publish
 * goes back to the pool. Salvage, before repair, lets the parallel
 * runtime take back the messages a dead consumer claimed and had not
 * released, when none of its copies out may have finished.
 *
 * Invariants:
 *  - repair changes only positions in the dead slot's journal, and only
 *    with a CAS from the value it checked: a position that moved on
 *    meanwhile (a live process took it) is left alone;
 *  - each position is skipped or released at most once (the CAS), so
 *    skipped and lost count each claim once;
 *  - the journal is cleared (GX_JR_NONE) once the slot is repaired.
 *
 * Who writes what: a repairer CASes seq of a dead process's claims (SKIP,
 * or released) and clears the dead slot's journal; nobody else writes
 * that journal any more.
 *
 * Ordering: a claim's journal entry is stored before the claiming CAS on
 * head or tail (acq_rel, ring.c), so a repairer that sees the claim in
 * head or tail (seq_cst loads here) sees the entry; the notifies at the
 * end wake whoever sleeps on a position repair moved on.
 */
#include "shm/ring.h"

#include <string.h>

/* ---- salvage (before repair) ---- */

/* Does a live process other than `dead` hold [q] of ring v on side kind? */
static bool gx_live_claims(const gx_rgeo *v, int dead, uint32_t kind, uint64_t q)
{
	gx_arena_hdr *h = gx_ah(v->a);
	for (int s = 0; s < GX_SHM_MAX_PROCS; s++) {
		if (s == dead)
			continue;
		gx_proc *p = &h->proc[s];
		if (atomic_load(&p->rj_kind) != kind || atomic_load(&p->rj_ring) != v->self)
			continue;
		/* a pair whose n changed meanwhile is a claim being remade:
		 * read again */
		uint64_t pos = 0;
		uint32_t n = 0;
		for (int tries = 0; tries < 64; tries++) {
			/* acquire: pairs with gx_journal_claim's release of n */
			n = atomic_load_explicit(&p->rj_n, memory_order_acquire);
			/* acquire: n is read again after pos */
			pos = atomic_load_explicit(&p->rj_pos, memory_order_acquire);
			if (atomic_load_explicit(&p->rj_n, memory_order_relaxed) == n)
				break;
			n = 0;
		}
		if (q >= pos && q - pos < n && gx_slot_alive(v->a, s))
			return true;
	}
	return false;
}

/* Position q of a dead consumer's claim is still its own: claimed, not
 * released, not held by a live consumer. */
static bool gx_held(gx_ring *r, const gx_rgeo *v, int slot, uint64_t q, uint64_t seq)
{
	return atomic_load(&r->tail) > q && gx_pdiff(seq, q + 1) == 0 && !gx_live_claims(v, slot, GX_JR_RECV, q);
}

int gx_ring_salvage(gx_arena *a, gx_ring *r, int slot, void (*cb)(const void *msg, size_t len, void *arg),
		    void *arg, int *released)
{
	*released = 0;
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || v->a != a || slot < 0 || slot >= GX_SHM_MAX_PROCS)
		return -1;
	gx_proc *p = &gx_ah(a)->proc[slot];
	if (atomic_load(&p->rj_kind) != GX_JR_RECV || atomic_load(&p->rj_ring) != v->self)
		return -1;
	uint64_t pos = atomic_load(&p->rj_pos);
	uint32_t n = atomic_load(&p->rj_n);
	if (n > v->cap)
		n = (uint32_t)v->cap;
	uint32_t held = 0;
	for (uint32_t i = 0; i < n; i++)
		held += gx_held(r, v, slot, pos + i, atomic_load(gx_seq(v, pos + i)));
	if (held < n && n > 0)
		*released = 1; /* releases come after every copy: the copies are whole */
	int given = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t q = pos + i;
		_Atomic uint64_t *sq = gx_seq(v, q);
		uint64_t seq = atomic_load(sq);
		if (!gx_held(r, v, slot, q, seq))
			continue;
		uint32_t tag = (uint32_t)(seq >> 56);
		if (!*released && tag >= 1 && tag <= v->msg_size) {
			cb(gx_payload(v, q), tag, arg);
			given++;
		}
		/* a withdraw may race the CAS (TAKE rings): release what it found */
		while (!atomic_compare_exchange_strong(sq, &seq, (q + v->cap) & GX_POS_MASK) &&
		       gx_held(r, v, slot, q, seq))
			;
	}
	atomic_store(&p->rj_kind, GX_JR_NONE);
	gx_ec_notify(&r->not_full, &r->wakes);
	return given;
}

/* ---- repair ---- */

/* A dead producer's claim at q: published as SKIP when it never published. */
static void gx_repair_send(gx_ring *r, const gx_rgeo *v, int slot, uint64_t q, gx_repair_report *rep)
{
	_Atomic uint64_t *sq = gx_seq(v, q);
	uint64_t seq = atomic_load(sq);
	if (gx_head_pos(atomic_load(&r->head)) <= q || gx_pdiff(seq, q) != 0 || (seq >> 56) != 0 ||
	    gx_live_claims(v, slot, GX_JR_SEND, q))
		return;
	if (atomic_compare_exchange_strong(sq, &seq, gx_pub(q, GX_TAG_SKIP))) {
		atomic_fetch_add(&r->skipped, 1);
		rep->slots_skipped++;
	}
}

/* A dead consumer's claim at q: released (its message counted lost). */
static void gx_repair_recv(gx_ring *r, const gx_rgeo *v, int slot, uint64_t q, gx_repair_report *rep)
{
	_Atomic uint64_t *sq = gx_seq(v, q);
	uint64_t seq = atomic_load(sq);
	/* on a TAKE ring the sender may withdraw (CAS to SKIP) while we look:
	 * a failed CAS is tried again on what it found, while still held */
	while (gx_held(r, v, slot, q, seq)) {
		uint32_t tag = (uint32_t)(seq >> 56);
		gx_off off = 0;
		if (tag == GX_TAG_CHUNK)
			memcpy(&off, gx_payload(v, q), 8);
		if (!atomic_compare_exchange_strong(sq, &seq, (q + v->cap) & GX_POS_MASK))
			continue;
		/* the chunk only once the CAS won (a withdraw took it back) */
		if (off)
			gx_pool_free_ring_chunk(v->a, off);
		if (tag != GX_TAG_SKIP) {
			atomic_fetch_add(&r->lost, 1);
			rep->slots_lost++;
		}
		return;
	}
}

void gx_ring_repair_slot(gx_arena *a, gx_ring *r, int slot, gx_repair_report *rep)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || v->a != a || slot < 0 || slot >= GX_SHM_MAX_PROCS)
		return;
	/* a closer that died between head's bit and the closed word (it
	 * need not have had a claim here): finish its close */
	if ((atomic_load(&r->head) & GX_HEAD_CLOSED) && !atomic_load(&r->closed))
		gx_ring_close_finish(r);
	gx_proc *p = &gx_ah(a)->proc[slot];
	uint32_t kind = atomic_load(&p->rj_kind);
	if (kind == GX_JR_NONE || atomic_load(&p->rj_ring) != v->self)
		return;
	uint64_t pos = atomic_load(&p->rj_pos);
	uint32_t n = atomic_load(&p->rj_n);
	if (n > v->cap)
		n = (uint32_t)v->cap;
	for (uint32_t i = 0; i < n; i++) {
		if (kind == GX_JR_SEND)
			gx_repair_send(r, v, slot, pos + i, rep);
		else
			gx_repair_recv(r, v, slot, pos + i, rep);
	}
	/* a chunk it was handing over and did not publish goes back to the
	 * pool (published, it is the receiver's: state RING until taken) */
	gx_off ck = atomic_load(&p->rj_chunk);
	if (kind == GX_JR_SEND && ck) {
		uint64_t seq = atomic_load(gx_seq(v, pos));
		gx_off in;
		memcpy(&in, gx_payload(v, pos), 8);
		if (n == 0 || seq != gx_pub(pos, GX_TAG_CHUNK) || in != ck)
			gx_pool_free_ring_chunk_of(a, ck, slot);
	}
	/* the skips it left at tail hold places nobody may come to free:
	 * passed over under the dead slot's journal (ours may be mid-claim) */
	if (kind == GX_JR_SEND) {
		atomic_store(&p->rj_n, 0);
		atomic_store(&p->rj_chunk, 0);
		atomic_store(&p->rj_kind, GX_JR_RECV);
		gx_ring_pass_skips(r, v, p);
	}
	atomic_store(&p->rj_kind, GX_JR_NONE);
	gx_ec_notify(&r->not_empty, &r->wakes);
	gx_ec_notify(&r->not_full, &r->wakes);
}
