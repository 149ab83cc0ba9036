/*
 * Distributed channels, inside the parallel layer: the channel header in
 * the arena and what its files (dchan.c make/close, dmsg.c messages and
 * compression, dchan_io.c send/receive, fanout.c broadcast and friends)
 * share.
 */
#ifndef GX_PAR_DCHAN_H
#define GX_PAR_DCHAN_H

#include "par/par.h"

#include "sync/chan.h"

#define GX_DCH_HDR 8u
#define GX_DCH_INLINE (GX_RING_INLINE_MAX - GX_DCH_HDR) /* 112 */
#define GX_DCH_WRING 64u
#define GX_DCH_MAX 1024u /* distributed channels at once (gx_par.dchans) */

/*
 * The channel header, in a pool chunk of the arena. Each counter another
 * process writes is on a line of its own.
 *
 * rwait[0] counts the main process's receivers blocked on the channel,
 * rwait[1 + i] worker i's: each is written by its own process only, so
 * that the supervisor can zero a dead worker's count (a sum over one
 * shared word could not be repaired).
 */
typedef struct gx_dch {
	_Atomic uint32_t magic; /* GX_DCHAN_MAGIC: first, as gx_chan_is_d reads it */
	uint32_t elem_size;
	uint32_t cap;
	uint32_t nw;
	uint32_t flags; /* GX_CHAN_COMPRESS */
	uint32_t reg;   /* its index in the registry */
	gx_off self;
	_Atomic uint64_t nonce; /* this channel's identity (gx_dview) */
	uint64_t tag;   /* the run's MAC of self, nonce, geometry, main (gx_dch_mac) */
	gx_off main;    /* the shared queue: a ring holding at most max(cap, 1) */
	_Atomic uint32_t closed;
	_Atomic int32_t route;
	gx_off w[GX_MAX_WORKERS]; /* each worker's own ring (broadcast, scatter, balance) */
	_Alignas(64) _Atomic uint32_t rwait[GX_MAX_WORKERS + 1];
	/* rendezvous senders between their put and their return, counted as
	 * rwait is (one word per process): a free must wait for them too.
	 * Each on a line of its own: every rendezvous send writes it twice,
	 * and a shared line would cross cores with every message */
	struct {
		_Alignas(64) _Atomic uint32_t n;
	} swait[GX_MAX_WORKERS + 1];
	_Alignas(64) gx_ec data;  /* receivers sleep here */
	_Alignas(64) gx_ec space; /* senders sleep here */
} gx_dch;

/*
 * This process's view of a channel: its geometry (element size, capacity,
 * flags, the shared ring) as first seen here, when it was made or first
 * used (a pointer that came in a task's argument), checked against the
 * arena and against its tag, and kept in a process-local table keyed by
 * address and nonce. The tag is a MAC under the run's key (seal.c), which
 * a process that holds only the mapping cannot make: a peer that rewrites
 * the header (a fresh nonce, another element size) is refused, so it
 * changes no length this process copies into a caller's buffer. A channel
 * made anew at the same address carries a good tag and is taken anew.
 * Every call works on its own copy of the view (gx_dch_view fills one),
 * so a view taken anew while a call waits does not change that call.
 */
typedef struct gx_dview {
	gx_dch *d; /* key; NULL free */
	uint64_t nonce;
	uint64_t gen;  /* gx_dview_gen when taken: older entries are stale */
	gx_arena *a;
	gx_ring *main; /* the shared queue, found when the view was taken */
	gx_ring *mine; /* worker `me`'s own ring of the channel, NULL in main */
	int32_t me;    /* gx_worker_id() when taken (a table forked into a
			* restarted worker is retaken there) */
	uint32_t elem_size, cap, flags, nw;
} gx_dview;

/* After a wait: the channel of view v is still there, the same one. */
static inline bool gx_dch_same(const gx_dview *v)
{
	return atomic_load_explicit(&v->d->magic, memory_order_relaxed) == GX_DCHAN_MAGIC &&
	       atomic_load_explicit(&v->d->nonce, memory_order_relaxed) == v->nonce;
}

/* The views' table (dchan.c), and its generation: bumped before the
 * runtime's arena goes (gx_dch_forget_views), so that no entry of an
 * arena unmapped since is read through. */
#define GX_DVIEWS 4096u /* > GX_DCH_MAX: probes end at a free or stale entry */
extern uint64_t gx_dview_gen;

