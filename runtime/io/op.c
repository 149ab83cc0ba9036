/*
 * I/O operations on top of the backend contract.
 *
 * Every call builds a gx_io_op on its stack, arms it, and unless it
 * completed at once parks until gx_io_complete. If the call's gx_until ends
 * first, the op is cancelled and the coroutine parks again until the op's
 * completion arrives: the record is never abandoned while the kernel may
 * still write to it. A completion that beat the cancel keeps its result
 * (data read is returned, not dropped); only -ECANCELED turns into the
 * until's error.
 *
 * Per-fd state (gx_fd) counts ops in flight and lists them, so gx_close can
 * cancel them all and wait before close(2), and shutdown can cancel every
 * op in the table. Ops on no fd of their own (openat at AT_FDCWD, futex
 * waits) sit on the pseudo-entry F.cwd, which shutdown walks too. gx_send
 * takes the fd's send turn (FIFO) so that two coroutines' bytes never
 * interleave.
 *
 * Invariants: op->done goes false -> true once, by gx_io_complete;
 * loop->inflight and fds->inflight count ops armed in flight and not done;
 * an op is in its fd's list exactly while it is in flight.
 */
#include "io/op.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/list.h"
#include "core/panic.h"
#include "io/loop.h"

#if GX_SANITIZE_HOOKS
#include <valgrind/memcheck.h>
#endif

#include <gonex/io.h>

/* ---- the fd table ---- */

static struct {
	gx_fd **v;
	int n;
	gx_fd cwd; /* ops on no fd of their own (openat at AT_FDCWD, futex waits) */
} F = {.cwd = {.fd = AT_FDCWD}};

