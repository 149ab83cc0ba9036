/*
 * gx_listener: an accept loop.
 *
 * On io_uring one multishot accept stays armed on the listening socket; its
 * completions (one per connection, IORING_CQE_F_MORE while it stays armed)
 * go straight to a coroutine waiting in gx_listener_accept, or into a FIFO
 * of accepted fds, at most GX_LISTENER_HOLD of them: past that the
 * multishot is cancelled, so that a process that does not keep up leaves
 * new connections in the kernel's queue (for the other processes sharing
 * the socket, and safe from its own death). The record lives in the heap-allocated listener, not on
 * a stack, because it outlives any one caller; stop cancels it and waits
 * for its last completion before freeing. When the kernel ends the
 * multishot (an error, or no IORING_CQE_F_MORE), the next accept re-arms it.
 *
 * On epoll it is a plain gx_accept per call.
 */
#include <errno.h>
#include <liburing.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/fifo.h"
#include "io/loop.h"
#include "io/op.h"

#include <gonex/io.h>

#define GX_LISTENER_HOLD 16

struct gx_listener {
	int fd;
	gx_io_op op;     /* the multishot accept (io_uring) */
	bool armed;      /* its completions may still come */
	bool multishot;  /* io_uring backend */
	bool stopping;   /* gx_listener_stop has begun: never re-arm */
	bool holding;    /* a cancel for a full queue is in flight */
	int err;         /* an error to hand to the next acceptor */
	gx_fifo q;       /* accepted fds (int) not yet taken */
	gx_waitq waiters;  /* node->elem: int result slot */
	gx_waitq stopq;    /* gx_listener_stop waiting for the last CQE */
};

static void gx_listener_push(gx_listener *l, int fd)
{
	int *slot = gx_fifo_push(&l->q);
	if (slot)
		*slot = fd;
	else
		close(fd); /* no room: the peer sees a reset, nothing leaks */
	if (l->q.len >= GX_LISTENER_HOLD && l->armed && !l->holding) {
		/* nobody takes them: leave the rest in the kernel's queue,
		 * where another process sharing the socket may accept them
		 * (and where they outlive this one); the next accept that
		 * finds the queue empty re-arms */
		gx_loop *loop = gx_loop_get();
		loop->ops->cancel(loop, &l->op);
		l->holding = true;
	}
}

/* Take the oldest accepted fd (the queue is not empty). */
static int gx_listener_pop(gx_listener *l)
{
	int fd = *(int *)gx_fifo_at(&l->q, 0);
	gx_fifo_drop(&l->q);
	return fd;
}

static void gx_listener_cqe(gx_io_req *req, int32_t res, uint32_t flags)
{
	gx_listener *l = (gx_listener *)((char *)req - offsetof(gx_listener, op));
	if (!(flags & IORING_CQE_F_MORE)) {
		l->armed = false;
		l->holding = false;
		gx_io_untrack(&l->op);
		gx_waitq_wake_all(&l->stopq);
	}
	gx_wq_node *w;
	if (res != -ECANCELED) {
		if ((w = gx_waitq_pop(&l->waiters)) != NULL) {
			*(int *)w->elem = res;
			gx_wake(w);
		} else if (res >= 0) {
			gx_listener_push(l, res);
		} else {
			l->err = res;
		}
	}
	if (!l->armed && !l->stopping) {
		/* the multishot ended: the other acceptors re-arm it, or learn
		 * that the socket was closed (a halt releases them itself) */
		while ((w = gx_waitq_pop(&l->waiters)) != NULL) {
			*(int *)w->elem = -EAGAIN;
			gx_wake(w);
		}
	}
}

static int gx_listener_arm(gx_listener *l)
{
	gx_loop *loop = gx_loop_get();
	memset(&l->op, 0, sizeof l->op);
	l->op.req.complete = gx_listener_cqe;
	l->op.opcode = GX_OP_ACCEPT_MULTI;
	l->op.fd = l->fd;
	l->op.flags = SOCK_CLOEXEC | SOCK_NONBLOCK;
	l->op.fds = gx_fd_state(l->fd);
	if (!l->op.fds)
		return -ENOMEM;
	if (l->op.fds->closing)
		return -EBADF;
	int rc = loop->ops->arm(loop, &l->op);
	if (rc < 0)
		return rc;
	l->armed = true;
	gx_io_track(&l->op); /* so gx_close and shutdown cancel it too */
	return 0;
}

