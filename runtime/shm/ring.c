/*
 * The MPMC ring: a per-slot sequence ring (Vyukov) in the arena. This file
 * sends and receives; ring_geo.c keeps each ring's geometry and makes,
 * finds and destroys rings; ring_repair.c repairs a dead process's claims.
 *
 * What: capacity slots, each an 8-byte sequence word then the payload.
 * Positions are 64-bit counters (head for producers, tail for consumers,
 * 128 bytes apart). The sequence word holds a position in its low 56 bits
 * and a tag in its high 8: slot for position p is free for a producer when
 * seq == p (tag 0), published when seq == p + 1 with the tag saying what it
 * carries (1..120: that many inline bytes; CHUNK: an 8-byte pool offset;
 * SKIP: nothing, a claim repaired after its producer died), and released
 * by its consumer with seq = p + capacity. 56 bits of position wrap after
 * 7 * 10^16 messages: years at a billion a second.
 *
 * Invariants:
 *  - tail <= head, and head - tail <= capacity (positions claimed by
 *    producers and not yet by consumers fit in the slots; head here is
 *    its position, gx_head_pos);
 *  - closed is head's top bit (GX_HEAD_CLOSED), set once: a producer's
 *    claim is a CAS from an open head, so every claim came before the
 *    close, and a consumer that finds the bit set and tail at head's
 *    position has seen every message whose send succeeded (gx_empty_at);
 *  - a position is published at most once and released at most once;
 *  - every bound a call uses comes from this process's gx_rgeo
 *    (ring_geo.c), never from the header in shared memory.
 *
 * Who writes what: producers CAS head and store a slot's seq when they
 * publish; consumers CAS tail and store seq when they release; a repairer
 * CASes seq of a dead process's claims (ring_repair.c); anyone may close:
 * head's bit (fetch_or), then the closed word, which spinners and empty
 * receives read instead of head (a closer killed between the two: repair,
 * or the next close, stores the word and wakes, gx_ring_close_finish).
 *
 * Ordering (each pair named at both ends below):
 *  - publish: payload stores, then seq = p + 1 | tag (release); a consumer
 *    loads seq (acquire) before it reads the payload;
 *  - release: payload reads, then seq = p + cap (release); a producer
 *    loads seq (acquire) before it writes the payload;
 *  - head and tail are claimed by CAS; a claim's journal entry is stored
 *    before the CAS (acq_rel), so a repairer that sees the claim sees it.
 *  - wake-ups: eventcounts not_empty (consumers sleep there) and not_full
 *    (producers), see wake.c. A single-message publish costs one load when
 *    nobody sleeps: its claim is a seq_cst CAS on head, and sleeping
 *    consumers count a claimed head as ready (gx_ready_recv), so the
 *    claim stands in for the eventcount's fence (gx_ec_notify_claimed;
 *    its partner is the fence in gx_ec_wait). A receive's claim on tail
 *    does the same for sleeping producers, which count a claimed place as
 *    room (gx_ready_send). One that wakes for a claim not yet published
 *    (released) waits for it, a thousand looks and then naps of 1 ms
 *    doubling to 64 ms (gx_ec_wait_spin), so a peer stopped there, or
 *    dead until repair skips (releases) its claim, costs no core. Close
 *    and repair fence and load. A NOWAKE ring skips the look (its users
 *    sleep elsewhere).
 *
 * Claims: a producer (consumer) writes the position it is about to claim
 * and how many into its process slot's ring journal before the CAS on head
 * (tail), and clears the journal after publishing (releasing); repair
 * after its death reads exactly those positions (ring_repair.c).
 *
 * Cache lines that cross cores, per message on the fast path (gx_send1,
 * gx_recv1: one producer process, one consumer process, nobody asleep):
 *  - the slot's line: the producer's write (seq and payload) fetches it
 *    from the consumer, which released it last; the consumer's read
 *    fetches it back, and its release (a write to the same line) takes
 *    ownership. Two transfers and an upgrade, all on that one line;
 *  - head stays with the producer and tail with the consumer (one of
 *    each side: several producers pass head between them); the header's
 *    geometry and nonce lines are read-only (shared, no transfer), and
 *    so is the closed word, which only a receive that finds the ring
 *    empty reads (a send reads closed in head);
 *    the journal is the process's own line;
 *  - the wake-up check: a NOWAKE ring (a channel's) has none; otherwise a
 *    read of the eventcount's waiters line, which moves only when
 *    someone registers to sleep;
 *  - a consumer that spins for the next message looks only at the slot at
 *    tail (gx_ready_recv_spin), never at head: a look at head, which the
 *    producer CASes first in every send, pulled that line away from the
 *    producer once more per message (two more transfers a ping-pong
 *    round: 232 against 133 ns in the same minutes, floor 45 ns). Only
 *    the look after registering to sleep reads head (a claimed head counts
 *    as ready, see above). gx_ring_recv's first looks are its own
 *    straight-line receive, inline (GX_RING_LOOKS).
 * So one line per message. A ping-pong over two rings moves two slot lines
 * per round trip, and each side waits for the other's release before it
 * reuses a slot, so its floor is about twice the one-line round trip (a
 * bare two-ring Vyukov ping-pong measured 1.9-2.1x it). A sleeper's flag
 * in the slot's sequence word (an eventcount epoch there) would save the
 * waiter count's load, not a line: the publish would have to be an
 * exchange to see it, which costs what the fence did.
 *
 * TAKE rings (a rendezvous channel's): a sender may withdraw a message it
 * published until a consumer took it. Both sides CAS the slot's word from
 * the published value: the consumer to released (after copying out; it
 * holds the tail claim, so the payload stays), the sender to SKIP. The
 * loser sees the winner's word: a consumer that lost releases the SKIP
 * and goes on; a sender that lost knows its message was received. A
 * withdrawn SKIP at tail is passed over at once (gx_ring_pass_skips), so
 * it holds no place of the logical capacity; so is a dead sender's
 * repaired SKIP at tail.
 *
 * Untrusted input: tags and chunk offsets come from other processes; a bad
 * tag or a chunk the pool does not know as handed to a ring consumes the
 * slot and gives -EBADMSG.
 */
#include "shm/ring.h"

#include <errno.h>
#include <string.h>

#include "arch/relax.h"
#include "core/testpoint.h"

/* ---- journal ---- */

