/*
 * The MPMC ring: a per-slot sequence ring (Vyukov) in the arena.
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
 * Claims: a producer (consumer) writes the position it is about to claim
 * and how many into its process slot's ring journal before the CAS on head
 * (tail), and clears the journal after publishing (releasing). After its
 * death, repair looks at exactly those positions: claimed (head/tail past
 * them), not published (released), and not covered by a live process's
 * journal: then they are the dead one's, published as SKIP (released) and
 * counted.
 *
 * Untrusted input: tags and chunk offsets come from other processes; a bad
 * tag or a chunk the pool does not know as handed to a ring consumes the
 * slot and gives -EBADMSG. Slot addresses depend only on the position and
 * the capacity and stride checked when the ring was found (gx_ring_at).
 *
 * Wake-ups: eventcounts not_empty (consumers sleep there) and not_full
 * (producers), see wake.c; a publish costs a fence and one load when no one
 * sleeps.
 */
#include "shm/shm.h"

#include <errno.h>
#include <string.h>

#define GX_RING_MAGIC 0x676e6972u
#define GX_POS_MASK ((UINT64_C(1) << 56) - 1)
#define GX_TAG_CHUNK 0x7eu
#define GX_TAG_SKIP 0x7fu
#define GX_TAG_BAD 0xfeu /* never written: a garbage slot being consumed */

struct gx_ring {
	uint32_t magic;
	uint32_t cap;
	uint32_t msg_size;
	uint32_t stride;
	uint32_t flags;
	uint32_t pad0;
	int64_t spin_ns;
	gx_off self; /* own offset: checked by gx_ring_at */
	_Alignas(128) _Atomic uint64_t head;
	_Alignas(128) _Atomic uint64_t tail;
	_Alignas(128) gx_ec not_empty;
	_Alignas(64) gx_ec not_full;
	_Alignas(64) _Atomic uint32_t closed;
	_Atomic uint64_t skipped, lost, corrupt, sleeps, wakes;
	_Alignas(128) char slots[];
};

_Static_assert(offsetof(struct gx_ring, slots) <= GX_RING_HDR, "ring header too big");

/*
 * A validated snapshot of the ring's geometry, taken once per call: the
 * header is in shared memory, and slot addresses must not follow a value
 * another process changes halfway through.
 */
typedef struct {
	char *slots;
	uint64_t cap;
	uint32_t stride;
	uint32_t msg_size;
	gx_arena *a; /* the arena the ring is in, found once per call */
} gx_rv;

static int gx_rv_get(gx_ring *r, gx_rv *v)
{
	uint32_t cap = *(volatile uint32_t *)&r->cap;
	uint32_t stride = *(volatile uint32_t *)&r->stride;
	uint32_t msg = *(volatile uint32_t *)&r->msg_size;
	if (cap < 2 || cap > (1u << 24) || (cap & (cap - 1)) || stride < 16 || stride > 128 || (stride & (stride - 1)) ||
	    msg < 1 || msg > stride - 8)
		return -EBADMSG;
	gx_arena *a = gx_arena_of(r);
	if (!a || (uint64_t)((char *)r - (char *)a) + GX_RING_HDR + (uint64_t)cap * stride > a->h.size)
		return -EBADMSG;
	v->slots = r->slots;
	v->cap = cap;
	v->stride = stride;
	v->msg_size = msg;
	v->a = a;
	return 0;
}

static inline _Atomic uint64_t *gx_seq(const gx_rv *v, uint64_t pos)
{
	return (_Atomic uint64_t *)(v->slots + (size_t)(pos & (v->cap - 1)) * v->stride);
}

static inline char *gx_payload(const gx_rv *v, uint64_t pos)
{
	return v->slots + (size_t)(pos & (v->cap - 1)) * v->stride + 8;
}

/* seq's position minus want, as a signed 56-bit difference */
static inline int64_t gx_pdiff(uint64_t seq, uint64_t want)
{
	return (int64_t)(((seq & GX_POS_MASK) - (want & GX_POS_MASK)) << 8) >> 8;
}

static inline uint64_t gx_pub(uint64_t pos, uint32_t tag)
{
	return ((pos + 1) & GX_POS_MASK) | (uint64_t)tag << 56;
}

