/*
 * gonex/shm.h: the shared memory substrate.
 *
 * An arena is one MAP_SHARED region made before fork(), so it sits at the
 * same address in the process that made it and in every child forked after.
 * Inside it live pools (size classes from 64 B to 1 MiB, per NUMA node) and
 * MPMC rings. Everything one process writes for another to read stores
 * offsets from the arena's base (gx_off), never pointers, and every offset
 * and length read from shared memory is bounds-checked: a process that
 * writes garbage into the arena makes the others fail with an error
 * (-EBADMSG, -EINVAL), never read or write outside it.
 *
 * Processes. Each process that uses an arena takes a process slot (at most
 * GX_SHM_MAX_PROCS at a time) on first use, after fork as well. What it
 * claims (pool chunks, ring positions) is recorded in that slot, so that
 * when it dies the supervisor's gx_arena_repair() can give its chunks back
 * and skip or release the ring slots it held. A process that is done with
 * an arena (and is not dying) calls gx_arena_detach().
 *
 * Memory tiers, tried in order (GONEX_HUGEPAGES, gx_arena_opts.tier):
 *   GX_MEM_HUGETLB  memfd with MFD_HUGETLB: needs reserved huge pages
 *                   (/proc/sys/vm/nr_hugepages); the mapping reserves them,
 *                   so a shortfall is an error at creation, never a SIGBUS
 *   GX_MEM_THP      memfd with MADV_HUGEPAGE, kept only when a huge page
 *                   really backs it (shmem_enabled must allow it)
 *   GX_MEM_4K       memfd with normal pages
 * NUMA (meson option numa, libnuma): the arena is split in one part per node,
 * each bound (mbind) to its node before first touch; numa_available() < 0
 * or one node places nothing. Every shortfall falls back to the next tier
 * with a reason in gx_arena_info.why (and a log line with GONEX_LOG=1),
 * never a crash.
 *
 * Threat model. The arena is a memfd: any process of the same user (or
 * root) can map it read-write through /proc/PID/fd, and every process of
 * the runtime writes into it. What we guard against is the arena's
 * contents: bytes written there by a process that is buggy, killed in the
 * middle of a write, or hostile but holding nothing more than the
 * mapping. Against that we promise:
 *   - no crash in the runtime, and no read or write outside the arena,
 *     whatever bytes are there: every bound (the arena's size and layout, a ring's or a
 *     channel's geometry, the number of workers, a pid to signal) comes
 *     from this process's own copy, taken when the object was made or
 *     first seen here, and every offset, index and length read from the
 *     arena is checked against it; the arena is mapped with inaccessible
 *     guard pages on both sides; a distributed channel's header carries a
 *     MAC under the run's key, so a peer cannot give a channel this
 *     process knows another element size;
 *   - no hang: every wait on a word another process writes ends, at its
 *     deadline, or when the owner it waits for is found dead, stopped or
 *     replaced, or names this process, or has held the word for a second
 *     (then the waiter takes over);
 *   - every call ends with success or an error (-EBADMSG, -EINVAL,
 *     -EAGAIN, -ENOMEM...); what was scribbled over may be lost or come
 *     out as garbage bytes of the right length;
 *   - after the scribbling stops, gx_arena_repair gives back what dead
 *     processes held, and gx_arena_reset starts the arena over.
 * What we cannot promise: a peer that copies a valid message delivers it;
 * a peer that saved the header of a channel freed earlier and writes it
 * back where a new channel was made at the same address gets the earlier
 * channel's geometry taken (its MAC is good);
 * (a task record it saw runs its function again, with the peer's argument
 * bytes; the function itself is sealed under a key of the run, so a peer
 * cannot name one of its choosing); a peer that can ptrace us or
 * write /proc/PID/mem can do anything at all. Processes that do not trust
 * each other must not share an arena.
 *
 * Wake-ups. A blocking ring call spins for the spin budget (GONEX_SPIN_NS),
 * then sleeps on a shared futex word (an eventcount: a publish makes a
 * syscall only when someone sleeps), and on the arena's death count beside
 * it: repair of a dead process wakes every sleeper, so a wake-up the dead
 * one owed is never lost. Inside a coroutine on io_uring the
 * sleep is an IORING_OP_FUTEX_WAIT, so the process goes on running its other
 * coroutines; on the epoll backend (no futex in epoll) the coroutine
 * re-checks with timed sleeps backing off from 20 us to 1 ms, so a wake-up
 * there can lag by up to 1 ms. Outside coroutines the futex syscall is used.
 */