static inline gx_proc *gx_ring_journal(const gx_rgeo *v, uint32_t kind)
{
	int s = gx_shm_slot_fast(v->a);
	if (s < 0)
		return NULL;
	gx_proc *p = &gx_ah(v->a)->proc[s];
	atomic_store_explicit(&p->rj_ring, v->self, memory_order_relaxed);
	atomic_store_explicit(&p->rj_n, 0, memory_order_relaxed);
	atomic_store_explicit(&p->rj_chunk, 0, memory_order_relaxed);
	atomic_store_explicit(&p->rj_kind, kind, memory_order_relaxed);
	return p;
}

/* The claim [pos, pos + n) a CAS is about to make. n goes to 0 first and
 * back last, so that a repairer reading the pair (gx_live_claims, which
 * reads n, pos, n again) never takes a new n with an old pos: it sees an
 * empty claim or a whole one. */
static inline void gx_journal_claim(gx_proc *p, uint64_t pos, uint32_t n)
{
	atomic_store_explicit(&p->rj_n, 0, memory_order_relaxed);
	atomic_store_explicit(&p->rj_pos, pos, memory_order_relaxed);
	/* a test runs a repair here: it must see no claim, or a whole one */
	GX_TEST_POINT("ring.journal.claim", p);
	/* release: pairs with gx_live_claims's acquire of n; pos first. The
	 * claiming CAS that follows is a release too: whoever sees the claim
	 * (a repairer reading head or tail, acquire) sees this first */
	atomic_store_explicit(&p->rj_n, n, memory_order_release);
}

/* Claim [*pos, *pos + n) of counter c (head or tail): the journal entry,
 * then the CAS with success order mo (a release at least: a repairer that
 * reads the counter with acquire and sees the claim sees the entry). A
 * lost race clears the entry, which must not go on covering a position
 * someone else claimed (a repair would take it for ours), and leaves the
 * counter's value in *pos. */
static inline __attribute__((always_inline)) bool gx_journal_cas(gx_proc *p, _Atomic uint64_t *c, uint64_t *pos,
								 uint32_t n, memory_order mo)
{
	gx_journal_claim(p, *pos, n);
	/* mo: the callers name its partners */
	if (atomic_compare_exchange_weak_explicit(c, pos, *pos + n, mo, memory_order_relaxed))
		return true;
	atomic_store_explicit(&p->rj_n, 0, memory_order_relaxed);
	return false;
}

static inline void gx_journal_done(gx_proc *p)
{
	/* release: the publishes/releases it covered come first */
	atomic_store_explicit(&p->rj_kind, GX_JR_NONE, memory_order_release);
}

static inline bool gx_ring_wakes(const gx_rgeo *v)
{
	return !(v->flags & GX_RING_NOWAKE);
}

/* ---- send ---- */

/* Position pos was published, taken and released by its consumer (its
 * slot moved on to pos + cap). Acquire: pairs with the release store. */
static inline bool gx_released(const gx_rgeo *v, uint64_t pos)
{
	return gx_pdiff(atomic_load_explicit(gx_seq(v, pos), memory_order_acquire), pos + v->cap) >= 0;
}

/* Within the logical capacity: the message lcap places before pos is
 * gone. Once true it stays true until head passes pos. */
static inline bool gx_within_lcap(const gx_rgeo *v, uint64_t pos)
{
	return v->lcap == v->cap || pos < v->lcap || gx_released(v, pos - v->lcap);
}

/* Claim up to n consecutive free slots from head. Returns the count and the
 * first position, 0 when full, -EPIPE once closed, -EBADMSG for a garbage
 * slot ahead of head. */
static int gx_claim_send(gx_ring *r, const gx_rgeo *v, gx_proc *p, uint32_t n, uint64_t *first)
{
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	for (;;) {
		if (pos & GX_HEAD_CLOSED)
			return -EPIPE; /* the CAS below fails once it is set */
		uint32_t k = 0;
		int64_t d = 0;
		while (k < n) {
			/* acquire: pairs with the consumer's release of the slot */
			d = gx_pdiff(atomic_load_explicit(gx_seq(v, pos + k), memory_order_acquire), pos + k);
			if (d == 0 && !gx_within_lcap(v, pos + k))
				d = -1; /* full at the logical capacity */
			if (d != 0)
				break;
			k++;
		}
		if (k == 0) {
			if (d < 0)
				return 0; /* full */
			uint64_t now = atomic_load_explicit(&r->head, memory_order_relaxed);
			if (now == pos)
				return -EBADMSG; /* a slot ahead of head: garbage */
			pos = now;
			continue;
		}
		/* seq_cst (a release too: the journal claim before it; pairs
		 * with a repairer reading head): a channel's chunk message
		 * looks for sleepers without a fence after it, as gx_send1 */
		if (gx_journal_cas(p, &r->head, &pos, k, memory_order_seq_cst)) {
			*first = pos;
			return (int)k;
		}
	}
}

/* Put chunk (ours) in the journal and in RING state before claiming. */
static int gx_chunk_handover(const gx_rgeo *v, gx_proc *p, gx_off chunk, size_t chunk_len)
{
	/* the journal names it first, so repair can give it back */
	atomic_store(&p->rj_chunk, chunk);
	if (gx_pool_give(v->a, chunk, 1, (uint32_t)chunk_len) < 0) {
		gx_journal_done(p);
		return -EINVAL;
	}
	return 0;
}

/* memcpy, with the 8-byte message (a pointer, an offset, a counter: the
 * common one) copied inline rather than through a libc call. */
static inline void gx_copy_msg(void *dst, const void *src, size_t len)
{
	if (len == 8)
		memcpy(dst, src, 8);
	else if (len == 16) /* a channel's header and an 8-byte value */
		memcpy(dst, src, 16);
	else if (len) /* a 0-byte value may come with NULL pointers */
		memcpy(dst, src, len);
}

static void gx_publish(const gx_rgeo *v, uint64_t pos, int k, const void *msgs, size_t len, gx_off chunk)
{
	if (chunk) {
		memcpy(gx_payload(v, pos), &chunk, 8);
		/* release: pairs with the consumer's acquire of seq */
		atomic_store_explicit(gx_seq(v, pos), gx_pub(pos, GX_TAG_CHUNK), memory_order_release);
		return;
	}
	const char *m = msgs;
	for (int i = 0; i < k; i++) {
		gx_copy_msg(gx_payload(v, pos + (uint64_t)i), m + (size_t)i * len, len);
		/* release: pairs with the consumer's acquire of seq */
		atomic_store_explicit(gx_seq(v, pos + (uint64_t)i), gx_pub(pos + (uint64_t)i, (uint32_t)len),
				      memory_order_release);
	}
}

