/*
 * The shared arena's layout, shared by arena.c, pool.c, ring.c, wake.c.
 *
 * Offset 0 holds the arena header (gx_arena_hdr): tier, node parts, the
 * pool classes' free lists and counters, the process slots with their
 * claim journals, and the ring registry. After it, each node's part is
 * carved into slabs of GX_SLAB bytes (offsets multiple of GX_SLAB), each
 * slab serving one (node, class): a slab header, a chunk-header array, then
 * the chunks. Rings are allocated from the pools.
 *
 * Nothing here holds a pointer: offsets from the base, bounds-checked on
 * every read of a value another process could have written.
 */
#ifndef GX_SHM_SHM_H
#define GX_SHM_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <gonex/shm.h>

#define GX_ARENA_MAGIC 0x676f6e6578617231ull /* "gonexar1" */
#define GX_SLAB ((uint64_t)2 << 20)
#define GX_SLAB_MAGIC 0x736c6162u
#define GX_CACHE_PER_CLASS 16
#define GX_MAX_RINGS 1024
#define GX_CL 64

/* Tagged free-list head: chunk index + 1 in the low 32 bits (0 = empty),
 * a counter bumped on every change in the high 32 (ABA). */
#define GX_TAG_IDX(h) ((uint32_t)(h))
#define GX_TAG_CNT(h) ((uint32_t)((h) >> 32))
#define GX_TAG_MAKE(idx, cnt) ((uint64_t)(cnt) << 32 | (uint32_t)(idx))

/* Chunk states (gx_chunk_hdr.state). The owner's slot index is in the low
 * 16 bits of the owned states. */
#define GX_CHUNK_FREE 0x46524545u   /* in a free list (or being moved) */
#define GX_CHUNK_OWNED 0x4f000000u  /* | slot: allocated by that process */
#define GX_CHUNK_CACHED 0x43000000u /* | slot: in that process's cache */
#define GX_CHUNK_RING 0x52000000u   /* | slot: handed to a ring by slot */
#define GX_CHUNK_SHARED 0x53000000u /* a shared object (ring, channel): no owner;
				     * repair leaves it, only its destroy frees it */
#define GX_CHUNK_DISOWNED 0x44000000u /* gx_pool_disown: no owner; repair leaves
				       * it, gx_pool_own takes it back */
#define GX_CHUNK_KIND(s) ((s)&0xff000000u)
#define GX_CHUNK_SLOT(s) ((s)&0xffffu)

/* wake.c: eventcount */
typedef struct gx_ec {
	_Atomic uint32_t seq;
	_Atomic uint32_t waiters;
	_Atomic uint32_t pending; /* a wake was issued since the last waiter registered */
	uint32_t pad;
} gx_ec;

/* One chunk's header, in its slab's header array. */
typedef struct gx_chunk_hdr {
	_Atomic uint32_t state;
	_Atomic uint32_t next; /* free list: next chunk's global index + 1 */
	uint32_t len;          /* bytes used, set by the ring sender */
	uint32_t pad;
} gx_chunk_hdr;

typedef struct gx_slab_hdr {
	_Atomic uint32_t magic; /* stored last (release) when the slab is laid out */
	uint16_t cls, node;
	uint32_t nchunks;
	uint32_t data;   /* offset of chunk 0 from the slab start */
	uint64_t size;   /* chunk size */
} gx_slab_hdr;

/* One (node, class) pool: its own cache lines. */
typedef struct gx_pool_cls {
	_Alignas(128) _Atomic uint64_t head; /* tagged free list */
	_Atomic uint32_t repairing;          /* owner tag of a repair walking this list, 0 */
	_Alignas(64) _Atomic uint64_t allocs, frees, bad_frees, chunks;
} gx_pool_cls;

typedef struct gx_node_part {
	gx_off base, end;            /* [base, end): slab-aligned */
	_Atomic uint64_t next_slab;  /* bump pointer (offset) */
} gx_node_part;

