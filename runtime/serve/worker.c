/*
 * gx_serve's worker: accept loops, one coroutine per connection, drain.
 *
 * What: a forked worker pins itself, then runs gx_run: one acceptor
 * coroutine per listener (gx_listener: multishot accept on io_uring)
 * spawns a coroutine per connection, which calls the handler and closes
 * the socket. The main coroutine waits for SIGTERM/SIGINT (a signalfd:
 * the master blocked them before it forked) and drains.
 *
 * Drain: the acceptors stop (gx_listener_pause: no new accepts, but the
 * connections already accepted from the kernel are still handed out and
 * served); open connections get drain_ns; then their context is cancelled
 * and their sockets shut down (a handler blocked in a receive sees the
 * end of the stream), and the worker exits once they are all closed.
 *
 * Invariants: `open` lists exactly the connections whose handler runs
 * (each record is allocated by the acceptor, linked by its coroutine
 * before the handler, unlinked and freed after); the semaphore holds one
 * unit per open connection, at most max_conns; figures in the shared page are written only by this
 * worker's slot.
 *
 * Rejected: closing the listener to stop accepting (the master and the
 * other workers still use it); a timer per connection for the drain (one
 * deadline for the whole worker does).
 */
#include "serve/serve.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gonex/coro.h>
#include <gonex/io.h>
#include <gonex/runtime.h>
#include <gonex/sync.h>
#include <gonex/time.h>

typedef struct gx_sconn {
	gx_serve_conn c;
	struct gx_sconn *prev, *next;
} gx_sconn;

typedef struct gx_sworker_rt {
	gx_server *s;
	int index;
	int ready_fd;
	gx_serve_figs *fig;
	gx_listener *l[GX_SERVE_MAX_LISTEN];
	gx_ctx *stop; /* cancelled when the drain starts (acceptors) */
	gx_ctx *ctx;  /* cancelled at the drain deadline (handlers) */
	gx_sem slots; /* one unit per open connection */
	gx_wg acceptors, conns;
	gx_sconn open; /* list head */
} gx_sworker_rt;

static gx_sworker_rt W;

static void gx_sconn_run(void *arg)
{
	gx_sconn *k = arg;
	k->prev = &W.open; /* linked while the handler runs */
	k->next = W.open.next;
	W.open.next->prev = k;
	W.open.next = k;
	W.s->handler(&k->c, W.s->arg);
	k->prev->next = k->next;
	k->next->prev = k->prev;
	if (gx_conn_timed_out(k->c.conn))
		atomic_fetch_add_explicit(&W.fig->deadline, 1, memory_order_relaxed);
	gx_conn_free(k->c.conn);
	gx_close(k->c.fd);
	free(k);
	atomic_fetch_sub_explicit(&W.fig->active, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&W.fig->closed, 1, memory_order_relaxed);
	gx_sem_release(&W.slots, 1);
	gx_wg_done(&W.conns);
}

/* Start a connection's coroutine, with its record on the heap (the
 * spawner's frame may be gone before the new coroutine first runs). */
static void gx_sconn_start(int fd, int li)
{
	atomic_fetch_add_explicit(&W.fig->accepted, 1, memory_order_relaxed);
	gx_sconn *k = calloc(1, sizeof *k);
	int rc = k ? gx_conn_open(&k->c.conn, fd, W.s->cfg.conn_cap) : -ENOMEM;
	if (rc == 0) {
		k->c = (gx_serve_conn){.fd = fd, .conn = k->c.conn, .worker = W.index, .listener = li, .ctx = W.ctx};
		gx_conn_limits(k->c.conn, W.s->cfg.idle_ns, W.s->cfg.read_ns);
		gx_conn_counters(k->c.conn, &W.fig->bytes_in, &W.fig->bytes_out);
		gx_wg_add(&W.conns, 1);
		atomic_fetch_add_explicit(&W.fig->active, 1, memory_order_relaxed);
		if (gx_go(gx_sconn_run, k) >= 0)
			return;
		gx_wg_done(&W.conns);
		atomic_fetch_sub_explicit(&W.fig->active, 1, memory_order_relaxed);
	}
	if (k)
		gx_conn_free(k->c.conn);
	free(k);
	gx_close(fd); /* out of memory: the client sees a reset */
	gx_sem_release(&W.slots, 1);
}