static int gx_send_some(gx_ring *r, const gx_rgeo *v, const void *msgs, size_t len, uint32_t n, gx_off chunk,
			size_t chunk_len, uint64_t *at)
{
	if (len > v->msg_size)
		return -EMSGSIZE;
	gx_proc *p = gx_ring_journal(v, GX_JR_SEND);
	if (!p)
		return -EINVAL;
	if (chunk && gx_chunk_handover(v, p, chunk, chunk_len) < 0)
		return -EINVAL;
	uint64_t pos;
	int k = gx_claim_send(r, v, p, n, &pos);
	if (k <= 0) {
		if (chunk) {
			uint32_t l;
			gx_pool_take(v->a, chunk, &l); /* back to OWNED by us, */
		}
		gx_journal_done(p); /* and only then out of the journal */
		if (k == -EBADMSG)
			atomic_fetch_add_explicit(&r->corrupt, 1, memory_order_relaxed);
		return k == 0 ? -EAGAIN : k;
	}
	/* a test kills a sender here: claimed, not yet published */
	GX_TEST_POINT("ring.send.claimed", r);
	gx_publish(v, pos, k, msgs, len, chunk);
	gx_journal_done(p);
	if (at)
		*at = pos;
	if (gx_ring_wakes(v)) /* nobody sleeps on a NOWAKE ring: no fence */
		gx_ec_notify(&r->not_empty, &r->wakes);
	return k;
}

/*
 * The common send, in a straight line: one inline message of len bytes
 * (len <= msg_size), made of hdr's 8 bytes then len - 8 bytes of msg
 * (hdr != NULL: a channel's header and value, copied straight into the
 * slot), or of len bytes of msg. The same claim and publish as
 * gx_claim_send and gx_publish (the same ordering pairs), without their
 * loops over a batch and their chunk branches. 0 with *at (may be NULL),
 * -EAGAIN full, -EPIPE, -EINVAL, -EBADMSG.
 */
static inline __attribute__((always_inline)) int gx_send1(gx_ring *r, const gx_rgeo *v, const void *hdr,
							    const void *msg, size_t len, uint64_t *at)
{
	if (len > v->msg_size)
		return -EMSGSIZE;
	gx_proc *p = gx_ring_journal(v, GX_JR_SEND);
	if (!p)
		return -EINVAL;
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	for (;;) {
		if (pos & GX_HEAD_CLOSED) { /* closed: the CAS below fails once it is set */
			gx_journal_done(p);
			return -EPIPE;
		}
		_Atomic uint64_t *sq = gx_seq(v, pos);
		/* acquire: pairs with the consumer's release of the slot */
		int64_t d = gx_pdiff(atomic_load_explicit(sq, memory_order_acquire), pos);
		if (d == 0 && gx_within_lcap(v, pos)) {
			/* seq_cst (a release too: the journal claim before it;
			 * pairs with a repairer reading head): it orders this
			 * message before the look at the waiters below
			 * (gx_ec_notify_claimed), whose sleepers count a
			 * claimed head as ready (gx_ready_recv) */
			if (!gx_journal_cas(p, &r->head, &pos, 1, memory_order_seq_cst))
				continue;
			/* a test kills a sender here: claimed, not yet published */
			GX_TEST_POINT("ring.send.claimed", r);
			char *pl = (char *)sq + 8;
			if (hdr) {
				memcpy(pl, hdr, 8);
				gx_copy_msg(pl + 8, msg, len - 8);
			} else {
				gx_copy_msg(pl, msg, len);
			}
			/* release: pairs with the consumer's acquire of seq */
			atomic_store_explicit(sq, gx_pub(pos, (uint32_t)len), memory_order_release);
			gx_journal_done(p);
			if (at)
				*at = pos;
			if (gx_ring_wakes(v)) /* nobody sleeps on a NOWAKE ring */
				gx_ec_notify_claimed(&r->not_empty, &r->wakes);
			return 0;
		}
		if (d <= 0) { /* full (at the slot, or at the logical capacity) */
			gx_journal_done(p);
			return -EAGAIN;
		}
		uint64_t now = atomic_load_explicit(&r->head, memory_order_relaxed);
		if (now == pos) { /* a slot ahead of head: garbage */
			gx_journal_done(p);
			atomic_fetch_add_explicit(&r->corrupt, 1, memory_order_relaxed);
			return -EBADMSG;
		}
		pos = now;
	}
}

int gx_ring_put_hv(gx_ring *r, const void *hdr, const void *val, size_t len, uint64_t *pos)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !hdr || (len && !val))
		return -EINVAL;
	return gx_send1(r, v, hdr, val, 8 + len, pos);
}

/* A caller's copy of the geometry (shm.h): good while the ring carries its
 * nonce, as the table's entry would be; else the table decides. */
static inline bool gx_rg_current(const gx_rgeo *g)
{
	return g->r && atomic_load_explicit(&g->r->nonce, memory_order_relaxed) == g->nonce;
}

int gx_ring_put_hv_g(const gx_rgeo *g, const void *hdr, const void *val, size_t len, uint64_t *pos)
{
	if (!gx_rg_current(g))
		return gx_ring_put_hv(g->r, hdr, val, len, pos);
	if (!hdr || (len && !val))
		return -EINVAL;
	return gx_send1(g->r, g, hdr, val, 8 + len, pos);
}

/* The slot at head is free and within the logical capacity, or the ring
 * is closed. It reads the slot, not the consumers' tail, which they CAS
 * with every message. */
static inline bool gx_room_at_head(gx_ring *r, const gx_rgeo *v)
{
	uint64_t pos = gx_head_pos(atomic_load_explicit(&r->head, memory_order_relaxed));
	/* acquire: pairs with the consumer's release of the slot */
	return atomic_load_explicit(&r->closed, memory_order_relaxed) ||
	       (gx_pdiff(atomic_load_explicit(gx_seq(v, pos), memory_order_acquire), pos) >= 0 &&
		gx_within_lcap(v, pos));
}

/* A message (or a skip, or garbage) is published at tail. It reads the
 * slot, not head, the line the producer writes first in every send: a
 * spinner that read it would pull it away from the producer once more
 * per message. */
static inline bool gx_published_at_tail(gx_ring *r, const gx_rgeo *v)
{
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	/* acquire: pairs with the producer's release of the slot's seq */
	return gx_pdiff(atomic_load_explicit(gx_seq(v, pos), memory_order_acquire), pos + 1) >= 0;
}

