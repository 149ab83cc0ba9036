/*
 * gx_conn: a buffered connection (gonex/conn.h).
 *
 * What: reads that hand out pointers (a line, n bytes) and writes that
 * queue until the coroutine would wait.
 *
 * Reading. Bytes live in one of two places: the connection's own buffer
 * r[roff, roff + rlen), or, on io_uring, the fd's queue of provided
 * buffers that its multishot receive filled (recv_ms.c). A read with r
 * empty looks at the oldest provided buffer first (gx_recv_ms_peek): if
 * its answer is all there, it lends a pointer into it and remembers
 * `lent`, the bytes to drop from that buffer at the start of the next
 * call (gx_conn_settle), when the pointer stops being valid. Otherwise the
 * bytes are gathered into r, which is allocated on first need and grows
 * by doubling from 4 KiB up to cap, so a connection served from provided
 * buffers alone never has one, and one that never sends a big message
 * never holds cap bytes.
 *
 * Writing. w[0, wlen) is the queue (allocated on the first write, grown
 * as r is). Before a read waits, the queue goes out without the
 * coroutine waiting for it: the buffer becomes the one in flight (ws, the
 * two swap), and one send record in the connection carries it; its
 * completion (on the loop) sends the rest of a short send, then whatever
 * was queued meanwhile, and wakes anyone waiting for the send to end. So
 * a request-reply turn costs one park (for the next request), not two.
 * An explicit flush, a full queue and free wait for the send in flight.
 * The send in flight holds the fd's send turn, so a gx_send on the same
 * fd from another coroutine still never interleaves with it. A send that
 * fails breaks the connection for writing: werr keeps the error and every
 * later write or flush returns it, since how much of the queue went out is
 * unknown.
 *
 * Invariants: rlen == 0 whenever lent != 0 (a lent pointer is only taken
 * with r empty); roff + rlen <= cap; r is compacted (moved to offset 0)
 * only when its end is reached, so a pointer into r stays valid until the
 * next read call, as promised.
 *
 * Rejected: copying every receive into r (the zero-copy path is what the
 * provided buffers are for); a send per write (a pipelined turn would
 * make one send per reply); a flush at every scheduler turn from the loop
 * (the flush before each wait gives request-reply protocols the same one
 * send per turn); a flush that waits for its send (a second park and
 * resume per request, a tenth of the runtime's instructions per request).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/loop.h"
#include "io/op.h"
#include "serve/serve.h"

#include <gonex/conn.h>
#include <gonex/io.h>

#define GX_CONN_DEFAULT_CAP (16u << 10)
#define GX_CONN_MAX_CAP (64u << 20)

struct gx_conn {
	gx_io_op sop; /* the send in flight (gx_conn_sent finds c from it) */
	int fd;
	bool timed_out;
	size_t cap;
	size_t lent; /* bytes of the oldest provided buffer handed out */
	char *r;     /* own read buffer (rsize bytes, grown up to cap) or NULL */
	size_t rsize, roff, rlen;
	char *w;     /* write queue (wsize bytes, grown up to cap) or NULL */
	size_t wsize, wlen;
	char *ws;    /* the buffer in flight: ws[soff, slen) still to go */
	size_t wssize, soff, slen;
	bool sbusy;  /* a send is in flight (it holds the fd's send turn) */
	bool sstop;  /* free gave up on it: end at its next completion */
	gx_fd *sfds;
	gx_waitq sq; /* coroutines waiting for the send to end */
	int werr;
	int64_t idle_ns, read_ns;
	int64_t since;  /* a message has waited for its rest since then (0: none) */
	bool progress;  /* bytes were consumed since `since` was set */
	_Atomic uint64_t *in, *out; /* gx_serve's counters, or NULL */
};

void gx_conn_counters(gx_conn *c, _Atomic uint64_t *in, _Atomic uint64_t *out)
{
	c->in = in;
	c->out = out;
}