#ifndef GONEX_SHM_H
#define GONEX_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gonex/api.h>
#include <gonex/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An offset from the arena's base; 0 is never a valid object. */
typedef uint64_t gx_off;

#define GX_SHM_MAX_PROCS 256
#define GX_SHM_MAX_NODES 8
#define GX_POOL_CLASSES 15 /* 64 B << 0 .. 64 B << 14 = 1 MiB */
#define GX_POOL_MAX_CHUNK ((size_t)1 << 20)
#define GX_RING_INLINE_MAX 120 /* a slot is at most two cache lines */

typedef enum gx_mem_tier {
	GX_MEM_AUTO = 0,    /* best that works: hugetlb, THP, 4 KiB */
	GX_MEM_HUGETLB = 1,
	GX_MEM_THP = 2,
	GX_MEM_4K = 3,
} gx_mem_tier;

typedef struct gx_arena gx_arena;
typedef struct gx_ring gx_ring;

typedef struct gx_arena_opts {
	size_t size;         /* bytes; 0: GONEX_SHM_SIZE, default 64 MiB */
	gx_mem_tier tier;    /* the best tier to try; AUTO: GONEX_HUGEPAGES */
	int numa;            /* 1 place per node (default), 0 do not place */
	int64_t spin_ns;     /* spin budget before sleeping; -1: GONEX_SPIN_NS */
	size_t pool_size;    /* bytes the pools may carve; 0: GONEX_POOL_SIZE,
			      * where 0 means the whole arena */
} gx_arena_opts;

/* Defaults: size 0, tier AUTO, numa 1, spin_ns -1 (environment, then built-in). */
GX_API void gx_arena_opts_init(gx_arena_opts *o);

/*
 * Create an arena (before fork, so children share it). opts may be NULL.
 * Sizes are rounded up to the tier's page size; at least 4 MiB, at most
 * 1 TiB. Returns 0, -EINVAL (bad size or option, or a GONEX_* value that
 * does not parse), -ENOMEM / -EMFILE when no tier could be mapped.
 */
GX_API int gx_arena_create(gx_arena **out, const gx_arena_opts *opts);

/* Unmap the arena in this process. Other processes keep their mapping.
 * Returns 0 or -EINVAL for NULL. */
GX_API int gx_arena_destroy(gx_arena *a);

typedef struct gx_arena_info {
	size_t size;          /* bytes mapped */
	gx_mem_tier tier;     /* the tier it got */
	const char *tier_name; /* "hugetlb", "thp", "4k" */
	size_t page_size;     /* 2 MiB for hugetlb and thp, else 4 KiB */
	int numa_nodes;       /* parts placed; 0 when nothing was placed */
	int64_t spin_ns;      /* the spin budget in use */
	uint32_t procs;       /* process slots in use */
	char why[200];        /* why better tiers or placement were skipped */
} gx_arena_info;

GX_API int gx_arena_info_get(const gx_arena *a, gx_arena_info *out);

/* This process's slot index in a (taking one on first use), or -ENOSPC
 * when all GX_SHM_MAX_PROCS slots are taken. */
GX_API int gx_arena_attach(gx_arena *a);

/* Give up this process's slot: its pool caches go back to the pools.
 * Call it when done, not while other calls of this process are running. */
GX_API int gx_arena_detach(gx_arena *a);

typedef struct gx_repair_report {
	uint32_t procs;          /* dead process slots freed */
	uint64_t chunks_freed;   /* chunks the dead held, back in their pools */
	uint64_t slots_skipped;  /* ring slots claimed but never published */
	uint64_t slots_lost;     /* published messages a dead consumer had taken */
	uint64_t garbage;        /* corrupt free-list entries dropped */
} gx_repair_report;

/*
 * The supervisor's repair after process pid died (reaped or not running):
 * free its slot, return its chunks (cached, allocated and not handed over)
 * to the pools, and in every ring of the arena skip the slots it claimed
 * and never published and release the ones it took and never released.
 * pid 0 repairs every slot whose process no longer exists. Safe while other
 * processes keep using the arena. Returns the number of slots repaired,
 * -ESRCH when pid holds no slot, -EBUSY when pid is still running.
 */