/* Room for a send: the spinner's look (gx_ec_wait_spin). A ring this
 * process no longer knows counts as ready: the call reports it. */
static bool gx_ready_send_spin(void *arg)
{
	gx_ring *r = arg;
	const gx_rgeo *v = gx_rg(r);
	return !v || gx_room_at_head(r, v);
}

/* The look after registering to sleep: room, or a place a consumer has
 * claimed (head - tail < lcap) and is about to release. A receive's
 * claim is a seq_cst CAS on tail and its wake-up a seq_cst load of the
 * waiters (gx_ec_notify_claimed, no fence): either that load sees this
 * sleeper, or this look, after the sleeper's fence, sees the claim. A
 * sender woken for a claim not yet released waits until it is (a dead
 * consumer's claim: until repair releases it; gx_ec_wait_spin naps). */
static bool gx_ready_send(void *arg)
{
	gx_ring *r = arg;
	const gx_rgeo *v = gx_rg(r);
	if (!v || gx_room_at_head(r, v))
		return true;
	uint64_t h = gx_head_pos(atomic_load_explicit(&r->head, memory_order_relaxed));
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	return h - t < v->lcap;
}

/* A message at tail (or closed): the spinner's look for a receive. */
static bool gx_ready_recv_spin(void *arg)
{
	gx_ring *r = arg;
	const gx_rgeo *v = gx_rg(r);
	return !v || atomic_load_explicit(&r->closed, memory_order_relaxed) || gx_published_at_tail(r, v);
}

/* The look after registering to sleep: that, or a claimed head
 * (gx_ec_notify_claimed's side of the bargain: the message is on its
 * way, and the wait ends once it is published, gx_ec_wait_spin). */
static bool gx_ready_recv(void *arg)
{
	gx_ring *r = arg;
	return gx_ready_recv_spin(r) ||
	       gx_head_pos(atomic_load_explicit(&r->head, memory_order_relaxed)) !=
		       atomic_load_explicit(&r->tail, memory_order_relaxed);
}

static inline int64_t gx_ring_spin(const gx_rgeo *v)
{
	return gx_ring_wakes(v) ? v->spin_ns : -1;
}

/* The waits below try once on the table entry v. Only when they must
 * wait do they copy the geometry: the entry may move (the table grows) or
 * be taken anew while they yield. */
static int gx_send_wait(gx_ring *r, const gx_rgeo *v, const void *msgs, size_t len, uint32_t n, gx_off chunk,
			size_t chunk_len, gx_until u)
{
	int rc = gx_send_some(r, v, msgs, len, n, chunk, chunk_len, NULL);
	if (rc != -EAGAIN)
		return rc;
	const gx_rgeo g = *v;
	for (unsigned misses = 0;;) {
		rc = gx_ec_wait_spin(&r->not_full, gx_ready_send, gx_ready_send_spin, r, gx_ring_spin(&g), u,
				     &r->sleeps);
		if (rc < 0 || (rc = gx_ec_pause(&misses, u)) < 0)
			return rc;
		if (!gx_rg_same(r, &g))
			return -EINVAL; /* destroyed (or made anew) while we waited */
		rc = gx_send_some(r, &g, msgs, len, n, chunk, chunk_len, NULL);
		if (rc != -EAGAIN)
			return rc;
	}
}

int gx_ring_try_send(gx_ring *r, const void *msg, size_t len)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !msg || len == 0)
		return -EINVAL;
	return gx_send1(r, v, NULL, msg, len, NULL);
}

int gx_ring_send(gx_ring *r, const void *msg, size_t len, gx_until u)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !msg || len == 0)
		return -EINVAL;
	int rc = gx_send1(r, v, NULL, msg, len, NULL);
	if (rc != -EAGAIN)
		return rc;
	rc = gx_send_wait(r, v, msg, len, 1, 0, 0, u);
	return rc < 0 ? rc : 0;
}

int gx_ring_try_send_chunk(gx_ring *r, gx_off chunk, size_t len)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !chunk || len > GX_POOL_MAX_CHUNK || v->msg_size < 8)
		return -EINVAL;
	int rc = gx_send_some(r, v, NULL, 8, 1, chunk, len, NULL);
	return rc < 0 ? rc : 0;
}

int gx_ring_send_chunk(gx_ring *r, gx_off chunk, size_t len, gx_until u)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !chunk || len > GX_POOL_MAX_CHUNK || v->msg_size < 8)
		return -EINVAL;
	int rc = gx_send_wait(r, v, NULL, 8, 1, chunk, len, u);
	return rc < 0 ? rc : 0;
}

int gx_ring_try_send_batch(gx_ring *r, const void *msgs, size_t n)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !msgs || n == 0)
		return -EINVAL;
	return gx_send_some(r, v, msgs, v->msg_size, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, 0, 0, NULL);
}

int gx_ring_send_batch(gx_ring *r, const void *msgs, size_t n, gx_until u)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !msgs || n == 0)
		return -EINVAL;
	return gx_send_wait(r, v, msgs, v->msg_size, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, 0, 0, u);
}

int gx_ring_try_send_at(gx_ring *r, const void *msg, size_t len, gx_off chunk, uint64_t *pos)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !pos || (chunk ? v->msg_size < 8 || len > GX_POOL_MAX_CHUNK : !msg || len == 0))
		return -EINVAL;
	if (!chunk)
		return gx_send1(r, v, NULL, msg, len, pos);
	int rc = gx_send_some(r, v, NULL, 8, 1, chunk, len, pos);
	return rc < 0 ? rc : 0;
}

bool gx_ring_taken(gx_ring *r, uint64_t pos)
{
	const gx_rgeo *v = gx_ring_v(r);
	return !v || gx_released(v, pos);
}

bool gx_ring_taken_g(const gx_rgeo *g, uint64_t pos)
{
	return gx_rg_current(g) ? gx_released(g, pos) : gx_ring_taken(g->r, pos);
}

/* ---- withdraw (TAKE rings) ---- */