static inline void gx_conn_count(_Atomic uint64_t *ctr, size_t n)
{
	if (ctr) /* one writer (this process): a count, relaxed */
		atomic_fetch_add_explicit(ctr, n, memory_order_relaxed);
}

int gx_conn_open(gx_conn **out, int fd, size_t cap)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (fd < 0 || cap > GX_CONN_MAX_CAP)
		return -EINVAL;
	gx_conn *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->cap = cap ? cap : GX_CONN_DEFAULT_CAP;
	*out = c;
	return 0;
}

int gx_conn_fd(const gx_conn *c)
{
	return c ? c->fd : -EINVAL;
}

void gx_conn_limits(gx_conn *c, int64_t idle_ns, int64_t read_ns)
{
	if (!c)
		return;
	c->idle_ns = idle_ns > 0 ? idle_ns : 0;
	c->read_ns = read_ns > 0 ? read_ns : 0;
}

int gx_conn_timed_out(const gx_conn *c)
{
	return c && c->timed_out;
}

size_t gx_conn_pending(const gx_conn *c)
{
	return c ? c->wlen + (c->sbusy ? c->slen - c->soff : 0) : 0;
}

/* Drop what the last read lent from a provided buffer. */
static void gx_conn_settle(gx_conn *c)
{
	if (c->lent) {
		gx_fd *ms = gx_recv_ms_fd(c->fd);
		if (ms)
			gx_recv_ms_skip(ms, c->lent);
		c->lent = 0;
	}
}

/* u, shortened by the connection's idle or read limit. The read limit
 * runs from the last time the application made progress (consumed
 * bytes) while part of a message waited, not from each wait: a client
 * that trickles a byte at a time (slowloris) is cut off too. */
static gx_until gx_conn_until(gx_conn *c, gx_until u, bool mid)
{
	int64_t d = -1;
	if (mid && c->read_ns > 0) {
		if (!c->since || c->progress) {
			c->since = gx_now();
			c->progress = false;
		}
		d = c->since > INT64_MAX - c->read_ns ? INT64_MAX : c->since + c->read_ns;
	} else if (!mid) {
		c->since = 0;
		if (c->idle_ns > 0)
			d = gx_time_after(c->idle_ns);
	}
	if (d >= 0 && (u.deadline < 0 || d < u.deadline))
		u.deadline = d;
	return u;
}

static ssize_t gx_conn_failed(gx_conn *c, ssize_t rc)
{
	if (rc == -ETIMEDOUT)
		c->timed_out = true;
	return rc;
}

/* A buffer of at least need bytes (need <= cap) at *buf: grown by
 * doubling from 4 KiB, so that a connection that never sends a big
 * message never holds cap bytes. */
static int gx_conn_grow(char **buf, size_t *size, size_t need, size_t cap)
{
	if (*buf && *size >= need)
		return 0;
	size_t n = *size ? *size : 4096;
	while (n < need)
		n *= 2;
	n = n < cap ? n : cap;
	char *b = realloc(*buf, n);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*size = n;
	return 0;
}

static int gx_conn_rbuf(gx_conn *c, size_t need)
{
	return gx_conn_grow(&c->r, &c->rsize, need, c->cap);
}

static void gx_conn_consume(gx_conn *c, size_t n)
{
	c->roff += n;
	c->rlen -= n;
	c->progress = true;
}

static void gx_conn_send_arm(gx_conn *c);

/* The queue becomes the buffer in flight; the other buffer queues. */
static void gx_conn_swap(gx_conn *c)
{
	char *b = c->ws;
	size_t bs = c->wssize;
	c->ws = c->w;
	c->wssize = c->wsize;
	c->slen = c->wlen;
	c->soff = 0;
	c->w = b;
	c->wsize = bs;
	c->wlen = 0;
}

/* The send in flight ended with res. True when there is more to send
 * (the rest of a short send, or what was queued meanwhile). */
