/*
 * The epoll backend: the same contract as io_uring, for where io_uring is
 * denied (seccomp, kernel.io_uring_disabled) or absent (qemu-user, old
 * kernels), or forced with GONEX_BACKEND=epoll.
 *
 * Readiness, Go's netpoller way: an fd joins the epoll set edge-triggered
 * for both directions the first time an operation uses it (and is made
 * O_NONBLOCK). An operation is tried at once; only on EAGAIN does it wait
 * in its fd's list, and every event for the fd retries the waiting
 * operations of the direction it reports. No event is lost: one thread
 * runs everything, so nothing can change between the EAGAIN and the wait.
 *
 * Regular files (epoll refuses them) and openat/fsync run synchronously:
 * they may block the loop for a disk access (documented in gonex/io.h).
 * Futex waits are refused (-EOPNOTSUPP): a futex has no fd to poll, and a
 * blocking futex(2) would stop every coroutine of the process.
 *
 * GONEX_NAPI_BUSY_US sets the instance's busy polling (EPIOCSPARAMS); a
 * kernel without it lists "NAPI" as missing.
 *
 * Waiting uses epoll_pwait2 (nanosecond timeout, Linux 5.11+) and falls
 * back to epoll_wait with the timeout rounded up to whole milliseconds
 * where it is missing (qemu-user 7.2 answers ENOSYS, valgrind 3.19 has no
 * wrapper), so rounding never ends a wait before its deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/panic.h"
#include "core/timer.h"
#include "io/backend.h"
#include "io/op.h"

/* EPIOCSPARAMS (Linux 6.9): the epoll instance busy polls the NAPI
 * instances of its sockets for busy_poll_usecs per wait; budget 0 is the
 * kernel's default (a budget above 64 needs CAP_NET_ADMIN). */
struct gx_epoll_params {
	uint32_t busy_poll_usecs;
	uint16_t busy_poll_budget;
	uint8_t prefer_busy_poll;
	uint8_t pad;
};
#define GX_EPIOCSPARAMS _IOW(0x8A, 0x01, struct gx_epoll_params)

typedef struct {
	int epfd;
	int have_pwait2;
} gx_epoll;

static int gx_epoll_create(gx_loop *loop, const gx_config *cfg)
{
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
	if (cfg->napi_busy_us) {
		struct gx_epoll_params p = {.busy_poll_usecs = cfg->napi_busy_us,
					    .prefer_busy_poll = (uint8_t)cfg->napi_prefer_busy};
		if (ioctl(e->epfd, GX_EPIOCSPARAMS, &p) == 0)
			loop->napi_busy_us = cfg->napi_busy_us;
		else
			gx_loop_missing(loop, "NAPI");
	}
	loop->priv = e;
	return 0;
}

static void gx_epoll_destroy(gx_loop *loop)
{
	gx_epoll *e = loop->priv;
	if (!e)
		return;
	close(e->epfd); /* ops still listed belong to abandoned coroutines */
	free(e);
	loop->priv = NULL;
}

