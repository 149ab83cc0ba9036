/*
 * Multishot receive into a per-process buffer ring (io_uring only).
 *
 * The first gx_recv on a stream socket arms one IORING_OP_RECV with
 * IORING_RECV_MULTISHOT and buffer selection from the process's provided
 * buffer ring. From then on the kernel fills ring buffers as data arrives,
 * one CQE each, with no SQE per receive; gx_recv copies out of the queued
 * buffers (no system call, no park when data is there) and gives each
 * buffer back to the ring once it is consumed.
 *
 * With GONEX_RECV_BUNDLE (Linux 6.10+), one CQE may carry several
 * consecutive buffers of the ring (a bundle): fewer completions, and one
 * socket receive in the kernel, when more than a buffer's worth waits.
 *
 * Back-pressure: a socket holds at most GX_RX_MAX_QUEUED buffers; beyond
 * that its multishot is cancelled (TCP flow control takes over) and re-armed
 * when the application has read the queue down. Out of buffers (-ENOBUFS,
 * the kernel ends the multishot): the waiting call does one plain receive
 * into its own buffer, and the next call re-arms the multishot, by which
 * time consumed buffers have come back.
 *
 * Invariants: every buffer is either in the ring (kernel's) or queued on
 * exactly one socket's rx (ours) and goes back exactly once; the multishot
 * record lives in the socket's heap state, tracked like any op, so gx_close
 * and shutdown cancel it and wait for its last CQE.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "core/fifo.h"
#include "io/loop.h"
#include "io/op.h"

#define GX_RX_MAX_QUEUED 16

typedef struct gx_rx_chunk {
	uint16_t bid;
	uint32_t len, off;
} gx_rx_chunk;

struct gx_rx {
	gx_io_op op;       /* the multishot record */
	bool armed;        /* its CQEs may still come */
	bool eof;
	bool nobufs;
	bool applies;      /* decided once: a stream socket */
	bool decided;
	int32_t err;       /* an error to hand to the next receive */
	uint32_t users;    /* gx_recv calls inside gx_recv_ms (close waits) */
	gx_fifo q;         /* queued buffers (gx_rx_chunk) */
	gx_waitq waiters;
};

/* The i-th queued buffer of rx, oldest first. */
static inline gx_rx_chunk *gx_rx_at(struct gx_rx *rx, uint32_t i)
{
	return gx_fifo_at(&rx->q, i);
}

/*
 * Bundles: a CQE names only the first buffer of a bundle; the rest are
 * the ring entries after it, in ring order. So the ring's contents are
 * mirrored here: at[i] is the buffer put at ring position i (mod count),
 * pos[bid] the position buffer bid was last put at. The kernel consumes
 * positions in order, so buffer k of a bundle starting with bid is
 * at[pos[bid] + k], each full but the last.
 */
static struct {
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *bufs;
	size_t bufs_bytes;
	uint32_t count, size;
	bool bundle;
	uint16_t tail;     /* the next ring position we fill (the ring's tail) */
	uint16_t *at, *pos; /* bundles: ring position -> buffer -> position */
} B;

