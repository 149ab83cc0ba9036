/*
 * gx_serve's master: the listeners, the worker processes, the signals.
 *
 * What: the calling process binds every listener, forks the workers
 * (worker.c runs each), then waits on one signalfd for SIGCHLD, SIGTERM,
 * SIGINT and SIGHUP. It never runs coroutines itself.
 *
 * Invariants:
 *  - the listening sockets are bound once, here (listen.c), held open by
 *    the master for the server's life and inherited by every worker, so
 *    a worker that stops or dies closes no accept queue: the connections
 *    waiting there go to its replacement (or the other workers);
 *  - a worker is in one of three states in the master's table: running,
 *    retiring (sent SIGTERM by a drain or a rolling restart: its exit is
 *    expected) or gone; only a running worker's death counts against the
 *    restart limit and gets it replaced;
 *  - a rolling restart forks the new worker and waits until it reports
 *    that it accepts (a byte on a pipe) before it tells the old one to
 *    drain, so some worker always accepts;
 *  - pids are the master's own (fork's return), never read from shared
 *    memory; workers die with the master (PR_SET_PDEATHSIG).
 *
 * Rejected: a master that runs gx_run (it has nothing
 * to serve, and a loop only to wait on signals costs more than poll).
 */
#include "serve/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/sched.h"

#include <gonex/io.h>
#include <gonex/time.h>

void gx_serve_config_init(gx_serve_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof *cfg);
	cfg->pin = 1;
	cfg->reuseport = 1;
	cfg->backlog = 4096;
	cfg->max_conns = 10000;
	cfg->nodelay = 1;
	cfg->drain_ns = 10 * GX_SECOND;
	cfg->idle_ns = 60 * GX_SECOND;
	cfg->read_ns = 10 * GX_SECOND;
}

static int gx_serve_bad(const char *what)
{
	fprintf(stderr, "gonex: serve: %s\n", what);
	return -EINVAL;
}

static int gx_serve_check(const gx_serve_config *c, gx_serve_fn handler)
{
	if (!c || !handler)
		return gx_serve_bad("a configuration and a handler are needed");
	if (!c->listen[0])
		return gx_serve_bad("no listener: set listen[0] (\"host:port\" or \"unix:/path\")");
	if (c->workers < 0 || c->workers > GX_SERVE_MAX_WORKERS)
		return gx_serve_bad("workers must be 0 (one per CPU) to 256");
	if ((c->pin != 0 && c->pin != 1) || (c->nodelay != 0 && c->nodelay != 1) ||
	    (c->reuseport != 0 && c->reuseport != 1))
		return gx_serve_bad("pin, reuseport and nodelay are 0 or 1");
	if (c->busy_poll_us < 0 || c->busy_poll_us > 1000000)
		return gx_serve_bad("busy_poll_us must be 0 (off) to 1000000");
	if (c->backlog < 1 || c->max_conns < 1)
		return gx_serve_bad("backlog and max_conns must be at least 1");
	if (c->drain_ns < 0 || c->idle_ns < 0 || c->read_ns < 0)
		return gx_serve_bad("drain_ns, idle_ns and read_ns must not be negative");
	if (c->conn_cap > (64u << 20))
		return gx_serve_bad("conn_cap is at most 64 MiB (0: 16 KiB)");
	if (c->runtime && gx_config_validate(c->runtime) < 0)
		return -EINVAL; /* it said why */
	return 0;
}

/* The workers' count and CPUs: one per CPU of the mask unless asked. */
static int gx_serve_cpus(gx_server *s)
{
	cpu_set_t m;
	int cpus[GX_SERVE_MAX_WORKERS], n = 0;
	if (sched_getaffinity(0, sizeof m, &m) == 0)
		for (int c = 0; c < CPU_SETSIZE && n < GX_SERVE_MAX_WORKERS; c++)
			if (CPU_ISSET(c, &m))
				cpus[n++] = c;
	if (n == 0)
		cpus[n++] = -1;
	s->nworkers = s->cfg.workers ? s->cfg.workers : n;
	for (int i = 0; i < s->nworkers; i++)
		s->cpu[i] = s->cfg.pin && cpus[0] >= 0 ? cpus[i % n] : -1;
	return 0;
}

/* ---- workers ---- */

enum { GX_SW_GONE = 0, GX_SW_RUNNING, GX_SW_RETIRING };

typedef struct gx_sworker {
	pid_t pid;
	int state;
} gx_sworker;