/* An entry of the table: the view, and the geometry of its main and of
 * its mine (mine.r NULL when it has none), copied when the view was
 * taken: a message goes through the ring without a probe of the rings'
 * table (gx_ring_put_hv_g). The geometry is not in the view so that a
 * call's copy of its view stays small (a select holds 16 on its stack);
 * only a call on the entry itself uses it (gx_dch_geo). */
typedef struct gx_dent {
	gx_dview v;
	gx_rgeo main, mine;
} gx_dent;
extern gx_dent gx_dviews[GX_DVIEWS];
void gx_dch_forget_views(void);

static inline size_t gx_dview_hash(const void *d)
{
	return (size_t)((((uint64_t)(uintptr_t)d >> 6) * 0x9e3779b97f4a7c15ull) >> 40) & (GX_DVIEWS - 1);
}

bool gx_dch_view_slow(const gx_chan *c, gx_dview *out);

/* Fill *out with the view of c: false when c is not a live distributed
 * channel of the runtime's arena. The fast path: c's entry in its home
 * place, of this arena's generation, still naming the same channel (an
 * entry is made only for a channel checked to lie in the arena, so its
 * header may be read), taken by this process. */
static inline const gx_dview *gx_dch_hot(const gx_chan *c)
{
	const gx_dview *e = &gx_dviews[gx_dview_hash(c)].v;
	return e->d == (const gx_dch *)c && e->gen == gx_dview_gen && gx_dch_same(e) && e->me == gx_par_me() ? e
														  : NULL;
}

static inline bool gx_dch_view(const gx_chan *c, gx_dview *out)
{
	const gx_dview *e = gx_dch_hot(c);
	if (e) {
		*out = *e;
		return true;
	}
	return gx_dch_view_slow(c, out);
}

/* The view a call works on: the table's entry, found by the fast path
 * above, until the call first waits (*v then becomes the call's own copy,
 * *own: a view taken anew meanwhile does not change the call), or its
 * copy made by the slow path. false: not a live distributed channel. */
static inline bool gx_dch_view_ref(const gx_chan *c, const gx_dview **v, gx_dview *own)
{
	if ((*v = gx_dch_hot(c)))
		return true;
	*v = own;
	return gx_dch_view_slow(c, own);
}

/* Before a wait: the call goes on with its own copy (gx_dch_view_ref). */
static inline void gx_dch_view_own(const gx_dview **v, gx_dview *own)
{
	if (*v != own) {
		*own = **v;
		*v = own;
	}
}

/* The copy of r's geometry beside view v, NULL when v is a call's own copy
 * (the table's entry may have been taken anew since) or r is not one of
 * its two rings. */
static inline const gx_rgeo *gx_dch_geo(const gx_dview *v, const gx_ring *r)
{
	const gx_dent *g = (const gx_dent *)(const void *)v; /* v is its first member */
	if (g < gx_dviews || g >= gx_dviews + GX_DVIEWS)
		return NULL;
	return r == v->main ? &g->main : r && r == v->mine ? &g->mine : NULL;
}

static inline int64_t gx_dspin(gx_arena *a)
{
	return gx_geo(a)->spin_ns;
}

/* The shared queue, as found when the view was taken (every ring call
 * checks its ring again). */
static inline gx_ring *gx_dch_main(const gx_dview *v)
{
	return v->main;
}

/* Worker i's own ring of the channel, NULL for none (or one this process
 * does not know as it was: gx_ring_known). */
static inline gx_ring *gx_dch_wring(const gx_dview *v, uint32_t i)
{
	return i < v->nw ? gx_ring_known(v->a, gx_arena_ptr(v->a, v->d->w[i], GX_RING_HDR)) : NULL;
}

/* This process's ring of the channel (a worker's own), NULL in main. */
static inline gx_ring *gx_dch_mine(const gx_dview *v)
{
	return v->mine;
}

/* The shared queue may be taken from here (not routed elsewhere). */
static inline bool gx_dch_main_mine(const gx_dview *v)
{
	int32_t rt = atomic_load_explicit(&v->d->route, memory_order_relaxed);
	return rt < 0 || rt == gx_par_me();
}