int gx_listener_start(gx_listener **out, int fd)
{
	if (!out || fd < 0)
		return -EINVAL;
	*out = NULL;
	if (!gx_sched_active())
		return -EPERM;
	gx_listener *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	l->fd = fd;
	gx_fifo_init(&l->q, sizeof(int), 64);
	l->multishot = gx_loop_get()->ops == &gx_backend_uring;
	if (l->multishot) {
		int rc = gx_listener_arm(l);
		if (rc < 0) {
			free(l);
			return rc;
		}
	}
	*out = l;
	return 0;
}

int gx_listener_accept(gx_listener *l, gx_until u)
{
	if (!l)
		return -EINVAL;
	if (!l->multishot)
		return l->stopping ? -ECANCELED : gx_accept(l->fd, NULL, NULL, SOCK_NONBLOCK, u);
again:
	if (l->q.len > 0)
		return gx_listener_pop(l);
	if (l->err) {
		int e = l->err;
		l->err = 0;
		return e;
	}
	if (l->stopping)
		return -ECANCELED;
	if (!l->armed) {
		int rc = gx_listener_arm(l);
		if (rc < 0)
			return rc;
	}
	int res = -EINTR;
	gx_wq_node n;
	n.elem = &res;
	int rc = gx_wait_in(&l->waiters, &n, u, "accept");
	if (rc < 0)
		return rc;
	if (res == -EAGAIN)
		goto again; /* the multishot ended under us: re-arm */
	return res;
}

/* No more accepts from now on: cancel the multishot (or the epoll
 * accepts) and wait until the kernel is done with it. */
static int gx_listener_halt(gx_listener *l)
{
	l->stopping = true;
	if (!l->multishot) {
		/* accepts blocked on the socket end with -ECANCELED */
		gx_fd *fds = gx_fd_state(l->fd);
		gx_loop *loop = gx_loop_get();
		for (gx_io_op *op = fds ? fds->ops : NULL, *next; op; op = next) {
			next = op->next;
			if (op->opcode == GX_OP_ACCEPT)
				loop->ops->cancel(loop, op);
		}
	}
	if (l->armed) {
		if (!gx_co_current())
			return -EPERM;
		gx_loop *loop = gx_loop_get();
		loop->ops->cancel(loop, &l->op);
		while (l->armed) {
			gx_wq_node n;
			gx_wait_in(&l->stopq, &n, GX_FOREVER, "listener stop");
		}
	}
	return 0;
}

/* The waiters get what is queued, then learn that the listener is done. */
static void gx_listener_release(gx_listener *l)
{
	gx_wq_node *w;
	while ((w = gx_waitq_pop(&l->waiters)) != NULL) {
		*(int *)w->elem = l->q.len > 0 ? gx_listener_pop(l) : -ECANCELED;
		gx_wake(w);
	}
}

int gx_listener_pause(gx_listener *l)
{
	if (!l)
		return -EINVAL;
	bool had_multishot = l->multishot && !l->stopping;
	int rc = gx_listener_halt(l);
	if (rc < 0)
		return rc;
	/* The kernel wakes one waiter per new connection on a listening
	 * socket (exclusive wake-ups), and the cancel may have eaten one
	 * meant for a connection that our multishot never accepted: no other
	 * process sharing the socket is woken for it. Take what the queue
	 * holds now; it is served like the rest. */
	for (int i = 0; had_multishot && i < 1024; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			break;
		gx_listener_push(l, fd);
	}
	gx_listener_release(l);
	return 0;
}

int gx_listener_stop(gx_listener *l)
{
	if (!l)
		return 0;
	int rc = gx_listener_halt(l);
	if (rc < 0)
		return rc;
	gx_listener_release(l);
	while (l->q.len > 0)
		close(gx_listener_pop(l));
	gx_fifo_free(&l->q);
	free(l);
	return 0;
}