typedef struct gx_master {
	gx_server *s;
	int sfd;                           /* signalfd: CHLD, TERM, INT, HUP */
	sigset_t old;                      /* the caller's mask, put back at the end */
	gx_sworker w[GX_SERVE_MAX_WORKERS]; /* worker i's current process */
	gx_sworker old_w[GX_SERVE_MAX_WORKERS]; /* a retiring one per index */
	uint32_t restart_max;
	int64_t window_ns;
	int64_t restarts[1000]; /* times of the restarts in the window (ring) */
	uint32_t nrestarts;
	int draining;
	int rc;
} gx_master;

/* Fork worker i; wait until it accepts. Its pid, or -errno. */
static pid_t gx_serve_fork(gx_master *m, int i)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid == 0) {
		close(p[0]);
		close(m->sfd);
		_exit(gx_serve_worker(m->s, i, p[1]));
	}
	close(p[1]);
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	char b = 0;
	int ok = poll(&pf, 1, 10000) == 1 && read(p[0], &b, 1) == 1;
	close(p[0]);
	if (!ok) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -ECHILD; /* it died or hung on the way up */
	}
	m->s->page->w[i].cpu = m->s->cpu[i];
	atomic_store_explicit(&m->s->page->w[i].pid, pid, memory_order_relaxed);
	return pid;
}

/* One more restart now: within the limit? */
static bool gx_serve_may_restart(gx_master *m)
{
	int64_t now = gx_now();
	uint32_t in = 0;
	for (uint32_t k = 0; k < m->nrestarts && k < m->restart_max; k++)
		in += now - m->restarts[k] < m->window_ns;
	if (in >= m->restart_max)
		return false;
	m->restarts[m->nrestarts++ % m->restart_max] = now;
	return true;
}

static void gx_serve_drain_all(gx_master *m)
{
	m->draining = 1;
	for (int i = 0; i < m->s->nworkers; i++) {
		if (m->w[i].state == GX_SW_RUNNING) {
			kill(m->w[i].pid, SIGTERM);
			m->w[i].state = GX_SW_RETIRING;
		}
	}
}

/* A child exited: note it; replace a running worker that died. */
static void gx_serve_reaped(gx_master *m, pid_t pid, int status)
{
	const gx_serve_config *c = &m->s->cfg;
	bool died = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	for (int i = 0; i < m->s->nworkers; i++) {
		if (m->old_w[i].pid == pid) {
			m->old_w[i] = (gx_sworker){0, GX_SW_GONE};
			if (c->on_exit)
				c->on_exit(pid, i, died, c->exit_arg);
			return;
		}
		if (m->w[i].pid != pid)
			continue;
		if (c->on_exit) /* before a replacement may touch what it left */
			c->on_exit(pid, i, died, c->exit_arg);
		int was = m->w[i].state;
		m->w[i] = (gx_sworker){0, GX_SW_GONE};
		atomic_store_explicit(&m->s->page->w[i].pid, 0, memory_order_relaxed);
		atomic_store_explicit(&m->s->page->w[i].active, 0, memory_order_relaxed);
		if (was != GX_SW_RUNNING || m->draining)
			return;
		pid_t np = gx_serve_may_restart(m) ? gx_serve_fork(m, i) : -ECHILD;
		if (np > 0) {
			m->w[i] = (gx_sworker){np, GX_SW_RUNNING};
			atomic_fetch_add_explicit(&m->s->page->w[i].restarts, 1, memory_order_relaxed);
			return;
		}
		fprintf(stderr, "gonex: serve: worker %d died and cannot be replaced (%s): draining\n", i,
			np == -ECHILD ? "restart limit" : strerror((int)-np));
		m->rc = -ECHILD;
		gx_serve_drain_all(m);
		return;
	}
}

/* SIGHUP: worker by worker, a new one accepting before the old drains. */
static void gx_serve_roll(gx_master *m)
{
	for (int i = 0; i < m->s->nworkers && !m->draining; i++) {
		if (m->w[i].state != GX_SW_RUNNING || m->old_w[i].pid)
			continue; /* gone (being replaced) or still retiring from the last roll */
		pid_t np = gx_serve_fork(m, i);
		if (np < 0) {
			fprintf(stderr, "gonex: serve: restart of worker %d failed (%s); it keeps running\n", i,
				strerror((int)-np));
			continue;
		}
		m->old_w[i] = (gx_sworker){m->w[i].pid, GX_SW_RETIRING};
		kill(m->old_w[i].pid, SIGTERM);
		m->w[i] = (gx_sworker){np, GX_SW_RUNNING};
	}
}

static bool gx_serve_any_left(const gx_master *m)
{
	for (int i = 0; i < m->s->nworkers; i++)
		if (m->w[i].pid || m->old_w[i].pid)
			return true;
	return false;
}