/* What a process is doing right now, for repair after its death. */
enum { GX_J_NONE = 0, GX_J_POP = 1, GX_J_PUSH = 2 };
enum { GX_JR_NONE = 0, GX_JR_SEND = 1, GX_JR_RECV = 2 };

typedef struct gx_proc {
	_Alignas(128) _Atomic int32_t pid; /* 0: slot free */
	_Atomic uint32_t gen;              /* bumped on every take of the slot */
	uint16_t node;                     /* its NUMA node */
	/* pool journal: the chunk being popped or pushed */
	_Atomic uint32_t pj_kind;
	_Atomic uint32_t pj_pool; /* node * GX_POOL_CLASSES + class */
	_Atomic uint32_t pj_chunk; /* global chunk index + 1 */
	/* ring journal: positions [rj_pos, rj_pos + rj_n) of ring rj_ring */
	_Atomic uint32_t rj_kind;
	_Atomic uint32_t rj_n;
	_Atomic uint64_t rj_ring;
	_Atomic uint64_t rj_pos;
	_Atomic uint64_t rj_chunk; /* a chunk being handed over, or 0 */
	/* per-class cache of chunk global indexes + 1 (state CACHED|slot) */
	uint32_t cache_n[GX_POOL_CLASSES];
	uint32_t cache[GX_POOL_CLASSES][GX_CACHE_PER_CLASS];
} gx_proc;

typedef struct gx_arena_hdr {
	_Atomic uint64_t magic; /* stored last (release) by gx_arena_create */
	uint64_t size;
	uint64_t page_size;
	uint32_t tier;
	uint32_t nodes;       /* parts (>= 1) */
	uint32_t numa_placed; /* nodes bound with mbind */
	int32_t memfd_unused;
	int64_t spin_ns;
	char why[200];
	gx_node_part part[GX_SHM_MAX_NODES];
	uint64_t pool_limit; /* bytes pools may carve, 0 for no limit */
	_Atomic uint64_t pool_used;
	uint64_t slab_first; /* offset of slab 0 (global slab index base) */
	uint64_t nslabs;     /* slabs the arena can hold */
	_Atomic uint64_t runtime_table; /* the parallel runtime's table (par.h), 0 */
	/* bumped after every repair; every sleeper waits on it beside its own
	 * word, so a death wakes them all (wake.c) */
	_Alignas(64) _Atomic uint32_t deaths;
	gx_pool_cls cls[GX_SHM_MAX_NODES][GX_POOL_CLASSES];
	gx_proc proc[GX_SHM_MAX_PROCS];
	_Atomic uint32_t procs_used;
	_Atomic uint64_t rings[GX_MAX_RINGS]; /* ring offsets, 0 = free */
} gx_arena_hdr;

struct gx_arena {
	gx_arena_hdr h; /* the mapping starts here */
};

/*
 * What this process knows of an arena it mapped: copied from the header
 * gx_arena_create wrote (a forked child inherits the copy), never read back
 * from shared memory. Every bound on an offset, an index, a copy or a
 * munmap comes from here, so a peer that rewrites the header changes
 * nothing this process relies on.
 */
typedef struct gx_arena_geo {
	char *base;              /* the mapping; NULL for a free entry */
	uint64_t size;           /* bytes mapped */
	uint64_t page_size;
	uint64_t slab_first;     /* offset of slab 0 */
	uint64_t nslabs;
	uint64_t pool_limit;     /* bytes pools may carve, 0 for no limit */
	int64_t spin_ns;
	uint32_t nodes;          /* parts (1..GX_SHM_MAX_NODES) */
	uint32_t tier;
	uint32_t numa_placed;
	int fd;                  /* the memfd, -1 when closed */
	gx_off part_base[GX_SHM_MAX_NODES], part_end[GX_SHM_MAX_NODES];
	char why[200];
} gx_arena_geo;

