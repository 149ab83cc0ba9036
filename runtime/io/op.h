/*
 * I/O operations: the record both backends complete, and the per-fd state.
 *
 * An operation record lives on the waiting coroutine's stack. Its first
 * member is the gx_io_req whose address is the io_uring user_data; the
 * epoll backend keeps it in its fd's list until the fd is ready. Either way
 * the backend ends it with gx_io_complete(op, res), exactly once.
 */
#ifndef GX_IO_OP_H
#define GX_IO_OP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/wait.h"
#include "io/backend.h"

enum gx_opcode {
	GX_OP_READ,
	GX_OP_WRITE,
	GX_OP_READV,
	GX_OP_WRITEV,
	GX_OP_RECV,
	GX_OP_SEND,
	GX_OP_RECVMSG,
	GX_OP_SENDMSG,
	GX_OP_ACCEPT,
	GX_OP_CONNECT,
	GX_OP_POLL,
	GX_OP_OPENAT,
	GX_OP_FSYNC,
	GX_OP_ACCEPT_MULTI, /* io_uring multishot accept of a gx_listener */
	GX_OP_RECV_MULTI,   /* io_uring multishot recv into the buffer ring */
	GX_OP_FUTEX_WAIT,   /* io_uring only: buf = the word, len = expected value */
	GX_OP_FUTEX_WAITV,  /* io_uring only: buf = gx_futex_waitv[len] */
};

struct gx_fd;

typedef struct gx_io_op {
	gx_io_req req; /* first: its address is the user_data */
	struct gx_io_op *next, *prev; /* in its fd's list while in flight */
	gx_waiter *w;
	struct gx_fd *fds;
	int32_t res;
	uint8_t opcode;
	bool done;
	bool cancel_wait;  /* parked until the cancelled op completes */
	bool write_side;   /* epoll: waits for EPOLLOUT rather than EPOLLIN */
	bool in_progress;  /* epoll connect: EINPROGRESS seen */
	bool untried;      /* epoll: waiting without a first try (drained fd) */
	int fd;
	int flags;         /* msg, accept, open flags; poll events */
	uint32_t len;      /* bytes, or iovcnt */
	void *buf;         /* buffer, iovec, msghdr, path, or sockaddr */
	socklen_t *addrlen;
	socklen_t alen;    /* connect's address length */
	uint64_t off;      /* offset; openat's mode */
} gx_io_op;

/* What the runtime keeps per file descriptor (index = fd). */
typedef struct gx_fd {
	int fd;               /* its number (-100 for the AT_FDCWD entry, which
			       * also holds ops on no fd: futex waits) */
	uint32_t inflight;    /* ops armed and not completed */
	bool registered;      /* epoll: in the epoll set */
	bool unpollable;      /* epoll: regular file, runs synchronously */
	bool stream;          /* epoll: a stream socket or a pipe */
	bool rdrained;        /* epoll: a short read found it empty, no EPOLLIN since */
	bool rdhup;           /* epoll: the peer's end (or an error) was reported */
	bool closing;
	gx_io_op *ops;        /* in flight, through next/prev */
	bool sending;         /* a gx_send is running on this fd */
	gx_waitq closeq;      /* gx_close waiting for inflight to reach 0 */
	gx_waitq sendq;       /* gx_send calls waiting for their turn (FIFO) */
	struct gx_rx *rx;     /* io_uring multishot receive state (recv_ms.c) */
	bool ms;              /* receives go through rx (decided, not stopped) */
	uint32_t slot1;       /* io_uring: registered file slot + 1 (0: none) */
} gx_fd;

/* The state of fd, created on first use; NULL for a negative fd or when
 * the table cannot grow. */
gx_fd *gx_fd_state(int fd);
/* fd is a SOCK_STREAM socket (both backends' receive shortcuts need one). */
bool gx_fd_stream_socket(int fd);

/* Count op as in flight on its fd (op->fds set) and the loop / stop. */
void gx_io_track(gx_io_op *op);
void gx_io_untrack(gx_io_op *op);

/* End op with res: exactly once per armed op, from the backend. */
void gx_io_complete(gx_io_op *op, int32_t res);

/* The fd's send turn (what keeps two senders' bytes apart): take it if
 * free, without waiting (true: taken); give it to the next sender. A
 * send that runs on its own (gx_conn's) holds it while in flight. */
bool gx_send_turn_try(gx_fd *fds);
void gx_send_turn_end(gx_fd *fds);