bool gx_fd_stream_socket(int fd)
{
	int type = 0;
	socklen_t len = sizeof type;
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

gx_fd *gx_fd_state(int fd)
{
	if (fd < 0)
		return NULL;
	if (fd >= F.n) {
		int n = F.n ? F.n : 64;
		while (n <= fd)
			n *= 2;
		gx_fd **v = realloc(F.v, (size_t)n * sizeof *v);
		if (!v)
			return NULL;
		memset(v + F.n, 0, (size_t)(n - F.n) * sizeof *v);
		F.v = v;
		F.n = n;
	}
	if (!F.v[fd]) {
		F.v[fd] = calloc(1, sizeof(gx_fd));
		if (F.v[fd])
			F.v[fd]->fd = fd;
	}
	return F.v[fd];
}

void gx_fd_table_free(void)
{
	for (int i = 0; i < F.n; i++) {
		if (F.v[i])
			gx_recv_ms_reset(F.v[i]);
		free(F.v[i]);
	}
	free(F.v);
	memset(&F, 0, sizeof F);
	F.cwd.fd = AT_FDCWD;
}

void gx_fd_table_each_op(void (*f)(gx_io_op *op))
{
	for (gx_io_op *op = F.cwd.ops, *next; op; op = next) {
		next = op->next;
		f(op);
	}
	for (int i = 0; i < F.n; i++) {
		if (!F.v[i])
			continue;
		for (gx_io_op *op = F.v[i]->ops, *next; op; op = next) {
			next = op->next;
			f(op);
		}
	}
}

/* ---- completion ---- */

void gx_io_track(gx_io_op *op)
{
	gx_fd *fds = op->fds;
	gx_loop_get()->inflight++;
	fds->inflight++;
	GX_LIST_PUSH(&fds->ops, op, next, prev);
}

void gx_io_untrack(gx_io_op *op)
{
	gx_fd *fds = op->fds;
	gx_loop_get()->inflight--;
	GX_LIST_UNLINK(&fds->ops, op, next, prev);
	op->next = op->prev = NULL;
	if (--fds->inflight == 0 && fds->closing)
		gx_waitq_wake_all(&fds->closeq);
}

#if GX_SANITIZE_HOOKS
/* Valgrind cannot see the kernel write into buffers on io_uring's behalf:
 * tell it what a completed read-type op filled in. */
static void gx_vg_mark_iov(const struct iovec *iov, size_t cnt, size_t n)
{
	for (size_t i = 0; i < cnt && n > 0; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
		VALGRIND_MAKE_MEM_DEFINED(iov[i].iov_base, k);
		n -= k;
	}
}

static void gx_vg_mark_read(const gx_io_op *op, int32_t res)
{
	if (res < 0 || !RUNNING_ON_VALGRIND)
		return;
	switch (op->opcode) {
	case GX_OP_READ:
	case GX_OP_RECV:
		VALGRIND_MAKE_MEM_DEFINED(op->buf, (size_t)res);
		break;
	case GX_OP_READV:
		gx_vg_mark_iov(op->buf, op->len, (size_t)res);
		break;
	case GX_OP_RECVMSG: {
		struct msghdr *m = op->buf;
		gx_vg_mark_iov(m->msg_iov, m->msg_iovlen, (size_t)res);
		VALGRIND_MAKE_MEM_DEFINED(m, sizeof *m);
		if (m->msg_name)
			VALGRIND_MAKE_MEM_DEFINED(m->msg_name, m->msg_namelen);
		if (m->msg_control)
			VALGRIND_MAKE_MEM_DEFINED(m->msg_control, m->msg_controllen);
		break;
	}
	case GX_OP_ACCEPT:
		if (op->addrlen) {
			VALGRIND_MAKE_MEM_DEFINED(op->addrlen, sizeof *op->addrlen);
			if (op->buf)
				VALGRIND_MAKE_MEM_DEFINED(op->buf, *op->addrlen);
		}
		break;
	default:
		break;
	}
}
#endif

void gx_io_complete(gx_io_op *op, int32_t res)
{
	if (op->done)
		gx_panic("io", "operation completed twice (opcode %u)", op->opcode);
#if GX_SANITIZE_HOOKS
	gx_vg_mark_read(op, res);
#endif
	op->res = res;
	op->done = true;
	gx_io_untrack(op);
	gx_waiter *w = op->w;
	if (w->fired == GX_FIRED_NONE) {
		w->fired = 0;
		gx_ready(w->co);
	} else if (op->cancel_wait) {
		op->cancel_wait = false;
		gx_ready(w->co);
	}
}

static void gx_io_complete_cb(gx_io_req *req, int32_t res, uint32_t flags)
{
	(void)flags;
	gx_io_complete((gx_io_op *)req, res);
}

/* ---- running one op ---- */

/* Run op with the caller's waiter w (initialised for this coroutine; it
 * may hold other clauses: whichever fires first ends the wait, and the op
 * is then cancelled and its completion awaited). The op's own completion
 * fires w with 0, so the other clauses take indexes >= 1. */
static ssize_t gx_io_run_on(gx_io_op *op, gx_waiter *wp, gx_until u, const char *reason)
{
	bool nofd = op->opcode == GX_OP_FUTEX_WAIT || op->opcode == GX_OP_FUTEX_WAITV;
	gx_fd *fds = op->fd == AT_FDCWD || nofd ? &F.cwd : gx_fd_state(op->fd);
	if (!fds)
		return op->fd < 0 ? -EBADF : -ENOMEM;
	if (fds->closing)
		return -EBADF;
	gx_loop *loop = gx_loop_get();
	gx_waiter *w = wp;
	op->req.complete = gx_io_complete_cb;
	op->w = w;
	op->fds = fds;
	op->done = false;
	op->cancel_wait = false;
	op->next = op->prev = NULL;
	int rc = loop->ops->arm(loop, op);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return op->res;
	gx_io_track(op);
	rc = gx_wait(w, u, reason);
	if (!op->done) { /* u ended first (or another clause fired): cancel, then wait for the kernel */
		if (w->fired == GX_FIRED_NONE) /* u had ended before: gx_wait never parked */
			w->fired = rc == -ETIMEDOUT ? GX_FIRED_TIMEOUT : GX_FIRED_CTX;
		/* (the epoll backend's cancel completes at once: that must not
		 * ready this coroutine, which is running) */
		loop->ops->cancel(loop, op);
		while (!op->done) {
			op->cancel_wait = true;
			gx_park("io cancel");
		}
		if (op->res == -ECANCELED)
			return rc;
	}
	return op->res;
}

static ssize_t gx_io_run(gx_io_op *op, gx_until u, const char *reason)
{
	gx_co *self = gx_co_current();
	if (!self)
		return -EPERM;
	gx_waiter w;
	gx_waiter_init(&w, self);
	return gx_io_run_on(op, &w, u, reason);
}

static ssize_t gx_io(int opcode, int fd, void *buf, uint32_t len, uint64_t off, int flags, gx_until u,
		     const char *reason)
{
	gx_io_op op;
	memset(&op, 0, sizeof op);
	op.opcode = (uint8_t)opcode;
	op.fd = fd;
	op.buf = buf;
	op.len = len;
	op.off = off;
	op.flags = flags;
	return gx_io_run(&op, u, reason);
}

static uint32_t gx_clamp_len(size_t len)
{
	return len > 0x7ffff000u ? 0x7ffff000u : (uint32_t)len; /* as Linux read(2) caps */
}

/* A stream socket on io_uring reads through its multishot buffer queue
 * (recv_ms.c): NULL when fd does not, the fd's state when it does. */
gx_fd *gx_recv_ms_fd(int fd)
{
	gx_fd *fds = fd >= 0 && fd < F.n ? F.v[fd] : NULL;
	if (fds && fds->ms) /* decided before, inside a coroutine */
		return fds;
	if (!fds)
		fds = gx_fd_state(fd);
	if (!fds || !gx_co_current())
		return NULL;
	return gx_recv_ms_applies(fds) ? fds : NULL;
}

/* Before a receive that cannot use the multishot queue: stop it, and
 * hand out what it had queued first (order is kept). -EAGAIN: go on with
 * the plain operation. */
static ssize_t gx_recv_other(int fd, const struct iovec *iov, size_t cnt, bool peek)
{
	gx_fd *fds = fd >= 0 && fd < F.n ? F.v[fd] : NULL;
	if (!fds || !fds->rx || !gx_co_current())
		return -EAGAIN;
	gx_recv_ms_stop(fds);
	return gx_recv_ms_take(fds, iov, cnt, peek);
}

ssize_t gx_read(int fd, void *buf, size_t len, gx_until u)
{
	gx_fd *fds = gx_recv_ms_fd(fd);
	if (fds) {
		ssize_t n = gx_recv_ms(fds, buf, len, u);
		if (n != -EAGAIN)
			return n;
	}
	return gx_io(GX_OP_READ, fd, buf, gx_clamp_len(len), (uint64_t)-1, 0, u, "read");
}

ssize_t gx_write(int fd, const void *buf, size_t len, gx_until u)
{
	return gx_io(GX_OP_WRITE, fd, (void *)buf, gx_clamp_len(len), (uint64_t)-1, 0, u, "write");
}

ssize_t gx_pread(int fd, void *buf, size_t len, off_t off, gx_until u)
{
	if (off < 0)
		return -EINVAL;
	return gx_io(GX_OP_READ, fd, buf, gx_clamp_len(len), (uint64_t)off, 0, u, "pread");
}

ssize_t gx_pwrite(int fd, const void *buf, size_t len, off_t off, gx_until u)
{
	if (off < 0)
		return -EINVAL;
	return gx_io(GX_OP_WRITE, fd, (void *)buf, gx_clamp_len(len), (uint64_t)off, 0, u, "pwrite");
}

ssize_t gx_readv(int fd, const struct iovec *iov, int iovcnt, gx_until u)
{
	if (iovcnt < 0)
		return -EINVAL;
	ssize_t n = gx_recv_other(fd, iov, (size_t)iovcnt, false);
	if (n != -EAGAIN)
		return n;
	return gx_io(GX_OP_READV, fd, (void *)iov, (uint32_t)iovcnt, (uint64_t)-1, 0, u, "readv");
}

ssize_t gx_writev(int fd, const struct iovec *iov, int iovcnt, gx_until u)
{
	if (iovcnt < 0)
		return -EINVAL;
	return gx_io(GX_OP_WRITEV, fd, (void *)iov, (uint32_t)iovcnt, (uint64_t)-1, 0, u, "writev");
}

ssize_t gx_write_all(int fd, const void *buf, size_t len, gx_until u)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = gx_write(fd, (const char *)buf + done, len - done, u);
		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

ssize_t gx_recv(int fd, void *buf, size_t len, int flags, gx_until u)
{
	gx_fd *fds = flags == 0 ? gx_recv_ms_fd(fd) : NULL;
	if (fds) {
		ssize_t n = gx_recv_ms(fds, buf, len, u);
		if (n != -EAGAIN) /* -EAGAIN: out of ring buffers, receive plainly once */
			return n;
	} else if (flags != 0) {
		struct iovec v = {buf, len};
		ssize_t n = gx_recv_other(fd, &v, 1, (flags & MSG_PEEK) != 0);
		if (n != -EAGAIN && !(flags & MSG_WAITALL && n >= 0 && (size_t)n < len))
			return n;
		if (n > 0) { /* MSG_WAITALL: the rest from the socket */
			ssize_t m = gx_io(GX_OP_RECV, fd, (char *)buf + n, gx_clamp_len(len - (size_t)n), 0, flags,
					  u, "recv");
			return m < 0 ? n : n + m;
		}
	}
	return gx_io(GX_OP_RECV, fd, buf, gx_clamp_len(len), 0, flags, u, "recv");
}

ssize_t gx_recvmsg(int fd, struct msghdr *msg, int flags, gx_until u)
{
	if (!msg)
		return -EFAULT;
	ssize_t n = gx_recv_other(fd, msg->msg_iov, msg->msg_iovlen, (flags & MSG_PEEK) != 0);
	if (n != -EAGAIN) {
		msg->msg_namelen = 0;
		msg->msg_controllen = 0;
		msg->msg_flags = 0;
		return n;
	}
	return gx_io(GX_OP_RECVMSG, fd, msg, 0, 0, flags, u, "recvmsg");
}

ssize_t gx_sendmsg(int fd, const struct msghdr *msg, int flags, gx_until u)
{
	return gx_io(GX_OP_SENDMSG, fd, (void *)msg, 0, 0, flags | MSG_NOSIGNAL, u, "sendmsg");
}

/* gx_send's turn on fd: FIFO among senders. */
static int gx_send_turn(gx_fd *fds, gx_until u)
{
	if (!fds->sending) {
		fds->sending = true;
		return 0;
	}
	gx_wq_node n;
	n.ok = false;
	int rc = gx_wait_in(&fds->sendq, &n, u, "send turn");
	if (rc == 0 && !n.ok)
		return -ECANCELED; /* the socket was closed while we waited */
	return rc; /* 0: handed over */
}

bool gx_send_turn_try(gx_fd *fds)
{
	if (fds->sending || fds->closing)
		return false;
	fds->sending = true;
	return true;
}

void gx_send_turn_end(gx_fd *fds)
{
	gx_wq_node *n = gx_waitq_pop(&fds->sendq);
	if (n) {
		n->ok = true;
		gx_wake(n); /* the turn passes straight to the next sender */
	} else {
		fds->sending = false;
	}
}

ssize_t gx_send(int fd, const void *buf, size_t len, int flags, gx_until u)
{
	if (!gx_co_current())
		return -EPERM;
	gx_fd *fds = gx_fd_state(fd);
	if (!fds)
		return fd < 0 ? -EBADF : -ENOMEM;
	int rc = gx_send_turn(fds, u);
	if (rc < 0)
		return rc;
	size_t done = 0;
	ssize_t res = (ssize_t)len;
	while (done < len || len == 0) {
		ssize_t n = gx_io(GX_OP_SEND, fd, (char *)buf + done, gx_clamp_len(len - done), 0,
				  flags | MSG_NOSIGNAL, u, "send");
		if (n < 0) {
			res = n;
			break;
		}
		done += (size_t)n;
		if (len == 0)
			break;
	}
	gx_send_turn_end(fds);
	return res;
}

/* The next window of at most 16 entries of iov, from entry i, byte off. */
static int gx_sendv_window(const struct iovec *iov, int cnt, int i, size_t off, struct iovec *v)
{
	int k = 0;
	for (; i < cnt && k < 16; i++, off = 0) {
		if (iov[i].iov_len == off)
			continue;
		v[k].iov_base = (char *)iov[i].iov_base + off;
		v[k++].iov_len = iov[i].iov_len - off;
	}
	return k;
}

ssize_t gx_sendv(int fd, const struct iovec *iov, int iovcnt, gx_until u)
{
	if (!gx_co_current())
		return -EPERM;
	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SSIZE_MAX - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	gx_fd *fds = gx_fd_state(fd);
	if (!fds)
		return fd < 0 ? -EBADF : -ENOMEM;
	int rc = gx_send_turn(fds, u);
	if (rc < 0)
		return rc;
	ssize_t res = (ssize_t)total;
	int i = 0;
	size_t off = 0;
	struct iovec v[16];
	int k;
	while ((k = gx_sendv_window(iov, iovcnt, i, off, v)) > 0) {
		struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)k};
		ssize_t n = gx_io(GX_OP_SENDMSG, fd, &m, 0, 0, MSG_NOSIGNAL, u, "send");
		if (n < 0) {
			res = n;
			break;
		}
		for (size_t left = (size_t)n; left > 0;) { /* n <= what is left */
			size_t room = iov[i].iov_len - off;
			if (left < room) {
				off += left;
				break;
			}
			left -= room;
			i++;
			off = 0;
		}
	}
	gx_send_turn_end(fds);
	return res;
}