/* The system call of op, now, without blocking: its result, or -EAGAIN. */
static int32_t gx_epoll_try(gx_io_op *op)
{
	ssize_t r;
	int fd = op->fd;
	for (;;) {
		switch (op->opcode) {
		case GX_OP_READ:
			r = op->off == (uint64_t)-1 ? read(fd, op->buf, op->len)
						    : pread(fd, op->buf, op->len, (off_t)op->off);
			break;
		case GX_OP_WRITE:
			r = op->off == (uint64_t)-1 ? write(fd, op->buf, op->len)
						    : pwrite(fd, op->buf, op->len, (off_t)op->off);
			break;
		case GX_OP_READV:
			r = readv(fd, op->buf, (int)op->len);
			break;
		case GX_OP_WRITEV:
			r = writev(fd, op->buf, (int)op->len);
			break;
		case GX_OP_RECV:
			r = recv(fd, op->buf, op->len, op->flags | MSG_DONTWAIT);
			break;
		case GX_OP_SEND:
			r = send(fd, op->buf, op->len, op->flags | MSG_DONTWAIT);
			break;
		case GX_OP_RECVMSG:
			r = recvmsg(fd, op->buf, op->flags | MSG_DONTWAIT);
			break;
		case GX_OP_SENDMSG:
			r = sendmsg(fd, op->buf, op->flags | MSG_DONTWAIT);
			break;
		case GX_OP_ACCEPT:
		case GX_OP_ACCEPT_MULTI:
			r = accept4(fd, op->buf, op->addrlen, op->flags);
			break;
		case GX_OP_CONNECT:
			if (!op->in_progress) {
				r = connect(fd, op->buf, op->alen);
				if (r < 0 && errno == EINPROGRESS) {
					op->in_progress = true;
					return -EAGAIN;
				}
			} else {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				if (poll(&p, 1, 0) == 0)
					return -EAGAIN;
				int err = 0;
				socklen_t len = sizeof err;
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
					return -errno;
				return -err;
			}
			break;
		case GX_OP_POLL: {
			struct pollfd p = {.fd = fd, .events = (short)op->flags};
			r = poll(&p, 1, 0);
			if (r == 0)
				return -EAGAIN;
			if (r > 0)
				return p.revents;
			break;
		}
		case GX_OP_OPENAT:
			r = openat(fd, op->buf, op->flags, (mode_t)op->off);
			break;
		case GX_OP_FSYNC:
			r = fsync(fd);
			break;
		default:
			gx_panic("io", "unknown opcode %u", op->opcode);
		}
		if (r >= 0)
			return (int32_t)r;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

/* Put fd in the epoll set (once), non-blocking. */
static int gx_epoll_register(gx_epoll *e, gx_fd *fds)
{
	if (fds->registered || fds->unpollable)
		return 0;
	struct stat st;
	if (fstat(fds->fd, &st) != 0)
		return -errno;
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
		fds->unpollable = true;
		return 0;
	}
	fds->stream = S_ISFIFO(st.st_mode) || (S_ISSOCK(st.st_mode) && gx_fd_stream_socket(fds->fd));
	int fl = fcntl(fds->fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fds->fd, F_SETFL, fl | O_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = fds};
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fds->fd, &ev) != 0) {
		if (errno == EPERM) {
			fds->unpollable = true;
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	fds->registered = true;
	return 0;
}

static bool gx_epoll_write_side(const gx_io_op *op)
{
	switch (op->opcode) {
	case GX_OP_WRITE:
	case GX_OP_WRITEV:
	case GX_OP_SEND:
	case GX_OP_SENDMSG:
	case GX_OP_CONNECT:
		return true;
	case GX_OP_POLL:
		return (op->flags & POLLOUT) && !(op->flags & POLLIN);
	default:
		return false;
	}
}

/*
 * A plain read of a stream that returns fewer bytes than asked has
 * emptied it: the next read would only say EAGAIN. So the fd is marked
 * drained, and the next read waits for the fd's next EPOLLIN instead of
 * trying first (a system call saved per message, as Tokio does). Bytes
 * that arrive after the short read raise that event (edge-triggered:
 * every arrival queues the fd), so none is missed; an event from before
 * it costs one try that finds nothing. MSG_PEEK leaves the bytes
 * queued, so a short peek marks nothing. Nor does a short read after
 * the peer's end was reported (EPOLLRDHUP): its FIN may already sit
 * behind the bytes, and no further event would come for it; the FIN
 * itself always raises an event that carries EPOLLRDHUP.
 */
static bool gx_epoll_plain_read(const gx_io_op *op)
{
	return (op->opcode == GX_OP_RECV && op->flags == 0) ||
	       (op->opcode == GX_OP_READ && op->off == (uint64_t)-1);
}

static int32_t gx_epoll_read(gx_io_op *op)
{
	int32_t r = gx_epoll_try(op);
	if (r > 0 && (uint32_t)r < op->len && op->fds->stream && !op->fds->rdhup && gx_epoll_plain_read(op))
		op->fds->rdrained = true;
	return r;
}

static int gx_epoll_arm(gx_loop *loop, gx_io_op *op)
{
	gx_epoll *e = loop->priv;
	if (op->opcode == GX_OP_FUTEX_WAIT || op->opcode == GX_OP_FUTEX_WAITV)
		return -EOPNOTSUPP; /* no readiness to wait for: callers sleep and re-check */
	if (op->opcode == GX_OP_OPENAT || op->opcode == GX_OP_FSYNC) {
		op->res = gx_epoll_try(op);
		return 1;
	}
	int rc = gx_epoll_register(e, op->fds);
	if (rc < 0)
		return rc;
	if (op->fds->rdrained && gx_epoll_plain_read(op)) {
		op->untried = true; /* empty since the last short read: wait for EPOLLIN */
		op->write_side = false; /* a read */
		return 0;
	}
	int32_t r = gx_epoll_read(op);
	if (r != -EAGAIN || op->fds->unpollable) {
		op->res = r;
		return 1;
	}
	op->write_side = gx_epoll_write_side(op);
	return 0;
}

static void gx_epoll_cancel(gx_loop *loop, gx_io_op *op)
{
	(void)loop;
	if (op->done)
		return;
	/* a read that never tried (its fd was drained) tries once now, as
	 * every operation does before it may end by its deadline: bytes
	 * that came meanwhile are its result, kept over the cancel */
	int32_t r = op->untried ? gx_epoll_read(op) : -EAGAIN;
	op->req.complete(&op->req, r != -EAGAIN ? r : -ECANCELED, 0); /* nothing of it is in the kernel */
}

static void gx_epoll_ready(gx_fd *fds, uint32_t events)
{
	bool any = events & (EPOLLERR | EPOLLHUP);
	if (any || (events & (EPOLLIN | EPOLLRDHUP)))
		fds->rdrained = false;
	if (any || (events & EPOLLRDHUP))
		fds->rdhup = true;
	for (gx_io_op *op = fds->ops, *next; op; op = next) {
		next = op->next;
		bool relevant = any || (op->opcode == GX_OP_POLL
						? true
						: op->write_side ? (events & EPOLLOUT) != 0
								 : (events & (EPOLLIN | EPOLLRDHUP)) != 0);
		if (!relevant)
			continue;
		op->untried = false;
		int32_t r = gx_epoll_read(op);
		if (r != -EAGAIN)
			op->req.complete(&op->req, r, 0);
	}
}

static int gx_epoll_wait(gx_loop *loop, int64_t deadline)
{
	gx_epoll *e = loop->priv;
	struct epoll_event evs[128];
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
		n = (int)syscall(SYS_epoll_pwait2, e->epfd, evs, 128, deadline < 0 ? NULL : &ts, NULL, 0);
	} else {
		int64_t ms64 = (left + 999999) / 1000000;
		int ms = deadline < 0 ? -1 : ms64 > 0x7fffffff ? 0x7fffffff : (int)ms64;
		n = epoll_wait(e->epfd, evs, 128, ms);
	}
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++)
		gx_epoll_ready(evs[i].data.ptr, evs[i].events);
	return 0;
}

/* Leave the epoll set before close: the open file may live on elsewhere
 * (dup, fork), and its registration would then outlive the fd number. */
static void gx_epoll_forget(gx_loop *loop, gx_fd *fds)
{
	gx_epoll *e = loop->priv;
	if (fds->registered)
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, fds->fd, NULL);
	fds->registered = false;
}

static bool gx_epoll_busy(gx_loop *loop)
{
	return loop->inflight > 0;
}

/* By role, as backend.h lists them: life, the loop, operations. */
const gx_backend_ops gx_backend_epoll = {
	.name = "epoll",
	.create = gx_epoll_create, .destroy = gx_epoll_destroy,
	.wait = gx_epoll_wait, .busy = gx_epoll_busy,
	.arm = gx_epoll_arm, .cancel = gx_epoll_cancel, .forget = gx_epoll_forget,
};