static bool gx_conn_sent_res(gx_conn *c, int32_t res)
{
	if (res > 0) {
		gx_conn_count(c->out, (size_t)res);
		c->soff += (size_t)res;
		if (c->soff < c->slen && !c->sstop)
			return true;
	} else if (!c->werr) {
		c->werr = res < 0 ? res : -EIO;
	}
	if (!c->werr && c->wlen && !c->sstop) { /* queued while the last one flew */
		gx_conn_swap(c);
		return true;
	}
	c->sbusy = false;
	gx_send_turn_end(c->sfds);
	gx_waitq_wake_all(&c->sq);
	return false;
}

static void gx_conn_sent(gx_io_req *req, int32_t res, uint32_t flags)
{
	(void)flags;
	gx_io_op *op = (gx_io_op *)req;
	gx_conn *c = (gx_conn *)op; /* sop comes first */
	op->done = true;
	gx_io_untrack(op);
	if (gx_conn_sent_res(c, res))
		gx_conn_send_arm(c);
}

/* Put ws[soff, slen) on its way, as often as the backend ends it at once. */
static void gx_conn_send_arm(gx_conn *c)
{
	gx_loop *loop = gx_loop_get();
	do {
		gx_io_op *op = &c->sop;
		memset(op, 0, sizeof *op);
		op->req.complete = gx_conn_sent;
		op->opcode = GX_OP_SEND;
		op->fd = c->fd;
		op->fds = c->sfds;
		op->buf = c->ws + c->soff;
		size_t left = c->slen - c->soff;
		op->len = left > 0x7ffff000u ? 0x7ffff000u : (uint32_t)left;
		op->flags = MSG_NOSIGNAL;
		int rc = loop->ops->arm(loop, op);
		if (rc == 0) {
			gx_io_track(op);
			return;
		}
		if (rc == 1)
			rc = op->res;
		if (!gx_conn_sent_res(c, rc))
			return;
	} while (1);
}

/* Start sending the queue without waiting for it: 0, or -EAGAIN when it
 * cannot go on its own (a send is in flight, or another coroutine holds
 * the fd's send turn, or this is no coroutine's socket). */
static int gx_conn_send_async(gx_conn *c)
{
	if (c->sbusy || !gx_co_current())
		return -EAGAIN;
	if (!c->sfds && !(c->sfds = gx_fd_state(c->fd)))
		return -EAGAIN;
	if (!gx_send_turn_try(c->sfds))
		return -EAGAIN;
	int rc = gx_conn_grow(&c->ws, &c->wssize, 1, c->cap);
	if (rc < 0) {
		gx_send_turn_end(c->sfds);
		return rc;
	}
	gx_conn_swap(c);
	c->sbusy = true;
	gx_conn_send_arm(c);
	return 0;
}

/* Wait until no send is in flight: 0, or u's error. */
static int gx_conn_send_wait(gx_conn *c, gx_until u)
{
	while (c->sbusy) {
		gx_wq_node n;
		int rc = gx_wait_in(&c->sq, &n, u, "send");
		if (rc < 0)
			return (int)gx_conn_failed(c, rc);
	}
	return 0;
}

int gx_conn_flush(gx_conn *c, gx_until u)
{
	if (!c)
		return -EINVAL;
	if (c->werr)
		return c->werr;
	int rc = c->wlen ? gx_conn_send_async(c) : 0;
	if (rc < 0 && rc != -EAGAIN)
		return rc;
	if (rc == -EAGAIN && !c->sbusy) {
		/* the turn is someone else's: send in line, after them */
		ssize_t n = gx_send(c->fd, c->w, c->wlen, 0, u);
		c->wlen = 0;
		if (n < 0)
			c->werr = (int)gx_conn_failed(c, n);
		else
			gx_conn_count(c->out, (size_t)n);
		return c->werr;
	}
	rc = gx_conn_send_wait(c, u); /* what was queued behind it went too */
	return rc < 0 ? rc : c->werr;
}