static inline bool gx_ring_ok(const gx_ring *r)
{
	return r && ((uintptr_t)r & 127) == 0 && r->magic == GX_RING_MAGIC;
}

/* ---- create, find, destroy ---- */

int gx_ring_create(gx_arena *a, gx_ring **out, uint32_t capacity, uint32_t msg_size, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!a || a->h.magic != GX_ARENA_MAGIC || capacity < 2 || capacity > (1u << 24) ||
	    (capacity & (capacity - 1)) || msg_size < 1 || msg_size > GX_RING_INLINE_MAX || (flags & ~GX_RING_NOWAKE))
		return -EINVAL;
	uint32_t stride = 16;
	while (stride < 8 + (msg_size < 8 ? 8 : msg_size))
		stride *= 2;
	uint64_t bytes = GX_RING_HDR + (uint64_t)capacity * stride;
	if (bytes > GX_POOL_MAX_CHUNK)
		return -EINVAL;
	int64_t off = gx_pool_alloc(a, bytes, -1);
	if (off < 0)
		return (int)off;
	gx_ring *r = gx_aptr(a, (uint64_t)off, bytes);
	memset(r, 0, GX_RING_HDR);
	r->cap = capacity;
	r->msg_size = msg_size;
	r->stride = stride;
	r->flags = flags;
	r->spin_ns = a->h.spin_ns;
	r->self = (gx_off)off;
	gx_rv v0 = {.slots = r->slots, .cap = capacity, .stride = stride, .msg_size = msg_size};
	for (uint32_t i = 0; i < capacity; i++)
		atomic_store_explicit(gx_seq(&v0, i), i, memory_order_relaxed);
	gx_arena_hdr *h = gx_ah(a);
	int reg = -1;
	for (int i = 0; i < GX_MAX_RINGS && reg < 0; i++) {
		uint64_t z = 0;
		if (atomic_compare_exchange_strong(&h->rings[i], &z, (uint64_t)off))
			reg = i;
	}
	if (reg < 0) {
		gx_pool_free(a, (gx_off)off);
		return -ENOMEM;
	}
	/* a shared object: its creator's death must not return it to the pool */
	gx_pool_share(a, (gx_off)off);
	atomic_thread_fence(memory_order_release);
	r->magic = GX_RING_MAGIC;
	*out = r;
	return 0;
}

gx_ring *gx_ring_at(gx_arena *a, gx_off off)
{
	if (!a || a->h.magic != GX_ARENA_MAGIC)
		return NULL;
	if (off % 128)
		return NULL; /* rings start on a 128-byte boundary */
	gx_ring *r = gx_aptr(a, off, GX_RING_HDR);
	if (!r || r->magic != GX_RING_MAGIC || r->self != off || r->cap < 2 || (r->cap & (r->cap - 1)) ||
	    r->stride < 16 || r->stride > 128 || r->msg_size < 1 || r->msg_size > r->stride - 8 ||
	    !gx_aptr(a, off, GX_RING_HDR + (uint64_t)r->cap * r->stride))
		return NULL;
	return r;
}

gx_off gx_ring_off(const gx_ring *r)
{
	return gx_ring_ok(r) ? r->self : 0;
}

int gx_ring_destroy(gx_arena *a, gx_ring *r)
{
	if (!a || !gx_ring_ok(r) || gx_ring_at(a, r->self) != r)
		return -EINVAL;
	gx_arena_hdr *h = gx_ah(a);
	for (int i = 0; i < GX_MAX_RINGS; i++) {
		uint64_t o = r->self;
		atomic_compare_exchange_strong(&h->rings[i], &o, 0);
	}
	r->magic = 0;
	return gx_pool_free_shared(a, r->self);
}

/* ---- journal ---- */

static inline gx_proc *gx_ring_journal(gx_ring *r, const gx_rv *v, uint32_t kind)
{
	gx_arena *a = v->a;
	int s = gx_shm_slot(a);
	if (s < 0)
		return NULL;
	gx_proc *p = &gx_ah(a)->proc[s];
	atomic_store_explicit(&p->rj_ring, r->self, memory_order_relaxed);
	atomic_store_explicit(&p->rj_n, 0, memory_order_relaxed);
	atomic_store_explicit(&p->rj_chunk, 0, memory_order_relaxed);
	atomic_store_explicit(&p->rj_kind, kind, memory_order_relaxed);
	return p;
}

