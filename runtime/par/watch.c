/*
 * Death detection (main process): a coroutine per worker slot waits on the
 * running worker's pidfd and acts on its exit at once.
 *
 * Invariants: a pidfd is opened only for a pid whose parent is the spawner
 * (this process's copy of its pid), so a pid a peer wrote into the slot, or
 * one the kernel reused, is never watched or signalled; the watcher marks
 * a slot DEAD only from the state and pid it saw, by CAS; it goes on while
 * the runtime stops (a worker that died just before the stop is seen) and
 * leaves when its slot is done or the stop context ends, dropping its
 * reference to that context before main_fn returns.
 *
 * While it waits, its pidfd and the checked pid are what the watchdog uses
 * to kill or to read /proc.
 *
 * Rejected: polling with kill(pid, 0) (a reused pid passes); the spawner
 * reporting every death (two sides reporting one death raced).
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

/* Something to watch in slot i: a running worker, or (stopping) nothing
 * more to come. */
static bool gx_watch_ready(void *arg)
{
	int i = (int)(intptr_t)arg;
	uint32_t st = atomic_load(&gx_pl.p->w[i].state);
	return st == GX_W_READY || st == GX_W_DRAIN || (gx_pl.stopping && (st == GX_W_OFF || st == GX_W_DEAD));
}

/* Wait on worker pid's pidfd until it exits (1), the slot names another
 * pid (0), or u ends (-ECANCELED); -1: nothing could be told (no fd left).
 * While it waits, the pidfd and the checked pid are the watchdog's too. */
static int gx_watch_pid(int i, int32_t pid, gx_until u)
{
	gx_wk *w = &gx_pl.p->w[i];
	int fd = -1;
	int gone = gx_worker_gone(pid, &fd);
	if (!gone) {
		gx_pl.pidfd[i] = fd;
		gx_pl.wpid[i] = pid;
	}
	/* the slot's pid changes only through gx_handle_death, which this
	 * watcher or the supervisor (a death before ready) runs: then the
	 * pidfd is readable anyway */
	while (!gone && atomic_load(&w->pid) == pid) {
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
 * One per worker slot: wait on the running worker's pidfd and, when it
 * exits, mark the slot dead and act on it at once (gx_handle_death never
 * parks, so no other coroutine sees the slot half-handled). A pid that
 * is gone before its pidfd is open (reaped, perhaps reused: its parent is
 * no longer the spawner) is as dead. It goes on while the runtime stops,
 * so that a worker that died just before is seen dead (the stop waits for
 * every slot), and leaves when its slot is done or the stop context ends.
 */
void gx_watch(void *arg)
{
	int i = (int)(intptr_t)arg;
	gx_wk *w = &gx_pl.p->w[i];
	/* no timeouts: an idle runtime does not wake for this; the stop
	 * context ends the waits */
	gx_ctx *ctx = gx_pl.stop_ctx;
	gx_ctx_retain(ctx);
	gx_pl.watching++;
	gx_until u = gx_ctx_until(ctx);
	for (;;) {
		uint32_t st = atomic_load(&w->state);
		int32_t pid = atomic_load(&w->pid);
		if (gx_pl.stopping && (st == GX_W_OFF || st == GX_W_DEAD))
			break;
		if ((st != GX_W_READY && st != GX_W_DRAIN) || pid <= 0) {
			if (gx_ec_wait(&gx_pl.p->events, gx_watch_ready, arg, 0, u, NULL) == -ECANCELED)
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
		st = atomic_load(&w->state);
		if ((st != GX_W_READY && st != GX_W_DRAIN) || atomic_load(&w->pid) != pid ||
		    !atomic_compare_exchange_strong(&w->state, &st, GX_W_DEAD))
			continue;
		if (gx_pl.stopping)
			gx_ec_notify(&gx_pl.p->events, NULL); /* the stop waits for it */
		else
			gx_handle_death(i); /* clears the slot's pid: the next one is new */
	}
	gx_ctx_put(ctx);
	gx_pl.watching--;
}