static void gx_serve_on_signal(gx_master *m, uint32_t sig)
{
	if (sig == SIGCHLD) {
		/* only our own workers: the caller's other children are theirs */
		for (int i = 0; i < m->s->nworkers; i++) {
			pid_t p1 = m->w[i].pid, p2 = m->old_w[i].pid;
			int st;
			if (p1 && waitpid(p1, &st, WNOHANG) == p1)
				gx_serve_reaped(m, p1, st);
			if (p2 && waitpid(p2, &st, WNOHANG) == p2)
				gx_serve_reaped(m, p2, st);
		}
	} else if (sig == SIGHUP) {
		gx_serve_roll(m);
	} else if (!m->draining) {
		gx_serve_drain_all(m);
	}
}

/* Wait on the signals until every worker is gone after a drain. A drain
 * that outlasts its deadline by 10 s ends with SIGKILL. */
static void gx_serve_loop(gx_master *m)
{
	int64_t kill_at = 0;
	while (!m->draining || gx_serve_any_left(m)) {
		if (m->draining && !kill_at)
			kill_at = gx_now() + m->s->cfg.drain_ns + 10 * GX_SECOND;
		struct pollfd pf = {.fd = m->sfd, .events = POLLIN};
		int n = poll(&pf, 1, kill_at ? 100 : -1);
		if (kill_at && gx_now() > kill_at)
			for (int i = 0; i < m->s->nworkers; i++) {
				if (m->w[i].pid)
					kill(m->w[i].pid, SIGKILL);
				if (m->old_w[i].pid)
					kill(m->old_w[i].pid, SIGKILL);
			}
		struct signalfd_siginfo si;
		while (n > 0 && read(m->sfd, &si, sizeof si) == (ssize_t)sizeof si)
			gx_serve_on_signal(m, si.ssi_signo);
	}
}

static int gx_serve_start(gx_master *m)
{
	for (int i = 0; i < m->s->nworkers; i++) {
		pid_t pid = gx_serve_fork(m, i);
		if (pid < 0) {
			fprintf(stderr, "gonex: serve: worker %d did not start (%s)\n", i, strerror((int)-pid));
			m->rc = (int)pid;
			gx_serve_drain_all(m);
			return (int)pid;
		}
		m->w[i] = (gx_sworker){pid, GX_SW_RUNNING};
	}
	if (m->s->cfg.on_ready) {
		gx_serve_info info = {.workers = m->s->nworkers, .nlisten = m->s->nlisten};
		memcpy(info.port, m->s->port, sizeof info.port);
		m->s->cfg.on_ready(&info, m->s->cfg.ready_arg);
	}
	return 0;
}

static void gx_serve_limits(gx_master *m)
{
	gx_config c;
	if (m->s->cfg.runtime)
		c = *m->s->cfg.runtime;
	else
		gx_config_init(&c);
	gx_config_from_env(&c);
	m->restart_max = c.restart_max >= 1 && c.restart_max <= 1000 ? c.restart_max : 5;
	m->window_ns = (int64_t)c.restart_window_ms * GX_MILLISECOND;
}

int gx_serve(const gx_serve_config *cfg, gx_serve_fn handler, void *arg)
{
	if (gx_sched_active())
		return -EBUSY;
	int rc = gx_serve_check(cfg, handler);
	if (rc < 0)
		return rc;
	static gx_master m; /* big; one server per process at a time */
	static gx_server s;
	memset(&m, 0, sizeof m);
	memset(&s, 0, sizeof s);
	s.cfg = *cfg;
	s.handler = handler;
	s.arg = arg;
	m.s = &s;
	gx_serve_cpus(&s);
	if ((rc = gx_serve_listen(&s)) < 0)
		return rc;
	s.page_fd = -1;
	s.page = gx_serve_page_make(s.nworkers, &s.page_fd);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &m.old);
	m.sfd = !s.page ? -1 : signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m.sfd < 0) {
		rc = -ENOMEM;
		goto out;
	}
	gx_serve_limits(&m);
	gx_serve_start(&m);
	gx_serve_loop(&m);
	rc = m.rc;
	if (rc == 0)
		for (int i = 0; i < s.nworkers; i++)
			rc += (int)atomic_load_explicit(&s.page->w[i].cancelled, memory_order_relaxed);
	close(m.sfd);
out:
	sigprocmask(SIG_SETMASK, &m.old, NULL);
	gx_serve_page_free(s.page, s.page_fd);
	gx_serve_unbind(&s);
	return rc;
}
