/*
 * The parallel runtime: its shared state (in the arena), its process-local
 * state, and the calls its files make of each other. One file a concept:
 * init (set-up, boot, stop), spawner (the process that forks workers),
 * worker (the worker loop, heartbeat), submit (gx_go_parallel), balance
 * (choosing a worker), task (running one), future (result slots),
 * supervise (deaths, re-runs, restarts), watch (pidfds), watchdog (memory,
 * timeouts, health), autoscale, breaker, the distributed channels (dchan,
 * dmsg, dchan_io, fanout) and the figures (snapshot, json, prof, quit).
 *
 * Processes: main (the caller of gx_run, its supervisor coroutines), the
 * spawner (no runtime, forks and reaps), workers (a loop each). Every
 * process trusts its own memory only: what it reads of the arena another
 * process writes is bounded by its own copies (the slot count, the
 * geometry of rings and channels, the spawner's pid, the CPUs) and checked
 * (a task's function must be code; an offset must name an object).
 *
 * Who writes which shared word:
 *  - gx_wk.state: main (SPAWN, OFF, DRAIN, DEAD on a pidfd's word), the
 *    worker (READY), the spawner (DEAD for a death before ready, or any at
 *    stop); each move is a CAS or a store by the one side the state gives
 *    it to (see spawner.c and watch.c);
 *  - gx_wk.pid: the forked worker itself and the spawner (the same value),
 *    main clears it when it handles the death;
 *  - a worker's running table and staging area: that worker; main reads
 *    them (the tag protocol below) and, once the worker is dead, resets;
 *  - future slots: see future.c (one owner per move, CAS on the word that
 *    carries the generation);
 *  - the counters (tasks, running, backlog, heartbeat): their worker,
 *    relaxed: figures and hints, never a decision that needs exactness.
 *
 * Ordering pairs (each named again at both ends in the code):
 *  - running table: the worker stores rec (and start) then the tag with
 *    release; main loads the tag with acquire, copies, and acts only if a
 *    CAS from the same tag wins (task.c, watchdog.c, supervise.c);
 *  - futures: result then DONE (release), waiter's acquire (future.c);
 *  - staging: the count with release after clearing, the supervisor reads
 *    it after the worker died (worker.c, supervise.c);
 *  - magic words: stored last with release, read with acquire.
 *
 * Rejected: one file for all of it (par.c, 2,189 lines, split for issue
 * 14); signalling workers by the pids in their slots (a peer can write any
 * pid there, kill(-1) included).
 */
#ifndef GX_PAR_PAR_H
#define GX_PAR_PAR_H

#include <errno.h>
#include <stdint.h>

#include "shm/shm.h"
#include "stats/stats.h"

#include <gonex/breaker.h>
#include <gonex/config.h>
#include <gonex/chan.h>
#include <gonex/parallel.h>
#include <gonex/sync.h>

#define GX_PAR_MAGIC 0x70617231u
#define GX_FUT_N 65536u

enum {
	GX_FUT_FREE = 0,
	GX_FUT_PENDING = 1,
	GX_FUT_DONE = 2,
	GX_FUT_ABANDONED = 3, /* freed while pending: the completer releases it */
	GX_FUT_COMPLETING = 4,
	GX_FUT_FREEING = 5,   /* its one releaser is putting it back */
};
/* COMPLETING carries the completing worker + 1 in bits 8..15 (0: the main
 * process), so a supervisor can undo it when that worker died mid-way, and
 * GX_FUT_GONE when gx_future_free came meanwhile (the completer releases) */
#define GX_FUT_KIND(st) ((st)&0xffu)
#define GX_FUT_GONE 0x10000u
enum { GX_W_OFF = 0, GX_W_SPAWN = 1, GX_W_READY = 2, GX_W_DRAIN = 3, GX_W_DEAD = 4 };

/* A future's slot: the state word is what waiters sleep on (ec). */
typedef struct gx_fut {
	_Alignas(128) _Atomic uint64_t sw; /* generation << 32 | state (future.c) */
	int32_t err;
	uint32_t len;
	uint32_t origin; /* gx_origin */
	gx_off chunk; /* result over GX_TASK_INLINE bytes (state RING) */
	gx_ec ec;
	uint8_t data[GX_TASK_INLINE];
} gx_fut;