GX_API int gx_arena_repair(gx_arena *a, pid_t pid, gx_repair_report *rep);

/*
 * Start the arena over, as gx_arena_create left it: every pool chunk, ring
 * and process slot in it is forgotten (pointers to them stop working:
 * calls on them fail with -EINVAL), sleepers in it wake. For an arena
 * whose contents another process scribbled over (see "Threat model"
 * above), or between tests. No other process may be using it meanwhile;
 * not for the arena of a running gx_run (start gx_run again instead).
 * Returns 0, or -EINVAL for an arena not mapped here.
 */
GX_API int gx_arena_reset(gx_arena *a);

/* Translate an offset to a pointer, checking that [off, off+len) lies in
 * the arena's data; NULL when it does not. */
GX_API void *gx_arena_ptr(const gx_arena *a, gx_off off, size_t len);
/* The offset of p, which must point into the arena; 0 when it does not. */
GX_API gx_off gx_arena_off(const gx_arena *a, const void *p);

/* ---- pools ---- */

/*
 * Allocate a chunk of at least len bytes (1..GX_POOL_MAX_CHUNK) from the
 * pool of this process's NUMA node (node -1) or of a given node. The chunk
 * belongs to this process until it is freed or handed over through a ring.
 * Returns its offset (> 0) or -EINVAL (len out of range, bad node),
 * -ENOMEM (the node's part is exhausted), -ENOSPC (no process slot).
 */
GX_API int64_t gx_pool_alloc(gx_arena *a, size_t len, int node);

/*
 * Free a chunk, from any process. Every free is validated: an offset that
 * is not the start of a chunk (foreign, misaligned, outside the pools) or a
 * chunk already free gives -EINVAL and changes nothing.
 */
GX_API int gx_pool_free(gx_arena *a, gx_off off);

/*
 * Chunks that outlive their maker. A chunk belongs to the process that
 * allocated it, so when that process dies gx_arena_repair frees it: right
 * for work in flight, wrong for a record a process linked into a shared
 * structure (a hash table, a list). gx_pool_disown makes a chunk of this
 * process nobody's: repair leaves it, and it stays allocated until some
 * process takes it with gx_pool_own (then gx_pool_free). Both are one CAS
 * on the chunk's state, so a chunk is never owned twice. 0, or -EINVAL
 * (not a chunk, or not in the state the call expects: for disown, owned
 * by this process; for own, disowned).
 *
 * For a structure that must survive a SIGKILL at any point, keep the
 * record of what a writer is doing (the chunk it is about to link, the
 * one it unlinked) where a recoverer finds it, link a chunk only after
 * disowning it, and own a chunk again before forgetting that record:
 * then every chunk is either reachable, named in that record, or owned by
 * the dead process (repair frees it). examples/kv.c does this.
 */
GX_API int gx_pool_disown(gx_arena *a, gx_off off);
GX_API int gx_pool_own(gx_arena *a, gx_off off);

/* The usable size of an allocated chunk, or -EINVAL. */
GX_API int64_t gx_pool_chunk_size(const gx_arena *a, gx_off off);

typedef struct gx_pool_class_stats {
	size_t chunk_size;
	uint64_t allocs, frees, bad_frees; /* events (a process killed inside
					    * a call may leave one uncounted) */
	uint64_t chunks;   /* carved so far */
	uint64_t in_use;   /* chunks allocated or in a ring now, counted from
			    * their states (exact; costs a walk of the slabs) */
} gx_pool_class_stats;

/* Counters of one class (0 .. GX_POOL_CLASSES-1) on one node. */
GX_API int gx_pool_stats(const gx_arena *a, int node, int cls, gx_pool_class_stats *out);

/* ---- MPMC ring ---- */

#define GX_RING_NOWAKE 1u /* never sleep: blocking calls only spin and yield,
			   * and sends and receives skip the wake-up check */

/*
 * Create a ring of capacity slots (a power of two, >= 2) carrying
 * messages of up to msg_size bytes inline (1..GX_RING_INLINE_MAX); larger
 * messages travel as pool chunks (gx_ring_send_chunk, which needs
 * msg_size >= 8). A slot takes 8 + msg_size bytes rounded up to a power of
 * two (16 for 8-byte messages, 128 for 120), and the ring must fit in one
 * pool chunk: capacity x slot <= 1 MiB - 768 (65,488 slots of 16 bytes,
 * say; the next power of two down, 32768). The ring lives in the arena: its
 * pointer is valid in every process sharing the arena. Returns 0, -EINVAL
 * (bad arguments, too big), -ENOMEM (arena full or 1024 rings exist).
 */
