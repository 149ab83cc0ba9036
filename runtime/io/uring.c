/*
 * The io_uring backend.
 *
 * Setup walks the flag ladder of DESIGN.md and keeps the first step the
 * kernel accepts, always with a large CQ (IORING_SETUP_CQSIZE):
 *   1. SQPOLL (+SQ_AFF with a CPU), only when GONEX_SQPOLL=1;
 *   2. SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL (6.1+), unless
 *      GONEX_DEFER_TASKRUN=0;
 *   3. COOP_TASKRUN | TASKRUN_FLAG | SUBMIT_ALL (5.19+);
 *   4. no flags.
 * -EINVAL from a step means "flag unknown here": try the next one. -ENOSYS
 * or -EPERM means io_uring itself is unavailable: the loop falls back to
 * epoll. The ring fd is registered (IORING_REGISTER_RING_FD) to save an
 * fdget per io_uring_enter. GONEX_NAPI_BUSY_US registers NAPI busy
 * polling (IORING_REGISTER_NAPI); a kernel without it lists "NAPI" as
 * missing. GONEX_FIXED_FILES sizes a sparse registered file table: see
 * gx_uring_fix below.
 *
 * Waiting: one io_uring_enter per loop turn submits what the turn queued
 * and waits for a completion up to the nearest timer deadline, passed as an
 * EXT_ARG timeout (no timeout SQE; liburing adds one itself on kernels
 * without IORING_FEAT_EXT_ARG, with user_data LIBURING_UDATA_TIMEOUT, which
 * the reaper skips). With nothing queued and nothing in flight a
 * non-blocking wait makes no system call.
 *
 * Completions: user_data is the address of a gx_io_req on the waiting
 * coroutine's stack; 0 and LIBURING_UDATA_TIMEOUT are the runtime's own and
 * carry nothing.
 *
 * Cancellation is IORING_OP_ASYNC_CANCEL by user_data for every op. The
 * kernel's cancel path tries poll, waitid and futex waits by user_data
 * before the io-wq and timeouts, so a parked FUTEX_WAIT ends with
 * -ECANCELED (or its wake, if that came first); ring exit removes the rest.
 * Opcodes newer than liburing 2.3 are prepared through io/uring_compat.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/panic.h"
#include "arch/relax.h"
#include "core/timer.h"
#include "io/backend.h"
#include "io/loop.h"
#include "io/op.h"
#include "io/uring_compat.h"

typedef struct {
	struct io_uring ring;
	int64_t spin_ns;     /* GONEX_LOOP_SPIN_NS, when the TASKRUN flag is there */
	bool bundle;         /* multishot receives take bundles */
	uint32_t *free_slot; /* registered file slots not in use: a stack of
			      * loop->fixed_files - loop->fixed_used */
} gx_uring;

/* The registered file table: nslots sparse slots, all free. The kernel
 * refuses a table larger than RLIMIT_NOFILE, so it is cut to that. */
static void gx_uring_files_init(gx_loop *loop, gx_uring *u, uint32_t nslots)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < nslots)
		nslots = (uint32_t)rl.rlim_cur;
	if (!nslots)
		return;
	u->free_slot = malloc(nslots * sizeof *u->free_slot);
	if (!u->free_slot || io_uring_register_files_sparse(&u->ring, nslots) < 0) {
		free(u->free_slot);
		u->free_slot = NULL;
		gx_loop_missing(loop, "FIXED_FILES");
		return;
	}
	for (uint32_t i = 0; i < nslots; i++)
		u->free_slot[i] = nslots - 1 - i; /* slot 0 on top */
	loop->fixed_files = nslots;
}