/* Before a read waits: what is queued goes out (not waited for). */
static int gx_conn_before_wait(gx_conn *c, gx_until u)
{
	if (c->werr || !c->wlen)
		return c->werr;
	if (c->sbusy)
		return 0; /* it goes when the send in flight ends */
	int rc = gx_conn_send_async(c);
	return rc == -EAGAIN ? gx_conn_flush(c, u) : rc < 0 ? rc : c->werr;
}

/* Receive more into r: the count, 0 at the end of the stream, -errno
 * (-ENOBUFS when r is full). */
static ssize_t gx_conn_more(gx_conn *c, gx_until u)
{
	int rc = gx_conn_rbuf(c, 1);
	if (rc < 0)
		return rc;
	if (c->rlen == 0) {
		c->roff = 0; /* what the last call handed out may go now */
	} else if (c->roff && c->roff + c->rlen == c->rsize) {
		memmove(c->r, c->r + c->roff, c->rlen);
		c->roff = 0;
	}
	if (c->roff + c->rlen == c->rsize && (c->rsize == c->cap || gx_conn_rbuf(c, c->rsize + 1) < 0))
		return c->rsize == c->cap ? -ENOBUFS : -ENOMEM;
	size_t room = c->rsize - c->roff - c->rlen;
	if ((rc = gx_conn_before_wait(c, u)) < 0)
		return rc;
	ssize_t n = gx_recv(c->fd, c->r + c->roff + c->rlen, room, 0, gx_conn_until(c, u, c->rlen > 0));
	if (n < 0)
		return gx_conn_failed(c, n);
	c->rlen += (size_t)n;
	gx_conn_count(c->in, (size_t)n);
	return n;
}

/* r is empty: look at the oldest provided buffer. Its count with *p at
 * it (the caller lends from it or gathers it), 0 at the end of the
 * stream, -EAGAIN when there is no provided buffer to look at. */
static ssize_t gx_conn_peek(gx_conn *c, const char **p, gx_until u)
{
	gx_fd *ms = gx_recv_ms_fd(c->fd);
	if (!ms)
		return -EAGAIN;
	/* Bytes already here: no wait, so no flush (the replies to a
	 * pipelined batch leave together, in one send) and no deadline to
	 * work out (a clock read per call). */
	if (gx_recv_ms_queued(ms)) {
		c->since = 0;
		return gx_recv_ms_peek(ms, p, u);
	}
	int rc = gx_conn_before_wait(c, u);
	if (rc < 0)
		return rc;
	ssize_t n = gx_recv_ms_peek(ms, p, gx_conn_until(c, u, false));
	return n < 0 && n != -EAGAIN ? gx_conn_failed(c, n) : n;
}

/* Move up to cap bytes of the oldest provided buffer (n at p) into r. */
static int gx_conn_gather(gx_conn *c, const char *p, size_t n)
{
	if (n > c->cap)
		n = c->cap;
	int rc = gx_conn_rbuf(c, n);
	if (rc < 0)
		return rc;
	memcpy(c->r, p, n);
	c->roff = 0;
	c->rlen = n;
	gx_recv_ms_skip(gx_recv_ms_fd(c->fd), n);
	gx_conn_count(c->in, n);
	return 0;
}

/* r is empty: lend the first want(p, n, arg) bytes of the oldest
 * provided buffer (0: its answer is not all there), or gather it into r.
 * >0: lent that many, *out at them; 0: go on with r (gathered, or no
 * provided buffer), with *eof set at the end of the stream; -errno. */
typedef size_t (*gx_conn_want)(const char *p, size_t n, size_t arg);