/* Park the calling coroutine on the shared (never FUTEX2_PRIVATE) 32-bit
 * futex word at addr while it holds val: for words in MAP_SHARED memory
 * that other processes change and FUTEX_WAKE. The loop keeps running the
 * process's other coroutines meanwhile.
 * Returns 0 when woken, and also at once when *addr != val when the kernel
 * looked (-EAGAIN from the kernel): either way the caller re-checks its
 * condition; spurious returns of 0 are possible, like futex(2).
 * Errors: -EPERM outside a coroutine; -EFAULT for a NULL or unmapped
 * addr, -EINVAL for a misaligned one; -ETIMEDOUT / the context's error when
 * u ends first (the wait is cancelled and its completion awaited first, so
 * nothing is left in flight); -EOPNOTSUPP on the epoll backend and on a
 * kernel whose io_uring lacks IORING_OP_FUTEX_WAIT (Linux < 6.7; learnt at
 * the first call, later calls fail fast): then sleep and poll instead;
 * -EAGAIN when the ring refused a submission (transient, as for any op).
 * A runtime shutdown cancels a parked wait like any op in flight. */
int gx_io_futex_wait(_Atomic uint32_t *addr, uint32_t val, gx_until u);

/* struct futex_waitv (uapi linux/futex.h, 5.16), under our own name so
 * that older headers need not have it; flags are futex2 flags */
typedef struct gx_futex_waitv {
	uint64_t val;
	uint64_t uaddr;
	uint32_t flags;
	uint32_t reserved;
} gx_futex_waitv;
#define GX_FUTEX2_SIZE_U32 0x02u

/* As gx_io_futex_wait on two shared words at once (IORING_OP_FUTEX_WAITV):
 * woken by a FUTEX_WAKE on either, returns at once when either holds
 * another value than given. Same returns and errors. */
int gx_io_futex_wait2(_Atomic uint32_t *addr, uint32_t val, _Atomic uint32_t *addr2, uint32_t val2, gx_until u);

/* As gx_io_futex_wait2 on n shared words (1..GX_FUTEX_WAITV_MAX, the
 * kernel's limit), with the caller's waiter w: it may hold other wait
 * clauses (channel nodes, with indexes >= 1), and the first to fire ends
 * the wait (the futex op is then cancelled and awaited). Returns 0 when a
 * word changed or was woken (or differed at arm time), the index of
 * another clause of w that fired, or gx_io_futex_wait's errors. The
 * vector stays the caller's and must live until the call returns. */
#define GX_FUTEX_WAITV_MAX 128u
int gx_io_futex_waitv_on(const gx_futex_waitv *v, uint32_t n, gx_waiter *w, gx_until u);

/* ---- multishot receive into the buffer ring (recv_ms.c, io_uring) ---- */

/* Register the process's buffer ring; 0 or -errno (then gx_recv stays on
 * single-shot receives). count: power of two; size: bytes per buffer;
 * bundle: multishot receives take several buffers per completion
 * (IORING_RECVSEND_BUNDLE, the caller checked the kernel has it). */
struct io_uring;
int gx_bufring_init(struct io_uring *ring, uint32_t count, uint32_t size, bool bundle);
void gx_bufring_fini(void);
/* The multishot path applies to fds (a stream socket, io_uring with a
 * buffer ring): 1 yes, 0 no. */
int gx_recv_ms_applies(gx_fd *fds);
ssize_t gx_recv_ms(gx_fd *fds, void *buf, size_t len, gx_until u);
/* Zero-copy: wait as gx_recv_ms until bytes are queued, point *p at the
 * oldest queued buffer's bytes and return how many (0 at the end of the
 * stream, -EAGAIN: receive plainly once, -errno). They stay queued, and
 * *p valid, until gx_recv_ms_skip drops them (n <= that count). */
ssize_t gx_recv_ms_peek(gx_fd *fds, const char **p, gx_until u);
/* True when bytes are queued: a peek or a receive returns at once. */
bool gx_recv_ms_queued(const gx_fd *fds);
void gx_recv_ms_skip(gx_fd *fds, size_t n);
/* fd's state when its receives go through the multishot queue (a stream
 * socket on io_uring, inside a coroutine), else NULL. */
gx_fd *gx_recv_ms_fd(int fd);
/* Another kind of receive wants fds (readv, recvmsg, recv with flags,
 * poll): stop the multishot for good (waits for its last CQE). Then
 * gx_recv_ms_take copies what is still queued into iov (-EAGAIN when
 * nothing is), keeping it queued with peek. */
int gx_recv_ms_stop(gx_fd *fds);
struct iovec;
ssize_t gx_recv_ms_take(gx_fd *fds, const struct iovec *iov, size_t cnt, bool peek);

/* Close: wake fds's receivers and wait until they left (they return
 * -ECANCELED); then reset gives the queued buffers back and frees the
 * receive state. */
void gx_recv_ms_quiesce(gx_fd *fds);
void gx_recv_ms_reset(gx_fd *fds);

/* Free the fd table (loop shutdown). */
void gx_fd_table_free(void);

/* Every op in flight on the table, for shutdown: f(op) for each. */
void gx_fd_table_each_op(void (*f)(gx_io_op *op));

#endif