static int gx_uring_create(gx_loop *loop, const gx_config *cfg)
{
	gx_uring *u = calloc(1, sizeof *u);
	if (!u)
		return -ENOMEM;
	uint32_t cq = cfg->cq_entries ? cfg->cq_entries : cfg->ring_entries * 16;
	if (cq < cfg->ring_entries)
		cq = cfg->ring_entries;

	struct {
		uint32_t flags;
		const char *name;
		int enabled;
	} ladder[] = {
		{IORING_SETUP_SQPOLL | (cfg->sqpoll_cpu >= 0 ? IORING_SETUP_SQ_AFF : 0), "SQPOLL",
		 cfg->sqpoll},
		{IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
			 IORING_SETUP_TASKRUN_FLAG,
		 "DEFER_TASKRUN", cfg->defer_taskrun && !cfg->sqpoll},
		{IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
		 "COOP_TASKRUN", !cfg->sqpoll},
		{0, NULL, 1},
	};
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof ladder / sizeof ladder[0]; i++) {
		if (!ladder[i].enabled)
			continue;
		struct io_uring_params p;
		memset(&p, 0, sizeof p);
		p.flags = ladder[i].flags | IORING_SETUP_CQSIZE;
		p.cq_entries = cq;
		if (ladder[i].flags & IORING_SETUP_SQPOLL) {
			p.sq_thread_idle = cfg->sqpoll_idle_ms;
			p.sq_thread_cpu = cfg->sqpoll_cpu >= 0 ? (uint32_t)cfg->sqpoll_cpu : 0;
		}
		rc = io_uring_queue_init_params(cfg->ring_entries, &u->ring, &p);
		if (rc == 0) {
			loop->ring_flags = p.flags;
			loop->ring_features = p.features;
			loop->sq_entries = p.sq_entries;
			loop->cq_entries = p.cq_entries;
			break;
		}
		if (rc == -ENOSYS || rc == -EPERM)
			break;
		if (ladder[i].name)
			gx_loop_missing(loop, ladder[i].name);
	}
	if (rc < 0) {
		free(u);
		return rc;
	}
	if (io_uring_register_ring_fd(&u->ring) < 0)
		gx_loop_missing(loop, "REGISTER_RING_FD");
	u->bundle = cfg->recv_bundle && (loop->ring_features & IORING_FEAT_RECVSEND_BUNDLE);
	if (cfg->recv_bundle && !u->bundle)
		gx_loop_missing(loop, "RECVSEND_BUNDLE");
	if (cfg->buf_count && gx_bufring_init(&u->ring, cfg->buf_count, cfg->buf_size, u->bundle) < 0)
		gx_loop_missing(loop, "PBUF_RING");
	if (cfg->iowq_max) {
		unsigned int vals[2] = {cfg->iowq_max, cfg->iowq_max};
		if (io_uring_register_iowq_max_workers(&u->ring, vals) < 0)
			gx_loop_missing(loop, "IOWQ_MAX_WORKERS");
	}
	if (cfg->napi_busy_us) {
		gx_uring_napi n = {.busy_poll_to = cfg->napi_busy_us,
				   .prefer_busy_poll = (uint8_t)cfg->napi_prefer_busy};
		/* by the real fd: the registered index needs a flag 2.3 lacks */
		if (syscall(__NR_io_uring_register, u->ring.ring_fd, IORING_REGISTER_NAPI, &n, 1) == 0)
			loop->napi_busy_us = cfg->napi_busy_us;
		else
			gx_loop_missing(loop, "NAPI");
	}
	gx_uring_files_init(loop, u, cfg->fixed_files);
	if (cfg->loop_spin_ns && (loop->ring_flags & IORING_SETUP_TASKRUN_FLAG))
		u->spin_ns = cfg->loop_spin_ns;
	else if (cfg->loop_spin_ns)
		gx_loop_missing(loop, "TASKRUN_FLAG");
	if (!(loop->ring_features & IORING_FEAT_EXT_ARG))
		gx_loop_missing(loop, "EXT_ARG");
	loop->priv = u;
	return 0;
}

static int gx_uring_wait(gx_loop *loop, int64_t deadline);
static void gx_uring_cancel(gx_loop *loop, gx_io_op *op);