/* The geometry of a, an arena mapped in this process; NULL when a is not
 * one (a bad pointer from a caller: the call fails with -EINVAL). */
const gx_arena_geo *gx_geo(const gx_arena *a);

static inline gx_arena_hdr *gx_ah(const gx_arena *a)
{
	return (gx_arena_hdr *)&a->h;
}

static inline char *gx_abase(const gx_arena *a)
{
	return (char *)a;
}

/* Bounds-checked translation for values read from shared memory, against
 * the geometry g of the arena (this process's copy). */
static inline void *gx_gptr(const gx_arena_geo *g, uint64_t off, uint64_t len)
{
	if (off < sizeof(gx_arena_hdr) || off > g->size || len > g->size - off)
		return 0;
	return g->base + off;
}

static inline void *gx_aptr(const gx_arena *a, uint64_t off, uint64_t len)
{
	const gx_arena_geo *g = gx_geo(a);
	return g ? gx_gptr(g, off, len) : 0;
}

/* /proc/PID/NAME into buf (NUL-terminated, at most cap - 1 bytes): the
 * length, or -ESRCH when the process is gone, another -errno (no fd left,
 * say) when /proc could not tell. */
ssize_t gx_proc_read(int32_t pid, const char *name, char *buf, size_t cap);
/* pid's state letter (R, S, Z, ...) and parent from /proc/PID/stat: 0,
 * -ESRCH when it is gone, another -errno. ppid may be NULL. */
int gx_proc_stat(int32_t pid, char *state, int32_t *ppid);

/* This process's slot in a (attach on first use), or -ENOSPC. */
int gx_shm_slot(gx_arena *a);
/* The arena gx_shm_slot answered for last, and its slot (cleared by
 * gx_shm_slot_forget, detach and fork): the hot paths' shortcut. */
typedef struct {
	gx_arena *a;
	int slot;
} gx_slot_hint;
extern gx_slot_hint gx_slot_last;
static inline int gx_shm_slot_fast(gx_arena *a)
{
	return a == gx_slot_last.a ? gx_slot_last.slot : gx_shm_slot(a);
}
/* Forget this process's slot of a without detaching (a is being
 * unmapped, or its header was written anew): the next gx_shm_slot attaches. */
void gx_shm_slot_forget(gx_arena *a);
/* The arena mapped in this process that contains p, or NULL. */
gx_arena *gx_arena_of(const void *p);
/* Repair slot s for a process pid known to be dead (reaped already, so
 * its pid may be reused): no liveness check. 1, or 0 when s is not pid's. */
int gx_arena_repair_slot(gx_arena *a, int s, int32_t pid, gx_repair_report *rep);
/* Bump the arena's death count and wake every process sleeping in it
 * (each sleeper waits on that word beside its own, wake.c): after a death,
 * no sleeper waits on a wake-up the dead process owed. */
void gx_arena_wake_all(gx_arena *a);
/*
 * Owner tags, for words that say "a process is doing X" (a pool's
 * repairing flag): slot + 1 in the low 16 bits, the slot's generation in
 * the high 16, so that a process that took the slot later does not pass
 * for the old owner. 0 is no owner.
 */
uint32_t gx_owner_tag(gx_arena *a);
/* Is it worth waiting for the owner named by tag? No for a garbage tag, a
 * free or reused slot, a dead or zombie process, and a stopped or traced
 * one (it may never go on): then the waiter takes over. Reads /proc: call
 * it when a wait has gone on for a while (gx_spin_pause says when). */
bool gx_owner_waitable(gx_arena *a, uint32_t tag);

/* A bounded wait on a word another process writes. */
typedef struct gx_spin {
	uint32_t n;
	int64_t next_look; /* CLOCK_MONOTONIC ns */
	int64_t since;     /* the first look */
} gx_spin;
#define GX_SPIN_INIT {0, 0, 0}
/* One round: the CPU's pause for the first rounds, then a yield (of the
 * coroutine when in one, so that the process's other coroutines run; of
 * the thread otherwise). True about once a millisecond: time to look at
 * the owner (gx_owner_waitable) or give up. */