void gx_ring_pass_skips(gx_ring *r, const gx_rgeo *v, gx_proc *p)
{
	for (uint64_t i = 0; i < v->cap; i++) {
		uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
		/* acquire: pairs with the withdraw's CAS (or repair's) to SKIP */
		if (atomic_load_explicit(gx_seq(v, pos), memory_order_acquire) != gx_pub(pos, GX_TAG_SKIP))
			break;
		/* the claim in p's journal, as gx_journal_claim makes it */
		atomic_store_explicit(&p->rj_n, 0, memory_order_relaxed);
		atomic_store_explicit(&p->rj_pos, pos, memory_order_relaxed);
		/* release: pairs with gx_live_claims's acquire of n; pos first */
		atomic_store_explicit(&p->rj_n, 1, memory_order_release);
		/* acq_rel: the journal claim before it; pairs with a repairer reading tail */
		if (atomic_compare_exchange_strong_explicit(&r->tail, &pos, pos + 1, memory_order_acq_rel,
							    memory_order_relaxed))
			/* release: pairs with the producer's acquire in gx_claim_send */
			atomic_store_explicit(gx_seq(v, pos), (pos + v->cap) & GX_POS_MASK, memory_order_release);
		atomic_store_explicit(&p->rj_n, 0, memory_order_relaxed);
	}
}

int gx_ring_withdraw(gx_ring *r, uint64_t pos, gx_off *chunk)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (chunk)
		*chunk = 0;
	if (!v || !(v->flags & GX_RING_TAKE))
		return -EINVAL;
	_Atomic uint64_t *sq = gx_seq(v, pos);
	/* acquire: pairs with the receiver's release CAS (gx_rx_take) */
	uint64_t seq = atomic_load_explicit(sq, memory_order_acquire);
	uint32_t tag = (uint32_t)(seq >> 56);
	if (gx_pdiff(seq, pos + 1) != 0 || tag == GX_TAG_SKIP)
		return 0; /* released: a receiver took it (or its repair) */
	gx_proc *p = NULL;
	gx_off off = 0;
	if (tag == GX_TAG_CHUNK) {
		/* the journal names the chunk first: a repair after our death
		 * between the CAS and the take gives it back to the pool */
		memcpy(&off, gx_payload(v, pos), 8);
		p = gx_ring_journal(v, GX_JR_SEND);
		if (p) {
			atomic_store_explicit(&p->rj_chunk, off, memory_order_relaxed);
			gx_journal_claim(p, pos, 1);
		}
	}
	/* acquire: a lost CAS saw the receiver's release. Release: pairs with
	 * the acquire in gx_pass_skips and in the claim of whoever passes it */
	bool won = atomic_compare_exchange_strong_explicit(sq, &seq, gx_pub(pos, GX_TAG_SKIP), memory_order_acq_rel,
							   memory_order_acquire);
	GX_TEST_POINT("ring.withdraw.cas", r);
	if (won && off) {
		uint32_t len;
		if (gx_pool_take(v->a, off, &len) == 0) {
			if (chunk)
				*chunk = off;
			else
				gx_pool_free(v->a, off);
		}
	}
	if (p)
		gx_journal_done(p);
	if (!won)
		return 0;
	if ((p = gx_ring_journal(v, GX_JR_RECV)) != NULL) {
		gx_ring_pass_skips(r, v, p);
		gx_journal_done(p);
	}
	return 1;
}

/* ---- receive ---- */

enum { GX_RX_ONE, GX_RX_BATCH };

/* What one receive call wants: single (one message of any kind, inline
 * into buf/cap, chunk into *chunk) or batch (up to n inline messages of
 * msg_size, stopping before anything else). */
typedef struct {
	void *buf;
	size_t cap;
	gx_off *chunk;
	uint32_t n;
	int mode;
	bool passed; /* out: skipped slots were passed over */
} gx_rx;

/* How many slots from pos (published, tag0 at pos) the call takes: >= 1,
 * or -EMSGSIZE when the first one is not for it. A tag it cannot read
 * becomes GX_TAG_BAD (consumed as one corrupt slot). */
static int gx_rx_count(const gx_rgeo *v, gx_rx *x, uint64_t pos, uint32_t *tag0)
{
	uint32_t t = *tag0;
	if (t == 0 || (t > v->msg_size && t != GX_TAG_CHUNK && t != GX_TAG_SKIP)) {
		*tag0 = GX_TAG_BAD;
		return 1;
	}
	if ((v->flags & GX_RING_TAKE) && t != GX_TAG_SKIP) {
		/* one at a time: each is won by a CAS (gx_rx_take) */
		if (x->mode == GX_RX_BATCH && t != v->msg_size)
			return -EMSGSIZE;
		if (x->mode == GX_RX_ONE &&
		    ((t <= GX_RING_INLINE_MAX && t > x->cap) || (t == GX_TAG_CHUNK && !x->chunk)))
			return -EMSGSIZE;
		return 1;
	}
	if (x->mode == GX_RX_BATCH) {
		if (t != v->msg_size && t != GX_TAG_SKIP)
			return -EMSGSIZE;
		uint32_t k = 1;
		if (t == v->msg_size)
			/* acquire: pairs with the producers' release of each seq */
			while (k < x->n && atomic_load_explicit(gx_seq(v, pos + k), memory_order_acquire) ==
						   gx_pub(pos + k, v->msg_size))
				k++;
		return (int)k;
	}
	if ((t <= GX_RING_INLINE_MAX && t > x->cap) || (t == GX_TAG_CHUNK && !x->chunk))
		return -EMSGSIZE;
	return 1;
}

/* The slot at tail (pos) is not published. -EAGAIN: empty for now. -EPIPE:
 * empty for good, as the ring is closed (head's closed bit: every claim
 * came before the close) and no producer's claim is left past pos: a
 * claim not yet published will be (or skipped by repair) and comes first.
 * 1: published meanwhile, look again. The closed word is read first, and
 * head only once it is set: a look at head, which producers CAS with
 * every message, would pull their line away. */
static inline int gx_empty_at(gx_ring *r, const gx_rgeo *v, uint64_t pos)
{
	/* acquire: pairs with the close's release of closed, after its bit in head */
	if (!atomic_load_explicit(&r->closed, memory_order_acquire))
		return -EAGAIN;
	uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
	/* acquire: pairs with the producer's release of seq */
	if (gx_pdiff(atomic_load_explicit(gx_seq(v, pos), memory_order_acquire), pos + 1) >= 0)
		return 1;
	return gx_head_pos(h) <= pos ? -EPIPE : -EAGAIN;
}

/* Claim the next k published slots at tail. Returns k and *first, *tag0,
 * or -EAGAIN (empty), -EPIPE (closed and empty), -EMSGSIZE. */
