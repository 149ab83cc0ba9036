/*
 * The epoll backend: the same contract as io_uring, for where io_uring is
 * denied (seccomp, kernel.io_uring_disabled) or absent (qemu-user, old
 * kernels), or forced with GONEX_BACKEND=epoll.
 *
 * Waiting uses epoll_pwait2 (nanosecond timeout, Linux 5.11+) and falls back
 * to epoll_wait with the timeout rounded up to whole milliseconds where it
 * is missing (qemu-user 7.2 answers ENOSYS), so a wait never ends before
 * the deadline because of rounding. Readiness-based operations arrive with
 * the I/O operations; until then the epoll set is empty and wait() is a
 * timed sleep.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/timer.h"
#include "io/backend.h"

typedef struct {
	int epfd;
	int have_pwait2;
} gx_epoll;

static int gx_epoll_create(gx_loop *loop, const gx_config *cfg)
{
	(void)cfg;
	gx_epoll *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		int rc = -errno;
		free(e);
		return rc;
	}
	struct epoll_event ev;
	struct timespec zero = {0, 0};
	e->have_pwait2 = syscall(SYS_epoll_pwait2, e->epfd, &ev, 1, &zero, NULL, 0) >= 0 || errno != ENOSYS;
	if (!e->have_pwait2)
		gx_loop_missing(loop, "epoll_pwait2");
	loop->priv = e;
	return 0;
}

static void gx_epoll_destroy(gx_loop *loop)
{
	gx_epoll *e = loop->priv;
	if (!e)
		return;
	close(e->epfd);
	free(e);
	loop->priv = NULL;
}

static int gx_epoll_wait(gx_loop *loop, int64_t deadline)
{
	gx_epoll *e = loop->priv;
	struct epoll_event evs[64];
	int n;
	int64_t left = 0;
	if (deadline > 0) {
		left = deadline - gx_clock_now();
		if (left < 0)
			left = 0;
	}
	if (deadline == 0 && loop->inflight == 0)
		return 0;
	if (e->have_pwait2) {
		struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
		n = (int)syscall(SYS_epoll_pwait2, e->epfd, evs, 64, deadline < 0 ? NULL : &ts, NULL, 0);
	} else {
		int64_t ms64 = (left + 999999) / 1000000;
		int ms = deadline < 0 ? -1 : ms64 > 0x7fffffff ? 0x7fffffff : (int)ms64;
		n = epoll_wait(e->epfd, evs, 64, ms);
	}
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		gx_io_req *req = evs[i].data.ptr;
		if (req)
			req->complete(req, (int32_t)evs[i].events, 0);
	}
	return 0;
}

static bool gx_epoll_busy(gx_loop *loop)
{
	return loop->inflight > 0;
}

const gx_backend_ops gx_backend_epoll = {
	.name = "epoll",
	.create = gx_epoll_create,
	.destroy = gx_epoll_destroy,
	.wait = gx_epoll_wait,
	.busy = gx_epoll_busy,
};