bool gx_spin_pause(gx_spin *s);

/* Owner-tagged words this process holds right now (a pool repair in one
 * of its coroutines): a word that names this process while it holds none
 * is garbage a peer wrote. */
extern int gx_owner_held;
/* A waiter on an owner-tagged word, at one of gx_spin_pause's looks:
 * should it take the word over? Yes when the owner is not worth waiting
 * for (gx_owner_waitable), when the tag names this process but it holds
 * no such word, and when the wait has gone on for GX_OWNER_PATIENCE
 * whoever the owner is (a live owner holds these words for microseconds;
 * a tag that stays longer was forged or belongs to a stuck process). */
#define GX_OWNER_PATIENCE GX_SECOND
bool gx_owner_take_over(gx_arena *a, const gx_spin *sp, uint32_t tag);

/* True while slot s belongs to a running process (or this one). */
int gx_slot_alive(gx_arena *a, int s);

/* pool.c: chunk ownership moves for the ring (zero-copy hand-over). */
int gx_pool_give(gx_arena *a, gx_off off, int to_ring, uint32_t len);
int gx_pool_take(gx_arena *a, gx_off off, uint32_t *len);
/* pool.c: repair work for a dead slot */
uint64_t gx_pool_repair_slot(gx_arena *a, int slot, uint64_t *garbage);
/* pool.c: return a live slot's cache (detach) */
void gx_pool_flush_cache(gx_arena *a, int slot);
/* pool.c: make an allocated chunk of ours a shared object (repair of its
 * creator's slot leaves it), and free such a chunk. 0 or -EINVAL. */
int gx_pool_share(gx_arena *a, gx_off off);
int gx_pool_free_shared(gx_arena *a, gx_off off);
/* pool.c: free a chunk a ring held (slot skipped or lost by repair) */
void gx_pool_free_ring_chunk(gx_arena *a, gx_off off);
/* pool.c: free chunk off if it is RING|slot (repair of a dead sender) */
void gx_pool_free_ring_chunk_of(gx_arena *a, gx_off off, int slot);

/* pool.c: contiguous slabs for the runtime's own tables (never freed):
 * offset, or -ENOMEM. */
int64_t gx_arena_carve(gx_arena *a, size_t bytes);

/* ring.c: bytes of a ring's header, before its slots (a reader of a
 * foreign arena checks that much before gx_ring_depth) */
#define GX_RING_HDR 768u

/* ring.c: a ring that holds at most lcap messages at once (1..capacity),
 * whatever its power-of-two size: a channel's exact capacity, with no
 * counter beside the ring to repair after a death. */
int gx_ring_create_lcap(gx_arena *a, gx_ring **out, uint32_t capacity, uint32_t msg_size, unsigned flags,
			uint32_t lcap);
/* ring_geo.c: this process's copy of one ring's geometry, checked against
 * the arena's bounds when taken: every slot address a call computes comes
 * from it, never from the header in shared memory. The table in
 * ring_geo.c holds one per ring; a caller on a hot path may keep its own
 * (gx_ring_geo) and call the _g functions below, which check it against
 * the ring's nonce (one load of a line nobody writes) instead of probing
 * the table. */
typedef struct gx_rgeo {
	gx_ring *r;       /* key; NULL free, GX_RG_DEAD a removed entry */
	uint64_t nonce;
	gx_arena *a;
	char *slots;
	uint64_t cap;     /* slots (a power of two) */
	uint64_t lcap;    /* messages it may hold at once (<= cap) */
	uint32_t stride;
	uint32_t msg_size;
	uint32_t flags;
	uint32_t shift;   /* log2(stride): a slot's address by shift */
	int64_t spin_ns;
	gx_off self;      /* its offset in a */
} gx_rgeo;

