/*
 * The event-loop backend contract.
 *
 * One loop per process, one backend behind it, chosen at run time (io_uring,
 * or epoll where io_uring cannot be set up). A backend is a const ops table
 * and private state behind loop->priv:
 *
 * - create(loop, cfg): set up the backend; fill loop->ring_flags,
 *   ring_features, sq_entries, cq_entries and loop->missing (features asked
 *   for but unavailable, space-separated). Returns 0 or -errno; -ENOSYS and
 *   -EPERM mean "this backend cannot exist here" and make the loop fall back.
 * - destroy(loop): free everything create made; no completion is delivered
 *   afterwards.
 * - wait(loop, deadline): submit what is queued, wait until at least one
 *   completion arrived or CLOCK_MONOTONIC deadline passed (-1: no deadline,
 *   0: do not block), and dispatch every completion that arrived: each one
 *   calls its gx_io_req's complete() on the loop context (so does a
 *   cancellation that ends an op at once). Returns 0 or
 *   -errno; -EINTR and -ETIME are normal.
 * - busy(loop): true while operations are in flight (loop->inflight > 0).
 * - arm(loop, op): start an I/O operation (io/op.h). Returns 1 when it
 *   completed at once (op->res set, nothing in flight), 0 when it is in
 *   flight (it will end with one gx_io_complete during a later wait), or
 *   -errno when it could not be started.
 * - cancel(loop, op): ask for an in-flight op to end early; it still ends
 *   through gx_io_complete (with -ECANCELED, or its result if it won).
 * - name: "io_uring" or "epoll", for logs and gx_info.
 */
#ifndef GX_IO_BACKEND_H
#define GX_IO_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include <gonex/config.h>

/* An operation record; its address is the completion's user_data. It lives
 * on the waiting coroutine's stack until its last completion arrived. */
typedef struct gx_io_req gx_io_req;
struct gx_io_req {
	void (*complete)(gx_io_req *req, int32_t res, uint32_t flags);
};

typedef struct gx_loop gx_loop;
struct gx_io_op;
struct gx_fd;

typedef struct gx_backend_ops {
	const char *name;
	int (*create)(gx_loop *loop, const gx_config *cfg);
	void (*destroy)(gx_loop *loop);
	int (*wait)(gx_loop *loop, int64_t deadline);
	bool (*busy)(gx_loop *loop);
	int (*arm)(gx_loop *loop, struct gx_io_op *op);
	void (*cancel)(gx_loop *loop, struct gx_io_op *op);
	/* optional: fd is being closed (nothing in flight on it) */
	void (*forget)(gx_loop *loop, struct gx_fd *fds);
} gx_backend_ops;

struct gx_loop {
	const gx_backend_ops *ops;
	void *priv;
	uint32_t inflight;
	uint32_t ring_flags;
	uint32_t ring_features;
	uint32_t sq_entries;
	uint32_t cq_entries;
	char missing[160];
	uint32_t napi_busy_us; /* NAPI busy poll in force, 0: off */
	uint32_t fixed_files;  /* registered file slots (io_uring), 0: none */
	uint32_t fixed_used;   /* ... held by open sockets */
};

extern const gx_backend_ops gx_backend_uring;
extern const gx_backend_ops gx_backend_epoll;

/* Append a missing feature's name to loop->missing. */
void gx_loop_missing(gx_loop *loop, const char *feature);

#endif