static inline void gx_journal_claim(gx_proc *p, uint64_t pos, uint32_t n)
{
	atomic_store_explicit(&p->rj_n, n, memory_order_relaxed);
	/* the claiming CAS that follows is a release: whoever sees the claim
	 * (a repairer reading head or tail) sees this first */
	atomic_store_explicit(&p->rj_pos, pos, memory_order_relaxed);
}

static inline void gx_journal_done(gx_proc *p)
{
	atomic_store_explicit(&p->rj_kind, GX_JR_NONE, memory_order_release);
}

/* ---- send ---- */

/* Claim up to n consecutive free slots from head. Returns the count and the
 * first position, 0 when full, -EPIPE when closed. */
static int gx_claim_send(gx_ring *r, const gx_rv *v, gx_proc *p, uint32_t n, uint64_t *first)
{
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	for (;;) {
		uint32_t k = 0;
		int64_t d = 0;
		while (k < n) {
			d = gx_pdiff(atomic_load_explicit(gx_seq(v, pos + k), memory_order_acquire), pos + k);
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
		gx_journal_claim(p, pos, k);
		if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + k, memory_order_acq_rel,
							  memory_order_relaxed)) {
			*first = pos;
			return (int)k;
		}
		/* lost the race: the journal must not go on covering a position
		 * someone else claimed (a repair would take it for ours) */
		atomic_store_explicit(&p->rj_n, 0, memory_order_relaxed);
	}
}

static int gx_send_some(gx_ring *r, const void *msgs, size_t len, uint32_t n, gx_off chunk, size_t chunk_len)
{
	gx_rv vv, *v = &vv;
	if (gx_rv_get(r, v) < 0)
		return -EBADMSG;
	if (len > v->msg_size)
		return -EMSGSIZE;
	if (atomic_load_explicit(&r->closed, memory_order_relaxed))
		return -EPIPE;
	gx_arena *a = v->a;
	gx_proc *p = gx_ring_journal(r, v, GX_JR_SEND);
	if (!p)
		return -EINVAL;
	if (chunk) {
		/* the chunk must be ours before anything is claimed; the
		 * journal names it first, so repair can give it back */
		atomic_store(&p->rj_chunk, chunk);
		int rc = gx_pool_give(a, chunk, 1, (uint32_t)chunk_len);
		if (rc < 0) {
			gx_journal_done(p);
			return -EINVAL;
		}
	}
	uint64_t pos;
	int k = gx_claim_send(r, v, p, n, &pos);
	if (k <= 0) {
		if (chunk) {
			uint32_t l;
			gx_pool_take(a, chunk, &l); /* back to OWNED by us, */
		}
		gx_journal_done(p); /* and only then out of the journal */
		if (k < 0)
			atomic_fetch_add(&r->corrupt, 1);
		return k == 0 ? -EAGAIN : k;
	}
	if (chunk) {
		memcpy(gx_payload(v, pos), &chunk, 8);
		atomic_store_explicit(gx_seq(v, pos), gx_pub(pos, GX_TAG_CHUNK), memory_order_release);
	} else {
		const char *m = msgs;
		for (int i = 0; i < k; i++) {
			memcpy(gx_payload(v, pos + (uint64_t)i), m + (size_t)i * len, len);
			atomic_store_explicit(gx_seq(v, pos + (uint64_t)i), gx_pub(pos + (uint64_t)i, (uint32_t)len),
					      memory_order_release);
		}
	}
	gx_journal_done(p);
	if (!(r->flags & GX_RING_NOWAKE)) /* nobody sleeps on a NOWAKE ring: no fence */
		gx_ec_notify(&r->not_empty, (uint64_t *)&r->wakes);
	return k;
}