/* ring_geo.c: *out = r's geometry (as gx_ring_at takes it). false: r is
 * not a ring (or one whose message size changed, as gx_ring_known). */
bool gx_ring_geo(gx_ring *r, gx_rgeo *out);
/* ring.c: send one message (inline msg/len, or the pool chunk `chunk` of
 * len bytes when chunk != 0) without waiting, and say at which position:
 * 0 with *pos, or gx_ring_try_send's errors. */
int gx_ring_try_send_at(gx_ring *r, const void *msg, size_t len, gx_off chunk, uint64_t *pos);
/* ring.c: the message sent at pos was taken and released by a consumer
 * (or its claim was repaired after the consumer died). */
bool gx_ring_taken(gx_ring *r, uint64_t pos);
/* The same on a caller's copy of the geometry (as gx_ring_put_hv_g). */
bool gx_ring_taken_g(const gx_rgeo *g, uint64_t pos);
/* ring.c: a ring flag for gx_ring_create_lcap only (a rendezvous
 * channel's ring): its senders may take a message back (gx_ring_withdraw)
 * until a receiver took it, and its receivers release each slot by a CAS
 * from the published word, so that exactly one of the two wins. */
#define GX_RING_TAKE 2u
/* ring.c: take back the message sent at pos on a TAKE ring unless a
 * receiver took it first. 1: withdrawn (never received; a chunk it
 * carried is ours again in *chunk, which may be NULL for inline
 * messages), 0: a receiver took it, -EINVAL: not a TAKE ring. */
int gx_ring_withdraw(gx_ring *r, uint64_t pos, gx_off *chunk);
/* ring.c: a channel's message, straight into the slot and out of it: put
 * sends hdr's 8 bytes then len bytes of val as one inline message (0 with
 * *pos, or gx_ring_try_send's errors); take receives the next message:
 * when it is 8 + len inline bytes, the header into hdr and the rest into
 * val; a chunk's offset into *chunk (may be NULL: then a chunk is
 * -EMSGSIZE); returns the message's length (anything but 8 + len, or a
 * chunk, is the caller's to refuse) or gx_ring_try_recv's errors; and
 * says whether it passed over skipped slots. */
int gx_ring_put_hv(gx_ring *r, const void *hdr, const void *val, size_t len, uint64_t *pos);
ssize_t gx_ring_take_hv(gx_ring *r, void *hdr, void *val, size_t len, gx_off *chunk, bool *passed);
/* ring.c: the same on the caller's copy g of the ring's geometry
 * (gx_ring_geo): the ring is g->r; a copy the ring no longer matches (it
 * was made anew at the same place) goes through the table as above. */
int gx_ring_put_hv_g(const gx_rgeo *g, const void *hdr, const void *val, size_t len, uint64_t *pos);
ssize_t gx_ring_take_hv_g(const gx_rgeo *g, void *hdr, void *val, size_t len, gx_off *chunk, bool *passed);
/* ring.c: gx_ring_try_recv that also says whether it passed over skipped
 * slots (withdrawn or repaired: a place given back to the senders). */
ssize_t gx_ring_try_recv_passing(gx_ring *r, void *buf, size_t cap, gx_off *chunk, bool *passed);
/* ring.c: every ring of the registry stops being one (gx_arena_reset). */
void gx_ring_forget_all(gx_arena *a);
/* r, a ring of a as this process knows it: NULL when it is not one, or
 * when its header now gives another message size than this process knew
 * (only gx_ring_at takes such a ring anew; ring_geo.c says why). */
gx_ring *gx_ring_known(gx_arena *a, gx_ring *r);
/* ring.c: wake the ring's sleeping consumers (a stealer's nudge) */
void gx_ring_kick(gx_ring *r);
/* ring.c: the eventcount its consumers sleep on */
gx_ec *gx_ring_consumer_ec(gx_ring *r);
/* ring.c: the slot at head is free (a send would not find the ring full);
 * reads only what producers share, not the consumers' tail: a spinner's
 * look */