static int gx_claim_recv(gx_ring *r, const gx_rgeo *v, gx_proc *p, gx_rx *x, uint64_t *first,
			 uint32_t *tag0)
{
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	for (;;) {
		/* acquire: pairs with the producer's release of seq */
		uint64_t seq = atomic_load_explicit(gx_seq(v, pos), memory_order_acquire);
		int64_t d = gx_pdiff(seq, pos + 1);
		if (d < 0) {
			int e = gx_empty_at(r, v, pos);
			if (e > 0)
				continue; /* published since */
			return e;
		}
		if (d > 0) {
			uint64_t now = atomic_load_explicit(&r->tail, memory_order_relaxed);
			if (now != pos) {
				pos = now; /* another consumer took it */
				continue;
			}
			/* a slot ahead of the tail: garbage. Take it, so that the
			 * ring moves on, and report it. */
			*tag0 = GX_TAG_BAD;
		} else {
			*tag0 = (uint32_t)(seq >> 56);
		}
		int k = gx_rx_count(v, x, pos, tag0);
		if (k < 0)
			return k;
		/* seq_cst (a release too: the journal claim before it; pairs
		 * with a repairer reading tail): it orders the claim before
		 * the look at the waiters (gx_ec_notify_claimed), whose
		 * sleepers count a claimed tail as room (gx_ready_send) */
		if (gx_journal_cas(p, &r->tail, &pos, (uint32_t)k, memory_order_seq_cst)) {
			*first = pos;
			return k;
		}
	}
}

/* Copy out the k claimed slots at pos (tag0 the first's tag): the result
 * of the call, or -EAGAIN for a skipped slot (nothing: go on). */
static ssize_t gx_rx_copy(gx_ring *r, const gx_rgeo *v, gx_rx *x, uint64_t pos, uint32_t k, uint32_t tag0)
{
	if (tag0 == GX_TAG_SKIP)
		return -EAGAIN;
	if (tag0 == GX_TAG_CHUNK) {
		gx_off off;
		uint32_t len;
		memcpy(&off, gx_payload(v, pos), 8);
		if (gx_pool_take(v->a, off, &len) < 0) {
			atomic_fetch_add_explicit(&r->corrupt, 1, memory_order_relaxed);
			return -EBADMSG;
		}
		*x->chunk = off;
		return len;
	}
	if (tag0 == 0 || tag0 > v->msg_size) {
		atomic_fetch_add_explicit(&r->corrupt, 1, memory_order_relaxed);
		return -EBADMSG;
	}
	if (x->mode == GX_RX_BATCH) {
		for (uint32_t i = 0; i < k; i++)
			memcpy((char *)x->buf + (size_t)i * v->msg_size, gx_payload(v, pos + i), v->msg_size);
		return k;
	}
	gx_copy_msg(x->buf, gx_payload(v, pos), tag0);
	return tag0;
}

/* The claimed slot at pos of a TAKE ring, published with tag0: its
 * message is ours only if our release, a CAS from the published word,
 * wins against the sender's withdraw (the CAS to SKIP in
 * gx_ring_withdraw). The copy comes first: the payload cannot change
 * while we hold the tail claim (only a release frees the slot, and only
 * we release it). A lost CAS found SKIP: the slot is released as passed
 * over, and the copy is dropped (-EAGAIN). The chunk of a chunk message
 * is taken from the pool only after the CAS won. */
static ssize_t gx_rx_take(gx_ring *r, const gx_rgeo *v, gx_rx *x, uint64_t pos, uint32_t tag0)
{
	_Atomic uint64_t *sq = gx_seq(v, pos);
	uint64_t want = gx_pub(pos, tag0), done = (pos + v->cap) & GX_POS_MASK;
	gx_off off = 0;
	char won[GX_RING_INLINE_MAX]; /* the caller's buffer only once the CAS won */
	size_t n = tag0 == GX_TAG_CHUNK ? 0 : x->mode == GX_RX_BATCH ? v->msg_size : tag0;
	if (tag0 == GX_TAG_CHUNK)
		memcpy(&off, gx_payload(v, pos), 8);
	else
		gx_copy_msg(won, gx_payload(v, pos), n);
	/* seq_cst (a release: the copy out first; pairs with the sender's
	 * acquire in gx_released): it orders the take before the look at the
	 * waiters that the caller's wake-up makes without a fence (a
	 * rendezvous sender sleeps until its message is taken; a distributed
	 * channel's gx_dch_took). Its failure order is relaxed: what it found
	 * is the withdraw's SKIP, nothing we read through */
	if (!atomic_compare_exchange_strong_explicit(sq, &want, done, memory_order_seq_cst, memory_order_relaxed)) {
		/* release: pairs with the next producer's acquire in gx_claim_send */
		atomic_store_explicit(sq, done, memory_order_release);
		x->passed = true;
		return -EAGAIN;
	}
	if (!off) {
		gx_copy_msg(x->buf, won, n);
		return x->mode == GX_RX_BATCH ? 1 : tag0;
	}
	uint32_t len;
	if (gx_pool_take(v->a, off, &len) < 0) {
		atomic_fetch_add_explicit(&r->corrupt, 1, memory_order_relaxed);
		return -EBADMSG;
	}
	*x->chunk = off;
	return len;
}

/*
 * Take what x asks for from tail. Returns the count (single: the length)
 * or -EAGAIN (empty), -EPIPE (closed and empty), -EMSGSIZE, -EBADMSG.
 * Skipped slots are consumed and passed over.
 */
static ssize_t gx_recv_some(gx_ring *r, const gx_rgeo *v, gx_rx *x)
{
	for (;;) {
		gx_proc *p = gx_ring_journal(v, GX_JR_RECV);
		if (!p)
			return -EINVAL;
		uint64_t pos;
		uint32_t tag0;
		int k = gx_claim_recv(r, v, p, x, &pos, &tag0);
		if (k < 0) {
			gx_journal_done(p);
			return k;
		}
		/* a test stops or kills a receiver here: claimed, not yet taken */
		GX_TEST_POINT("ring.recv.claimed", r);
		ssize_t res;
		if ((v->flags & GX_RING_TAKE) && tag0 != GX_TAG_SKIP && tag0 != GX_TAG_BAD) {
			res = gx_rx_take(r, v, x, pos, tag0); /* released by its CAS */
		} else {
			res = gx_rx_copy(r, v, x, pos, (uint32_t)k, tag0);
			if (tag0 == GX_TAG_SKIP)
				x->passed = true;
			for (uint32_t i = 0; i < (uint32_t)k; i++)
				/* release: the copies out first; pairs with the
				 * producer's acquire in gx_claim_send */
				atomic_store_explicit(gx_seq(v, pos + i), (pos + i + v->cap) & GX_POS_MASK,
						      memory_order_release);
		}
		gx_journal_done(p);
		if (gx_ring_wakes(v)) /* the claim stands in for the fence */
			gx_ec_notify_claimed(&r->not_full, &r->wakes);
		if (res != -EAGAIN)
			return res;
	}
}