int gx_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags, gx_until u)
{
	gx_io_op op;
	memset(&op, 0, sizeof op);
	op.opcode = GX_OP_ACCEPT;
	op.fd = fd;
	op.buf = addr;
	op.addrlen = addrlen;
	op.flags = flags | SOCK_CLOEXEC;
	return (int)gx_io_run(&op, u, "accept");
}

int gx_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, gx_until u)
{
	gx_io_op op;
	memset(&op, 0, sizeof op);
	op.opcode = GX_OP_CONNECT;
	op.fd = fd;
	op.buf = (void *)addr;
	op.alen = addrlen;
	return (int)gx_io_run(&op, u, "connect");
}

int gx_poll(int fd, short events, gx_until u)
{
	if (events & POLLIN) {
		/* queued multishot data is readable data; and a poll must see
		 * the socket itself, so the multishot stops */
		gx_fd *fds = fd >= 0 && fd < F.n ? F.v[fd] : NULL;
		if (fds && fds->rx && gx_co_current()) {
			gx_recv_ms_stop(fds);
			char b;
			struct iovec v = {&b, 1};
			if (gx_recv_ms_take(fds, &v, 1, true) > 0)
				return POLLIN | (events & POLLOUT ? POLLOUT : 0);
		}
	}
	return (int)gx_io(GX_OP_POLL, fd, NULL, 0, 0, events, u, "poll");
}