bool gx_ring_has_room(gx_ring *r);
/* ring.c: gx_ring_has_room, or a consumer has claimed a place it is about
 * to release (head - tail < the logical capacity): the look of a sender
 * after registering to sleep, which a receive wakes without a fence
 * (gx_ec_notify_claimed). Its caller retries until the place is free. */
bool gx_ring_room_claimed(gx_ring *r);
/* ring.c: a message (or a skip, or garbage) is published at tail: what a
 * receive would find, read without the producers' head (a spinner's look:
 * gx_ec_wait_spin). false for a ring this process does not know, and it
 * does not look at the ring's own closed flag: the caller's full look
 * decides those. */
bool gx_ring_peek(gx_ring *r);
/* The same on a caller's copy of the geometry (as gx_ring_put_hv_g). */
bool gx_ring_peek_g(const gx_rgeo *g);
/* ring.c: messages queued now (head - tail) */
uint64_t gx_ring_depth(const gx_ring *r);

/*
 * ring.c: before repair, take back what a dead consumer (arena slot
 * `slot`) had claimed from r and not released. Returns -1 when its journal
 * is not a receive on r. Otherwise it counts the claimed positions and the
 * ones still unreleased; when none was released yet (the copies out may be
 * partial), each unreleased inline message goes to cb in order; then every
 * unreleased slot is released. Returns the number passed to cb, and sets
 * *released when some claimed slot had been released already (the
 * consumer had copied everything out).
 */
int gx_ring_salvage(gx_arena *a, gx_ring *r, int slot, void (*cb)(const void *msg, size_t len, void *arg),
		    void *arg, int *released);

/* ring.c: repair one ring for a dead slot */
void gx_ring_repair_slot(gx_arena *a, gx_ring *r, int slot, gx_repair_report *rep);

/* wake.c: eventcount (gx_ec above) */

/*
 * One waiter on several eventcounts at once (a select over distributed
 * channels), the protocol of gx_ec_wait spelt out: join each (counted as
 * a waiter from the first round to the last), then each round take every
 * key (gx_ec_key), and the death count, fence (seq_cst: pairs with the
 * fence in gx_ec_notify), re-check every condition, and sleep on all the
 * words at once (gx_io_futex_waitv_on); leave each at the end.
 */
/* wake.c: gx_ec_notify for a publish whose claim was a seq_cst CAS on a
 * ring's head, when the waiters' condition counts a claimed position as
 * ready (head != tail: they then spin until it is published): the claim
 * orders the publish before the look at the waiter count, so no fence.
 * The same for a receive whose claim was a seq_cst CAS on tail (or whose
 * take was a seq_cst CAS on the slot), when the sleeping senders count a
 * claimed place as room (gx_ring_room_claimed). A fence costs more than
 * its ~10 ns: it waits for the caller's pending stores, among them the
 * release of the slot's line, which the peer holds (a consumer that
 * fenced after every message ran at one message per line round trip:
 * 23 M/s, against 45 M/s without). This costs the load. */
void gx_ec_notify_claimed(gx_ec *ec, _Atomic uint64_t *wakes);
/* wake.c: spinners give their CPU away every 64 looks (the runtime's
 * processes outnumber its CPUs; set before the workers are forked). */
extern bool gx_ec_spin_yields;
void gx_ec_join(gx_ec *ec);
uint32_t gx_ec_key(gx_ec *ec);
void gx_ec_leave(gx_ec *ec);
/* The death count of ec's arena (NULL when not in an arena mapped here):
 * a sleeper waits on it too, so that a peer that died owing a wake-up is
 * made up for by its repair. */
_Atomic uint32_t *gx_ec_deaths(const gx_ec *ec);

