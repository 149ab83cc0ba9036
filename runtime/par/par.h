/*
 * The parallel runtime's shared state (in the arena) and its entry points
 * for gx_run.
 */
#ifndef GX_PAR_PAR_H
#define GX_PAR_PAR_H

#include <stdint.h>

#include "shm/shm.h"

#include <gonex/config.h>
#include <gonex/parallel.h>

#define GX_PAR_MAGIC 0x70617231u
#define GX_FUT_N 65536u

enum { GX_FUT_FREE = 0, GX_FUT_PENDING = 1, GX_FUT_DONE = 2, GX_FUT_ABANDONED = 3, GX_FUT_COMPLETING = 4 };
/* COMPLETING carries the completing worker + 1 in bits 8..15 (0: the main
 * process), so a supervisor can undo it when that worker died mid-way */
#define GX_FUT_KIND(st) ((st)&0xffu)
enum { GX_W_OFF = 0, GX_W_SPAWN = 1, GX_W_READY = 2, GX_W_DRAIN = 3, GX_W_DEAD = 4 };

/* A future's slot: the state word is what waiters sleep on (ec). */
typedef struct gx_fut {
	_Alignas(128) _Atomic uint32_t state;
	_Atomic uint32_t gen;
	int32_t err;
	uint32_t len;
	gx_off chunk; /* result over GX_TASK_INLINE bytes (state RING) */
	gx_ec ec;
	uint8_t data[GX_TASK_INLINE];
} gx_fut;

/* A task record, the inbox rings' message (msg_size = sizeof). */
typedef struct gx_task_rec {
	uint64_t fn;
	uint64_t fut;      /* future handle */
	uint32_t len;      /* argument bytes */
	uint32_t flags;
	gx_off chunk;      /* argument over GX_TASK_INLINE bytes */
	int64_t t_submit;  /* gx_now() at submit */
	int64_t cost;      /* predictive: ns added to the worker's backlog */
	uint8_t arg[GX_TASK_INLINE];
} gx_task_rec;

_Static_assert(sizeof(gx_task_rec) <= GX_RING_INLINE_MAX, "task record too big for a ring slot");

/* What a worker runs (or has taken), so that a supervisor can run it again
 * after the worker died: a bit per entry, set after the record is in. */
#define GX_RUN_MAX 128
typedef struct gx_runtab {
	_Atomic uint64_t used[GX_RUN_MAX / 64];
	gx_task_rec rec[GX_RUN_MAX];
	_Atomic int64_t start[GX_RUN_MAX]; /* gx_now() at start, with a task timeout */
} gx_runtab;

#define GX_TASK_ATTEMPT_SHIFT 8 /* gx_task_rec.flags: runs so far, bits 8..15 */

typedef struct gx_wk {
	_Alignas(128) _Atomic int32_t pid;
	_Atomic uint32_t state;
	int32_t cpu;
	int32_t weight;
	gx_off inbox;
	gx_off runtab;
	_Atomic int32_t exit_status;
	_Atomic uint64_t restarts;
	_Atomic uint32_t retired; /* autoscaling asked it to leave */
	_Atomic uint32_t replace; /* over the memory limit: replace it when it has left */
	_Atomic int32_t arena_slot; /* its process slot in the arena, -1 */
	/* a batch being taken: records land here (in the arena) before the
	 * ring releases their slots, so a death in between loses nothing */
	_Atomic uint32_t staging_k;
	gx_task_rec staging[16];
	_Alignas(64) _Atomic uint64_t tasks, steals, running;
	_Atomic int64_t backlog_ns;
	_Atomic int64_t wait_ewma_ns;
	_Atomic int64_t heartbeat;
	_Atomic uint32_t idle;
} gx_wk;

typedef struct gx_cost {
	_Atomic uint64_t fn;
	_Atomic int64_t avg_ns;
} gx_cost;

#define GX_COSTS 256

typedef struct gx_par {
	uint32_t magic;
	uint32_t nslots;           /* workers_max */
	int32_t main_pid;
	int32_t spawner_pid;
	_Atomic uint32_t stop;
	_Atomic uint32_t idle_workers;
	gx_ec events;              /* worker state changes (main sleeps here) */
	_Alignas(64) _Atomic uint64_t fut_head; /* tagged stack of free futures */
	gx_off futs;               /* GX_FUT_N gx_fut */
	gx_off fut_next;           /* GX_FUT_N uint32_t links */
	gx_wk w[GX_MAX_WORKERS];
	gx_cost cost[GX_COSTS];
} gx_par;

/* gx_run, before anything else starts: set up the arena, the tables and
 * the spawner process. 0, or -errno with nothing left behind. */
int gx_par_init(const gx_config *cfg);
/* gx_run's first coroutine: boot the workers, run main_fn, shut down. */
int gx_par_main(int (*main_fn)(void *), void *arg);
/* after gx_run's runtime is down: reap the spawner, unmap. */
void gx_par_fini(void);
/* The runtime's arena (made for local use when create is set and there
 * are no workers; NULL outside gx_run), and the number of worker slots. */
gx_arena *gx_par_arena(int create);
int gx_par_slots(void);
/* dchan.c: route GX_CHAN_DISTRIBUTED channels to it */
void gx_dchan_install(void);
/* true in a worker process (its gx_run must not start workers) */
int gx_par_in_worker(void);
/* true when gx_par_init set up workers in this process */
int gx_par_enabled(void);

#endif