int gx_openat(int dirfd, const char *path, int flags, mode_t mode, gx_until u)
{
	if (!path)
		return -EFAULT;
	gx_io_op op;
	memset(&op, 0, sizeof op);
	op.opcode = GX_OP_OPENAT;
	op.fd = dirfd;
	op.buf = (void *)path;
	op.flags = flags | O_CLOEXEC;
	op.off = mode;
	return (int)gx_io_run(&op, u, "openat");
}

int gx_fsync(int fd, gx_until u)
{
	return (int)gx_io(GX_OP_FSYNC, fd, NULL, 0, 0, 0, u, "fsync");
}

/* The kernel's io_uring knows IORING_OP_FUTEX_WAIT: 0 not known yet, 1
 * yes, -1 no (it answered -EINVAL or -EOPNOTSUPP before ever accepting
 * one). Per process; every ring of it talks to the same kernel. */
static int gx_futex_op_known;

/* Run a futex wait op (filled in by the caller) and learn from the
 * kernel's answer whether it has futex ops at all. */
static int gx_io_futex_run(gx_io_op *op, gx_waiter *w, gx_until u)
{
	if (gx_futex_op_known < 0)
		return -EOPNOTSUPP;
	op->fd = -1; /* no fd: gx_io_run files it under F.cwd */
	gx_co *self = gx_co_current();
	gx_waiter own;
	if (!w) {
		gx_waiter_init(&own, self);
		w = &own;
	}
	int rc = (int)gx_io_run_on(op, w, u, "futex");
	if (!op->done)
		return rc; /* never reached the kernel: epoll's -EOPNOTSUPP, no SQE */
	if (op->res == -EINVAL || op->res == -EOPNOTSUPP) {
		if (gx_futex_op_known == 0) {
			gx_futex_op_known = -1;
			return -EOPNOTSUPP;
		}
		return op->res;
	}
	gx_futex_op_known = 1;
	return rc == -EAGAIN || rc > 0 ? 0 : rc; /* -EAGAIN: a word differed at arm time; > 0: waitv's index */
}

