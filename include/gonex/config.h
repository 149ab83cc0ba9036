/*
 * gonex/config.h: the runtime configuration.
 *
 * Fill a gx_config with gx_config_init() (the defaults), change what you
 * need, hand it to gx_run(). gx_run then applies the GONEX_* environment
 * overrides on top (see gx_config_from_env), so an experimenter can change a
 * knob without recompiling. Every field names its variable below.
 */
#ifndef GONEX_CONFIG_H
#define GONEX_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <gonex/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Event-loop backend choice (GONEX_BACKEND=auto|uring|epoll). */
typedef enum gx_backend_kind {
	GX_BACKEND_AUTO = 0, /* io_uring, epoll when io_uring cannot be set up */
	GX_BACKEND_URING = 1,
	GX_BACKEND_EPOLL = 2,
} gx_backend_kind;

/* How coroutine stacks get their guard page (GONEX_GUARD=auto|madvise|mprotect). */
typedef enum gx_guard_kind {
	GX_GUARD_AUTO = 0,     /* MADV_GUARD_INSTALL when it works, else mprotect */
	GX_GUARD_MADVISE = 1,  /* MADV_GUARD_INSTALL (Linux 6.13+), no VMA split */
	GX_GUARD_MPROTECT = 2, /* PROT_NONE page: one VMA split per stack */
} gx_guard_kind;

/* How gx_go_parallel picks a worker (GONEX_BALANCE). */
typedef enum gx_balance_kind {
	GX_BALANCE_ROUND_ROBIN = 0, /* in turn */
	GX_BALANCE_LEAST_BUSY = 1,  /* fewest queued plus running */
	GX_BALANCE_WEIGHTED = 2,    /* in proportion to gx_config.weights */
	GX_BALANCE_PREDICTIVE = 3,  /* earliest expected finish: per-function
				     * average run time times what is queued */
} gx_balance_kind;

/* What gx_run does with queued tasks when main_fn returns (GONEX_SHUTDOWN). */
typedef enum gx_shutdown_kind {
	GX_SHUTDOWN_DRAIN = 0,  /* workers finish every queued task first */
	GX_SHUTDOWN_CANCEL = 1, /* queued tasks fail with -ECANCELED */
} gx_shutdown_kind;

#define GX_MAX_WORKERS 64