/* A receiver took a value from the shared queue: the ring's release gave
 * its place back; wake a sender waiting for it. No fence: the take's
 * claim (a seq_cst CAS on the ring's tail, or on the slot for a
 * rendezvous) stands in for it, and every sleeper on `space` sees that
 * claim in its look after registering: gx_dch_room counts a claimed
 * place as room, a rendezvous sender's gx_dch_taken reads the slot, and
 * a select with a send case does not sleep while its channel has a
 * claimed place (dselect.c). The fence cost a line round trip per
 * message: it waited for the slot's release to reach the sender's core. */
static inline void gx_dch_took(const gx_dview *v)
{
	gx_ec_notify_claimed(&v->d->space, NULL);
}

/* dmsg.c: put val into ring r (no wait): 0 with *pos (may be NULL), or
 * -EAGAIN (full), -ENOMEM, -EPIPE. Take one message from r into val (may
 * be NULL), *from its sender (may be NULL): 0, -EAGAIN, -EPIPE, -EBADMSG. */
int gx_dch_put(const gx_dview *v, gx_ring *r, const void *val, uint64_t *pos);
int gx_dch_take(const gx_dview *v, gx_ring *r, void *val, int32_t *from);

/* This process's rwait word of d, and its swait word. */
static inline _Atomic uint32_t *gx_dch_rwait_mine(gx_dch *d)
{
	int me = gx_par_me();
	return &d->rwait[me >= 0 && me < GX_MAX_WORKERS ? me + 1 : 0];
}

static inline _Atomic uint32_t *gx_dch_swait_mine(gx_dch *d)
{
	int me = gx_par_me();
	return &d->swait[me >= 0 && me < GX_MAX_WORKERS ? me + 1 : 0].n;
}

/* Add n to this process's own count word w (its swait word; rwait's
 * adds sit on wait paths and stay locked). Only this
 * process writes it, from gx_run's thread (channel calls are made there
 * only, gonex/chan.h; the supervisor zeroes a dead worker's), so a load
 * and a store do what a locked add did, without the lock: two of those
 * were on every rendezvous send's path. Release: what this process did
 * before (for a decrement, its last touch of the channel) comes before
 * the new count, for gx_dch_busy's reader in another process; a count
 * that must be seen before a look that follows it has its fence there. */
static inline void gx_dch_count(_Atomic uint32_t *w, int n)
{
	uint32_t c = atomic_load_explicit(w, memory_order_relaxed);
	/* release: see above; pairs with gx_dch_busy's loads */
	atomic_store_explicit(w, c + (uint32_t)n, memory_order_release);
}

/* How long a try send on a rendezvous waits for the waiting receiver it
 * counted to take its value before it withdraws it: that receiver may be
 * asleep in another process, and waking it costs a futex round trip and a
 * scheduler turn (tens of microseconds, milliseconds on a busy machine). */
#define GX_DCH_TRY_RDV (20 * GX_MILLISECOND)

/* dchan_io.c */
int gx_dch_send(gx_chan *c, const void *val, gx_until u, bool try_only);
/* gx_dch_send with a try's rendezvous wait of rdv_wait ns, and `mine` of
 * the waiting receivers the caller's own (a select's receive cases on the
 * same channel: a try send does not count them). */
int gx_dch_send_opt(gx_chan *c, const void *val, gx_until u, bool try_only, int64_t rdv_wait, uint32_t mine);
int gx_dch_recv(gx_chan *c, void *val, bool *ok, gx_until u, bool try_only);
/* Something for this process to receive (or closed, or gone): the
 * receivers' eventcount predicate; arg is the gx_dview. */
bool gx_dch_ready(void *arg);
/* gx_dch_ready for the spin (gx_ec_wait_spin): on the shared ring, a
 * message published at tail rather than a head moved. Its head is the
 * line a sender CASes first; a receiver spinning on it pulls it away from
 * the sender between two messages. The worker's own ring, which its
 * writers rarely touch, is asked its depth, as gx_dch_ready does. */
bool gx_dch_ready_spin(void *arg);
/* The same look at view v, through g, a copy of the geometry of v's
 * shared ring (NULL: the rings' table finds it). */
bool gx_dch_ready_look(const gx_dview *v, const gx_rgeo *g);
/* Room for a send, or a place a receiver claimed (or closed, or gone):
 * the senders' look after registering to sleep on `space`. */
bool gx_dch_room(void *arg);

/* dselect.c: a select with a distributed case (gx_select's hook). */
int gx_dch_select(gx_case *cases, size_t n, bool block, gx_until u);

#endif