static int gx_futex_addr_ok(_Atomic uint32_t *addr)
{
	if (!addr)
		return -EFAULT;
	if ((uintptr_t)addr % sizeof(uint32_t) != 0)
		return -EINVAL; /* the kernel's -EINVAL would read as "opcode unknown" */
	return 0;
}

int gx_io_futex_wait(_Atomic uint32_t *addr, uint32_t val, gx_until u)
{
	if (!gx_co_current())
		return -EPERM;
	int rc = gx_futex_addr_ok(addr);
	if (rc < 0)
		return rc;
	gx_io_op op;
	memset(&op, 0, sizeof op);
	op.opcode = GX_OP_FUTEX_WAIT;
	op.buf = (void *)addr;
	op.len = val;
	return gx_io_futex_run(&op, NULL, u);
}

int gx_io_futex_wait2(_Atomic uint32_t *addr, uint32_t val, _Atomic uint32_t *addr2, uint32_t val2, gx_until u)
{
	gx_co *self = gx_co_current();
	if (!self)
		return -EPERM;
	/* on this stack until the op's last CQE (gx_io_run waits for it) */
	gx_futex_waitv v[2] = {
		{.val = val, .uaddr = (uint64_t)(uintptr_t)addr, .flags = GX_FUTEX2_SIZE_U32},
		{.val = val2, .uaddr = (uint64_t)(uintptr_t)addr2, .flags = GX_FUTEX2_SIZE_U32},
	};
	gx_waiter w; /* a waiter of its own: no other clause fires it */
	gx_waiter_init(&w, self);
	return gx_io_futex_waitv_on(v, 2, &w, u);
}