static bool gx_ready_send(void *arg)
{
	gx_ring *r = arg;
	gx_rv v;
	if (gx_rv_get(r, &v) < 0)
		return true; /* the call reports it */
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	return atomic_load_explicit(&r->closed, memory_order_relaxed) ||
	       gx_pdiff(atomic_load_explicit(gx_seq(&v, pos), memory_order_acquire), pos) >= 0;
}

static bool gx_ready_recv(void *arg)
{
	gx_ring *r = arg;
	gx_rv v;
	if (gx_rv_get(r, &v) < 0)
		return true;
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	return atomic_load_explicit(&r->closed, memory_order_relaxed) ||
	       gx_pdiff(atomic_load_explicit(gx_seq(&v, pos), memory_order_acquire), pos + 1) >= 0;
}

static int gx_send_wait(gx_ring *r, const void *msgs, size_t len, uint32_t n, gx_off chunk, size_t chunk_len,
			gx_until u)
{
	for (;;) {
		int rc = gx_send_some(r, msgs, len, n, chunk, chunk_len);
		if (rc != -EAGAIN)
			return rc;
		rc = gx_ec_wait(&r->not_full, gx_ready_send, r, (r->flags & GX_RING_NOWAKE) ? -1 : r->spin_ns, u,
				(uint64_t *)&r->sleeps);
		if (rc < 0)
			return rc;
	}
}

static int gx_send_check(gx_ring *r, const void *msg, size_t len)
{
	if (!gx_ring_ok(r) || !msg || len == 0)
		return -EINVAL;
	return 0; /* the size is checked against the validated geometry */
}

int gx_ring_try_send(gx_ring *r, const void *msg, size_t len)
{
	int rc = gx_send_check(r, msg, len);
	if (rc < 0)
		return rc;
	rc = gx_send_some(r, msg, len, 1, 0, 0);
	return rc < 0 ? rc : 0;
}

int gx_ring_send(gx_ring *r, const void *msg, size_t len, gx_until u)
{
	int rc = gx_send_check(r, msg, len);
	if (rc < 0)
		return rc;
	rc = gx_send_wait(r, msg, len, 1, 0, 0, u);
	return rc < 0 ? rc : 0;
}

int gx_ring_try_send_chunk(gx_ring *r, gx_off chunk, size_t len)
{
	if (!gx_ring_ok(r) || !chunk || len > GX_POOL_MAX_CHUNK || r->msg_size < 8)
		return -EINVAL;
	int rc = gx_send_some(r, NULL, 8, 1, chunk, len);
	return rc < 0 ? rc : 0;
}

int gx_ring_send_chunk(gx_ring *r, gx_off chunk, size_t len, gx_until u)
{
	if (!gx_ring_ok(r) || !chunk || len > GX_POOL_MAX_CHUNK || r->msg_size < 8)
		return -EINVAL;
	int rc = gx_send_wait(r, NULL, 8, 1, chunk, len, u);
	return rc < 0 ? rc : 0;
}

int gx_ring_try_send_batch(gx_ring *r, const void *msgs, size_t n)
{
	if (!gx_ring_ok(r) || !msgs || n == 0)
		return -EINVAL;
	return gx_send_some(r, msgs, r->msg_size, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, 0, 0);
}

int gx_ring_send_batch(gx_ring *r, const void *msgs, size_t n, gx_until u)
{
	if (!gx_ring_ok(r) || !msgs || n == 0)
		return -EINVAL;
	return gx_send_wait(r, msgs, r->msg_size, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, 0, 0, u);
}

/* ---- receive ---- */

enum { GX_RX_ONE, GX_RX_BATCH };

/*
 * Take up to n messages from tail into buf. Single mode: one message of any
 * kind (inline into buf/cap, chunk into *chunk). Batch mode: inline messages
 * of msg_size only, stopping before anything else. Returns the count (single:
 * the length) or -EAGAIN (empty), -EPIPE (closed and empty), -EMSGSIZE,
 * -EBADMSG. Skipped slots are consumed and passed over.
 */