/* Wake sleepers of ec, if any (cheap when none: one load). */
void gx_ec_notify(gx_ec *ec, _Atomic uint64_t *wakes);
/* Looks a blocking receive takes before it goes into the eventcount's
 * wait, a pause between two (~23 ns each on the 2-vCPU EPYC VM: ~1.5 us
 * in all), each by the straight-line path that found nothing: no
 * predicate called through a pointer, no copy of the geometry, no clock
 * read, no registration. Only with a spin budget (spin_ns > 0), ahead of
 * it. Old and new binaries alternating, same minutes:
 *  - gx_ring_recv: ring ping-pong ~119 -> 101-113 ns (floor 41-48 ns);
 *  - gx_chan_recv on a distributed channel of capacity 0 or 1: xpingpong
 *    cap 1 ~137 -> ~120 ns (floor 46-48 ns), 550 -> 445 ns when the floor
 *    is ~350 ns. Not on a larger capacity: there a receiver that takes the
 *    moment a message lands takes the line its sender is still filling,
 *    and chanxproc (capacity 1024) fell from ~57 to ~50 M msg/s; the
 *    slower way out of the wait lets the messages gather. With capacity 0
 *    or 1 the sender cannot run ahead, so nothing gathers;
 *  - a rendezvous send looks so for its "taken" (gx_dch_taken_soon). */
#define GX_RING_LOOKS 64

/*
 * Wait until ready(arg) is true or u ends: spin for spin_ns, then sleep on
 * ec (futex, io_uring FUTEX_WAIT in a coroutine, or backoff sleeps on
 * epoll). 0 when ready, -ETIMEDOUT / -ECANCELED when u ended.
 */
int gx_ec_wait(gx_ec *ec, bool (*ready)(void *), void *arg, int64_t spin_ns, gx_until u, _Atomic uint64_t *sleeps);
/*
 * gx_ec_wait whose spin looks with spin_ready(arg) instead: a cheaper
 * look that reads only lines the peer writes once per message (a ring's
 * slot at tail, not the head its producers CAS first), so that a spinner
 * does not pull the producer's line away between two of its writes. The
 * look after registering, which must see what a claim publishes (a
 * claimed head: gx_ec_notify_claimed), is ready(arg); spin_ready may be
 * late, never early: whatever it calls ready, ready must too. When ready
 * held and spin_ready does not (a place claimed and not yet published or
 * released: a few instructions on the peer's side), the wait ends only
 * once spin_ready holds, spinning a little, then napping 1 ms doubling to
 * 64 ms, so that a peer stopped or dead between its claim and its publish
 * (until repair) costs this process no core.
 */
int gx_ec_wait_spin(gx_ec *ec, bool (*ready)(void *), bool (*spin_ready)(void *), void *arg, int64_t spin_ns,
		    gx_until u, _Atomic uint64_t *sleeps);
/*
 * For a loop that waits with gx_ec_wait and then retries an operation:
 * call it when the retry failed again. After 1000 misses in a row (the
 * condition says ready but the operation keeps failing: contention gone
 * wild, or garbage a peer wrote that looks ready), it sleeps a millisecond
 * so that the loop cannot spin a core until its deadline. 0, or u's error
 * once u has ended.
 */
int gx_ec_pause(unsigned *misses, gx_until u);
/*
 * One step of waiting out a place a peer claimed and has not yet
 * published (or released), which no wake-up is owed for: it comes within
 * a few instructions, unless the peer was stopped or died there (then
 * until it runs again, or until repair). The first 1000 steps are a
 * pause each, then naps of 1 ms doubling to 64 ms (a coroutine sleeps,
 * a plain thread nanosleeps), so the wait costs no core. *looks and *nap
 * start at 0 (again 0 for a new wait). 0, or u's error once u has ended.
 */
int gx_ec_claim_step(unsigned *looks, int64_t *nap, gx_until u);

#endif
