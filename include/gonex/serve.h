/*
 * gonex/serve.h: a server on every core.
 *
 * gx_serve(cfg, handler, arg) is the nginx process model on this runtime.
 * The calling process becomes the master: it binds the listeners (TCP
 * "host:port" over IPv4 or IPv6, and Unix sockets "unix:/path"), forks the
 * worker processes (by default one per CPU of its affinity mask, each
 * pinned to its CPU) and supervises them. Each worker runs its own loop
 * (gx_run with cfg->runtime) and gives each connection its own coroutine,
 * which calls handler(conn, arg) and closes the connection when it
 * returns.
 *
 * The listening sockets are the master's, held open for the server's
 * life: by default each worker has its own TCP socket in an SO_REUSEPORT
 * group (the kernel spreads connections evenly), or with reuseport = 0
 * all share one. Either way a worker that stops or dies closes no
 * socket, so no connection waiting in a kernel queue is lost: its
 * replacement (a rolling restart's new worker, already accepting, or the
 * one that takes a dead worker's slot) accepts from the same queue.
 *
 * Signals, sent to the master:
 *   SIGTERM, SIGINT  drain: every worker stops accepting; open connections
 *                    get cfg->drain_ns to finish, then their context is
 *                    cancelled and their sockets shut down; gx_serve
 *                    returns once every worker has exited.
 *   SIGHUP           rolling restart: worker by worker, a new one is forked
 *                    and accepting before the old one drains.
 * A worker that dies is replaced, at most GONEX_RESTART_MAX times within
 * GONEX_RESTART_WINDOW_MS (cfg->runtime's restart_max and
 * restart_window_ms); past that the server drains and gx_serve returns
 * -ECHILD.
 *
 * Past cfg->max_conns open connections, a worker stops accepting until
 * one closes; new connections wait in the kernel's accept queue (up to
 * cfg->backlog), where the other workers may take them. Past the backlog
 * the kernel drops new connection attempts (the client retries its SYN).
 *
 * A worker that dies takes with it the connections it had accepted: the
 * ones it was serving, and at most a turn's worth that its multishot
 * accept had taken but not yet handed to a coroutine (gonex/io.h's
 * gx_listener holds at most 16 beyond that). Their clients see a reset.
 *
 * Figures: every worker counts, in a page the master shares (a memfd
 * named "gonex-serve"): accepted, active, closed, closed at an idle or
 * read limit, cancelled at a drain deadline, bytes in and out through
 * gx_conn. gx_serve_stats_read reads them from another process of the
 * same user (gonex-stat shows them).
 */
#ifndef GONEX_SERVE_H
#define GONEX_SERVE_H

#include <stdint.h>

#include <gonex/api.h>
#include <gonex/config.h>
#include <gonex/conn.h>
#include <gonex/context.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GX_SERVE_MAX_LISTEN 8
#define GX_SERVE_MAX_WORKERS 256

/* One connection, as the handler gets it. */
typedef struct gx_serve_conn {
	int fd;        /* the socket; closed by gx_serve after the handler */
	gx_conn *conn; /* buffered over fd, with cfg's idle and read limits;
			* flushed and freed by gx_serve after the handler */
	int worker;    /* this worker's index, 0..workers-1 */
	int listener;  /* which of cfg->listen it came through */
	gx_ctx *ctx;   /* cancelled when the drain deadline passes */
} gx_serve_conn;

typedef void (*gx_serve_fn)(gx_serve_conn *conn, void *arg);

/* What the master reports once every worker is accepting. */
typedef struct gx_serve_info {
	int workers;
	int nlisten;
	int port[GX_SERVE_MAX_LISTEN]; /* each TCP listener's port (0 for Unix) */
} gx_serve_info;

typedef struct gx_serve_config {
	/* "host:port" ("0.0.0.0:8080", "[::1]:0", ":8080" for any IPv4
	 * address), or "unix:/path"; up to GX_SERVE_MAX_LISTEN, the rest NULL */
	const char *listen[GX_SERVE_MAX_LISTEN];
	int workers;         /* 0: one per CPU of the affinity mask (default) */
	int pin;             /* 1: worker i pinned to the i-th CPU of the mask (default) */
	int reuseport;       /* 1: a TCP socket per worker in an SO_REUSEPORT group (default);
			      * 0: one socket all workers accept from */
	int backlog;         /* listen(2) backlog, default 4096 */
	int max_conns;       /* open connections per worker, default 10000 */
	int nodelay;         /* TCP_NODELAY on accepted sockets, default 1 */
	int busy_poll_us;    /* SO_BUSY_POLL on accepted TCP sockets: a blocking
			      * read busy polls the device queue this long,
			      * 0..1000000 us, default 0 (off). Raising it above
			      * net.core.busy_read may need CAP_NET_ADMIN. Both
			      * options are set once on the listening sockets,
			      * which accepted ones inherit. */
	int64_t drain_ns;    /* time open connections get on SIGTERM, default 10 s */
	int64_t idle_ns;     /* conn reads wait at most this between messages, default 60 s (0: none) */
	int64_t read_ns;     /* ... and this in the middle of one, default 10 s (0: none) */
	size_t conn_cap;     /* conn buffer bytes (gx_conn_open's cap), default 16 KiB */
	const gx_config *runtime; /* each worker's gx_run configuration (NULL: defaults) */
	/* Called in the master once every worker is accepting (may be NULL). */
	void (*on_ready)(const gx_serve_info *info, void *arg);
	void *ready_arg;
	/* Called in the master after a worker process has exited and been
	 * reaped, before a replacement starts in its slot: its pid, slot, and
	 * whether it died (a signal or a non-zero exit) rather than stopped
	 * when told. Where workers share state (an arena), this is where to
	 * recover what the dead one left half done, and gx_arena_repair. */
	void (*on_exit)(int pid, int worker, int died, void *arg);
	void *exit_arg;
} gx_serve_config;

GX_API void gx_serve_config_init(gx_serve_config *cfg);

/*
 * Serve until SIGTERM or SIGINT. Returns the number of connections that
 * were still open at the drain deadline and were cancelled (0: every
 * connection finished), or -EINVAL for a bad configuration (one line on
 * stderr says what), the error of a listener that could not be bound,
 * -ECHILD when workers died faster than the restart limit allows, -EBUSY
 * when called inside gx_run.
 */
GX_API int gx_serve(const gx_serve_config *cfg, gx_serve_fn handler, void *arg);

/* ---- figures ---- */

typedef struct gx_serve_stats_worker {
	int pid;       /* 0: no process in this slot now */
	int cpu;       /* pinned CPU, or -1 */
	uint64_t accepted, active, closed, deadline, cancelled;
	uint64_t bytes_in, bytes_out;
	uint64_t restarts; /* processes that replaced a dead one in this slot */
} gx_serve_stats_worker;

typedef struct gx_serve_stats {
	int master_pid;
	int workers;
	gx_serve_stats_worker w[GX_SERVE_MAX_WORKERS];
} gx_serve_stats;

/* Read the figures of the server whose master (or any worker) is pid:
 * 0, -ENOENT when pid serves nothing (or does not exist), -EACCES for
 * another user's process, -EPROTO for a page that is not one. */
GX_API int gx_serve_stats_read(int pid, gx_serve_stats *out);

#ifdef __cplusplus
}
#endif

#endif