/*
 * The common receive, in a straight line: the message at tail when it is
 * an inline one the caller can take (tag <= cap). With hdr (a channel's
 * message: its 8-byte header, then the value): the header into hdr, the
 * rest into buf (up to cap bytes). The same claim and release as
 * gx_claim_recv and gx_recv_some (the same ordering pairs); anything else
 * (empty, closed, a chunk, a skip, garbage, a message too big) goes to
 * gx_recv_some: 1 when the fast path ended the call (*res its result),
 * 0 to take the slow path.
 */
static inline __attribute__((always_inline)) int gx_recv1(gx_ring *r, const gx_rgeo *v, void *hdr, void *buf,
							    size_t cap, bool *passed, ssize_t *res)
{
	gx_proc *p = NULL; /* the journal is written only for a claim */
	for (;;) {
		uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
		_Atomic uint64_t *sq = gx_seq(v, pos);
		/* acquire: pairs with the producer's release of seq */
		uint64_t seq = atomic_load_explicit(sq, memory_order_acquire);
		uint32_t tag = (uint32_t)(seq >> 56);
		/* with hdr only the exact length: nothing is copied out of a
		 * message the caller refuses */
		if (gx_pdiff(seq, pos + 1) != 0 || tag == 0 || tag > v->msg_size || (hdr ? tag != cap + 8 : tag > cap)) {
			if (p)
				gx_journal_done(p);
			if (gx_pdiff(seq, pos + 1) < 0 &&
			    /* relaxed: gx_empty_at reads it again, acquire */
			    !atomic_load_explicit(&r->closed, memory_order_relaxed)) {
				*res = -EAGAIN; /* empty */
				return 1;
			}
			return 0;
		}
		if (!p && !(p = gx_ring_journal(v, GX_JR_RECV)))
			return 0;
		/* seq_cst: as in gx_claim_recv (the repairer's partner and
		 * the sleeping senders', gx_ready_send) */
		if (!gx_journal_cas(p, &r->tail, &pos, 1, memory_order_seq_cst))
			continue;
		/* a test stops or kills a receiver here: claimed, not yet taken */
		GX_TEST_POINT("ring.recv.claimed", r);
		const char *pl = (const char *)sq + 8;
		char won[GX_RING_INLINE_MAX];
		if (v->flags & GX_RING_TAKE) {
			/* copied aside first: a message the sender takes back
			 * (the CAS below lost) must not reach the caller */
			gx_copy_msg(won, pl, tag);
			pl = won;
		}
		uint64_t done = (pos + v->cap) & GX_POS_MASK;
		if (v->flags & GX_RING_TAKE) {
			/* seq_cst (a release: the copy out first; pairs with
			 * the sender's acquire in gx_released): as in gx_rx_take.
			 * Lost: the sender withdrew it (gx_rx_take says more) */
			if (!atomic_compare_exchange_strong_explicit(sq, &seq, done, memory_order_seq_cst,
								     memory_order_relaxed)) {
				/* release: pairs with the next producer's acquire in gx_claim_send */
				atomic_store_explicit(sq, done, memory_order_release);
				*passed = true;
				continue;
			}
		}
		if (hdr) {
			memcpy(hdr, pl, 8);
			gx_copy_msg(buf, pl + 8, tag - 8);
		} else {
			gx_copy_msg(buf, pl, tag);
		}
		if (!(v->flags & GX_RING_TAKE))
			/* release: the copy out first; pairs with the producer's acquire in gx_claim_send */
			atomic_store_explicit(sq, done, memory_order_release);
		gx_journal_done(p);
		if (gx_ring_wakes(v)) /* the claim stands in for the fence */
			gx_ec_notify_claimed(&r->not_full, &r->wakes);
		*res = tag;
		return 1;
	}
}

static inline __attribute__((always_inline)) ssize_t gx_take_hv(gx_ring *r, const gx_rgeo *v, void *hdr, void *val,
								 size_t len, gx_off *chunk, bool *passed)
{
	*passed = false;
	if (!v || !hdr || (len && !val))
		return -EINVAL;
	ssize_t res;
	if (gx_recv1(r, v, hdr, val, len, passed, &res))
		return res;
	/* the slow path into a buffer: a chunk, a skip, or a message this
	 * call refuses (its length is all the caller needs to know) */
	char m[GX_RING_INLINE_MAX];
	gx_rx x = {m, sizeof m, chunk, 1, GX_RX_ONE, false};
	res = gx_recv_some(r, v, &x);
	*passed = *passed || x.passed;
	if (res == (ssize_t)(8 + len) && !(chunk && *chunk)) {
		memcpy(hdr, m, 8);
		if (len)
			memcpy(val, m + 8, len);
	}
	return res;
}

ssize_t gx_ring_take_hv(gx_ring *r, void *hdr, void *val, size_t len, gx_off *chunk, bool *passed)
{
	return gx_take_hv(r, gx_ring_v(r), hdr, val, len, chunk, passed);
}

ssize_t gx_ring_take_hv_g(const gx_rgeo *g, void *hdr, void *val, size_t len, gx_off *chunk, bool *passed)
{
	if (!gx_rg_current(g))
		return gx_ring_take_hv(g->r, hdr, val, len, chunk, passed);
	return gx_take_hv(g->r, g, hdr, val, len, chunk, passed);
}

/* Receive x, waiting until u. `empty`: the caller's gx_recv1 found the
 * ring empty just now (no second look before the wait). After each wait
 * a single receive tries gx_recv1 first, as gx_ring_recv does. */
static ssize_t gx_recv_wait(gx_ring *r, const gx_rgeo *v, gx_rx *x, gx_until u, bool empty)
{
	ssize_t rc;
	if (!empty && (rc = gx_recv_some(r, v, x)) != -EAGAIN)
		return rc;
	const gx_rgeo g = *v;
	for (unsigned misses = 0;;) {
		int w = gx_ec_wait_spin(&r->not_empty, gx_ready_recv, gx_ready_recv_spin, r, gx_ring_spin(&g), u,
					 &r->sleeps);
		if (w < 0 || (w = gx_ec_pause(&misses, u)) < 0)
			return w;
		if (!gx_rg_same(r, &g))
			return -EINVAL;
		if (x->mode == GX_RX_ONE && gx_recv1(r, &g, NULL, x->buf, x->cap, &x->passed, &rc)) {
			if (rc != -EAGAIN)
				return rc;
			continue;
		}
		if ((rc = gx_recv_some(r, &g, x)) != -EAGAIN)
			return rc;
	}
}