static void gx_uring_cancel_any(gx_io_op *op)
{
	gx_uring_cancel(gx_loop_get(), op);
}

static void gx_uring_destroy(gx_loop *loop)
{
	gx_uring *u = loop->priv;
	if (!u)
		return;
	if (loop->inflight > 0) {
		/* the kernel may still write into records on coroutine stacks:
		 * cancel everything and wait until every op has completed */
		gx_fd_table_each_op(gx_uring_cancel_any);
		int64_t end = gx_clock_now() + 5 * (int64_t)1000000000;
		while (loop->inflight > 0 && gx_clock_now() < end)
			gx_uring_wait(loop, end);
		if (loop->inflight > 0)
			gx_panic("io", "%u operations still in flight at shutdown", loop->inflight);
	}
	io_uring_queue_exit(&u->ring);
	gx_bufring_fini();
	free(u->free_slot);
	free(u);
	loop->priv = NULL;
}

static void gx_uring_reap(gx_loop *loop, struct io_uring *r)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(r, head, cqe)
	{
		n++;
		uint64_t ud = cqe->user_data;
		if (ud == 0 || ud == LIBURING_UDATA_TIMEOUT)
			continue;
		gx_io_req *req = (gx_io_req *)(uintptr_t)ud;
		req->complete(req, cqe->res, cqe->flags);
	}
	io_uring_cq_advance(r, n);
	(void)loop;
}

/*
 * Before sleeping, spin up to spin_ns (or the deadline) for work: what
 * this turn queued is submitted first, then the spin watches the CQ and
 * the ring's TASKRUN flag, which the kernel sets when it queues
 * completion work for this task (a receive's data, a send's end). Work
 * that comes within the spin costs no sleep and no wake-up.
 */
static void gx_uring_spin(gx_uring *u, int64_t deadline)
{
	struct io_uring *r = &u->ring;
	if (io_uring_sq_ready(r))
		io_uring_submit(r);
	int64_t end = gx_clock_now() + u->spin_ns;
	if (deadline > 0 && deadline < end)
		end = deadline;
	for (unsigned i = 0;; i++) {
		if (io_uring_cq_ready(r) || (IO_URING_READ_ONCE(*r->sq.kflags) & IORING_SQ_TASKRUN))
			return;
		if ((i & 63) == 63 && gx_clock_now() >= end)
			return;
		gx_cpu_relax();
	}
}

static int gx_uring_wait(gx_loop *loop, int64_t deadline)
{
	gx_uring *u = loop->priv;
	struct io_uring *r = &u->ring;
	struct io_uring_cqe *cqe;
	int rc;
	if (deadline != 0 && u->spin_ns > 0 && loop->inflight > 0)
		gx_uring_spin(u, deadline);
	if (deadline > 0) {
		int64_t left = deadline - gx_clock_now();
		if (left <= 0) {
			deadline = 0;
		} else {
			struct __kernel_timespec ts = {.tv_sec = left / 1000000000,
						       .tv_nsec = left % 1000000000};
			rc = io_uring_submit_and_wait_timeout(r, &cqe, 1, &ts, NULL);
			goto reap;
		}
	}
	if (deadline == 0) {
		if (io_uring_sq_ready(r) == 0 && loop->inflight == 0 && !io_uring_cq_ready(r))
			return 0;
		rc = io_uring_submit_and_get_events(r);
	} else {
		rc = io_uring_submit_and_wait(r, 1);
	}
reap:
	gx_uring_reap(loop, r);
	return rc < 0 ? rc : 0;
}

static bool gx_uring_busy(gx_loop *loop)
{
	return loop->inflight > 0;
}

/* An SQE, submitting what is queued when the SQ is full. NULL only when
 * the kernel refuses the submission. */
