/*
 * SIGQUIT dumps (GONEX_DUMP_SIGNAL=1): SIGQUIT makes the process call
 * gx_dump_all instead of quitting, so the main process dumps its
 * coroutines and asks every worker to dump theirs, and a worker dumps its
 * own. gx_obs_start sets it up in the first coroutine, gx_obs_fini takes
 * it down after the loop (run.c).
 *
 * The handler does only what is async-signal-safe: it adds 1 to an
 * eventfd and keeps errno. A coroutine ("gonex-sigquit") reads the eventfd
 * through the loop and dumps, so the dump runs as a coroutine, never
 * inside the handler. Signals that arrive before the coroutine reads are
 * summed by the eventfd: one read, one dump.
 *
 * Invariants:
 * - gx_quit_on == 1 exactly while our handler is installed; then
 *   gx_quit_fd >= 0 and gx_quit_old holds the disposition to put back;
 * - the eventfd is made before the handler is installed and closed only
 *   after the old disposition is back, so the handler never writes to a
 *   closed (or reused) fd; the process has one thread (DESIGN), so the
 *   handler never runs in the middle of either step on another CPU;
 * - gx_obs_start does nothing when the switch is off or it is already on,
 *   gx_obs_fini nothing when it is off; a set-up that fails leaves
 *   SIGQUIT's disposition as it was.
 *
 * Trusted: gx_obs_start and gx_obs_fini run on the runtime's thread.
 * Not trusted: the signal's senders (any number of signals, at any time;
 * a write to a full eventfd counter is dropped: a dump is pending anyway).
 */
#include "par/par.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/panic.h"

#include <gonex/coro.h>
#include <gonex/dump.h>
#include <gonex/io.h>
#include <gonex/time.h>

static int gx_quit_fd = -1;
static struct sigaction gx_quit_old;
static int gx_quit_on;

static void gx_on_quit(int sig)
{
	(void)sig;
	int e = errno;
	uint64_t one = 1;
	if (gx_quit_fd >= 0 && write(gx_quit_fd, &one, sizeof one) < 0) {
		/* the counter is saturated: a dump is pending anyway */
	}
	errno = e;
}

static void gx_quit_loop(void *arg)
{
	(void)arg;
	uint64_t v;
	while (gx_quit_fd >= 0 && gx_read(gx_quit_fd, &v, sizeof v, GX_FOREVER) == (ssize_t)sizeof v)
		gx_dump_all();
}

void gx_obs_start(void)
{
	if (!gx_par_cfg()->dump_signal || gx_quit_on)
		return;
	gx_quit_fd = eventfd(0, EFD_CLOEXEC);
	if (gx_quit_fd < 0) {
		gx_log("dump: eventfd: %s; SIGQUIT keeps its default", strerror(errno));
		return;
	}
	struct sigaction sa = {.sa_handler = gx_on_quit};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGQUIT, &sa, &gx_quit_old) != 0) {
		close(gx_quit_fd);
		gx_quit_fd = -1;
		return;
	}
	gx_quit_on = 1;
	gx_go_opts o = {.stack_size = 0, .name = "gonex-sigquit"};
	if (gx_go_with(gx_quit_loop, NULL, &o) < 0)
		gx_obs_fini();
}

void gx_obs_fini(void)
{
	if (!gx_quit_on)
		return;
	sigaction(SIGQUIT, &gx_quit_old, NULL);
	close(gx_quit_fd);
	gx_quit_fd = -1;
	gx_quit_on = 0;
}