/* A task record, the inbox rings' message (msg_size = sizeof). */
typedef struct gx_task_rec {
	uint64_t code;     /* the function, sealed (gx_code_seal) */
	uint64_t fut;      /* future handle */
	uint32_t len;      /* argument bytes */
	uint32_t flags;
	gx_off chunk;      /* argument over GX_TASK_INLINE bytes */
	int64_t t_submit;  /* gx_now() at submit */
	int64_t cost;      /* predictive: ns added to the worker's backlog */
	uint64_t name;     /* gx_par_opts.name (an address in the image) */
	uint8_t arg[GX_TASK_INLINE];
} gx_task_rec;

_Static_assert(sizeof(gx_task_rec) <= GX_RING_INLINE_MAX, "task record too big for a ring slot");

/*
 * What a worker has taken and what it runs, so that a supervisor can run
 * it again after the worker died and the watchdog can time it out. Each
 * entry's tag is generation << 2 | state:
 *
 *   FREE --worker takes a task--> TAKEN --it starts running--> RUNNING
 *   RUNNING --watchdog, past the timeout (CAS)--> TIMEDOUT
 *   any --worker, task done--> FREE with generation + 1
 *
 * The worker writes rec and start only while the entry is FREE and before
 * its release store of TAKEN; a reader that copies rec and then wins a CAS
 * on the tag it read knows the copy is of that generation's task. A task
 * that never started (TAKEN) runs again without using up an attempt.
 */
#define GX_RUN_MAX 128
enum { GX_RT_FREE = 0, GX_RT_TAKEN = 1, GX_RT_RUNNING = 2, GX_RT_TIMEDOUT = 3 };
#define GX_RT_TAG(gen, st) ((uint64_t)(gen) << 2 | (uint64_t)(st))
#define GX_RT_ST(tag) ((uint32_t)((tag)&3u))
#define GX_RT_GEN(tag) ((tag) >> 2)
typedef struct gx_runtab {
	_Atomic uint64_t tag[GX_RUN_MAX];
	_Atomic int64_t start[GX_RUN_MAX]; /* gx_now() when it began running (with a task timeout) */
	gx_task_rec rec[GX_RUN_MAX];
} gx_runtab;

/* gx_task_rec.flags */
#define GX_TASK_HINTED 1u       /* the submitter gave the cost (opts.weight) */
#define GX_TASK_PROBE 2u        /* a half-open breaker's trial */
#define GX_TASK_FALLBACK 4u     /* run the breaker's fallback instead */
#define GX_TASK_ATTEMPT_SHIFT 8 /* runs so far, bits 8..15 */
#define GX_TASK_BRK_SHIFT 16    /* breaker index + 1, bits 16..23 (0: none) */
#define GX_TASK_BRK(fl) (((fl) >> GX_TASK_BRK_SHIFT) & 0xffu)

typedef struct gx_wk {
	_Alignas(128) _Atomic int32_t pid;
	_Atomic uint32_t state;
	int32_t cpu;
	int32_t weight;
	gx_off inbox;
	gx_off runtab;
	_Atomic int32_t exit_status;
	_Atomic int32_t ready_pid; /* the last worker here that became ready */
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
	/* figures (gonex/stats.h): written by the worker */
	_Atomic int64_t started;    /* gx_now() when it became ready */
	_Atomic int64_t idle_since; /* asleep since, 0 when awake */
	_Atomic int64_t idle_ns;    /* asleep in total (this process) */
	_Atomic uint64_t wakeups;
	_Atomic uint32_t unhealthy; /* the watchdog found its heartbeat stale */
	_Atomic uint32_t hb_rest;   /* its heartbeat rests: nothing to run */
	_Atomic uint32_t dump_seen; /* gx_dump_all requests handled */
} gx_wk;

/* A circuit breaker (gonex/breaker.h), shared by every process. The state
 * word packs state (bits 0..1), probes admitted (2..17), probes that
 * succeeded (18..33) and failures in a row (34..63). */