ssize_t gx_ring_try_recv(gx_ring *r, void *buf, size_t cap, gx_off *chunk)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || (!buf && cap))
		return -EINVAL;
	bool passed = false;
	ssize_t res;
	if (gx_recv1(r, v, NULL, buf, cap, &passed, &res))
		return res;
	gx_rx x = {buf, cap, chunk, 1, GX_RX_ONE, false};
	return gx_recv_some(r, v, &x);
}

ssize_t gx_ring_try_recv_passing(gx_ring *r, void *buf, size_t cap, gx_off *chunk, bool *passed)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || (!buf && cap))
		return -EINVAL;
	bool p1 = false;
	ssize_t rc;
	if (!gx_recv1(r, v, NULL, buf, cap, &p1, &rc)) {
		gx_rx x = {buf, cap, chunk, 1, GX_RX_ONE, false};
		rc = gx_recv_some(r, v, &x);
		p1 = p1 || x.passed;
	}
	if (passed)
		*passed = p1;
	return rc;
}

ssize_t gx_ring_recv(gx_ring *r, void *buf, size_t cap, gx_off *chunk, gx_until u)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || (!buf && cap))
		return -EINVAL;
	bool passed = false;
	ssize_t res;
	bool ended = gx_recv1(r, v, NULL, buf, cap, &passed, &res);
	if (ended && res != -EAGAIN)
		return res;
	if (ended && v->spin_ns > 0 && gx_ring_wakes(v)) { /* GX_RING_LOOKS says why */
		for (int i = 0; i < GX_RING_LOOKS; i++) {
			gx_cpu_relax();
			ended = gx_recv1(r, v, NULL, buf, cap, &passed, &res);
			if (!ended || res != -EAGAIN)
				break;
		}
		if (ended && res != -EAGAIN)
			return res;
	}
	gx_rx x = {buf, cap, chunk, 1, GX_RX_ONE, false};
	return gx_recv_wait(r, v, &x, u, ended); /* ended: with -EAGAIN, empty */
}

int gx_ring_try_recv_batch(gx_ring *r, void *msgs, size_t n)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !msgs || n == 0)
		return -EINVAL;
	gx_rx x = {msgs, 0, NULL, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, GX_RX_BATCH, false};
	return (int)gx_recv_some(r, v, &x);
}

int gx_ring_recv_batch(gx_ring *r, void *msgs, size_t n, gx_until u)
{
	const gx_rgeo *v = gx_ring_v(r);
	if (!v || !msgs || n == 0)
		return -EINVAL;
	gx_rx x = {msgs, 0, NULL, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, GX_RX_BATCH, false};
	return (int)gx_recv_wait(r, v, &x, u, false);
}

/* ---- close, stats ---- */

/* The second half of a close, once head carries its bit: the closed word
 * (which empty receives and spinners read) and the wake-ups. Again after
 * a closer that died between the halves: by a later close, or by repair
 * (gx_ring_repair_slot), so that no receive waits on a ring closed to
 * its producers. */
void gx_ring_close_finish(gx_ring *r)
{
	/* release: the bit first (pairs with gx_empty_at's acquire); then
	 * the notifies' fences: a sleeper re-checks after */
	atomic_store_explicit(&r->closed, 1, memory_order_release);
	gx_ec_notify(&r->not_empty, &r->wakes);
	gx_ec_notify(&r->not_full, &r->wakes);
}

int gx_ring_close(gx_ring *r)
{
	if (!gx_ring_v(r))
		return -EINVAL;
	/* seq_cst: every claim after it fails (a producer's CAS from an
	 * open head); the bit was set already: closed before */
	bool again = atomic_fetch_or(&r->head, GX_HEAD_CLOSED) & GX_HEAD_CLOSED;
	/* a test kills the closer here: repair (or the next close) finishes */
	GX_TEST_POINT("ring.close.head", r);
	gx_ring_close_finish(r);
	return again ? -EPIPE : 0;
}

int gx_ring_stats_get(const gx_ring *r, gx_ring_stats *out)
{
	gx_ring *w = (gx_ring *)r;
	const gx_rgeo *v = gx_ring_v(w);
	if (!v || !out)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	out->capacity = (uint32_t)v->cap;
	out->msg_size = v->msg_size;
	out->sent = gx_head_pos(atomic_load(&w->head));
	out->received = atomic_load(&w->tail);
	out->queued = out->sent >= out->received ? out->sent - out->received : 0;
	out->skipped = atomic_load(&w->skipped);
	out->lost = atomic_load(&w->lost);
	out->corrupt = atomic_load(&w->corrupt);
	out->sleeps = atomic_load(&w->sleeps);
	out->wakes = atomic_load(&w->wakes);
	out->closed = (int)atomic_load(&w->closed);
	return 0;
}

void gx_ring_kick(gx_ring *r)
{
	if (gx_ring_v(r))
		gx_ec_notify(&r->not_empty, &r->wakes);
}

bool gx_ring_has_room(gx_ring *r)
{
	return gx_ready_send_spin(r);
}

bool gx_ring_room_claimed(gx_ring *r)
{
	return gx_ready_send(r);
}

gx_ec *gx_ring_consumer_ec(gx_ring *r)
{
	return r ? &r->not_empty : NULL;
}

bool gx_ring_peek(gx_ring *r)
{
	const gx_rgeo *v = r ? gx_rg(r) : NULL;
	return v && gx_published_at_tail(r, v);
}

bool gx_ring_peek_g(const gx_rgeo *g)
{
	return gx_rg_current(g) ? gx_published_at_tail(g->r, g) : gx_ring_peek(g->r);
}

uint64_t gx_ring_depth(const gx_ring *r)
{
	if (!r)
		return 0;
	uint64_t h = gx_head_pos(atomic_load_explicit(&((gx_ring *)r)->head, memory_order_relaxed));
	uint64_t t = atomic_load_explicit(&((gx_ring *)r)->tail, memory_order_relaxed);
	return h > t ? h - t : 0;
}