static ssize_t gx_recv_some(gx_ring *r, void *buf, size_t cap, gx_off *chunk, uint32_t n, int mode)
{
	gx_rv vv, *v = &vv;
	if (gx_rv_get(r, v) < 0)
		return -EBADMSG;
	gx_arena *a = v->a;
	gx_proc *p = gx_ring_journal(r, v, GX_JR_RECV);
	if (!p)
		return -EINVAL;
	for (;;) {
		uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
		uint32_t k = 0;
		uint32_t tag0 = 0;
		for (;;) {
			uint64_t seq = atomic_load_explicit(gx_seq(v, pos), memory_order_acquire);
			int64_t d = gx_pdiff(seq, pos + 1);
			if (d < 0) {
				gx_journal_done(p);
				if (!atomic_load(&r->closed))
					return -EAGAIN;
				/* closed: anything published meanwhile first */
				if (gx_pdiff(atomic_load_explicit(gx_seq(v, pos), memory_order_acquire), pos + 1) >= 0) {
					p = gx_ring_journal(r, v, GX_JR_RECV);
					continue;
				}
				return -EPIPE;
			}
			if (d > 0) {
				uint64_t now = atomic_load_explicit(&r->tail, memory_order_relaxed);
				if (now != pos) {
					pos = now; /* another consumer took it */
					continue;
				}
				/* a slot ahead of the tail: garbage. Take it, so
				 * that the ring moves on, and report it. */
				tag0 = GX_TAG_BAD;
				k = 1;
			} else {
				tag0 = (uint32_t)(seq >> 56);
			}
			if (tag0 == 0 || (tag0 > v->msg_size && tag0 != GX_TAG_CHUNK && tag0 != GX_TAG_SKIP)) {
				tag0 = GX_TAG_BAD; /* consumed below as one corrupt slot */
				k = 1;
			} else if (mode == GX_RX_BATCH) {
				/* a run of inline messages of msg_size */
				if (tag0 != v->msg_size && tag0 != GX_TAG_SKIP) {
					gx_journal_done(p);
					return -EMSGSIZE;
				}
				k = 1;
				if (tag0 == v->msg_size)
					while (k < n) {
						uint64_t s2 = atomic_load_explicit(gx_seq(v, pos + k), memory_order_acquire);
						if (s2 != gx_pub(pos + k, v->msg_size))
							break;
						k++;
					}
			} else {
				if (tag0 >= 1 && tag0 <= GX_RING_INLINE_MAX && tag0 > cap) {
					gx_journal_done(p);
					return -EMSGSIZE;
				}
				if (tag0 == GX_TAG_CHUNK && !chunk) {
					gx_journal_done(p);
					return -EMSGSIZE;
				}
				k = 1;
			}
			gx_journal_claim(p, pos, k);
			if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + k, memory_order_acq_rel,
								  memory_order_relaxed))
				break;
			atomic_store_explicit(&p->rj_n, 0, memory_order_relaxed);
		}
		ssize_t res;
		if (tag0 == GX_TAG_SKIP) {
			res = -EAGAIN; /* nothing: go on */
		} else if (tag0 == GX_TAG_CHUNK) {
			gx_off off;
			uint32_t len;
			memcpy(&off, gx_payload(v, pos), 8);
			if (gx_pool_take(a, off, &len) < 0) {
				atomic_fetch_add(&r->corrupt, 1);
				res = -EBADMSG;
			} else {
				*chunk = off;
				res = len;
			}
		} else if (tag0 == 0 || tag0 > v->msg_size) {
			atomic_fetch_add(&r->corrupt, 1);
			res = -EBADMSG;
		} else if (mode == GX_RX_BATCH) {
			for (uint32_t i = 0; i < k; i++)
				memcpy((char *)buf + (size_t)i * v->msg_size, gx_payload(v, pos + i), v->msg_size);
			res = k;
		} else {
			memcpy(buf, gx_payload(v, pos), tag0);
			res = tag0;
		}
		for (uint32_t i = 0; i < k; i++)
			atomic_store_explicit(gx_seq(v, pos + i), (pos + i + v->cap) & GX_POS_MASK, memory_order_release);
		gx_journal_done(p);
		if (!(r->flags & GX_RING_NOWAKE))
			gx_ec_notify(&r->not_full, (uint64_t *)&r->wakes);
		if (res != -EAGAIN)
			return res;
		p = gx_ring_journal(r, v, GX_JR_RECV); /* a skipped slot: next */
	}
}