static void gx_sacceptor(void *arg)
{
	int li = (int)(intptr_t)arg;
	for (;;) {
		if (gx_sem_acquire(&W.slots, 1, gx_ctx_until(W.stop)) < 0) {
			/* draining at max_conns: what the listener holds still
			 * gets served, one slot at a time */
			if (gx_sem_acquire(&W.slots, 1, GX_FOREVER) < 0)
				break;
		}
		int fd = gx_listener_accept(W.l[li], GX_FOREVER);
		if (fd < 0) {
			gx_sem_release(&W.slots, 1);
			if (fd == -ECANCELED)
				break; /* paused and empty: the drain */
			gx_sleep(10 * GX_MILLISECOND); /* out of fds: let some close */
			continue;
		}
		gx_sconn_start(fd, li);
	}
	gx_wg_done(&W.acceptors);
}

/* The drain deadline passed: cancel and shut down what is still open. */
static void gx_sworker_cancel_open(void)
{
	uint64_t n = 0;
	gx_ctx_cancel(W.ctx);
	for (gx_sconn *k = W.open.next; k != &W.open; k = k->next, n++)
		shutdown(k->c.fd, SHUT_RDWR);
	atomic_fetch_add_explicit(&W.fig->cancelled, n, memory_order_relaxed);
}

static int gx_sworker_main(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || gx_ctx_with_cancel(gx_ctx_background(), &W.stop) < 0 ||
	    gx_ctx_with_cancel(gx_ctx_background(), &W.ctx) < 0)
		return 1;
	W.open.next = W.open.prev = &W.open;
	gx_sem_init(&W.slots, W.s->cfg.max_conns);
	for (int i = 0; i < W.s->nlisten; i++) {
		if (gx_listener_start(&W.l[i], W.s->lfd[i][W.index]) < 0)
			return 1;
		gx_wg_add(&W.acceptors, 1);
		gx_go(gx_sacceptor, (void *)(intptr_t)i);
	}
	char one = 1;
	if (write(W.ready_fd, &one, 1) != 1)
		return 1;
	close(W.ready_fd);
	struct signalfd_siginfo si;
	while (gx_read(sfd, &si, sizeof si, GX_FOREVER) != (ssize_t)sizeof si)
		;
	/* drain */
	gx_ctx_cancel(W.stop);
	for (int i = 0; i < W.s->nlisten; i++)
		gx_listener_pause(W.l[i]);
	gx_wg_wait(&W.acceptors, GX_FOREVER);
	if (gx_wg_wait(&W.conns, gx_timeout(W.s->cfg.drain_ns)) < 0) {
		gx_sworker_cancel_open();
		gx_wg_wait(&W.conns, gx_timeout(5 * GX_SECOND));
	}
	for (int i = 0; i < W.s->nlisten; i++)
		gx_listener_stop(W.l[i]);
	gx_close(sfd);
	return 0;
}

int gx_serve_worker(gx_server *s, int index, int ready_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1; /* the master is already gone */
	if (s->cpu[index] >= 0) {
		cpu_set_t c;
		CPU_ZERO(&c);
		CPU_SET(s->cpu[index], &c);
		sched_setaffinity(0, sizeof c, &c);
	}
	char name[16];
	snprintf(name, sizeof name, "gonex-serve %d", index);
	prctl(PR_SET_NAME, name);
	signal(SIGPIPE, SIG_IGN);
	memset(&W, 0, sizeof W);
	W.s = s;
	W.index = index;
	W.ready_fd = ready_fd;
	W.fig = &s->page->w[index];
	gx_config c;
	if (s->cfg.runtime)
		c = *s->cfg.runtime;
	else
		gx_config_init(&c);
	c.workers = 0; /* a serving worker runs its connections itself */
	int rc = gx_run(&c, gx_sworker_main, NULL);
	return rc == 0 ? 0 : 1;
}
