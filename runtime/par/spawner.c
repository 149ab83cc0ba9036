/*
 * The spawner: a small process with no runtime, forked by gx_run before
 * anything else starts, that forks workers on request (a byte on a socket)
 * and reaps them (SIGCHLD via signalfd), recording each exit in the
 * worker's slot. A worker therefore starts from a clean image. Deaths
 * chain: a worker dies with the spawner, the spawner with the main process
 * (PR_SET_PDEATHSIG, checked against a parent that died before the prctl).
 * Also here: SIGINT/SIGTERM in the main process.
 *
 * Invariants: the spawner signals only its own children that it has not
 * reaped yet (a child's pid cannot be reused before its parent reaps it);
 * main's signal handler signals only the spawner pid it keeps itself; a
 * request byte names a slot below this process's copy of the slot count.
 *
 * Who writes what: the spawner writes a slot's exit status and, for a
 * death before ready or any death while stopping, its state DEAD; the
 * child writes its own pid before anything else.
 *
 * Rejected: signalling the pids kept in the slots (a peer can write any
 * pid there, and kill(-1) reaches every process of the user).
 */
#include "par/par.h"

#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "core/testpoint.h"

/* ---- the spawner ---- */

/*
 * The spawner reaped pid, its latest child for slot i: the exit status in
 * the slot, for the figures. Main learns of the death from the report on
 * their socket (gx_spawner_report) and from its pidfd, never from here.
 */
static void gx_spawner_reaped(int i, pid_t pid, int st)
{
	gx_wk *w = &gx_pl.p->w[i];
	atomic_store(&w->exit_status, st);
	/* the slot's state, for the figures: main acts on the report below */
	uint32_t cur = atomic_load(&w->state);
	if (atomic_load(&gx_pl.p->stop) || atomic_load(&w->ready_pid) != pid)
		atomic_compare_exchange_strong(&w->state, &cur, GX_W_DEAD);
}

/* The spawner's own state (its process only). forked[i] is slot i's
 * latest child until it is reaped: a child's pid cannot be reused before
 * its parent reaps it, so these are safe to signal. */
static struct {
	pid_t forked[GX_MAX_WORKERS];
	sigset_t mask;
	int rfd, sfd;
	int quit; /* 1: orderly (main asked), 2: a signal or main's death */
} SP;

/* Tell main (a record on their socket; blocking: main reads them all). */
static void gx_spawner_report(int kind, int i, pid_t pid, int st)
{
	gx_spawn_report r = {kind, i, (int32_t)pid, st};
	const char *b = (const char *)&r;
	for (size_t done = 0; done < sizeof r;) {
		ssize_t n = send(SP.rfd, b + done, sizeof r - done, MSG_NOSIGNAL);
		if (n <= 0 && errno != EINTR)
			return; /* main is gone: the spawner quits on EOF */
		done += n > 0 ? (size_t)n : 0;
	}
}

static void gx_spawner_reap_all(void)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		GX_TEST_POINT("spawner.reaped", &st);
		for (int i = 0; i < gx_pl.nslots; i++)
			if (SP.forked[i] == pid) {
				SP.forked[i] = 0;
				gx_spawner_reaped(i, pid, st);
				gx_spawner_report(GX_REP_REAPED, i, pid, st);
			}
		gx_ec_notify(&gx_pl.p->events, NULL);
	}
}

/* Quitting: main saw every worker exit already (orderly), or on a signal
 * or main's death: kill what is left, reap everything, leave. */
static _Noreturn void gx_spawner_quit(void)
{
	for (int i = 0; i < gx_pl.nslots; i++)
		if (SP.forked[i] > 0)
			kill(SP.forked[i], SIGKILL);
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, 0)) > 0 || errno == EINTR)
		for (int i = 0; pid > 0 && i < gx_pl.nslots; i++)
			if (SP.forked[i] == pid) {
				SP.forked[i] = 0;
				atomic_store(&gx_pl.p->w[i].exit_status, st);
				atomic_store(&gx_pl.p->w[i].state, GX_W_DEAD);
			}
	gx_ec_notify(&gx_pl.p->events, NULL);
	_exit(0);
}