static struct io_uring_sqe *gx_uring_sqe(struct io_uring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	if (!sqe && io_uring_submit(r) >= 0)
		sqe = io_uring_get_sqe(r);
	return sqe;
}

/*
 * The operations that move data are one io_uring_prep_rw each, which is
 * all liburing's io_uring_prep_read, _write, _readv, _writev, _recv,
 * _send, _recvmsg and _sendmsg do (the socket ones then set msg_flags):
 * within each read/write pair only the opcode differs.
 */
static const uint8_t gx_uring_rw_opcode[] = {
	[GX_OP_READ] = IORING_OP_READ,       [GX_OP_WRITE] = IORING_OP_WRITE,
	[GX_OP_READV] = IORING_OP_READV,     [GX_OP_WRITEV] = IORING_OP_WRITEV,
	[GX_OP_RECV] = IORING_OP_RECV,       [GX_OP_SEND] = IORING_OP_SEND,
	[GX_OP_RECVMSG] = IORING_OP_RECVMSG, [GX_OP_SENDMSG] = IORING_OP_SENDMSG,
};

/*
 * Registered file slots. A socket's multishot receive, when armed the
 * first time, takes a free slot: an IORING_OP_FILES_UPDATE SQE ahead of
 * it puts the fd there. SQEs are issued in order and a files update
 * completes inline, so every later SQE of the socket finds the slot
 * filled. The fd is open when that SQE is issued: gx_close cancels the
 * receive and waits for it (which submits) before close(2). gx_close
 * then frees the slot (forget): a files update to -1, queued before any
 * later SQE can reuse the slot; the socket's file lives until that
 * update is submitted at the end of the turn. Success makes no CQE.
 */
/* Queue "slot holds *fd" (-1: empty it), with no CQE on success. */
static bool gx_uring_files_update(gx_uring *u, int *fd, uint32_t slot)
{
	struct io_uring_sqe *sqe = gx_uring_sqe(&u->ring);
	if (!sqe)
		return false;
	io_uring_prep_files_update(sqe, fd, 1, (int)slot);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data(sqe, NULL);
	return true;
}

static void gx_uring_fix(gx_loop *loop, gx_uring *u, gx_fd *fds)
{
	uint32_t nfree = loop->fixed_files - loop->fixed_used;
	if (!nfree)
		return;
	uint32_t slot = u->free_slot[nfree - 1];
	if (gx_uring_files_update(u, &fds->fd, slot)) {
		fds->slot1 = slot + 1;
		loop->fixed_used++;
	}
}

static void gx_uring_forget(gx_loop *loop, gx_fd *fds)
{
	gx_uring *u = loop->priv;
	static int none = -1;
	if (!fds->slot1)
		return;
	if (!gx_uring_files_update(u, &none, fds->slot1 - 1))
		gx_panic("io", "no SQE to free a registered file slot");
	loop->fixed_used--;
	u->free_slot[loop->fixed_files - loop->fixed_used - 1] = fds->slot1 - 1;
	fds->slot1 = 0;
}

/* Ops that may name a registered file instead of an fd. */
static const bool gx_uring_fixable[] = {
	[GX_OP_READ] = true,     [GX_OP_WRITE] = true,   [GX_OP_READV] = true,
	[GX_OP_WRITEV] = true,   [GX_OP_RECV] = true,    [GX_OP_SEND] = true,
	[GX_OP_RECVMSG] = true,  [GX_OP_SENDMSG] = true, [GX_OP_RECV_MULTI] = true,
	[GX_OP_POLL] = true,
};