typedef struct gx_config {
	/* GONEX_STACK_SIZE: default coroutine stack in bytes, descriptor
	 * included; suffixes K, M, G (powers of 1024). At least 16 KiB, at most
	 * 1 GiB, rounded up to a page. Default 64 KiB. Only touched pages cost
	 * memory. */
	size_t stack_size;
	/* GONEX_GUARD: see gx_guard_kind. Default auto. */
	gx_guard_kind guard;
	/* GONEX_BACKEND: see gx_backend_kind. Default auto. */
	gx_backend_kind backend;
	/* GONEX_RING_ENTRIES: submission queue entries, 1..32768 (the kernel
	 * rounds up to a power of two). Default 256. */
	uint32_t ring_entries;
	/* GONEX_CQ_ENTRIES: completion queue entries, 0..1048576; 0 means
	 * 16 x ring_entries, and a value below ring_entries is raised to it.
	 * Default 0. */
	uint32_t cq_entries;
	/* GONEX_DEFER_TASKRUN: 1 tries SINGLE_ISSUER|DEFER_TASKRUN first, 0
	 * starts the ladder at COOP_TASKRUN. Default 1. */
	int defer_taskrun;
	/* GONEX_SQPOLL: 1 asks for a kernel submission thread. Default 0. */
	int sqpoll;
	/* GONEX_SQPOLL_IDLE_MS: idle time before the SQPOLL thread sleeps,
	 * 0..60000. Default 1000. */
	uint32_t sqpoll_idle_ms;
	/* GONEX_SQPOLL_CPU: CPU to pin the SQPOLL thread to, -1 for none,
	 * otherwise 0..4095. Default -1. */
	int sqpoll_cpu;
	/* GONEX_BUF_COUNT: buffers in the process's io_uring buffer ring, which
	 * feeds multishot receives on stream sockets; 0 turns that off (one
	 * SQE per receive). A power of two up to 32768. Default 1024. */
	uint32_t buf_count;
	/* GONEX_BUF_SIZE: bytes per ring buffer, 512..1048576 (suffixes K,
	 * M). Default 4096. */
	uint32_t buf_size;
	/* GONEX_LOOP_SPIN_NS: how long the io_uring loop spins for new
	 * completions before it sleeps in the kernel, 0..1000000 ns; 0 never
	 * spins. Spinning trades CPU time for the cost of a sleep and a
	 * wake-up. Needs IORING_SETUP_TASKRUN_FLAG (listed as missing
	 * otherwise). Default 0. */
	int64_t loop_spin_ns;
	/* GONEX_RECV_BUNDLE: 1 lets one multishot receive completion carry
	 * several buffers (IORING_RECVSEND_BUNDLE, Linux 6.10+; listed as
	 * missing where the kernel lacks it). It matters when more than
	 * GONEX_BUF_SIZE bytes wait at once. Default 1. */
	int recv_bundle;
	/* GONEX_IOWQ_MAX: cap on io_uring's io-wq workers per process, bounded
	 * and unbounded (blocking file I/O runs there); 0 keeps the kernel's
	 * default. 0..1024. Default 4. */
	uint32_t iowq_max;
	/* GONEX_FIXED_FILES: slots in the ring's registered file table
	 * (io_uring only), 0..65536; 0 turns it off. A socket that receives
	 * through the multishot receive takes a slot, and its receives and
	 * sends then name the slot (IOSQE_FIXED_FILE), which spares the kernel
	 * a file lookup and reference per operation; the slot goes back when
	 * the socket is closed. The fd itself stays a normal descriptor. With
	 * every slot taken, sockets go on without one. The table is cut to
	 * the RLIMIT_NOFILE soft limit (the kernel's cap). Default 4096. */
	uint32_t fixed_files;
	/* GONEX_NAPI_BUSY_US: NAPI busy polling for the sockets this process
	 * waits on, in microseconds, 0..1000000; 0 leaves it off. On io_uring
	 * the ring polls the device queues of the sockets it serves
	 * (IORING_REGISTER_NAPI, Linux 6.9+); on epoll the epoll instance does
	 * (EPIOCSPARAMS, Linux 6.9+). Where the kernel lacks it, "NAPI" is
	 * listed among the missing features and nothing else changes. It
	 * helps only on devices with NAPI (not loopback). Default 0. */
	uint32_t napi_busy_us;
	/* GONEX_NAPI_PREFER_BUSY: 1 also asks the kernel to prefer busy
	 * polling over interrupts (prefer_busy_poll). Default 0. */
	int napi_prefer_busy;
	/* GONEX_LOG: 1 prints one line per process naming the backend, kernel,
	 * ring flags and missing features (printed anyway on a fallback).
	 * Default 0. */
	int log;
	/* GONEX_SHM_SIZE: bytes of the shared arena (gonex/shm.h), 4 MiB..1 TiB,
	 * suffixes K, M, G. Memory is used as touched (hugetlb reserves it
	 * all). Default 64 MiB. */
	size_t shm_size;
	/* GONEX_HUGEPAGES: the best memory tier the arena tries:
	 * auto (hugetlb, then THP, then 4 KiB; 0), hugetlb (1), thp (2: skip
	 * hugetlb), off (3: 4 KiB pages). Default auto. */
	int hugepages;
	/* GONEX_SPIN_NS: how long a blocking shared-memory wait spins before
	 * it sleeps on a futex, 0..1000000000 ns. Default 20000. */
	int64_t spin_ns;

	/* ---- the parallel runtime (gonex/parallel.h) ---- */
	/* GONEX_WORKERS: worker processes, 0..64, or -1 for one per CPU in
	 * the process's affinity mask. 0 runs gx_go_parallel tasks as local
	 * coroutines. Default 0. */
	int workers;
	/* GONEX_WORKERS_MIN, GONEX_WORKERS_MAX: the autoscaling range; 0
	 * means `workers` (min) and `workers` (max). Default 0, 0. */
	int workers_min;
	int workers_max;
	/* GONEX_WORKER_TIMEOUT_MS: a task running longer fails its future
	 * with -ETIMEDOUT; 0 for none. Default 0. */
	uint32_t worker_timeout_ms;
	/* GONEX_AUTO_RESTART: restart a worker that died. Default 1. */
	int auto_restart;
	/* GONEX_CPU_AFFINITY: pin worker i to the i-th allowed CPU. Default 1. */
	int cpu_affinity;
	/* GONEX_NUMA_AWARE: a worker's pool chunks come from its CPU's NUMA
	 * node. Default 1. */
	int numa_aware;
	/* GONEX_POOL_SIZE: bytes of an arena the pools may carve (2 MiB
	 * slabs), 0 for all of it; past it gx_pool_alloc is -ENOMEM. Default 0. */
	size_t pool_size;
	/* GONEX_ZERO_COPY: arguments and results over GX_TASK_INLINE bytes
	 * travel as pool chunks handed over without a copy; 0 copies them
	 * through a bounce chunk the sender frees. Default 1. */
	int zero_copy;
	/* GONEX_BALANCE: see gx_balance_kind (round-robin, least-busy,
	 * weighted, predictive). Default least-busy. */
	gx_balance_kind balance;
	/* GONEX_WEIGHTS: comma-separated weights for the weighted strategy,
	 * one per worker, 1..1000 (missing ones are 1). */
	char weights[256];
	/* GONEX_WORK_STEALING: an idle worker takes half of the fullest inbox.
	 * Default 1. */
	int work_stealing;
	/* GONEX_AUTOSCALING: grow and shrink the workers between min and max
	 * from how long tasks wait. Default 0. */
	int autoscaling;
	/* GONEX_CIRCUIT_BREAKER, GONEX_HEALTH_MONITORING,
	 * GONEX_GRACEFUL_DEGRADATION: fault tolerance switches. Defaults 0, 1, 1. */
	int circuit_breaker;
	int health_monitoring;
	int graceful_degradation;
	/* GONEX_SHUTDOWN: drain or cancel, see gx_shutdown_kind. Default drain. */
	gx_shutdown_kind shutdown;
	/* GONEX_RETRY_ATTEMPTS: times a task that was running (or taken) in a
	 * worker that died is run again elsewhere, 0..100; after that its
	 * future fails with -EOWNERDEAD. At-least-once. Default 2. */
	uint32_t retry_attempts;
	/* GONEX_RESTART_MAX, GONEX_RESTART_WINDOW_MS: restart intensity: at
	 * most that many restarts of workers within the window (1..1000,
	 * 1..3600000 ms); past it a dead worker stays dead and the runtime
	 * degrades (graceful_degradation: tasks run in the main process once
	 * no worker is left; otherwise gx_go_parallel fails with -ESHUTDOWN).
	 * Defaults 5 and 10000. */
	uint32_t restart_max;
	uint32_t restart_window_ms;
	/* GONEX_WORKER_MAX_RSS: a worker whose resident memory passes this
	 * many bytes (suffixes K, M, G) stops taking tasks, finishes what it
	 * has and is replaced (not counted against the restart limit); 0 for
	 * no limit. Checked every 100 ms. Default 0. */
	size_t worker_max_rss;

	/* ---- observability (gonex/stats.h, gonex/dump.h) ---- */
	/* GONEX_STATS: keep per-function and per-worker figures in the arena
	 * (gx_stats_snapshot, perf/gonex-stat). Default 1. */
	int stats;
	/* GONEX_DUMP_SIGNAL: SIGQUIT makes every process of the runtime dump
	 * its coroutines to stderr (gx_dump_all) instead of quitting. Default 0. */
	int dump_signal;

	/* ---- added later: new fields go last ---- */
	/* GONEX_MAIN_HELPS: when the main process begins to wait on a future
	 * that is not done (gx_future_wait, _get), it takes queued tasks from
	 * the workers' inboxes, as an idle worker steals them (only with
	 * work_stealing on, only from an inbox with two or more queued), and
	 * runs them in coroutines of its own, one at a time, until its future
	 * is done, none is left, or one it took blocks (then it waits as
	 * without help). Not while the runtime stops; a drain waits for the
	 * tasks main took. Off by default, because a task run in main has
	 * none of a worker's isolation: a crash takes the whole program down;
	 * a task that hangs or hogs the CPU holds main, past the deadline of
	 * the wait that took it; no watchdog timeout, re-run or memory limit
	 * applies; it shares main's memory and locks (a task that takes a
	 * gx_mutex main holds while it waits never ends), and gx_worker_id()
	 * is -1 there. Turn it on for trusted tasks when main would otherwise
	 * idle on a core; tiny tasks run faster on the workers alone.
	 * Default 0. */
	int main_helps;
} gx_config;

/* Fill *cfg with the defaults listed above. */
GX_API void gx_config_init(gx_config *cfg);

/*
 * Apply the GONEX_* environment variables to *cfg. Values are parsed
 * strictly: a bad value prints one line naming the variable and what it
 * accepts, and returns -EINVAL with *cfg unchanged. An unknown GONEX_*
 * name gets a warning. Returns 0 on success.
 */
GX_API int gx_config_from_env(gx_config *cfg);

/* Check the fields of *cfg; -EINVAL (with a message naming the field) when
 * one is out of range. */
GX_API int gx_config_validate(const gx_config *cfg);

#ifdef __cplusplus
}
#endif

#endif