/* Fork slot i's worker. */
static void gx_spawner_fork(int i)
{
	pid_t c = fork();
	if (c == 0) {
		/* our own pid first: READY can come before the spawner's
		 * store after fork returns */
		atomic_store(&gx_pl.p->w[i].pid, getpid());
		close(SP.rfd);
		close(SP.sfd);
		sigprocmask(SIG_UNBLOCK, &SP.mask, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != gx_pl.spawner_pid)
			_exit(1);
		gx_worker_main(i);
	}
	if (c > 0) {
		SP.forked[i] = c;
		atomic_store(&gx_pl.p->w[i].pid, c);
		gx_spawner_report(GX_REP_FORKED, i, c, 0);
	} else {
		atomic_store(&gx_pl.p->w[i].state, GX_W_DEAD);
		gx_ec_notify(&gx_pl.p->events, NULL);
		gx_spawner_report(GX_REP_REAPED, i, 0, 0); /* no process: the fork failed */
	}
}

/* Main's requests: a slot to fork, 0xff to quit; EOF: main is gone. */
static void gx_spawner_requests(void)
{
	uint8_t req[64];
	ssize_t n = read(SP.rfd, req, sizeof req);
	if (n <= 0) {
		SP.quit = SP.quit ? SP.quit : 2;
		return;
	}
	for (ssize_t k = 0; k < n; k++) {
		if (req[k] == 0xff)
			SP.quit = SP.quit ? SP.quit : 1;
		else if (req[k] < gx_pl.nslots && !SP.quit)
			gx_spawner_fork(req[k]);
	}
}

_Noreturn void gx_spawner(int rfd, int parent)
{
	prctl(PR_SET_NAME, "gonex-spawner");
	if (gx_pl.cfg.dump_signal)
		signal(SIGQUIT, SIG_IGN); /* Ctrl-\ reaches the whole group: the
					   * spawner has nothing to dump and must live */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	sigemptyset(&SP.mask);
	sigaddset(&SP.mask, SIGCHLD);
	sigaddset(&SP.mask, SIGTERM);
	sigaddset(&SP.mask, SIGINT);
	sigprocmask(SIG_BLOCK, &SP.mask, NULL);
	SP.rfd = rfd;
	SP.sfd = signalfd(-1, &SP.mask, SFD_CLOEXEC | SFD_NONBLOCK);
	for (;;) {
		gx_spawner_reap_all();
		if (SP.quit)
			gx_spawner_quit();
		struct pollfd pf[2] = {{.fd = SP.rfd, .events = POLLIN}, {.fd = SP.sfd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			_exit(1);
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(SP.sfd, &si, sizeof si) == sizeof si)
				if (si.ssi_signo != SIGCHLD)
					SP.quit = 2;
		}
		if (pf[0].revents & (POLLIN | POLLHUP))
			gx_spawner_requests();
	}
}

/* ---- SIGINT / SIGTERM in the main process ---- */

static void gx_par_on_signal(int sig)
{
	/* async-signal-safe only: stop the spawner (it kills and reaps the
	 * workers), reap it, leave */
	pid_t s = gx_pl.p && gx_pl.me < 0 && gx_pl.enabled && getpid() != gx_pl.spawner_pid ? gx_pl.spawner_pid : 0;
	if (s > 0) {
		kill(s, SIGTERM);
		while (waitpid(s, NULL, 0) < 0 && errno == EINTR)
			;
	}
	_exit(128 + sig);
}

void gx_par_signals(void)
{
	int sigs[] = {SIGINT, SIGTERM};
	for (int k = 0; k < 2; k++) {
		struct sigaction old;
		if (sigaction(sigs[k], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
			continue; /* the program handles it (or ignores it) */
		struct sigaction sa = {.sa_handler = gx_par_on_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[k], &sa, NULL);
	}
}

void gx_par_signals_reset(void)
{
	int sigs[] = {SIGINT, SIGTERM};
	for (int k = 0; k < 2; k++) {
		struct sigaction old;
		if (sigaction(sigs[k], NULL, &old) == 0 && old.sa_handler == gx_par_on_signal)
			signal(sigs[k], SIG_DFL);
	}
}