static ssize_t gx_conn_lend(gx_conn *c, gx_conn_want want, size_t arg, const char **out, gx_until u, bool *eof)
{
	const char *p;
	ssize_t n = gx_conn_peek(c, &p, u);
	if (n == -EAGAIN)
		return 0;
	if (n == 0)
		*eof = true;
	if (n <= 0)
		return n;
	size_t k = want(p, (size_t)n < c->cap ? (size_t)n : c->cap, arg); /* cap bounds a line here too */
	if (k) {
		c->lent = k;
		c->progress = true;
		*out = p;
		gx_conn_count(c->in, k);
		return (ssize_t)k;
	}
	int rc = gx_conn_gather(c, p, (size_t)n);
	return rc < 0 ? rc : 0;
}

static size_t gx_want_delim(const char *p, size_t n, size_t delim)
{
	const char *q = memchr(p, (int)delim, n);
	return q ? (size_t)(q - p) + 1 : 0;
}

static size_t gx_want_n(const char *p, size_t n, size_t want)
{
	(void)p;
	return n >= want ? want : 0;
}

ssize_t gx_conn_read_until(gx_conn *c, int delim, const char **out, gx_until u)
{
	if (!c || !out)
		return -EINVAL;
	gx_conn_settle(c);
	bool eof = false;
	if (c->rlen == 0) {
		ssize_t k = gx_conn_lend(c, gx_want_delim, (unsigned char)delim, out, u, &eof);
		if (k != 0 || eof)
			return k;
	}
	size_t scanned = 0;
	for (;;) {
		const char *q = c->rlen > scanned ? memchr(c->r + c->roff + scanned, delim, c->rlen - scanned) : NULL;
		if (q) {
			size_t k = (size_t)(q - (c->r + c->roff)) + 1;
			*out = c->r + c->roff;
			gx_conn_consume(c, k);
			return (ssize_t)k;
		}
		scanned = c->rlen;
		if (c->rlen == c->cap)
			return -ENOBUFS;
		ssize_t n = gx_conn_more(c, u);
		if (n == 0)
			return c->rlen ? -ENODATA : 0;
		if (n < 0)
			return n;
	}
}

ssize_t gx_conn_read_n(gx_conn *c, size_t n, const char **out, gx_until u)
{
	if (!c || !out || n == 0)
		return -EINVAL;
	if (n > c->cap)
		return -EMSGSIZE;
	gx_conn_settle(c);
	bool eof = false;
	if (c->rlen == 0) {
		ssize_t k = gx_conn_lend(c, gx_want_n, n, out, u, &eof);
		if (k != 0 || eof)
			return k;
	}
	while (c->rlen < n) {
		if (c->roff + n > c->rsize) { /* make room for all n in one piece */
			if (c->rlen)
				memmove(c->r, c->r + c->roff, c->rlen);
			c->roff = 0;
			if (gx_conn_rbuf(c, n) < 0)
				return -ENOMEM;
		}
		ssize_t got = gx_conn_more(c, u);
		if (got == 0)
			return c->rlen ? -ENODATA : 0;
		if (got < 0)
			return got;
	}
	*out = c->r + c->roff;
	gx_conn_consume(c, n);
	return (ssize_t)n;
}

ssize_t gx_conn_read(gx_conn *c, void *buf, size_t len, gx_until u)
{
	if (!c || (!buf && len))
		return -EINVAL;
	gx_conn_settle(c);
	if (len == 0)
		return 0;
	if (c->rlen) {
		size_t k = c->rlen < len ? c->rlen : len;
		memcpy(buf, c->r + c->roff, k);
		gx_conn_consume(c, k);
		return (ssize_t)k;
	}
	int rc = gx_conn_before_wait(c, u);
	if (rc < 0)
		return rc;
	ssize_t n = gx_recv(c->fd, buf, len, 0, gx_conn_until(c, u, false));
	if (n < 0)
		return gx_conn_failed(c, n);
	gx_conn_count(c->in, (size_t)n);
	return n;
}