static ssize_t gx_recv_wait(gx_ring *r, void *buf, size_t cap, gx_off *chunk, uint32_t n, int mode, gx_until u)
{
	for (;;) {
		ssize_t rc = gx_recv_some(r, buf, cap, chunk, n, mode);
		if (rc != -EAGAIN)
			return rc;
		int w = gx_ec_wait(&r->not_empty, gx_ready_recv, r, (r->flags & GX_RING_NOWAKE) ? -1 : r->spin_ns, u,
				   (uint64_t *)&r->sleeps);
		if (w < 0)
			return w;
	}
}

ssize_t gx_ring_try_recv(gx_ring *r, void *buf, size_t cap, gx_off *chunk)
{
	if (!gx_ring_ok(r) || (!buf && cap))
		return -EINVAL;
	return gx_recv_some(r, buf, cap, chunk, 1, GX_RX_ONE);
}

ssize_t gx_ring_recv(gx_ring *r, void *buf, size_t cap, gx_off *chunk, gx_until u)
{
	if (!gx_ring_ok(r) || (!buf && cap))
		return -EINVAL;
	return gx_recv_wait(r, buf, cap, chunk, 1, GX_RX_ONE, u);
}

int gx_ring_try_recv_batch(gx_ring *r, void *msgs, size_t n)
{
	if (!gx_ring_ok(r) || !msgs || n == 0)
		return -EINVAL;
	return (int)gx_recv_some(r, msgs, 0, NULL, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, GX_RX_BATCH);
}

int gx_ring_recv_batch(gx_ring *r, void *msgs, size_t n, gx_until u)
{
	if (!gx_ring_ok(r) || !msgs || n == 0)
		return -EINVAL;
	return (int)gx_recv_wait(r, msgs, 0, NULL, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, GX_RX_BATCH, u);
}

/* ---- close, stats ---- */

int gx_ring_close(gx_ring *r)
{
	if (!gx_ring_ok(r))
		return -EINVAL;
	uint32_t z = 0;
	if (!atomic_compare_exchange_strong(&r->closed, &z, 1))
		return -EPIPE;
	atomic_thread_fence(memory_order_seq_cst);
	gx_ec_notify(&r->not_empty, (uint64_t *)&r->wakes);
	gx_ec_notify(&r->not_full, (uint64_t *)&r->wakes);
	return 0;
}

int gx_ring_stats_get(const gx_ring *r, gx_ring_stats *out)
{
	if (!gx_ring_ok(r) || !out)
		return -EINVAL;
	gx_ring *w = (gx_ring *)r;
	memset(out, 0, sizeof *out);
	out->capacity = r->cap;
	out->msg_size = r->msg_size;
	out->sent = atomic_load(&w->head);
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
	gx_ec_notify(&r->not_empty, (uint64_t *)&r->wakes);
}

bool gx_ring_has_room(gx_ring *r)
{
	return gx_ready_send(r);
}

gx_ec *gx_ring_consumer_ec(gx_ring *r)
{
	return &r->not_empty;
}

uint64_t gx_ring_depth(const gx_ring *r)
{
	uint64_t h = atomic_load_explicit(&((gx_ring *)r)->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&((gx_ring *)r)->tail, memory_order_relaxed);
	return h > t ? h - t : 0;
}

/* ---- salvage (before repair) ---- */

static bool gx_live_claims(gx_arena *a, gx_ring *r, int dead, uint32_t kind, uint64_t q);

