/*
 * Death detection (main process): which process is which worker comes from
 * the spawner's reports on main's own socket (gx_reports); a coroutine per
 * worker slot waits on that process's pidfd and acts on its exit at once.
 *
 * Invariants: the pids main watches, signals and repairs after come from
 * the spawner's reports, never from the arena, so a pid or a state a peer
 * wrote into a slot is never watched, signalled or taken for a death; a
 * pidfd is opened only for a pid whose parent is the spawner (a reused pid
 * is not); each process's death is handled once (handled[i]), by its
 * watcher or, for one no pidfd saw, by the report of its reaping; the
 * watchers and the reader go on while the runtime stops and leave when
 * their slot has no process left or the stop context ends, dropping their
 * reference to that context before main_fn returns.
 *
 * While it waits, its pidfd and the checked pid are what the watchdog uses
 * to kill or to read /proc.
 *
 * Rejected: polling with kill(pid, 0) (a reused pid passes); acting on a
 * slot's DEAD state (a peer can write it: the supervisor repaired a live
 * worker and started a second one in its slot); pids read from the slots.
 */
#include "par/par.h"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <gonex/context.h>
#include <gonex/io.h>

/* ---- death detection: a pidfd per running worker (main process) ---- */

int gx_pidfd_open(int32_t pid)
{
	return (int)syscall(SYS_pidfd_open, (int)pid, 0);
}

/* The parent of pid; -ESRCH when it is gone (or a zombie), another
 * -errno when /proc could not tell (no fd left, say). */
static int32_t gx_ppid(int32_t pid)
{
	char st;
	int32_t pp;
	int rc = gx_proc_stat(pid, &st, &pp);
	if (rc < 0)
		return rc;
	return st == 'Z' || st == 'X' ? -ESRCH : pp;
}

/* Has the worker pid, seen running in a slot, exited? 1 yes, 0 no, -1
 * cannot tell now (out of fds: try again later). Opens *fd on the way. */
static int gx_worker_gone(int32_t pid, int *fd)
{
	*fd = gx_pidfd_open(pid);
	if (*fd < 0 && errno == ESRCH)
		return 1; /* reaped already */
	int32_t pp = gx_ppid(pid);
	if (pp == -ESRCH || (pp > 0 && pp != gx_pl.spawner_pid))
		return 1; /* exited; or reaped and its pid reused elsewhere */
	if (*fd < 0 || pp < 0)
		return kill(pid, 0) != 0 && errno == ESRCH ? 1 : -1;
	return 0;
}

/* ---- the spawner's reports (main's own word on which process is which) ---- */

/* One report from the spawner: the slot's process, or its end. */
static void gx_report(const gx_spawn_report *r)
{
	if (r->slot < 0 || r->slot >= gx_pl.nslots)
		return;
	int i = r->slot;
	if (r->kind == GX_REP_FORKED && r->pid > 0) {
		gx_pl.spid[i] = r->pid;
	} else if (r->kind == GX_REP_REAPED && (r->pid == gx_pl.spid[i] || r->pid == 0)) {
		int32_t pid = gx_pl.spid[i];
		gx_pl.spid[i] = 0;
		/* a death no pidfd saw (it never became a watched process, the
		 * fork failed, or there are no pidfds): handled here */
		if (!gx_pl.stopping && (pid <= 0 || gx_pl.handled[i] != pid)) {
			gx_pl.handled[i] = pid;
			atomic_store(&gx_pl.p->w[i].state, GX_W_DEAD);
			gx_handle_death(i, pid);
		}
	}
	gx_ec_notify(&gx_pl.local_ev, NULL);
}

/* Main's reader of the spawner's reports, until the stop context ends. */
void gx_reports(void *arg)
{
	(void)arg;
	gx_ctx *ctx = gx_pl.stop_ctx;
	gx_ctx_retain(ctx);
	gx_pl.watching++;
	gx_spawn_report r;
	size_t have = 0;
	for (;;) {
		ssize_t n = gx_read(gx_pl.pipe_w, (char *)&r + have, sizeof r - have, gx_ctx_until(ctx));
		if (n <= 0)
			break; /* cancelled (the stop), or the spawner is gone */
		have += (size_t)n;
		if (have < sizeof r)
			continue;
		have = 0;
		gx_report(&r);
	}
	gx_ctx_put(ctx);
	gx_pl.watching--;
}

/* ---- death detection: a pidfd per worker process ---- */

/* Slot i has a process to watch (or the stop needs nothing more of it). */
static bool gx_watch_ready(void *arg)
{
	int i = (int)(intptr_t)arg;
	int32_t pid = gx_pl.spid[i];
	return (pid > 0 && pid != gx_pl.handled[i]) || (gx_pl.stopping && pid <= 0);
}

/* Wait on worker pid's pidfd until it exits (1), the slot names another
 * process (0), or u ends (-ECANCELED); -1: nothing could be told (no fd
 * left). While it waits, the pidfd is what the watchdog signals. */
static int gx_watch_pid(int i, int32_t pid, gx_until u)
{
	int fd = -1;
	int gone = gx_worker_gone(pid, &fd);
	if (!gone)
		gx_pl.pidfd[i] = fd;
	while (!gone && gx_pl.spid[i] == pid) {
		int rc = gx_poll(fd, POLLIN, u);
		if (rc == -ECANCELED) {
			gone = -ECANCELED;
			break;
		}
		if (rc > 0)
			gone = 1;
		else if (rc < 0 && rc != -ETIMEDOUT && !(gone = kill(pid, 0) != 0 && errno == ESRCH))
			gx_sleep(10 * GX_MILLISECOND); /* the poll failed: do not spin on it */
	}
	gx_pl.pidfd[i] = -1;
	if (fd >= 0)
		gx_close(fd); /* the loop forgets it (the epoll backend keeps per-fd state) */
	return gone;
}

/*
 * One per worker slot: watch the process the spawner reported for the
 * slot (never a pid read from the arena) through its pidfd and, when it
 * exits, act on its death at once, once per process. It goes on while the
 * runtime stops (a worker that died just before the stop is seen) and
 * leaves when the slot has no process left or the stop context ends,
 * dropping its reference to that context before main_fn returns.
 */
void gx_watch(void *arg)
{
	int i = (int)(intptr_t)arg;
	gx_ctx *ctx = gx_pl.stop_ctx;
	gx_ctx_retain(ctx);
	gx_pl.watching++;
	gx_until u = gx_ctx_until(ctx);
	for (;;) {
		int32_t pid = gx_pl.spid[i];
		if (gx_pl.stopping && pid <= 0)
			break;
		if (pid <= 0 || pid == gx_pl.handled[i]) {
			if (gx_ec_wait(&gx_pl.local_ev, gx_watch_ready, arg, 0, u, NULL) == -ECANCELED)
				break;
			continue;
		}
		int gone = gx_watch_pid(i, pid, u);
		if (gone == -ECANCELED)
			break;
		if (gone <= 0) {
			/* replaced meanwhile, or nothing could be told (no fd
			 * left): look again shortly */
			gx_sleep(gone < 0 ? 10 * GX_MILLISECOND : 0);
			continue;
		}
		if (gx_pl.handled[i] == pid)
			continue; /* the report got there first */
		gx_pl.handled[i] = pid;
		atomic_store(&gx_pl.p->w[i].state, GX_W_DEAD);
		if (!gx_pl.stopping)
			gx_handle_death(i, pid);
		gx_ec_notify(&gx_pl.local_ev, NULL); /* the stop waits for it */
	}
	gx_ctx_put(ctx);
	gx_pl.watching--;
}