ssize_t gx_conn_read_full(gx_conn *c, void *buf, size_t len, gx_until u)
{
	size_t at = 0;
	while (at < len) {
		ssize_t n = gx_conn_read(c, (char *)buf + at, len - at, u);
		if (n == 0)
			return at ? -ENODATA : 0;
		if (n < 0)
			return n;
		at += (size_t)n;
		if (c->read_ns) /* the rest of a message: the read limit */
			u = gx_conn_until(c, u, true);
	}
	return (ssize_t)len;
}

/* r is empty: the oldest provided buffer's bytes, if one is queued now
 * (no wait): their count, *p at them; 0 when none is. */
static size_t gx_conn_view(gx_conn *c, const char **p)
{
	gx_fd *ms = gx_recv_ms_fd(c->fd);
	ssize_t n = ms ? gx_recv_ms_peek(ms, p, gx_deadline(0)) : 0;
	return n > 0 ? (size_t)n : 0;
}

size_t gx_conn_buffered(gx_conn *c, const char **out)
{
	if (!c || !out)
		return 0;
	gx_conn_settle(c);
	if (c->rlen == 0) {
		size_t n = gx_conn_view(c, out); /* zero-copy: a view of it */
		if (n)
			return n;
	}
	*out = c->r ? c->r + c->roff : NULL;
	return c->rlen;
}

void gx_conn_skip(gx_conn *c, size_t n)
{
	if (!c)
		return;
	gx_conn_settle(c);
	const char *p;
	size_t v;
	if (c->rlen == 0 && (v = gx_conn_view(c, &p)) != 0) {
		n = n < v ? n : v;
		gx_recv_ms_skip(gx_recv_ms_fd(c->fd), n);
		gx_conn_count(c->in, n);
		c->progress = true;
		return;
	}
	gx_conn_consume(c, n < c->rlen ? n : c->rlen);
}

ssize_t gx_conn_fill(gx_conn *c, gx_until u)
{
	if (!c)
		return -EINVAL;
	gx_conn_settle(c);
	const char *p;
	size_t v;
	if (c->rlen == 0 && (v = gx_conn_view(c, &p)) != 0) {
		int rc = gx_conn_gather(c, p, v); /* what the view showed, then more */
		if (rc < 0)
			return rc;
	}
	if (c->rlen == c->cap)
		return -ENOBUFS;
	ssize_t n = gx_conn_more(c, u);
	return n <= 0 ? n : (ssize_t)c->rlen;
}

ssize_t gx_conn_write(gx_conn *c, const void *buf, size_t len, gx_until u)
{
	if (!c || (!buf && len))
		return -EINVAL;
	if (c->werr)
		return c->werr;
	if (len == 0)
		return 0;
	if (c->wlen + len > c->cap) {
		int rc = gx_conn_flush(c, u);
		if (rc < 0)
			return rc;
	}
	if (len > c->cap) {
		int rc = gx_conn_send_wait(c, u);
		if (rc < 0)
			return rc;
		ssize_t n = gx_send(c->fd, buf, len, 0, u);
		if (n < 0)
			c->werr = (int)gx_conn_failed(c, n);
		else
			gx_conn_count(c->out, (size_t)n);
		return n;
	}
	if (gx_conn_grow(&c->w, &c->wsize, c->wlen + len, c->cap) < 0)
		return -ENOMEM;
	memcpy(c->w + c->wlen, buf, len);
	c->wlen += len;
	return (ssize_t)len;
}

void gx_conn_free(gx_conn *c)
{
	if (!c)
		return;
	gx_conn_settle(c);
	if (c->wlen || c->sbusy)
		gx_conn_flush(c, gx_timeout(GX_SECOND));
	if (c->sbusy) { /* the peer does not read: give up on the rest */
		gx_loop *loop = gx_loop_get();
		c->sstop = true;
		loop->ops->cancel(loop, &c->sop);
		while (c->sbusy) {
			gx_wq_node n;
			gx_wait_in(&c->sq, &n, GX_FOREVER, "send cancel");
		}
	}
	free(c->r);
	free(c->w);
	free(c->ws);
	free(c);
}