int gx_ring_salvage(gx_arena *a, gx_ring *r, int slot, void (*cb)(const void *msg, size_t len, void *arg),
		    void *arg, int *released)
{
	*released = 0;
	gx_proc *p = &gx_ah(a)->proc[slot];
	gx_rv vv, *v = &vv;
	if (gx_rv_get(r, v) < 0 || atomic_load(&p->rj_kind) != GX_JR_RECV || atomic_load(&p->rj_ring) != r->self)
		return -1;
	uint64_t pos = atomic_load(&p->rj_pos);
	uint32_t n = atomic_load(&p->rj_n);
	if (n > v->cap)
		n = (uint32_t)v->cap;
	uint32_t held = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t q = pos + i;
		uint64_t seq = atomic_load(gx_seq(v, q));
		bool mine = atomic_load(&r->tail) > q && gx_pdiff(seq, q + 1) == 0 && !gx_live_claims(a, r, slot, GX_JR_RECV, q);
		held += mine;
	}
	if (held < n && n > 0)
		*released = 1; /* releases come after every copy: the copies are whole */
	int given = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t q = pos + i;
		_Atomic uint64_t *sq = gx_seq(v, q);
		uint64_t seq = atomic_load(sq);
		if (atomic_load(&r->tail) <= q || gx_pdiff(seq, q + 1) != 0 || gx_live_claims(a, r, slot, GX_JR_RECV, q))
			continue;
		uint32_t tag = (uint32_t)(seq >> 56);
		if (!*released && tag >= 1 && tag <= v->msg_size) {
			cb(gx_payload(v, q), tag, arg);
			given++;
		}
		atomic_compare_exchange_strong(sq, &seq, (q + v->cap) & GX_POS_MASK);
	}
	atomic_store(&p->rj_kind, GX_JR_NONE);
	gx_ec_notify(&r->not_full, (uint64_t *)&r->wakes);
	return given;
}

/* ---- repair ---- */

/* Does a live process other than `dead` hold [q] of ring r on side kind? */
static bool gx_live_claims(gx_arena *a, gx_ring *r, int dead, uint32_t kind, uint64_t q)
{
	gx_arena_hdr *h = gx_ah(a);
	for (int s = 0; s < GX_SHM_MAX_PROCS; s++) {
		if (s == dead)
			continue;
		gx_proc *p = &h->proc[s];
		if (atomic_load(&p->rj_kind) != kind || atomic_load(&p->rj_ring) != r->self)
			continue;
		uint64_t pos = atomic_load(&p->rj_pos);
		uint32_t n = atomic_load(&p->rj_n);
		if (q >= pos && q - pos < n && gx_slot_alive(a, s))
			return true;
	}
	return false;
}

void gx_ring_repair_slot(gx_arena *a, gx_ring *r, int slot, gx_repair_report *rep)
{
	gx_proc *p = &gx_ah(a)->proc[slot];
	gx_rv vv, *v = &vv;
	if (gx_rv_get(r, v) < 0)
		return;
	uint32_t kind = atomic_load(&p->rj_kind);
	if (kind == GX_JR_NONE || atomic_load(&p->rj_ring) != r->self)
		return;
	uint64_t pos = atomic_load(&p->rj_pos);
	uint32_t n = atomic_load(&p->rj_n);
	if (n > v->cap)
		n = v->cap;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t q = pos + i;
		_Atomic uint64_t *sq = gx_seq(v, q);
		uint64_t seq = atomic_load(sq);
		if (kind == GX_JR_SEND) {
			if (atomic_load(&r->head) <= q || gx_pdiff(seq, q) != 0 || (seq >> 56) != 0 ||
			    gx_live_claims(a, r, slot, GX_JR_SEND, q))
				continue;
			if (atomic_compare_exchange_strong(sq, &seq, gx_pub(q, GX_TAG_SKIP))) {
				atomic_fetch_add(&r->skipped, 1);
				rep->slots_skipped++;
			}
		} else {
			if (atomic_load(&r->tail) <= q || gx_pdiff(seq, q + 1) != 0 ||
			    gx_live_claims(a, r, slot, GX_JR_RECV, q))
				continue;
			uint32_t tag = (uint32_t)(seq >> 56);
			if (tag == GX_TAG_CHUNK) {
				gx_off off;
				memcpy(&off, gx_payload(v, q), 8);
				gx_pool_free_ring_chunk(a, off);
			}
			if (atomic_compare_exchange_strong(sq, &seq, (q + v->cap) & GX_POS_MASK) && tag != GX_TAG_SKIP) {
				atomic_fetch_add(&r->lost, 1);
				rep->slots_lost++;
			}
		}
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
	atomic_store(&p->rj_kind, GX_JR_NONE);
	gx_ec_notify(&r->not_empty, (uint64_t *)&r->wakes);
	gx_ec_notify(&r->not_full, (uint64_t *)&r->wakes);
}