GX_API int gx_ring_create(gx_arena *a, gx_ring **out, uint32_t capacity, uint32_t msg_size, unsigned flags);

/* Free a ring no process uses any more. -EINVAL for a bad pointer. */
GX_API int gx_ring_destroy(gx_arena *a, gx_ring *r);

/*
 * Offsets for handing a ring to another process, and back (validated).
 * A process keeps the geometry of each ring it has used. When a ring is
 * destroyed and another made at the same place, calls through the old
 * pointer in a process that used the old ring take the new one only if its
 * message size is the same (the size the caller's buffers were made for);
 * otherwise they fail with -EINVAL until gx_ring_at finds the ring anew.
 */
GX_API gx_off gx_ring_off(const gx_ring *r);
GX_API gx_ring *gx_ring_at(gx_arena *a, gx_off off);

/*
 * Send len bytes (1..msg_size) inline. try: -EAGAIN when full. Blocking:
 * waits as u allows (-ETIMEDOUT, -ECANCELED). -EPIPE once the ring is
 * closed, -EMSGSIZE when len > msg_size, -EINVAL for bad arguments.
 */
GX_API int gx_ring_try_send(gx_ring *r, const void *msg, size_t len);
GX_API int gx_ring_send(gx_ring *r, const void *msg, size_t len, gx_until u);

/*
 * Hand over a pool chunk (allocated by this process, len bytes used):
 * zero copy, the receiver gets the offset and owns the chunk. On error the
 * chunk stays the caller's.
 */
GX_API int gx_ring_try_send_chunk(gx_ring *r, gx_off chunk, size_t len);
GX_API int gx_ring_send_chunk(gx_ring *r, gx_off chunk, size_t len, gx_until u);

/*
 * Receive one message. An inline message is copied to buf (cap bytes; a
 * longer message gives -EMSGSIZE and stays queued) and its length returned.
 * A chunk message stores the chunk's offset in *chunk (which the caller
 * then owns and frees) and returns its length; with chunk NULL such a
 * message gives -EMSGSIZE. try: -EAGAIN when empty. -EPIPE once the ring is
 * closed and empty. A slot skipped by repair is passed over.
 * -EBADMSG for a slot whose contents are corrupt (it is consumed).
 */
GX_API ssize_t gx_ring_try_recv(gx_ring *r, void *buf, size_t cap, gx_off *chunk);
GX_API ssize_t gx_ring_recv(gx_ring *r, void *buf, size_t cap, gx_off *chunk, gx_until u);

/*
 * Batches of n inline messages of exactly msg_size bytes each, packed in
 * msgs. Sends (receives) as many as fit (are queued), at least one:
 * blocking waits for the first as u allows. Returns the count, or the
 * errors above. A batch receive takes only inline messages of exactly
 * msg_size bytes and stops before any other; when the first queued message
 * is of another kind it returns -EMSGSIZE (take it with gx_ring_recv).
 */
GX_API int gx_ring_send_batch(gx_ring *r, const void *msgs, size_t n, gx_until u);
GX_API int gx_ring_try_send_batch(gx_ring *r, const void *msgs, size_t n);
GX_API int gx_ring_recv_batch(gx_ring *r, void *msgs, size_t n, gx_until u);
GX_API int gx_ring_try_recv_batch(gx_ring *r, void *msgs, size_t n);

/* Close: sends fail with -EPIPE, receivers drain then get -EPIPE, sleepers
 * wake. -EPIPE if already closed. The close and the sends' claims are one
 * word: a send either claimed its place before the close (it goes through,
 * and receivers get its message before -EPIPE) or fails with -EPIPE. */
GX_API int gx_ring_close(gx_ring *r);

typedef struct gx_ring_stats {
	uint32_t capacity, msg_size;
	uint64_t sent, received; /* positions claimed on each side */
	uint64_t queued;         /* sent - received */
	uint64_t skipped, lost, corrupt;
	uint64_t sleeps, wakes;  /* futex waits entered, futex wakes issued */
	int closed;
} gx_ring_stats;

GX_API int gx_ring_stats_get(const gx_ring *r, gx_ring_stats *out);

#ifdef __cplusplus
}
#endif

#endif
