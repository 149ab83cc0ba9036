/*
 * gx_ctx_with_signals: a context that SIGINT or SIGTERM cancels (Go's
 * signal.NotifyContext), the one call a program under gx_run needs for a
 * clean stop.
 *
 * How: the two signals are blocked in the process and read from a
 * signalfd by a coroutine of the runtime, which cancels the context with
 * cause -EINTR. When the context ends, for that reason or any other, the
 * coroutine closes the signalfd and puts back the signal mask it found,
 * so a second Ctrl-C does what it would have done without us (by
 * default, end the process).
 *
 * Rejected: a signal handler (it could not cancel a context: nothing in
 * the runtime is async-signal-safe).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <gonex/context.h>
#include <gonex/coro.h>
#include <gonex/io.h>

typedef struct gx_sigwatch {
	gx_ctx *ctx; /* our reference */
	int sfd;
	sigset_t old;
} gx_sigwatch;

static void gx_sigwatch_run(void *arg)
{
	gx_sigwatch *w = arg;
	struct signalfd_siginfo si;
	if (gx_read(w->sfd, &si, sizeof si, gx_ctx_until(w->ctx)) == (ssize_t)sizeof si)
		gx_ctx_cancel_cause(w->ctx, -EINTR);
	gx_close(w->sfd);
	sigprocmask(SIG_SETMASK, &w->old, NULL);
	gx_ctx_put(w->ctx);
	free(w);
}

int gx_ctx_with_signals(gx_ctx *parent, gx_ctx **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!parent)
		return -EINVAL;
	if (gx_self() == 0)
		return -EPERM;
	gx_sigwatch *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	int rc = gx_ctx_with_cancel(parent, out);
	if (rc < 0) {
		free(w);
		return rc;
	}
	sigprocmask(SIG_BLOCK, &set, &w->old);
	w->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	w->ctx = gx_ctx_retain(*out);
	if (w->sfd < 0 || gx_go(gx_sigwatch_run, w) < 0) {
		rc = w->sfd < 0 ? -errno : -ENOMEM;
		if (w->sfd >= 0)
			close(w->sfd);
		sigprocmask(SIG_SETMASK, &w->old, NULL);
		gx_ctx_put(w->ctx);
		free(w);
		gx_ctx_release(*out);
		*out = NULL;
		return rc;
	}
	return 0;
}