int gx_bufring_init(struct io_uring *ring, uint32_t count, uint32_t size, bool bundle)
{
	memset(&B, 0, sizeof B);
	if (count == 0 || count > 32768)
		return -EINVAL;
	if (bundle) {
		B.at = malloc(2 * count * sizeof *B.at);
		if (!B.at)
			return -ENOMEM;
		B.pos = B.at + count;
		for (uint32_t i = 0; i < count; i++)
			B.at[i] = B.pos[i] = (uint16_t)i;
		B.bundle = true;
	}
	B.br_bytes = count * sizeof(struct io_uring_buf);
	B.br = mmap(NULL, B.br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (B.br == MAP_FAILED) {
		B.br = NULL;
		return -ENOMEM;
	}
	struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)B.br, .ring_entries = count, .bgid = 0};
	int rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc < 0) {
		munmap(B.br, B.br_bytes);
		free(B.at);
		memset(&B, 0, sizeof B);
		return rc;
	}
	B.bufs_bytes = (size_t)count * size;
	B.bufs = mmap(NULL, B.bufs_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (B.bufs == MAP_FAILED) {
		io_uring_unregister_buf_ring(ring, 0);
		munmap(B.br, B.br_bytes);
		free(B.at);
		memset(&B, 0, sizeof B);
		return -ENOMEM;
	}
	B.count = count;
	B.size = size;
	B.tail = (uint16_t)count;
	io_uring_buf_ring_init(B.br);
	int mask = io_uring_buf_ring_mask(count);
	for (uint32_t i = 0; i < count; i++)
		io_uring_buf_ring_add(B.br, B.bufs + (size_t)i * size, size, (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(B.br, (int)count);
	return 0;
}

void gx_bufring_fini(void)
{
	if (B.bufs)
		munmap(B.bufs, B.bufs_bytes);
	if (B.br)
		munmap(B.br, B.br_bytes);
	free(B.at);
	memset(&B, 0, sizeof B);
}

static void gx_bufring_give_back(uint16_t bid)
{
	uint32_t mask = (uint32_t)io_uring_buf_ring_mask(B.count);
	if (B.bundle) {
		B.at[B.tail & mask] = bid;
		B.pos[bid] = B.tail;
	}
	B.tail++;
	io_uring_buf_ring_add(B.br, B.bufs + (size_t)bid * B.size, B.size, bid, (int)mask, 0);
	io_uring_buf_ring_advance(B.br, 1);
}

/* Buffer k of the bundle that starts with buffer bid at ring position
 * first (read before any of them goes back: that moves pos[]). */
static uint16_t gx_bundle_nth(uint16_t bid, uint16_t first, uint32_t k)
{
	return k == 0 ? bid : B.at[(uint16_t)(first + k) & (B.count - 1)];
}

/* Queue the buffers of a CQE's res bytes starting with buffer bid: 0, or
 * -ENOMEM (the buffers that did not fit go back, their bytes lost). */
static int gx_rx_queue(struct gx_rx *rx, uint16_t bid, uint32_t res)
{
	uint32_t n = (res + B.size - 1) / B.size; /* each full but the last */
	uint16_t first = B.bundle ? B.pos[bid] : 0;
	for (uint32_t k = 0; k < n; k++) {
		gx_rx_chunk *c = gx_fifo_push(&rx->q);
		if (!c) {
			for (; k < n; k++)
				gx_bufring_give_back(gx_bundle_nth(bid, first, k));
			return -ENOMEM;
		}
		c->bid = gx_bundle_nth(bid, first, k);
		c->len = k + 1 < n ? B.size : res - k * B.size;
		c->off = 0;
	}
	return 0;
}

static void gx_rx_cqe(gx_io_req *req, int32_t res, uint32_t flags)
{
	struct gx_rx *rx = (struct gx_rx *)req; /* op (and req) come first */
	if (!(flags & IORING_CQE_F_MORE)) {
		rx->armed = false;
		gx_io_untrack(&rx->op);
	}
	if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
		uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
		/* the queue may grow: more CQEs can land between the pause and
		 * its effect */
		if (gx_rx_queue(rx, bid, (uint32_t)res) < 0) {
			rx->err = -ENOMEM; /* bytes lost: report it */
			gx_waitq_wake_all(&rx->waiters);
			return;
		}
		if (rx->q.len >= GX_RX_MAX_QUEUED && rx->armed) { /* the reader is behind: pause */
			gx_loop *loop = gx_loop_get();
			loop->ops->cancel(loop, &rx->op);
		}
	} else if (res == 0) {
		rx->eof = true;
	} else if (res == -ENOBUFS) {
		rx->nobufs = true;
	} else if (res < 0 && res != -ECANCELED) {
		rx->err = res;
	}
	gx_waitq_wake_all(&rx->waiters);
}

static int gx_rx_arm(gx_fd *fds)
{
	struct gx_rx *rx = fds->rx;
	gx_loop *loop = gx_loop_get();
	memset(&rx->op, 0, sizeof rx->op);
	rx->op.req.complete = gx_rx_cqe;
	rx->op.opcode = GX_OP_RECV_MULTI;
	rx->op.fd = fds->fd;
	rx->op.fds = fds;
	int rc = loop->ops->arm(loop, &rx->op);
	if (rc < 0)
		return rc;
	rx->armed = true;
	gx_io_track(&rx->op);
	return 0;
}

int gx_recv_ms_applies(gx_fd *fds)
{
	if (!B.br || fds->fd < 0)
		return 0;
	if (!fds->rx) {
		fds->rx = calloc(1, sizeof *fds->rx);
		if (!fds->rx)
			return 0;
		gx_fifo_init(&fds->rx->q, sizeof(gx_rx_chunk), GX_RX_MAX_QUEUED * 2);
	}
	struct gx_rx *rx = fds->rx;
	if (!rx->decided) {
		rx->applies = gx_fd_stream_socket(fds->fd);
		rx->decided = true;
		fds->ms = rx->applies;
	}
	return rx->applies;
}

/* Wait until rx has bytes queued: 1, or 0 at the end of the stream,
 * -EAGAIN for one plain receive instead, -errno. */
static ssize_t gx_rx_wait(gx_fd *fds, struct gx_rx *rx, gx_until u)
{
	for (;;) {
		if (rx->q.len > 0)
			return 1;
		if (fds->closing)
			return -ECANCELED;
		if (rx->err) {
			int32_t e = rx->err;
			rx->err = 0;
			return e;
		}
		if (rx->eof)
			return 0;
		if (rx->nobufs && !rx->armed) {
			rx->nobufs = false; /* one plain receive; the next call re-arms */
			return -EAGAIN;
		}
		if (!rx->armed) {
			if (!rx->applies) /* stopped for good: plain receives now */
				return -EAGAIN;
			int rc = gx_rx_arm(fds);
			if (rc < 0)
				return rc;
		}
		gx_wq_node n;
		int rc = gx_wait_in(&rx->waiters, &n, u, "recv");
		if (rc < 0)
			return rc;
	}
}

/* Drop n bytes from the oldest queued buffer (n <= what it holds). */
static void gx_rx_skip(struct gx_rx *rx, size_t n)
{
	gx_rx_chunk *c = gx_rx_at(rx, 0);
	c->off += (uint32_t)n;
	if (c->off == c->len) {
		gx_bufring_give_back(c->bid);
		gx_fifo_drop(&rx->q);
	}
}

static ssize_t gx_recv_ms_loop(gx_fd *fds, struct gx_rx *rx, void *buf, size_t len, gx_until u)
{
	ssize_t rc = gx_rx_wait(fds, rx, u);
	if (rc <= 0)
		return rc;
	size_t n = 0;
	while (rx->q.len > 0 && n < len) {
		gx_rx_chunk *c = gx_rx_at(rx, 0);
		size_t k = c->len - c->off;
		if (k > len - n)
			k = len - n;
		memcpy((char *)buf + n, B.bufs + (size_t)c->bid * B.size + c->off, k);
		n += k;
		gx_rx_skip(rx, k);
	}
	return (ssize_t)n;
}

ssize_t gx_recv_ms(gx_fd *fds, void *buf, size_t len, gx_until u)
{
	if (!gx_co_current())
		return -EPERM;
	if (fds->closing)
		return -EBADF;
	struct gx_rx *rx = fds->rx;
	rx->users++;
	ssize_t n = gx_recv_ms_loop(fds, rx, buf, len, u);
	rx->users--;
	return n;
}

ssize_t gx_recv_ms_peek(gx_fd *fds, const char **p, gx_until u)
{
	if (!gx_co_current())
		return -EPERM;
	if (fds->closing)
		return -EBADF;
	struct gx_rx *rx = fds->rx;
	rx->users++;
	ssize_t rc = gx_rx_wait(fds, rx, u);
	rx->users--;
	if (rc <= 0)
		return rc;
	gx_rx_chunk *c = gx_rx_at(rx, 0);
	*p = B.bufs + (size_t)c->bid * B.size + c->off;
	return (ssize_t)(c->len - c->off);
}

bool gx_recv_ms_queued(const gx_fd *fds)
{
	return fds->rx && fds->rx->q.len > 0;
}

void gx_recv_ms_skip(gx_fd *fds, size_t n)
{
	struct gx_rx *rx = fds->rx;
	if (rx && rx->q.len > 0 && n > 0)
		gx_rx_skip(rx, n);
}

int gx_recv_ms_stop(gx_fd *fds)
{
	struct gx_rx *rx = fds->rx;
	if (!rx || !rx->applies)
		return 0;
	rx->applies = false; /* from now on every receive is a plain one */
	fds->ms = false;
	if (rx->armed) {
		gx_loop *loop = gx_loop_get();
		loop->ops->cancel(loop, &rx->op);
		rx->users++;
		while (rx->armed) {
			gx_wq_node n;
			gx_wait_in(&rx->waiters, &n, GX_FOREVER, "recv stop");
		}
		rx->users--;
	}
	return 0;
}

ssize_t gx_recv_ms_take(gx_fd *fds, const struct iovec *iov, size_t cnt, bool peek)
{
	struct gx_rx *rx = fds->rx;
	if (!rx || rx->q.len == 0)
		return -EAGAIN;
	size_t n = 0;
	/* at: the entry being copied (a peek passes entries, a take drops them) */
	uint32_t at = 0, off = gx_rx_at(rx, 0)->off;
	for (size_t i = 0; i < cnt && at < rx->q.len; i++) {
		size_t done = 0;
		while (done < iov[i].iov_len && at < rx->q.len) {
			gx_rx_chunk *c = gx_rx_at(rx, at);
			size_t k = c->len - off;
			if (k > iov[i].iov_len - done)
				k = iov[i].iov_len - done;
			memcpy((char *)iov[i].iov_base + done, B.bufs + (size_t)c->bid * B.size + off, k);
			done += k;
			off += (uint32_t)k;
			if (off == c->len) {
				if (peek) {
					at++;
				} else {
					gx_bufring_give_back(c->bid);
					gx_fifo_drop(&rx->q);
				}
				off = at < rx->q.len ? gx_rx_at(rx, at)->off : 0;
			} else if (!peek) {
				c->off = off;
			}
		}
		n += done;
	}
	return (ssize_t)n;
}

void gx_recv_ms_quiesce(gx_fd *fds)
{
	struct gx_rx *rx = fds->rx;
	if (!rx)
		return;
	gx_waitq_wake_all(&rx->waiters);
	while (rx->users > 0) /* woken receivers see closing and leave */
		gx_yield();
}

void gx_recv_ms_reset(gx_fd *fds)
{
	struct gx_rx *rx = fds->rx;
	if (!rx)
		return;
	while (rx->q.len > 0) {
		if (B.br)
			gx_bufring_give_back(gx_rx_at(rx, 0)->bid);
		gx_fifo_drop(&rx->q);
	}
	gx_fifo_free(&rx->q);
	free(rx);
	fds->rx = NULL;
	fds->ms = false;
}