#define GX_BRK_ST(s) ((uint32_t)((s)&3u))
#define GX_BRK_INFL(s) ((uint32_t)(((s) >> 2) & 0xffffu))
#define GX_BRK_OK(s) ((uint32_t)(((s) >> 18) & 0xffffu))
#define GX_BRK_FAILS(s) ((uint32_t)((s) >> 34))
#define GX_BRK_MAKE(st, infl, ok, fails)                                                                  \
	((uint64_t)(st) | (uint64_t)(infl) << 2 | (uint64_t)(ok) << 18 | (uint64_t)(fails) << 34)

typedef struct gx_brk {
	_Alignas(128) _Atomic uint32_t used; /* 0 free, 1 being made, 2 ready */
	char name[32];
	uint64_t fn;                   /* opts.fn, 0 for none */
	uint64_t fallback; /* sealed (gx_code_seal), 0: none */
	uint32_t failures, probes, retries, last_good;
	int64_t cooldown, backoff, backoff_max;
	_Alignas(64) _Atomic uint64_t st;
	_Atomic int64_t opened_at;
	_Atomic uint64_t successes, fails, opens, rejected, fallbacks, last_goods;
	/* the last good result, under a sequence lock (odd: being written) */
	_Alignas(64) _Atomic uint32_t lg_seq;
	int32_t lg_rc;
	uint32_t lg_len;
	uint32_t lg_have;
	uint8_t lg[GX_BREAKER_LAST_MAX];
} gx_brk;

struct gx_breaker {
	gx_brk b;
};

typedef struct gx_cost {
	_Atomic uint64_t fn;
	_Atomic int64_t avg_ns;
} gx_cost;

#define GX_COSTS 256