int gx_shutdown(int fd, int how)
{
	return shutdown(fd, how) == 0 ? 0 : -errno;
}

static void gx_cancel_op(gx_io_op *op)
{
	gx_loop *loop = gx_loop_get();
	loop->ops->cancel(loop, op);
}

int gx_close(int fd)
{
	gx_fd *fds = fd >= 0 && fd < F.n ? F.v[fd] : NULL;
	if (fds && (fds->inflight > 0 || fds->sending) && !gx_co_current())
		return -EPERM;
	if (fds) {
		/* senders waiting for their turn end with -ECANCELED */
		fds->closing = true;
		gx_wq_node *n;
		while ((n = gx_waitq_pop(&fds->sendq)) != NULL) {
			n->ok = false;
			gx_wake(n);
		}
	}
	if (fds && fds->inflight > 0) {
		for (gx_io_op *op = fds->ops, *next; op; op = next) {
			next = op->next;
			gx_cancel_op(op);
		}
		while (fds->inflight > 0) {
			gx_wq_node n;
			gx_wait_in(&fds->closeq, &n, GX_FOREVER, "close");
		}
	}
	while (fds && fds->sending) /* the turn holder's op ended: let it leave */
		gx_yield();
	if (fds && fds->rx) {
		gx_recv_ms_quiesce(fds);
		gx_recv_ms_reset(fds);
	}
	if (fds) {
		gx_loop *loop = gx_loop_get();
		if (loop->ops->forget)
			loop->ops->forget(loop, fds);
		/* the fd number will be reused: start clean, keep the
		 * allocation (nobody waits on it any more) */
		memset(fds, 0, sizeof *fds);
		fds->fd = fd;
	}
	return close(fd) == 0 ? 0 : -errno;
}

int gx_io_futex_waitv_on(const gx_futex_waitv *v, uint32_t n, gx_waiter *w, gx_until u)
{
	if (!gx_co_current())
		return -EPERM;
	if (n == 0 || n > GX_FUTEX_WAITV_MAX || !v || !w)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		int rc = gx_futex_addr_ok((_Atomic uint32_t *)(uintptr_t)v[i].uaddr);
		if (rc < 0)
			return rc;
	}
	gx_io_op op;
	memset(&op, 0, sizeof op);
	op.opcode = GX_OP_FUTEX_WAITV;
	op.buf = (void *)v;
	op.len = n;
	int rc = gx_io_futex_run(&op, w, u);
	/* another clause of w fired: its index, whatever the futex did */
	return w->fired > 0 ? w->fired : rc;
}