static int gx_uring_arm(gx_loop *loop, gx_io_op *op)
{
	gx_uring *u = loop->priv;
	gx_fd *fds = op->fds;
	if (op->opcode == GX_OP_RECV_MULTI && fds && !fds->slot1)
		gx_uring_fix(loop, u, fds);
	struct io_uring_sqe *sqe = gx_uring_sqe(&u->ring);
	if (!sqe)
		return -EAGAIN;
	switch (op->opcode) {
	case GX_OP_READ:
	case GX_OP_WRITE: /* len bytes at off ((uint64_t)-1: the file position) */
		io_uring_prep_rw(gx_uring_rw_opcode[op->opcode], sqe, op->fd, op->buf, op->len, op->off);
		break;
	case GX_OP_READV:
	case GX_OP_WRITEV: /* len iovecs, at the file position */
		io_uring_prep_rw(gx_uring_rw_opcode[op->opcode], sqe, op->fd, op->buf, op->len, (uint64_t)-1);
		break;
	case GX_OP_RECV:
	case GX_OP_SEND: /* len bytes */
		io_uring_prep_rw(gx_uring_rw_opcode[op->opcode], sqe, op->fd, op->buf, op->len, 0);
		sqe->msg_flags = (uint32_t)op->flags;
		break;
	case GX_OP_RECVMSG:
	case GX_OP_SENDMSG: /* one msghdr */
		io_uring_prep_rw(gx_uring_rw_opcode[op->opcode], sqe, op->fd, op->buf, 1, 0);
		sqe->msg_flags = (uint32_t)op->flags;
		break;
	case GX_OP_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, op->buf, op->addrlen, op->flags);
		break;
	case GX_OP_ACCEPT_MULTI:
		io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, op->flags);
		break;
	case GX_OP_CONNECT:
		io_uring_prep_connect(sqe, op->fd, op->buf, op->alen);
		break;
	case GX_OP_RECV_MULTI:
		io_uring_prep_recv(sqe, op->fd, NULL, 0, 0);
		sqe->ioprio |= IORING_RECV_MULTISHOT | (u->bundle ? IORING_RECVSEND_BUNDLE : 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = 0;
		break;
	case GX_OP_POLL:
		io_uring_prep_poll_add(sqe, op->fd, (unsigned)op->flags);
		break;
	case GX_OP_OPENAT:
		io_uring_prep_openat(sqe, op->fd, op->buf, op->flags, (mode_t)op->off);
		break;
	case GX_OP_FSYNC:
		io_uring_prep_fsync(sqe, op->fd, 0);
		break;
	case GX_OP_FUTEX_WAIT:
		/* shared: no FUTEX2_PRIVATE, the word is in MAP_SHARED memory */
		gx_prep_futex_wait(sqe, op->buf, op->len, FUTEX_BITSET_MATCH_ANY, FUTEX2_SIZE_U32);
		break;
	case GX_OP_FUTEX_WAITV:
		gx_prep_futex_waitv(sqe, op->buf, op->len);
		break;
	default:
		gx_panic("io", "unknown opcode %u", op->opcode);
	}
	if (fds && fds->slot1 && op->opcode < sizeof gx_uring_fixable && gx_uring_fixable[op->opcode]) {
		sqe->fd = (int)(fds->slot1 - 1);
		sqe->flags |= IOSQE_FIXED_FILE;
	}
	io_uring_sqe_set_data(sqe, &op->req);
	return 0;
}

static void gx_uring_cancel(gx_loop *loop, gx_io_op *op)
{
	gx_uring *u = loop->priv;
	struct io_uring_sqe *sqe = gx_uring_sqe(&u->ring);
	if (!sqe)
		gx_panic("io", "no SQE for a cancellation");
	io_uring_prep_cancel(sqe, &op->req, 0);
	io_uring_sqe_set_data(sqe, NULL); /* its own CQE carries nothing */
}

/* By role, as backend.h lists them: life, the loop, operations (forget
 * gives back a closed socket's registered file slot). */
const gx_backend_ops gx_backend_uring = {
	.name = "io_uring",
	.create = gx_uring_create, .destroy = gx_uring_destroy,
	.wait = gx_uring_wait, .busy = gx_uring_busy,
	.arm = gx_uring_arm, .cancel = gx_uring_cancel, .forget = gx_uring_forget,
};