typedef struct gx_par {
	_Atomic uint32_t magic;    /* stored last (release) by gx_par_tables */
	uint32_t nslots;           /* workers_max */
	int32_t main_pid;
	int32_t spawner_pid;
	_Atomic uint32_t stop;
	_Atomic uint32_t idle_workers;
	_Atomic uint32_t pidfd_watch; /* main watches running workers' pidfds */
	gx_ec events;              /* worker state changes (main sleeps here) */
	_Alignas(64) _Atomic uint64_t fut_head; /* tagged stack of free futures */
	gx_off futs;               /* GX_FUT_N gx_fut */
	gx_off fut_next;           /* GX_FUT_N uint32_t links */
	gx_wk w[GX_MAX_WORKERS];
	gx_cost cost[GX_COSTS];
	/* figures: shard 0 the main process, 1 + i worker i */
	uint32_t stats_on;
	uint32_t nshards;
	gx_off shards;             /* nshards gx_stat_shard, 0 when off */
	_Atomic uint32_t degraded;
	_Atomic uint32_t dump_seq; /* gx_dump_all requests */
	_Atomic uint32_t nbrk;     /* breakers made (indexes below it) */
	gx_brk brk[GX_BREAKER_MAX];
	_Atomic uint64_t dchans[1024]; /* distributed channels' offsets (dchan.c), 0 */
	_Atomic uint64_t main_helped;  /* tasks main took from inboxes (cfg.main_helps) */
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

/* gx_run, every time (also without workers): the configuration. */
void gx_par_configure(const gx_config *cfg);
/* pstats.c: SIGQUIT dumps (GONEX_DUMP_SIGNAL), set up in the first
 * coroutine and taken down after the loop. */
void gx_obs_start(void);
void gx_obs_fini(void);

/* breaker.c and pstats.c: the shared table (NULL before the arena), the
 * configuration, and whether fn is code the workers can run. */
gx_par *gx_par_table(void);
const gx_config *gx_par_cfg(void);
int gx_par_is_code(const void *fn);
/* This process's stats shard, NULL with stats off. */
gx_stat_shard *gx_par_shard(void);

/* breaker.c */
enum { GX_BRK_REJECT = 0, GX_BRK_PASS = 1, GX_BRK_TRIAL = 2 };
/* The breaker for a task of fn (opts' own, else fn's; made on first use
 * with GONEX_CIRCUIT_BREAKER=1), or NULL. gx_go_parallel calls it only
 * when one may apply (named, some made, or the switch on). */
gx_brk *gx_brk_pick(uint64_t fn, const gx_par_opts *opts);
gx_brk *gx_brk_at(uint32_t idx1); /* from GX_TASK_BRK: index + 1 */
uint32_t gx_brk_index(const gx_brk *b);
int gx_brk_admit(gx_brk *b, int64_t now);
void gx_brk_report(gx_brk *b, int trial, int rc, int64_t now);
void gx_brk_keep(gx_brk *b, int rc, const void *res, size_t len);
/* Copy the last good result: 1 (with *rc, *len), or 0 when none. */
int gx_brk_last(gx_brk *b, int *rc, void *buf, size_t *len);
int gx_brk_closed(const gx_brk *b);
/* A failure that counts: code < 0, not a cancelling shutdown. */
static inline int gx_brk_failed(int rc)
{
	return rc < 0 && rc != -ECANCELED;
}

/* ---- process-local state of the parallel layer (every par/ file) ----
 *
 * Nothing here is in the arena: each process has its own copy (a forked
 * worker starts with the spawner's, which is main's before any worker ran).
 */
typedef struct gx_par_local {
	gx_arena *a;
	gx_par *p;
	gx_fut *futs;
	uint32_t nfut;   /* future slots (an eighth of the arena) */
	_Atomic uint32_t *fut_next;
	gx_config cfg;
	int nslots;      /* worker slots (workers_max), this process's copy */
	int32_t spawner_pid; /* this process's copy */
	int cpu[GX_MAX_WORKERS];    /* slot i's CPU, -1: not pinned (copies) */
	int weight[GX_MAX_WORKERS]; /* slot i's weight (copies) */
	gx_ring *inbox[GX_MAX_WORKERS];   /* slot i's inbox (copies, set before any fork) */
	gx_runtab *runtab[GX_MAX_WORKERS]; /* slot i's running table (copies) */
	gx_off shards;    /* the figures' shards (copy), 0 with stats off */
	int pidfd[GX_MAX_WORKERS];  /* main: slot i's running worker, -1 */
	int32_t spid[GX_MAX_WORKERS];    /* main: slot i's process as the spawner reported
					  * it over main's own socket (0: none) */
	int32_t handled[GX_MAX_WORKERS]; /* main: the pid whose death was handled last */
	gx_ec local_ev;                  /* main: spid[] changed (process-local) */
	int me;          /* worker index, -1 in the main process */
	int nworkers;    /* started at boot (autoscaling moves it) */
	int wmin, wmax;
	int pipe_w;      /* main -> spawner requests */
	int own_arena;   /* workers == 0: a lazily made arena of our own */
	uint32_t rr;     /* round-robin */
	int64_t swrr[GX_MAX_WORKERS];
	int enabled;
	int stopping;
	gx_wg tasks_wg;  /* a worker's running tasks */
	gx_runtab *rt;   /* a worker's running table */
	uint8_t rt_free[GX_RUN_MAX];
	int rt_nfree;
	int degraded;    /* no worker left and none may restart: run locally */
	int64_t restart_at[1000]; /* supervisor: times of recent restarts */
	int nrestart;
	int64_t code_lo[64], code_hi[64];
	int ncode;
	int64_t img_lo[128], img_hi[128];
	int nimg;
	gx_stat_shard *shard; /* this process's figures, NULL with stats off */
	struct gx_ctx *stop_ctx; /* main: cancelled when the runtime stops */
	int watching;         /* main: gx_watch coroutines not yet returned */
	gx_chan *hb_bell;     /* worker: wakes a resting heartbeat */
	int hb_resting;
	uint8_t stale_looks[GX_MAX_WORKERS]; /* main: watchdog looks in a row */
	int helped_running;   /* main: tasks it took to help, not yet ended */
} gx_par_local;

extern gx_par_local gx_pl;

/* gx_worker_id() inline, for the runtime's hot paths (a channel call). */
static inline int gx_par_me(void)
{
	return gx_pl.me;
}

/* Worker i's inbox ring: this process's copy, never the slot's offset
 * (NULL for an index out of range). */
static inline gx_ring *gx_inbox(int i)
{
	return i >= 0 && i < gx_pl.nslots ? gx_pl.inbox[i] : NULL;
}

/* A future handle: generation in the high half, index in the low. */
static inline uint64_t gx_fh(uint32_t idx, uint32_t gen)
{
	return (uint64_t)gen << 32 | idx;
}

/* A task taken by this process: its record and where it is kept. */
typedef struct gx_task {
	gx_task_rec rec;
	int stolen;
	int helped;           /* taken by main to help (gx_main_help) */
	int slot;             /* entry in the worker's running table, -1 for none */
	struct gx_task *next; /* on the spare list (task.c) */
} gx_task;

/* init.c */
void gx_image_ranges(void);
int gx_in_image(const char *p);

/* seal.c: code addresses as the arena keeps them. gx_seal_init makes this
 * run's key (main, before any fork; 0 or -errno). gx_code_seal gives the
 * sealed form of fn (0 before the key); gx_code_open gives back the
 * address a sealed word stands for, or 0 when it opens to no code of the
 * image (forged or scribbled). */
int gx_seal_init(void);
uint64_t gx_code_seal(uint64_t fn);
uint64_t gx_code_open(uint64_t code);
/* A MAC of n words under the run's key (CBC over SipHash-2-4; callers
 * always MAC the same number of words for one kind of object): what a
 * process that holds only the arena cannot make. 0 before the key. */
uint64_t gx_seal_mac(const uint64_t *w, size_t n);
int gx_par_tables(gx_arena *a, int nslots);
int gx_request(int i);

/* future.c */
int gx_fut_alloc(uint32_t *idx, uint64_t *fh);
void gx_fut_release(uint32_t idx);
void gx_fut_complete_o(uint64_t fh, int rc, const void *res, size_t len, uint32_t origin);
void gx_fut_complete(uint64_t fh, int rc, const void *res, size_t len);
int gx_fut_pending(uint64_t fh);
void gx_fut_undo_completing(int i);
/* Free a chunk that was handed over (an argument or a result): take it
 * from its RING state, then free it. Nothing when it is not one. */
void gx_chunk_drop(gx_off off);

/* task.c */
gx_runtab *gx_runtab_of(int i);
gx_stat_fn *gx_task_stat(uint64_t fn, uint64_t name);
void gx_task_answer(const gx_task_rec *r, gx_brk *b, int rc, int refused, int may_run);
void gx_task_fail(const gx_task_rec *r, int rc, int may_run);
void gx_task_drop(const gx_task_rec *r, int rc);
void gx_task_start(const gx_task_rec *r, int stolen, int cancel);
void gx_task_start_helped(const gx_task_rec *r);
void gx_task_spares_fini(void);

/* balance.c */
int gx_active(int i);
int gx_par_pick(int64_t cost);
void gx_nudge_idle(int busy);
void gx_cost_learn(uint64_t fn, int64_t ns);
int64_t gx_cost_of(uint64_t fn);

/* worker.c */
_Noreturn void gx_worker_main(int i);
int64_t gx_heartbeat_every(void);
int gx_main_help(void);

/* spawner.c */
_Noreturn void gx_spawner(int rfd, int parent);
void gx_par_signals(void);
void gx_par_signals_reset(void);

/* autoscale.c, watch.c, watchdog.c: main's coroutines */
void gx_autoscale(void *arg);
/* dchan.c: worker i died: its receivers blocked on any channel are gone. */
void gx_dch_forget_worker(int i);
/* Act on worker i found dead (its slot is DEAD): re-runs, repair, restart. Never parks. */
void gx_handle_death(int i, int32_t pid);
/* spawner.c: what the spawner tells main over their socket (the one
 * channel between them that no other process can write). */
typedef struct gx_spawn_report {
	int32_t kind; /* GX_REP_FORKED or GX_REP_REAPED */
	int32_t slot;
	int32_t pid;
	int32_t status; /* REAPED: the wait status */
} gx_spawn_report;
enum { GX_REP_FORKED = 1, GX_REP_REAPED = 2 };
/* watch.c: main's reader of those reports (a coroutine). */
void gx_reports(void *arg);
void gx_watch(void *arg);
void gx_watchdog(void *arg);
/* watchdog.c: one look at worker i's running table for tasks past limit
 * (their futures fail with -ETIMEDOUT, once); how many are past it. */
int gx_check_timeouts(int i, int64_t now, int64_t limit);
int gx_pidfd_open(int32_t pid);
void gx_requeue_fini(void);

#endif
